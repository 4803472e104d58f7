//! What a trigger's store holds and the host side of its imports.

use super::Limits;
use super::logbuf::{LogBuffer, LogSink};
use std::time::{Duration, SystemTime};
use wasmtime::component::{HasData, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sync-trigger",
    });
}

/// Most resources (streams, pollables) one invocation may hold at once.
pub const MAX_RESOURCES: usize = 1024;

/// The state of one invocation's store.
pub struct HostState {
    /// Built on the first WASI call: a Rust trigger usually makes none, and building it
    /// was half the cost of a new store.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    /// The invocation's deadline: a wait that would outlast it ends the invocation.
    deadline: Duration,
    pub limiter: Limiter,
    pub log: LogBuffer,
    /// The store's fuel budget (`None`: not metered).
    pub fuel_budget: Option<u64>,
    /// Its randomness and clock.
    pub entropy: Entropy,
}

/// What makes an invocation reproducible: the seed of every random number it draws (WASI
/// `random`, `insecure` and `insecure-seed`, and so `Math.random` and `crypto` in
/// JavaScript) and the wall clock it sees, frozen. Drawn for each invocation unless given,
/// and reported with it, so that an invocation run again with its entropy on the same
/// input does exactly the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entropy {
    pub seed: [u8; 32],
    /// The wall clock, whole seconds since the Unix epoch.
    pub clock_secs: u64,
}

impl Entropy {
    /// Fresh entropy: a seed from the thread's CSPRNG (no system call), the clock now.
    pub fn fresh() -> Entropy {
        let mut seed = [0u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut seed);
        let clock_secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        Entropy { seed, clock_secs }
    }

    /// One of the invocation's independent streams, by a domain byte.
    fn stream(&self, domain: u8) -> rand::rngs::StdRng {
        let mut seed = self.seed;
        seed[31] ^= domain;
        rand::SeedableRng::from_seed(seed)
    }
}

impl HostState {
    pub fn new(limits: &Limits, fuel_budget: Option<u64>, entropy: Entropy) -> Self {
        let deadline = limits.deadline;
        let log = LogBuffer::new(limits.max_log_bytes);
        let limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .memories(limits.max_memories)
            .tables(limits.max_tables)
            .table_elements(limits.max_table_elements)
            .instances(limits.max_instances)
            .build();
        // A trigger needs a handful of resources (its stdio streams, a pollable or two);
        // the table's default allows a million, all held in host memory.
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        HostState {
            deadline,
            wasi: None,
            table,
            limiter: Limiter { inner: limits, peak_memory: 0, memory_denied: false, limit_hit: false },
            entropy,
            log,
            fuel_budget,
        }
    }
}

impl HostState {
    /// Whether the guest holds no host resources (streams, pollables) now.
    pub fn resources_empty(&self) -> bool {
        self.table.is_empty()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let ctx = self.wasi.get_or_insert_with(|| wasi_ctx(&self.log, &self.entropy));
        WasiCtxView { ctx, table: &mut self.table }
    }
}

/// The WASI context of an invocation: nothing ambient (no preopened directories, no
/// environment, no arguments, no network, empty stdin); stdout and stderr are the
/// invocation's log; the wall clock is frozen at the start of the invocation, and
/// randomness comes from its seed (so when it is built does not change what it gives).
fn wasi_ctx(log: &LogBuffer, entropy: &Entropy) -> WasiCtx {
    let insecure_seed = u128::from_le_bytes(entropy.seed[..16].try_into().unwrap_or_default())
        ^ u128::from_le_bytes(entropy.seed[16..].try_into().unwrap_or_default());
    WasiCtxBuilder::new()
        .stdout(LogSink(log.clone()))
        .stderr(LogSink(log.clone()))
        .wall_clock(FrozenClock(Duration::from_secs(entropy.clock_secs)))
        .secure_random(entropy.stream(1))
        .insecure_random(entropy.stream(2))
        .insecure_random_seed(insecure_seed)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .max_random_size(64 << 10)
        .build()
}

impl bindings::synctrig::trigger::types::Host for HostState {}

