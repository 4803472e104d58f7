//! The SQLite store as a [`Backend`]: its own methods, called on the async workers (a
//! read is a local file read; changes to datasets queue for the writer thread).

use super::Sqlite;
use crate::*;

#[async_trait::async_trait]
impl Backend for Sqlite {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn submit_invocation(&self, tenant: &str, name: &str, row: InvocationRow) {
        Sqlite::submit_invocation(self, tenant, name, row)
    }

    fn submit_purge(&self) {
        Sqlite::submit_purge(self)
    }

    async fn update(&self, update: Update) -> UpdateResult {
        self.submit_update(update).await.unwrap_or_else(|_| Err(DbError::Other("the database writer stopped".into())))
    }

    async fn delete_dataset(&self, pool: &str, identity: &str, name: &str, by: &str) -> Result<Option<DatasetRow>> {
        Sqlite::delete_dataset(self, pool, identity, name, by).await
    }

    async fn meta_or_insert(&self, key: &str, value: String) -> Result<(String, bool)> {
        Sqlite::meta_or_insert(self, key, value)
    }

    async fn put_root_credential(&self, access_key: &str, secret: &str) -> Result<()> {
        Sqlite::put_root_credential(self, access_key, secret)
    }

    async fn create_tenant(&self, name: &str) -> Result<Option<(String, String)>> {
        Sqlite::create_tenant(self, name)
    }

    async fn tenant_exists(&self, name: &str) -> Result<bool> {
        Sqlite::tenant_exists(self, name)
    }

