//! Aliases, their figures and their rollouts' decisions, written once for both backends.
//! Every change of an alias bumps its epoch in the transaction that makes it, and drops
//! the figures of earlier epochs; a decision applies only to the epoch it judged.

use super::{Db, Value, columns, values};
use crate::releases::*;
use crate::*;

const ALIAS_COLUMNS: &str =
    "alias, name, version, candidate, weight_bp, rollout, epoch, epoch_started, description, created, modified";

fn alias_from(row: Vec<Value>) -> Result<Alias> {
    let [alias, function, version, candidate, weight_bp, rollout, epoch, epoch_started, description, created, modified] =
        columns(row)?;
    let candidate = match candidate {
        Value::Null => None,
        v => Some(v.int()?),
    };
    let weight_bp = weight_bp.int()?;
    let rollout = match rollout.opt_text()? {
        Some(json) => {
            Some(serde_json::from_str(&json).map_err(|e| StoreError::Other(format!("a stored rollout: {e}")))?)
        }
        None => None,
    };
    Ok(Alias {
        alias: alias.text()?,
        function: function.text()?,
        version: version.int()?,
        routing: candidate.map(|version| Routing { version, weight_bp }),
        rollout,
        epoch: epoch.int()?,
        epoch_started: epoch_started.int()?,
        description: description.text()?,
        created: created.int()?,
        modified: modified.int()?,
    })
}

/// One alias of a function.
pub(crate) async fn alias(db: &impl Db, tenant: &str, function: &str, alias: &str) -> Result<Option<Alias>> {
    let sql = format!("SELECT {ALIAS_COLUMNS} FROM function_aliases WHERE tenant = $1 AND name = $2 AND alias = $3");
    db.query_opt(&sql, values![tenant, function, alias]).await?.map(alias_from).transpose()
}

/// A function's aliases, by name.
pub(crate) async fn aliases(db: &impl Db, tenant: &str, function: &str) -> Result<Vec<Alias>> {
    let sql = format!("SELECT {ALIAS_COLUMNS} FROM function_aliases WHERE tenant = $1 AND name = $2 ORDER BY alias");
    db.query(&sql, values![tenant, function]).await?.into_iter().map(alias_from).collect()
}

/// Every alias with a rollout in progress, of every tenant: `(tenant, alias)`.
pub(crate) async fn rollouts(db: &impl Db) -> Result<Vec<(String, Alias)>> {
    let sql = format!("SELECT tenant, {ALIAS_COLUMNS} FROM function_aliases WHERE rollout IS NOT NULL");
    let rows = db.query(&sql, values![]).await?;
    rows.into_iter()
        .map(|mut row| {
            let tenant = row.remove(0).text()?;
            Ok((tenant, alias_from(row)?))
        })
        .collect()
}

async fn has_version(db: &impl Db, tenant: &str, function: &str, version: i64) -> Result<bool> {
    Ok(db
        .value(
            "SELECT 1 FROM functions WHERE tenant = $1 AND name = $2 AND version = $3",
            values![tenant, function, version],
        )
        .await?
        .is_some())
}

/// The alias locked for a change, if it exists.
async fn locked<D: Db>(tx: &D, tenant: &str, function: &str, alias: &str) -> Result<Option<Alias>> {
    let sql = format!(
        "SELECT {ALIAS_COLUMNS} FROM function_aliases WHERE tenant = $1 AND name = $2 AND alias = $3{}",
        D::FOR_UPDATE
    );
    tx.query_opt(&sql, values![tenant, function, alias]).await?.map(alias_from).transpose()
}

