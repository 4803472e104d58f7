//! What the store's calls take and answer: principals and credentials, pools, identities,
//! datasets and records, functions and invocations, updates and their outcomes.

use crate::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use synctrig_core::{Dataset, Write};

/// What a credential may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The operator: every pool.
    Root,
    /// A tenant's developer: every identity of the tenant's pools; never runs triggers.
    Developer {
        /// The tenant.
        tenant: String,
    },
    /// Temporary credentials of one identity of one pool; runs the pool's trigger.
    Identity {
        /// The identity's pool.
        pool_id: String,
        /// The identity.
        identity_id: String,
    },
}

/// A stored credential.
#[derive(Clone, Debug)]
pub struct Credential {
    /// The secret key.
    pub secret: String,
    /// Who it belongs to.
    pub principal: Principal,
    /// The session token temporary credentials must present.
    pub session_token: Option<String>,
    /// When temporary credentials expire (epoch seconds).
    pub expires: Option<i64>,
}

/// A tenant's developer access key and its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeys {
    /// The access key id (`AKIA…`).
    pub access_key: String,
    /// The secret access key.
    pub secret: String,
}

impl AccessKeys {
    /// A new developer key pair.
    pub(crate) fn generate() -> Self {
        Self { access_key: random_key("AKIA"), secret: random_hex(20) }
    }
}

/// Temporary credentials issued to an identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCredentials {
    /// The access key id (`ASIA…`).
    pub access_key: String,
    /// The secret access key.
    pub secret: String,
    /// The session token they must be presented with.
    pub session_token: String,
    /// When they expire (epoch seconds).
    pub expires: i64,
}

impl IssuedCredentials {
    /// New credentials that live `ttl_secs` from now.
    pub(crate) fn generate(ttl_secs: i64) -> Self {
        Self {
            access_key: random_key("ASIA"),
            secret: random_hex(20),
            session_token: random_hex(32),
            expires: now() + ttl_secs,
        }
    }
}

/// A pool's SyncTrigger mapping, with the tenant whose functions it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncTriggerMapping {
    /// The pool's tenant.
    pub tenant: String,
    /// The mapping as configured (a function name, or `name:version` or `name:alias`).
    pub mapping: String,
}

/// The identity a login resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginIdentity {
    /// The identity id.
    pub identity_id: String,
    /// Whether this sign-in created it.
    pub created: bool,
}

/// What an identity or a pool holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// An identity's live datasets; a pool's sync sessions (its dataset SyncCounts summed).
    pub count: i64,
    /// Bytes of live records (keys and values).
    pub bytes: i64,
    /// When a dataset last changed (epoch seconds).
    pub last_modified: Option<i64>,
}

/// A function version: its number and its component's digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionHead {
    /// The version number.
    pub version: i64,
    /// SHA-256 of the component, hex.
    pub digest: String,
}

/// A JavaScript function's script and the export that handles events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The script's source.
    pub source: String,
    /// The handler (`exports.<name>`, or `module.name`).
    pub handler: String,
    /// The version's own environment variables (`process.env`).
    pub environment: std::collections::BTreeMap<String, String>,
}

/// Names one dataset: the pool, the identity and the dataset's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetKey<'a> {
    /// The identity pool.
    pub pool: &'a str,
    /// The identity.
    pub identity: &'a str,
    /// The dataset's name.
    pub name: &'a str,
}

impl<'a> DatasetKey<'a> {
    /// The dataset `name` of `identity` in `pool`.
    pub const fn new(pool: &'a str, identity: &'a str, name: &'a str) -> Self {
        Self { pool, identity, name }
    }
}

/// An identity pool.
#[derive(Clone, Debug)]
pub struct Pool {
    /// The pool id.
    pub pool_id: String,
    /// Its tenant.
    pub tenant: String,
    /// The SyncTrigger mapping, as set with SetCognitoEvents.
    pub sync_trigger: Option<String>,
    /// The pool's name.
    pub name: String,
    /// Whether identities without logins may get credentials.
    pub allow_unauthenticated: bool,
    /// The login providers and the rest of its Cognito Identity configuration.
    pub settings: PoolSettings,
}