    async fn create_pool(
        &self,
        tenant: &str,
        region: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<Pool> {
        Sqlite::create_pool(self, tenant, region, name, allow_unauthenticated, settings)
    }

    async fn update_pool(
        &self,
        pool_id: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<()> {
        Sqlite::update_pool(self, pool_id, name, allow_unauthenticated, settings)
    }

    async fn credential(&self, access_key: &str) -> Result<Option<Credential>> {
        Sqlite::credential(self, access_key)
    }

    async fn issue_identity_credentials(
        &self,
        pool_id: &str,
        identity_id: &str,
        authenticated: bool,
        ttl_secs: i64,
    ) -> Result<(String, String, String, i64)> {
        Sqlite::issue_identity_credentials(self, pool_id, identity_id, authenticated, ttl_secs)
    }

    async fn pool(&self, pool_id: &str) -> Result<Option<Pool>> {
        Sqlite::pool(self, pool_id)
    }

    async fn pools_after(&self, tenant: Option<&str>, after: &str, limit: usize) -> Result<Vec<Pool>> {
        Sqlite::pools_after(self, tenant, after, limit)
    }

    async fn sync_triggers(&self) -> Result<Vec<(String, String)>> {
        Sqlite::sync_triggers(self)
    }

    async fn set_sync_trigger(&self, pool_id: &str, function: Option<&str>) -> Result<()> {
        Sqlite::set_sync_trigger(self, pool_id, function)
    }

    async fn create_identity(&self, pool_id: &str, region: &str) -> Result<String> {
        Sqlite::create_identity(self, pool_id, region)
    }

    async fn identity_pool(&self, identity_id: &str) -> Result<Option<String>> {
        Sqlite::identity_pool(self, identity_id)
    }

    async fn next_function_version(&self, tenant: &str, name: &str) -> Result<i64> {
        Sqlite::next_function_version(self, tenant, name)
    }

    async fn deploy_function(
        &self,
        tenant: &str,
        name: &str,
        digest: &str,
        wasm: &[u8],
        script: Option<(&str, &str)>,
        expected_latest: Option<i64>,
    ) -> Result<std::result::Result<i64, DeployRefused>> {
        Sqlite::deploy_function(self, tenant, name, digest, wasm, script, expected_latest)
    }

    async fn function_limit(&self, tenant: &str, name: &str) -> Result<Option<DeployRefused>> {
        Sqlite::function_limit(self, tenant, name)
    }

    async fn function_script(&self, tenant: &str, name: &str, version: i64) -> Result<Option<(String, String)>> {
        Sqlite::function_script(self, tenant, name, version)
    }

    async fn function(&self, tenant: &str, name: &str, version: Option<i64>) -> Result<Option<(i64, String)>> {
        Sqlite::function(self, tenant, name, version)
    }

    async fn function_wasm(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Vec<u8>>> {
        Sqlite::function_wasm(self, tenant, name, version)
    }

    async fn functions(&self, tenant: &str) -> Result<Vec<FunctionSummary>> {
        Sqlite::functions(self, tenant)
    }

    async fn function_versions(&self, tenant: &str, name: &str) -> Result<Vec<FunctionVersion>> {
        Sqlite::function_versions(self, tenant, name)
    }

    async fn invocations(&self, tenant: &str, name: &str, limit: i64) -> Result<Vec<InvocationRow>> {
        Sqlite::invocations(self, tenant, name, limit)
    }

    async fn dataset(&self, pool: &str, identity: &str, name: &str) -> Result<Option<DatasetRow>> {
        Sqlite::dataset(self, pool, identity, name)
    }

    async fn datasets_after(&self, pool: &str, identity: &str, after: &str, limit: usize) -> Result<Vec<DatasetRow>> {
        Sqlite::datasets_after(self, pool, identity, after, limit)
    }

    async fn snapshot(&self, pool: &str, identity: &str, name: &str) -> Result<Snapshot> {
        Sqlite::snapshot(self, pool, identity, name)
    }

    async fn records_page(
        &self,
        dataset: (&str, &str, &str),
        last: i64,
        upper: Option<i64>,
        cursor: Option<&RecordCursor>,
        limit: usize,
    ) -> Result<RecordPage> {
        Sqlite::records_page(self, dataset, last, upper, cursor, limit)
    }

    async fn applied_answer(&self, idempotency: &Idempotency) -> Result<Option<Vec<RecordRow>>> {
        Sqlite::applied_answer(self, idempotency)
    }

    async fn identity_usage(&self, pool: &str, identity: &str) -> Result<(i64, i64, Option<i64>)> {
        Sqlite::identity_usage(self, pool, identity)
    }

    async fn pool_usage(&self, pool: &str) -> Result<(i64, i64, Option<i64>)> {
        Sqlite::pool_usage(self, pool)
    }

    async fn identity(&self, identity_id: &str) -> Result<Option<IdentityRow>> {
        Sqlite::identity(self, identity_id)
    }

    async fn identities_after(
        &self,
        pool: &str,
        after: &str,
        limit: usize,
        hide_disabled: bool,
    ) -> Result<Vec<IdentityRow>> {
        Sqlite::identities_after(self, pool, after, limit, hide_disabled)
    }

    async fn login_identity(&self, pool: &str, provider: &str, subject: &str) -> Result<Option<String>> {
        Sqlite::login_identity(self, pool, provider, subject)
    }

    async fn identity_for_login(
        &self,
        pool: &str,
        region: &str,
        provider: &str,
        subject: &str,
    ) -> Result<(String, bool)> {
        Sqlite::identity_for_login(self, pool, region, provider, subject)
    }

    async fn link_login(
        &self,
        pool: &str,
        provider: &str,
        subject: &str,
        identity: &str,
        only_if_unauthenticated: bool,
    ) -> Result<LinkOutcome> {
        Sqlite::link_login(self, pool, provider, subject, identity, only_if_unauthenticated)
    }

    async fn unlink_logins(&self, identity: &str, provider: &str, subject: Option<&str>) -> Result<usize> {
        Sqlite::unlink_logins(self, identity, provider, subject)
    }

    async fn merge_identities(
        &self,
        pool: &str,
        source: &str,
        target: &str,
        rule: MergeRule<'_>,
    ) -> Result<MergeOutcome> {
        Sqlite::merge_identities(self, pool, source, target, rule)
    }

    async fn delete_identities(&self, pool: Option<&str>, identities: &[String]) -> Result<Vec<String>> {
        Sqlite::delete_identities(self, pool, identities)
    }

    async fn delete_pool(&self, pool: &str) -> Result<bool> {
        Sqlite::delete_pool(self, pool)
    }

    async fn put_issuer(&self, issuer: &Issuer) -> Result<()> {
        Sqlite::put_issuer(self, issuer)
    }

    async fn issuer(&self, tenant: &str, issuer: &str) -> Result<Option<Issuer>> {
        Sqlite::issuer(self, tenant, issuer)
    }

    async fn export(
        &self,
        scope: &Scope,
        out: &mut (dyn std::io::Write + Send),
    ) -> std::result::Result<u64, ImportError> {
        Sqlite::export(self, scope, out)
    }

    async fn import(
        &self,
        input: &mut (dyn std::io::BufRead + Send),
        tenant: Option<&str>,
    ) -> std::result::Result<Counts, ImportError> {
        Sqlite::import(self, input, tenant)
    }
}