/// Creates or replaces an alias (as `mode` allows), checking that its versions exist, in
/// the transaction that writes it; `expected_epoch`, when given, must be its epoch now.
pub(crate) async fn put_alias(
    tx: &impl Db,
    (tenant, function, alias): (&str, &str, &str),
    change: &AliasChange,
    mode: PutMode,
    expected_epoch: Option<i64>,
) -> Result<std::result::Result<Alias, AliasRefused>> {
    // Changes of one function's aliases, on any node, one at a time.
    tx.take_turns(&format!("alias/{tenant}/{function}")).await?;
    for version in std::iter::once(change.version).chain(change.routing.map(|r| r.version)) {
        if !has_version(tx, tenant, function, version).await? {
            return Ok(Err(AliasRefused::NoVersion(version)));
        }
    }
    let existing = locked(tx, tenant, function, alias).await?;
    match (&existing, mode) {
        (Some(_), PutMode::Create) => return Ok(Err(AliasRefused::Exists)),
        (None, PutMode::Update) => return Ok(Err(AliasRefused::Missing)),
        _ => {}
    }
    if let (Some(expected), Some(now)) = (expected_epoch, existing.as_ref().map(|a| a.epoch))
        && expected != now
    {
        return Ok(Err(AliasRefused::Changed { epoch: now }));
    }
    if existing.is_none() {
        let count = tx
            .value("SELECT COUNT(*) FROM function_aliases WHERE tenant = $1 AND name = $2", values![tenant, function])
            .await?
            .map_or(Ok(0), Value::int)?;
        if count >= MAX_ALIASES_PER_FUNCTION {
            return Ok(Err(AliasRefused::TooMany));
        }
    }
    let rollout =
        change.rollout.as_ref().map(serde_json::to_string).transpose().map_err(|e| StoreError::Other(e.to_string()))?;
    let (candidate, weight_bp) = (change.routing.map(|r| r.version), change.routing.map_or(0, |r| r.weight_bp));
    let now = now();
    let epoch = existing.as_ref().map_or(1, |a| a.epoch + 1);
    let created = existing.as_ref().map_or(now, |a| a.created);
    tx.execute(
        "DELETE FROM function_aliases WHERE tenant = $1 AND name = $2 AND alias = $3",
        values![tenant, function, alias],
    )
    .await?;
    tx.execute(
        "INSERT INTO function_aliases (tenant, name, alias, version, candidate, weight_bp, rollout, epoch,
                                       epoch_started, description, created, modified)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        values![
            tenant,
            function,
            alias,
            change.version,
            candidate,
            weight_bp,
            rollout.as_ref(),
            epoch,
            now,
            &change.description,
            created,
            now
        ],
    )
    .await?;
    drop_figures_before(tx, (tenant, function, alias), epoch).await?;
    Ok(self::alias(tx, tenant, function, alias).await?.ok_or(AliasRefused::Missing))
}

async fn drop_figures_before(tx: &impl Db, (tenant, function, alias): (&str, &str, &str), epoch: i64) -> Result<()> {
    for table in ["alias_figures", "alias_histograms"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE tenant = $1 AND name = $2 AND alias = $3 AND epoch < $4"),
            values![tenant, function, alias, epoch],
        )
        .await?;
    }
    Ok(())
}

/// Deletes an alias (with its figures and decisions) unless a pool's SyncTrigger of the
/// tenant names it: checked in the transaction that deletes.
pub(crate) async fn delete_alias(
    tx: &impl Db,
    (tenant, function, alias): (&str, &str, &str),
) -> Result<std::result::Result<(), AliasRefused>> {
    tx.take_turns(&format!("alias/{tenant}/{function}")).await?;
    if locked(tx, tenant, function, alias).await?.is_none() {
        return Ok(Err(AliasRefused::Missing));
    }
    // A SetCognitoEvents naming the alias holds it FOR SHARE until it commits: by now it
    // has, and its mapping is read here.
    let pools = tx
        .query(
            "SELECT pool_id, sync_trigger FROM pools WHERE tenant = $1 AND sync_trigger IS NOT NULL",
            values![tenant],
        )
        .await?;
    let qualified = format!("{function}:{alias}");
    for row in pools {
        let [pool, mapping] = columns(row)?;
        let mapping = mapping.text()?;
        // A function name holds no `:`, so these are exact.
        let names_it = mapping == qualified
            || (mapping.starts_with("arn:aws:lambda:") && mapping.ends_with(&format!(":function:{qualified}")));
        if names_it {
            return Ok(Err(AliasRefused::InUse { pool: pool.text()? }));
        }
    }
    for table in ["function_aliases", "alias_figures", "alias_histograms", "alias_decisions"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE tenant = $1 AND name = $2 AND alias = $3"),
            values![tenant, function, alias],
        )
        .await?;
    }
    Ok(Ok(()))
}

