//! Identities and their logins — sign-in, link, unlink, merge, delete — written once for
//! both backends. Each rule runs inside the caller's transaction and re-checks what it
//! was decided on (the identity still live, still never authenticated, no provider
//! clash), so a decision made on a stale read changes nothing.

use super::{Db, Value, columns, values};
use crate::streams::{Change, ChangeKind};
use crate::*;

const IDENTITY_COLUMNS: &str = "identity_id, pool_id, created, modified, merged_into, authenticated";

fn identity_from(row: Vec<Value>) -> Result<IdentityRow> {
    let [identity_id, pool_id, created, modified, merged_into, authenticated] = columns(row)?;
    Ok(IdentityRow {
        identity_id: identity_id.text()?,
        pool_id: pool_id.text()?,
        created: created.int()?,
        modified: modified.int()?,
        merged_into: merged_into.opt_text()?,
        ever_authenticated: authenticated.flag()?,
        logins: Vec::new(),
    })
}

async fn with_logins(db: &impl Db, mut row: IdentityRow) -> Result<IdentityRow> {
    let rows = db
        .query(
            "SELECT provider, subject FROM logins WHERE identity_id = $1 ORDER BY provider, subject",
            values![&row.identity_id],
        )
        .await?;
    row.logins = rows
        .into_iter()
        .map(|r| {
            let [provider, subject] = columns(r)?;
            Ok((provider.text()?, subject.text()?))
        })
        .collect::<Result<_>>()?;
    Ok(row)
}

/// Creates a new, unauthenticated identity in the pool.
pub(crate) async fn create_identity(db: &impl Db, pool: &str, region: &str) -> Result<String> {
    let identity = new_cognito_id(region);
    db.execute(
        "INSERT INTO identities (identity_id, pool_id, created, modified) VALUES ($1, $2, $3, $3)",
        values![&identity, pool, now()],
    )
    .await?;
    Ok(identity)
}

/// The pool an identity belongs to.
pub(crate) async fn identity_pool(db: &impl Db, identity: &str) -> Result<Option<String>> {
    db.value("SELECT pool_id FROM identities WHERE identity_id = $1", values![identity])
        .await?
        .map(Value::text)
        .transpose()
}

/// The identity with its logins.
pub(crate) async fn identity(db: &impl Db, identity: &str) -> Result<Option<IdentityRow>> {
    let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE identity_id = $1");
    match db.query_opt(&sql, values![identity]).await? {
        Some(row) => Ok(Some(with_logins(db, identity_from(row)?).await?)),
        None => Ok(None),
    }
}

/// Up to `limit` identities of a pool with ids after `after`, merged ones left out when
/// `hide_disabled`.
pub(crate) async fn identities_after(
    db: &impl Db,
    pool: &str,
    after: &str,
    limit: usize,
    hide_disabled: bool,
) -> Result<Vec<IdentityRow>> {
    let sql = format!(
        "SELECT {IDENTITY_COLUMNS} FROM identities
         WHERE pool_id = $1 AND identity_id > $2 AND ($3 = 0 OR merged_into IS NULL)
         ORDER BY identity_id LIMIT $4"
    );
    let rows = db.query(&sql, values![pool, after, hide_disabled, limit as i64]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(with_logins(db, identity_from(row)?).await?);
    }
    Ok(out)
}

/// The identity a login is linked to in a pool.
pub(crate) async fn login_identity(db: &impl Db, pool: &str, provider: &str, subject: &str) -> Result<Option<String>> {
    db.value(
        "SELECT identity_id FROM logins WHERE pool_id = $1 AND provider = $2 AND subject = $3",
        values![pool, provider, subject],
    )
    .await?
    .map(Value::text)
    .transpose()
}

/// The identity linked to a login, created with that login on its first use.
pub(crate) async fn identity_for_login(
    tx: &impl Db,
    pool: &str,
    region: &str,
    provider: &str,
    subject: &str,
) -> Result<LoginIdentity> {
    if let Some(identity_id) = login_identity(tx, pool, provider, subject).await? {
        return Ok(LoginIdentity { identity_id, created: false });
    }
    let identity = new_cognito_id(region);
    let t = now();
    tx.execute(
        "INSERT INTO identities (identity_id, pool_id, created, modified, authenticated) VALUES ($1, $2, $3, $3, 1)",
        values![&identity, pool, t],
    )
    .await?;
    // Two first sign-ins at once (PostgreSQL; SQLite's write transactions take turns):
    // the login's key makes the second wait for the first, then insert nothing; it drops
    // the identity it made and answers the first's.
    let linked = tx
        .execute(
            "INSERT INTO logins (pool_id, provider, subject, identity_id, created) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (pool_id, provider, subject) DO NOTHING",
            values![pool, provider, subject, &identity, t],
        )
        .await?;
    if linked == 0 {
        tx.execute("DELETE FROM identities WHERE identity_id = $1", values![&identity]).await?;
        let identity_id = login_identity(tx, pool, provider, subject)
            .await?
            .ok_or_else(|| StoreError::Other("a login vanished while it was being linked".into()))?;
        return Ok(LoginIdentity { identity_id, created: false });
    }
    Ok(LoginIdentity { identity_id: identity, created: true })
}

