//! Our extension: the functions API (`/synctrig/functions`), which the console's Functions
//! pages use — a tenant's functions, their versions and code, deploying, testing, and the
//! invocations of each. Deploying itself is [`deploy`], which `admin deploy` calls too.

pub mod aliases;
pub mod deploy;
pub mod recordings;

use crate::call::{Call, max_results};
use crate::error::ApiError;
use crate::triggers::{FunctionRef, api_function_name_ok};
use crate::wire::*;
pub(crate) use aliases::*;
use base64::Engine as _;
pub use deploy::{Release, deploy};
pub(crate) use recordings::*;
use std::time::Duration;
use synctrig_runtime::SyncEvent;
use synctrig_runtime::pipeline::stored_from_event;
use synctrig_runtime::sandbox::js::Code;
use synctrig_store::{FunctionHead, Principal};

/// How long a deploy waits for another to finish before it is refused.
const DEPLOY_WAIT: Duration = Duration::from_secs(30);

/// The caller's tenant: functions belong to a tenant, so only its developer reaches them.
fn tenant(call: &Call) -> Result<String, ApiError> {
    match &call.cred.principal {
        Principal::Developer { tenant } => Ok(tenant.clone()),
        _ => Err(ApiError::not_authorized(
            "functions belong to a tenant: use the tenant's developer credentials (admin commands for the operator)",
        )),
    }
}

fn function_name(call: &Call) -> Result<String, ApiError> {
    let name = call.label(0);
    api_function_name_ok(name).map(str::to_owned).ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "FunctionName {name:?} is not a function name (letters, digits, - and _, at most 64)"
        ))
    })
}

fn function_not_found(name: &str) -> ApiError {
    ApiError { name: "ResourceNotFoundException", status: 404, message: format!("no function {name:?}") }
}

pub(super) async fn list_functions(call: Call) -> Result<ListFunctionsResponse, ApiError> {
    let tenant = tenant(&call)?;
    Ok(ListFunctionsResponse { functions: call.state.store.functions(&tenant).await? })
}

pub(super) async fn describe_function(call: Call) -> Result<DescribeFunctionResponse, ApiError> {
    let (tenant, name) = (tenant(&call)?, function_name(&call)?);
    let versions = call.state.store.function_versions(&tenant, &name).await?;
    if versions.is_empty() {
        return Err(function_not_found(&name));
    }
    Ok(DescribeFunctionResponse { function_name: name, versions })
}

fn version_label(call: &Call) -> Result<i64, ApiError> {
    let label = call.label(1);
    label
        .parse::<i64>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| ApiError::invalid_parameter(format!("Version {label:?} is not a version number")))
}

pub(super) async fn get_function_version(call: Call) -> Result<GetFunctionVersionResponse, ApiError> {
    let (tenant, name, number) = (tenant(&call)?, function_name(&call)?, version_label(&call)?);
    let store = &call.state.store;
    let version = store.function_versions(&tenant, &name).await?.into_iter().find(|v| v.version == number);
    let version = version.ok_or_else(|| function_not_found(&format!("{name}:{number}")))?;
    let script = store.function_script(&tenant, &name, number).await?;
    let (source, environment) = script.map(|s| (s.source, Environment { variables: s.environment })).unzip();
    Ok(GetFunctionVersionResponse { function_name: name, version, source, environment })
}

pub(super) async fn publish_function_version(call: Call) -> Result<PublishFunctionVersionResponse, ApiError> {
    let (tenant, name) = (tenant(&call)?, function_name(&call)?);
    let state = call.state.clone();
    // One deploy per tenant at a time, refused at once rather than queued: a tenant cannot
    // hold more than one of the server's deploy slots, nor wait in line for them.
    let _tenant_deploy = TenantTurn::start(call.state.clone(), &tenant, "another deploy of this tenant")?;
    let request: PublishFunctionVersionRequest = call.body("PublishFunctionVersion")?;
    let given = [request.script.is_some(), request.component.is_some(), request.from_version.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ApiError::invalid_parameter(
            "give exactly one of Script (JavaScript source), Component (base64 .wasm) or FromVersion",
        ));
    }
    let _permit = compile_permit(&state).await?;
    let expected = request.expected_latest_version;
    let handler = request.handler.unwrap_or_else(|| "index.handler".to_owned());
    let given_environment = request.environment.map(|e| e.variables);
    let (code, handler, environment) = if let Some(source) = request.script {
        (script(source, &handler)?, handler, given_environment.unwrap_or_default())
    } else if let Some(b64) = request.component {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| ApiError::invalid_parameter(format!("Component is not base64: {e}")))?;
        (Code::Component(bytes), handler, given_environment.unwrap_or_default())
    } else {
        // A roll back: the earlier version's code (and, unless given, its environment)
        // becomes the latest, deployed again so that a script's context names its new version.
        let from = request.from_version.unwrap_or_default();
        let missing = || function_not_found(&format!("{name}:{from}"));
        match state.store.function_script(&tenant, &name, from).await? {
            Some(stored) => (
                script(stored.source, &stored.handler)?,
                stored.handler,
                given_environment.unwrap_or(stored.environment),
            ),
            None => {
                let wasm = state.store.function_wasm(&tenant, &name, from).await?.ok_or_else(missing)?;
                (Code::Component(wasm), handler, given_environment.unwrap_or_default())
            }
        }
    };
    let release = Release { code: &code, handler: &handler, environment: &environment };
    publish(&state, (&tenant, &name), release, expected).await
}

