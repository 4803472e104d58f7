//! The seed's sample Sync Trigger as an Extism plugin: JSON event in, JSON event out,
//! the same logic as `examples/sample-trigger` (modify SampleKey1, remove SampleKey2,
//! add SampleKey3 when absent, one log line).

use extism_pdk::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    old_value: Option<String>,
    #[serde(default)]
    new_value: Option<String>,
    op: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    version: u32,
    event_type: String,
    region: String,
    identity_pool_id: String,
    identity_id: String,
    dataset_name: String,
    dataset_records: BTreeMap<String, Record>,
}

#[plugin_fn]
pub fn handle(input: Vec<u8>) -> FnResult<Vec<u8>> {
    let mut event: Event = serde_json::from_slice(&input)?;
    info!("SyncTrigger for {} / {}: {} records", event.identity_id, event.dataset_name, event.dataset_records.len());
    if event.event_type == "SyncTrigger" {
        if let Some(r) = event.dataset_records.get_mut("SampleKey1") {
            r.new_value = Some("ModifyValue1".into());
            r.op = "replace".into();
        }
        if let Some(r) = event.dataset_records.get_mut("SampleKey2") {
            r.new_value = None;
            r.op = "remove".into();
        }
        event.dataset_records.entry("SampleKey3".into()).or_insert(Record {
            old_value: None,
            new_value: Some("ModifyValue3".into()),
            op: "replace".into(),
        });
    }
    Ok(serde_json::to_vec(&event)?)
}