/// Locks an identity's row for the rest of the transaction where the backend locks rows
/// (every change to an identity's datasets, logins or existence takes this lock first).
/// Answers whether it is a live (not merged) identity of `pool` — and, with
/// `unauthenticated`, one that never had a login.
pub(crate) async fn lock_identity<D: Db>(tx: &D, pool: &str, identity: &str, unauthenticated: bool) -> Result<bool> {
    let sql = format!(
        "SELECT merged_into IS NULL AND pool_id = $2 AND ($3 = 0 OR authenticated = 0)
         FROM identities WHERE identity_id = $1{}",
        D::FOR_UPDATE
    );
    match tx.value(&sql, values![identity, pool, unauthenticated]).await? {
        Some(live) => live.flag(),
        None => Ok(false),
    }
}

/// Links a login to a live identity of the pool, re-checking that the identity is still
/// live — and, with `only_if_unauthenticated`, that it still has never had a login, so
/// two people cannot both link to one guest identity.
pub(crate) async fn link_login(
    tx: &impl Db,
    pool: &str,
    provider: &str,
    subject: &str,
    identity: &str,
    only_if_unauthenticated: bool,
) -> Result<LinkOutcome> {
    if !lock_identity(tx, pool, identity, only_if_unauthenticated).await? {
        return Ok(LinkOutcome::Changed);
    }
    let t = now();
    let inserted = tx
        .execute(
            "INSERT INTO logins (pool_id, provider, subject, identity_id, created) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (pool_id, provider, subject) DO NOTHING",
            values![pool, provider, subject, identity, t],
        )
        .await?;
    if inserted == 0 {
        return Ok(LinkOutcome::Taken);
    }
    tx.execute("UPDATE identities SET modified = $2, authenticated = 1 WHERE identity_id = $1", values![identity, t])
        .await?;
    Ok(LinkOutcome::Linked)
}

/// Unlinks logins of `provider` (every subject, or only `subject`) from an identity;
/// answers how many were removed.
pub(crate) async fn unlink_logins(
    tx: &impl Db,
    identity: &str,
    provider: &str,
    subject: Option<&str>,
) -> Result<usize> {
    let n = tx
        .execute(
            "DELETE FROM logins WHERE identity_id = $1 AND provider = $2 AND (CAST($3 AS TEXT) IS NULL OR subject = $3)",
            values![identity, provider, subject],
        )
        .await?;
    if n > 0 {
        tx.execute("UPDATE identities SET modified = $2 WHERE identity_id = $1", values![identity, now()]).await?;
    }
    Ok(n as usize)
}

/// A merged dataset's name: `<base>.<source>` as Cognito named them, where `base` is the
/// dataset's name before any merge (so names stay within the merged-name limit however
/// often a dataset is merged on), unless the target has a dataset of that name — live or
/// deleted, whose deletion devices must still learn of: then `.2`, `.3`, … after it.
async fn merged_name(tx: &impl Db, pool: &str, target: &str, base: &str, source: &str) -> Result<String> {
    for n in 1..=MERGED_NAME_ATTEMPTS {
        let candidate = merged_dataset_name(base, source, n);
        let taken = tx
            .value(
                "SELECT EXISTS (SELECT 1 FROM datasets WHERE pool_id = $1 AND identity_id = $2 AND name = $3)",
                values![pool, target, &candidate],
            )
            .await?
            .map(Value::flag)
            .transpose()?
            .unwrap_or(false);
        if !taken {
            return Ok(candidate);
        }
    }
    Err(StoreError::Other("no free name for a merged dataset".into()))
}

