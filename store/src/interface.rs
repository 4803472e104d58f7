//! The store's interface, by concern: tenants and credentials, identities and logins,
//! datasets and records, functions and invocations, the archive. Each backend implements
//! every trait; the server holds `Arc<Store>`.

use crate::*;

/// The store, whichever backend holds it.
pub type Store = dyn Backend;

/// The store's operations, by concern. Every method is one transaction unless it says
/// otherwise.
#[async_trait::async_trait]
pub trait Backend: Tenants + Identities + Datasets + Functions + Releases + Recordings + Streams + Archive {
    /// Which backend this is (`sqlite`, `postgres`).
    fn kind(&self) -> &'static str;

    /// [`Datasets::snapshot`] and what [`Releases::resolve_function`] answers for the
    /// function a Sync Trigger names: what an update with a trigger reads first, in one
    /// trip where a backend's calls each cost one (SQLite's reader threads).
    async fn snapshot_and_function(
        &self,
        key: DatasetKey<'_>,
        (tenant, function, qualifier): (&str, &str, &Qualifier),
    ) -> Result<(Snapshot, Option<Resolved>)> {
        let snapshot = self.snapshot(key).await?;
        Ok((snapshot, self.resolve_function(tenant, function, qualifier).await?))
    }
}

/// Tenants and their credentials, identity pools and OpenID Connect issuers.
#[async_trait::async_trait]
pub trait Tenants: Send + Sync {
    /// Sweeps expired temporary credentials and stored update answers, in the background.
    fn submit_purge(&self);

    /// Moves SQLite's write-ahead log into the database and empties it (on a schedule,
    /// and at shutdown); whether it could. PostgreSQL manages its own log.
    async fn checkpoint(&self) -> Result<bool>;

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

    /// Sets (or with `None` removes) the pool's SyncTrigger mapping. When it names a
    /// function (`(tenant, function, alias)`), only if the function (and the alias) exists,
    /// checked — and held against deletion — in the transaction that writes; `false` when
    /// it does not.
    async fn set_sync_trigger(
        &self,
        pool_id: &str,
        mapping: Option<&str>,
        function: Option<(&str, &str, Option<&str>)>,
    ) -> Result<bool>;

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

    /// The stored answer of the dataset's last applied update, if `idempotency` names a
    /// repeat of it.
    async fn applied_answer(&self, key: DatasetKey<'_>, idempotency: &Idempotency) -> Result<Option<Vec<RecordRow>>>;

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

    /// Deletes a function with its versions, aliases, figures, decisions, invocation log
    /// and recordings, unless a pool's SyncTrigger names it; how many versions it had.
    async fn delete_function(&self, tenant: &str, name: &str) -> Result<std::result::Result<i64, DeleteRefused>>;
}

/// Export and import of a whole installation or one pool.
#[async_trait::async_trait]
pub trait Archive: Send + Sync {
    /// Writes `scope` to `out` as JSON lines ([`export`]), from one consistent snapshot;
    /// the number of rows written.
    async fn export(&self, scope: &Scope, out: &mut (dyn std::io::Write + Send)) -> Result<u64>;

    /// [`Archive::export`] as a stream of chunks ([`ExportStream`]), read at the pace its
    /// consumer takes them — an HTTP response's body.
    fn export_stream(self: Arc<Self>, scope: Scope) -> ExportStream;

    /// Loads a stream [`Backend::export`] wrote (by either backend). A whole installation
    /// goes only into a store with no tenants and no pools; a pool only into a store
    /// without it, under `tenant` (which must exist). All or nothing.
    async fn import(&self, input: &mut (dyn std::io::BufRead + Send), tenant: Option<&str>) -> Result<Counts>;
}

/// Aliases of functions, the figures of the versions behind them, and rollouts'
/// decisions ([`crate::releases`]).
#[async_trait::async_trait]
pub trait Releases: Send + Sync {
    /// Creates or replaces an alias (as `mode` allows); its versions must exist, and
    /// with `expected_epoch` its epoch must be that one.
    async fn put_alias(
        &self,
        tenant: &str,
        function: &str,
        alias: &str,
        change: &AliasChange,
        mode: PutMode,
        expected_epoch: Option<i64>,
    ) -> Result<std::result::Result<Alias, AliasRefused>>;

    /// Deletes an alias, unless a pool's SyncTrigger names it.
    async fn delete_alias(
        &self,
        tenant: &str,
        function: &str,
        alias: &str,
    ) -> Result<std::result::Result<(), AliasRefused>>;

    /// One alias.
    async fn alias(&self, tenant: &str, function: &str, alias: &str) -> Result<Option<Alias>>;

    /// A function's aliases, by name.
    async fn aliases(&self, tenant: &str, function: &str) -> Result<Vec<Alias>>;

    /// Every alias with a rollout in progress: `(tenant, alias)`.
    async fn rollouts(&self) -> Result<Vec<(String, Alias)>>;

    /// What a function name and qualifier resolve to now (on every node: a change is
    /// seen by the next sync).
    async fn resolve_function(&self, tenant: &str, function: &str, qualifier: &Qualifier) -> Result<Option<Resolved>>;

    /// Adds figures to their aliases' epochs, in one transaction.
    async fn add_figures(&self, deltas: &[FiguresDelta]) -> Result<()>;

