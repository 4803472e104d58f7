//! UpdateRecords: the session and SyncCount checks, the Sync Trigger run in the sandbox
//! (with identity credentials), then one transaction that re-checks and writes.

use super::records::check_session_token;
use super::{authorize_identity, check_dataset_name, principal_name};
use crate::call::Call;
use crate::error::ApiError;
use crate::releases::Selected;
use crate::releases::replay::{self, Answer};
use crate::state::AppState;
use crate::triggers::FunctionRef;
use crate::wire::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use synctrig_runtime::SyncEvent;
use synctrig_runtime::limits;
use synctrig_runtime::merge::{self, EventMeta, Patch, PatchError};
use synctrig_runtime::pipeline::{Outcome, stored_from_event};
use synctrig_runtime::sandbox::Entropy;
use synctrig_store::{
    DatasetKey, Idempotency, InvocationRow, Pool, Principal, Recording, ShadowRun, Update, UpdateOutcome,
};
use synctrig_store::{now, now_ms};

/// The latest DeviceLastModifiedDate accepted: the end of year 9999, the last date the
/// SDKs can represent.
const MAX_DEVICE_DATE_SECS: f64 = 253_402_300_799.999;

fn device_millis(p: &RecordPatch) -> Result<Option<i64>, ApiError> {
    match p.device_last_modified_date {
        None => Ok(None),
        Some(secs) if secs.is_finite() && (0.0..=MAX_DEVICE_DATE_SECS).contains(&secs) => {
            Ok(Some((secs * 1000.0).round() as i64))
        }
        Some(secs) => Err(ApiError::invalid_parameter(format!(
            "DeviceLastModifiedDate {secs} of record {:?} is not a date between 1970 and 9999",
            p.key
        ))),
    }
}

fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::InvalidParameter(m) => ApiError::invalid_parameter(m),
        PatchError::LimitExceeded(m) => ApiError::limit_exceeded(m),
    }
}

