//! Trigger functions, their versions, and their recent invocations.

use super::*;

#[async_trait::async_trait]
impl Functions for Postgres {
    fn submit_invocation(&self, tenant: &str, name: &str, row: InvocationRow) {
        let job = Background::Invocation { tenant: tenant.to_owned(), name: name.to_owned(), row };
        if self.background.try_send(job).is_err() {
            tracing::warn!(tenant, function = name, "the invocation log queue is full: an invocation is not recorded");
        }
    }

    async fn next_function_version(&self, tenant: &str, name: &str) -> Result<i64> {
        let c = self.client().await?;
        Ok(query_one(
            &c,
            "SELECT COALESCE(MAX(version), 0) + 1 FROM functions WHERE tenant = $1 AND name = $2",
            &[&tenant, &name],
        )
        .await?
        .try_get(0)?)
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
        // Deploys of one tenant, on any node, one at a time: the version and the limits
        // below cannot be raced past.
        let lock = format!("deploy/{tenant}");
        execute(&tx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&lock]).await?;
        let version: i64 = query_one(
            &tx,
            "SELECT COALESCE(MAX(version), 0) + 1 FROM functions WHERE tenant = $1 AND name = $2",
            &[&tenant, &name],
        )
        .await?
        .try_get(0)?;
        if expected_latest.is_some_and(|e| e != version - 1) {
            return Ok(Err(DeployRefused::Changed { latest: version - 1 }));
        }
        if version as usize > limits::MAX_VERSIONS_PER_FUNCTION {
            return Ok(Err(DeployRefused::Versions));
        }
        if version == 1 {
            let functions: i64 =
                query_one(&tx, "SELECT COUNT(DISTINCT name) FROM functions WHERE tenant = $1", &[&tenant])
                    .await?
                    .try_get(0)?;
            if functions as usize >= limits::MAX_FUNCTIONS_PER_TENANT {
                return Ok(Err(DeployRefused::Functions));
            }
        }
        let (source, handler) = script.map(|s| (&s.source, &s.handler)).unzip();
        execute(
            &tx,
            "INSERT INTO functions (tenant, name, version, digest, wasm, created, source, handler)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&tenant, &name, &version, &digest, &wasm, &now(), &source, &handler],
        )
        .await?;
        self.commit_change(tx, cache::Kinds::FUNCTIONS).await?;
        Ok(Ok(version))
    }

    async fn function_limit(&self, tenant: &str, name: &str) -> Result<Option<DeployRefused>> {
        let c = self.client().await?;
        let r = query_one(
            &c,
            "SELECT (SELECT COUNT(*) FROM functions WHERE tenant = $1 AND name = $2),
                    (SELECT COUNT(DISTINCT name) FROM functions WHERE tenant = $1)",
            &[&tenant, &name],
        )
        .await?;
        let (versions, functions): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        Ok(DeployRefused::limit(versions, functions))
    }

    async fn function_script(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Script>> {
        let c = self.client().await?;
        query_opt(
            &c,
            "SELECT source, handler FROM functions WHERE tenant = $1 AND name = $2 AND version = $3 AND source IS NOT NULL",
            &[&tenant, &name, &version],
        )
        .await?
        .map(|r| Ok(Script { source: r.try_get(0)?, handler: r.try_get(1)? }))
        .transpose()
    }

    async fn function(&self, tenant: &str, name: &str, version: Option<i64>) -> Result<Option<FunctionHead>> {
        let read = async {
            let c = self.client().await?;
            query_opt(
                &c,
                "SELECT version, digest FROM functions WHERE tenant = $1 AND name = $2 AND ($3::BIGINT IS NULL OR version = $3)
                 ORDER BY version DESC LIMIT 1",
                &[&tenant, &name, &version],
            )
            .await?
            .map(|r| Ok(FunctionHead { version: r.try_get(0)?, digest: r.try_get(1)? }))
            .transpose()
        };
        self.through::<cache::Functions>((tenant.to_owned(), name.to_owned(), version), read).await
    }

    async fn function_wasm(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Vec<u8>>> {
        let c = self.client().await?;
        query_opt(
            &c,
            "SELECT wasm FROM functions WHERE tenant = $1 AND name = $2 AND version = $3",
            &[&tenant, &name, &version],
        )
        .await?
        .map(|r| Ok(r.try_get(0)?))
        .transpose()
    }

    async fn functions(&self, tenant: &str) -> Result<Vec<FunctionSummary>> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT f.name, f.version, f.created, f.source IS NOT NULL FROM functions f
             WHERE f.tenant = $1 AND f.version = (SELECT MAX(version) FROM functions g
                                                  WHERE g.tenant = f.tenant AND g.name = f.name)
             ORDER BY f.name",
            &[&tenant],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(FunctionSummary {
                name: r.try_get(0)?,
                latest_version: r.try_get(1)?,
                modified: r.try_get(2)?,
                script: r.try_get(3)?,
            })
        })
        .collect()
    }

    async fn function_versions(&self, tenant: &str, name: &str) -> Result<Vec<FunctionVersion>> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT version, digest, created, octet_length(wasm)::BIGINT, source IS NOT NULL, handler FROM functions
             WHERE tenant = $1 AND name = $2 ORDER BY version DESC",
            &[&tenant, &name],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(FunctionVersion {
                version: r.try_get(0)?,
                digest: r.try_get(1)?,
                created: r.try_get(2)?,
                component_bytes: r.try_get(3)?,
                script: r.try_get(4)?,
                handler: r.try_get(5)?,
            })
        })
        .collect()
    }

    async fn invocations(&self, tenant: &str, name: &str, limit: i64) -> Result<Vec<InvocationRow>> {
        // The invocations this node ran are written in the background: wait (a bounded
        // time) for those queued so far, so a caller sees the ones it caused.
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.background.try_send(Background::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(POOL_WAIT, flushed).await;
        }
        let c = self.client().await?;
        query(
            &c,
            "SELECT at, version, outcome, wall_us, fuel, peak_memory, log FROM invocations
             WHERE tenant = $1 AND name = $2 ORDER BY id DESC LIMIT $3",
            &[&tenant, &name, &limit],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(InvocationRow {
                at: r.try_get(0)?,
                version: r.try_get(1)?,
                outcome: r.try_get(2)?,
                wall_us: r.try_get(3)?,
                fuel: r.try_get(4)?,
                peak_memory_bytes: r.try_get(5)?,
                log: r.try_get(6)?,
            })
        })
        .collect()
    }
}
