//! The sandbox that runs untrusted trigger components.
//!
//! Expensive work happens once: the [`Runtime`] owns the engine (with its epoch ticker
//! thread), the linker and the artifact cache; [`Runtime::load`] compiles (or loads
//! from the cache), checks the component's imports against the allowed set and
//! pre-instantiates it. Each [`Runtime::invoke`] then only builds a fresh `Store` with
//! its own limits, fuel, deadline and log, instantiates and calls.

mod abi;
mod cache;
mod host;
pub mod js;
mod logbuf;
pub mod structure;
pub mod worker;

pub use logbuf::LogBuffer;

use crate::error::Error;
use crate::event::SyncEvent;
use cache::ArtifactCache;
use host::{HostState, bindings};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, ComponentExportIndex, Instance, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

/// The default wall-clock deadline of one invocation, as Cognito's Sync Trigger had.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);
/// The default fuel budget of one invocation. A legitimate trigger over a full dataset
/// (1,024 records, 1 MiB) uses a few million units; a spinning trigger burns it in
/// 0.2–1.7 s on a 2-core machine, so with the defaults fuel stops a spinning trigger and
/// the deadline stops one that spends its time in host calls.
pub const DEFAULT_FUEL: u64 = 2_000_000_000;
/// The default cap on a trigger's linear memory.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;

/// Limits on one invocation.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock deadline, enforced by epoch interruption.
    pub deadline: Duration,
    /// Fuel budget; `None` turns fuel metering off for the whole runtime.
    pub fuel: Option<u64>,
    /// Cap on each linear memory, in bytes.
    pub memory_bytes: usize,
    /// Most linear memories in one store.
    pub max_memories: usize,
    /// Most tables in one store.
    pub max_tables: usize,
    /// Most elements of one table.
    pub max_table_elements: usize,
    /// Most (core and component) instances in one store.
    pub max_instances: usize,
    /// Most native stack that wasm frames may use.
    pub max_wasm_stack: usize,
    /// Most bytes of strings (keys and values) in a trigger's response.
    pub max_output_bytes: usize,
    /// Most records in a trigger's response.
    pub max_output_records: usize,
    /// Most log bytes kept per invocation; the rest is dropped with a marker.
    pub max_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: DEFAULT_DEADLINE,
            fuel: Some(DEFAULT_FUEL),
            memory_bytes: DEFAULT_MEMORY_BYTES,
            // A Rust component has one memory; its shim modules have a table each.
            max_memories: 1,
            max_tables: 8,
            max_table_elements: 20_000,
            max_instances: 16,
            max_wasm_stack: 512 << 10,
            // A full dataset in, rewritten out, with every stored record removed too.
            max_output_bytes: 4 << 20,
            max_output_records: 4 * crate::limits::MAX_RECORDS,
            max_log_bytes: 64 << 10,
        }
    }
}

/// Where untrusted component bytes are parsed and compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compiler {
    /// In a child process started from this executable (`<exe> compile`; the
    /// `synctrig-wasm` binary), under the limits of [`crate::limits::compile`]. What
    /// `serve`, `run` and `admin deploy` use.
    Worker(PathBuf),
    /// In this process. A malicious component can crash or exhaust the process while it
    /// is compiled: only for components the caller trusts (benchmarks, tests of the
    /// library's other parts).
    InProcess,
}

/// The engine settings that compiled code depends on; the compile worker builds its engine
/// from exactly these, so its artifacts load in the runtime's engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineSettings {
    /// Whether fuel is metered.
    pub fuel: bool,
    /// The most native stack wasm may use.
    pub max_wasm_stack: usize,
}

impl EngineSettings {
    fn of(limits: &Limits) -> Self {
        EngineSettings { fuel: limits.fuel.is_some(), max_wasm_stack: limits.max_wasm_stack }
    }

    /// The settings as the worker's `--settings` argument.
    pub fn to_arg(&self) -> String {
        format!("fuel={},stack={}", self.fuel, self.max_wasm_stack)
    }

