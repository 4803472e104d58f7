//! Tenants, their credentials, identity pools and OpenID Connect issuers, written once for
//! both backends.

use super::{Db, Value, columns, values};
use crate::*;

const POOL_COLUMNS: &str = "pool_id, tenant, sync_trigger, name, allow_unauthenticated, settings";

fn pool_from(row: Vec<Value>) -> Result<Pool> {
    let [pool_id, tenant, sync_trigger, name, allow_unauthenticated, settings] = columns(row)?;
    Ok(Pool {
        pool_id: pool_id.text()?,
        tenant: tenant.text()?,
        sync_trigger: sync_trigger.opt_text()?,
        name: name.text()?,
        allow_unauthenticated: allow_unauthenticated.flag()?,
        // Written by this program from the same type.
        settings: serde_json::from_str(&settings.text()?).unwrap_or_default(),
    })
}

fn settings_json(settings: &PoolSettings) -> String {
    serde_json::to_string(settings).unwrap_or_else(|_| "{}".into())
}

/// The meta value under `key`, stored as `value` the first time; and whether it was.
pub(crate) async fn meta_or_insert(db: &impl Db, key: &str, value: &str) -> Result<(String, bool)> {
    let created = db
        .execute("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", values![key, value])
        .await?
        == 1;
    let stored = db
        .value("SELECT value FROM meta WHERE key = $1", values![key])
        .await?
        .ok_or_else(|| StoreError::Other(format!("the meta value {key} vanished")))?;
    Ok((stored.text()?, created))
}

/// Stores (or replaces) the root credential. Writes nothing when it is stored already, so
/// a server starts on a full disk.
pub(crate) async fn put_root_credential(tx: &impl Db, access_key: &str, secret: &str) -> Result<()> {
    tx.execute("DELETE FROM credentials WHERE kind = 'root' AND access_key != $1", values![access_key]).await?;
    tx.execute(
        "INSERT INTO credentials (access_key, secret, kind) VALUES ($1, $2, 'root')
         ON CONFLICT (access_key) DO UPDATE SET secret = excluded.secret, kind = 'root', tenant = NULL,
             pool_id = NULL, identity_id = NULL, session_token = NULL, expires = NULL, authenticated = 0
         WHERE NOT (credentials.secret = excluded.secret AND credentials.kind = 'root')",
        values![access_key, secret],
    )
    .await?;
    Ok(())
}

/// Creates a tenant with its developer credential, or answers `None` if it exists.
pub(crate) async fn create_tenant(tx: &impl Db, name: &str) -> Result<Option<AccessKeys>> {
    let inserted = tx
        .execute(
            "INSERT INTO tenants (name, created) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            values![name, now()],
        )
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    let keys = AccessKeys::generate();
    tx.execute(
        "INSERT INTO credentials (access_key, secret, kind, tenant) VALUES ($1, $2, 'developer', $3)",
        values![&keys.access_key, &keys.secret, name],
    )
    .await?;
    Ok(Some(keys))
}

/// Whether the tenant exists.
pub(crate) async fn tenant_exists(db: &impl Db, name: &str) -> Result<bool> {
    Ok(db.query_opt("SELECT 1 FROM tenants WHERE name = $1", values![name]).await?.is_some())
}

/// Creates an identity pool for `tenant`.
pub(crate) async fn create_pool(
    db: &impl Db,
    tenant: &str,
    region: &str,
    name: &str,
    allow_unauthenticated: bool,
    settings: &PoolSettings,
) -> Result<Pool> {
    let pool_id = new_cognito_id(region);
    db.execute(
        "INSERT INTO pools (pool_id, name, tenant, created, allow_unauthenticated, settings) VALUES ($1, $2, $3, $4, $5, $6)",
        values![&pool_id, name, tenant, now(), allow_unauthenticated, settings_json(settings).as_str()],
    )
    .await?;
    Ok(Pool {
        pool_id,
        tenant: tenant.to_owned(),
        sync_trigger: None,
        name: name.to_owned(),
        allow_unauthenticated,
        settings: settings.clone(),
    })
}

