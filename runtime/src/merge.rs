//! Validation and merge of a trigger's response, as pure functions over plain data.
//!
//! The flow of an update with a trigger is
//! `build_event(stored, patches)` → trigger → `merge(stored, input, response)`;
//! without a trigger (developer credentials) it is `merge(stored, input, input)`, which
//! writes exactly the user's patches. Nothing here touches storage or Wasm.

use crate::event::{EVENT_VERSION, EventRecord, Op, SYNC_TRIGGER, SyncEvent};
use crate::limits::{self, MAX_DATASET_BYTES, MAX_RECORDS};
use std::collections::{BTreeMap, HashSet};

pub use synctrig_core::{Dataset, Write};

/// One change an app user asks for (a Cognito `RecordPatch` without its SyncCount).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// The record key.
    pub key: String,
    /// `Replace` stores `value`; `Remove` (or a `None` value) deletes the record.
    pub op: Op,
    /// The new value.
    pub value: Option<String>,
}

/// The identity fields of an event, which a trigger may not change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventMeta {
    /// The region the service runs as.
    pub region: String,
    /// The identity pool of the dataset.
    pub identity_pool_id: String,
    /// The identity that owns the dataset.
    pub identity_id: String,
    /// The dataset's name.
    pub dataset_name: String,
}

/// Why a trigger's response cannot be stored. Maps to `InvalidLambdaFunctionOutputException`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidOutput(pub String);

/// Why a user's patches are refused before any trigger runs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// A patch is malformed (`InvalidParameterException`).
    #[error("{0}")]
    InvalidParameter(String),
    /// The patches would break a dataset limit (`LimitExceededException`).
    #[error("{0}")]
    LimitExceeded(String),
}

/// Checks a user's patches: keys and values within limits, each key at most once.
pub fn check_patches(patches: &[Patch]) -> Result<(), PatchError> {
    let mut seen = HashSet::new();
    for p in patches {
        if let Some(problem) = limits::key_problem(&p.key) {
            return Err(PatchError::InvalidParameter(problem));
        }
        if !seen.insert(p.key.as_str()) {
            return Err(PatchError::InvalidParameter(format!(
                "record {:?} is patched more than once in one request",
                p.key
            )));
        }
        if let Some(value) = &p.value
            && let Some(problem) = limits::value_problem(&p.key, value)
        {
            return Err(PatchError::InvalidParameter(problem));
        }
    }
    Ok(())
}

/// Builds the trigger's input: every live record with the user's patches applied
/// tentatively. Changed records carry the stored value as `oldValue`; removed ones have
/// op `remove`; untouched ones have `oldValue` = `newValue` = the stored value.
pub fn build_event(meta: &EventMeta, stored: &Dataset, patches: &[Patch]) -> SyncEvent {
    let mut records: BTreeMap<&str, EventRecord> = stored
        .iter()
        .map(|(k, v)| {
            let record =
                EventRecord { key: k.clone(), old_value: Some(v.clone()), new_value: Some(v.clone()), op: Op::Replace };
            (k.as_str(), record)
        })
        .collect();
    for p in patches {
        let old_value = stored.get(&p.key).cloned();
        let removes = p.op == Op::Remove || p.value.is_none();
        if removes && old_value.is_none() {
            // Removing what is not there changes nothing; the trigger need not see it.
            records.remove(p.key.as_str());
            continue;
        }
        let (new_value, op) = if removes { (None, Op::Remove) } else { (p.value.clone(), Op::Replace) };
        records.insert(&p.key, EventRecord { key: p.key.clone(), old_value, new_value, op });
    }
    SyncEvent {
        version: EVENT_VERSION,
        event_type: SYNC_TRIGGER.to_owned(),
        region: meta.region.clone(),
        identity_pool_id: meta.identity_pool_id.clone(),
        identity_id: meta.identity_id.clone(),
        dataset_name: meta.dataset_name.clone(),
        dataset_records: records.into_values().collect(),
    }
}

