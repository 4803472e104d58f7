//! Loaded triggers: compiled off the request path, kept within a memory budget.
//!
//! A function version is loaded (from the artifact cache, else by the compile worker) in
//! the background — at start-up for every pool's trigger, on SetCognitoEvents, or on the
//! first update that needs it — at most `compile_slots` at a time. An update that needs a
//! trigger still loading waits for it, up to a bound, then is answered
//! `LambdaThrottledException` and retries. A load that fails is remembered for a while, so
//! a broken trigger costs one compile per interval, not one per request. Loaded triggers
//! are kept while their artifacts fit the budget; past it the least recently used are
//! dropped (they reload from the artifact cache in about a millisecond).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use synctrig_runtime::error::Error;
use synctrig_runtime::sandbox::{Runtime, Trigger};
use synctrig_store::{Qualifier, Store};
use tokio::sync::{Notify, Semaphore};

/// How long a failed load is remembered before it is tried again.
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(60);

/// The loaded triggers of a server.
pub struct Triggers {
    runtime: Arc<Runtime>,
    store: Arc<Store>,
    budget_bytes: usize,
    wait: Duration,
    compile_slots: Arc<Semaphore>,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    clock: u64,
    loaded_bytes: usize,
}

enum Entry {
    Loading,
    Ready { trigger: Trigger, last_used: u64 },
    Failed { error: Error, at: Instant },
}

/// A function version to load: its tenant, name, version and component digest.
#[derive(Clone, Debug)]
pub struct FunctionRef {
    pub tenant: String,
    pub name: String,
    pub version: i64,
    pub digest: String,
}