/// What a function name and qualifier resolve to now.
pub(crate) async fn resolve(
    db: &impl Db,
    tenant: &str,
    function: &str,
    qualifier: &Qualifier,
) -> Result<Option<Resolved>> {
    let mut resolved = match qualifier {
        Qualifier::Latest => functions::function(db, tenant, function, None).await?.map(plain),
        Qualifier::Version(v) => functions::function(db, tenant, function, Some(*v)).await?.map(plain),
        Qualifier::Alias(alias) => resolve_alias(db, tenant, function, alias).await?,
    };
    if let Some(r) = &mut resolved {
        r.recording = super::recordings::settings(db, tenant, function).await?;
    }
    Ok(resolved)
}

async fn resolve_alias(db: &impl Db, tenant: &str, function: &str, alias: &str) -> Result<Option<Resolved>> {
    let row = db
        .query_opt(
            "SELECT a.version, p.digest, a.epoch, a.candidate, c.digest, a.weight_bp
             FROM function_aliases a
             JOIN functions p ON p.tenant = a.tenant AND p.name = a.name AND p.version = a.version
             LEFT JOIN functions c ON c.tenant = a.tenant AND c.name = a.name AND c.version = a.candidate
             WHERE a.tenant = $1 AND a.name = $2 AND a.alias = $3",
            values![tenant, function, alias],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let [version, digest, epoch, candidate, candidate_digest, weight_bp] = columns(row)?;
    let candidate = match (candidate, candidate_digest) {
        (Value::Null, _) | (_, Value::Null) => None,
        (version, digest) => Some((Head { version: version.int()?, digest: digest.text()? }, weight_bp.int()?)),
    };
    Ok(Some(Resolved {
        primary: Head { version: version.int()?, digest: digest.text()? },
        alias: Some(AliasRoute { alias: alias.to_owned(), epoch: epoch.int()?, candidate }),
        recording: None,
    }))
}

fn plain(primary: Head) -> Resolved {
    Resolved { primary, alias: None, recording: None }
}

/// Adds nodes' figures to their aliases' epochs; figures of an epoch that has ended are
/// dropped (the alias changed while they were in flight).
pub(crate) async fn add_figures(tx: &impl Db, deltas: &[FiguresDelta]) -> Result<()> {
    for d in deltas {
        let current = tx
            .value(
                "SELECT epoch FROM function_aliases WHERE tenant = $1 AND name = $2 AND alias = $3",
                values![&d.tenant, &d.function, &d.alias],
            )
            .await?;
        if current.map(Value::int).transpose()? != Some(d.epoch) {
            continue;
        }
        let o = &d.figures.outcomes;
        tx.execute(
            "INSERT INTO alias_figures (tenant, name, alias, epoch, version, ok, rejected, error, timeout)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant, name, alias, epoch, version) DO UPDATE SET
                 ok = alias_figures.ok + excluded.ok, rejected = alias_figures.rejected + excluded.rejected,
                 error = alias_figures.error + excluded.error, timeout = alias_figures.timeout + excluded.timeout",
            values![&d.tenant, &d.function, &d.alias, d.epoch, d.figures.version, o.ok, o.rejected, o.error, o.timeout],
        )
        .await?;
        for (metric, histogram) in [("wall_us", &d.figures.wall_us), ("fuel", &d.figures.fuel)] {
            for (bucket, count) in &histogram.buckets {
                tx.execute(
                    "INSERT INTO alias_histograms (tenant, name, alias, epoch, version, metric, bucket, count)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (tenant, name, alias, epoch, version, metric, bucket) DO UPDATE SET
                         count = alias_histograms.count + excluded.count",
                    values![&d.tenant, &d.function, &d.alias, d.epoch, d.figures.version, metric, *bucket, *count],
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// The figures of each version behind an alias in one epoch, by version.
pub(crate) async fn figures(
    db: &impl Db,
    (tenant, function, alias): (&str, &str, &str),
    epoch: i64,
) -> Result<Vec<VersionFigures>> {
    let key = values![tenant, function, alias, epoch];
    let mut by_version = std::collections::BTreeMap::<i64, VersionFigures>::new();
    let rows = db
        .query(
            "SELECT version, ok, rejected, error, timeout FROM alias_figures
             WHERE tenant = $1 AND name = $2 AND alias = $3 AND epoch = $4",
            key,
        )
        .await?;
    for row in rows {
        let [version, ok, rejected, error, timeout] = columns(row)?;
        let version = version.int()?;
        let outcomes =
            Outcomes { ok: ok.int()?, rejected: rejected.int()?, error: error.int()?, timeout: timeout.int()? };
        by_version.insert(version, VersionFigures { version, outcomes, ..Default::default() });
    }
    let rows = db
        .query(
            "SELECT version, metric, bucket, count FROM alias_histograms
             WHERE tenant = $1 AND name = $2 AND alias = $3 AND epoch = $4",
            key,
        )
        .await?;
    for row in rows {
        let [version, metric, bucket, count] = columns(row)?;
        let version = version.int()?;
        let figures = by_version.entry(version).or_insert_with(|| VersionFigures { version, ..Default::default() });
        let histogram = if metric.text()? == "fuel" { &mut figures.fuel } else { &mut figures.wall_us };
        histogram.buckets.insert(bucket.int()?, count.int()?);
    }
    Ok(by_version.into_values().collect())
}

/// Ends the rollout of an alias's `epoch` with `verdict` (promote: the candidate becomes
/// the alias's version; roll back: the primary serves everything), recording `decision`.
/// Answers the alias as it now is, or `None` when the epoch has ended already (another
/// node decided, or the tenant changed the alias).
pub(crate) async fn decide(
    tx: &impl Db,
    (tenant, function, alias): (&str, &str, &str),
    verdict: Verdict,
    decision: &Decision,
) -> Result<Option<Alias>> {
    tx.take_turns(&format!("alias/{tenant}/{function}")).await?;
    let Some(current) = locked(tx, tenant, function, alias).await? else { return Ok(None) };
    let (Some(routing), Some(_)) = (current.routing, &current.rollout) else { return Ok(None) };
    if current.epoch != decision.epoch {
        return Ok(None);
    }
    let version = match verdict {
        Verdict::Promote => routing.version,
        Verdict::RollBack => current.version,
    };
    let (epoch, now) = (current.epoch + 1, now());
    tx.execute(
        "UPDATE function_aliases SET version = $4, candidate = NULL, weight_bp = 0, rollout = NULL, epoch = $5,
                                     epoch_started = $6, modified = $6
         WHERE tenant = $1 AND name = $2 AND alias = $3",
        values![tenant, function, alias, version, epoch, now],
    )
    .await?;
    tx.execute(
        "INSERT INTO alias_decisions (tenant, name, alias, at, epoch, decision, primary_version, candidate, reason, figures)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        values![
            tenant,
            function,
            alias,
            now,
            decision.epoch,
            verdict.label(),
            current.version,
            routing.version,
            &decision.reason,
            &decision.figures
        ],
    )
    .await?;
    // A function keeps its latest decisions, not all of them.
    tx.execute(
        "DELETE FROM alias_decisions WHERE tenant = $1 AND name = $2 AND id NOT IN
             (SELECT id FROM alias_decisions WHERE tenant = $1 AND name = $2 ORDER BY id DESC LIMIT 100)",
        values![tenant, function],
    )
    .await?;
    drop_figures_before(tx, (tenant, function, alias), epoch).await?;
    self::alias(tx, tenant, function, alias).await
}

/// A function's latest rollout decisions, newest first.
pub(crate) async fn decisions(db: &impl Db, tenant: &str, function: &str, limit: i64) -> Result<Vec<Decision>> {
    let rows = db
        .query(
            "SELECT at, alias, epoch, decision, primary_version, candidate, reason, figures FROM alias_decisions
             WHERE tenant = $1 AND name = $2 ORDER BY id DESC LIMIT $3",
            values![tenant, function, limit],
        )
        .await?;
    rows.into_iter()
        .map(|row| {
            let [at, alias, epoch, decision, primary, candidate, reason, figures] = columns(row)?;
            Ok(Decision {
                at: at.int()?,
                alias: alias.text()?,
                epoch: epoch.int()?,
                decision: decision.text()?,
                primary: primary.int()?,
                candidate: candidate.int()?,
                reason: reason.text()?,
                figures: figures.text()?,
            })
        })
        .collect()
}

use super::functions;