/// Checks a response against its input: read-only fields untouched, keys unique and
/// within limits, values within limits.
pub fn check_response(input: &SyncEvent, response: &SyncEvent) -> Result<(), InvalidOutput> {
    if input.version != response.version {
        return Err(InvalidOutput(format!(
            "trigger changed the read-only field version from {} to {}",
            input.version, response.version
        )));
    }
    let read_only = [
        ("eventType", &input.event_type, &response.event_type),
        ("region", &input.region, &response.region),
        ("identityPoolId", &input.identity_pool_id, &response.identity_pool_id),
        ("identityId", &input.identity_id, &response.identity_id),
        ("datasetName", &input.dataset_name, &response.dataset_name),
    ];
    for (field, was, now) in read_only {
        if was != now {
            return Err(InvalidOutput(format!("trigger changed the read-only field {field} from {was:?} to {now:?}")));
        }
    }
    for r in &response.dataset_records {
        if let Some(problem) = limits::key_problem(&r.key) {
            return Err(InvalidOutput(format!("trigger returned a record whose {problem}")));
        }
        if let Some(value) = &r.new_value
            && let Some(problem) = limits::value_problem(&r.key, value)
        {
            return Err(InvalidOutput(format!("trigger returned a {problem}")));
        }
    }
    // A response in strictly increasing key order (what the SDK returns) has unique
    // keys; only another order needs the set.
    let records = &response.dataset_records;
    if !records.is_sorted_by(|a, b| a.key < b.key) {
        let mut seen = HashSet::with_capacity(records.len());
        if let Some(r) = records.iter().find(|r| !seen.insert(r.key.as_str())) {
            return Err(InvalidOutput(format!("trigger returned record {:?} twice", r.key)));
        }
    }
    Ok(())
}

/// Merges a trigger's response into the stored dataset and returns the writes: one per
/// record whose value changes, in key order. Keys the response omits stay as stored;
/// `op: remove` or a null `newValue` deletes; anything else is written. The result must
/// keep the dataset within its limits.
pub fn merge(stored: &Dataset, input: &SyncEvent, response: &SyncEvent) -> Result<Vec<Write>, InvalidOutput> {
    check_response(input, response)?;
    // What each returned key becomes, in key order (keys are unique, checked above).
    let mut result: Vec<(&str, Option<&str>)> = response
        .dataset_records
        .iter()
        .map(|r| {
            let value = match r.op {
                Op::Remove => None,
                Op::Replace => r.new_value.as_deref(),
            };
            (r.key.as_str(), value)
        })
        .collect();
    if !result.is_sorted_by(|a, b| a.0 < b.0) {
        result.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    // One pass over both sorted sides: a write wherever the value differs from the stored one.
    let mut stored_iter = stored.iter().peekable();
    let mut writes = Vec::new();
    for (key, value) in result {
        let old = loop {
            match stored_iter.peek() {
                Some((k, _)) if k.as_str() < key => {
                    stored_iter.next();
                }
                Some((k, v)) if k.as_str() == key => break Some(v.as_str()),
                _ => break None,
            }
        };
        if old != value {
            writes.push(Write { key: key.to_owned(), value: value.map(str::to_owned) });
        }
    }
    let (records, bytes) = size_after(stored, &writes);
    if records > MAX_RECORDS {
        return Err(InvalidOutput(format!("trigger's result has {records} records, over the limit of {MAX_RECORDS}")));
    }
    if bytes > MAX_DATASET_BYTES {
        return Err(InvalidOutput(format!(
            "trigger's result is {bytes} bytes, over the dataset limit of {MAX_DATASET_BYTES}"
        )));
    }
    Ok(writes)
}

/// Applies the user's patches with no trigger (developer credentials): the writes, or
/// `LimitExceeded` when the dataset would break a limit.
pub fn apply_patches(meta: &EventMeta, stored: &Dataset, patches: &[Patch]) -> Result<Vec<Write>, PatchError> {
    check_patches(patches)?;
    let input = build_event(meta, stored, patches);
    merge(stored, &input, &input).map_err(|InvalidOutput(m)| {
        PatchError::LimitExceeded(m.replace("trigger's result", "the dataset after this update"))
    })
}

/// Records and bytes of `stored` once `writes` are applied.
pub fn size_after(stored: &Dataset, writes: &[Write]) -> (usize, usize) {
    let mut records = stored.len();
    let mut bytes: usize = stored.iter().map(|(k, v)| k.len() + v.len()).sum();
    for w in writes {
        if let Some(old) = stored.get(&w.key) {
            records -= 1;
            bytes -= w.key.len() + old.len();
        }
        if let Some(new) = &w.value {
            records += 1;
            bytes += w.key.len() + new.len();
        }
    }
    (records, bytes)
}

#[cfg(test)]
mod tests;
