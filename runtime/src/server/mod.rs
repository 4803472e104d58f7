//! `synctrig-wasm serve`: a Cognito Sync–compatible dataset service (rest-json, SigV4)
//! plus the Cognito Identity calls a client needs to get identity credentials
//! (GetId, GetCredentialsForIdentity; JSON 1.1), on an embedded SQLite database.
//!
//! - [`http`]: connections, timeouts, request ids, CORS, routing;
//! - [`sigv4`]: signature verification (pure);
//! - `sync`, `identity`: the two APIs' operations; `wire`: their typed shapes;
//! - [`admission`]: connection caps and credential-minting rate limits;
//! - [`store`]: the database.
//!
//! The library exposes [`serve`]; the binary parses flags and calls it, so tests can
//! bind port 0 in-process.

pub mod admission;
mod error;
mod http;
mod identity;
mod metrics;
pub mod sigv4;
pub mod store;
mod sync;
mod wire;

pub use error::ApiError;
pub use http::{REQUEST_ID, serve};

use crate::invoker::Invoker;
use crate::sandbox::{Runtime, Trigger};
use admission::{Admission, AdmissionConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::Store;
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
    /// Lifetime of identity credentials, in seconds.
    pub credentials_ttl_secs: i64,
    /// Lifetime of a SyncSessionToken, in seconds.
    pub session_ttl_secs: i64,
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
            trigger_slots: 2 * cores(),
            // A pool runs triggers on at most half the cores, so a tenant whose trigger
            // spins cannot take the CPU from the others (BENCHMARKS.md has both sides of
            // this trade).
            trigger_slots_per_pool: (cores() / 2).max(1),
            trigger_queue_per_pool: 64,
            credentials_ttl_secs: 3600,
            session_ttl_secs: 3600,
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Now, in epoch seconds.
fn now_secs() -> i64 {
    store::now()
}

/// Everything the handlers share.
pub struct AppState {
    config: ServerConfig,
    store: Arc<Store>,
    invoker: Invoker,
    triggers: Mutex<HashMap<String, Trigger>>,
    requests: Arc<Semaphore>,
    admission: Arc<Admission>,
    metrics: metrics::Metrics,
    session_key: Vec<u8>,
}

impl AppState {
    /// State over an open store and a runtime.
    pub fn new(config: ServerConfig, store: Arc<Store>, runtime: Arc<Runtime>) -> Result<Arc<Self>, ApiError> {
        let (key, _) = store.meta_or_insert("session_key", || store::random_hex(32))?;
        Ok(Arc::new(AppState {
            invoker: Invoker::new(
                runtime,
                config.trigger_slots,
                config.trigger_slots_per_pool,
                config.trigger_queue_per_pool,
            ),
            requests: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            admission: Admission::new(config.admission.clone()),
            triggers: Mutex::default(),
            metrics: metrics::Metrics::default(),
            session_key: key.into_bytes(),
            store,
            config,
        }))
    }

    /// The trigger for a component digest, if it is loaded already.
    fn cached_trigger(&self, digest: &str) -> Option<Trigger> {
        self.triggers.lock().unwrap_or_else(|e| e.into_inner()).get(digest).cloned()
    }

    /// The loaded trigger for a function version, compiling it the first time.
    fn trigger(&self, tenant: &str, name: &str, version: i64, digest: &str) -> Result<Trigger, ApiError> {
        if let Some(t) = self.cached_trigger(digest) {
            return Ok(t);
        }
        let wasm = self
            .store
            .function_wasm(tenant, name, version)?
            .ok_or_else(|| ApiError::internal(format!("function {name} version {version} vanished")))?;
        let trigger = self.invoker.runtime().load(&wasm)?;
        self.triggers.lock().unwrap_or_else(|e| e.into_inner()).insert(digest.to_owned(), trigger.clone());
        Ok(trigger)
    }
}

/// `Some(name)` when `name` is a valid function name.
pub fn api_function_name_ok(name: &str) -> Option<&str> {
    sync::parse_function_ref(name).filter(|(n, v)| n == name && v.is_none()).map(|_| name)
}