pub(crate) async fn update_records(call: Call) -> Result<UpdateRecordsResponse, ApiError> {
    let state = &call.state;
    let (pool_id, identity_id, name) = (call.label(0), call.label(1), call.label(2));
    check_dataset_name(name)?;
    let pool = authorize_identity(state, &call.cred, pool_id, identity_id).await?;
    let request: UpdateRecordsRequest = call.body("UpdateRecords")?;
    let dataset = DatasetKey::new(&pool.pool_id, identity_id, name);
    let token = request
        .sync_session_token
        .as_deref()
        .ok_or_else(|| ApiError::invalid_parameter("SyncSessionToken is required"))?;
    let session = check_session_token(state, token, dataset)?;
    if let Some(device) = &request.device_id
        && !(1..=256).contains(&device.chars().count())
    {
        return Err(ApiError::invalid_parameter("DeviceId must be 1 to 256 characters"));
    }
    let patches: Vec<Patch> =
        request.record_patches.iter().map(|p| Patch { key: p.key.clone(), op: p.op, value: p.value.clone() }).collect();
    merge::check_patches(&patches).map_err(patch_error)?;
    let mut device_times = BTreeMap::new();
    for p in &request.record_patches {
        if p.sync_count < 0 {
            return Err(ApiError::invalid_parameter(format!("SyncCount of record {:?} is negative", p.key)));
        }
        if let Some(ms) = device_millis(p)? {
            device_times.insert(p.key.clone(), ms);
        }
    }
    let idempotency = Idempotency {
        token_hash: hex::encode(Sha256::digest(token.as_bytes())),
        request_hash: request_hash(&request, &device_times),
        expires: session.expires,
    };

    let runs_trigger = matches!(call.cred.principal, Principal::Identity { .. }) && pool.sync_trigger.is_some();
    let mapping = pool.sync_trigger.as_deref().filter(|_| runs_trigger);
    let (snapshot, selected) = state.snapshot_and_selection(&pool.tenant, mapping, dataset).await?;
    if snapshot.sync_count() != session.sync_count {
        // Either a retry of an update that was applied (answered as then), or a push on
        // a stale session: the client must pull what changed first.
        if let Some(answer) = state.store.applied_answer(dataset, &idempotency).await? {
            return Ok(UpdateRecordsResponse { records: answer.iter().map(Record::from).collect() });
        }
        return Err(stale_session(name, session.sync_count, snapshot.sync_count()));
    }
    for p in &request.record_patches {
        let current = snapshot.records.get(&p.key).map_or(0, |r| r.sync_count);
        if p.sync_count != current {
            return Err(ApiError::conflict(format!(
                "Current SyncCount for: {} is: {current} not: {}",
                p.key, p.sync_count
            )));
        }
    }
    if !snapshot.exists() && snapshot.identity_datasets >= limits::MAX_DATASETS_PER_IDENTITY {
        return Err(too_many_datasets());
    }

    let stored = snapshot.live();
    let meta = EventMeta {
        region: state.config.region.clone(),
        identity_pool_id: pool.pool_id.clone(),
        identity_id: identity_id.to_owned(),
        dataset_name: name.to_owned(),
    };
    let mut writes = if let Some(mapping) = mapping {
        let selected = selected.ok_or_else(|| {
            ApiError::internal(format!("the pool's SyncTrigger function {mapping:?} is not deployed"))
        })?;
        run_sync_trigger(state, &pool, selected, &meta, stored.clone(), &patches).await?
    } else {
        merge::apply_patches(&meta, &stored, &patches).map_err(patch_error)?
    };
    // Every patched key is written at the new SyncCount, with its value as it now stands
    // (a tombstone when it has none), so the device that patched it learns its state and
    // sees it in its next incremental sync.
    for p in &patches {
        if !writes.iter().any(|w| w.key == p.key) {
            writes.push(merge::Write { key: p.key.clone(), value: stored.get(&p.key).cloned() });
        }
    }
    writes.sort_by(|a, b| a.key.cmp(&b.key));

    let update = Update {
        pool: pool.pool_id.clone(),
        identity: identity_id.to_owned(),
        name: name.to_owned(),
        expected: session.sync_count,
        writes,
        device_modified_ms: device_times,
        by: principal_name(&call.cred),
        max_datasets: limits::MAX_DATASETS_PER_IDENTITY,
        idempotency,
        device_id: request.device_id.clone(),
    };
    let outcome = state.store.update(update).await?;
    match outcome {
        UpdateOutcome::Applied(rows) | UpdateOutcome::Replayed(rows) => {
            Ok(UpdateRecordsResponse { records: rows.iter().map(Record::from).collect() })
        }
        UpdateOutcome::Conflict => {
            let now = state.store.dataset(dataset).await?.map_or(0, |d| d.sync_count);
            Err(stale_session(name, session.sync_count, now))
        }
        UpdateOutcome::TooManyDatasets => Err(too_many_datasets()),
        UpdateOutcome::IdentityGone => Err(ApiError::not_authorized(format!(
            "identity {} was merged into another identity or deleted; get its credentials again",
            call.label(1)
        ))),
    }
}

fn stale_session(name: &str, issued: i64, now: i64) -> ApiError {
    ApiError::conflict(format!(
        "dataset {name} changed since this SyncSessionToken was issued (its SyncCount was {issued}, now {now}); \
         call ListRecords, merge and retry"
    ))
}

fn too_many_datasets() -> ApiError {
    ApiError::limit_exceeded(format!("an identity may have at most {} datasets", limits::MAX_DATASETS_PER_IDENTITY))
}

/// What makes two UpdateRecords the same request: the device and every patch.
fn request_hash(request: &UpdateRecordsRequest, device_times: &BTreeMap<String, i64>) -> String {
    let patches: Vec<_> = request
        .record_patches
        .iter()
        .map(|p| (&p.key, p.op, &p.value, p.sync_count, device_times.get(&p.key)))
        .collect();
    let canonical = serde_json::to_vec(&(&request.device_id, patches)).unwrap_or_default();
    hex::encode(Sha256::digest(canonical))
}

