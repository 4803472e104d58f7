//! The store: tenants, credentials, pools, identities, datasets, records, trigger
//! functions and their recent invocations, behind one interface ([`Backend`]) with two
//! implementations: SQLite in the data directory (the default: one process, no setup)
//! and PostgreSQL (several `serve` nodes on one database).
//!
//! Both keep the same promises: an update is one transaction that re-checks the
//! dataset's SyncCount and every limit the change could break, so concurrent updates
//! are serialised (the loser gets a conflict) and no limit can be raced past; and a
//! change is durable before it is acknowledged.

pub mod export;
pub mod postgres;
mod sql;
pub mod sqlite;
#[cfg(test)]
mod tests;

pub use export::{Counts, FORMAT as EXPORT_FORMAT, Scope};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use synctrig_runtime::merge::{Dataset, Write};

/// Why the store could not do what it was asked; nothing was written. The API answers
/// `InternalErrorException` for the database's own errors; the archive's are for the
/// operator who exports or imports.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {}", postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("database error: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database error: {0}")]
    Other(String),
    /// The database's storage is full: nothing was written.
    #[error("database error: the storage is full: {0}")]
    Full(String),
    /// A line of an archive that cannot be imported.
    #[error("line {line}: {reason}")]
    Archive { line: usize, reason: String },
    /// An import this store refuses (it is not empty, the pool exists, no tenant).
    #[error("{0}")]
    Refused(String),
    /// An archive that cannot be read or written.
    #[error("cannot read or write the archive: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether the database refused a write because its storage is full (SQLite's
    /// `SQLITE_FULL`, PostgreSQL's `disk_full`).
    pub fn is_full(&self) -> bool {
        match self {
            StoreError::Full(_) => true,
            StoreError::Sqlite(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            StoreError::Postgres(e) => e.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL),
            _ => false,
        }
    }

    /// This error for one more waiter (a batch that failed answers each of its jobs).
    pub fn for_each(&self) -> StoreError {
        if self.is_full() { StoreError::Full(self.to_string()) } else { StoreError::Other(self.to_string()) }
    }
}

pub(crate) type Result<T> = std::result::Result<T, StoreError>;

/// A PostgreSQL error with the server's message (tokio-postgres says only "db error").
fn postgres_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

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
        if versions as usize >= synctrig_runtime::limits::MAX_VERSIONS_PER_FUNCTION {
            Some(DeployRefused::Versions)
        } else if versions == 0 && functions as usize >= synctrig_runtime::limits::MAX_FUNCTIONS_PER_TENANT {
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

/// How many invocations are kept per function.
pub(crate) const KEEP_INVOCATIONS: i64 = 100;

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

/// Now, in epoch seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The name a dataset merged in from identity `source` takes at its `attempt`-th try (1,
/// then 2, 3… while the name is taken): `<base>.<source>`, then `<base>.<source>.<n>`,
/// with `base` cut so that the name keeps to the model's 128 characters. Identity ids hold
/// only characters dataset names may (`[\w-]+:[0-9a-f-]+`) and at most 55, so at least 68
/// characters of the base are kept.
pub fn merged_dataset_name(base: &str, source: &str, attempt: usize) -> String {
    let suffix = if attempt <= 1 { format!(".{source}") } else { format!(".{source}.{attempt}") };
    let room = synctrig_runtime::limits::MAX_DATASET_NAME_CHARS.saturating_sub(suffix.chars().count());
    let kept: String = base.chars().take(room).collect();
    format!("{kept}{suffix}")
}

/// Most tries at a free name for a merged dataset: an identity holds a few dozen datasets
/// at most, so a thousand collisions cannot happen.
pub const MERGED_NAME_ATTEMPTS: usize = 1000;

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    hex::encode(bytes)
}

