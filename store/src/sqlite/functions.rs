//! Trigger functions, their versions, and their recent invocations: the rules are
//! [`sql::functions`]'; invocation records go through the writer.

use super::*;
use sql::functions as rules;

#[async_trait::async_trait]
impl Functions for Sqlite {
    /// Queues an invocation record (kept: the latest few per function).
    fn submit_invocation(&self, tenant: &str, name: &str, row: InvocationRow) {
        if self.log.push(tenant, name, row) {
            self.submit(Job::LogRows);
        }
    }

    async fn next_function_version(&self, tenant: &str, name: &str) -> Result<i64> {
        owned!(tenant, name);
        self.run(move |conn| sql::ready(rules::next_function_version(&Lite(conn), &tenant, &name))).await
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
        owned!(tenant, name, digest, wasm);
        let script = script.cloned();
        self.rule(true, move |tx| {
            sql::ready(rules::deploy_function(tx, &tenant, &name, &digest, &wasm, script.as_ref(), expected_latest))
        })
        .await
    }

    async fn function_limit(&self, tenant: &str, name: &str) -> Result<Option<DeployRefused>> {
        owned!(tenant, name);
        self.run(move |conn| sql::ready(rules::function_limit(&Lite(conn), &tenant, &name))).await
    }

    async fn function_script(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Script>> {
        owned!(tenant, name);
        self.run(move |conn| sql::ready(rules::function_script(&Lite(conn), &tenant, &name, version))).await
    }

    async fn function(&self, tenant: &str, name: &str, version: Option<i64>) -> Result<Option<FunctionHead>> {
        owned!(tenant, name);
        self.run(move |conn| sql::ready(rules::function(&Lite(conn), &tenant, &name, version))).await
    }

    async fn function_wasm(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Vec<u8>>> {
        owned!(tenant, name);
        self.run(move |conn| sql::ready(rules::function_wasm(&Lite(conn), &tenant, &name, version))).await
    }

    async fn functions(&self, tenant: &str) -> Result<Vec<FunctionSummary>> {
        owned!(tenant);
        self.run(move |conn| sql::ready(rules::functions(&Lite(conn), &tenant))).await
    }

    async fn function_versions(&self, tenant: &str, name: &str) -> Result<Vec<FunctionVersion>> {
        owned!(tenant, name);
        self.run(move |conn| sql::ready(rules::function_versions(&Lite(conn), &tenant, &name))).await
    }

    async fn invocations(&self, tenant: &str, name: &str, limit: i64) -> Result<Vec<InvocationRow>> {
        // The waiting rows first; a listing is still answered if the writer cannot write now.
        let _ = self.flush_invocations().await;
        owned!(tenant, name);
        self.run(move |conn| sql::ready(rules::invocations(&Lite(conn), &tenant, &name, limit))).await
    }

    async fn delete_function(&self, tenant: &str, name: &str) -> Result<std::result::Result<i64, DeleteRefused>> {
        // Its waiting invocation rows are written first (and deleted with it), and any that
        // came meanwhile dropped after: none is written after it went, but for a call that
        // ends while the deletion commits.
        self.flush_invocations().await?;
        let (t, n) = (tenant.to_owned(), name.to_owned());
        let deleted = self.rule(true, move |tx| sql::ready(rules::delete_function(tx, &t, &n))).await?;
        if deleted.is_ok() {
            self.log.forget(tenant, name);
        }
        Ok(deleted)
    }
}
