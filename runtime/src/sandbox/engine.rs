//! The engine: its configuration (fuel, epochs, the pooling allocator and its probe), and
//! the epoch clock that enforces deadlines.

use super::*;

/// The pooling allocator's shape.
pub(crate) struct PoolSettings<'a> {
    pub(super) limits: &'a Limits,
    pub(super) instances: u32,
    pub(super) keep_resident: usize,
}

/// An engine with `settings`, and a pooling allocator of `pool`'s limits and instances
/// (`None`: on-demand allocation, as the compile worker uses; compiled code is the same).
pub(crate) fn build_engine(settings: &EngineSettings, pool: Option<PoolSettings>) -> wasmtime::Result<Engine> {
    let mut c = wasmtime::Config::new();
    c.wasm_component_model(true)
        .consume_fuel(settings.fuel)
        .epoch_interruption(true)
        .max_wasm_stack(settings.max_wasm_stack)
        // Calls are synchronous, on the caller's stack; wasmtime refuses a wasm stack
        // above this fiber size all the same.
        .async_stack_size(settings.max_wasm_stack + (1 << 20))
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
            // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), reset only the pages an
            // instance wrote instead of copying back all `keep_resident` bytes: a JavaScript
            // snapshot is 1.7 MB, of which an invocation writes a small part.
            .pagemap_scan(wasmtime::Enabled::Auto)
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
pub(crate) const PROBE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, // component preamble
    0x01, 0x0d, // a core module of 13 bytes:
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // its preamble
    0x05, 0x03, 0x01, 0x00, 0x01, // one memory of at least 1 page
];

/// The engine's epoch, advanced by one ticker thread per engine (on its own OS thread; it
/// ends when the engine is dropped). The epoch is derived from a monotonic clock's elapsed
/// time, not counted per sleep, so a ticker that oversleeps on a loaded machine catches up
/// instead of drifting, and a deadline set while it lags is measured from the true time.
pub(crate) struct EpochClock {
    start: Instant,
    tick: Duration,
    /// Epochs the ticker has added so far (the engine's epoch; it starts at 0).
    advanced: std::sync::atomic::AtomicU64,
}

impl EpochClock {
    pub(crate) fn start(engine: &Engine, tick: Duration) -> Arc<Self> {
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

    /// The epochs the ticker has added so far: the engine's epoch, give or take the one
    /// being added.
    pub(crate) fn advanced(&self) -> u64 {
        self.advanced.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The epoch the engine should be at now.
    pub(crate) fn due(&self) -> u64 {
        (self.start.elapsed().as_nanos() / self.tick.as_nanos()) as u64
    }

    /// Epoch ticks from the engine's current epoch until `deadline` from now: the deadline
    /// in ticks, one more for the partial tick under way, plus however far the ticker lags.
    pub(crate) fn deadline_ticks(&self, deadline: Duration) -> u64 {
        let ticks = deadline.as_nanos().div_ceil(self.tick.as_nanos()) as u64 + 1;
        let lag = self.due().saturating_sub(self.advanced());
        ticks + lag
    }
}