/// A random id in Cognito's `region:uuid` form.
pub fn new_cognito_id(region: &str) -> String {
    let h = random_hex(16);
    format!("{region}:{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

pub(crate) fn random_key(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    let tail: String = bytes.iter().map(|b| ALPHABET[(*b as usize) % 32] as char).collect();
    format!("{prefix}{tail}")
}

/// Creates the data directory (and its parents) if needed and makes it private (0700):
/// it holds the database's secrets and the artifact cache's key.
pub fn prepare_data_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

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

/// Where the store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file (the data directory's `synctrig.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its `postgres://` URL, with at most this many
    /// connections from this process.
    Postgres(String, usize),
}

impl Database {
    /// `url` when it is a PostgreSQL URL (`SYNCTRIG_DATABASE_URL`, `--database`), else the
    /// SQLite file in `data_dir`.
    pub fn choose(url: Option<&str>, data_dir: &Path, connections: usize) -> std::result::Result<Database, String> {
        match url {
            None => Ok(Database::Sqlite(data_dir.join("synctrig.db"))),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Database::Postgres(u.to_owned(), connections))
            }
            Some(u) if u.starts_with("sqlite:") => Ok(Database::Sqlite(PathBuf::from(&u["sqlite:".len()..]))),
            Some(_) => Err("the database URL must start with postgres:// (or sqlite: for a file)".into()),
        }
    }

    /// For logs: the URL without its password.
    pub fn redacted(&self) -> String {
        match self {
            Database::Sqlite(p) => p.display().to_string(),
            Database::Postgres(url, _) => postgres::redact(url),
        }
    }
}

/// Opens the store (creating it if needed) and brings its schema up to date.
pub async fn open(database: &Database) -> Result<Arc<Store>> {
    Ok(match database {
        Database::Sqlite(path) => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || sqlite::Sqlite::open(&path))
                .await
                .map_err(|e| StoreError::Other(e.to_string()))??;
            Arc::new(store)
        }
        Database::Postgres(url, connections) => Arc::new(postgres::Postgres::open(url, *connections).await?),
    })
}

/// The store, whichever backend holds it.
pub type Store = dyn Backend;

/// The store's operations, by concern. Every method is one transaction unless it says
/// otherwise.
pub trait Backend: Tenants + Identities + Datasets + Functions + Archive {
    /// Which backend this is (`sqlite`, `postgres`).
    fn kind(&self) -> &'static str;
}

/// Tenants and their credentials, identity pools and OpenID Connect issuers.
#[async_trait::async_trait]
pub trait Tenants: Send + Sync {
    /// Sweeps expired temporary credentials and stored update answers, in the background.
    fn submit_purge(&self);

    /// The meta value under `key`, stored as `value` if there was none; and whether it was.
    async fn meta_or_insert(&self, key: &str, value: String) -> Result<(String, bool)>;

    /// Stores (or replaces) the root credential.
    async fn put_root_credential(&self, access_key: &str, secret: &str) -> Result<()>;

    /// Creates a tenant with a developer credential; `None` when the tenant exists.
    async fn create_tenant(&self, name: &str) -> Result<Option<AccessKeys>>;

    /// Whether the tenant exists.
    async fn tenant_exists(&self, name: &str) -> Result<bool>;

