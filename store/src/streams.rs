//! Cognito Streams and push sync: a pool's configuration, the outbox every committed
//! change of a streaming (or push-syncing) pool writes in its own transaction, devices and
//! their dataset subscriptions, bulk publishes, and the lease that lets one node at a time
//! drain the outbox.

use crate::RecordRow;
use serde::{Deserialize, Serialize};

/// The outbox of a pool is counted in this many slots (by a hash of the identity), each
/// holding at most its share of the pool's bound: the bound is checked and kept in the
/// transaction that writes, without every update of a pool taking turns on one row.
pub const OUTBOX_SLOTS: i64 = 8;

/// Most outbox entries a pool holds by default (`serve --stream-outbox-max`).
pub const DEFAULT_OUTBOX_MAX: i64 = 100_000;

/// Most devices one identity keeps registered; registering another forgets the one
/// registered longest ago (a device that stopped registering is most likely gone).
pub const MAX_DEVICES_PER_IDENTITY: i64 = 100;

/// How long after a successful bulk publish the next one is refused (AWS's limit).
pub const BULK_PUBLISH_INTERVAL_MS: i64 = 24 * 3600 * 1000;

/// A pool's Cognito Streams settings, as SetIdentityPoolConfiguration gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSettings {
    /// The JetStream stream records go to.
    pub stream_name: Option<String>,
    /// Kept and shown; the broker's own authentication replaces it.
    pub role_arn: Option<String>,
    /// Whether committed changes are streamed.
    pub enabled: bool,
    /// Why streaming was turned off by the service (the outbox was full), if it was.
    pub disabled_reason: Option<String>,
}

/// A pool's push sync settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSettings {
    /// SNS platform application ARNs clients may register with.
    pub application_arns: Vec<String>,
    /// Kept and shown; the broker's own authentication replaces it.
    pub role_arn: Option<String>,
}

/// A pool's configuration of streams and push sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolConfiguration {
    pub streams: Option<StreamSettings>,
    pub push: Option<PushSettings>,
}

impl PoolConfiguration {
    /// Whether devices may register (push sync names at least one application).
    pub fn push_enabled(&self) -> bool {
        self.push.as_ref().is_some_and(|p| !p.application_arns.is_empty())
    }
}

/// A change of a pool's streams settings: what is `None` stays as it was (a new
/// configuration with a stream name and no status is enabled).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamsChange {
    pub stream_name: Option<String>,
    pub role_arn: Option<String>,
    pub enabled: Option<bool>,
}

/// Why a configuration was not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigurationRefused {
    /// Another tenant's pool streams to this stream name.
    StreamNameTaken,
    /// Streaming enabled without a stream name.
    NoStreamName,
}

/// What a committed change was, for its stream record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// UpdateRecords wrote records.
    Update,
    /// DeleteDataset removed the dataset.
    Delete,
    /// A merge moved the dataset to the identity it merged into (the record is the
    /// dataset as it stands, under its new identity and name).
    MergedIn,
    /// A merge moved the dataset away from this identity.
    MergedOut,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
            ChangeKind::MergedIn => "merged-in",
            ChangeKind::MergedOut => "merged-out",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        Some(match s {
            "update" => ChangeKind::Update,
            "delete" => ChangeKind::Delete,
            "merged-in" => ChangeKind::MergedIn,
            "merged-out" => ChangeKind::MergedOut,
            _ => return None,
        })
    }
}

/// One committed change waiting in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    /// Its place in the outbox (later changes of a dataset have larger ids).
    pub id: i64,
    pub pool_id: String,
    pub identity_id: String,
    pub dataset: String,
    /// The dataset's SyncCount the change made.
    pub sync_count: i64,
    pub kind: ChangeKind,
    /// The records the change wrote (an update), or the dataset's records (a merge).
    pub records: Vec<RecordRow>,
    /// When it was committed, epoch milliseconds.
    pub at_ms: i64,
    /// The stream it goes to, when the pool streamed at the time.
    pub stream_name: Option<String>,
    /// Whether the pool's subscribed devices are told.
    pub push: bool,
    /// The device that wrote it (not told).
    pub device_id: Option<String>,
}

/// The change an outbox entry is made from (what a writer knows).
#[derive(Clone, Debug)]
pub struct Change<'a> {
    pub pool_id: &'a str,
    pub identity_id: &'a str,
    pub dataset: &'a str,
    pub sync_count: i64,
    pub kind: ChangeKind,
    /// The records as JSON (`RecordRow`s), as the update's stored answer has them.
    pub records_json: &'a str,
    pub device_id: Option<&'a str>,
}

impl<'a> Change<'a> {
    /// A dataset's deletion (DeleteDataset), at its new SyncCount: no records.
    pub fn deletion(pool_id: &'a str, identity_id: &'a str, dataset: &'a str, sync_count: i64) -> Self {
        Change {
            pool_id,
            identity_id,
            dataset,
            sync_count,
            kind: ChangeKind::Delete,
            records_json: "[]",
            device_id: None,
        }
    }
}

/// The slot of the outbox an identity's changes count in.
pub fn outbox_slot(identity: &str) -> i64 {
    // FNV-1a: stable across releases and nodes (std's hasher is neither).
    let mut h: u64 = 0xcbf29ce484222325;
    for b in identity.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % OUTBOX_SLOTS as u64) as i64
}

/// Each slot's share of a pool's outbox bound (at least 1).
pub fn slot_bound(outbox_max: i64) -> i64 {
    ((outbox_max + OUTBOX_SLOTS - 1) / OUTBOX_SLOTS).max(1)
}

/// A device registered for push sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub device_id: String,
    pub platform: String,
    pub token: String,
}

/// Why a subscription was not changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionRefused {
    /// The device is not one the identity registered.
    UnknownDevice,
}

/// A pool's bulk publish: the last one asked for and how far it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkPublish {
    pub pool_id: String,
    /// `IN_PROGRESS`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub started_ms: i64,
    pub completed_ms: Option<i64>,
    pub failure: Option<String>,
    /// The last dataset published: (identity, name).
    pub cursor: Option<(String, String)>,
    pub stream_name: String,
}

/// Why a bulk publish was not started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BulkRefused {
    /// The pool does not stream.
    NotStreaming,
    /// One is in progress.
    InProgress,
    /// One succeeded less than 24 hours ago.
    AlreadyStreamed,
}

/// A dataset as a bulk publish sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetState {
    pub identity_id: String,
    pub name: String,
    pub sync_count: i64,
    pub modified_ms: i64,
    pub records: Vec<RecordRow>,
}

/// A new DeviceId: a random UUID's shape.
pub fn new_device_id() -> String {
    let h = crate::random_hex(16);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
