//! Aliases, their figures and rollouts' decisions: the rules are [`sql::releases`]'.

use super::*;
use crate::releases::*;
use sql::releases as rules;

#[async_trait::async_trait]
impl Releases for Sqlite {
    async fn put_alias(
        &self,
        tenant: &str,
        function: &str,
        alias: &str,
        change: &AliasChange,
        mode: PutMode,
        expected_epoch: Option<i64>,
    ) -> Result<std::result::Result<Alias, AliasRefused>> {
        owned!(tenant, function, alias);
        let change = change.clone();
        self.rule(true, move |tx| {
            sql::ready(rules::put_alias(tx, (&tenant, &function, &alias), &change, mode, expected_epoch))
        })
        .await
    }

    async fn delete_alias(
        &self,
        tenant: &str,
        function: &str,
        alias: &str,
    ) -> Result<std::result::Result<(), AliasRefused>> {
        owned!(tenant, function, alias);
        self.rule(true, move |tx| sql::ready(rules::delete_alias(tx, (&tenant, &function, &alias)))).await
    }

    async fn alias(&self, tenant: &str, function: &str, alias: &str) -> Result<Option<Alias>> {
        owned!(tenant, function, alias);
        self.run(move |conn| sql::ready(rules::alias(&Lite(conn), &tenant, &function, &alias))).await
    }

    async fn aliases(&self, tenant: &str, function: &str) -> Result<Vec<Alias>> {
        owned!(tenant, function);
        self.run(move |conn| sql::ready(rules::aliases(&Lite(conn), &tenant, &function))).await
    }

    async fn rollouts(&self) -> Result<Vec<(String, Alias)>> {
        self.run(move |conn| sql::ready(rules::rollouts(&Lite(conn)))).await
    }

    async fn resolve_function(&self, tenant: &str, function: &str, qualifier: &Qualifier) -> Result<Option<Resolved>> {
        owned!(tenant, function);
        let qualifier = qualifier.clone();
        self.run(move |conn| sql::ready(rules::resolve(&Lite(conn), &tenant, &function, &qualifier))).await
    }

    async fn add_figures(&self, deltas: &[FiguresDelta]) -> Result<()> {
        let deltas = deltas.to_vec();
        self.rule(true, move |tx| sql::ready(rules::add_figures(tx, &deltas))).await
    }

    async fn figures(&self, tenant: &str, function: &str, alias: &str, epoch: i64) -> Result<Vec<VersionFigures>> {
        owned!(tenant, function, alias);
        self.run(move |conn| sql::ready(rules::figures(&Lite(conn), (&tenant, &function, &alias), epoch))).await
    }

    async fn decide_rollout(
        &self,
        tenant: &str,
        function: &str,
        alias: &str,
        verdict: Verdict,
        decision: &Decision,
    ) -> Result<Option<Alias>> {
        owned!(tenant, function, alias);
        let decision = decision.clone();
        self.rule(true, move |tx| sql::ready(rules::decide(tx, (&tenant, &function, &alias), verdict, &decision))).await
    }

    async fn decisions(&self, tenant: &str, function: &str, limit: i64) -> Result<Vec<Decision>> {
        owned!(tenant, function);
        self.run(move |conn| sql::ready(rules::decisions(&Lite(conn), &tenant, &function, limit))).await
    }
}
