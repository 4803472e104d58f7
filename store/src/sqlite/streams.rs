//! Streams and push sync: the rules are [`sql::streams`]'; the outbox entries of updates
//! and deletions are written by the writer, in their transactions.

use super::*;
use crate::streams::*;
use sql::streams as rules;

#[async_trait::async_trait]
impl Streams for Sqlite {
    fn set_outbox_max(&self, max: i64) {
        self.outbox_max.store(max.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    async fn pool_configuration(&self, pool: &str) -> Result<PoolConfiguration> {
        owned!(pool);
        self.run(move |conn| sql::ready(rules::configuration(&Lite(conn), &pool))).await
    }

    async fn set_pool_configuration(
        &self,
        tenant: &str,
        pool: &str,
        streams: Option<&StreamsChange>,
        push: Option<&PushSettings>,
    ) -> Result<std::result::Result<PoolConfiguration, ConfigurationRefused>> {
        owned!(tenant, pool);
        let (streams, push) = (streams.cloned(), push.cloned());
        self.rule(true, move |tx| {
            sql::ready(rules::set_configuration(tx, &tenant, &pool, streams.as_ref(), push.as_ref()))
        })
        .await
    }

    async fn take_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
        owned!(name, holder);
        // Through the writer: renewed every round, beside a busy writer.
        self.write(move |tx| sql::ready(rules::lease(tx, &name, &holder, ttl_ms))).await
    }

    async fn outbox(&self, limit: i64) -> Result<Vec<OutboxEntry>> {
        self.run(move |conn| sql::ready(rules::outbox(&Lite(conn), limit))).await
    }

    async fn outbox_done(&self, ids: &[i64]) -> Result<u64> {
        let ids = ids.to_vec();
        self.write(move |tx| sql::ready(rules::outbox_done(tx, &ids))).await
    }

    async fn outbox_depth(&self) -> Result<i64> {
        self.run(move |conn| sql::ready(rules::outbox_depth(&Lite(conn)))).await
    }

    async fn register_device(&self, pool: &str, identity: &str, platform: &str, token: &str) -> Result<String> {
        owned!(pool, identity, platform, token);
        let new_id = new_device_id();
        self.rule(true, move |tx| sql::ready(rules::register_device(tx, &pool, &identity, &platform, &token, &new_id)))
            .await
    }

    async fn subscribe(
        &self,
        identity: &str,
        dataset: &str,
        device: &str,
        on: bool,
    ) -> Result<std::result::Result<(), SubscriptionRefused>> {
        owned!(identity, dataset, device);
        self.rule(true, move |tx| sql::ready(rules::subscribe(tx, &identity, &dataset, &device, on))).await
    }

    async fn subscribers(&self, identity: &str, dataset: &str) -> Result<Vec<Device>> {
        owned!(identity, dataset);
        self.run(move |conn| sql::ready(rules::subscribers(&Lite(conn), &identity, &dataset))).await
    }

    async fn start_bulk_publish(&self, pool: &str) -> Result<std::result::Result<BulkPublish, BulkRefused>> {
        owned!(pool);
        self.rule(true, move |tx| sql::ready(rules::start_bulk(tx, &pool))).await
    }

    async fn bulk_publish(&self, pool: &str) -> Result<Option<BulkPublish>> {
        owned!(pool);
        self.run(move |conn| sql::ready(rules::bulk(&Lite(conn), &pool))).await
    }

    async fn bulk_publishes_in_progress(&self) -> Result<Vec<BulkPublish>> {
        self.run(move |conn| sql::ready(rules::bulks_in_progress(&Lite(conn)))).await
    }

    async fn advance_bulk_publish(
        &self,
        pool: &str,
        started_ms: i64,
        cursor: Option<&(String, String)>,
        end: Option<std::result::Result<(), String>>,
    ) -> Result<bool> {
        owned!(pool);
        let cursor = cursor.cloned();
        self.rule(true, move |tx| sql::ready(rules::advance_bulk(tx, &pool, started_ms, cursor.as_ref(), end))).await
    }

    async fn bulk_page(&self, pool: &str, after: Option<&(String, String)>, limit: i64) -> Result<Vec<DatasetState>> {
        owned!(pool);
        let after = after.cloned();
        self.rule(false, move |tx| sql::ready(rules::bulk_page(tx, &pool, after.as_ref(), limit))).await
    }
}