/// An identity pool's login configuration, as CreateIdentityPool gives it (the model's
/// member names; stored as JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoolSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_classic_flow: Option<bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub supported_login_providers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub developer_provider_name: Option<String>,
    #[serde(default, rename = "OpenIdConnectProviderARNs", skip_serializing_if = "Vec::is_empty")]
    pub open_id_connect_provider_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cognito_identity_providers: Vec<CognitoIdentityProvider>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identity_pool_tags: BTreeMap<String, String>,
}

impl PoolSettings {
    /// These settings as schema 5 keeps them, when they differ: a login provider's client
    /// ids separated by `;`, as the model's pattern has them (`[\w.;_/-]+`), where pools made
    /// before used `,`.
    pub fn conformed(&self) -> Option<PoolSettings> {
        let mut settings = self.clone();
        for ids in settings.supported_login_providers.values_mut() {
            if ids.contains(',') {
                *ids = ids.split([',', ';']).map(str::trim).filter(|id| !id.is_empty()).collect::<Vec<_>>().join(";");
            }
        }
        (settings != *self).then_some(settings)
    }
}

/// A Cognito user pool app client a pool accepts tokens of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CognitoIdentityProvider {
    #[serde(default)]
    pub provider_name: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_token_check: Option<bool>,
}

/// A dataset's row.
#[derive(Clone, Debug, Default)]
pub struct DatasetRow {
    /// Its name.
    pub name: String,
    /// The dataset's SyncCount.
    pub sync_count: i64,
    /// Created (epoch seconds).
    pub created: i64,
    /// Last modified (epoch seconds).
    pub modified: i64,
    /// Who modified it last.
    pub modified_by: String,
    /// Deleted with DeleteDataset and not recreated since.
    pub deleted: bool,
    /// The SyncCount at which it was last deleted (0: never). Kept after recreation, so a
    /// device that synced before the deletion is told of it.
    pub deleted_at: i64,
    /// Live records.
    pub num_records: i64,
    /// Bytes of live keys and values.
    pub data_storage: i64,
}

/// What a listing tells of its dataset: its row without the sizes (which cost a pass
/// over every record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetHead {
    /// The dataset's SyncCount.
    pub sync_count: i64,
    /// Who modified it last.
    pub modified_by: String,
    /// Deleted with DeleteDataset and not recreated since.
    pub deleted: bool,
    /// The SyncCount at which it was last deleted (0: never).
    pub deleted_at: i64,
}

/// A record's row (tombstones have no value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRow {
    /// The key.
    pub key: String,
    /// The value; `None` for a deleted record.
    pub value: Option<String>,
    /// The record's SyncCount.
    pub sync_count: i64,
    /// Last modified (epoch seconds).
    pub modified: i64,
    /// Who modified it last.
    pub modified_by: String,
    /// The device's own modification time, in epoch milliseconds, if it sent one.
    pub device_modified_ms: Option<i64>,
}

/// A dataset as an update sees it: its row (if any) and every record row.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The dataset's row, if it was ever created.
    pub dataset: Option<DatasetRow>,
    /// Every record row, tombstones included.
    pub records: BTreeMap<String, RecordRow>,
    /// How many live datasets the identity has.
    pub identity_datasets: usize,
}

impl Snapshot {
    /// The live records.
    pub fn live(&self) -> Dataset {
        self.records.iter().filter_map(|(k, r)| Some((k.clone(), r.value.clone()?))).collect()
    }

    /// The dataset's SyncCount (0 when it does not exist).
    pub fn sync_count(&self) -> i64 {
        self.dataset.as_ref().map_or(0, |d| d.sync_count)
    }

    /// Whether the dataset exists (not absent, not deleted).
    pub fn exists(&self) -> bool {
        self.dataset.as_ref().is_some_and(|d| !d.deleted)
    }
}

/// Why a function was not deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteRefused {
    /// It has no version.
    Missing,
    /// A pool's SyncTrigger names it (plainly, with a version or alias, or as an ARN).
    InUse { pool: String },
}

/// Why a deploy is refused: a limit it would pass, or a newer version than the deployer saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeployRefused {
    /// The latest version is not the one the deploy expected (0: no version).
    Changed {
        /// The latest version now.
        latest: i64,
    },
    /// The tenant has `MAX_FUNCTIONS_PER_TENANT` functions.
    Functions,
    /// The function has `MAX_VERSIONS_PER_FUNCTION` versions.
    Versions,
}

