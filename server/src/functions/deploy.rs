//! Deploying a function: a component, or a JavaScript script pre-initialised into one, is
//! checked and loaded with exactly the configuration `serve` runs, then stored as the
//! function's next version. `admin deploy` (and any other way to deploy) calls this.

use crate::error::ApiError;
use std::collections::BTreeMap;
use std::sync::Arc;
use synctrig_runtime::limits;
use synctrig_runtime::sandbox::js::{Code, ScriptSettings};
use synctrig_runtime::sandbox::{Runtime, Trigger};
use synctrig_store::{DeployRefused, Script, Store};

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

fn refused(why: DeployRefused) -> ApiError {
    ApiError::limit_exceeded(match why {
        DeployRefused::Changed { latest } => {
            return ApiError::conflict(match latest {
                0 => "the function has no version yet".to_owned(),
                n => format!("the function's latest version is now {n}; reload it and deploy again"),
            });
        }
        DeployRefused::Functions => format!("a tenant may have at most {} functions", limits::MAX_FUNCTIONS_PER_TENANT),
        DeployRefused::Versions => {
            format!("a function may have at most {} versions", limits::MAX_VERSIONS_PER_FUNCTION)
        }
    })
}

/// What a deploy makes a version of: the code, and for a script its handler (what its
/// Lambda context shows, `index.handler`) and environment variables.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    pub code: &'a Code,
    pub handler: &'a str,
    pub environment: &'a BTreeMap<String, String>,
}

/// Code made ready to run: its component (a script's pre-initialised), the trigger loaded
/// from it, and what a script's top level logged.
pub struct Built {
    pub component: Vec<u8>,
    pub trigger: Trigger,
    pub log: String,
}

/// Checks `release` and makes it ready to run as `version` of `tenant`'s function `name`
/// (a script sees that version and `region` in its Lambda context), without storing it.
pub async fn build(
    runtime: &Arc<Runtime>,
    region: &str,
    name: &str,
    version: i64,
    Release { code, environment, .. }: Release<'_>,
) -> Result<Built, ApiError> {
    match code {
        Code::Script { .. } => synctrig_runtime::sandbox::js::check_environment(environment)
            .map_err(|e| ApiError::invalid_parameter(format!("Environment: {e}")))?,
        Code::Component(_) if !environment.is_empty() => {
            return Err(ApiError::invalid_parameter(
                "Environment: only a JavaScript function has environment variables (a component has no process.env)",
            ));
        }
        Code::Component(_) => {}
    }
    let settings = ScriptSettings {
        function_name: name.to_owned(),
        function_version: version.to_string(),
        invoked_function_arn: format!("arn:aws:lambda:{region}:000000000000:function:{name}:{version}"),
        memory_limit_in_mb: (runtime.config().limits.memory_bytes >> 20).to_string(),
        deadline_ms: runtime.config().limits.deadline.as_millis() as u64,
        environment: environment.clone(),
    };
    // Pre-initialising and compiling block (they wait for the worker process): off the
    // async workers.
    let (runtime, compiled) = (runtime.clone(), code.clone());
    tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let (component, log) = match compiled {
            Code::Component(bytes) => (bytes, String::new()),
            Code::Script { source, export } => {
                let prepared = runtime.prepare_script(&source, &export, &settings)?;
                (prepared.component, prepared.log)
            }
        };
        let trigger = runtime.load(&component)?;
        Ok(Built { component, trigger, log })
    })
    .await
    .unwrap_or_else(|e| Err(ApiError::internal(format!("the build task failed: {e}"))))
}

/// Deploys `release` as the next version of `tenant`'s function `name`; `region` goes into
/// a script's ARN.
pub async fn deploy(
    store: &Store,
    runtime: &Arc<Runtime>,
    region: &str,
    (tenant, name): (&str, &str),
    release: Release<'_>,
    expected_latest: Option<i64>,
) -> Result<Deployed, ApiError> {
    // A deploy the limits would refuse is refused before it costs a compile.
    if let Some(limit) = store.function_limit(tenant, name).await? {
        return Err(refused(limit));
    }
    let version = store.next_function_version(tenant, name).await?;
    if let Some(expected) = expected_latest
        && expected != version - 1
    {
        return Err(refused(DeployRefused::Changed { latest: version - 1 }));
    }
    let Built { component, trigger, log } = build(runtime, region, name, version, release).await?;
    let digest = trigger.digest().to_owned();
    let script = match release.code {
        Code::Script { source, .. } => Some(Script {
            source: source.clone(),
            handler: release.handler.to_owned(),
            environment: release.environment.clone(),
        }),
        Code::Component(_) => None,
    };
    let version = store
        .deploy_function(tenant, name, &digest, &component, script.as_ref(), expected_latest)
        .await?
        .map_err(refused)?;
    Ok(Deployed { version, digest, log })
}
