//! Tenants, their credentials, identity pools and OpenID Connect issuers: the rules are
//! [`sql::tenants`]'; this is where they get a reader thread and a transaction.

use super::*;
use sql::tenants as rules;

#[async_trait::async_trait]
impl Tenants for Sqlite {
    /// Queues a sweep of expired temporary credentials and stored update answers.
    fn submit_purge(&self) {
        self.submit(Job::Purge);
    }

    async fn checkpoint(&self) -> Result<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Checkpoint(reply));
        answer.await.map_err(|_| StoreError::Other("the database writer stopped".into()))?
    }

    async fn meta_or_insert(&self, key: &str, value: String) -> Result<(String, bool)> {
        owned!(key);
        self.run(move |conn| sql::ready(rules::meta_or_insert(&Lite(conn), &key, &value))).await
    }

    async fn put_root_credential(&self, access_key: &str, secret: &str) -> Result<()> {
        owned!(access_key, secret);
        self.rule(true, move |tx| sql::ready(rules::put_root_credential(tx, &access_key, &secret))).await
    }

    async fn create_tenant(&self, name: &str) -> Result<Option<AccessKeys>> {
        owned!(name);
        self.rule(true, move |tx| sql::ready(rules::create_tenant(tx, &name))).await
    }

    async fn tenant_exists(&self, name: &str) -> Result<bool> {
        owned!(name);
        self.run(move |conn| sql::ready(rules::tenant_exists(&Lite(conn), &name))).await
    }

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
            sql::ready(rules::create_pool(&Lite(conn), &tenant, &region, &name, allow_unauthenticated, &settings))
        })
        .await
    }

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
            sql::ready(rules::update_pool(&Lite(conn), &pool_id, &name, allow_unauthenticated, &settings))
        })
        .await
    }

    async fn credential(&self, access_key: &str) -> Result<Option<Credential>> {
        owned!(access_key);
        self.run(move |conn| sql::ready(rules::credential(&Lite(conn), &access_key))).await
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
            sql::ready(rules::issue_identity_credentials(&Lite(conn), &pool_id, &identity_id, authenticated, ttl_secs))
        })
        .await
    }

    async fn pool(&self, pool_id: &str) -> Result<Option<Pool>> {
        owned!(pool_id);
        self.run(move |conn| sql::ready(rules::pool(&Lite(conn), &pool_id))).await
    }

    async fn pools_after(&self, tenant: Option<&str>, after: &str, limit: usize) -> Result<Vec<Pool>> {
        owned!(after);
        let tenant = tenant.map(str::to_owned);
        self.run(move |conn| sql::ready(rules::pools_after(&Lite(conn), tenant.as_deref(), &after, limit))).await
    }

    async fn sync_triggers(&self) -> Result<Vec<SyncTriggerMapping>> {
        self.run(move |conn| sql::ready(rules::sync_triggers(&Lite(conn)))).await
    }

    async fn set_sync_trigger(
        &self,
        pool_id: &str,
        mapping: Option<&str>,
        function: Option<(&str, &str, Option<&str>)>,
    ) -> Result<bool> {
        owned!(pool_id);
        let mapping = mapping.map(str::to_owned);
        let function = function.map(|(t, f, a)| (t.to_owned(), f.to_owned(), a.map(str::to_owned)));
        self.rule(true, move |tx| {
            let function = function.as_ref().map(|(t, f, a)| (t.as_str(), f.as_str(), a.as_deref()));
            sql::ready(rules::set_sync_trigger(tx, &pool_id, mapping.as_deref(), function))
        })
        .await
    }

    async fn delete_pool(&self, pool: &str) -> Result<bool> {
        owned!(pool);
        self.rule(true, move |tx| sql::ready(rules::delete_pool(tx, &pool))).await
    }

    async fn put_issuer(&self, issuer: &Issuer) -> Result<()> {
        let issuer = issuer.clone();
        self.run(move |conn| sql::ready(rules::put_issuer(&Lite(conn), &issuer))).await
    }

    async fn issuer(&self, tenant: &str, issuer: &str) -> Result<Option<Issuer>> {
        owned!(tenant, issuer);
        self.run(move |conn| sql::ready(rules::issuer(&Lite(conn), &tenant, &issuer))).await
    }
}
