//! The sandbox that runs untrusted trigger components.
//!
//! Expensive work happens once: the [`Runtime`] owns the engine (with its epoch ticker
//! thread), the linker and the artifact cache; [`Runtime::load`] compiles (or loads
//! from the cache), checks the component's imports against the allowed set and
//! pre-instantiates it. Each [`Runtime::invoke`] then only builds a fresh `Store` with
//! its own limits, fuel, deadline and log, instantiates and calls.

mod abi;
mod cache;
mod engine;
mod failure;
mod host;
pub mod js;
mod logbuf;
pub mod structure;
pub mod worker;

pub use logbuf::LogBuffer;

use crate::error::Error;
use crate::event::SyncEvent;
#[doc(hidden)]
pub use abi::with_wasmtime_abi;
use cache::ArtifactCache;
pub(crate) use engine::{EpochClock, PoolSettings, build_engine};
pub(crate) use failure::{MAX_MESSAGE_BYTES, Phase, capped, classify};
pub use host::Entropy;
use host::{HostState, bindings};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, ComponentExportIndex, Instance, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline};

/// The default wall-clock deadline of one invocation, as Cognito's Sync Trigger had.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);
/// The default fuel budget of one invocation. A legitimate trigger over a full dataset
/// (1,024 records, 1 MiB) uses a few million units; a spinning trigger burns it in
/// 0.2–1.7 s on a 2-core machine, so with the defaults fuel stops a spinning trigger and
/// the deadline stops one that spends its time in host calls.
pub const DEFAULT_FUEL: u64 = 2_000_000_000;
/// The default fuel budget of one invocation of a JavaScript trigger. QuickJS spends 50–100
/// wasm instructions on one JavaScript operation, so the same work costs a script about ten
/// times the fuel of a Rust component: a spinning script burns 2 billion units in about
/// 0.3 s where Lambda gave a handler the whole 5 s. 10 billion is about 1.7 s of work, 15×
/// what the heaviest handler of the compatibility corpus needs on a full 1,024-record
/// dataset (about 650 M), and a third of the deadline, so the deadline still ends what
/// waits and fuel what spins (see the README's JavaScript section).
pub const DEFAULT_SCRIPT_FUEL: u64 = 10_000_000_000;
/// The default cap on a trigger's linear memory.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;

/// Limits on one invocation.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock deadline, enforced by epoch interruption.
    pub deadline: Duration,
    /// Fuel budget; `None` turns fuel metering off for the whole runtime.
    pub fuel: Option<u64>,
    /// Fuel budget of a JavaScript trigger (a component of the `js-trigger` world, which a
    /// deployed script is), when fuel is metered.
    pub script_fuel: u64,
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
            script_fuel: DEFAULT_SCRIPT_FUEL,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            // A Rust component has one memory; its shim modules have a table each.
            max_memories: 1,
            max_tables: 8,
            max_table_elements: 20_000,
            max_instances: 16,
            max_wasm_stack: 4 << 20,
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
    /// Its randomness and clock: given again, the same input gives the same result.
    pub entropy: Entropy,
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
    /// Whether it is a JavaScript trigger (which gets the script fuel budget).
    script: bool,
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
        // A pre-initialised script keeps the js-trigger world's init export.
        let script = component.get_export_index(None, "init-script").is_some();
        Ok(Trigger { pre, handle, digest: digest.to_owned(), artifact_bytes, script })
    }

    /// Instantiates once without calling, so a component that breaks a per-store limit
    /// (too many memories, tables or instances, a trapping start function) is refused at
    /// load rather than on every invocation.
    fn trial_instantiate(&self, pre: &bindings::SyncTriggerPre<HostState>) -> Result<(), Error> {
        let mut store = self.new_store(false, Entropy::fresh())?;
        match with_wasm_stack(&self.config.limits, || pre.instantiate(&mut store)) {
            Ok(_) => Ok(()),
            Err(e) => match classify(e, Phase::Instantiate, store.data(), &self.config.limits) {
                Error::Internal(m) => Err(Error::Internal(m)),
                e => Err(Error::InvalidComponent(format!("component cannot start in the sandbox: {e}"))),
            },
        }
    }

    /// A fresh store with this runtime's limits, fuel (a script's budget for a `script`)
    /// and deadline, and an empty log.
    fn new_store(&self, script: bool, entropy: Entropy) -> Result<Store<HostState>, Error> {
        let limits = &self.config.limits;
        let budget = limits.fuel.map(|fuel| if script { limits.script_fuel } else { fuel });
        let mut store = Store::new(&self.engine, HostState::new(limits, budget, entropy));
        store.limiter(|s| &mut s.limiter);
        if let Some(fuel) = budget {
            store.set_fuel(fuel).map_err(internal)?;
        }
        let deadline = self.epochs.deadline_ticks(limits.deadline);
        match LONG_CALLS.get() {
            Some((after, hook)) if after < limits.deadline => {
                // First stop at `after`, then at every tick: the hook each time, until the
                // deadline's tick.
                let end = self.epochs.advanced() + deadline;
                let started = Instant::now();
                let call = LongCall { started, until: started + limits.deadline };
                let clock = self.epochs.clone();
                let next = move || {
                    if clock.advanced() >= end { UpdateDeadline::Interrupt } else { UpdateDeadline::Continue(1) }
                };
                store.set_epoch_deadline(self.epochs.deadline_ticks(after));
                store.epoch_deadline_callback(move |_| {
                    if let UpdateDeadline::Interrupt = next() {
                        return Ok(UpdateDeadline::Interrupt);
                    }
                    hook(&call);
                    Ok(next())
                });
            }
            _ => {
                store.set_epoch_deadline(deadline);
                store.epoch_deadline_trap();
            }
        }
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
        self.invoke_with(trigger, event, Entropy::fresh())
    }

    /// [`invoke`](Self::invoke) with given randomness and clock: an invocation run again
    /// with the entropy it reported does exactly what it did.
    pub fn invoke_with(&self, trigger: &Trigger, event: &SyncEvent, entropy: Entropy) -> Invocation {
        match self.prepare_with(trigger, entropy) {
            Ok(prepared) => prepared.call(event),
            Err(failed) => *failed,
        }
    }

    /// The first half of [`invoke`](Self::invoke): a fresh store with the trigger
    /// instantiated in it. Separate so that benchmarks can time the halves apart.
    pub fn prepare(&self, trigger: &Trigger) -> Result<Prepared, Box<Invocation>> {
        self.prepare_with(trigger, Entropy::fresh())
    }

    /// [`prepare`](Self::prepare) with given randomness and clock.
    pub fn prepare_with(&self, trigger: &Trigger, entropy: Entropy) -> Result<Prepared, Box<Invocation>> {
        let start = Instant::now();
        let mut store = match self.new_store(trigger.script, entropy) {
            Ok(store) => store,
            Err(e) => {
                let failed = Invocation { result: Err(e), stats: Stats::default(), log: String::new(), entropy };
                return Err(Box::new(failed));
            }
        };
        match with_wasm_stack(&self.config.limits, || trigger.pre.instance_pre().instantiate(&mut store)) {
            Ok(instance) => {
                Ok(Prepared { store, instance, handle: trigger.handle, start, config: self.config.clone() })
            }
            Err(e) => {
                let error = classify(e, Phase::Instantiate, store.data(), &self.config.limits);
                Err(Box::new(Prepared::finish(store, start, Err(error))))
            }
        }
    }
}

