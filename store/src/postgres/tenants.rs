//! Tenants, their credentials, identity pools and OpenID Connect issuers: the rules are
//! [`sql::tenants`]'; this is where they get a connection or a transaction, and what a
//! change must tell the other nodes' caches.

use super::*;
use sql::tenants as rules;

#[async_trait::async_trait]
impl Tenants for Postgres {
    fn submit_purge(&self) {
        let _ = self.background.try_send(Background::Purge);
    }

    async fn checkpoint(&self) -> Result<bool> {
        // PostgreSQL checkpoints its own log; what this node holds is the invocation rows
        // waiting to be written (at shutdown they would be lost).
        self.flush_background().await;
        Ok(true)
    }

    async fn meta_or_insert(&self, key: &str, value: String) -> Result<(String, bool)> {
        rules::meta_or_insert(&Pg(&self.client().await?), key, &value).await
    }

    async fn put_root_credential(&self, access_key: &str, secret: &str) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        rules::put_root_credential(&Pg(&tx), access_key, secret).await?;
        self.commit_change(tx, cache::Kinds::CREDENTIALS).await
    }

    async fn create_tenant(&self, name: &str) -> Result<Option<AccessKeys>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let keys = rules::create_tenant(&Pg(&tx), name).await?;
        tx.commit().await?;
        Ok(keys)
    }

    async fn tenant_exists(&self, name: &str) -> Result<bool> {
        rules::tenant_exists(&Pg(&self.client().await?), name).await
    }

    async fn create_pool(
        &self,
        tenant: &str,
        region: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<Pool> {
        rules::create_pool(&Pg(&self.client().await?), tenant, region, name, allow_unauthenticated, settings).await
    }

    async fn update_pool(
        &self,
        pool_id: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        rules::update_pool(&Pg(&tx), pool_id, name, allow_unauthenticated, settings).await?;
        self.commit_change(tx, cache::Kinds::POOLS.and(cache::Kinds::CREDENTIALS)).await
    }

    async fn credential(&self, access_key: &str) -> Result<Option<Credential>> {
        let read = async { rules::credential(&Pg(&self.client().await?), access_key).await };
        self.through::<cache::Credentials>(access_key.to_owned(), read).await
    }

    async fn issue_identity_credentials(
        &self,
        pool_id: &str,
        identity_id: &str,
        authenticated: bool,
        ttl_secs: i64,
    ) -> Result<IssuedCredentials> {
        let c = self.client().await?;
        rules::issue_identity_credentials(&Pg(&c), pool_id, identity_id, authenticated, ttl_secs).await
    }

    async fn pool(&self, pool_id: &str) -> Result<Option<Pool>> {
        let read = async { rules::pool(&Pg(&self.client().await?), pool_id).await };
        self.through::<cache::Pools>(pool_id.to_owned(), read).await
    }

    async fn pools_after(&self, tenant: Option<&str>, after: &str, limit: usize) -> Result<Vec<Pool>> {
        rules::pools_after(&Pg(&self.client().await?), tenant, after, limit).await
    }

    async fn sync_triggers(&self) -> Result<Vec<SyncTriggerMapping>> {
        rules::sync_triggers(&Pg(&self.client().await?)).await
    }

    async fn set_sync_trigger(
        &self,
        pool_id: &str,
        mapping: Option<&str>,
        function: Option<(&str, &str, Option<&str>)>,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let set = rules::set_sync_trigger(&Pg(&tx), pool_id, mapping, function).await?;
        self.commit_change(tx, cache::Kinds::POOLS).await?;
        Ok(set)
    }

    async fn delete_pool(&self, pool: &str) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let deleted = rules::delete_pool(&Pg(&tx), pool).await?;
        self.commit_change(tx, cache::Kinds::ALL).await?;
        Ok(deleted)
    }

    async fn put_issuer(&self, issuer: &Issuer) -> Result<()> {
        rules::put_issuer(&Pg(&self.client().await?), issuer).await
    }

    async fn issuer(&self, tenant: &str, issuer: &str) -> Result<Option<Issuer>> {
        rules::issuer(&Pg(&self.client().await?), tenant, issuer).await
    }
}