/// Replaces a pool's name, unauthenticated access and settings.
pub(crate) async fn update_pool(
    db: &impl Db,
    pool_id: &str,
    name: &str,
    allow_unauthenticated: bool,
    settings: &PoolSettings,
) -> Result<()> {
    db.execute(
        "UPDATE pools SET name = $2, allow_unauthenticated = $3, settings = $4 WHERE pool_id = $1",
        values![pool_id, name, allow_unauthenticated, settings_json(settings).as_str()],
    )
    .await?;
    Ok(())
}

/// The credential with `access_key`. An identity's credentials exist only while the
/// identity does and has not been merged into another (they stop working at once), and,
/// unless it signed in, while its pool allows unauthenticated identities.
pub(crate) async fn credential(db: &impl Db, access_key: &str) -> Result<Option<Credential>> {
    let row = db
        .query_opt(
            "SELECT c.secret, c.kind, c.tenant, c.pool_id, c.identity_id, c.session_token, c.expires
             FROM credentials c LEFT JOIN identities i ON i.identity_id = c.identity_id
             LEFT JOIN pools p ON p.pool_id = i.pool_id
             WHERE c.access_key = $1
             AND (c.kind != 'identity' OR (i.identity_id IS NOT NULL AND i.merged_into IS NULL
                  AND (c.authenticated = 1 OR p.allow_unauthenticated = 1)))",
            values![access_key],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let [secret, kind, tenant, pool_id, identity_id, session_token, expires] = columns(row)?;
    let principal = match (kind.text()?.as_str(), tenant.opt_text()?, pool_id.opt_text()?, identity_id.opt_text()?) {
        ("root", ..) => Principal::Root,
        ("developer", Some(tenant), ..) => Principal::Developer { tenant },
        ("identity", _, Some(pool_id), Some(identity_id)) => Principal::Identity { pool_id, identity_id },
        _ => return Ok(None),
    };
    let expires = match expires {
        Value::Null => None,
        v => Some(v.int()?),
    };
    Ok(Some(Credential { secret: secret.text()?, principal, session_token: session_token.opt_text()?, expires }))
}

/// Issues temporary credentials for an identity.
pub(crate) async fn issue_identity_credentials(
    db: &impl Db,
    pool_id: &str,
    identity_id: &str,
    authenticated: bool,
    ttl_secs: i64,
) -> Result<IssuedCredentials> {
    let c = IssuedCredentials::generate(ttl_secs);
    db.execute(
        "INSERT INTO credentials (access_key, secret, kind, pool_id, identity_id, session_token, expires, authenticated)
         VALUES ($1, $2, 'identity', $3, $4, $5, $6, $7)",
        values![&c.access_key, &c.secret, pool_id, identity_id, &c.session_token, c.expires, authenticated],
    )
    .await?;
    Ok(c)
}

/// The pool with `pool_id`.
pub(crate) async fn pool(db: &impl Db, pool_id: &str) -> Result<Option<Pool>> {
    let sql = format!("SELECT {POOL_COLUMNS} FROM pools WHERE pool_id = $1");
    db.query_opt(&sql, values![pool_id]).await?.map(pool_from).transpose()
}

/// Up to `limit` pools (of `tenant`, or all for `None`) with ids after `after`, in id order.
pub(crate) async fn pools_after(db: &impl Db, tenant: Option<&str>, after: &str, limit: usize) -> Result<Vec<Pool>> {
    let sql = format!(
        "SELECT {POOL_COLUMNS} FROM pools WHERE (CAST($1 AS TEXT) IS NULL OR tenant = $1) AND pool_id > $2
         ORDER BY pool_id LIMIT $3"
    );
    db.query(&sql, values![tenant, after, limit as i64]).await?.into_iter().map(pool_from).collect()
}

/// Every pool's SyncTrigger mapping, with its tenant.
pub(crate) async fn sync_triggers(db: &impl Db) -> Result<Vec<SyncTriggerMapping>> {
    let rows = db.query("SELECT tenant, sync_trigger FROM pools WHERE sync_trigger IS NOT NULL", values![]).await?;
    rows.into_iter()
        .map(|row| {
            let [tenant, mapping] = columns(row)?;
            Ok(SyncTriggerMapping { tenant: tenant.text()?, mapping: mapping.text()? })
        })
        .collect()
}

/// Sets (or with `None` removes) the pool's SyncTrigger mapping; when it names an alias,
/// only if the alias exists, which it then holds (FOR SHARE) against a delete until the
/// transaction ends.
pub(crate) async fn set_sync_trigger<D: Db>(
    tx: &D,
    pool_id: &str,
    mapping: Option<&str>,
    function: Option<(&str, &str, Option<&str>)>,
) -> Result<bool> {
    // The function (and alias) it names, held until this commits: a deletion waits, then
    // sees the mapping; or came first, and then they are gone.
    if let Some((tenant, function, alias)) = function {
        let sql = format!("SELECT 1 FROM functions WHERE tenant = $1 AND name = $2 LIMIT 1{}", D::FOR_SHARE);
        if tx.value(&sql, values![tenant, function]).await?.is_none() {
            return Ok(false);
        }
        if let Some(alias) = alias {
            let sql = format!(
                "SELECT 1 FROM function_aliases WHERE tenant = $1 AND name = $2 AND alias = $3{}",
                D::FOR_SHARE
            );
            if tx.value(&sql, values![tenant, function, alias]).await?.is_none() {
                return Ok(false);
            }
        }
    }
    tx.execute("UPDATE pools SET sync_trigger = $2 WHERE pool_id = $1", values![pool_id, mapping]).await?;
    Ok(true)
}

/// Deletes a pool with everything in it: identities, logins, datasets, records,
/// credentials. Answers whether it existed.
pub(crate) async fn delete_pool(tx: &impl Db, pool: &str) -> Result<bool> {
    // Identities first: where rows are locked, deleting them waits for updates in flight,
    // and the deletes that follow see what those wrote.
    tx.execute("DELETE FROM identities WHERE pool_id = $1", values![pool]).await?;
    tx.delete_records("pool_id = $1", values![pool]).await?;
    for table in ["datasets", "logins", "credentials", "recordings", "pool_usage"] {
        tx.execute(&format!("DELETE FROM {table} WHERE pool_id = $1"), values![pool]).await?;
    }
    super::streams::forget_pool(tx, pool).await?;
    Ok(tx.execute("DELETE FROM pools WHERE pool_id = $1", values![pool]).await? == 1)
}

/// Registers (or replaces) a tenant's OpenID Connect issuer.
pub(crate) async fn put_issuer(db: &impl Db, issuer: &Issuer) -> Result<()> {
    let audiences = serde_json::to_string(&issuer.audiences).map_err(|e| StoreError::Other(e.to_string()))?;
    db.execute(
        "INSERT INTO oidc_issuers (tenant, issuer, audiences, jwks, jwks_file, created) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant, issuer) DO UPDATE SET audiences = excluded.audiences, jwks = excluded.jwks,
             jwks_file = excluded.jwks_file, created = excluded.created",
        values![&issuer.tenant, &issuer.issuer, audiences.as_str(), &issuer.jwks, issuer.jwks_file.as_ref(), now()],
    )
    .await?;
    Ok(())
}

/// A tenant's registered issuer.
pub(crate) async fn issuer(db: &impl Db, tenant: &str, issuer: &str) -> Result<Option<Issuer>> {
    let row = db
        .query_opt(
            "SELECT tenant, issuer, audiences, jwks, jwks_file FROM oidc_issuers WHERE tenant = $1 AND issuer = $2",
            values![tenant, issuer],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let [tenant, issuer, audiences, jwks, jwks_file] = columns(row)?;
    Ok(Some(Issuer {
        tenant: tenant.text()?,
        issuer: issuer.text()?,
        audiences: serde_json::from_str(&audiences.text()?).unwrap_or_default(),
        jwks: jwks.text()?,
        jwks_file: jwks_file.opt_text()?,
    }))
}
