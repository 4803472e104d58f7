//! Running triggers from async code: a fair, work-conserving scheduler over a dedicated pool
//! of worker threads.
//!
//! Wasm runs synchronously (sync wasmtime calls are the cheapest: no fiber stack per call, no
//! yields; the epoch deadline bounds how long a call holds a thread) on `slots` worker
//! threads that are started once and fed from per-pool queues — not one blocking-pool hop
//! per invocation, and the async workers never run guest code.
//!
//! A pool alone may use every worker. Under contention each active pool (one with
//! invocations running or queued) may run at most `ceil(slots / active pools)` at once, and
//! free workers take pools round-robin, so a tenant whose trigger spins holds its share and
//! no more. `max_per_pool` caps a pool even when alone (all slots by default). Each pool may
//! have `max_per_pool + queue_per_pool` invocations admitted at once; more are refused at
//! once with `LambdaThrottledException`.
//!
//! A call still running after [`LONG_CALL`] steps aside: its thread drops to `SCHED_IDLE`, and
//! (up to `slots` such calls at once) its slot goes to a fresh worker, so the other pools keep
//! every slot while it runs to its deadline; it still counts toward its own pool's share. Past
//! [`PAUSE_AFTER`] it runs only a twentieth of the time while other calls have work, so a spinning
//! trigger takes almost nothing from the others. A thread that stepped aside ends after its
//! call: an unprivileged thread cannot raise its priority again.

use crate::error::Error;
use crate::event::SyncEvent;
use crate::merge::Dataset;
use crate::pipeline::{Outcome, run_trigger_with};
use crate::sandbox::{Entropy, LongCall, Runtime, Stats, Trigger};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a pool counts as busy after its last invocation.
const RECENTLY_BUSY: Duration = Duration::from_secs(1);

/// How long a call runs before it steps aside (to within the 5 ms epoch tick): far above a
/// sync's usual trigger (tens of microseconds; a JavaScript one on 1,024 records, ~20 ms, may
/// step aside, which costs it only a thread start).
pub const LONG_CALL: Duration = Duration::from_millis(10);

/// How long a call runs before it pauses while other calls have work (hold a slot, or
/// started, were queued or ended within [`OTHERS_RECENT`]). Past it, while they do, it runs one epoch tick (5 ms) in every [`PAUSE`] + 5 ms, a twentieth of a core, and the
/// rest of the time not at all, not even in the gaps between the others' requests (which its
/// low priority alone would give it; measured, that alone left the quiet tenant's p99 a third
/// higher beside a spinner, a tenth of a core 1.1–1.3×, a twentieth BENCHMARKS.md says). The
/// heaviest handler of the JavaScript compatibility corpus needs about 110 ms on a full
/// dataset, so an honest call is slowed little; a spinning one takes almost nothing from the
/// others until its fuel or deadline ends it.
pub const PAUSE_AFTER: Duration = Duration::from_millis(100);

/// How long a call past [`PAUSE_AFTER`] waits between its ticks while other calls have work.
const PAUSE: Duration = Duration::from_millis(95);

/// How often a paused call looks whether the others are done.
const PAUSE_STEP: Duration = Duration::from_millis(2);

/// How long after a call starts, is queued or ends the others count as having work, for a
/// paused call: a busy tenant's requests come far closer together, and an idle machine lets a
/// long call run at once.
const OTHERS_RECENT: Duration = Duration::from_millis(50);

/// Admits and runs trigger invocations for many identity pools.
pub struct Invoker {
    shared: Arc<Shared>,
}

struct Shared {
    sched: Mutex<Sched>,
    work: Condvar,
    runtime: Arc<Runtime>,
    queue_per_pool: usize,
    /// Asks the spawner thread for a fresh worker (one started by a worker that stepped aside
    /// would inherit its low priority), or to record a lowered call's end.
    spawn: mpsc::Sender<Request>,
    /// What a paused call reads without the lock (see [`Activity`]).
    activity: Arc<Activity>,
}

