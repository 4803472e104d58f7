//! The Cognito Sync API's request and response shapes, with the model's member names
//! (`cognito-sync-2014-06-30.json`). Members the model allows to be absent are `Option`s
//! and are omitted when absent, never sent as `null`. Request members the model does not
//! have are ignored, as AWS ignores them (a newer SDK may send more).

use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use synctrig_runtime::event::Op;
use synctrig_store::{DatasetRow, RecordRow};

/// A rest-json timestamp: epoch seconds, with a fraction when it has milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    millis: i64,
}

impl Timestamp {
    /// From epoch seconds.
    pub fn from_secs(secs: i64) -> Self {
        Timestamp { millis: secs.saturating_mul(1000) }
    }

    /// From epoch milliseconds.
    pub fn from_millis(millis: i64) -> Self {
        Timestamp { millis }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.millis % 1000 == 0 {
            s.serialize_i64(self.millis / 1000)
        } else {
            s.serialize_f64(self.millis as f64 / 1000.0)
        }
    }
}

/// `Record`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub sync_count: i64,
    pub last_modified_date: Timestamp,
    pub last_modified_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_last_modified_date: Option<Timestamp>,
}

impl From<&RecordRow> for Record {
    fn from(r: &RecordRow) -> Self {
        Record {
            key: r.key.clone(),
            value: r.value.clone(),
            sync_count: r.sync_count,
            last_modified_date: Timestamp::from_secs(r.modified),
            last_modified_by: r.modified_by.clone(),
            device_last_modified_date: r.device_modified_ms.map(Timestamp::from_millis),
        }
    }
}

/// `Dataset`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Dataset {
    pub identity_id: String,
    pub dataset_name: String,
    pub creation_date: Timestamp,
    pub last_modified_date: Timestamp,
    pub last_modified_by: String,
    pub data_storage: i64,
    pub num_records: i64,
}

impl Dataset {
    pub fn new(identity_id: &str, d: &DatasetRow) -> Self {
        Dataset {
            identity_id: identity_id.to_owned(),
            dataset_name: d.name.clone(),
            creation_date: Timestamp::from_secs(d.created),
            last_modified_date: Timestamp::from_secs(d.modified),
            last_modified_by: d.modified_by.clone(),
            data_storage: d.data_storage,
            num_records: d.num_records,
        }
    }
}

/// `IdentityPoolUsage`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct IdentityPoolUsage {
    pub identity_pool_id: String,
    pub sync_sessions_count: i64,
    pub data_storage: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_date: Option<Timestamp>,
}