    /// Parses [`to_arg`](Self::to_arg)'s form.
    pub fn from_arg(arg: &str) -> Option<Self> {
        let (fuel, stack) = arg.split_once(',')?;
        Some(EngineSettings {
            fuel: fuel.strip_prefix("fuel=")?.parse().ok()?,
            max_wasm_stack: stack.strip_prefix("stack=")?.parse().ok()?,
        })
    }
}

/// How the runtime allocates instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Pooling allocator with copy-on-write memory images; falls back to on-demand if the
    /// address-space reservation fails.
    Pooling,
    /// Allocate every instance on demand.
    OnDemand,
}

/// Configuration of a [`Runtime`].
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Limits on each invocation.
    pub limits: Limits,
    /// Largest component accepted, in bytes.
    pub max_component_bytes: usize,
    /// Where component bytes are compiled.
    pub compiler: Compiler,
    /// Where precompiled artifacts are kept; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Instance allocation strategy.
    pub allocation: Allocation,
    /// Instances the pool holds at once (with pooling): the most concurrent invocations.
    pub pool_instances: u32,
    /// How often the epoch ticker advances; the deadline's precision.
    pub epoch_tick: Duration,
    /// Bytes of a pooled instance's linear memory kept resident between invocations (reset
    /// by copying, not unmapped and faulted in again; BENCHMARKS.md has the measurements).
    pub keep_resident_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: Limits::default(),
            max_component_bytes: crate::limits::MAX_COMPONENT_BYTES,
            compiler: Compiler::InProcess,
            cache_dir: None,
            allocation: Allocation::Pooling,
            pool_instances: 64,
            epoch_tick: Duration::from_millis(5),
            // 2 MiB: a JavaScript trigger's instance touches about 1.4 MiB; resetting those
            // pages by copying is faster than faulting them in again (BENCHMARKS.md).
            keep_resident_bytes: 2 << 20,
        }
    }
}

/// Figures for one invocation.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Wall time from store creation to result, in microseconds.
    pub wall_us: u64,
    /// Fuel consumed (0 when fuel is off).
    pub fuel_consumed: u64,
    /// Peak linear memory, in bytes.
    pub peak_memory_bytes: usize,
    /// Bytes the trigger logged, kept or not.
    pub log_bytes: usize,
}

/// The result of one invocation, with its stats and log.
#[derive(Debug)]
pub struct Invocation {
    /// The trigger's response, or why there is none.
    pub result: Result<SyncEvent, Error>,
    /// Figures for the invocation.
    pub stats: Stats,
    /// The bounded log (log calls, stdout and stderr).
    pub log: String,
}

/// A loaded, checked and pre-instantiated trigger component.
#[derive(Clone)]
pub struct Trigger {
    pre: bindings::SyncTriggerPre<HostState>,
    /// `handle`, looked up once: the call lowers the host's event and lifts the response
    /// with the types of `event` and `abi`, not bindgen's (which would copy the event).
    handle: ComponentExportIndex,
    digest: String,
    artifact_bytes: usize,
}

impl Trigger {
    /// The SHA-256 of the component's bytes, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The size of its compiled artifact: about the memory it holds while loaded.
    pub fn artifact_bytes(&self) -> usize {
        self.artifact_bytes
    }
}

/// Imports a trigger may have; anything else is refused at load. Versions are not
/// pinned: the linker decides whether a version is compatible.
const ALLOWED_IMPORTS: &[&str] = &[
    "synctrig:trigger/log",
    "synctrig:trigger/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// Why an import is refused, for the ones a trigger is likely to try.
fn refusal_reason(import: &str) -> &'static str {
    if import.starts_with("wasi:filesystem/") {
        "triggers have no file system"
    } else if import.starts_with("wasi:sockets/") || import.starts_with("wasi:http/") {
        "triggers have no network"
    } else {
        "it is outside the sandbox's interface"
    }
}

/// The engine, linker and caches that run triggers. Build one per process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    config: Arc<RuntimeConfig>,
    cache: Option<ArtifactCache>,
    allocation: Allocation,
    epochs: Arc<EpochClock>,
}

