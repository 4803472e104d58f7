//! Recording a function's invocations (off unless its tenant turns it on), the recordings
//! themselves, replaying a candidate on them, and the shadow report. Only the function's
//! tenant reaches any of it: every call is scoped by the caller's tenant.

use super::deploy::{Built, Release, build};
use super::{TenantTurn, function_name, function_not_found, script, tenant};
use crate::call::{Call, bad_token, max_results};
use crate::error::ApiError;
use crate::releases::replay;
use crate::state::AppState;
use crate::triggers::FunctionRef;
use crate::wire::*;
pub use crate::wire::{PutRecordingRequest, RecordingConfiguration, ReplayReport, ReplayRequest};
use base64::Engine as _;
use std::sync::Arc;
use std::time::Duration;
use synctrig_runtime::invoker::Invoker;
use synctrig_runtime::sandbox::Trigger;
use synctrig_runtime::sandbox::js::Code;
use synctrig_store::recordings::{DEFAULT_RECORDING_AGE_SECS, MAX_RECORDING_AGE_SECS, MAX_RECORDINGS};
use synctrig_store::{Recording, RecordingRefused, RecordingSettings, Store};

/// The shortest age a recording may be kept for.
const MIN_RECORDING_AGE_SECS: i64 = 60;
/// Longest a replay through the API runs; what it has not reached by then is reported
/// as skipped.
pub const REPLAY_BUDGET: Duration = Duration::from_secs(60);
/// Recordings read from the store at a time during a replay.
const REPLAY_PAGE: i64 = 50;

fn shown(name: &str, settings: Option<RecordingSettings>) -> RecordingConfiguration {
    RecordingConfiguration {
        function_name: name.to_owned(),
        enabled: settings.is_some(),
        max_count: settings.as_ref().map(|s| s.max_count),
        max_age_seconds: settings.as_ref().map(|s| s.max_age_secs),
        shadow_version: settings.and_then(|s| s.shadow_version),
    }
}

/// Turns a function's recording on or off (which deletes its recordings), as asked.
pub async fn set_recording(
    store: &Store,
    (tenant, name): (&str, &str),
    request: &PutRecordingRequest,
) -> Result<RecordingConfiguration, ApiError> {
    let settings = if request.enabled {
        let max_count = request.max_count.unwrap_or(MAX_RECORDINGS);
        if !(1..=MAX_RECORDINGS).contains(&max_count) {
            return Err(ApiError::invalid_parameter(format!(
                "MaxCount must be from 1 to {MAX_RECORDINGS}, not {max_count}"
            )));
        }
        let max_age_secs = request.max_age_seconds.unwrap_or(DEFAULT_RECORDING_AGE_SECS);
        if !(MIN_RECORDING_AGE_SECS..=MAX_RECORDING_AGE_SECS).contains(&max_age_secs) {
            return Err(ApiError::invalid_parameter(format!(
                "MaxAgeSeconds must be from {MIN_RECORDING_AGE_SECS} to {MAX_RECORDING_AGE_SECS} (30 days), not {max_age_secs}"
            )));
        }
        if let Some(v) = request.shadow_version
            && v < 1
        {
            return Err(ApiError::invalid_parameter(format!("ShadowVersion {v} is not a version number")));
        }
        Some(RecordingSettings { max_count, max_age_secs, shadow_version: request.shadow_version })
    } else if request.max_count.is_some() || request.max_age_seconds.is_some() || request.shadow_version.is_some() {
        return Err(ApiError::invalid_parameter("recording settings are given only with Enabled true"));
    } else {
        None
    };
    match store.set_recording(tenant, name, settings.as_ref()).await? {
        Ok(()) => Ok(shown(name, settings)),
        Err(RecordingRefused::NoFunction) => Err(function_not_found(name)),
        Err(RecordingRefused::NoShadowVersion(v)) => Err(function_not_found(&format!("{name}:{v}"))),
    }
}

