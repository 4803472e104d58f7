//! What the handlers share: the server's settings and state (the store, the runtime's
//! invoker and loaded triggers, admission, metrics, the keys that sign sessions and tokens).

use crate::admission::{Admission, AdmissionConfig};
use crate::error::ApiError;
use crate::metrics;
use crate::oidc;
use crate::releases::{self, Releases, Selected};
use crate::triggers::{FunctionRef, Triggers, parse_function_ref};
use std::sync::Arc;
use std::time::Duration;
use synctrig_runtime::invoker::Invoker;
use synctrig_runtime::sandbox::Runtime;
use synctrig_store::{DatasetKey, Snapshot, Store};
use tokio::sync::Semaphore;

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The region this service answers as (in ids, in the trigger event, and the region
    /// every signature's scope must name).
    pub region: String,
    /// Most requests handled at once; more get `TooManyRequestsException`.
    pub max_concurrent_requests: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Longest a client may take to send a request's headers (and longest an idle
    /// keep-alive connection stays open).
    pub header_timeout: Duration,
    /// Longest a client may take to send a request's body.
    pub body_timeout: Duration,
    /// Longest a graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Connection caps and credential-minting rate limits.
    pub admission: AdmissionConfig,
    /// Origins allowed to call the API from a browser (`*` for any); none by default.
    pub cors_origins: Vec<String>,
    /// Most trigger invocations running at once (all pools).
    pub trigger_slots: usize,
    /// Most trigger invocations running at once for one identity pool.
    pub trigger_slots_per_pool: usize,
    /// Most trigger invocations of one pool waiting for a slot; more are throttled.
    pub trigger_queue_per_pool: usize,
    /// Most bytes of compiled triggers kept loaded; past it the least recently used are
    /// dropped (and reload from the artifact cache when next needed).
    pub trigger_memory_bytes: usize,
    /// Most triggers compiled at once.
    pub compile_slots: usize,
    /// Longest an update waits for its pool's trigger to be compiled before it is
    /// answered `LambdaThrottledException`.
    pub compile_wait: Duration,
    /// Lifetime of identity credentials, in seconds.
    pub credentials_ttl_secs: i64,
    /// Lifetime of a SyncSessionToken, in seconds.
    pub session_ttl_secs: i64,
    /// The URL clients reach this server at: the issuer (`iss`) of the OpenID Connect
    /// tokens it signs. By default `http://<the address it listens on>`.
    pub public_url: Option<String>,
    /// The NATS JetStream broker Cognito Streams and push sync publish to; without it,
    /// neither can be turned on.
    pub broker: Option<crate::streams::BrokerConfig>,
    /// Most outbox entries (changes not yet published) one pool holds; past it the pool's
    /// streaming is disabled, with the reason.
    pub outbox_max: i64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            region: "us-east-1".into(),
            max_concurrent_requests: 512,
            max_body_bytes: 4 << 20,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            admission: AdmissionConfig::default(),
            cors_origins: Vec::new(),
            // One worker per core: triggers are CPU-bound and never wait on I/O.
            trigger_slots: cores(),
            // A pool alone may use every worker; under contention the scheduler gives each
            // active pool its share (invoker.rs), so a spinning trigger takes no more.
            trigger_slots_per_pool: cores(),
            trigger_queue_per_pool: 64,
            trigger_memory_bytes: 256 << 20,
            compile_slots: (cores() / 2).max(1),
            compile_wait: Duration::from_secs(5),
            credentials_ttl_secs: 3600,
            session_ttl_secs: 3600,
            public_url: None,
            broker: None,
            outbox_max: synctrig_store::streams::DEFAULT_OUTBOX_MAX,
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Everything the handlers share.
pub struct AppState {
    pub(crate) config: ServerConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) invoker: Invoker,
    pub(crate) triggers: Arc<Triggers>,
    /// Figures of the versions behind aliases, and the rollout judge.
    pub(crate) releases: Arc<Releases>,
    pub(crate) requests: Arc<Semaphore>,
    /// Deploys from the API (the console) at once: each compiles, and a script is
    /// pre-initialised too.
    pub(crate) deploys: Arc<Semaphore>,
    /// Tenants with a deploy in progress through the API (one each at a time).
    pub(crate) deploying: std::sync::Mutex<std::collections::HashSet<String>>,
    pub(crate) admission: Arc<Admission>,
    pub(crate) metrics: metrics::Metrics,
    /// The publisher's figures (outbox depth, publish lag, failures).
    pub(crate) stream_metrics: Arc<crate::streams::StreamMetrics>,
    pub(crate) session_key: Vec<u8>,
    /// This server's token-signing key, set once its address is known.
    pub(crate) oidc: std::sync::OnceLock<oidc::OwnKey>,
}

