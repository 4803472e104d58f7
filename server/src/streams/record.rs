//! What leaves the service, as pure functions: the Cognito Streams record of a committed
//! change (split into parts when it would pass the broker's largest message), the push
//! message for a subscribed device, their subjects and the message ids that let JetStream
//! drop a second copy.

use serde::Serialize;
use synctrig_store::RecordRow;
use synctrig_store::streams::{ChangeKind, DatasetState, Device, OutboxEntry};

/// Room kept under the broker's largest message for headers and framing.
const HEADROOM: usize = 1024;

/// One record of `kinesisSyncRecords`, as Cognito Streams documented it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord<'a> {
    pub key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a str>,
    pub sync_count: i64,
    /// Epoch milliseconds.
    pub last_modified_date: i64,
    /// Epoch milliseconds (the device's own clock; the service's when it sent none).
    pub device_last_modified_date: i64,
    /// `replace`, or `remove` for a deleted record.
    pub op: &'static str,
    /// Set (to the value's length in bytes) instead of `value` when the record alone would
    /// pass the broker's largest message: read it through the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_omitted: Option<usize>,
}

impl<'a> From<&'a RecordRow> for SyncRecord<'a> {
    fn from(r: &'a RecordRow) -> Self {
        let modified = r.modified * 1000;
        SyncRecord {
            key: &r.key,
            value: r.value.as_deref(),
            sync_count: r.sync_count,
            last_modified_date: modified,
            device_last_modified_date: r.device_modified_ms.unwrap_or(modified),
            op: if r.value.is_some() { "replace" } else { "remove" },
            value_omitted: None,
        }
    }
}

/// A Cognito Streams record: the fields Cognito documented, plus `change` (what made it:
/// `update`, `delete`, `merged-in`, `merged-out`, `bulk`) and, when a change was split,
/// `part` (from 1) and `parts`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRecord<'a> {
    pub identity_pool_id: &'a str,
    pub identity_id: &'a str,
    #[serde(rename = "dataSetName")]
    pub dataset_name: &'a str,
    /// `replace` (records written) or `remove` (the dataset is gone from this identity).
    pub operation: &'static str,
    pub kinesis_sync_records: Vec<SyncRecord<'a>>,
    /// Epoch milliseconds.
    pub last_modified_date: i64,
    /// Always `Inline`: large changes are split into parts, never referenced.
    pub payload_type: &'static str,
    pub sync_count: i64,
    pub change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<usize>,
}

/// A message ready to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub subject: String,
    /// JetStream's `Nats-Msg-Id`: a second message with it (within the stream's
    /// duplicate window) is dropped.
    pub id: String,
    pub payload: Vec<u8>,
}

/// The subject a pool's records are published on, in the stream `stream`.
pub fn stream_subject(prefix: &str, stream: &str, pool: &str) -> String {
    format!("{prefix}.streams.{stream}.{pool}")
}

/// The subjects the JetStream stream `stream` takes.
pub fn stream_subjects(prefix: &str, stream: &str) -> String {
    format!("{prefix}.streams.{stream}.>")
}

/// The subject of push messages for a pool's devices of `platform`.
pub fn push_subject(prefix: &str, pool: &str, platform: &str) -> String {
    format!("{prefix}.push.{pool}.{platform}")
}

/// The subjects of the push stream.
pub fn push_subjects(prefix: &str) -> String {
    format!("{prefix}.push.>")
}

/// Whether `name` can name a JetStream stream (no whitespace, `.`, `*`, `>`, `/`, `\`,
/// nor control characters), and is not the push stream's.
pub fn valid_stream_name(name: &str, push_stream: &str) -> bool {
    !name.is_empty()
        && name != push_stream
        && name.chars().all(|c| !c.is_whitespace() && !c.is_control() && !".*>/\\".contains(c))
}

fn change_name(kind: ChangeKind) -> &'static str {
    kind.as_str()
}

/// The stream messages of an outbox entry.
pub fn entry_messages(prefix: &str, stream: &str, e: &OutboxEntry, max_payload: usize) -> Vec<Message> {
    let operation = match e.kind {
        ChangeKind::Update | ChangeKind::MergedIn => "replace",
        ChangeKind::Delete | ChangeKind::MergedOut => "remove",
    };
    let suffix = match e.kind {
        ChangeKind::Update | ChangeKind::Delete => String::new(),
        ChangeKind::MergedIn | ChangeKind::MergedOut => format!("/{}", e.kind.as_str()),
    };
    let id = format!("{}/{}/{}/{}{suffix}", e.pool_id, e.identity_id, e.dataset, e.sync_count);
    let record = StreamRecord {
        identity_pool_id: &e.pool_id,
        identity_id: &e.identity_id,
        dataset_name: &e.dataset,
        operation,
        kinesis_sync_records: e.records.iter().map(SyncRecord::from).collect(),
        last_modified_date: e.at_ms,
        payload_type: "Inline",
        sync_count: e.sync_count,
        change: change_name(e.kind),
        part: None,
        parts: None,
    };
    split(record, &stream_subject(prefix, stream, &e.pool_id), &id, max_payload)
}