/// A function that exists (recording settings of a missing one are a 404, not "off").
async fn existing(call: &Call) -> Result<(String, String), ApiError> {
    let (tenant, name) = (tenant(call)?, function_name(call)?);
    if call.state.store.function(&tenant, &name, None).await?.is_none() {
        return Err(function_not_found(&name));
    }
    Ok((tenant, name))
}

pub(crate) async fn get_recording_config(call: Call) -> Result<RecordingConfiguration, ApiError> {
    let (tenant, name) = existing(&call).await?;
    Ok(shown(&name, call.state.store.recording_settings(&tenant, &name).await?))
}

pub(crate) async fn put_recording_config(call: Call) -> Result<RecordingConfiguration, ApiError> {
    let (tenant, name) = (tenant(&call)?, function_name(&call)?);
    let request: PutRecordingRequest = call.body("PutRecordingConfiguration")?;
    set_recording(&*call.state.store, (&tenant, &name), &request).await
}

/// A recording as a listing shows it.
pub fn summary(r: &Recording) -> RecordingSummary {
    RecordingSummary {
        id: r.id,
        at: Timestamp::from_millis(r.at_ms),
        identity_pool_id: r.pool.clone(),
        identity_id: r.identity.clone(),
        dataset_name: r.dataset.clone(),
        version: r.version,
        outcome: r.outcome.clone(),
        wall_micros: r.wall_us,
        fuel: r.fuel,
        shadow_version: r.shadow.as_ref().map(|s| s.version),
        shadow_outcome: r.shadow.as_ref().map(|s| s.outcome.clone()),
    }
}

fn recording_id(label: &str) -> Result<i64, ApiError> {
    label
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 1 && label.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| ApiError::invalid_parameter(format!("RecordingId {label:?} is not a recording id")))
}

pub(crate) async fn list_recordings(call: Call) -> Result<ListRecordingsResponse, ApiError> {
    let (tenant, name) = existing(&call).await?;
    let limit = max_results(&call, 50, 100)? as i64;
    let before = match call.query("nextToken")? {
        None => None,
        Some(t) => Some(t.parse::<i64>().ok().filter(|id| *id >= 1).ok_or_else(|| bad_token(t))?),
    };
    let rows = call.state.store.recordings(&tenant, &name, before, limit + 1).await?;
    let next_token = (rows.len() as i64 > limit).then(|| rows[limit as usize - 1].id.to_string());
    let recordings = rows.iter().take(limit as usize).map(summary).collect();
    Ok(ListRecordingsResponse { recordings, next_token })
}

pub(crate) async fn get_recording(call: Call) -> Result<GetRecordingResponse, ApiError> {
    let (tenant, name) = (tenant(&call)?, function_name(&call)?);
    let id = recording_id(call.label(1))?;
    let found = call.state.store.recording(&tenant, &name, id).await?;
    let r = found.ok_or_else(|| not_found(&name, id))?;
    Ok(GetRecordingResponse {
        summary: summary(&r),
        event: r.input.clone(),
        response: r.output.clone(),
        error: replay::error_of(r.error.as_deref()),
        seed: r.seed.clone(),
        clock: r.clock_secs,
        shadow_response: r.shadow.and_then(|s| s.output),
    })
}

fn not_found(name: &str, id: i64) -> ApiError {
    ApiError {
        name: "ResourceNotFoundException",
        status: 404,
        message: format!("function {name:?} has no recording {id}"),
    }
}

pub(crate) async fn delete_recordings(call: Call) -> Result<DeleteRecordingsResponse, ApiError> {
    let (tenant, name) = existing(&call).await?;
    Ok(DeleteRecordingsResponse { deleted: call.state.store.delete_recordings(&tenant, &name, None).await? })
}

pub(crate) async fn delete_recording(call: Call) -> Result<DeleteRecordingsResponse, ApiError> {
    let (tenant, name) = (tenant(&call)?, function_name(&call)?);
    let id = recording_id(call.label(1))?;
    match call.state.store.delete_recordings(&tenant, &name, Some(id)).await? {
        0 => Err(not_found(&name, id)),
        deleted => Ok(DeleteRecordingsResponse { deleted }),
    }
}