/// Merges `source` into `target` (both of `pool`), re-checking that both are still live
/// and `rule` still holds: the source's logins move to the target, its live datasets
/// become the target's as `<name>.<source>` (records, SyncCounts and dates kept), and the
/// source is disabled; its credentials stop working at once.
pub(crate) async fn merge_identities<D: Db>(
    tx: &D,
    pool: &str,
    source: &str,
    target: &str,
    rule: MergeRule<'_>,
    outbox_max: i64,
) -> Result<MergeOutcome> {
    if source == target {
        return Ok(MergeOutcome::Changed);
    }
    let source_unauthenticated = rule == MergeRule::SourceUnauthenticated;
    // Both identities locked, in one order whichever is the source, so two merges of the
    // same pair cannot deadlock.
    let (source_live, target_live) = if source < target {
        let s = lock_identity(tx, pool, source, source_unauthenticated).await?;
        (s, lock_identity(tx, pool, target, false).await?)
    } else {
        let t = lock_identity(tx, pool, target, false).await?;
        (lock_identity(tx, pool, source, source_unauthenticated).await?, t)
    };
    if !source_live || !target_live {
        return Ok(MergeOutcome::Changed);
    }
    if let MergeRule::Developer(developer) = rule {
        let clash = tx
            .value(
                "SELECT a.provider FROM logins a JOIN logins b ON a.provider = b.provider AND a.subject != b.subject
                 WHERE a.identity_id = $1 AND b.identity_id = $2 AND a.provider != $3 LIMIT 1",
                values![source, target, developer],
            )
            .await?;
        if let Some(provider) = clash {
            return Ok(MergeOutcome::ProviderClash(provider.text()?));
        }
    }
    let t = now();
    let names = tx
        .query(
            "SELECT name, COALESCE(merged_base, name), sync_count FROM datasets
             WHERE pool_id = $1 AND identity_id = $2 AND deleted = 0 ORDER BY name",
            values![pool, source],
        )
        .await?;
    let mut moved = Vec::new();
    for row in names {
        let [name, base, sync_count] = columns(row)?;
        let (name, base, sync_count) = (name.text()?, base.text()?, sync_count.int()?);
        let new_name = merged_name(tx, pool, target, &base, source).await?;
        tx.execute(
            "UPDATE datasets SET identity_id = $3, name = $4, merged_from = $2, merged_base = $6
             WHERE pool_id = $1 AND identity_id = $2 AND name = $5",
            values![pool, source, target, &new_name, &name, &base],
        )
        .await?;
        if !D::RECORDS_FOLLOW_DATASETS {
            tx.execute(
                "UPDATE records SET identity_id = $3, dataset = $4 WHERE pool_id = $1 AND identity_id = $2 AND dataset = $5",
                values![pool, source, target, &new_name, &name],
            )
            .await?;
        }
        // The stream sees the dataset leave the source and arrive, as it stands, at the target.
        let records = super::streams::dataset_records(tx, pool, target, &new_name).await?;
        let records = serde_json::to_string(&records).map_err(|e| StoreError::Other(e.to_string()))?;
        for (identity, dataset, kind, records) in [
            (source, name.as_str(), ChangeKind::MergedOut, "[]"),
            (target, new_name.as_str(), ChangeKind::MergedIn, records.as_str()),
        ] {
            let change = Change {
                pool_id: pool,
                identity_id: identity,
                dataset,
                sync_count,
                kind,
                records_json: records,
                device_id: None,
            };
            super::streams::enqueue(tx, &change, outbox_max).await?;
        }
        moved.push(new_name);
    }
    // What the source had deleted goes with it.
    tx.delete_records("pool_id = $1 AND identity_id = $2", values![pool, source]).await?;
    tx.execute("DELETE FROM datasets WHERE pool_id = $1 AND identity_id = $2", values![pool, source]).await?;
    let had_logins =
        tx.execute("UPDATE logins SET identity_id = $2 WHERE identity_id = $1", values![source, target]).await? > 0;
    tx.execute("DELETE FROM credentials WHERE identity_id = $1", values![source]).await?;
    // Its devices register again, as the identity they now sign in as.
    super::streams::forget_identity(tx, source).await?;
    tx.execute(
        "UPDATE identities SET merged_into = $2, modified = $3 WHERE identity_id = $1",
        values![source, target, t],
    )
    .await?;
    // Identities merged into the source earlier now point at the target.
    tx.execute("UPDATE identities SET merged_into = $2 WHERE merged_into = $1", values![source, target]).await?;
    // The target is authenticated from now on if a login came with the source.
    let touch = if had_logins {
        "UPDATE identities SET modified = $2, authenticated = 1 WHERE identity_id = $1"
    } else {
        "UPDATE identities SET modified = $2 WHERE identity_id = $1"
    };
    tx.execute(touch, values![target, t]).await?;
    Ok(MergeOutcome::Merged(Merge { target: target.to_owned(), datasets: moved }))
}