/// The stream messages of a dataset a bulk publish sends (`started_ms` tells bulk
/// publishes apart: a second one sends everything again).
pub fn bulk_messages(
    prefix: &str,
    stream: &str,
    pool: &str,
    d: &DatasetState,
    started_ms: i64,
    max_payload: usize,
) -> Vec<Message> {
    let id = format!("bulk/{started_ms}/{pool}/{}/{}/{}", d.identity_id, d.name, d.sync_count);
    let record = StreamRecord {
        identity_pool_id: pool,
        identity_id: &d.identity_id,
        dataset_name: &d.name,
        operation: "replace",
        kinesis_sync_records: d.records.iter().map(SyncRecord::from).collect(),
        last_modified_date: d.modified_ms,
        payload_type: "Inline",
        sync_count: d.sync_count,
        change: "bulk",
        part: None,
        parts: None,
    };
    split(record, &stream_subject(prefix, stream, pool), &id, max_payload)
}

/// `record` as one message, or as parts of at most `max_payload` bytes each (each part
/// holds whole records; a part's id is the record's with `/part`).
fn split(record: StreamRecord<'_>, subject: &str, id: &str, max_payload: usize) -> Vec<Message> {
    let limit = max_payload.saturating_sub(HEADROOM).max(HEADROOM);
    let whole = serde_json::to_vec(&record).unwrap_or_default();
    if whole.len() <= limit {
        return vec![Message { subject: subject.to_owned(), id: id.to_owned(), payload: whole }];
    }
    // Each part's frame (every field but the records) and each record's size, then
    // records packed in order.
    let frame = serde_json::to_vec(&StreamRecord {
        kinesis_sync_records: Vec::new(),
        part: Some(0),
        parts: Some(0),
        ..record.clone()
    })
    .map_or(0, |v| v.len())
        + 32;
    let mut groups: Vec<Vec<SyncRecord<'_>>> = vec![Vec::new()];
    let mut size = frame;
    for mut r in record.kinesis_sync_records.iter().cloned() {
        let mut n = serde_json::to_vec(&r).map_or(0, |v| v.len()) + 1;
        if frame + n > limit {
            // Alone it passes the limit: its value stays behind (the API has it).
            r.value_omitted = r.value.take().map(str::len);
            n = serde_json::to_vec(&r).map_or(0, |v| v.len()) + 1;
        }
        if size + n > limit && !groups.last().is_some_and(Vec::is_empty) {
            groups.push(Vec::new());
            size = frame;
        }
        size += n;
        if let Some(g) = groups.last_mut() {
            g.push(r);
        }
    }
    let parts = groups.len();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, records)| {
            let part =
                StreamRecord { kinesis_sync_records: records, part: Some(i + 1), parts: Some(parts), ..record.clone() };
            Message {
                subject: subject.to_owned(),
                id: format!("{id}/{}", i + 1),
                payload: serde_json::to_vec(&part).unwrap_or_default(),
            }
        })
        .collect()
}

/// Cognito's push payload fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PushData<'a> {
    source: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    identity_pool_id: &'a str,
    identity_id: &'a str,
    dataset_name: &'a str,
    sync_count: i64,
}

/// A push message: where it goes (the device, its platform and token, the platform
/// application it registered under) and what it says (`data`, Cognito's fields).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PushMessage<'a> {
    device_id: &'a str,
    platform: &'a str,
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_arn: Option<&'a str>,
    data: PushData<'a>,
}

/// The application of `platform` among a pool's push applications
/// (`arn:aws:sns:…:app/<PLATFORM>/<name>`).
fn application_for<'a>(arns: &'a [String], platform: &str) -> Option<&'a str> {
    arns.iter().map(String::as_str).find(|arn| arn.split('/').nth(1) == Some(platform))
}

