//! Trigger functions, their versions and their recent invocations, written once for both
//! backends. A deploy checks its limits and the version it expects in the transaction
//! that stores it, so racing deploys cannot pass them.

use super::{Db, Value, columns, values};
use crate::*;

/// The version the next deploy of a function will get (if no other deploy of it comes
/// first).
pub(crate) async fn next_function_version(db: &impl Db, tenant: &str, name: &str) -> Result<i64> {
    db.value(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM functions WHERE tenant = $1 AND name = $2",
        values![tenant, name],
    )
    .await?
    .map_or(Ok(1), Value::int)
}

/// Stores a new version of a tenant's function — its component, and for a JavaScript
/// function its script and handler; answers the version, or the limit it would pass.
pub(crate) async fn deploy_function(
    tx: &impl Db,
    tenant: &str,
    name: &str,
    digest: &str,
    wasm: &[u8],
    script: Option<&Script>,
    expected_latest: Option<i64>,
) -> Result<std::result::Result<i64, DeployRefused>> {
    // Deploys of one tenant, on any node, one at a time.
    tx.take_turns(&format!("deploy/{tenant}")).await?;
    let version = next_function_version(tx, tenant, name).await?;
    if expected_latest.is_some_and(|e| e != version - 1) {
        return Ok(Err(DeployRefused::Changed { latest: version - 1 }));
    }
    if version as usize > synctrig_core::limits::MAX_VERSIONS_PER_FUNCTION {
        return Ok(Err(DeployRefused::Versions));
    }
    if version == 1 {
        let functions = tx
            .value("SELECT COUNT(DISTINCT name) FROM functions WHERE tenant = $1", values![tenant])
            .await?
            .map_or(Ok(0), Value::int)?;
        if functions as usize >= synctrig_core::limits::MAX_FUNCTIONS_PER_TENANT {
            return Ok(Err(DeployRefused::Functions));
        }
    }
    let (source, handler) = script.map(|s| (&s.source, &s.handler)).unzip();
    // A JSON object, absent when there are none.
    let environment = script
        .filter(|s| !s.environment.is_empty())
        .map(|s| serde_json::to_string(&s.environment))
        .transpose()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    tx.execute(
        "INSERT INTO functions (tenant, name, version, digest, wasm, created, source, handler, environment)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        values![tenant, name, version, digest, wasm, now(), source, handler, environment.as_ref()],
    )
    .await?;
    Ok(Ok(version))
}

/// The limit a deploy of `tenant`'s function `name` would pass now, if any: checked before
/// the work of compiling (and again in the transaction that stores it).
pub(crate) async fn function_limit(db: &impl Db, tenant: &str, name: &str) -> Result<Option<DeployRefused>> {
    let row = db
        .query_opt(
            "SELECT (SELECT COUNT(*) FROM functions WHERE tenant = $1 AND name = $2),
                    (SELECT COUNT(DISTINCT name) FROM functions WHERE tenant = $1)",
            values![tenant, name],
        )
        .await?
        .ok_or_else(|| StoreError::Other("a count answered no row".into()))?;
    let [versions, functions] = columns(row)?;
    Ok(DeployRefused::limit(versions.int()?, functions.int()?))
}

/// A JavaScript function version's script and handler.
pub(crate) async fn function_script(db: &impl Db, tenant: &str, name: &str, version: i64) -> Result<Option<Script>> {
    let row = db
        .query_opt(
            "SELECT source, handler, environment FROM functions
             WHERE tenant = $1 AND name = $2 AND version = $3 AND source IS NOT NULL",
            values![tenant, name, version],
        )
        .await?;
    row.map(|row| {
        let [source, handler, environment] = columns(row)?;
        let environment = match environment.opt_text()? {
            Some(json) => {
                serde_json::from_str(&json).map_err(|e| StoreError::Other(format!("a stored environment: {e}")))?
            }
            None => Default::default(),
        };
        Ok(Script { source: source.text()?, handler: handler.text()?, environment })
    })
    .transpose()
}

/// A function's version `version`, or its latest.
pub(crate) async fn function(
    db: &impl Db,
    tenant: &str,
    name: &str,
    version: Option<i64>,
) -> Result<Option<FunctionHead>> {
    let row = db
        .query_opt(
            "SELECT version, digest FROM functions
             WHERE tenant = $1 AND name = $2 AND (CAST($3 AS BIGINT) IS NULL OR version = $3)
             ORDER BY version DESC LIMIT 1",
            values![tenant, name, version],
        )
        .await?;
    row.map(|row| {
        let [version, digest] = columns(row)?;
        Ok(FunctionHead { version: version.int()?, digest: digest.text()? })
    })
    .transpose()
}

/// The component bytes of a function version.
pub(crate) async fn function_wasm(db: &impl Db, tenant: &str, name: &str, version: i64) -> Result<Option<Vec<u8>>> {
    db.value(
        "SELECT wasm FROM functions WHERE tenant = $1 AND name = $2 AND version = $3",
        values![tenant, name, version],
    )
    .await?
    .map(Value::blob)
    .transpose()
}