/// What the spawner thread does for the workers, at normal priority.
enum Request {
    /// Start a worker.
    Spawn,
    /// A lowered thread's call ended (`aside` if it had given its slot back); start a worker
    /// for its slot if it still held one.
    Finished { pool: Arc<str>, aside: bool },
}

/// The scheduler's state a paused call needs, mirrored in atomics so that a thread at the
/// lowest priority never takes the scheduler's lock (preempted while holding it, it would stall
/// everyone who waits on it).
struct Activity {
    /// Calls holding a slot.
    foreground: AtomicUsize,
    /// When a call last started, was queued or ended in a slot: nanoseconds since `origin`.
    last_nanos: AtomicU64,
    origin: Instant,
}

impl Activity {
    fn new() -> Self {
        Activity { foreground: AtomicUsize::new(0), last_nanos: AtomicU64::new(0), origin: Instant::now() }
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn touch(&self, foreground: usize) {
        self.foreground.store(foreground, Ordering::Relaxed);
        self.last_nanos.store(self.now_nanos(), Ordering::Relaxed);
    }

    /// Whether calls other than this one (which holds a slot if `holding`) have work now or
    /// had a moment ago.
    fn others_busy(&self, holding: bool) -> bool {
        self.others_busy_at(holding, self.now_nanos())
    }

    fn others_busy_at(&self, holding: bool, now_nanos: u64) -> bool {
        let others = self.foreground.load(Ordering::Relaxed).saturating_sub(usize::from(holding));
        let since = now_nanos.saturating_sub(self.last_nanos.load(Ordering::Relaxed));
        others > 0 || since < OTHERS_RECENT.as_nanos() as u64
    }
}

/// One invocation waiting for a worker.
struct Job {
    trigger: Trigger,
    stored: Dataset,
    input: SyncEvent,
    entropy: Entropy,
    reply: oneshot::Sender<Outcome>,
}

/// The scheduler's state: which pool runs next. Pure bookkeeping, tested on its own.
struct Sched<J = Job> {
    slots: usize,
    max_per_pool: usize,
    /// How long after its last invocation a pool still counts as busy: a client's requests
    /// come with gaps between them, and a worker handed to a spinning pool in such a gap
    /// would be gone for its whole deadline.
    recent: Duration,
    pools: HashMap<Arc<str>, PoolState<J>>,
    /// Pools with queued invocations, in the order they get their next turn.
    ring: VecDeque<Arc<str>>,
    /// Calls holding a slot; at most `slots`.
    foreground: usize,
    /// Long calls that stepped aside and gave their slot back; at most `max_aside`.
    background: usize,
    /// Each call aside is a store beside the slots' ones: the instance pool bounds them.
    max_aside: usize,
    activity: Arc<Activity>,
    shutdown: bool,
}

struct PoolState<J> {
    queue: VecDeque<J>,
    running: usize,
    /// Reservations not yet finished (queued, running, or about to be submitted).
    admitted: usize,
    /// Of `running`, the calls that stepped aside.
    aside: usize,
    /// When it last had an invocation start or finish.
    last_active: Instant,
}

impl<J> Default for PoolState<J> {
    fn default() -> Self {
        PoolState { queue: VecDeque::new(), running: 0, admitted: 0, aside: 0, last_active: Instant::now() }
    }
}

impl<J> PoolState<J> {
    /// Whether it wants a share of the slots. A pool with calls stepped aside counts only
    /// while it holds a slot: what it has aside is already its share, and the slots go to
    /// the others.
    fn busy(&self, recent: Duration) -> bool {
        if self.aside > 0 {
            return self.running > self.aside;
        }
        self.running > 0 || !self.queue.is_empty() || self.last_active.elapsed() < recent
    }
}

impl<J> Sched<J> {
    fn new(slots: usize, max_per_pool: usize, recent: Duration) -> Self {
        Sched {
            slots,
            max_per_pool,
            recent,
            pools: HashMap::new(),
            ring: VecDeque::new(),
            foreground: 0,
            background: 0,
            max_aside: slots,
            activity: Arc::new(Activity::new()),
            shutdown: false,
        }
    }

