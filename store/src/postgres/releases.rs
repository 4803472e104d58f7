//! Aliases, their figures and rollouts' decisions: the rules are [`sql::releases`]'. A
//! change of an alias is announced like a deploy, so every node's next sync resolves it
//! afresh.

use super::*;
use crate::releases::*;
use sql::releases as rules;

#[async_trait::async_trait]
impl Releases for Postgres {
    async fn put_alias(
        &self,
        tenant: &str,
        function: &str,
        alias: &str,
        change: &AliasChange,
        mode: PutMode,
        expected_epoch: Option<i64>,
    ) -> Result<std::result::Result<Alias, AliasRefused>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let put = rules::put_alias(&Pg(&tx), (tenant, function, alias), change, mode, expected_epoch).await?;
        if put.is_ok() {
            self.commit_change(tx, cache::Kinds::FUNCTIONS).await?;
        }
        Ok(put)
    }

    async fn delete_alias(
        &self,
        tenant: &str,
        function: &str,
        alias: &str,
    ) -> Result<std::result::Result<(), AliasRefused>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let deleted = rules::delete_alias(&Pg(&tx), (tenant, function, alias)).await?;
        if deleted.is_ok() {
            self.commit_change(tx, cache::Kinds::FUNCTIONS).await?;
        }
        Ok(deleted)
    }

    async fn alias(&self, tenant: &str, function: &str, alias: &str) -> Result<Option<Alias>> {
        rules::alias(&Pg(&self.client().await?), tenant, function, alias).await
    }

    async fn aliases(&self, tenant: &str, function: &str) -> Result<Vec<Alias>> {
        rules::aliases(&Pg(&self.client().await?), tenant, function).await
    }

    async fn rollouts(&self) -> Result<Vec<(String, Alias)>> {
        rules::rollouts(&Pg(&self.client().await?)).await
    }

    async fn resolve_function(&self, tenant: &str, function: &str, qualifier: &Qualifier) -> Result<Option<Resolved>> {
        let read = async { rules::resolve(&Pg(&self.client().await?), tenant, function, qualifier).await };
        self.through::<cache::Functions>((tenant.to_owned(), function.to_owned(), qualifier.clone()), read).await
    }

    async fn add_figures(&self, deltas: &[FiguresDelta]) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        rules::add_figures(&Pg(&tx), deltas).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn figures(&self, tenant: &str, function: &str, alias: &str, epoch: i64) -> Result<Vec<VersionFigures>> {
        rules::figures(&Pg(&self.client().await?), (tenant, function, alias), epoch).await
    }

    async fn decide_rollout(
        &self,
        tenant: &str,
        function: &str,
        alias: &str,
        verdict: Verdict,
        decision: &Decision,
    ) -> Result<Option<Alias>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let decided = rules::decide(&Pg(&tx), (tenant, function, alias), verdict, decision).await?;
        if decided.is_some() {
            self.commit_change(tx, cache::Kinds::FUNCTIONS).await?;
        }
        Ok(decided)
    }

    async fn decisions(&self, tenant: &str, function: &str, limit: i64) -> Result<Vec<Decision>> {
        rules::decisions(&Pg(&self.client().await?), tenant, function, limit).await
    }
}