impl AppState {
    /// State over an open store and a runtime.
    pub async fn new(config: ServerConfig, store: Arc<Store>, runtime: Arc<Runtime>) -> Result<Arc<Self>, ApiError> {
        let (key, _) = store.meta_or_insert("session_key", synctrig_store::random_hex(32)).await?;
        store.set_outbox_max(config.outbox_max);
        Ok(Arc::new(AppState {
            triggers: Triggers::new(
                runtime.clone(),
                store.clone(),
                config.trigger_memory_bytes,
                config.compile_slots,
                config.compile_wait,
            ),
            invoker: Invoker::new(
                runtime,
                config.trigger_slots,
                config.trigger_slots_per_pool,
                config.trigger_queue_per_pool,
            ),
            releases: Releases::new(store.clone()),
            requests: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            deploys: Arc::new(Semaphore::new(config.compile_slots)),
            deploying: Default::default(),
            admission: Admission::new(config.admission.clone()),
            metrics: metrics::Metrics::default(),
            stream_metrics: Default::default(),
            session_key: key.into_bytes(),
            oidc: std::sync::OnceLock::new(),
            store,
            config,
        }))
    }

    /// Loads (or creates) the token-signing key, with the public URL as its issuer.
    pub(crate) async fn init_oidc(&self, addr: std::net::SocketAddr) -> std::io::Result<()> {
        let issuer = self.config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
        let key =
            oidc::OwnKey::load_or_create(&*self.store, &issuer).await.map_err(|e| std::io::Error::other(e.message))?;
        let _ = self.oidc.set(key);
        Ok(())
    }

    /// The token-signing key.
    pub(crate) fn oidc(&self) -> Result<&oidc::OwnKey, ApiError> {
        self.oidc.get().ok_or_else(|| ApiError::internal("the server's signing key is not loaded"))
    }

    /// The dataset's snapshot and, for an update that runs the pool's Sync Trigger
    /// (`mapping`), the function version the mapping names now, if it is deployed.
    pub(crate) async fn snapshot_and_selection(
        &self,
        tenant: &str,
        mapping: Option<&str>,
        dataset: DatasetKey<'_>,
    ) -> Result<(Snapshot, Option<Selected>), ApiError> {
        let Some((name, qualifier)) = mapping.and_then(parse_function_ref) else {
            return Ok((self.store.snapshot(dataset).await?, None));
        };
        let (snapshot, resolved) = self.store.snapshot_and_function(dataset, (tenant, &name, &qualifier)).await?;
        let at = (dataset.pool, dataset.identity, dataset.name);
        Ok((snapshot, resolved.map(|r| releases::select(tenant, &name, r, at))))
    }

    /// Every version a SyncTrigger mapping may run now: its version, and an alias's second.
    pub(crate) async fn versions_of(&self, tenant: &str, mapping: &str) -> Result<Vec<FunctionRef>, ApiError> {
        let Some((name, qualifier)) = parse_function_ref(mapping) else { return Ok(Vec::new()) };
        let Some(resolved) = self.store.resolve_function(tenant, &name, &qualifier).await? else {
            return Ok(Vec::new());
        };
        let candidate = resolved.alias.and_then(|a| a.candidate).map(|(head, _)| head);
        Ok(std::iter::once(resolved.primary)
            .chain(candidate)
            .map(|head| FunctionRef {
                tenant: tenant.to_owned(),
                name: name.clone(),
                version: head.version,
                digest: head.digest,
            })
            .collect())
    }

    /// Starts loading every pool's trigger in the background, so that a node that lacks
    /// compiled artifacts (a new node, a wiped cache, an upgrade) compiles before updates
    /// need them.
    pub async fn prefetch_triggers(&self) -> Result<(), ApiError> {
        for trigger in self.store.sync_triggers().await? {
            for f in self.versions_of(&trigger.tenant, &trigger.mapping).await? {
                self.triggers.prefetch(f);
            }
        }
        Ok(())
    }
}