    /// How many invocations one pool may run at once now: an equal share of the slots
    /// among the busy pools.
    fn cap(&mut self) -> usize {
        let recent = self.recent;
        // Pools idle for longer than `recent` with nothing admitted are forgotten.
        self.pools
            .retain(|_, p| p.admitted > 0 || p.running > 0 || !p.queue.is_empty() || p.last_active.elapsed() < recent);
        let busy = self.pools.values().filter(|p| p.busy(recent)).count().max(1);
        self.slots.div_ceil(busy).clamp(1, self.max_per_pool)
    }

    fn submit(&mut self, pool: &Arc<str>, job: J) {
        let state = self.pools.entry(pool.clone()).or_default();
        state.queue.push_back(job);
        if state.queue.len() == 1 {
            self.ring.push_back(pool.clone());
        }
        self.activity.touch(self.foreground);
    }

    /// The next invocation to run: of the pools with the fewest running (below their
    /// share), the first in turn. A pool is in the ring exactly while it has a queue.
    fn pick(&mut self) -> Option<(Arc<str>, J)> {
        if self.foreground >= self.slots {
            return None;
        }
        let cap = self.cap();
        let running = |p: &Arc<str>| self.pools.get(p).map_or(usize::MAX, |s| s.running);
        let fewest = self.ring.iter().map(running).min()?;
        if fewest >= cap {
            return None;
        }
        let at = self.ring.iter().position(|p| running(p) == fewest)?;
        let pool = self.ring.remove(at)?;
        let state = self.pools.get_mut(&pool)?;
        let job = state.queue.pop_front()?;
        state.running += 1;
        state.last_active = Instant::now();
        self.foreground += 1;
        if !state.queue.is_empty() {
            self.ring.push_back(pool.clone());
        }
        self.activity.touch(self.foreground);
        Some((pool, job))
    }

    /// A long call of `pool` gives its slot back if fewer than `max_aside` calls have
    /// already; says whether it did.
    fn step_aside(&mut self, pool: &Arc<str>) -> bool {
        let Some(state) = self.pools.get_mut(pool) else { return false };
        let room = self.background < self.max_aside;
        if room {
            state.aside += 1;
            self.foreground -= 1;
            self.background += 1;
            self.activity.foreground.store(self.foreground, Ordering::Relaxed);
        }
        room
    }

    /// Takes back a [`step_aside`](Self::step_aside) whose thread could not be lowered.
    fn undo_step_aside(&mut self, pool: &Arc<str>) {
        if let Some(state) = self.pools.get_mut(pool) {
            state.aside -= 1;
            self.foreground += 1;
            self.background -= 1;
            self.activity.foreground.store(self.foreground, Ordering::Relaxed);
        }
    }

    /// A call of `pool` ended; `aside` if it had given its slot back.
    fn finished(&mut self, pool: &Arc<str>, aside: bool) {
        if aside {
            self.background -= 1;
        } else {
            self.foreground -= 1;
            self.activity.touch(self.foreground);
        }
        if let Some(state) = self.pools.get_mut(pool) {
            state.running -= 1;
            state.aside -= usize::from(aside);
            state.last_active = Instant::now();
        }
    }