/// `IdentityUsage`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct IdentityUsage {
    pub identity_id: String,
    pub identity_pool_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_date: Option<Timestamp>,
    pub dataset_count: i64,
    pub data_storage: i64,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListIdentityPoolUsageResponse {
    pub identity_pool_usages: Vec<IdentityPoolUsage>,
    pub max_results: usize,
    pub count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeIdentityPoolUsageResponse {
    pub identity_pool_usage: IdentityPoolUsage,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeIdentityUsageResponse {
    pub identity_usage: IdentityUsage,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListDatasetsResponse {
    pub datasets: Vec<Dataset>,
    pub count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// DescribeDataset's and DeleteDataset's answer.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct DatasetResponse {
    pub dataset: Dataset,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListRecordsResponse {
    pub records: Vec<Record>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub count: usize,
    pub dataset_sync_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_by: Option<String>,
    pub merged_dataset_names: Vec<String>,
    pub dataset_exists: bool,
    pub dataset_deleted_after_requested_sync_count: bool,
    pub sync_session_token: String,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateRecordsRequest {
    pub device_id: Option<String>,
    #[serde(default)]
    pub record_patches: Vec<RecordPatch>,
    pub sync_session_token: Option<String>,
}

/// `RecordPatch`.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct RecordPatch {
    pub op: Op,
    pub key: String,
    pub value: Option<String>,
    pub sync_count: i64,
    pub device_last_modified_date: Option<f64>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateRecordsResponse {
    pub records: Vec<Record>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct SetCognitoEventsRequest {
    pub events: BTreeMap<String, String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct GetCognitoEventsResponse {
    pub events: BTreeMap<String, String>,
}

/// An answer without members.
#[derive(Serialize, Debug)]
pub struct Empty {}

/// `CognitoStreams`, as the model shapes it; `DisabledReason` (answers only) says why the
/// service turned streaming off.
#[derive(Serialize, Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CognitoStreams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming_status: Option<String>,
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

/// `PushSync`, as the model shapes it.
#[derive(Serialize, Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PushSync {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_arns: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct SetIdentityPoolConfigurationRequest {
    #[serde(default)]
    pub push_sync: Option<PushSync>,
    #[serde(default)]
    pub cognito_streams: Option<CognitoStreams>,
}

/// `GetIdentityPoolConfiguration`'s and `SetIdentityPoolConfiguration`'s answer.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct IdentityPoolConfigurationResponse {
    pub identity_pool_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_sync: Option<PushSync>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cognito_streams: Option<CognitoStreams>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct BulkPublishResponse {
    pub identity_pool_id: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct GetBulkPublishDetailsResponse {
    pub identity_pool_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_publish_start_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_publish_complete_time: Option<Timestamp>,
    pub bulk_publish_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterDeviceRequest {
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterDeviceResponse {
    pub device_id: String,
}

/// Our extension: a function's recent trigger invocations.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListTriggerInvocationsResponse {
    pub function: String,
    pub invocations: Vec<synctrig_store::InvocationRow>,
}

/// Our extension: a tenant's functions.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionsResponse {
    pub functions: Vec<synctrig_store::FunctionSummary>,
}

/// Our extension: a function's versions, newest first.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeFunctionResponse {
    pub function_name: String,
    pub versions: Vec<synctrig_store::FunctionVersion>,
}

/// Our extension: one version's code — a script's source and handler, or a component's
/// size and digest.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct GetFunctionVersionResponse {
    pub function_name: String,
    #[serde(flatten)]
    pub version: synctrig_store::FunctionVersion,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A script version's own environment variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
}

/// A function version's environment variables, shaped as Lambda's `Environment`.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct Environment {
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
}

/// Our extension: deploy the next version of a function from a script, a component
/// (base64) or an earlier version (a roll back).
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PublishFunctionVersionRequest {
    pub script: Option<String>,
    pub handler: Option<String>,
    pub component: Option<String>,
    pub from_version: Option<i64>,
    /// A script's environment variables (Lambda's rules); with FromVersion, replaces the
    /// earlier version's.
    pub environment: Option<Environment>,
    /// Deploy only if this is still the latest version (0: only if the function is new);
    /// otherwise `ResourceConflictException`.
    pub expected_latest_version: Option<i64>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct PublishFunctionVersionResponse {
    pub function_name: String,
    pub version: i64,
    pub digest: String,
    /// What a script's top level logged while it was loaded.
    pub log: String,
}

/// Our extension: run a function on an event as `synctrig-wasm run` does.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TestFunctionRequest {
    /// The event, as JSON text (the seed's format).
    pub event: String,
    pub version: Option<i64>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct TestFunctionResponse {
    pub version: i64,
    /// The validated response (JSON text), when the trigger's answer was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TestError>,
    pub log: String,
    pub wall_micros: u64,
    pub fuel: u64,
    pub peak_memory_bytes: u64,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct TestError {
    /// The API error name an update would have been answered with.
    pub name: String,
    pub message: String,
}

/// Our extension, shaped as Lambda's: an alias's second version and its share (0 to 0.5).
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct AliasRoutingConfig {
    /// One entry at most: the version's number (a string, as Lambda has it) → its share.
    #[serde(default)]
    pub additional_version_weights: std::collections::BTreeMap<String, f64>,
}

/// Our extension: a rollout of an alias's second version: promoted after so many
/// invocations or seconds, rolled back at once when it fails more than the primary.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RolloutConfig {
    pub promote_after_invocations: Option<i64>,
    pub promote_after_seconds: Option<i64>,
    /// How much higher (0 to 1) the candidate's error+timeout rate may be; 0.05 unless given.
    pub max_error_rate_increase: Option<f64>,
    /// How much higher its reject rate may be; not judged unless given.
    pub max_reject_rate_increase: Option<f64>,
    /// Invocations of the candidate before it is judged; 20 unless given.
    pub min_invocations: Option<i64>,
}

/// Our extension, shaped as Lambda's CreateAlias / UpdateAlias.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PutAliasRequest {
    /// CreateAlias only: the alias's name.
    pub name: Option<String>,
    pub function_version: Option<String>,
    pub description: Option<String>,
    pub routing_config: Option<AliasRoutingConfig>,
    pub rollout: Option<RolloutConfig>,
    /// UpdateAlias: change only if this is still the alias's revision (its epoch).
    pub revision_id: Option<String>,
}

/// What one version earned behind an alias since it last changed, as the API shows it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct VersionFiguresShown {
    pub version: i64,
    pub invocations: i64,
    pub ok: i64,
    pub rejected: i64,
    pub error: i64,
    pub timeout: i64,
    pub wall_micros_p50: Option<u64>,
    pub wall_micros_p99: Option<u64>,
    pub fuel_p50: Option<u64>,
    pub fuel_p99: Option<u64>,
}

/// The figures a rollout decision was made on (kept with the decision).
#[derive(Serialize, Debug)]
pub struct DecisionFigures {
    pub primary: VersionFiguresShown,
    pub candidate: VersionFiguresShown,
    pub seconds: i64,
}

/// An alias as the API shows it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct AliasConfiguration {
    pub name: String,
    pub function_name: String,
    pub function_version: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_config: Option<AliasRoutingConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutConfig>,
    /// Its epoch: changes with every change of the alias.
    pub revision_id: String,
    /// When the current revision began (seconds).
    pub revision_started: i64,
    /// The figures of each version behind it in this revision.
    pub figures: Vec<VersionFiguresShown>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesResponse {
    pub aliases: Vec<AliasConfiguration>,
}

/// A rollout decision as the API shows it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct RolloutDecision {
    pub at: Timestamp,
    pub alias: String,
    pub revision_id: String,
    pub decision: String,
    pub primary_version: String,
    pub candidate_version: String,
    pub reason: String,
    pub figures: serde_json::Value,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListRolloutDecisionsResponse {
    pub decisions: Vec<RolloutDecision>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_milliseconds_and_absent_members_are_omitted() {
        let usage = IdentityUsage {
            identity_id: "i".into(),
            identity_pool_id: "p".into(),
            last_modified_date: None,
            dataset_count: 0,
            data_storage: 0,
        };
        let json = serde_json::to_value(&usage).unwrap();
        assert!(json.get("LastModifiedDate").is_none(), "{json}");
        assert_eq!(serde_json::to_string(&Timestamp::from_millis(1_795_810_224_455)).unwrap(), "1795810224.455");
        assert_eq!(serde_json::to_string(&Timestamp::from_secs(1_795_810_224)).unwrap(), "1795810224");
    }
}

/// Our extension: a function's recording settings, as the API shows and takes them.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct RecordingConfiguration {
    pub function_name: String,
    /// Whether its invocations are recorded.
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i64>,
    /// A version run beside each recorded invocation, its result discarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_version: Option<i64>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordingRequest {
    /// On (with the settings below, each defaulted) or off (its recordings are deleted).
    pub enabled: bool,
    pub max_count: Option<i64>,
    pub max_age_seconds: Option<i64>,
    pub shadow_version: Option<i64>,
}

/// A recorded invocation without its event and response.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct RecordingSummary {
    pub id: i64,
    /// When it ran (epoch seconds, with milliseconds).
    pub at: Timestamp,
    pub identity_pool_id: String,
    pub identity_id: String,
    pub dataset_name: String,
    pub version: i64,
    pub outcome: String,
    pub wall_micros: i64,
    pub fuel: i64,
    /// The shadow version's outcome, if one ran beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_outcome: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListRecordingsResponse {
    pub recordings: Vec<RecordingSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One recorded invocation, whole: what a replay of it is given.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordingResponse {
    #[serde(flatten)]
    pub summary: RecordingSummary,
    /// The event the trigger was given (JSON).
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplayError>,
    /// Its randomness seed (hex) and frozen clock (epoch seconds).
    pub seed: String,
    pub clock: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_response: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRecordingsResponse {
    pub deleted: u64,
}

/// Our extension: run a candidate on recorded invocations. Exactly one of Version, Script
/// or Component names it.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ReplayRequest {
    pub version: Option<i64>,
    pub script: Option<String>,
    pub handler: Option<String>,
    pub environment: Option<Environment>,
    pub component: Option<String>,
    /// These recordings only; otherwise the latest ones.
    pub recording_ids: Option<Vec<i64>>,
    /// At most this many of the latest recordings (default and most: all kept, 1,000).
    pub max_recordings: Option<i64>,
}

/// A record of a response: its op and new value.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RecordState {
    pub op: Op,
    pub new_value: Option<String>,
}

/// A record the recorded and the replayed responses differ on (absent from one: null).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RecordDiff {
    pub key: String,
    pub recorded: Option<RecordState>,
    pub replayed: Option<RecordState>,
}