thread_local! {
    /// This thread's long-call hook: see [`on_long_calls`].
    static LONG_CALLS: std::cell::Cell<Option<(Duration, LongCallHook)>> = const { std::cell::Cell::new(None) };
}

/// What a thread runs in its long calls ([`on_long_calls`]).
pub type LongCallHook = fn(&LongCall);

/// An invocation that has run long, as its hook sees it.
pub struct LongCall {
    /// When its store was made.
    pub started: Instant,
    /// When its deadline falls: a hook that waits must not wait past it.
    pub until: Instant,
}

/// On the calling thread from now on, any invocation still running `after` its start (to
/// within an epoch tick) calls `hook` on this thread, from inside the call, then again at
/// every epoch tick until it ends; the call goes on to its deadline, which the hook may not
/// pass. The invoker's workers use it to step aside from a trigger that spins (a lower
/// priority, their slot to other pools, then a pause while others have work) while short
/// calls pay nothing.
pub fn on_long_calls(after: Duration, hook: LongCallHook) {
    LONG_CALLS.set(Some((after, hook)));
}

/// Host stack beyond the wasm stack limit that a thread entering wasm keeps free: the host
/// calls (WASI, the log) made from the deepest wasm frame run below it.
const HOST_STACK_HEADROOM: usize = 1 << 20;

/// The stack to give a thread that runs guest code under `limits`. Wasmtime lets wasm
/// frames use `max_wasm_stack` of the stack of the thread that calls in; a thread with less
/// would overflow its own stack (a crash) instead of trapping.
pub fn thread_stack_bytes(limits: &Limits) -> usize {
    limits.max_wasm_stack + 2 * HOST_STACK_HEADROOM
}

/// Runs `f`, which enters wasm, where the stack has room for the wasm stack and the host
/// calls below it: on a thread made with [`thread_stack_bytes`] (the invoker's workers)
/// this is one comparison; otherwise (a test's or a blocking pool's thread) `f` runs on a
/// stack mapped for the call.
pub(crate) fn with_wasm_stack<R>(limits: &Limits, f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(limits.max_wasm_stack + HOST_STACK_HEADROOM, thread_stack_bytes(limits), f)
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
            .get_typed_func::<(abi::EventIn<'_>,), abi::HandleResult>(&mut self.store, &self.handle)
            .and_then(|handle| {
                abi::with_budget(limits.max_output_bytes, limits.max_output_records, || {
                    with_wasm_stack(limits, || handle.call(&mut self.store, (abi::EventIn::from(event),)))
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
        Self::finish(self.store, self.start, result)
    }

    fn finish(store: Store<HostState>, start: Instant, result: Result<SyncEvent, Error>) -> Invocation {
        let fuel_consumed = match store.data().fuel_budget {
            Some(budget) => budget.saturating_sub(store.get_fuel().unwrap_or(0)),
            None => 0,
        };
        let log = store.data().log.clone();
        let entropy = store.data().entropy;
        let stats = Stats {
            wall_us: start.elapsed().as_micros() as u64,
            fuel_consumed,
            peak_memory_bytes: store.data().limiter.peak_memory,
            log_bytes: log.total_bytes(),
        };
        drop(store);
        Invocation { result, stats, log: log.contents(), entropy }
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

#[cfg(test)]
mod tests {
    use super::engine::PROBE;
    use super::failure::panic_message;
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