impl Runtime {
    /// Builds the engine (trying the pooling allocator first when asked), the linker
    /// with the allowed interfaces only, the artifact cache, and the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, Error> {
        let settings = EngineSettings::of(&config.limits);
        let pool = Some(PoolSettings {
            limits: &config.limits,
            instances: config.pool_instances,
            keep_resident: config.keep_resident_bytes,
        });
        let (engine, allocation) = match config.allocation {
            Allocation::Pooling => match build_engine(&settings, pool) {
                Ok(engine) => (engine, Allocation::Pooling),
                Err(e) => {
                    tracing::warn!("pooling allocator unavailable ({e:#}); allocating on demand");
                    (build_engine(&settings, None).map_err(internal)?, Allocation::OnDemand)
                }
            },
            Allocation::OnDemand => (build_engine(&settings, None).map_err(internal)?, Allocation::OnDemand),
        };
        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker).map_err(internal)?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(
                ArtifactCache::open(dir, &engine)
                    .map_err(|e| Error::Internal(format!("cannot open artifact cache {}: {e}", dir.display())))?,
            ),
            None => None,
        };
        let epochs = EpochClock::start(&engine, config.epoch_tick);
        Ok(Runtime { engine, linker, config: Arc::new(config), cache, allocation, epochs })
    }

    /// The allocation strategy in use (pooling may have fallen back to on-demand).
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Loads a trigger component from a file.
    pub fn load_file(&self, path: &Path) -> Result<Trigger, Error> {
        let len = std::fs::metadata(path)
            .map_err(|e| Error::InvalidComponent(format!("cannot read {}: {e}", path.display())))?
            .len();
        self.check_size(len as usize)?;
        let bytes =
            std::fs::read(path).map_err(|e| Error::InvalidComponent(format!("cannot read {}: {e}", path.display())))?;
        self.load(&bytes)
    }

    fn check_size(&self, len: usize) -> Result<(), Error> {
        let max = self.config.max_component_bytes;
        if len > max {
            return Err(Error::InvalidComponent(format!("component is {len} bytes, over the limit of {max} bytes")));
        }
        Ok(())
    }

    /// Loads a component: from the artifact cache when this installation compiled it
    /// before, else compiled (by the configured [`Compiler`]); then checks that it
    /// implements the `sync-trigger` world, imports nothing outside the sandbox and can
    /// start under the sandbox's limits, and pre-instantiates it. Only a component that
    /// passes every check is written to the artifact cache.
    pub fn load(&self, bytes: &[u8]) -> Result<Trigger, Error> {
        self.check_size(bytes.len())?;
        let digest = hex::encode(Sha256::digest(bytes));
        if let Some(cache) = &self.cache {
            match cache.get(&self.engine, &digest) {
                Ok(Some((component, artifact_bytes))) => {
                    match self.prepare_trigger(&component, &digest, artifact_bytes) {
                        Ok(trigger) => return Ok(trigger),
                        Err(e) => {
                            // Accepted once, refused now (the limits changed): forget it.
                            cache.remove(&digest);
                            return Err(e);
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    // Written by this installation but unloadable (e.g. truncated on a full
                    // disk): compile again, once.
                    tracing::warn!(digest, "discarding a cached artifact that does not load: {e}");
                    cache.remove(&digest);
                }
            }
        }
        let artifact = self.compile(bytes)?;
        // SAFETY: the artifact was produced by `Engine::precompile_component` with this
        // engine's settings, in this process or in its compile worker (this executable).
        let component = unsafe { Component::deserialize(&self.engine, &artifact) }
            .map_err(|e| Error::InvalidComponent(format!("component cannot be loaded in the sandbox: {e:#}")))?;
        let trigger = self.prepare_trigger(&component, &digest, artifact.len())?;
        if let Some(cache) = &self.cache
            && let Err(e) = cache.put(&digest, &artifact)
        {
            tracing::warn!("cannot write artifact cache: {e}");
        }
        Ok(trigger)
    }

    /// Loads the component whose bytes have SHA-256 `digest` from the artifact cache,
    /// without its bytes: `None` when this installation has no usable artifact for it.
    /// (`serve` knows each function's digest, so it reads the component only to compile.)
    pub fn load_cached(&self, digest: &str) -> Result<Option<Trigger>, Error> {
        let Some(cache) = &self.cache else { return Ok(None) };
        match cache.get(&self.engine, digest) {
            Ok(Some((component, artifact_bytes))) => match self.prepare_trigger(&component, digest, artifact_bytes) {
                Ok(trigger) => Ok(Some(trigger)),
                Err(e) => {
                    // Accepted once, refused now (the limits changed): forget it.
                    cache.remove(digest);
                    Err(e)
                }
            },
            Ok(None) => Ok(None),
            Err(e) => {
                // Written by this installation but unloadable (e.g. truncated on a full
                // disk): the caller compiles again, once.
                tracing::warn!(digest, "discarding a cached artifact that does not load: {e}");
                cache.remove(digest);
                Ok(None)
            }
        }
    }

    fn compile(&self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let settings = EngineSettings::of(&self.config.limits);
        match &self.config.compiler {
            Compiler::Worker(exe) => worker::compile(exe, bytes, &settings),
            Compiler::InProcess => worker::compile_here(bytes, &settings),
        }
    }

    fn prepare_trigger(&self, component: &Component, digest: &str, artifact_bytes: usize) -> Result<Trigger, Error> {
        self.check_interface(component)?;
        let pre = self.linker.instantiate_pre(component).and_then(bindings::SyncTriggerPre::new).map_err(|e| {
            Error::InvalidComponent(format!("component does not implement the sync-trigger world: {e:#}"))
        })?;
        self.trial_instantiate(&pre)?;
        let handle = component
            .get_export_index(None, "handle")
            .ok_or_else(|| Error::InvalidComponent("component does not export `handle`".into()))?;
        Ok(Trigger { pre, handle, digest: digest.to_owned(), artifact_bytes })
    }

    /// Instantiates once without calling, so a component that breaks a per-store limit
    /// (too many memories, tables or instances, a trapping start function) is refused at
    /// load rather than on every invocation.
    fn trial_instantiate(&self, pre: &bindings::SyncTriggerPre<HostState>) -> Result<(), Error> {
        let mut store = self.new_store()?;
        match pre.instantiate(&mut store) {
            Ok(_) => Ok(()),
            Err(e) => match classify(e, Phase::Instantiate, store.data(), &self.config.limits) {
                Error::Internal(m) => Err(Error::Internal(m)),
                e => Err(Error::InvalidComponent(format!("component cannot start in the sandbox: {e}"))),
            },
        }
    }

    /// A fresh store with this runtime's limits, fuel and deadline, and an empty log.
    fn new_store(&self) -> Result<Store<HostState>, Error> {
        let limits = &self.config.limits;
        let mut store = Store::new(&self.engine, HostState::new(limits));
        store.limiter(|s| &mut s.limiter);
        if let Some(fuel) = limits.fuel {
            store.set_fuel(fuel).map_err(internal)?;
        }
        store.set_epoch_deadline(self.epochs.deadline_ticks(self.config.limits.deadline));
        store.epoch_deadline_trap();
        Ok(store)
    }

    fn check_interface(&self, component: &Component) -> Result<(), Error> {
        let ty = component.component_type();
        let forbidden: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name)
            .filter(|name| {
                let unversioned = name.split('@').next().unwrap_or(name);
                !ALLOWED_IMPORTS.contains(&unversioned)
            })
            .map(|name| format!("{name} ({})", refusal_reason(name)))
            .collect();
        if !forbidden.is_empty() {
            return Err(Error::InvalidComponent(format!(
                "component imports what the sandbox does not provide: {}",
                forbidden.join(", ")
            )));
        }
        if ty.exports(&self.engine).all(|(name, _)| name != "handle") {
            return Err(Error::InvalidComponent(
                "component does not export `handle`; is it built with synctrig_guest::trigger!?".into(),
            ));
        }
        Ok(())
    }

    /// Runs `trigger` on `event` in a fresh store, under the configured limits.
    ///
    /// This blocks the calling thread for up to the deadline; async callers run it on
    /// a blocking pool.
    pub fn invoke(&self, trigger: &Trigger, event: &SyncEvent) -> Invocation {
        match self.prepare(trigger) {
            Ok(prepared) => prepared.call(event),
            Err(failed) => *failed,
        }
    }

    /// The first half of [`invoke`](Self::invoke): a fresh store with the trigger
    /// instantiated in it. Separate so that benchmarks can time the halves apart.
    pub fn prepare(&self, trigger: &Trigger) -> Result<Prepared, Box<Invocation>> {
        let start = Instant::now();
        let mut store = match self.new_store() {
            Ok(store) => store,
            Err(e) => return Err(Box::new(Invocation { result: Err(e), stats: Stats::default(), log: String::new() })),
        };
        match trigger.pre.instance_pre().instantiate(&mut store) {
            Ok(instance) => {
                Ok(Prepared { store, instance, handle: trigger.handle, start, config: self.config.clone() })
            }
            Err(e) => {
                let error = classify(e, Phase::Instantiate, store.data(), &self.config.limits);
                Err(Box::new(Prepared::finish(store, start, &self.config.limits, Err(error))))
            }
        }
    }
}