/// How a replayed run compares with the recorded one.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayResult {
    /// The same response (or the same error).
    Same,
    /// Other records (see the diff), or the same outcome with another message.
    Different,
    /// It answered, and now it rejects the update.
    NowRejects,
    /// It answered or rejected, and now it fails (a trap, a timeout, an invalid answer…).
    NowFails,
    /// It rejected or failed, and now it answers.
    NowSucceeds,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ReplayError {
    pub name: String,
    pub message: String,
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct ReplayedInvocation {
    pub recording_id: i64,
    pub recorded_version: i64,
    pub result: ReplayResult,
    pub recorded_outcome: String,
    pub outcome: String,
    pub fuel_delta: i64,
    pub wall_micros_delta: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplayError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<RecordDiff>,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ReplaySummary {
    pub replayed: usize,
    pub same: usize,
    pub different: usize,
    pub now_rejects: usize,
    pub now_fails: usize,
    pub now_succeeds: usize,
    /// Not run: the replay's time budget ran out first.
    pub skipped: usize,
    /// Different runs whose diffs the report leaves out (it shows the first 100).
    pub diffs_not_shown: usize,
    /// Fuel and wall time, replayed minus recorded, summed.
    pub fuel_delta: i64,
    pub wall_micros_delta: i64,
}

/// What a candidate did on recorded invocations (or a shadow beside live ones).
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ReplayReport {
    pub function_name: String,
    /// What ran: `version 3`, `script`, `component <digest>`, `shadow: version 4`.
    pub candidate: String,
    pub summary: ReplaySummary,
    /// Every run, oldest recording first.
    pub invocations: Vec<ReplayedInvocation>,
}

/// Our extension: what a deleted function had.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteFunctionResponse {
    pub function_name: String,
    pub deleted_versions: i64,
}
