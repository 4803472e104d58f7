//! Recording settings and recorded invocations: the rules are [`sql::recordings`]';
//! recordings go through the writer.

use super::*;
use crate::recordings::*;
use sql::recordings as rules;

#[async_trait::async_trait]
impl Recordings for Sqlite {
    fn submit_recording(&self, tenant: &str, name: &str, recording: Recording) {
        self.submit(Job::Recording {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            recording: Box::new(recording),
        });
    }

    async fn recording_settings(&self, tenant: &str, name: &str) -> Result<Option<RecordingSettings>> {
        owned!(tenant, name);
        self.run(move |conn| sql::ready(rules::settings(&Lite(conn), &tenant, &name))).await
    }

    async fn set_recording(
        &self,
        tenant: &str,
        name: &str,
        settings: Option<&RecordingSettings>,
    ) -> Result<std::result::Result<(), RecordingRefused>> {
        owned!(tenant, name);
        let settings = settings.cloned();
        self.rule(true, move |tx| sql::ready(rules::set(tx, &tenant, &name, settings.as_ref()))).await
    }

    async fn recordings(&self, tenant: &str, name: &str, before: Option<i64>, limit: i64) -> Result<Vec<Recording>> {
        owned!(tenant, name);
        self.run(move |conn| sql::ready(rules::list(&Lite(conn), &tenant, &name, before, limit))).await
    }

    async fn recording(&self, tenant: &str, name: &str, id: i64) -> Result<Option<Recording>> {
        owned!(tenant, name);
        self.run(move |conn| sql::ready(rules::get(&Lite(conn), &tenant, &name, id))).await
    }

    async fn delete_recordings(&self, tenant: &str, name: &str, id: Option<i64>) -> Result<u64> {
        owned!(tenant, name);
        self.rule(true, move |tx| sql::ready(rules::delete(tx, &tenant, &name, id))).await
    }
}
