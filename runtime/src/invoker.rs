//! Running triggers from async code without blocking the async runtime.
//!
//! Wasm runs synchronously on tokio's blocking pool, bounded by a semaphore: sync
//! wasmtime calls are the cheapest (no fiber stack per call, no yields), the epoch
//! deadline bounds how long any call holds a thread, and the async workers never run
//! guest code. Each identity pool may run at most `per_pool` invocations at once, with
//! at most `queue_per_pool` more waiting for their turn; beyond that an invocation is
//! refused at once with `LambdaThrottledException`. So one tenant's slow trigger holds
//! at most its own share of the slots, and its backlog waits in its own queue.

use crate::error::Error;
use crate::event::SyncEvent;
use crate::merge::Dataset;
use crate::pipeline::{Outcome, run_trigger};
use crate::sandbox::{Runtime, Stats, Trigger};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admits and runs trigger invocations for many identity pools.
pub struct Invoker {
    runtime: Arc<Runtime>,
    slots: Arc<Semaphore>,
    per_pool: usize,
    queue_per_pool: usize,
    pools: Mutex<HashMap<String, Arc<PoolGate>>>,
}

/// One pool's running slots and how many invocations wait for one.
struct PoolGate {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// Counts a waiter for as long as it waits, even if its request is dropped meanwhile.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The right to run one invocation for a pool; dropping it frees the pool's slot.
pub struct Reservation {
    _pool: OwnedSemaphorePermit,
    runtime: Arc<Runtime>,
    slots: Arc<Semaphore>,
}

impl Invoker {
    /// An invoker running at most `slots` invocations at once, `per_pool` per pool with
    /// up to `queue_per_pool` more waiting.
    pub fn new(runtime: Arc<Runtime>, slots: usize, per_pool: usize, queue_per_pool: usize) -> Self {
        Invoker { runtime, slots: Arc::new(Semaphore::new(slots)), per_pool, queue_per_pool, pools: Mutex::default() }
    }

    /// The runtime invocations run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// How many invocations of `pool` wait for a slot now.
    pub fn queued(&self, pool: &str) -> usize {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools.get(pool).map_or(0, |gate| gate.waiting.load(Ordering::Relaxed))
    }

    /// Reserves a slot of `pool`, waiting in the pool's queue if it has room, or answers
    /// `Throttled` when the pool's slots and queue are full.
    pub async fn reserve(&self, pool: &str) -> Result<Reservation, Error> {
        let gate = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            pools
                .entry(pool.to_owned())
                .or_insert_with(|| {
                    Arc::new(PoolGate {
                        running: Arc::new(Semaphore::new(self.per_pool)),
                        waiting: AtomicUsize::new(0),
                    })
                })
                .clone()
        };
        let permit = match gate.running.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if gate.waiting.fetch_add(1, Ordering::Relaxed) >= self.queue_per_pool {
                    gate.waiting.fetch_sub(1, Ordering::Relaxed);
                    return Err(Error::Throttled);
                }
                let _waiting = Waiting(&gate.waiting);
                gate.running
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Internal("invoker is shut down".into()))?
            }
        };
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
