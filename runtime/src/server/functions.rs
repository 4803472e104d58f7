//! Deploying a function: a component, or a JavaScript script pre-initialised into one, is
//! checked and loaded with exactly the configuration `serve` runs, then stored as the
//! function's next version. `admin deploy` (and any other way to deploy) calls this.

use super::error::ApiError;
use super::store::Store;
use crate::sandbox::Runtime;
use crate::sandbox::js::{Code, ScriptSettings};

/// A deployed function version.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    /// The version it got.
    pub version: i64,
    /// The SHA-256 of its component.
    pub digest: String,
    /// What a script's top level logged while it was loaded.
    pub log: String,
}

/// Deploys `code` as the next version of `tenant`'s function `name`. `handler` is what a
/// script's Lambda context shows (`index.handler`); `region` goes into its ARN.
pub fn deploy(
    store: &Store,
    runtime: &Runtime,
    region: &str,
    (tenant, name): (&str, &str),
    code: &Code,
    handler: &str,
) -> Result<Deployed, ApiError> {
    let version = store.next_function_version(tenant, name)?;
    let settings = ScriptSettings {
        function_name: name.to_owned(),
        function_version: version.to_string(),
        invoked_function_arn: format!("arn:aws:lambda:{region}:000000000000:function:{name}:{version}"),
        memory_limit_in_mb: (runtime.config().limits.memory_bytes >> 20).to_string(),
        deadline_ms: runtime.config().limits.deadline.as_millis() as u64,
    };
    let (component, log) = match code {
        Code::Component(bytes) => (bytes.clone(), String::new()),
        Code::Script { source, export } => {
            let prepared = runtime.prepare_script(source, export, &settings)?;
            (prepared.component, prepared.log)
        }
    };
    let trigger = runtime.load(&component)?;
    let script = match code {
        Code::Script { source, .. } => Some((source.as_str(), handler)),
        Code::Component(_) => None,
    };
    let version = store.deploy_function(tenant, name, trigger.digest(), &component, script)?;
    Ok(Deployed { version, digest: trigger.digest().to_owned(), log })
}
