//! Streams and push sync: the rules are [`sql::streams`]'; UpdateRecords writes its
//! outbox entry inside `synctrig_update_v2`.

use super::*;
use crate::streams::*;
use sql::streams as rules;

#[async_trait::async_trait]
impl Streams for Postgres {
    fn set_outbox_max(&self, max: i64) {
        self.outbox_max.store(max.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    async fn pool_configuration(&self, pool: &str) -> Result<PoolConfiguration> {
        rules::configuration(&Pg(&self.client().await?), pool).await
    }

    async fn set_pool_configuration(
        &self,
        tenant: &str,
        pool: &str,
        streams: Option<&StreamsChange>,
        push: Option<&PushSettings>,
    ) -> Result<std::result::Result<PoolConfiguration, ConfigurationRefused>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let set = rules::set_configuration(&Pg(&tx), tenant, pool, streams, push).await?;
        if set.is_ok() {
            tx.commit().await?;
        }
        Ok(set)
    }

    async fn take_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
        rules::lease(&Pg(&self.client().await?), name, holder, ttl_ms).await
    }

    async fn outbox(&self, limit: i64) -> Result<Vec<OutboxEntry>> {
        rules::outbox(&Pg(&self.client().await?), limit).await
    }

    async fn outbox_done(&self, ids: &[i64]) -> Result<u64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = rules::outbox_done(&Pg(&tx), ids).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn outbox_depth(&self) -> Result<i64> {
        rules::outbox_depth(&Pg(&self.client().await?)).await
    }

    async fn register_device(&self, pool: &str, identity: &str, platform: &str, token: &str) -> Result<String> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Two registrations of one token at once get one device.
        sql::identities::lock_identity(&Pg(&tx), pool, identity, false).await?;
        let id = rules::register_device(&Pg(&tx), pool, identity, platform, token, &new_device_id()).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn subscribe(
        &self,
        identity: &str,
        dataset: &str,
        device: &str,
        on: bool,
    ) -> Result<std::result::Result<(), SubscriptionRefused>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let done = rules::subscribe(&Pg(&tx), identity, dataset, device, on).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn subscribers(&self, identity: &str, dataset: &str) -> Result<Vec<Device>> {
        rules::subscribers(&Pg(&self.client().await?), identity, dataset).await
    }

    async fn start_bulk_publish(&self, pool: &str) -> Result<std::result::Result<BulkPublish, BulkRefused>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let started = rules::start_bulk(&Pg(&tx), pool).await?;
        if started.is_ok() {
            tx.commit().await?;
        }
        Ok(started)
    }

    async fn bulk_publish(&self, pool: &str) -> Result<Option<BulkPublish>> {
        rules::bulk(&Pg(&self.client().await?), pool).await
    }

    async fn bulk_publishes_in_progress(&self) -> Result<Vec<BulkPublish>> {
        rules::bulks_in_progress(&Pg(&self.client().await?)).await
    }

    async fn advance_bulk_publish(
        &self,
        pool: &str,
        started_ms: i64,
        cursor: Option<&(String, String)>,
        end: Option<std::result::Result<(), String>>,
    ) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let moved = rules::advance_bulk(&Pg(&tx), pool, started_ms, cursor, end).await?;
        tx.commit().await?;
        Ok(moved)
    }

    async fn bulk_page(&self, pool: &str, after: Option<&(String, String)>, limit: i64) -> Result<Vec<DatasetState>> {
        let mut c = self.client().await?;
        // One snapshot for the page.
        let tx = c.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).start().await?;
        let page = rules::bulk_page(&Pg(&tx), pool, after, limit).await?;
        tx.commit().await?;
        Ok(page)
    }
}
