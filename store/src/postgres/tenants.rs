//! Tenants, their credentials, identity pools and OpenID Connect issuers.

use super::*;

#[async_trait::async_trait]
impl Tenants for Postgres {
    fn submit_purge(&self) {
        let _ = self.background.try_send(Background::Purge);
    }

    async fn meta_or_insert(&self, key: &str, value: String) -> Result<(String, bool)> {
        let c = self.client().await?;
        let created =
            execute(&c, "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", &[&key, &value])
                .await?
                == 1;
        let value: String = query_one(&c, "SELECT value FROM meta WHERE key = $1", &[&key]).await?.try_get(0)?;
        Ok((value, created))
    }

    async fn put_root_credential(&self, access_key: &str, secret: &str) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        execute(&tx, "DELETE FROM credentials WHERE kind = 'root' AND access_key != $1", &[&access_key]).await?;
        execute(
            &tx,
            "INSERT INTO credentials (access_key, secret, kind) VALUES ($1, $2, 'root')
             ON CONFLICT (access_key) DO UPDATE SET secret = EXCLUDED.secret, kind = 'root', tenant = NULL,
                 pool_id = NULL, identity_id = NULL, session_token = NULL, expires = NULL, authenticated = 0",
            &[&access_key, &secret],
        )
        .await?;
        self.commit_change(tx, cache::Kinds::CREDENTIALS).await
    }

    async fn create_tenant(&self, name: &str) -> Result<Option<AccessKeys>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let inserted = execute(
            &tx,
            "INSERT INTO tenants (name, created) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &now()],
        )
        .await?;
        if inserted == 0 {
            return Ok(None);
        }
        let keys = AccessKeys::generate();
        execute(
            &tx,
            "INSERT INTO credentials (access_key, secret, kind, tenant) VALUES ($1, $2, 'developer', $3)",
            &[&keys.access_key, &keys.secret, &name],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(keys))
    }

    async fn tenant_exists(&self, name: &str) -> Result<bool> {
        let c = self.client().await?;
        Ok(query_opt(&c, "SELECT 1 FROM tenants WHERE name = $1", &[&name]).await?.is_some())
    }

    async fn create_pool(
        &self,
        tenant: &str,
        region: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<Pool> {
        let pool_id = new_cognito_id(region);
        let json = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO pools (pool_id, name, tenant, created, allow_unauthenticated, settings) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&pool_id, &name, &tenant, &now(), &(allow_unauthenticated as i64), &json],
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

    async fn update_pool(
        &self,
        pool_id: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<()> {
        let json = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        execute(
            &tx,
            "UPDATE pools SET name = $2, allow_unauthenticated = $3, settings = $4 WHERE pool_id = $1",
            &[&pool_id, &name, &(allow_unauthenticated as i64), &json],
        )
        .await?;
        self.commit_change(tx, cache::Kinds::POOLS.and(cache::Kinds::CREDENTIALS)).await
    }

    async fn credential(&self, access_key: &str) -> Result<Option<Credential>> {
        self.through::<cache::Credentials>(access_key.to_owned(), self.read_credential(access_key)).await
    }

    async fn issue_identity_credentials(
        &self,
        pool_id: &str,
        identity_id: &str,
        authenticated: bool,
        ttl_secs: i64,
    ) -> Result<IssuedCredentials> {
        let issued = IssuedCredentials::generate(ttl_secs);
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO credentials (access_key, secret, kind, pool_id, identity_id, session_token, expires, authenticated)
             VALUES ($1, $2, 'identity', $3, $4, $5, $6, $7)",
            &[
                &issued.access_key,
                &issued.secret,
                &pool_id,
                &identity_id,
                &issued.session_token,
                &issued.expires,
                &(authenticated as i64),
            ],
        )
        .await?;
        Ok(issued)
    }

    async fn pool(&self, pool_id: &str) -> Result<Option<Pool>> {
        let read = async {
            let c = self.client().await?;
            let sql = format!("SELECT {POOL_COLUMNS} FROM pools WHERE pool_id = $1");
            query_opt(&c, &sql, &[&pool_id]).await?.as_ref().map(pool_from_row).transpose()
        };
        self.through::<cache::Pools>(pool_id.to_owned(), read).await
    }

    async fn pools_after(&self, tenant: Option<&str>, after: &str, limit: usize) -> Result<Vec<Pool>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {POOL_COLUMNS} FROM pools WHERE ($1::TEXT IS NULL OR tenant = $1) AND pool_id > $2
             ORDER BY pool_id LIMIT $3"
        );
        query(&c, &sql, &[&tenant, &after, &(limit as i64)]).await?.iter().map(pool_from_row).collect()
    }

    async fn sync_triggers(&self) -> Result<Vec<SyncTriggerMapping>> {
        let c = self.client().await?;
        query(&c, "SELECT tenant, sync_trigger FROM pools WHERE sync_trigger IS NOT NULL", &[])
            .await?
            .iter()
            .map(|r| Ok(SyncTriggerMapping { tenant: r.try_get(0)?, mapping: r.try_get(1)? }))
            .collect()
    }

    async fn set_sync_trigger(&self, pool_id: &str, function: Option<&str>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        execute(&tx, "UPDATE pools SET sync_trigger = $2 WHERE pool_id = $1", &[&pool_id, &function]).await?;
        self.commit_change(tx, cache::Kinds::POOLS).await
    }

    async fn delete_pool(&self, pool: &str) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Identities first: deleting them waits for updates in flight, and the deletes
        // that follow see what those wrote.
        for table in ["identities", "records", "datasets", "logins", "credentials"] {
            execute(&tx, &format!("DELETE FROM {table} WHERE pool_id = $1"), &[&pool]).await?;
        }
        let n = execute(&tx, "DELETE FROM pools WHERE pool_id = $1", &[&pool]).await?;
        self.commit_change(tx, cache::Kinds::ALL).await?;
        Ok(n == 1)
    }

    async fn put_issuer(&self, issuer: &Issuer) -> Result<()> {
        let audiences = serde_json::to_string(&issuer.audiences).map_err(other)?;
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO oidc_issuers (tenant, issuer, audiences, jwks, jwks_file, created) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant, issuer) DO UPDATE SET audiences = EXCLUDED.audiences, jwks = EXCLUDED.jwks,
                 jwks_file = EXCLUDED.jwks_file, created = EXCLUDED.created",
            &[&issuer.tenant, &issuer.issuer, &audiences, &issuer.jwks, &issuer.jwks_file, &now()],
        )
        .await?;
        Ok(())
    }

    async fn issuer(&self, tenant: &str, issuer: &str) -> Result<Option<Issuer>> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            "SELECT tenant, issuer, audiences, jwks, jwks_file FROM oidc_issuers WHERE tenant = $1 AND issuer = $2",
            &[&tenant, &issuer],
        )
        .await?;
        let Some(r) = row else { return Ok(None) };
        let audiences: String = r.try_get(2)?;
        Ok(Some(Issuer {
            tenant: r.try_get(0)?,
            issuer: r.try_get(1)?,
            audiences: serde_json::from_str(&audiences).unwrap_or_default(),
            jwks: r.try_get(3)?,
            jwks_file: r.try_get(4)?,
        }))
    }
}