    fn release(&mut self, pool: &Arc<str>) {
        if let Some(state) = self.pools.get_mut(pool) {
            state.admitted -= 1;
        }
    }
}

/// The right to run one invocation for a pool; dropping it gives the place back.
pub struct Reservation {
    shared: Arc<Shared>,
    pool: Arc<str>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.shared.lock().release(&self.pool);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Sched> {
        self.sched.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Invoker {
    /// An invoker with `slots` worker threads, a pool running at most `max_per_pool` of
    /// them (and its fair share under contention) with up to `queue_per_pool` more
    /// admitted.
    pub fn new(runtime: Arc<Runtime>, slots: usize, max_per_pool: usize, queue_per_pool: usize) -> Self {
        let slots = slots.max(1);
        let (spawn, requests) = mpsc::channel();
        let mut sched = Sched::new(slots, max_per_pool.clamp(1, slots), RECENTLY_BUSY);
        // Calls aside hold instances beside the slots' own.
        sched.max_aside = slots.min((runtime.config().pool_instances as usize).saturating_sub(slots + 1));
        let activity = sched.activity.clone();
        let shared = Arc::new(Shared {
            sched: Mutex::new(sched),
            work: Condvar::new(),
            runtime,
            queue_per_pool,
            spawn,
            activity,
        });
        for _ in 0..slots {
            spawn_worker(shared.clone());
        }
        // The spawner: started here, at the caller's priority, and ends with the invoker.
        let weak = Arc::downgrade(&shared);
        let _ = std::thread::Builder::new().name("synctrig-spawner".into()).spawn(move || spawner(&weak, &requests));
        Invoker { shared }
    }

    /// The runtime invocations run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.shared.runtime
    }

    /// How many invocations of `pool` wait for a worker now.
    pub fn queued(&self, pool: &str) -> usize {
        self.shared.lock().pools.get(pool).map_or(0, |p| p.queue.len())
    }

    /// Admits an invocation of `pool`, or answers `Throttled` when the pool has its
    /// running share and its queue admitted already.
    pub async fn reserve(&self, pool: &str) -> Result<Reservation, Error> {
        let pool: Arc<str> = pool.into();
        let mut sched = self.shared.lock();
        let limit = sched.max_per_pool + self.shared.queue_per_pool;
        let state = sched.pools.entry(pool.clone()).or_default();
        if state.admitted >= limit {
            if state.admitted == 0 {
                sched.pools.remove(&pool);
            }
            return Err(Error::Throttled);
        }
        state.admitted += 1;
        Ok(Reservation { shared: self.shared.clone(), pool })
    }
}

impl Drop for Invoker {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
    }
}

impl Reservation {
    /// Queues the trigger step for a worker and waits for its outcome.
    pub async fn run(self, trigger: Trigger, stored: Dataset, input: SyncEvent) -> Outcome {
        self.run_with(trigger, stored, input, Entropy::fresh()).await
    }

