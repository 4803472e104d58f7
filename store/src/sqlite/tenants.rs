//! Tenants, their credentials, identity pools and OpenID Connect issuers.

use super::*;

#[async_trait::async_trait]
impl Tenants for Sqlite {
    /// Queues a sweep of expired temporary credentials and stored update answers.
    fn submit_purge(&self) {
        self.submit(Job::Purge);
    }

    /// The meta value under `key`, creating it with `make` the first time.
    async fn meta_or_insert(&self, key: &str, value: String) -> Result<(String, bool)> {
        owned!(key);
        self.run(move |conn| {
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])?;
            let created = conn.changes() == 1;
            let value =
                conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([&key], |r| r.get(0))?;
            Ok((value, created))
        })
        .await
    }

    /// Stores (or replaces) the root credential. Writes nothing when it is stored already,
    /// so a server starts on a full disk.
    async fn put_root_credential(&self, access_key: &str, secret: &str) -> Result<()> {
        owned!(access_key, secret);
        self.run(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM credentials WHERE kind = 'root' AND access_key != ?1", [&access_key])?;
            tx.execute(
                "INSERT INTO credentials (access_key, secret, kind) VALUES (?1, ?2, 'root')
             ON CONFLICT (access_key) DO UPDATE SET secret = excluded.secret, kind = 'root', tenant = NULL,
                 pool_id = NULL, identity_id = NULL, session_token = NULL, expires = NULL, authenticated = 0
             WHERE NOT (credentials.secret = excluded.secret AND credentials.kind = 'root')",
                params![access_key, secret],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn create_tenant(&self, name: &str) -> Result<Option<AccessKeys>> {
        owned!(name);
        self.run(move |conn| {
            let tx = conn.transaction()?;
            if tx.execute("INSERT OR IGNORE INTO tenants (name, created) VALUES (?1, ?2)", params![name, now()])? == 0 {
                return Ok(None);
            }
            let keys = AccessKeys::generate();
            tx.execute(
                "INSERT INTO credentials (access_key, secret, kind, tenant) VALUES (?1, ?2, 'developer', ?3)",
                params![keys.access_key, keys.secret, name],
            )?;
            tx.commit()?;
            Ok(Some(keys))
        })
        .await
    }

    /// Whether the tenant exists.
    async fn tenant_exists(&self, name: &str) -> Result<bool> {
        owned!(name);
        self.run(move |conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM tenants WHERE name = ?1")?
                .query_row([&name], |_| Ok(()))
                .optional()?
                .is_some())
        })
        .await
    }

    /// Creates an identity pool for `tenant`; returns it.
    async fn create_pool(
        &self,
        tenant: &str,
        region: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<Pool> {
        owned!(tenant, region, name);
        let settings = settings.clone();
        self.run(move |conn| {
        let pool_id = new_cognito_id(&region);
        let json = serde_json::to_string(&settings).unwrap_or_else(|_| "{}".into());
        conn.execute(
            "INSERT INTO pools (pool_id, name, tenant, created, allow_unauthenticated, settings) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![pool_id, name, tenant, now(), allow_unauthenticated, json],
        )?;
        Ok(Pool {
            pool_id,
            tenant: tenant.to_owned(),
            sync_trigger: None,
            name: name.to_owned(),
            allow_unauthenticated,
            settings: settings.clone(),
        })
    }).await
    }

    /// Replaces a pool's name, unauthenticated access and settings.
    async fn update_pool(
        &self,
        pool_id: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<()> {
        owned!(pool_id, name);
        let settings = settings.clone();
        self.run(move |conn| {
            let json = serde_json::to_string(&settings).unwrap_or_else(|_| "{}".into());
            conn.execute(
                "UPDATE pools SET name = ?2, allow_unauthenticated = ?3, settings = ?4 WHERE pool_id = ?1",
                params![pool_id, name, allow_unauthenticated, json],
            )?;
            Ok(())
        })
        .await
    }

    /// The credential with `access_key`. An identity's credentials exist only while the
    /// identity does and has not been merged into another: they stop working at once.
    async fn credential(&self, access_key: &str) -> Result<Option<Credential>> {
        owned!(access_key);
        self.run(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT c.secret, c.kind, c.tenant, c.pool_id, c.identity_id, c.session_token, c.expires
                 FROM credentials c LEFT JOIN identities i ON i.identity_id = c.identity_id
                 LEFT JOIN pools p ON p.pool_id = i.pool_id
                 WHERE c.access_key = ?1
                 AND (c.kind != 'identity' OR (i.identity_id IS NOT NULL AND i.merged_into IS NULL
                      AND (c.authenticated = 1 OR p.allow_unauthenticated = 1)))",
                )?
                .query_row([&access_key], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                    ))
                })
                .optional()?;
            Ok(row.and_then(|(secret, kind, tenant, pool_id, identity_id, session_token, expires)| {
                let principal = match kind.as_str() {
                    "root" => Principal::Root,
                    "developer" => Principal::Developer { tenant: tenant? },
                    "identity" => Principal::Identity { pool_id: pool_id?, identity_id: identity_id? },
                    _ => return None,
                };
                Some(Credential { secret, principal, session_token, expires })
            }))
        })
        .await
    }

    async fn issue_identity_credentials(
        &self,
        pool_id: &str,
        identity_id: &str,
        authenticated: bool,
        ttl_secs: i64,
    ) -> Result<IssuedCredentials> {
        owned!(pool_id, identity_id);
        self.run(move |conn| {
        let c = IssuedCredentials::generate(ttl_secs);
        conn.execute(
            "INSERT INTO credentials (access_key, secret, kind, pool_id, identity_id, session_token, expires, authenticated)
             VALUES (?1, ?2, 'identity', ?3, ?4, ?5, ?6, ?7)",
            params![c.access_key, c.secret, pool_id, identity_id, c.session_token, c.expires, authenticated],
        )?;
        Ok(c)
    }).await
    }

    /// The pool with `pool_id`.
    async fn pool(&self, pool_id: &str) -> Result<Option<Pool>> {
        owned!(pool_id);
        self.run(move |conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {POOL_COLUMNS} FROM pools WHERE pool_id = ?1"))?
                .query_row([&pool_id], Self::pool_from_row)
                .optional()?)
        })
        .await
    }

    /// Up to `limit` pools (of `tenant`, or all for `None`) with ids after `after`, in id
    /// order.
    async fn pools_after(&self, tenant: Option<&str>, after: &str, limit: usize) -> Result<Vec<Pool>> {
        owned!(after);
        let tenant = tenant.map(str::to_owned);
        self.run(move |conn| {
        let mut stmt = conn.prepare_cached(
            &format!(
                "SELECT {POOL_COLUMNS} FROM pools WHERE (?1 IS NULL OR tenant = ?1) AND pool_id > ?2 ORDER BY pool_id LIMIT ?3"
            ),
        )?;
        let rows = stmt.query_map(params![tenant, after, limit as i64], Self::pool_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }).await
    }

    async fn sync_triggers(&self) -> Result<Vec<SyncTriggerMapping>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare("SELECT tenant, sync_trigger FROM pools WHERE sync_trigger IS NOT NULL")?;
            let rows = stmt.query_map([], |r| Ok(SyncTriggerMapping { tenant: r.get(0)?, mapping: r.get(1)? }))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Sets (or with `None` removes) the pool's SyncTrigger mapping.
    async fn set_sync_trigger(&self, pool_id: &str, function: Option<&str>) -> Result<()> {
        owned!(pool_id);
        let function = function.map(str::to_owned);
        self.run(move |conn| {
            conn.execute("UPDATE pools SET sync_trigger = ?2 WHERE pool_id = ?1", params![pool_id, function])?;
            Ok(())
        })
        .await
    }

    /// Deletes a pool with everything in it: identities, logins, datasets, records,
    /// credentials.
    async fn delete_pool(&self, pool: &str) -> Result<bool> {
        owned!(pool);
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for table in ["records", "datasets", "logins", "credentials", "identities"] {
                tx.execute(&format!("DELETE FROM {table} WHERE pool_id = ?1"), [&pool])?;
            }
            let n = tx.execute("DELETE FROM pools WHERE pool_id = ?1", [&pool])?;
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    /// Registers (or replaces) a tenant's OpenID Connect issuer.
    async fn put_issuer(&self, issuer: &Issuer) -> Result<()> {
        let issuer = issuer.clone();
        self.run(move |conn| {
        let audiences = serde_json::to_string(&issuer.audiences).map_err(|e| StoreError::Other(e.to_string()))?;
        conn.execute(
            "INSERT OR REPLACE INTO oidc_issuers (tenant, issuer, audiences, jwks, jwks_file, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![issuer.tenant, issuer.issuer, audiences, issuer.jwks, issuer.jwks_file, now()],
        )?;
        Ok(())
    }).await
    }

    /// A tenant's registered issuer.
    async fn issuer(&self, tenant: &str, issuer: &str) -> Result<Option<Issuer>> {
        owned!(tenant, issuer);
        self.run(move |conn| {
            Ok(conn
            .prepare_cached(
                "SELECT tenant, issuer, audiences, jwks, jwks_file FROM oidc_issuers WHERE tenant = ?1 AND issuer = ?2",
            )?
            .query_row([tenant, issuer], |r| {
                let audiences: String = r.get(2)?;
                Ok(Issuer {
                    tenant: r.get(0)?,
                    issuer: r.get(1)?,
                    audiences: serde_json::from_str(&audiences).unwrap_or_default(),
                    jwks: r.get(3)?,
                    jwks_file: r.get(4)?,
                })
            })
            .optional()?)
        })
        .await
    }
}
