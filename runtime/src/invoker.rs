//! Running triggers from async code without blocking the async runtime.
//!
//! Wasm runs synchronously on tokio's blocking pool, bounded by a semaphore: sync
//! wasmtime calls are the cheapest (no fiber stack per call, no yields), the epoch
//! deadline bounds how long any call holds a thread, and the async workers never run
//! guest code. Each identity pool may run at most `per_pool` invocations at once;
//! one more is refused at once with `LambdaThrottledException`, so one tenant's slow
//! trigger cannot take every slot.

use crate::error::Error;
use crate::event::SyncEvent;
use crate::merge::Dataset;
use crate::pipeline::{Outcome, run_trigger};
use crate::sandbox::{Runtime, Stats, Trigger};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admits and runs trigger invocations for many identity pools.
pub struct Invoker {
    runtime: Arc<Runtime>,
    slots: Arc<Semaphore>,
    per_pool: usize,
    pools: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// The right to run one invocation for a pool; dropping it frees the pool's slot.
pub struct Reservation {
    _pool: OwnedSemaphorePermit,
    runtime: Arc<Runtime>,
    slots: Arc<Semaphore>,
}

impl Invoker {
    /// An invoker running at most `slots` invocations at once, `per_pool` per pool.
    pub fn new(runtime: Arc<Runtime>, slots: usize, per_pool: usize) -> Self {
        Invoker { runtime, slots: Arc::new(Semaphore::new(slots)), per_pool, pools: Mutex::default() }
    }

    /// The runtime invocations run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Reserves a slot of `pool`, or answers `Throttled` when the pool has none free.
    pub fn reserve(&self, pool: &str) -> Result<Reservation, Error> {
        let semaphore = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            pools.entry(pool.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(self.per_pool))).clone()
        };
        let permit = semaphore.try_acquire_owned().map_err(|_| Error::Throttled)?;
        Ok(Reservation { _pool: permit, runtime: self.runtime.clone(), slots: self.slots.clone() })
    }
}

impl Reservation {
    /// Runs the trigger step on the blocking pool once a global slot is free.
    pub async fn run(self, trigger: Trigger, stored: Dataset, input: SyncEvent) -> Outcome {
        let Ok(_slot) = self.slots.clone().acquire_owned().await else {
            return failed(Error::Internal("invoker is shut down".into()));
        };
        let runtime = self.runtime.clone();
        let joined = tokio::task::spawn_blocking(move || run_trigger(&runtime, &trigger, &stored, &input)).await;
        drop(self);
        joined.unwrap_or_else(|e| failed(Error::Internal(format!("trigger invocation task failed: {e}"))))
    }
}

fn failed(e: Error) -> Outcome {
    Outcome { result: Err(e), stats: Stats::default(), log: String::new() }
}