/// The push messages of an outbox entry: one per subscribed device but the one that wrote.
pub fn push_messages(prefix: &str, e: &OutboxEntry, devices: &[Device], arns: &[String]) -> Vec<Message> {
    devices
        .iter()
        .filter(|d| e.device_id.as_deref() != Some(d.device_id.as_str()))
        .map(|d| {
            let message = PushMessage {
                device_id: &d.device_id,
                platform: &d.platform,
                token: &d.token,
                application_arn: application_for(arns, &d.platform),
                data: PushData {
                    source: "cognito-sync",
                    kind: "SyncTrigger",
                    identity_pool_id: &e.pool_id,
                    identity_id: &e.identity_id,
                    dataset_name: &e.dataset,
                    sync_count: e.sync_count,
                },
            };
            Message {
                subject: push_subject(prefix, &e.pool_id, &d.platform),
                id: format!("push/{}/{}/{}/{}/{}", d.device_id, e.pool_id, e.identity_id, e.dataset, e.sync_count),
                payload: serde_json::to_vec(&message).unwrap_or_default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, value: Option<&str>) -> RecordRow {
        RecordRow {
            key: key.into(),
            value: value.map(str::to_owned),
            sync_count: 3,
            modified: 1_700_000_000,
            modified_by: "me".into(),
            device_modified_ms: None,
        }
    }

    fn entry(records: Vec<RecordRow>) -> OutboxEntry {
        OutboxEntry {
            id: 1,
            pool_id: "us-east-1:p".into(),
            identity_id: "us-east-1:i".into(),
            dataset: "d".into(),
            sync_count: 3,
            kind: ChangeKind::Update,
            records,
            at_ms: 1_700_000_000_123,
            stream_name: Some("s".into()),
            push: true,
            device_id: Some("dev-a".into()),
        }
    }

    #[test]
    fn a_change_is_cognitos_record_with_an_id_per_dataset_and_sync_count() {
        let m = entry_messages("synctrig", "s", &entry(vec![row("k", Some("v")), row("gone", None)]), 1 << 20);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].subject, "synctrig.streams.s.us-east-1:p");
        assert_eq!(m[0].id, "us-east-1:p/us-east-1:i/d/3");
        let v: serde_json::Value = serde_json::from_slice(&m[0].payload).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "identityPoolId": "us-east-1:p", "identityId": "us-east-1:i", "dataSetName": "d",
                "operation": "replace", "lastModifiedDate": 1_700_000_000_123i64, "payloadType": "Inline",
                "syncCount": 3, "change": "update",
                "kinesisSyncRecords": [
                    {"key": "k", "value": "v", "syncCount": 3, "lastModifiedDate": 1_700_000_000_000i64,
                     "deviceLastModifiedDate": 1_700_000_000_000i64, "op": "replace"},
                    {"key": "gone", "syncCount": 3, "lastModifiedDate": 1_700_000_000_000i64,
                     "deviceLastModifiedDate": 1_700_000_000_000i64, "op": "remove"}
                ]
            })
        );
    }

    #[test]
    fn a_change_past_the_largest_message_is_split_into_parts_that_hold_every_record() {
        let value = "x".repeat(3000);
        let records: Vec<_> = (0..40).map(|i| row(&format!("k{i:02}"), Some(&value))).collect();
        let m = entry_messages("synctrig", "s", &entry(records), 16 * 1024);
        assert!(m.len() > 1);
        let mut keys = Vec::new();
        for (i, part) in m.iter().enumerate() {
            assert!(part.payload.len() <= 16 * 1024 - HEADROOM, "{}", part.payload.len());
            assert_eq!(part.id, format!("us-east-1:p/us-east-1:i/d/3/{}", i + 1));
            let v: serde_json::Value = serde_json::from_slice(&part.payload).unwrap();
            assert_eq!((v["part"].as_u64(), v["parts"].as_u64()), (Some(i as u64 + 1), Some(m.len() as u64)));
            keys.extend(
                v["kinesisSyncRecords"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap().to_owned()),
            );
        }
        assert_eq!(keys, (0..40).map(|i| format!("k{i:02}")).collect::<Vec<_>>());
        // A record that alone passes the limit goes without its value, which is said.
        let m = entry_messages("synctrig", "s", &entry(vec![row("big", Some(&"y".repeat(40_000)))]), 16 * 1024);
        assert_eq!(m.len(), 1);
        let v: serde_json::Value = serde_json::from_slice(&m[0].payload).unwrap();
        let r = &v["kinesisSyncRecords"][0];
        assert_eq!((r["key"].as_str(), r.get("value"), r["valueOmitted"].as_u64()), (Some("big"), None, Some(40_000)));
    }

    #[test]
    fn push_tells_every_subscribed_device_but_the_writer() {
        let device = |id: &str, platform: &str| Device {
            device_id: id.into(),
            platform: platform.into(),
            token: format!("t-{id}"),
        };
        let arns = vec!["arn:aws:sns:us-east-1:1:app/GCM/game".to_owned()];
        let m = push_messages(
            "synctrig",
            &entry(vec![]),
            &[device("dev-a", "GCM"), device("dev-b", "GCM"), device("dev-c", "APNS")],
            &arns,
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].subject, "synctrig.push.us-east-1:p.GCM");
        let v: serde_json::Value = serde_json::from_slice(&m[0].payload).unwrap();
        assert_eq!(v["deviceId"], "dev-b");
        assert_eq!(v["applicationArn"], "arn:aws:sns:us-east-1:1:app/GCM/game");
        assert_eq!(
            v["data"],
            serde_json::json!({"source": "cognito-sync", "type": "SyncTrigger", "identityPoolId": "us-east-1:p",
                "identityId": "us-east-1:i", "datasetName": "d", "syncCount": 3})
        );
        let v: serde_json::Value = serde_json::from_slice(&m[1].payload).unwrap();
        assert_eq!((v["deviceId"].as_str(), v.get("applicationArn")), (Some("dev-c"), None));
    }

    #[test]
    fn stream_names_keep_to_what_jetstream_accepts() {
        assert!(valid_stream_name("game-events_1", "SYNCTRIG_PUSH"));
        for bad in ["", "a.b", "a b", "a*", "a>", "a/b", "SYNCTRIG_PUSH", "a\u{7}"] {
            assert!(!valid_stream_name(bad, "SYNCTRIG_PUSH"), "{bad:?}");
        }
    }
}
