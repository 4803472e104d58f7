//! Trigger functions, their versions, and their recent invocations.

use super::*;
use sql::functions as rules;

#[async_trait::async_trait]
impl Functions for Postgres {
    fn submit_invocation(&self, tenant: &str, name: &str, row: InvocationRow) {
        let job = Background::Invocation { tenant: tenant.to_owned(), name: name.to_owned(), row };
        if self.background.try_send(job).is_err() {
            tracing::warn!(tenant, function = name, "the invocation log queue is full: an invocation is not recorded");
        }
    }

    async fn next_function_version(&self, tenant: &str, name: &str) -> Result<i64> {
        rules::next_function_version(&Pg(&self.client().await?), tenant, name).await
    }

    async fn deploy_function(
        &self,
        tenant: &str,
        name: &str,
        digest: &str,
        wasm: &[u8],
        script: Option<&Script>,
        expected_latest: Option<i64>,
    ) -> Result<std::result::Result<i64, DeployRefused>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let deployed = rules::deploy_function(&Pg(&tx), tenant, name, digest, wasm, script, expected_latest).await?;
        if deployed.is_ok() {
            self.commit_change(tx, cache::Kinds::FUNCTIONS).await?;
        }
        Ok(deployed)
    }

    async fn function_limit(&self, tenant: &str, name: &str) -> Result<Option<DeployRefused>> {
        rules::function_limit(&Pg(&self.client().await?), tenant, name).await
    }

    async fn function_script(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Script>> {
        rules::function_script(&Pg(&self.client().await?), tenant, name, version).await
    }

    async fn function(&self, tenant: &str, name: &str, version: Option<i64>) -> Result<Option<FunctionHead>> {
        let qualifier = version.map_or(Qualifier::Latest, Qualifier::Version);
        Ok(self.resolve_function(tenant, name, &qualifier).await?.map(|r| r.primary))
    }

    async fn function_wasm(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Vec<u8>>> {
        rules::function_wasm(&Pg(&self.client().await?), tenant, name, version).await
    }

    async fn functions(&self, tenant: &str) -> Result<Vec<FunctionSummary>> {
        rules::functions(&Pg(&self.client().await?), tenant).await
    }

    async fn function_versions(&self, tenant: &str, name: &str) -> Result<Vec<FunctionVersion>> {
        rules::function_versions(&Pg(&self.client().await?), tenant, name).await
    }

    async fn invocations(&self, tenant: &str, name: &str, limit: i64) -> Result<Vec<InvocationRow>> {
        // The invocations this node ran are written in the background: those queued so far
        // first, so a caller sees the ones it caused.
        self.flush_background().await;
        rules::invocations(&Pg(&self.client().await?), tenant, name, limit).await
    }

    async fn delete_function(&self, tenant: &str, name: &str) -> Result<std::result::Result<i64, DeleteRefused>> {
        // This node's waiting rows of it first, so that the deletion takes them (a row
        // written after it would also be dropped: see the insert).
        self.flush_background().await;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let deleted = rules::delete_function(&Pg(&tx), tenant, name).await?;
        if deleted.is_ok() {
            self.commit_change(tx, cache::Kinds::FUNCTIONS).await?;
        }
        Ok(deleted)
    }
}