    /// [`run`](Self::run) with given randomness and clock (a recorded invocation's).
    pub async fn run_with(self, trigger: Trigger, stored: Dataset, input: SyncEvent, entropy: Entropy) -> Outcome {
        let (reply, outcome) = oneshot::channel();
        {
            let mut sched = self.shared.lock();
            if sched.shutdown {
                return failed(Error::Internal("invoker is shut down".into()), entropy);
            }
            sched.submit(&self.pool, Job { trigger, stored, input, entropy, reply });
        }
        self.shared.work.notify_one();
        let outcome =
            outcome.await.unwrap_or_else(|_| failed(Error::Internal("trigger invocation was dropped".into()), entropy));
        drop(self);
        outcome
    }
}

/// Niceness of a thread whose call stepped aside, where `SCHED_IDLE` is refused.
const ASIDE_NICENESS: i32 = 19;

/// Lowers the calling thread to the lowest priority: `SCHED_IDLE`, under which any other
/// thread that wakes takes the CPU from it at once and the scheduler counts its core as idle
/// when placing woken threads (at niceness 19 alone, measured, the quiet tenant's p99 still
/// rose by a third beside a spinner); or else niceness 19. Says whether either took.
#[cfg(target_os = "linux")]
fn lower_this_thread() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain system call on the calling thread (pid 0) with a valid parameter.
    let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0;
    idle || rustix::process::setpriority_process(Some(rustix::thread::gettid()), ASIDE_NICENESS).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn lower_this_thread() -> bool {
    false
}

/// Starts a worker thread, with the stack wasm may use (virtual memory: only what is touched
/// is mapped); says whether it started.
fn spawn_worker(shared: Arc<Shared>) -> bool {
    let stack = crate::sandbox::thread_stack_bytes(&shared.runtime.config().limits);
    std::thread::Builder::new().name("synctrig-trigger".into()).stack_size(stack).spawn(move || work(&shared)).is_ok()
}

/// Serves the workers' requests, until the invoker is gone.
fn spawner(shared: &Weak<Shared>, requests: &mpsc::Receiver<Request>) {
    while let Ok(request) = requests.recv() {
        let Some(shared) = shared.upgrade() else { return };
        let replace = match request {
            Request::Spawn => true,
            Request::Finished { pool, aside } => {
                let mut sched = shared.lock();
                sched.finished(&pool, aside);
                if !sched.ring.is_empty() {
                    shared.work.notify_one();
                }
                !aside
            }
        };
        // A thread that cannot start now (a process or container limit) is tried again.
        let mut tries = 0;
        while replace && !spawn_worker(shared.clone()) {
            tries += 1;
            if tries == 50 {
                tracing::error!("cannot start a trigger worker thread; running with one fewer");
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What the running call on a worker thread has done about being long.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Long {
    #[default]
    No,
    /// Its thread could not be lowered: it goes on as an ordinary call.
    Kept,
    /// Lowered its thread's priority, kept its slot (`slots` calls had stepped aside).
    Lowered,
    /// Lowered its thread's priority and gave its slot to a fresh worker.
    Aside,
}

thread_local! {
    /// The invoker this worker thread serves and the pool of its call, for the long-call hook.
    static WORKER_OF: RefCell<Option<(Arc<Shared>, Arc<str>)>> = const { RefCell::new(None) };
    static LONG: Cell<Long> = const { Cell::new(Long::No) };
}

/// The long-call hook, on the worker's thread inside the call.
fn long_call(call: &LongCall) {
    WORKER_OF.with_borrow(|worker| {
        let Some((shared, pool)) = worker else { return };
        if LONG.get() == Long::No {
            // The lock while still at normal priority; never again after lowering.
            let aside = shared.lock().step_aside(pool);
            if !lower_this_thread() {
                if aside {
                    shared.lock().undo_step_aside(pool);
                }
                LONG.set(Long::Kept);
                return;
            }
            if aside {
                LONG.set(Long::Aside);
                // The freed slot: to a waiting worker now, and a fresh worker to stand for it.
                shared.work.notify_one();
                let _ = shared.spawn.send(Request::Spawn);
            } else {
                LONG.set(Long::Lowered);
            }
        }
        let long = LONG.get();
        if long != Long::Kept && call.started.elapsed() >= PAUSE_AFTER {
            let resume = (Instant::now() + PAUSE).min(call.until);
            while Instant::now() + PAUSE_STEP < resume && shared.activity.others_busy(long == Long::Lowered) {
                std::thread::sleep(PAUSE_STEP);
            }
        }
    });
}

/// A worker: takes the next invocation in fair order, runs it, repeats.
fn work(shared: &Arc<Shared>) {
    crate::sandbox::on_long_calls(LONG_CALL, long_call);
    let mut sched = shared.lock();
    loop {
        if sched.shutdown {
            return;
        }
        let Some((pool, job)) = sched.pick() else {
            sched = shared.work.wait(sched).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        drop(sched);
        // A request that went away (client gone) does not spend a worker.
        if !job.reply.is_closed() {
            WORKER_OF.set(Some((shared.clone(), pool.clone())));
            let outcome = run_trigger_with(&shared.runtime, &job.trigger, &job.stored, &job.input, job.entropy);
            WORKER_OF.set(None);
            let _ = job.reply.send(outcome);
        }
        let long = LONG.take();
        if matches!(long, Long::Aside | Long::Lowered) {
            // At the lowest priority for good: the spawner records the end (and starts a
            // worker for the slot, if this thread still held one), and this thread ends.
            let _ = shared.spawn.send(Request::Finished { pool, aside: long == Long::Aside });
            return;
        }
        sched = shared.lock();
        sched.finished(&pool, false);
        // This pool's share may have let another one's queued invocation through.
        if !sched.ring.is_empty() {
            shared.work.notify_one();
        }
    }
}

fn failed(e: Error, entropy: Entropy) -> Outcome {
    Outcome { result: Err(e), stats: Stats::default(), log: String::new(), entropy }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str) -> Arc<str> {
        name.into()
    }

    fn run_all(s: &mut Sched<u32>) -> Vec<(String, u32)> {
        std::iter::from_fn(|| s.pick()).map(|(p, j)| (p.to_string(), j)).collect()
    }

    #[test]
    fn a_pool_alone_uses_every_slot() {
        let mut s = Sched::new(4, 4, Duration::ZERO);
        for j in 0..6 {
            s.submit(&pool("a"), j);
        }
        assert_eq!(run_all(&mut s).len(), 4);
        s.finished(&pool("a"), false);
        assert_eq!(run_all(&mut s), vec![("a".into(), 4)]);
    }

    #[test]
    fn under_contention_each_pool_gets_its_share_in_turn() {
        let mut s = Sched::new(4, 4, Duration::ZERO);
        for j in 0..10 {
            s.submit(&pool("noisy"), j);
        }
        s.submit(&pool("quiet"), 100);
        s.submit(&pool("quiet"), 101);
        let picked = run_all(&mut s);
        // Two each, alternating: the noisy pool's backlog does not go first.
        assert_eq!(
            picked,
            vec![("noisy".into(), 0), ("quiet".into(), 100), ("noisy".into(), 1), ("quiet".into(), 101)]
        );
        // The quiet pool is done; its slots go back to the noisy one, which is alone again.
        s.finished(&pool("quiet"), false);
        s.finished(&pool("quiet"), false);
        assert_eq!(run_all(&mut s), vec![("noisy".into(), 2), ("noisy".into(), 3)]);
    }

    #[test]
    fn a_new_pool_gets_a_turn_within_one_round() {
        let mut s = Sched::new(2, 2, Duration::ZERO);
        for j in 0..5 {
            s.submit(&pool("a"), j);
            s.submit(&pool("b"), 10 + j);
        }
        assert_eq!(run_all(&mut s), vec![("a".into(), 0), ("b".into(), 10)]);
        s.submit(&pool("c"), 99);
        let mut order = Vec::new();
        for done in ["a", "b", "a"] {
            s.finished(&pool(done), false);
            order.extend(s.pick().map(|(p, j)| (p.to_string(), j)));
        }
        assert_eq!(order, vec![("a".into(), 1), ("b".into(), 11), ("c".into(), 99)]);
    }

    #[test]
    fn a_pool_below_its_share_goes_first() {
        let mut s = Sched::new(4, 4, Duration::ZERO);
        for j in 0..6 {
            s.submit(&pool("noisy"), j);
        }
        assert_eq!(run_all(&mut s).len(), 4);
        s.submit(&pool("quiet"), 100);
        // A worker frees up: the quiet pool, with none running, takes it.
        s.finished(&pool("noisy"), false);
        assert_eq!(run_all(&mut s), vec![("quiet".into(), 100)]);
    }

    #[test]
    fn a_pool_between_requests_still_has_its_share() {
        let mut s = Sched::new(2, 2, Duration::from_secs(60));
        s.submit(&pool("quiet"), 0);
        assert_eq!(run_all(&mut s).len(), 1);
        s.finished(&pool("quiet"), false);
        // The quiet pool has nothing queued right now, but was busy a moment ago: the noisy
        // pool gets one worker, not both.
        for j in 1..4 {
            s.submit(&pool("noisy"), j);
        }
        assert_eq!(run_all(&mut s), vec![("noisy".into(), 1)]);
    }

    #[test]
    fn a_long_call_that_steps_aside_gives_its_slot_back_but_keeps_its_share() {
        let mut s = Sched::new(2, 2, Duration::from_secs(60));
        for j in 0..4 {
            s.submit(&pool("noisy"), j);
        }
        // Alone, the spinning pool takes both slots; both calls run long and step aside.
        assert_eq!(run_all(&mut s).len(), 2);
        assert!(s.step_aside(&pool("noisy")) && s.step_aside(&pool("noisy")));
        // The quiet pool gets both freed slots at once; the noisy one, with its share aside,
        // gets no more while its long calls run.
        for j in 100..103 {
            s.submit(&pool("quiet"), j);
        }
        assert_eq!(run_all(&mut s), vec![("quiet".into(), 100), ("quiet".into(), 101)]);
        // At most `slots` calls step aside; a third long one keeps its slot, and its pool
        // counts as busy again.
        assert!(!s.step_aside(&pool("quiet")));
        s.finished(&pool("noisy"), true);
        s.finished(&pool("noisy"), true);
        s.finished(&pool("quiet"), false);
        assert_eq!(run_all(&mut s), vec![("noisy".into(), 2)]);
        s.finished(&pool("quiet"), false);
        assert_eq!(run_all(&mut s), vec![("quiet".into(), 102)]);
    }

    #[test]
    fn a_paused_call_waits_while_other_calls_hold_slots_or_did_a_moment_ago() {
        let mut s = Sched::new(2, 2, Duration::ZERO);
        for j in 0..3 {
            s.submit(&pool("noisy"), j);
        }
        assert_eq!(run_all(&mut s).len(), 2);
        assert!(s.step_aside(&pool("noisy")));
        let a = s.activity.clone();
        let moment = OTHERS_RECENT.as_nanos() as u64;
        let later = a.last_nanos.load(Ordering::Relaxed) + moment;
        // One call holds a slot: a call aside waits for it; a lowered call that holds the
        // slot itself does not wait for itself.
        assert_eq!(a.foreground.load(Ordering::Relaxed), 1);
        assert!(a.others_busy_at(false, later));
        assert!(!a.others_busy_at(true, later));
        // Within a moment of a call's start, end or queueing, the others count as busy.
        assert!(a.others_busy_at(true, later - 1));
        s.finished(&pool("noisy"), false);
        let later = a.last_nanos.load(Ordering::Relaxed) + moment;
        assert!(!a.others_busy_at(false, later));
        assert!(a.others_busy_at(false, later - 1));
        // A call that could not be lowered takes its slot back.
        s.submit(&pool("quiet"), 100);
        assert_eq!(run_all(&mut s), vec![("quiet".into(), 100), ("noisy".into(), 2)]);
        assert!(s.step_aside(&pool("noisy")));
        s.undo_step_aside(&pool("noisy"));
        assert_eq!((s.foreground, s.background, s.pools["noisy"].aside), (2, 1, 1));
    }

    #[test]
    fn no_more_calls_step_aside_than_the_instance_pool_has_room_for() {
        let mut s = Sched::new(2, 2, Duration::ZERO);
        s.max_aside = 1;
        for j in 0..3 {
            s.submit(&pool("a"), j);
        }
        assert_eq!(run_all(&mut s).len(), 2);
        assert!(s.step_aside(&pool("a")));
        assert!(!s.step_aside(&pool("a")));
    }

    #[test]
    fn max_per_pool_caps_a_pool_even_alone() {
        let mut s = Sched::new(4, 1, Duration::ZERO);
        for j in 0..3 {
            s.submit(&pool("a"), j);
        }
        assert_eq!(run_all(&mut s).len(), 1);
    }
}