/// A trigger instantiated in its own fresh store, ready for its one call.
pub struct Prepared {
    store: Store<HostState>,
    instance: Instance,
    handle: ComponentExportIndex,
    start: Instant,
    config: Arc<RuntimeConfig>,
}

impl Prepared {
    /// Calls the trigger's `handle` on `event`; the store is dropped afterwards.
    pub fn call(mut self, event: &SyncEvent) -> Invocation {
        let limits = &self.config.limits;
        let called = self
            .instance
            .get_typed_func::<(&SyncEvent,), abi::HandleResult>(&mut self.store, &self.handle)
            .and_then(|handle| {
                abi::with_budget(limits.max_output_bytes, limits.max_output_records, || {
                    handle.call(&mut self.store, (event,))
                })
            });
        let result = match called {
            Ok((Ok(response),)) => Ok(response.into_event()),
            Ok((Err(abi::TriggerError::Reject(reason)),)) => {
                Err(Error::Rejected { reason: capped(reason, MAX_MESSAGE_BYTES) })
            }
            Err(e) => match e.downcast_ref::<abi::OverBudget>() {
                Some(over) => Err(Error::OutputTooLarge(over.to_string())),
                None => Err(classify(e, Phase::Call, self.store.data(), limits)),
            },
        };
        Self::finish(self.store, self.start, limits, result)
    }