impl bindings::synctrig::trigger::log::Host for HostState {
    fn log(&mut self, level: bindings::synctrig::trigger::log::Level, message: String) {
        use bindings::synctrig::trigger::log::Level;
        let prefix = match level {
            Level::Debug => "[debug] ",
            Level::Info => "[info] ",
            Level::Warn => "[warn] ",
            Level::Error => "[error] ",
        };
        self.log.line(prefix, &message);
    }
}

/// `StoreLimits` plus what the sandbox reports: peak memory and whether a limit refused.
pub struct Limiter {
    inner: StoreLimits,
    pub peak_memory: usize,
    pub memory_denied: bool,
    pub limit_hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak_memory = self.peak_memory.max(desired);
        } else {
            self.memory_denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.inner.table_growing(current, desired, maximum)?;
        self.limit_hit |= !allowed;
        Ok(allowed)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// A wall clock frozen at the start of the invocation, to the second: triggers can stamp
/// records with the time of the update, but cannot time anything (no timing side
/// channels) and see the same time throughout.
struct FrozenClock(Duration);

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

/// The monotonic clock of a trigger: frozen at 0 for the whole invocation, and every
/// timer is already due. Nothing a trigger does with time can block the host thread
/// (epochs cannot interrupt a host call) or measure anything. A wait of the deadline or
/// longer would end in the deadline whatever the trigger did meanwhile, so it ends the
/// invocation at once as the deadline does (the JavaScript engine's virtual clock asks
/// for a timer due past the deadline this way).
struct FrozenTimers;

impl HasData for FrozenTimers {
    type Data<'a> = Timers<'a>;
}

/// The view of a store that the monotonic clock's host functions get.
struct Timers<'a>(&'a mut ResourceTable, Duration);

/// The error a wait past the deadline traps with (reported as the deadline).
#[derive(Debug)]
pub(crate) struct WaitPastDeadline;

impl std::fmt::Display for WaitPastDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the trigger waited past its deadline")
    }
}

impl std::error::Error for WaitPastDeadline {}

impl Timers<'_> {
    fn after(&mut self, nanos: u64) -> wasmtime::Result<Resource<DynPollable>> {
        if u128::from(nanos) >= self.1.as_nanos() {
            return Err(wasmtime::Error::new(WaitPastDeadline));
        }
        due_now(self.0)
    }
}

impl monotonic_clock::Host for Timers<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(0)
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(1_000_000_000)
    }

    // The clock reads 0, so an instant is also the wait until it.
    fn subscribe_instant(&mut self, when: monotonic_clock::Instant) -> wasmtime::Result<Resource<DynPollable>> {
        self.after(when)
    }

    fn subscribe_duration(&mut self, after: monotonic_clock::Duration) -> wasmtime::Result<Resource<DynPollable>> {
        self.after(after)
    }
}

/// A timer that is always ready.
struct Due;

#[wasmtime_wasi::async_trait]
impl Pollable for Due {
    async fn ready(&mut self) {}
}

fn due_now(table: &mut ResourceTable) -> wasmtime::Result<Resource<DynPollable>> {
    let timer = table.push(Due)?;
    subscribe(table, timer)
}

struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Adds exactly the interfaces of `ALLOWED_IMPORTS` to the linker, all synchronous and
/// non-blocking: no file system or sockets are linked at all, and timers never wait.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::sync::io as sync_io;
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};

    bindings::SyncTrigger::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    let l = linker;
    sync_io::error::add_to_linker::<HostState, HasTable>(l, |s| &mut s.table)?;
    sync_io::poll::add_to_linker::<HostState, HasTable>(l, |s| &mut s.table)?;
    sync_io::streams::add_to_linker::<HostState, HasTable>(l, |s| &mut s.table)?;
    monotonic_clock::add_to_linker::<HostState, FrozenTimers>(l, |s| Timers(&mut s.table, s.deadline))?;
    clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(l, HostState::clocks)?;
    random::random::add_to_linker::<HostState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    cli::exit::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::environment::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    Ok(())
}