    /// The figures of each version behind an alias in `epoch`.
    async fn figures(&self, tenant: &str, function: &str, alias: &str, epoch: i64) -> Result<Vec<VersionFigures>>;

    /// Ends a rollout with `verdict` if `decision.epoch` is still the alias's epoch;
    /// answers the alias as it now is, or `None` when it was not.
    async fn decide_rollout(
        &self,
        tenant: &str,
        function: &str,
        alias: &str,
        verdict: Verdict,
        decision: &Decision,
    ) -> Result<Option<Alias>>;

    /// A function's latest rollout decisions, newest first.
    async fn decisions(&self, tenant: &str, function: &str, limit: i64) -> Result<Vec<Decision>>;
}

/// Recorded invocations of functions ([`crate::recordings`]).
#[async_trait::async_trait]
pub trait Recordings: Send + Sync {
    /// Records an invocation in the background, if its function still records; the
    /// function's recordings are trimmed to its count and age in the same transaction.
    fn submit_recording(&self, tenant: &str, name: &str, recording: Recording);

    /// A function's recording settings, if it records.
    async fn recording_settings(&self, tenant: &str, name: &str) -> Result<Option<RecordingSettings>>;

    /// Turns a function's recording on, changes its settings, or turns it off (`None`),
    /// which deletes its recordings.
    async fn set_recording(
        &self,
        tenant: &str,
        name: &str,
        settings: Option<&RecordingSettings>,
    ) -> Result<std::result::Result<(), RecordingRefused>>;

    /// A function's recordings with ids below `before`, newest first, at most `limit`.
    async fn recordings(&self, tenant: &str, name: &str, before: Option<i64>, limit: i64) -> Result<Vec<Recording>>;

    /// One recording of a function.
    async fn recording(&self, tenant: &str, name: &str, id: i64) -> Result<Option<Recording>>;

    /// Deletes one recording of a function, or all (`None`); how many went.
    async fn delete_recordings(&self, tenant: &str, name: &str, id: Option<i64>) -> Result<u64>;
}

/// Cognito Streams and push sync ([`crate::streams`]): pools' configuration, the outbox
/// committed changes leave through, devices and subscriptions, bulk publishes.
#[async_trait::async_trait]
pub trait Streams: Send + Sync {
    /// Sets the bound of each pool's outbox (entries not yet published).
    fn set_outbox_max(&self, max: i64);

    /// A pool's configuration of streams and push sync.
    async fn pool_configuration(&self, pool: &str) -> Result<streams::PoolConfiguration>;

    /// Changes a pool's streams settings (when given) and push settings (when given), in
    /// one transaction that checks the stream name is not another tenant's.
    async fn set_pool_configuration(
        &self,
        tenant: &str,
        pool: &str,
        streams: Option<&streams::StreamsChange>,
        push: Option<&streams::PushSettings>,
    ) -> Result<std::result::Result<streams::PoolConfiguration, streams::ConfigurationRefused>>;

    /// Takes (or keeps) a lease for `holder` for `ttl_ms`; whether it has it.
    async fn take_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool>;

    /// The oldest outbox entries, in the order they were written.
    async fn outbox(&self, limit: i64) -> Result<Vec<streams::OutboxEntry>>;

    /// Removes published outbox entries; how many were removed.
    async fn outbox_done(&self, ids: &[i64]) -> Result<u64>;

    /// How many entries wait in the outbox, in all.
    async fn outbox_depth(&self) -> Result<i64>;

    /// Registers a device of an identity; its DeviceId (the same for the same token).
    async fn register_device(&self, pool: &str, identity: &str, platform: &str, token: &str) -> Result<String>;

    /// Subscribes (`on`) a device of an identity to one of its datasets, or unsubscribes it.
    async fn subscribe(
        &self,
        identity: &str,
        dataset: &str,
        device: &str,
        on: bool,
    ) -> Result<std::result::Result<(), streams::SubscriptionRefused>>;

    /// The devices subscribed to a dataset of an identity.
    async fn subscribers(&self, identity: &str, dataset: &str) -> Result<Vec<streams::Device>>;

    /// Starts a pool's bulk publish, unless the pool does not stream or the last one is
    /// in progress or succeeded less than a day ago.
    async fn start_bulk_publish(
        &self,
        pool: &str,
    ) -> Result<std::result::Result<streams::BulkPublish, streams::BulkRefused>>;

    /// A pool's last bulk publish.
    async fn bulk_publish(&self, pool: &str) -> Result<Option<streams::BulkPublish>>;

    /// Every bulk publish in progress.
    async fn bulk_publishes_in_progress(&self) -> Result<Vec<streams::BulkPublish>>;

    /// Moves a bulk publish (the one started at `started_ms`) past `cursor`, and ends it
    /// when `end` is given; whether it was still in progress.
    async fn advance_bulk_publish(
        &self,
        pool: &str,
        started_ms: i64,
        cursor: Option<&(String, String)>,
        end: Option<std::result::Result<(), String>>,
    ) -> Result<bool>;

    /// Up to `limit` live datasets of a pool after `after` (identity, name), with their
    /// records, read in one transaction.
    async fn bulk_page(
        &self,
        pool: &str,
        after: Option<&(String, String)>,
        limit: i64,
    ) -> Result<Vec<streams::DatasetState>>;
}