    fn finish(
        store: Store<HostState>,
        start: Instant,
        limits: &Limits,
        result: Result<SyncEvent, Error>,
    ) -> Invocation {
        let fuel_consumed = match limits.fuel {
            Some(budget) => budget.saturating_sub(store.get_fuel().unwrap_or(0)),
            None => 0,
        };
        let log = store.data().log.clone();
        let stats = Stats {
            wall_us: start.elapsed().as_micros() as u64,
            fuel_consumed,
            peak_memory_bytes: store.data().limiter.peak_memory,
            log_bytes: log.total_bytes(),
        };
        drop(store);
        Invocation { result, stats, log: log.contents() }
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// A component starts with the component-model layer in its preamble; a core module
/// does not. Checking first gives a clearer error than Cranelift's.
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [0x01, 0x00]
}

/// An engine with `settings`, and a pooling allocator of `pool`'s limits and instances
/// (`None`: on-demand allocation, as the compile worker uses; compiled code is the same).
/// The pooling allocator's shape.
pub(crate) struct PoolSettings<'a> {
    limits: &'a Limits,
    instances: u32,
    keep_resident: usize,
}

pub(crate) fn build_engine(settings: &EngineSettings, pool: Option<PoolSettings>) -> wasmtime::Result<Engine> {
    let mut c = wasmtime::Config::new();
    c.wasm_component_model(true)
        .consume_fuel(settings.fuel)
        .epoch_interruption(true)
        .max_wasm_stack(settings.max_wasm_stack)
        .memory_init_cow(true)
        .parallel_compilation(true);
    if let Some(PoolSettings { limits, instances: n, keep_resident }) = &pool {
        let (limits, n) = (*limits, *n);
        use crate::limits::component::{MAX_MEMORIES_PER_MODULE, MAX_TABLES_PER_MODULE};
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n * limits.max_instances as u32)
            .total_memories(n * limits.max_memories as u32)
            .total_tables(n * limits.max_tables as u32)
            .max_memories_per_component(limits.max_memories as u32)
            .max_tables_per_component(limits.max_tables as u32)
            .max_memories_per_module(MAX_MEMORIES_PER_MODULE as u32)
            .max_tables_per_module(MAX_TABLES_PER_MODULE as u32)
            .max_core_instances_per_component(limits.max_instances as u32)
            .max_memory_size(limits.memory_bytes)
            .table_elements(limits.max_table_elements)
            // Pages kept resident: back-to-back invocations reset them by copying instead
            // of unmapping and faulting them in again.
            .linear_memory_keep_resident(*keep_resident)
            .table_keep_resident(16 << 10);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    let engine = Engine::new(&c)?;
    if let Some(PoolSettings { limits, .. }) = pool {
        // Engine::new reserves the pool lazily on some platforms; instantiate a trivial
        // component now so an address-space failure shows here, not on the first request.
        let probe = Component::new(&engine, PROBE)?;
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        if limits.fuel.is_some() {
            store.set_fuel(u64::MAX)?;
        }
        Linker::<()>::new(&engine).instantiate(&mut store, &probe)?;
    }
    Ok(engine)
}

