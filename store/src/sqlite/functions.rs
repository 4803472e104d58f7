//! Trigger functions, their versions, and their recent invocations.

use super::*;

#[async_trait::async_trait]
impl Functions for Sqlite {
    /// Queues an invocation record (kept: the latest few per function).
    fn submit_invocation(&self, tenant: &str, name: &str, row: InvocationRow) {
        self.submit(Job::Invocation { tenant: tenant.to_owned(), name: name.to_owned(), row });
    }

    /// The version the next deploy of a function will get (if no other deploy of it
    /// comes first).
    async fn next_function_version(&self, tenant: &str, name: &str) -> Result<i64> {
        owned!(tenant, name);
        self.run(move |conn| {
            Ok(conn
                .prepare_cached("SELECT COALESCE(MAX(version), 0) + 1 FROM functions WHERE tenant = ?1 AND name = ?2")?
                .query_row(params![tenant, name], |r| r.get(0))?)
        })
        .await
    }

    /// Stores a new version of a tenant's function — its component, and for a JavaScript
    /// function its script and handler; returns the version.
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
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let version: i64 = tx
                .prepare_cached("SELECT COALESCE(MAX(version), 0) + 1 FROM functions WHERE tenant = ?1 AND name = ?2")?
                .query_row(params![tenant, name], |r| r.get(0))?;
            // The limits and the expected version are checked in the transaction that writes,
            // so racing deploys cannot pass them.
            if expected_latest.is_some_and(|e| e != version - 1) {
                return Ok(Err(DeployRefused::Changed { latest: version - 1 }));
            }
            if version as usize > limits::MAX_VERSIONS_PER_FUNCTION {
                return Ok(Err(DeployRefused::Versions));
            }
            if version == 1 {
                let functions: i64 = tx
                    .prepare_cached("SELECT COUNT(DISTINCT name) FROM functions WHERE tenant = ?1")?
                    .query_row([&tenant], |r| r.get(0))?;
                if functions as usize >= limits::MAX_FUNCTIONS_PER_TENANT {
                    return Ok(Err(DeployRefused::Functions));
                }
            }
            let (source, handler) = script.as_ref().map(|s| (&s.source, &s.handler)).unzip();
            tx.execute(
                "INSERT INTO functions (tenant, name, version, digest, wasm, created, source, handler)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![tenant, name, version, digest, wasm, now(), source, handler],
            )?;
            tx.commit()?;
            Ok(Ok(version))
        })
        .await
    }

    /// The limit a deploy of `tenant`'s function `name` would pass now, if any: checked
    /// before the work of compiling (and again in the transaction that stores it).
    async fn function_limit(&self, tenant: &str, name: &str) -> Result<Option<DeployRefused>> {
        owned!(tenant, name);
        self.run(move |conn| {
            let (versions, functions): (i64, i64) = conn
                .prepare_cached(
                    "SELECT (SELECT COUNT(*) FROM functions WHERE tenant = ?1 AND name = ?2),
                        (SELECT COUNT(DISTINCT name) FROM functions WHERE tenant = ?1)",
                )?
                .query_row(params![tenant, name], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(DeployRefused::limit(versions, functions))
        })
        .await
    }

    /// A JavaScript function version's script and handler.
    async fn function_script(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Script>> {
        owned!(tenant, name);
        self.run(move |conn| {
        Ok(conn
            .prepare_cached(
                "SELECT source, handler FROM functions WHERE tenant = ?1 AND name = ?2 AND version = ?3 AND source IS NOT NULL",
            )?
            .query_row(params![tenant, name, version], |r| Ok(Script { source: r.get(0)?, handler: r.get(1)? }))
            .optional()?)
    }).await
    }

    async fn function(&self, tenant: &str, name: &str, version: Option<i64>) -> Result<Option<FunctionHead>> {
        owned!(tenant, name);
        self.run(move |conn| {
            Ok(conn
            .prepare_cached(
                "SELECT version, digest FROM functions WHERE tenant = ?1 AND name = ?2 AND (?3 IS NULL OR version = ?3)
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row(params![tenant, name, version], |r| Ok(FunctionHead { version: r.get(0)?, digest: r.get(1)? }))
            .optional()?)
        })
        .await
    }

    /// The component bytes of a function version.
    async fn function_wasm(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Vec<u8>>> {
        owned!(tenant, name);
        self.run(move |conn| {
            Ok(conn
                .prepare_cached("SELECT wasm FROM functions WHERE tenant = ?1 AND name = ?2 AND version = ?3")?
                .query_row(params![tenant, name, version], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    /// A tenant's functions, by name: (name, latest version, its creation time, whether
    /// it is a script).
    async fn functions(&self, tenant: &str) -> Result<Vec<FunctionSummary>> {
        owned!(tenant);
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT f.name, f.version, f.created, f.source IS NOT NULL FROM functions f
             WHERE f.tenant = ?1 AND f.version = (SELECT MAX(version) FROM functions g
                                                  WHERE g.tenant = f.tenant AND g.name = f.name)
             ORDER BY f.name",
            )?;
            let rows = stmt.query_map([&tenant], |r| {
                Ok(FunctionSummary {
                    name: r.get(0)?,
                    latest_version: r.get(1)?,
                    modified: r.get(2)?,
                    script: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Every version of a function, newest first (without their bytes).
    async fn function_versions(&self, tenant: &str, name: &str) -> Result<Vec<FunctionVersion>> {
        owned!(tenant, name);
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT version, digest, created, length(wasm), source IS NOT NULL, handler FROM functions
             WHERE tenant = ?1 AND name = ?2 ORDER BY version DESC",
            )?;
            let rows = stmt.query_map(params![tenant, name], |r| {
                Ok(FunctionVersion {
                    version: r.get(0)?,
                    digest: r.get(1)?,
                    created: r.get(2)?,
                    component_bytes: r.get(3)?,
                    script: r.get(4)?,
                    handler: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// The latest invocations of a function, newest first.
    async fn invocations(&self, tenant: &str, name: &str, limit: i64) -> Result<Vec<InvocationRow>> {
        owned!(tenant, name);
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT at, version, outcome, wall_us, fuel, peak_memory, log FROM invocations
             WHERE tenant = ?1 AND name = ?2 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![tenant, name, limit], |r| {
                Ok(InvocationRow {
                    at: r.get(0)?,
                    version: r.get(1)?,
                    outcome: r.get(2)?,
                    wall_us: r.get(3)?,
                    fuel: r.get(4)?,
                    peak_memory_bytes: r.get(5)?,
                    log: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}
