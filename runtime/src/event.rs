//! The Sync Trigger event (Cognito event version 2) and its JSON codec.
//!
//! On the wire `datasetRecords` is a JSON object keyed by record key; here it is a list
//! in the object's order, because that is what the WIT interface carries and it keeps
//! the codec lossless. Keys are unique: the decoder rejects duplicates.
//!
//! The same types are the WIT interface's `sync-event` as the host lowers it into a
//! trigger (derived `Lower`, field names as in `wit/world.wit`), so an invocation copies
//! no event into generated types first; `sandbox::abi` lifts the response.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use wasmtime::component::{ComponentType, Lift, Lower};

/// The only event version this service speaks.
pub const EVENT_VERSION: u32 = 2;
/// The only event type this service raises.
pub const SYNC_TRIGGER: &str = "SyncTrigger";

/// What an update does with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ComponentType, Lift, Lower)]
#[serde(rename_all = "lowercase")]
#[component(enum)]
#[repr(u8)]
pub enum Op {
    /// Store the new value (or remove the record when the new value is null).
    #[component(name = "replace")]
    Replace,
    /// Remove the record.
    #[component(name = "remove")]
    Remove,
}

/// One record of a sync event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ComponentType, Lower)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[component(record)]
pub struct EventRecord {
    /// The record key (serialised as the object key, not as a field).
    #[serde(skip)]
    pub key: String,
    /// The stored value before the update; `None` for a new key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[component(name = "old-value")]
    pub old_value: Option<String>,
    /// The proposed value; `None` (null) removes the record.
    #[serde(default)]
    #[component(name = "new-value")]
    pub new_value: Option<String>,
    /// What to do with the record.
    pub op: Op,
}

/// A Sync Trigger event: the input to a trigger and, in the same shape, its output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ComponentType, Lower)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[component(record)]
pub struct SyncEvent {
    /// The event format version (2).
    pub version: u32,
    /// The event type (`SyncTrigger`).
    #[component(name = "event-type")]
    pub event_type: String,
    /// The region the service runs as.
    pub region: String,
    /// The identity pool of the dataset.
    #[component(name = "identity-pool-id")]
    pub identity_pool_id: String,
    /// The identity that owns the dataset.
    #[component(name = "identity-id")]
    pub identity_id: String,
    /// The dataset's name.
    #[component(name = "dataset-name")]
    pub dataset_name: String,
    /// The records, in order, keys unique.
    #[serde(serialize_with = "serialize_records", deserialize_with = "deserialize_records")]
    #[component(name = "records")]
    pub dataset_records: Vec<EventRecord>,
}

/// Why a JSON document is not a valid sync event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

impl SyncEvent {
    /// Decodes an event from JSON, rejecting bad JSON, wrong types, unknown fields,
    /// unknown ops and duplicate record keys with a message that says where.
    pub fn from_json(json: &[u8]) -> Result<SyncEvent, DecodeError> {
        serde_json::from_slice(json).map_err(|e| DecodeError(e.to_string()))
    }

    /// Decodes an event that a client hands us as the input to a trigger: on top of
    /// [`from_json`](Self::from_json) it must be version 2 of `SyncTrigger`.
    pub fn from_json_input(json: &[u8]) -> Result<SyncEvent, DecodeError> {
        let event = Self::from_json(json)?;
        if event.version != EVENT_VERSION {
            return Err(DecodeError(format!(
                "version is {}, but only version {EVENT_VERSION} events exist",
                event.version
            )));
        }
        if event.event_type != SYNC_TRIGGER {
            return Err(DecodeError(format!(
                "eventType is {:?}, but only {SYNC_TRIGGER:?} events exist",
                event.event_type
            )));
        }
        Ok(event)
    }

    /// Encodes the event as compact JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and numbers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Encodes the event as indented JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The record under `key`.
    pub fn record(&self, key: &str) -> Option<&EventRecord> {
        self.dataset_records.iter().find(|r| r.key == key)
    }
}

fn serialize_records<S: Serializer>(records: &[EventRecord], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(records.len()))?;
    for r in records {
        map.serialize_entry(&r.key, r)?;
    }
    map.end()
}

