//! Recording settings and recorded invocations, written once for both backends. A
//! recording is added only while its function records; the batch that adds it trims the
//! function's recordings to its count in the same transaction.

use super::{Db, Value, columns, values};
use crate::recordings::*;
use crate::*;

/// A function's recording settings, if it records.
pub(crate) async fn settings(db: &impl Db, tenant: &str, name: &str) -> Result<Option<RecordingSettings>> {
    let row = db
        .query_opt(
            "SELECT max_count, max_age_secs, shadow_version FROM function_recording WHERE tenant = $1 AND name = $2",
            values![tenant, name],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let [max_count, max_age_secs, shadow_version] = columns(row)?;
    Ok(Some(RecordingSettings {
        max_count: max_count.int()?,
        max_age_secs: max_age_secs.int()?,
        shadow_version: opt_int(shadow_version)?,
    }))
}

fn opt_int(v: Value) -> Result<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        v => v.int().map(Some),
    }
}

/// Turns a function's recording on (or changes its settings), or off (`None`), which
/// deletes its recordings. Its versions are checked in the transaction that writes.
pub(crate) async fn set(
    tx: &impl Db,
    tenant: &str,
    name: &str,
    settings: Option<&RecordingSettings>,
) -> Result<std::result::Result<(), RecordingRefused>> {
    // Not beside a deploy or a deletion of the tenant's functions.
    tx.take_turns(&format!("deploy/{tenant}")).await?;
    let sql = "SELECT 1 FROM functions WHERE tenant = $1 AND name = $2 LIMIT 1";
    if tx.value(sql, values![tenant, name]).await?.is_none() {
        return Ok(Err(RecordingRefused::NoFunction));
    }
    let Some(s) = settings else {
        tx.execute("DELETE FROM function_recording WHERE tenant = $1 AND name = $2", values![tenant, name]).await?;
        tx.execute("DELETE FROM recordings WHERE tenant = $1 AND name = $2", values![tenant, name]).await?;
        return Ok(Ok(()));
    };
    if let Some(v) = s.shadow_version
        && tx
            .value("SELECT 1 FROM functions WHERE tenant = $1 AND name = $2 AND version = $3", values![tenant, name, v])
            .await?
            .is_none()
    {
        return Ok(Err(RecordingRefused::NoShadowVersion(v)));
    }
    tx.execute(
        "INSERT INTO function_recording (tenant, name, max_count, max_age_secs, shadow_version, modified)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant, name) DO UPDATE SET max_count = excluded.max_count,
             max_age_secs = excluded.max_age_secs, shadow_version = excluded.shadow_version,
             modified = excluded.modified",
        values![tenant, name, s.max_count, s.max_age_secs, s.shadow_version, now()],
    )
    .await?;
    trim_to(tx, tenant, name, s).await?;
    Ok(Ok(()))
}

/// Adds a recording, if its function still records, and trims the function's recordings.
pub(crate) async fn add(tx: &impl Db, tenant: &str, name: &str, r: &Recording) -> Result<()> {
    if settings(tx, tenant, name).await?.is_none() {
        return Ok(());
    }
    // A pool deleted while the recording was on its way takes it along.
    if tx.value("SELECT 1 FROM pools WHERE pool_id = $1", values![&r.pool]).await?.is_none() {
        return Ok(());
    }
    let shadow = r.shadow.as_ref();
    tx.execute(
        "INSERT INTO recordings (tenant, name, at_ms, pool_id, identity_id, dataset, version, outcome, input,
             output, error, seed, clock_secs, wall_us, fuel, shadow_version, shadow_outcome, shadow_output,
             shadow_error, shadow_wall_us, shadow_fuel)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        values![
            tenant,
            name,
            r.at_ms,
            &r.pool,
            &r.identity,
            &r.dataset,
            r.version,
            &r.outcome,
            &r.input,
            r.output.as_ref(),
            r.error.as_ref(),
            &r.seed,
            r.clock_secs,
            r.wall_us,
            r.fuel,
            shadow.map(|s| s.version),
            shadow.map(|s| &s.outcome),
            shadow.and_then(|s| s.output.as_ref()),
            shadow.and_then(|s| s.error.as_ref()),
            shadow.map(|s| s.wall_us),
            shadow.map(|s| s.fuel),
        ],
    )
    .await?;
    Ok(())
}