/// A script's code, with the export its handler setting names.
fn script(source: String, handler: &str) -> Result<Code, ApiError> {
    let (_, export) = synctrig_runtime::sandbox::js::parse_handler(handler)?;
    Ok(Code::Script { export: export.to_owned(), source })
}

/// A tenant's turn at something it may do once at a time (a deploy, a replay); ends when
/// dropped.
pub(crate) struct TenantTurn {
    state: std::sync::Arc<crate::state::AppState>,
    key: String,
}

impl TenantTurn {
    /// The turn under `key`, or `TooManyRequestsException` naming `what` holds it.
    pub(crate) fn start(
        state: std::sync::Arc<crate::state::AppState>,
        key: &str,
        what: &str,
    ) -> Result<Self, ApiError> {
        let started = state.deploying.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_owned());
        if !started {
            return Err(ApiError::too_many_requests(format!("{what} is in progress; retry when it ends")));
        }
        Ok(TenantTurn { state, key: key.to_owned() })
    }
}

impl Drop for TenantTurn {
    fn drop(&mut self) {
        self.state.deploying.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
    }
}

/// One of the server's compile slots, waited for at most [`DEPLOY_WAIT`].
pub(crate) async fn compile_permit(
    state: &crate::state::AppState,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    tokio::time::timeout(DEPLOY_WAIT, state.deploys.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::too_many_requests("other deploys are compiling; retry"))?
        .map_err(|_| ApiError::internal("the server is shutting down"))
}

async fn publish(
    state: &crate::state::AppState,
    (tenant, name): (&str, &str),
    release: Release<'_>,
    expected_latest: Option<i64>,
) -> Result<PublishFunctionVersionResponse, ApiError> {
    let runtime = state.triggers.runtime().clone();
    let deployed =
        deploy(&*state.store, &runtime, &state.config.region, (tenant, name), release, expected_latest).await?;
    Ok(PublishFunctionVersionResponse {
        function_name: name.to_owned(),
        version: deployed.version,
        digest: deployed.digest,
        log: deployed.log,
    })
}

/// Runs a function version on an event with `run`'s semantics: the stored dataset is the
/// event's `oldValue`s; the response is validated and merged, and nothing is stored.
pub(super) async fn test_function(call: Call) -> Result<TestFunctionResponse, ApiError> {
    let (tenant, name) = (tenant(&call)?, function_name(&call)?);
    let request: TestFunctionRequest = call.body("TestFunction")?;
    let input = SyncEvent::from_json_input(request.event.as_bytes())
        .map_err(|e| ApiError::invalid_parameter(format!("the test event is not valid: {}", e.0)))?;
    let state = call.state.clone();
    let found = state.store.function(&tenant, &name, request.version).await?;
    let FunctionHead { version, digest } = found.ok_or_else(|| match request.version {
        Some(v) => function_not_found(&format!("{name}:{v}")),
        None => function_not_found(&name),
    })?;
    let trigger = state.triggers.get(FunctionRef { tenant: tenant.clone(), name, version, digest }).await?;
    // Tests share the tenant's own queue, so a tenant testing in a loop slows only itself.
    let reservation = state.invoker.reserve(&format!("test:{tenant}")).await?;
    let stored = stored_from_event(&input);
    let outcome = reservation.run(trigger, stored, input).await;
    let (response, error) = match outcome.result {
        Ok(applied) => (Some(applied.response.to_json_pretty()), None),
        Err(e) => (None, Some(TestError { name: e.api_name().to_owned(), message: e.to_string() })),
    };
    Ok(TestFunctionResponse {
        version,
        response,
        error,
        log: outcome.log,
        wall_micros: outcome.stats.wall_us,
        fuel: outcome.stats.fuel_consumed,
        peak_memory_bytes: outcome.stats.peak_memory_bytes as u64,
    })
}

/// Deletes a function and everything it has, unless a pool's SyncTrigger names it.
pub async fn delete(store: &synctrig_store::Store, (tenant, name): (&str, &str)) -> Result<i64, ApiError> {
    match store.delete_function(tenant, name).await? {
        Ok(versions) => Ok(versions),
        Err(synctrig_store::DeleteRefused::Missing) => Err(function_not_found(name)),
        Err(synctrig_store::DeleteRefused::InUse { pool }) => Err(ApiError::conflict(format!(
            "identity pool {pool}'s SyncTrigger names function {name:?}; map another one first"
        ))),
    }
}

pub(super) async fn delete_function(call: Call) -> Result<DeleteFunctionResponse, ApiError> {
    let (tenant, name) = (tenant(&call)?, function_name(&call)?);
    // Not beside a deploy of the tenant's.
    let _turn = TenantTurn::start(call.state.clone(), &tenant, "a deploy of this tenant")?;
    let versions = delete(&*call.state.store, (&tenant, &name)).await?;
    Ok(DeleteFunctionResponse { function_name: name, deleted_versions: versions })
}

pub(crate) async fn list_trigger_invocations(call: Call) -> Result<ListTriggerInvocationsResponse, ApiError> {
    let Principal::Developer { tenant } = &call.cred.principal else {
        return Err(ApiError::not_authorized("trigger invocations are readable with developer credentials only"));
    };
    let limit = max_results(&call, 100, 100)? as i64;
    let function = call.label(0).to_owned();
    let invocations = call.state.store.invocations(tenant, &function, limit).await?;
    Ok(ListTriggerInvocationsResponse { function, invocations })
}