/// `(component (core module (memory 1)))` in binary: a component with one memory, to try
/// the pool's reservation (the engine needs no text parser for it).
const PROBE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, // component preamble
    0x01, 0x0d, // a core module of 13 bytes:
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // its preamble
    0x05, 0x03, 0x01, 0x00, 0x01, // one memory of at least 1 page
];

/// The engine's epoch, advanced by one ticker thread per engine (on its own OS thread; it
/// ends when the engine is dropped). The epoch is derived from a monotonic clock's elapsed
/// time, not counted per sleep, so a ticker that oversleeps on a loaded machine catches up
/// instead of drifting, and a deadline set while it lags is measured from the true time.
struct EpochClock {
    start: Instant,
    tick: Duration,
    /// Epochs the ticker has added so far (the engine's epoch; it starts at 0).
    advanced: std::sync::atomic::AtomicU64,
}

impl EpochClock {
    fn start(engine: &Engine, tick: Duration) -> Arc<Self> {
        let clock = Arc::new(EpochClock {
            start: Instant::now(),
            tick: tick.max(Duration::from_micros(100)),
            advanced: Default::default(),
        });
        let weak = engine.weak();
        let ticker = clock.clone();
        let spawned = std::thread::Builder::new().name("synctrig-epoch".into()).spawn(move || {
            loop {
                std::thread::sleep(ticker.tick);
                let Some(engine) = weak.upgrade() else { return };
                let due = ticker.due();
                while ticker.advanced.load(std::sync::atomic::Ordering::Relaxed) < due {
                    engine.increment_epoch();
                    ticker.advanced.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start the epoch ticker thread: {e}; deadlines will not fire");
        }
        clock
    }

    /// The epoch the engine should be at now.
    fn due(&self) -> u64 {
        (self.start.elapsed().as_nanos() / self.tick.as_nanos()) as u64
    }

    /// Epoch ticks from the engine's current epoch until `deadline` from now: the deadline
    /// in ticks, one more for the partial tick under way, plus however far the ticker lags.
    fn deadline_ticks(&self, deadline: Duration) -> u64 {
        let ticks = deadline.as_nanos().div_ceil(self.tick.as_nanos()) as u64 + 1;
        let lag = self.due().saturating_sub(self.advanced.load(std::sync::atomic::Ordering::Relaxed));
        ticks + lag
    }
}

/// Where an invocation failed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Instantiate,
    Call,
}

/// Most bytes of a message that comes from a trigger (a reject reason, a panic message)
/// kept in an error; the rest is cut with a marker.
pub const MAX_MESSAGE_BYTES: usize = 4 << 10;

/// `message` cut to at most `max` bytes (on a character boundary), with a marker saying
/// how much was dropped.
fn capped(mut message: String, max: usize) -> String {
    if message.len() <= max {
        return message;
    }
    let mut cut = max;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let dropped = message.len() - cut;
    message.truncate(cut);
    message.push_str(&format!("… [synctrig: {dropped} more bytes truncated]"));
    message
}

/// Turns a failed instantiate or call into the outcome that explains it.
fn classify(e: wasmtime::Error, phase: Phase, state: &HostState, limits: &Limits) -> Error {
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Error::Exited { code: exit.0 };
    }
    let trap = e.downcast_ref::<Trap>().copied();
    let log = state.log.contents();
    match trap {
        Some(Trap::OutOfFuel) => Error::OutOfFuel { budget: limits.fuel.unwrap_or(0) },
        Some(Trap::Interrupt) => Error::Timeout { deadline: limits.deadline },
        Some(Trap::StackOverflow) => Error::StackOverflow { limit: limits.max_wasm_stack },
        // An allocator that got no memory reports it and aborts (`unreachable`): the denied
        // memory.grow is the cause worth reporting. A denial the guest coped with does not
        // explain a later, unrelated trap.
        Some(Trap::UnreachableCodeReached) if state.limiter.memory_denied && log.contains("memory allocation of") => {
            Error::MemoryLimit { limit: limits.memory_bytes }
        }
        Some(trap) => match panic_message(&log) {
            Some(message) if trap == Trap::UnreachableCodeReached => {
                Error::Panic { message: capped(message, MAX_MESSAGE_BYTES) }
            }
            _ => Error::Trap { message: trap.to_string() },
        },
        None => {
            let message = capped(format!("{e:#}"), MAX_MESSAGE_BYTES);
            if state.limiter.limit_hit || message.contains("resource limit exceeded") {
                Error::InvalidOutput(format!("trigger exceeded a sandbox limit: {message}"))
            } else if phase == Phase::Instantiate {
                // Not the trigger's doing (e.g. the host is out of address space).
                Error::Internal(format!("cannot instantiate the trigger: {message}"))
            } else if matches!(
                e.downcast_ref::<wasmtime::component::ResourceTableError>(),
                Some(wasmtime::component::ResourceTableError::Full)
            ) {
                // Said in the trigger's terms, not the table's.
                Error::HostCallFailed {
                    message: format!(
                        "the trigger held more than {} host resources (streams, pollables, timers) at once, \
                         the sandbox's limit: drop each when done with it",
                        host::MAX_RESOURCES
                    ),
                }
            } else if e.downcast_ref::<wasmtime::WasmBacktrace>().is_some() {
                // The error unwound through the guest's frames: a host function it called
                // failed while it ran. Its own message says what; the backtrace does not.
                Error::HostCallFailed { message: capped(e.root_cause().to_string(), MAX_MESSAGE_BYTES) }
            } else {
                // Raised after the guest returned: its return value could not be lifted
                // (bad UTF-8, an out-of-range discriminant, an out-of-bounds pointer).
                Error::InvalidOutput(format!(
                    "trigger returned a value that does not match the WIT interface: {message}"
                ))
            }
        }
    }
}

/// The panic message Rust's default hook wrote to stderr, if any.
fn panic_message(log: &str) -> Option<String> {
    let at = log.find("panicked at ")?;
    let rest = &log[at + "panicked at ".len()..];
    // "panicked at src/lib.rs:5:5:\nmessage\nnote: ..."
    let mut lines = rest.lines();
    let location = lines.next()?.trim_end_matches(':');
    let message: Vec<&str> = lines.take_while(|l| !l.starts_with("note:")).collect();
    Some(format!("{} (at {location})", message.join(" ").trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_the_component_it_says() {
        assert_eq!(PROBE, wat::parse_str("(component (core module (memory 1)))").unwrap());
    }

    #[test]
    fn panic_message_is_found_in_stderr() {
        let log =
            "[info] hi\nthread '<unnamed>' panicked at src/lib.rs:5:9:\nboom\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(panic_message(log).as_deref(), Some("boom (at src/lib.rs:5:9)"));
        assert_eq!(panic_message("nothing"), None);
    }

    #[test]
    fn messages_are_capped_on_a_character_boundary() {
        assert_eq!(capped("short".into(), 10), "short");
        let long = "é".repeat(10);
        let cut = capped(long, 5);
        assert_eq!(cut, "éé… [synctrig: 16 more bytes truncated]");
    }

    #[test]
    fn components_are_told_from_modules() {
        assert!(is_component(b"\0asm\x0d\x00\x01\x00"));
        assert!(!is_component(b"\0asm\x01\x00\x00\x00"));
        assert!(!is_component(b"\0as"));
    }
}