/// Deletes identities (of `pool` only, when given) with their datasets, logins and
/// credentials, and the identities merged into them; answers the ids that were not found.
pub(crate) async fn delete_identities<D: Db>(tx: &D, pool: Option<&str>, identities: &[String]) -> Result<Vec<String>> {
    // Every identity's row first, in one order: where rows are locked, each lock waits for
    // updates in flight (what follows sees what they wrote), and a deletion waits holding no
    // usage counter (an update takes its identity's row, then its pool's counter: deleting
    // one identity's rows before waiting for the next could deadlock with it), nor waits on
    // another deletion the other way round.
    let find = format!("SELECT pool_id FROM identities WHERE identity_id = $1{}", D::FOR_UPDATE);
    let mut order: Vec<&String> = identities.iter().collect();
    order.sort();
    order.dedup();
    let mut found = std::collections::HashMap::new();
    for id in order {
        if let Some(p) = tx.value(&find, values![id]).await?.map(Value::text).transpose()? {
            found.insert(id, p);
        }
    }
    let mut missing = Vec::new();
    for id in identities {
        // (Taken out once deleted: an id given twice is not found the second time.)
        match found.remove(id) {
            Some(p) if pool.is_none_or(|pool| pool == p) => {
                // By pool and identity: the key of SQLite's datasets and records begins
                // with both (by identity alone, each was a scan of the whole table).
                tx.delete_records("pool_id = $1 AND identity_id = $2", values![&p, id]).await?;
                tx.execute("DELETE FROM datasets WHERE pool_id = $1 AND identity_id = $2", values![&p, id]).await?;
                for table in ["logins", "credentials"] {
                    tx.execute(&format!("DELETE FROM {table} WHERE identity_id = $1"), values![id]).await?;
                }
                super::streams::forget_identity(tx, id).await?;
                tx.execute("DELETE FROM identities WHERE identity_id = $1 OR merged_into = $1", values![id]).await?;
            }
            _ => missing.push(id.clone()),
        }
    }
    Ok(missing)
}

/// Rewrites pool settings made before schema 5 as [`PoolSettings::conformed`] keeps them;
/// answers how many changed.
pub(crate) async fn conform_pool_settings(tx: &impl Db) -> Result<usize> {
    let pools =
        tx.query("SELECT pool_id, settings FROM pools WHERE settings LIKE '%,%' ORDER BY pool_id", values![]).await?;
    let mut changed = 0;
    for row in pools {
        let [pool, settings] = columns(row)?;
        let (pool, settings) = (pool.text()?, settings.text()?);
        let Ok(parsed) = serde_json::from_str::<PoolSettings>(&settings) else { continue };
        if let Some(conformed) = parsed.conformed() {
            let text = serde_json::to_string(&conformed).map_err(|e| StoreError::Other(e.to_string()))?;
            tx.execute("UPDATE pools SET settings = $2 WHERE pool_id = $1", values![&pool, &text]).await?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Renames merged datasets whose names pass the model's 128 characters (merges before
/// schema 5 named them `<base>.<source>` whatever the base's length, and exports of those
/// stores carry them) to the names merges make now; their records follow. Answers how
/// many were renamed.
pub(crate) async fn shorten_merged_names<D: Db>(tx: &D) -> Result<usize> {
    let long = tx
        .query(
            "SELECT pool_id, identity_id, name, COALESCE(merged_base, name), COALESCE(merged_from, '') FROM datasets
             WHERE length(name) > $1 ORDER BY pool_id, identity_id, name",
            values![synctrig_core::limits::MAX_DATASET_NAME_CHARS as i64],
        )
        .await?;
    let renamed = long.len();
    for row in long {
        let [pool, identity, name, base, source] = columns(row)?;
        let (pool, identity, name) = (pool.text()?, identity.text()?, name.text()?);
        let new_name = merged_name(tx, &pool, &identity, &base.text()?, &source.text()?).await?;
        tx.execute(
            "UPDATE datasets SET name = $4 WHERE pool_id = $1 AND identity_id = $2 AND name = $3",
            values![&pool, &identity, &name, &new_name],
        )
        .await?;
        if !D::RECORDS_FOLLOW_DATASETS {
            tx.execute(
                "UPDATE records SET dataset = $4 WHERE pool_id = $1 AND identity_id = $2 AND dataset = $3",
                values![&pool, &identity, &name, &new_name],
            )
            .await?;
        }
    }
    Ok(renamed)
}