fn deserialize_records<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EventRecord>, D::Error> {
    struct Records;
    impl<'de> Visitor<'de> for Records {
        type Value = Vec<EventRecord>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of records keyed by record key")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut records: Vec<EventRecord> = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
            // Events are usually in key order, where a key above the last one is new;
            // only out-of-order keys need the set (built once, when the order breaks).
            let mut seen: Option<HashSet<String>> = None;
            while let Some(key) = map.next_key::<String>()? {
                let in_order = seen.is_none() && records.last().is_none_or(|last| last.key < key);
                if !in_order {
                    let seen = seen.get_or_insert_with(|| records.iter().map(|r| r.key.clone()).collect());
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format_args!("duplicate record key {key:?} in datasetRecords")));
                    }
                }
                let mut record: EventRecord =
                    map.next_value().map_err(|e| de::Error::custom(format_args!("datasetRecords[{key:?}]: {e}")))?;
                record.key = key;
                records.push(record);
            }
            Ok(records)
        }
    }
    d.deserialize_map(Records)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SEED: &str = r#"{ "version": 2, "eventType": "SyncTrigger", "region": "us-east-1", "identityPoolId": "identityPoolId", "identityId": "identityId", "datasetName": "datasetName", "datasetRecords": { "SampleKey1": { "oldValue": "oldValue1", "newValue": "newValue1", "op": "replace" }, "SampleKey2": { "oldValue": "oldValue2", "newValue": "newValue2", "op": "replace" } } }"#;

    #[test]
    fn decodes_the_seed_event_in_order() {
        let e = SyncEvent::from_json_input(SEED.as_bytes()).unwrap();
        assert_eq!(e.identity_pool_id, "identityPoolId");
        let keys: Vec<_> = e.dataset_records.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["SampleKey1", "SampleKey2"]);
        assert_eq!(e.dataset_records[1].old_value.as_deref(), Some("oldValue2"));
        assert_eq!(SyncEvent::from_json(e.to_json().as_bytes()).unwrap(), e);
    }

    fn err(json: &str) -> String {
        SyncEvent::from_json_input(json.as_bytes()).unwrap_err().0
    }

    #[test]
    fn rejects_precisely() {
        assert!(err("{").contains("EOF"));
        assert!(err(&SEED.replace("\"version\": 2", "\"version\": \"2\"")).contains("invalid type"));
        assert!(err(&SEED.replace("\"version\": 2", "\"version\": 3")).contains("version is 3"));
        let unknown_op = err(&SEED.replace("\"op\": \"remove\"", "").replacen("\"replace\"", "\"upsert\"", 1));
        assert!(unknown_op.contains("SampleKey1") && unknown_op.contains("upsert"), "{unknown_op}");
        let dup = err(&SEED.replace("SampleKey2", "SampleKey1"));
        assert!(dup.contains("duplicate record key \"SampleKey1\""), "{dup}");
        // Out of key order: the duplicate is two records after its first.
        let three = SEED.replace(
            "\"SampleKey2\": {",
            "\"SampleKey0\": { \"newValue\": null, \"op\": \"replace\" }, \"SampleKey2\": {",
        );
        assert!(SyncEvent::from_json(three.as_bytes()).is_ok());
        let dup = err(&three.replace("SampleKey2", "SampleKey1"));
        assert!(dup.contains("duplicate record key \"SampleKey1\""), "{dup}");
        let value = err(&SEED.replace("\"newValue1\"", "7"));
        assert!(value.contains("SampleKey1") && value.contains("invalid type"), "{value}");
        assert!(err(&SEED.replace("\"region\"", "\"extra\": 1, \"region\"")).contains("unknown field `extra`"));
        assert!(err(&SEED.replace("\"eventType\": \"SyncTrigger\"", "\"eventType\": \"Other\"")).contains("Other"));
        assert!(
            err(&SEED.replace(", \"op\": \"replace\" }, \"SampleKey2\"", " }, \"SampleKey2\""))
                .contains("missing field `op`")
        );
    }

    #[test]
    fn null_and_absent_values_are_none() {
        let json = SEED.replace("\"oldValue\": \"oldValue1\", \"newValue\": \"newValue1\"", "\"newValue\": null");
        let e = SyncEvent::from_json(json.as_bytes()).unwrap();
        assert_eq!(e.dataset_records[0].old_value, None);
        assert_eq!(e.dataset_records[0].new_value, None);
    }
}