    /// Creates an identity pool for `tenant`; returns it.
    async fn create_pool(
        &self,
        tenant: &str,
        region: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<Pool>;

    /// Replaces a pool's name, unauthenticated access and settings.
    async fn update_pool(
        &self,
        pool_id: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<()>;

    /// The credential with `access_key`. An identity's credentials exist only while the
    /// identity does and has not been merged into another: they stop working at once.
    async fn credential(&self, access_key: &str) -> Result<Option<Credential>>;

    /// Issues temporary credentials for an identity, marked with whether it signed in.
    async fn issue_identity_credentials(
        &self,
        pool_id: &str,
        identity_id: &str,
        authenticated: bool,
        ttl_secs: i64,
    ) -> Result<IssuedCredentials>;

    /// The pool with `pool_id`.
    async fn pool(&self, pool_id: &str) -> Result<Option<Pool>>;

    /// Up to `limit` pools (of `tenant`, or all for `None`) with ids after `after`, in id
    /// order.
    async fn pools_after(&self, tenant: Option<&str>, after: &str, limit: usize) -> Result<Vec<Pool>>;

    /// Every pool's SyncTrigger mapping.
    async fn sync_triggers(&self) -> Result<Vec<SyncTriggerMapping>>;

    /// Sets (or with `None` removes) the pool's SyncTrigger mapping.
    async fn set_sync_trigger(&self, pool_id: &str, function: Option<&str>) -> Result<()>;

    /// Deletes a pool with everything in it: identities, logins, datasets, records,
    /// credentials.
    async fn delete_pool(&self, pool: &str) -> Result<bool>;

    /// Registers (or replaces) a tenant's OpenID Connect issuer.
    async fn put_issuer(&self, issuer: &Issuer) -> Result<()>;

    /// A tenant's registered issuer.
    async fn issuer(&self, tenant: &str, issuer: &str) -> Result<Option<Issuer>>;
}

/// Identities and their logins.
#[async_trait::async_trait]
pub trait Identities: Send + Sync {
    /// Creates a new identity in the pool.
    async fn create_identity(&self, pool_id: &str, region: &str) -> Result<String>;

    /// The pool an identity belongs to.
    async fn identity_pool(&self, identity_id: &str) -> Result<Option<String>>;

    /// The identity with its logins.
    async fn identity(&self, identity_id: &str) -> Result<Option<IdentityRow>>;

    /// Up to `limit` identities of a pool with ids after `after`, merged ones left out
    /// when `hide_disabled`.
    async fn identities_after(
        &self,
        pool: &str,
        after: &str,
        limit: usize,
        hide_disabled: bool,
    ) -> Result<Vec<IdentityRow>>;

    /// The identity a login is linked to in a pool.
    async fn login_identity(&self, pool: &str, provider: &str, subject: &str) -> Result<Option<String>>;

    /// The identity linked to a login, created with that login on its first use — in one
    /// transaction, so two devices signing in at once get the same identity.
    async fn identity_for_login(
        &self,
        pool: &str,
        region: &str,
        provider: &str,
        subject: &str,
    ) -> Result<LoginIdentity>;

    /// Links a login to a live identity of the pool, in one transaction that checks the
    /// identity is still live — and, with `only_if_unauthenticated`, that it still has
    /// never had a login, so two people cannot both link to one guest identity.
    async fn link_login(
        &self,
        pool: &str,
        provider: &str,
        subject: &str,
        identity: &str,
        only_if_unauthenticated: bool,
    ) -> Result<LinkOutcome>;

    /// Unlinks logins of `provider` (every subject, or only `subject`) from an identity;
    /// answers how many were removed.
    async fn unlink_logins(&self, identity: &str, provider: &str, subject: Option<&str>) -> Result<usize>;

    /// Merges `source` into `target` (both of `pool`), in one transaction that checks both
    /// are still live and `rule` still holds: the source's logins move to the target, its
    /// live datasets become the target's as `<name>.<source>` (records, SyncCounts and
    /// dates kept), and the source is disabled; its credentials stop working at once.
    async fn merge_identities(
        &self,
        pool: &str,
        source: &str,
        target: &str,
        rule: MergeRule<'_>,
    ) -> Result<MergeOutcome>;

    /// Deletes identities (of `pool` only, when given) with their datasets, logins and
    /// credentials; answers the ids that were not found.
    async fn delete_identities(&self, pool: Option<&str>, identities: &[String]) -> Result<Vec<String>>;
}

/// Datasets and their records.
#[async_trait::async_trait]
pub trait Datasets: Send + Sync {
    /// Applies an update, if the dataset's SyncCount is still the update's base: in one
    /// transaction that re-checks it, the identity (not merged away) and the dataset
    /// limit; answers once the change is durable.
    async fn update(&self, update: Update) -> UpdateResult;

    /// Deletes a dataset: its records go, its row stays marked deleted with the SyncCount
    /// bumped and that count kept as the deletion's. Answers the row as it was, or `None`
    /// when there was no live dataset.
    async fn delete_dataset(&self, key: DatasetKey<'_>, by: &str) -> Result<Option<DatasetRow>>;

    /// The dataset (deleted ones included).
    async fn dataset(&self, key: DatasetKey<'_>) -> Result<Option<DatasetRow>>;

    /// Up to `limit` live datasets of the identity with names after `after`, by name.
    async fn datasets_after(&self, pool: &str, identity: &str, after: &str, limit: usize) -> Result<Vec<DatasetRow>>;

    /// Everything an update needs to decide, read in one transaction.
    async fn snapshot(&self, key: DatasetKey<'_>) -> Result<Snapshot>;

    /// One page of ListRecords, read in one transaction: records with
    /// `last < SyncCount <= upper` after `cursor`, in (SyncCount, key) order, and the
    /// names of datasets merged in under this one's. A first page (`upper` `None`) takes
    /// the dataset's current SyncCount as the listing's bound.
    async fn records_page(
        &self,
        key: DatasetKey<'_>,
        last: i64,
        upper: Option<i64>,
        cursor: Option<&RecordCursor>,
        limit: usize,
    ) -> Result<RecordPage>;

    /// The stored answer of an applied update, if `idempotency` names a repeat of one.
    async fn applied_answer(&self, idempotency: &Idempotency) -> Result<Option<Vec<RecordRow>>>;

    /// What an identity holds: its live datasets, their bytes, when one last changed.
    async fn identity_usage(&self, pool: &str, identity: &str) -> Result<Usage>;

    /// What a pool holds: its sync sessions (dataset SyncCounts summed), bytes, when a
    /// dataset last changed.
    async fn pool_usage(&self, pool: &str) -> Result<Usage>;
}

/// Trigger functions and their invocations.
#[async_trait::async_trait]
pub trait Functions: Send + Sync {
    /// Records an invocation (kept: the latest few per function), in the background.
    fn submit_invocation(&self, tenant: &str, name: &str, row: InvocationRow);

    /// The version the next deploy of a function will get (if no other deploy of it
    /// comes first).
    async fn next_function_version(&self, tenant: &str, name: &str) -> Result<i64>;

    /// Stores a new version of a tenant's function — its component, and for a JavaScript
    /// function its script and handler; returns the version. The limits and the expected
    /// latest version are checked in the transaction that writes.
    async fn deploy_function(
        &self,
        tenant: &str,
        name: &str,
        digest: &str,
        wasm: &[u8],
        script: Option<&Script>,
        expected_latest: Option<i64>,
    ) -> Result<std::result::Result<i64, DeployRefused>>;

    /// The limit a deploy of `tenant`'s function `name` would pass now, if any: checked
    /// before the work of compiling (and again in the transaction that stores it).
    async fn function_limit(&self, tenant: &str, name: &str) -> Result<Option<DeployRefused>>;

    /// A JavaScript function version's script and handler.
    async fn function_script(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Script>>;

    /// A function version (the latest for `None`).
    async fn function(&self, tenant: &str, name: &str, version: Option<i64>) -> Result<Option<FunctionHead>>;

    /// The component bytes of a function version.
    async fn function_wasm(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Vec<u8>>>;

    /// A tenant's functions, by name.
    async fn functions(&self, tenant: &str) -> Result<Vec<FunctionSummary>>;

    /// Every version of a function, newest first (without their bytes).
    async fn function_versions(&self, tenant: &str, name: &str) -> Result<Vec<FunctionVersion>>;

    /// The latest invocations of a function, newest first.
    async fn invocations(&self, tenant: &str, name: &str, limit: i64) -> Result<Vec<InvocationRow>>;
}

/// Export and import of a whole installation or one pool.
#[async_trait::async_trait]
pub trait Archive: Send + Sync {
    /// Writes `scope` to `out` as JSON lines ([`export`]), from one consistent snapshot;
    /// the number of rows written.
    async fn export(&self, scope: &Scope, out: &mut (dyn std::io::Write + Send)) -> Result<u64>;

    /// Loads a stream [`Backend::export`] wrote (by either backend). A whole installation
    /// goes only into a store with no tenants and no pools; a pool only into a store
    /// without it, under `tenant` (which must exist). All or nothing.
    async fn import(&self, input: &mut (dyn std::io::BufRead + Send), tenant: Option<&str>) -> Result<Counts>;
}