impl DeployRefused {
    /// The limit a deploy would pass, given the function's stored versions and the
    /// tenant's functions: the one rule both backends apply.
    pub(crate) fn limit(versions: i64, functions: i64) -> Option<DeployRefused> {
        if versions as usize >= synctrig_core::limits::MAX_VERSIONS_PER_FUNCTION {
            Some(DeployRefused::Versions)
        } else if versions == 0 && functions as usize >= synctrig_core::limits::MAX_FUNCTIONS_PER_TENANT {
            Some(DeployRefused::Functions)
        } else {
            None
        }
    }
}

/// A function, as a list shows it.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionSummary {
    pub name: String,
    pub latest_version: i64,
    /// When its latest version was deployed (epoch seconds).
    pub modified: i64,
    /// Whether the latest version is a JavaScript script.
    pub script: bool,
}

/// One version of a function.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionVersion {
    pub version: i64,
    /// The SHA-256 of its component.
    pub digest: String,
    /// When it was deployed (epoch seconds).
    pub created: i64,
    pub component_bytes: i64,
    /// Whether it is a JavaScript script (whose source is kept).
    pub script: bool,
    pub handler: Option<String>,
}

/// A recorded trigger invocation.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRow {
    /// When (epoch seconds).
    pub at: i64,
    /// The function version.
    pub version: i64,
    /// `ok` or the error outcome.
    pub outcome: String,
    /// Wall time in microseconds.
    pub wall_us: i64,
    /// Fuel consumed.
    pub fuel: i64,
    /// Peak linear memory in bytes.
    pub peak_memory_bytes: i64,
    /// The trigger's log.
    pub log: String,
}

/// How many invocations are kept per function (the listing shows these; up to twice as
/// many rows wait for their trim).
pub(crate) const KEEP_INVOCATIONS: i64 = 100;

/// A writer's count of invocation rows inserted per function since its last trim: a trim
/// (an index walk over the kept rows) every `KEEP_INVOCATIONS` inserts of a function, not
/// in every batch, and at its first insert after a start (so rows never pile up across
/// restarts).
#[derive(Default)]
pub(crate) struct InvocationTrims(std::collections::HashMap<(String, String), i64>);

impl InvocationTrims {
    /// Counts one inserted row; says whether the function's rows are due a trim.
    pub(crate) fn inserted(&mut self, tenant: &str, name: &str) -> bool {
        let count = self.0.entry((tenant.to_owned(), name.to_owned())).or_insert(KEEP_INVOCATIONS - 1);
        *count += 1;
        let due = *count >= KEEP_INVOCATIONS;
        if due {
            *count = 0;
        }
        due
    }
}

/// Which rows of one write of invocation rows to insert, given each row's function (oldest
/// row first), and the functions whose older rows are due a trim now: of a function with at
/// least [`KEEP_INVOCATIONS`] rows in the write only its newest that many are inserted (the
/// trim would delete the others at once, and the listing shows no more).
pub(crate) fn newest_invocations(functions: &[(&str, &str)]) -> (Vec<bool>, Vec<(String, String)>) {
    let mut left: std::collections::HashMap<(&str, &str), i64> = std::collections::HashMap::new();
    for f in functions {
        *left.entry(*f).or_default() += 1;
    }
    let due = left
        .iter()
        .filter(|(_, n)| **n >= KEEP_INVOCATIONS)
        .map(|((tenant, name), _)| (tenant.to_string(), name.to_string()))
        .collect();
    let insert = functions
        .iter()
        .map(|f| {
            let newer = left.get_mut(f).map_or(0, |n| {
                *n -= 1;
                *n
            });
            newer < KEEP_INVOCATIONS
        })
        .collect();
    (insert, due)
}

/// Where a keyset listing of records starts: after this (SyncCount, key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordCursor {
    /// The SyncCount of the last record returned.
    pub sync_count: i64,
    /// The key of the last record returned.
    pub key: String,
}

/// One page of a ListRecords listing, read in one transaction.
#[derive(Clone, Debug)]
pub struct RecordPage {
    /// The dataset at the time of the read.
    pub dataset: Option<DatasetHead>,
    /// The listing's upper SyncCount bound: the dataset's SyncCount when its first page
    /// was read.
    pub upper: i64,
    /// Records with `last < SyncCount <= upper`, after the cursor, in (SyncCount, key)
    /// order; at most the page size.
    pub records: Vec<RecordRow>,
    /// Whether more records follow.
    pub more: bool,
    /// Names of the live datasets merged into this identity from others that had this
    /// dataset's name (MergedDatasetNames).
    pub merged_names: Vec<String>,
}