/// Drops a function's recordings past its count: once per batch of additions (by the
/// index, newest first); those past their age go in the periodic sweep, and are not
/// shown meanwhile.
pub(crate) async fn trim(tx: &impl Db, tenant: &str, name: &str) -> Result<()> {
    let Some(s) = settings(tx, tenant, name).await? else { return Ok(()) };
    trim_to(tx, tenant, name, &s).await
}

async fn trim_to(tx: &impl Db, tenant: &str, name: &str, s: &RecordingSettings) -> Result<()> {
    tx.execute(
        "DELETE FROM recordings WHERE tenant = $1 AND name = $2 AND id <= (
             SELECT id FROM recordings WHERE tenant = $1 AND name = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)",
        values![tenant, name, s.max_count],
    )
    .await?;
    Ok(())
}

/// Drops every function's recordings past their age (the periodic sweep).
pub(crate) async fn sweep(tx: &impl Db, now_ms: i64) -> Result<()> {
    tx.execute(
        "DELETE FROM recordings WHERE EXISTS (SELECT 1 FROM function_recording s
             WHERE s.tenant = recordings.tenant AND s.name = recordings.name
             AND recordings.at_ms < $1 - s.max_age_secs * 1000)",
        values![now_ms],
    )
    .await?;
    Ok(())
}

const COLUMNS: &str = "id, at_ms, pool_id, identity_id, dataset, version, outcome, input, output, error, seed,
     clock_secs, wall_us, fuel, shadow_version, shadow_outcome, shadow_output, shadow_error, shadow_wall_us,
     shadow_fuel";

fn recording_from(row: Vec<Value>) -> Result<Recording> {
    let [
        id,
        at_ms,
        pool,
        identity,
        dataset,
        version,
        outcome,
        input,
        output,
        error,
        seed,
        clock_secs,
        wall_us,
        fuel,
        shadow_version,
        shadow_outcome,
        shadow_output,
        shadow_error,
        shadow_wall_us,
        shadow_fuel,
    ] = columns(row)?;
    let shadow = match opt_int(shadow_version)? {
        None => None,
        Some(version) => Some(ShadowRun {
            version,
            outcome: shadow_outcome.text()?,
            output: shadow_output.opt_text()?,
            error: shadow_error.opt_text()?,
            wall_us: shadow_wall_us.int()?,
            fuel: shadow_fuel.int()?,
        }),
    };
    Ok(Recording {
        id: id.int()?,
        at_ms: at_ms.int()?,
        pool: pool.text()?,
        identity: identity.text()?,
        dataset: dataset.text()?,
        version: version.int()?,
        outcome: outcome.text()?,
        input: input.text()?,
        output: output.opt_text()?,
        error: error.opt_text()?,
        seed: seed.text()?,
        clock_secs: clock_secs.int()?,
        wall_us: wall_us.int()?,
        fuel: fuel.int()?,
        shadow,
    })
}

/// A function's recordings with ids below `before` (all for `None`), newest first, at
/// most `limit`; those past their age are not shown even before the sweep drops them.
pub(crate) async fn list(
    db: &impl Db,
    tenant: &str,
    name: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Recording>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM recordings r WHERE tenant = $1 AND name = $2 AND id < $3
             AND EXISTS (SELECT 1 FROM function_recording s WHERE s.tenant = r.tenant AND s.name = r.name
                 AND r.at_ms >= $5 - s.max_age_secs * 1000)
         ORDER BY id DESC LIMIT $4"
    );
    let rows = db.query(&sql, values![tenant, name, before.unwrap_or(i64::MAX), limit, now_ms()]).await?;
    rows.into_iter().map(recording_from).collect()
}

/// One recording of a function.
pub(crate) async fn get(db: &impl Db, tenant: &str, name: &str, id: i64) -> Result<Option<Recording>> {
    let sql = format!("SELECT {COLUMNS} FROM recordings WHERE tenant = $1 AND name = $2 AND id = $3");
    db.query_opt(&sql, values![tenant, name, id]).await?.map(recording_from).transpose()
}

/// Deletes one recording of a function, or all of them; how many went.
pub(crate) async fn delete(tx: &impl Db, tenant: &str, name: &str, id: Option<i64>) -> Result<u64> {
    match id {
        Some(id) => {
            let sql = "DELETE FROM recordings WHERE tenant = $1 AND name = $2 AND id = $3";
            tx.execute(sql, values![tenant, name, id]).await
        }
        None => tx.execute("DELETE FROM recordings WHERE tenant = $1 AND name = $2", values![tenant, name]).await,
    }
}