pub(crate) async fn get_shadow_report(call: Call) -> Result<ReplayReport, ApiError> {
    let (tenant, name) = existing(&call).await?;
    let mut recordings = Vec::new();
    let mut before = None;
    loop {
        let page = call.state.store.recordings(&tenant, &name, before, REPLAY_PAGE).await?;
        before = page.last().map(|r| r.id);
        let done = (page.len() as i64) < REPLAY_PAGE;
        // Only what a report shows is kept: the shadow's and the live answers.
        recordings
            .extend(page.into_iter().filter(|r| r.shadow.is_some()).map(|r| Recording { input: String::new(), ..r }));
        if done {
            break;
        }
    }
    Ok(replay::shadow_report(&name, &recordings))
}

/// Which recordings a replay runs on.
#[derive(Clone, Debug)]
pub enum Selection {
    /// These, by id.
    Ids(Vec<i64>),
    /// The latest this many.
    Latest(i64),
}

/// What a candidate is: a deployed version, or code not yet deployed.
pub enum Candidate {
    Version(i64),
    Code(Code, std::collections::BTreeMap<String, String>),
}

impl ReplayRequest {
    /// The candidate and recordings a request names, checked.
    pub fn plan(&self) -> Result<(Candidate, Selection), ApiError> {
        let given = [self.version.is_some(), self.script.is_some(), self.component.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(ApiError::invalid_parameter(
                "give exactly one of Version, Script (JavaScript source) or Component (base64 .wasm)",
            ));
        }
        let environment = self.environment.as_ref().map(|e| e.variables.clone()).unwrap_or_default();
        let candidate = if let Some(v) = self.version {
            if v < 1 {
                return Err(ApiError::invalid_parameter(format!("Version {v} is not a version number")));
            }
            Candidate::Version(v)
        } else if let Some(source) = &self.script {
            Candidate::Code(script(source.clone(), self.handler.as_deref().unwrap_or("index.handler"))?, environment)
        } else {
            let b64 = self.component.as_deref().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| ApiError::invalid_parameter(format!("Component is not base64: {e}")))?;
            Candidate::Code(Code::Component(bytes), environment)
        };
        Ok((candidate, self.selection()?))
    }

    /// The recordings a request names, checked.
    pub fn selection(&self) -> Result<Selection, ApiError> {
        Ok(match (&self.recording_ids, self.max_recordings) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_parameter("give RecordingIds or MaxRecordings, not both"));
            }
            (Some(ids), None) => {
                if ids.is_empty() || ids.len() > MAX_RECORDINGS as usize {
                    return Err(ApiError::invalid_parameter(format!(
                        "RecordingIds must name 1 to {MAX_RECORDINGS} recordings"
                    )));
                }
                Selection::Ids(ids.clone())
            }
            (None, Some(n)) if !(1..=MAX_RECORDINGS).contains(&n) => {
                return Err(ApiError::invalid_parameter(format!(
                    "MaxRecordings must be from 1 to {MAX_RECORDINGS}, not {n}"
                )));
            }
            (None, n) => Selection::Latest(n.unwrap_or(MAX_RECORDINGS)),
        })
    }
}