/// One update of a dataset, for the writer.
#[derive(Debug)]
pub struct Update {
    /// The identity pool.
    pub pool: String,
    /// The identity.
    pub identity: String,
    /// The dataset's name.
    pub name: String,
    /// The dataset SyncCount the update was computed against (the one its
    /// SyncSessionToken was issued at).
    pub expected: i64,
    /// The records to write: at most one per key, as the merge produces them (PostgreSQL
    /// refuses a second write of a key in one statement; the parity test keeps to this).
    pub writes: Vec<Write>,
    /// Device modification times (epoch milliseconds) by key.
    pub device_modified_ms: BTreeMap<String, i64>,
    /// Who writes.
    pub by: String,
    /// Most live datasets the identity may have.
    pub max_datasets: usize,
    /// Identifies a retry of this very request: a hash of its SyncSessionToken and one of
    /// its patches, and when the token expires.
    pub idempotency: Idempotency,
    /// The device that writes (the request's DeviceId): push sync does not tell it.
    pub device_id: Option<String>,
}

/// What makes a repeated UpdateRecords recognisable.
#[derive(Clone, Debug)]
pub struct Idempotency {
    /// SHA-256 of the SyncSessionToken, hex.
    pub token_hash: String,
    /// SHA-256 of the request's patches, hex.
    pub request_hash: String,
    /// When the token expires (epoch seconds); the stored answer goes with it.
    pub expires: i64,
}

/// What the writer did with an update.
#[derive(Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Written; the rows as stored.
    Applied(Vec<RecordRow>),
    /// A repeat of an update already applied: its answer then, nothing written now.
    Replayed(Vec<RecordRow>),
    /// The dataset changed since the update's base SyncCount.
    Conflict,
    /// The update would create a dataset past the identity's limit.
    TooManyDatasets,
    /// The identity was merged into another or deleted since the request was authorized.
    IdentityGone,
}

/// What the writer tells an update, or why the commit failed.
pub type UpdateResult = std::result::Result<UpdateOutcome, StoreError>;

/// An identity with its logins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityRow {
    pub identity_id: String,
    pub pool_id: String,
    pub created: i64,
    pub modified: i64,
    /// The identity it was merged into; a merged identity is disabled.
    pub merged_into: Option<String>,
    /// Whether a login was ever linked to it: it stays authenticated (and, with no login
    /// left, inaccessible) when its logins are unlinked.
    pub ever_authenticated: bool,
    /// (provider, subject) of every login linked to it.
    pub logins: Vec<(String, String)>,
}

impl IdentityRow {
    /// Whether it signed in with at least one login.
    pub fn authenticated(&self) -> bool {
        self.ever_authenticated || !self.logins.is_empty()
    }
}

/// A registered OpenID Connect issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuer {
    /// The tenant whose pools may accept it (as an IAM OIDC provider is an account's).
    pub tenant: String,
    /// The issuer (`iss`), e.g. `https://login.example.com/realm`.
    pub issuer: String,
    /// The client ids its tokens may be for (`aud`).
    pub audiences: Vec<String>,
    /// Its JSON Web Key Set.
    pub jwks: String,
    /// The file the key set was read from, read again when a key id is missing.
    pub jwks_file: Option<String>,
}

/// What a merge moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merge {
    /// The identity that survives.
    pub target: String,
    /// The datasets moved, under their new names.
    pub datasets: Vec<String>,
}

/// What linking a login to an identity did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Linked.
    Linked,
    /// The login is linked to an identity already (this one or another).
    Taken,
    /// The identity is gone (merged, deleted), or gained a login, since it was checked.
    Changed,
}

/// Which identities a merge may take as its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeRule<'a> {
    /// An identity that signs in with a login the source never had: the source must still
    /// be unauthenticated.
    SourceUnauthenticated,
    /// MergeDeveloperIdentities: two users of this developer provider; refused when the two
    /// have different users of another provider.
    Developer(&'a str),
}

/// What a merge did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    Merged(Merge),
    /// Either identity changed (merged, deleted, signed in) since it was checked.
    Changed,
    /// Both have logins of this provider, for different users.
    ProviderClash(String),
}