/// A tenant's functions by name, each with its latest version.
pub(crate) async fn functions(db: &impl Db, tenant: &str) -> Result<Vec<FunctionSummary>> {
    let rows = db
        .query(
            "SELECT f.name, f.version, f.created, f.source IS NOT NULL FROM functions f
             WHERE f.tenant = $1 AND f.version = (SELECT MAX(version) FROM functions g
                                                  WHERE g.tenant = f.tenant AND g.name = f.name)
             ORDER BY f.name",
            values![tenant],
        )
        .await?;
    rows.into_iter()
        .map(|row| {
            let [name, latest_version, modified, script] = columns(row)?;
            Ok(FunctionSummary {
                name: name.text()?,
                latest_version: latest_version.int()?,
                modified: modified.int()?,
                script: script.flag()?,
            })
        })
        .collect()
}

/// Every version of a function, newest first (without their bytes).
pub(crate) async fn function_versions(db: &impl Db, tenant: &str, name: &str) -> Result<Vec<FunctionVersion>> {
    let rows = db
        .query(
            "SELECT version, digest, created, length(wasm), source IS NOT NULL, handler FROM functions
             WHERE tenant = $1 AND name = $2 ORDER BY version DESC",
            values![tenant, name],
        )
        .await?;
    rows.into_iter()
        .map(|row| {
            let [version, digest, created, bytes, script, handler] = columns(row)?;
            Ok(FunctionVersion {
                version: version.int()?,
                digest: digest.text()?,
                created: created.int()?,
                component_bytes: bytes.int()?,
                script: script.flag()?,
                handler: handler.opt_text()?,
            })
        })
        .collect()
}

/// The latest invocations of a function, newest first.
pub(crate) async fn invocations(db: &impl Db, tenant: &str, name: &str, limit: i64) -> Result<Vec<InvocationRow>> {
    let rows = db
        .query(
            "SELECT at, version, outcome, wall_us, fuel, peak_memory, log FROM invocations
             WHERE tenant = $1 AND name = $2 ORDER BY id DESC LIMIT $3",
            values![tenant, name, limit],
        )
        .await?;
    rows.into_iter()
        .map(|row| {
            let [at, version, outcome, wall_us, fuel, peak_memory, log] = columns(row)?;
            Ok(InvocationRow {
                at: at.int()?,
                version: version.int()?,
                outcome: outcome.text()?,
                wall_us: wall_us.int()?,
                fuel: fuel.int()?,
                peak_memory_bytes: peak_memory.int()?,
                log: log.text()?,
            })
        })
        .collect()
}

/// The function a SyncTrigger mapping names: `[arn:aws:lambda:<region>:<account>:function:]<name>[:<qualifier>]`.
pub(crate) fn mapped_function(mapping: &str) -> &str {
    let rest = match mapping.strip_prefix("arn:aws:lambda:") {
        Some(arn) => arn.splitn(4, ':').nth(3).unwrap_or(""),
        None => mapping,
    };
    rest.split(':').next().unwrap_or("")
}

/// Deletes a function with all it has: its versions, aliases and their figures and
/// decisions, invocation log, recording settings and recordings — unless a pool's
/// SyncTrigger names it. Answers how many versions it had.
pub(crate) async fn delete_function<D: Db>(
    tx: &D,
    tenant: &str,
    name: &str,
) -> Result<std::result::Result<i64, DeleteRefused>> {
    // Not beside a deploy of the tenant's or a change of one of the function's aliases.
    tx.take_turns(&format!("deploy/{tenant}")).await?;
    tx.take_turns(&format!("alias/{tenant}/{name}")).await?;
    // Its versions locked first: a SetCognitoEvents naming it holds one FOR SHARE until it
    // commits, so the pools read next show its mapping, and one that comes later finds
    // no version.
    let sql = format!("SELECT version FROM functions WHERE tenant = $1 AND name = $2{}", D::FOR_UPDATE);
    let versions = tx.query(&sql, values![tenant, name]).await?.len() as i64;
    if versions == 0 {
        return Ok(Err(DeleteRefused::Missing));
    }
    let pools = tx
        .query(
            "SELECT pool_id, sync_trigger FROM pools WHERE tenant = $1 AND sync_trigger IS NOT NULL ORDER BY pool_id",
            values![tenant],
        )
        .await?;
    for row in pools {
        let [pool, mapping] = columns(row)?;
        if mapped_function(&mapping.text()?) == name {
            return Ok(Err(DeleteRefused::InUse { pool: pool.text()? }));
        }
    }
    for table in [
        "functions",
        "function_aliases",
        "alias_figures",
        "alias_histograms",
        "alias_decisions",
        "invocations",
        "function_recording",
        "recordings",
    ] {
        tx.execute(&format!("DELETE FROM {table} WHERE tenant = $1 AND name = $2"), values![tenant, name]).await?;
    }
    Ok(Ok(versions))
}