/// The candidate's label in a report, and its code ready to run.
pub async fn load_candidate(
    store: &Store,
    runtime: &Arc<synctrig_runtime::Runtime>,
    region: &str,
    (tenant, name): (&str, &str),
    candidate: Candidate,
    deployed: impl AsyncFnOnce(FunctionRef) -> Result<Trigger, ApiError>,
) -> Result<(String, Trigger), ApiError> {
    match candidate {
        Candidate::Version(version) => {
            let head = store.function(tenant, name, Some(version)).await?;
            let head = head.ok_or_else(|| function_not_found(&format!("{name}:{version}")))?;
            let function =
                FunctionRef { tenant: tenant.to_owned(), name: name.to_owned(), version, digest: head.digest };
            Ok((format!("version {version}"), deployed(function).await?))
        }
        Candidate::Code(code, environment) => {
            if store.function(tenant, name, None).await?.is_none() {
                return Err(function_not_found(name));
            }
            // A script sees the version it would get if it were deployed now.
            let version = store.next_function_version(tenant, name).await?;
            let release = Release { code: &code, handler: "", environment: &environment };
            let Built { trigger, log: _, component: _ } = build(runtime, region, name, version, release).await?;
            let label = match code {
                Code::Script { .. } => "script".to_owned(),
                Code::Component(_) => format!("component {}", trigger.digest()),
            };
            Ok((label, trigger))
        }
    }
}

/// Runs `trigger` on a function's recordings (`selection`) with their entropy, through
/// `queue`'s share of `invoker`, for at most `budget`; a page of recordings is read at a
/// time. Writes nothing.
#[allow(clippy::too_many_arguments)]
pub async fn replay(
    store: &Store,
    invoker: &Invoker,
    queue: &str,
    (tenant, name): (&str, &str),
    (label, trigger): (String, Trigger),
    selection: Selection,
    parallel: usize,
    budget: Duration,
) -> Result<ReplayReport, ApiError> {
    let deadline = tokio::time::Instant::now() + budget;
    let (mut runs, mut skipped) = (Vec::new(), 0);
    let mut run_page = async |recordings: Vec<Recording>| {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (done, not_run) = replay::run(invoker, queue, &trigger, &recordings, parallel, remaining).await;
        runs.extend(done);
        skipped += not_run;
    };
    match selection {
        Selection::Ids(ids) => {
            for chunk in ids.chunks(REPLAY_PAGE as usize) {
                let mut page = Vec::with_capacity(chunk.len());
                for id in chunk {
                    page.push(store.recording(tenant, name, *id).await?.ok_or_else(|| not_found(name, *id))?);
                }
                run_page(page).await;
            }
        }
        Selection::Latest(n) => {
            let (mut before, mut left) = (None, n);
            while left > 0 {
                let asked = left.min(REPLAY_PAGE);
                let page = store.recordings(tenant, name, before, asked).await?;
                let got = page.len() as i64;
                (left, before) = (left - got, page.last().map(|r| r.id));
                run_page(page).await;
                if got < asked {
                    break;
                }
            }
        }
    }
    Ok(replay::report(name, label, runs, skipped))
}

pub(crate) async fn replay_function(call: Call) -> Result<ReplayReport, ApiError> {
    let (tenant, name) = (tenant(&call)?, function_name(&call)?);
    let request: ReplayRequest = call.body("ReplayFunction")?;
    let (candidate, selection) = request.plan()?;
    let state: Arc<AppState> = call.state.clone();
    // One replay per tenant at a time, refused rather than queued; code not yet deployed
    // also takes one of the server's compile slots, as a deploy does.
    let _turn = TenantTurn::start(state.clone(), &format!("replay:{tenant}"), "another replay of this tenant")?;
    let _permit = match candidate {
        Candidate::Code(..) => Some(super::compile_permit(&state).await?),
        Candidate::Version(_) => None,
    };
    let runtime = state.triggers.runtime().clone();
    let triggers = state.triggers.clone();
    let loaded =
        load_candidate(&*state.store, &runtime, &state.config.region, (&tenant, &name), candidate, async |f| {
            Ok(triggers.get(f).await?)
        })
        .await?;
    drop(_permit);
    // The tenant's own queue: a replay shares its slots with the tenant's tests only.
    let queue = format!("replay:{tenant}");
    let parallel = state.config.trigger_slots_per_pool;
    replay(&*state.store, &state.invoker, &queue, (&tenant, &name), loaded, selection, parallel, REPLAY_BUDGET).await
}