impl Triggers {
    /// Loaded triggers over `runtime`, reading component bytes from `store`.
    pub fn new(
        runtime: Arc<Runtime>,
        store: Arc<Store>,
        budget_bytes: usize,
        compile_slots: usize,
        wait: Duration,
    ) -> Arc<Self> {
        Arc::new(Triggers {
            runtime,
            store,
            budget_bytes,
            wait,
            compile_slots: Arc::new(Semaphore::new(compile_slots.max(1))),
            state: Mutex::default(),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The runtime triggers run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Bytes of artifacts loaded now.
    pub fn loaded_bytes(&self) -> usize {
        self.lock().loaded_bytes
    }

    /// Starts loading `f` in the background unless it is loaded, loading, or failed
    /// recently. Returns at once.
    pub fn prefetch(self: &Arc<Self>, f: FunctionRef) {
        let start = {
            let mut state = self.lock();
            match state.entries.get(&f.digest) {
                Some(Entry::Ready { .. } | Entry::Loading) => false,
                Some(Entry::Failed { at, .. }) if at.elapsed() < RETRY_FAILED_AFTER => false,
                _ => {
                    state.entries.insert(f.digest.clone(), Entry::Loading);
                    true
                }
            }
        };
        if start {
            let this = self.clone();
            tokio::spawn(async move { this.load(f).await });
        }
    }

    /// The loaded trigger for `f`, starting its load if needed and waiting for it up to
    /// the configured bound.
    pub async fn get(self: &Arc<Self>, f: FunctionRef) -> Result<Trigger, Error> {
        let deadline = tokio::time::Instant::now() + self.wait;
        self.prefetch(f.clone());
        loop {
            // Registered before the check, so a load that finishes in between wakes us.
            let changed = self.changed.notified();
            {
                let mut state = self.lock();
                state.clock += 1;
                let now = state.clock;
                match state.entries.get_mut(&f.digest) {
                    Some(Entry::Ready { trigger, last_used }) => {
                        *last_used = now;
                        return Ok(trigger.clone());
                    }
                    Some(Entry::Failed { error, .. }) => return Err(error.clone()),
                    Some(Entry::Loading) => {}
                    // Evicted between the prefetch and now: load it again.
                    None => {
                        drop(state);
                        self.prefetch(f.clone());
                        continue;
                    }
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(Error::TriggerNotReady);
            }
        }
    }

    /// The trigger from this node's artifact cache, or compiled from the bytes in the
    /// store (a node that never saw the deploy fetches them). Loading from the cache and
    /// compiling block (they wait for the worker process): off the async workers.
    async fn load_blocking(&self, f: &FunctionRef) -> Result<Trigger, Error> {
        let join = |e: tokio::task::JoinError| Error::Internal(format!("trigger load task failed: {e}"));
        let (runtime, digest) = (self.runtime.clone(), f.digest.clone());
        if let Some(trigger) =
            tokio::task::spawn_blocking(move || runtime.load_cached(&digest)).await.map_err(join)??
        {
            return Ok(trigger);
        }
        let bytes = self
            .store
            .function_wasm(&f.tenant, &f.name, f.version)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .ok_or_else(|| Error::Internal(format!("function {} version {} vanished", f.name, f.version)))?;
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || runtime.load(&bytes)).await.map_err(join)?
    }

    async fn load(self: Arc<Self>, f: FunctionRef) {
        let entry = match self.compile_slots.clone().acquire_owned().await {
            Ok(_slot) => {
                let loaded = self.load_blocking(&f).await;
                match loaded {
                    Ok(trigger) => Entry::Ready { trigger, last_used: 0 },
                    Err(error) => {
                        tracing::warn!(
                            tenant = f.tenant,
                            function = f.name,
                            version = f.version,
                            "cannot load trigger: {error}"
                        );
                        Entry::Failed { error, at: Instant::now() }
                    }
                }
            }
            Err(_) => {
                Entry::Failed { error: Error::Internal("trigger loading is shut down".into()), at: Instant::now() }
            }
        };
        {
            let mut state = self.lock();
            state.clock += 1;
            let entry = match entry {
                Entry::Ready { trigger, .. } => {
                    state.loaded_bytes += trigger.artifact_bytes();
                    Entry::Ready { trigger, last_used: state.clock }
                }
                other => other,
            };
            state.entries.insert(f.digest.clone(), entry);
            self.evict(&mut state, &f.digest);
        }
        self.changed.notify_waiters();
    }

    /// Drops the least recently used loaded triggers (never `keep`) until the rest fit the
    /// budget. Invocations in flight keep theirs until they finish.
    fn evict(&self, state: &mut State, keep: &str) {
        while state.loaded_bytes > self.budget_bytes {
            let oldest = state
                .entries
                .iter()
                .filter_map(|(digest, e)| match e {
                    Entry::Ready { last_used, .. } if digest != keep => Some((*last_used, digest.clone())),
                    _ => None,
                })
                .min();
            let Some((_, digest)) = oldest else { return };
            if let Some(Entry::Ready { trigger, .. }) = state.entries.remove(&digest) {
                state.loaded_bytes -= trigger.artifact_bytes();
                tracing::debug!(digest, "evicted a loaded trigger to stay within the memory budget");
            }
        }
    }
}

/// A SyncTrigger mapping: a function name or Lambda ARN, with an optional qualifier — a
/// version number, an alias (Lambda's pattern: letters, digits, `-` and `_`, not all
/// digits, at most 128) or `$LATEST`.
pub fn parse_function_ref(value: &str) -> Option<(String, Qualifier)> {
    let rest = match value.strip_prefix("arn:aws:lambda:") {
        Some(arn) => {
            let mut parts = arn.splitn(4, ':');
            let (_region, _account, kind) = (parts.next()?, parts.next()?, parts.next()?);
            if kind != "function" {
                return None;
            }
            parts.next()?
        }
        None => value,
    };
    let (name, qualifier) = match rest.split_once(':') {
        Some((name, "$LATEST")) => (name, Qualifier::Latest),
        Some((name, q)) if !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()) => {
            (name, Qualifier::Version(q.parse().ok().filter(|v| *v > 0)?))
        }
        Some((name, alias)) => (name, Qualifier::Alias(alias_name_ok(alias)?.to_owned())),
        None => (rest, Qualifier::Latest),
    };
    let valid =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then(|| (name.to_owned(), qualifier))
}

/// `Some(name)` when `name` is a valid function name.
pub fn api_function_name_ok(name: &str) -> Option<&str> {
    parse_function_ref(name).filter(|(n, q)| n == name && *q == Qualifier::Latest).map(|_| name)
}

/// `Some(alias)` when `alias` is a valid alias name (Lambda's rules).
pub fn alias_name_ok(alias: &str) -> Option<&str> {
    let valid = (1..=128).contains(&alias.len())
        && alias.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !alias.bytes().all(|b| b.is_ascii_digit());
    valid.then_some(alias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_refs() {
        let (latest, version) = (Qualifier::Latest, Qualifier::Version);
        let alias = |a: &str| Qualifier::Alias(a.into());
        assert_eq!(parse_function_ref("sample"), Some(("sample".into(), latest.clone())));
        assert_eq!(parse_function_ref("sample:3"), Some(("sample".into(), version(3))));
        assert_eq!(parse_function_ref("sample:$LATEST"), Some(("sample".into(), latest.clone())));
        assert_eq!(parse_function_ref("sample:live"), Some(("sample".into(), alias("live"))));
        assert_eq!(parse_function_ref("sample:v2-beta_1"), Some(("sample".into(), alias("v2-beta_1"))));
        assert_eq!(
            parse_function_ref("arn:aws:lambda:us-east-1:123456789012:function:sample"),
            Some(("sample".into(), latest))
        );
        assert_eq!(
            parse_function_ref("arn:aws:lambda:us-east-1:123456789012:function:sample:2"),
            Some(("sample".into(), version(2)))
        );
        assert_eq!(
            parse_function_ref("arn:aws:lambda:us-east-1:123456789012:function:sample:live"),
            Some(("sample".into(), alias("live")))
        );
        assert_eq!(parse_function_ref("arn:aws:lambda:us-east-1:1:layer:x"), None);
        assert_eq!(parse_function_ref("bad name"), None);
        assert_eq!(parse_function_ref("x:0"), None);
        assert_eq!(parse_function_ref("x:"), None);
        assert_eq!(parse_function_ref("x:a.b"), None);
        assert_eq!(parse_function_ref("x:a:b"), None);
        assert_eq!(parse_function_ref(&format!("x:{}", "a".repeat(129))), None);
        assert_eq!(parse_function_ref("x:99999999999999999999"), None);
    }
}
