//! Recording settings and recorded invocations: the rules are [`sql::recordings`]'. A
//! change of settings is announced like a deploy, so every node's next sync records (or
//! stops) at once; recordings go through the background writer.

use super::*;
use crate::recordings::*;
use sql::recordings as rules;

#[async_trait::async_trait]
impl Recordings for Postgres {
    fn submit_recording(&self, tenant: &str, name: &str, recording: Recording) {
        let job =
            Background::Recording { tenant: tenant.to_owned(), name: name.to_owned(), recording: Box::new(recording) };
        if self.background.try_send(job).is_err() {
            tracing::warn!(tenant, function = name, "the background queue is full: an invocation is not recorded");
        }
    }

    async fn recording_settings(&self, tenant: &str, name: &str) -> Result<Option<RecordingSettings>> {
        rules::settings(&Pg(&self.client().await?), tenant, name).await
    }

    async fn set_recording(
        &self,
        tenant: &str,
        name: &str,
        settings: Option<&RecordingSettings>,
    ) -> Result<std::result::Result<(), RecordingRefused>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let set = rules::set(&Pg(&tx), tenant, name, settings).await?;
        if set.is_ok() {
            self.commit_change(tx, cache::Kinds::FUNCTIONS).await?;
        }
        Ok(set)
    }

    async fn recordings(&self, tenant: &str, name: &str, before: Option<i64>, limit: i64) -> Result<Vec<Recording>> {
        rules::list(&Pg(&self.client().await?), tenant, name, before, limit).await
    }

    async fn recording(&self, tenant: &str, name: &str, id: i64) -> Result<Option<Recording>> {
        rules::get(&Pg(&self.client().await?), tenant, name, id).await
    }

    async fn delete_recordings(&self, tenant: &str, name: &str, id: Option<i64>) -> Result<u64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let deleted = rules::delete(&Pg(&tx), tenant, name, id).await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
