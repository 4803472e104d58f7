//! Identities and the logins linked to them: the rules are [`sql::identities`]'; this
//! is where they get a connection or a transaction, and what a change must tell the
//! other nodes' caches.

use super::*;
use sql::identities as rules;

#[async_trait::async_trait]
impl Identities for Postgres {
    async fn create_identity(&self, pool_id: &str, region: &str) -> Result<String> {
        rules::create_identity(&Pg(&self.client().await?), pool_id, region).await
    }

    async fn identity_pool(&self, identity_id: &str) -> Result<Option<String>> {
        let read = async { rules::identity_pool(&Pg(&self.client().await?), identity_id).await };
        self.through::<cache::IdentityPools>(identity_id.to_owned(), read).await
    }

    async fn identity(&self, identity_id: &str) -> Result<Option<IdentityRow>> {
        rules::identity(&Pg(&self.client().await?), identity_id).await
    }

    async fn identities_after(
        &self,
        pool: &str,
        after: &str,
        limit: usize,
        hide_disabled: bool,
    ) -> Result<Vec<IdentityRow>> {
        rules::identities_after(&Pg(&self.client().await?), pool, after, limit, hide_disabled).await
    }

    async fn login_identity(&self, pool: &str, provider: &str, subject: &str) -> Result<Option<String>> {
        rules::login_identity(&Pg(&self.client().await?), pool, provider, subject).await
    }

    async fn identity_for_login(
        &self,
        pool: &str,
        region: &str,
        provider: &str,
        subject: &str,
    ) -> Result<LoginIdentity> {
        let mut c = self.client().await?;
        // Signing in again is the common case: one statement, no transaction.
        if let Some(identity_id) = rules::login_identity(&Pg(&c), pool, provider, subject).await? {
            return Ok(LoginIdentity { identity_id, created: false });
        }
        let tx = c.transaction().await?;
        let found = rules::identity_for_login(&Pg(&tx), pool, region, provider, subject).await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn link_login(
        &self,
        pool: &str,
        provider: &str,
        subject: &str,
        identity: &str,
        only_if_unauthenticated: bool,
    ) -> Result<LinkOutcome> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let outcome = rules::link_login(&Pg(&tx), pool, provider, subject, identity, only_if_unauthenticated).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn unlink_logins(&self, identity: &str, provider: &str, subject: Option<&str>) -> Result<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = rules::unlink_logins(&Pg(&tx), identity, provider, subject).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn merge_identities(
        &self,
        pool: &str,
        source: &str,
        target: &str,
        rule: MergeRule<'_>,
    ) -> Result<MergeOutcome> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let outcome = rules::merge_identities(
            &Pg(&tx),
            pool,
            source,
            target,
            rule,
            self.outbox_max.load(std::sync::atomic::Ordering::Relaxed),
        )
        .await?;
        if matches!(outcome, MergeOutcome::Merged(_)) {
            // A merged identity's credentials and pool entry are gone on every node.
            self.commit_change(tx, cache::Kinds::CREDENTIALS.and(cache::Kinds::IDENTITY_POOLS)).await?;
        }
        Ok(outcome)
    }

    async fn delete_identities(&self, pool: Option<&str>, identities: &[String]) -> Result<Vec<String>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let missing = rules::delete_identities(&Pg(&tx), pool, identities).await?;
        self.commit_change(tx, cache::Kinds::CREDENTIALS.and(cache::Kinds::IDENTITY_POOLS)).await?;
        Ok(missing)
    }
}