/// Runs the pool's Sync Trigger in the sandbox and returns the writes it implies.
async fn run_sync_trigger(
    state: &Arc<AppState>,
    pool: &Pool,
    selected: Selected,
    meta: &EventMeta,
    stored: merge::Dataset,
    patches: &[Patch],
) -> Result<Vec<merge::Write>, ApiError> {
    let (name, version) = (selected.function.name.clone(), selected.function.version);
    // Loaded (or compiled in the background) before a slot is taken: a slot never waits
    // on a compile. A version that cannot load counts against it behind an alias.
    let trigger = match state.triggers.get(selected.function.clone()).await {
        Ok(trigger) => trigger,
        Err(e) => {
            state.releases.record(&selected, e.outcome(), 0, 0);
            return Err(e.into());
        }
    };
    let reservation = state.invoker.reserve(&pool.pool_id).await.map_err(ApiError::from)?;
    let input = merge::build_event(meta, &stored, patches);
    // A recorded invocation keeps its event; a shadow version runs on it afterwards.
    let recorded = selected.recording.as_ref().map(|settings| (settings.shadow_version, input.clone()));
    let outcome = reservation.run(trigger, stored, input).await;

    let outcome_label = match &outcome.result {
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    };
    state.metrics.invocation(outcome_label, outcome.stats.wall_us as f64 / 1e6, outcome.stats.fuel_consumed);
    state.releases.record(&selected, outcome_label, outcome.stats.wall_us, outcome.stats.fuel_consumed);
    if let Some((shadow, input)) = recorded {
        record(state, &pool.tenant, &name, version, &outcome, input, shadow);
    }
    let row = InvocationRow {
        at: now(),
        version,
        outcome: outcome_label.to_owned(),
        wall_us: outcome.stats.wall_us as i64,
        fuel: outcome.stats.fuel_consumed as i64,
        peak_memory_bytes: outcome.stats.peak_memory_bytes as i64,
        log: outcome.log,
    };
    state.store.submit_invocation(&pool.tenant, &name, row);
    outcome.result.map(|applied| applied.writes).map_err(ApiError::from)
}

/// Records an invocation — after running the shadow version on its input and entropy,
/// off the update's path, if one is set (its result goes into the recording only).
fn record(
    state: &Arc<AppState>,
    tenant: &str,
    name: &str,
    version: i64,
    outcome: &Outcome,
    input: SyncEvent,
    shadow: Option<i64>,
) {
    let live = Answer::of(outcome);
    let (seed, clock_secs) = replay::entropy_columns(&outcome.entropy);
    let mut recording = Recording {
        id: 0,
        at_ms: now_ms(),
        pool: input.identity_pool_id.clone(),
        identity: input.identity_id.clone(),
        dataset: input.dataset_name.clone(),
        version,
        outcome: live.outcome,
        input: input.to_json(),
        output: live.output,
        error: live.error,
        seed,
        clock_secs,
        wall_us: live.wall_us,
        fuel: live.fuel,
        shadow: None,
    };
    let Some(shadow) = shadow.filter(|v| *v != version) else {
        state.store.submit_recording(tenant, name, recording);
        return;
    };
    let (state, tenant, name, entropy) = (state.clone(), tenant.to_owned(), name.to_owned(), outcome.entropy);
    tokio::spawn(async move {
        recording.shadow = shadow_run(&state, (&tenant, &name, shadow), input, entropy).await;
        state.store.submit_recording(&tenant, &name, recording);
    });
}

/// The shadow version's run on a live invocation's input, in the pool's share; none when
/// the share is taken (a shadow never delays or throttles live traffic) or it cannot load.
async fn shadow_run(
    state: &AppState,
    (tenant, name, version): (&str, &str, i64),
    input: SyncEvent,
    entropy: Entropy,
) -> Option<ShadowRun> {
    // The place in the pool's queue first: a shadow that would wait costs nothing more.
    let reservation = state.invoker.reserve(&input.identity_pool_id).await.ok()?;
    let head = state.store.function(tenant, name, Some(version)).await.ok()??;
    let function = FunctionRef { tenant: tenant.to_owned(), name: name.to_owned(), version, digest: head.digest };
    let trigger = state.triggers.get(function).await.ok()?;
    let stored = stored_from_event(&input);
    let answer = Answer::of(&reservation.run_with(trigger, stored, input, entropy).await);
    Some(ShadowRun {
        version,
        outcome: answer.outcome,
        output: answer.output,
        error: answer.error,
        wall_us: answer.wall_us,
        fuel: answer.fuel,
    })
}
