//! What every request reads and almost nothing changes — credentials, pools, which
//! identity is in which pool, a function's versions — kept in memory on each node, and
//! dropped on every node when any node changes it.
//!
//! A change's transaction sends `NOTIFY synctrig_cache` naming the kinds it changed,
//! which PostgreSQL delivers to every node's listener when (and only if) it commits; the
//! listener then bumps those kinds' generations, and entries of an older generation are
//! not used. The node that made the change bumps its own at once, so it never answers
//! from before its own change; another node answers from before it for the
//! notification's latency (sub-millisecond on one network) at most.
//!
//! Without a listener whose notifications are proven to arrive nothing is cached: every
//! read goes to the database. The listener proves it every few seconds by a notification
//! to itself (a connection pooler in transaction mode, which accepts LISTEN but never
//! delivers, fails that). And no entry is used longer than `MAX_AGE` after its read began,
//! which bounds what a change nobody announced (SQL by hand) can leave behind.
//!
//! An entry is stored only if no bump of its kind came between the ticket taken before
//! its read and its storing, so a read that raced a change never outlives the change's
//! notification.

use super::super::{Credential, Pool, Qualifier, Resolved};
use futures_util::future::poll_fn;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::AsyncMessage;

/// The channel changes are announced on; the payload is the changed kinds' bits
/// ([`Kinds`]), none or unreadable meaning all.
pub(super) const CHANNEL: &str = "synctrig_cache";
/// The listener connection's application_name.
pub(super) const LISTENER_NAME: &str = "synctrig-wasm cache listener";
/// Most entries of each kind kept; past it the kind is emptied (entries are re-read).
const MAX_ENTRIES: usize = 100_000;
/// The longest an entry is used after its read began.
const MAX_AGE: Duration = Duration::from_secs(30);
/// How often the listener proves that notifications reach it; one that takes longer
/// than this to come back counts as a lost connection.
const PING_EVERY: Duration = Duration::from_secs(5);
/// How long the listener waits before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Kinds of entries, as bits: what a change announces it changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Kinds(u8);

impl Kinds {
    pub(super) const CREDENTIALS: Kinds = Kinds(1);
    pub(super) const POOLS: Kinds = Kinds(2);
    pub(super) const IDENTITY_POOLS: Kinds = Kinds(4);
    pub(super) const FUNCTIONS: Kinds = Kinds(8);
    pub(super) const ALL: Kinds = Kinds(15);

    pub(super) const fn and(self, other: Kinds) -> Kinds {
        Kinds(self.0 | other.0)
    }

    /// The NOTIFY payload.
    pub(super) fn payload(self) -> String {
        self.0.to_string()
    }

    fn from_payload(payload: &str) -> Kinds {
        payload.parse::<u8>().ok().map(|bits| Kinds(bits & Self::ALL.0)).filter(|k| k.0 != 0).unwrap_or(Self::ALL)
    }

    fn has(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }
}

#[derive(Default)]
pub(super) struct Cache {
    /// Per kind, by [`Kind::INDEX`].
    generations: [AtomicU64; 4],
    listening: AtomicBool,
    entries: Mutex<Entries>,
    /// The listener's own channel for its pings.
    ping_channel: String,
}

/// Entries of one kind, all of one generation.
pub(super) struct Slot<K, V> {
    generation: u64,
    map: HashMap<K, (Instant, V)>,
}

impl<K, V> Default for Slot<K, V> {
    fn default() -> Self {
        Slot { generation: 0, map: HashMap::new() }
    }
}

#[derive(Default)]
pub(super) struct Entries {
    credentials: Slot<String, Credential>,
    pools: Slot<String, Pool>,
    identity_pools: Slot<String, String>,
    functions: Slot<(String, String, Qualifier), Resolved>,
}

/// When a read began, and the generation of its kind then: what it read may be stored
/// only if that is still current.
#[derive(Clone, Copy)]
pub(super) struct Ticket {
    generation: u64,
    at: Instant,
}

/// One kind of entry.
pub(super) trait Kind {
    const INDEX: usize;
    type Key: std::hash::Hash + Eq;
    type Value: Clone;
    fn slot(entries: &mut Entries) -> &mut Slot<Self::Key, Self::Value>;
}

macro_rules! kind {
    ($name:ident, $index:expr, $field:ident, $key:ty, $value:ty) => {
        pub(super) struct $name;
        impl Kind for $name {
            const INDEX: usize = $index;
            type Key = $key;
            type Value = $value;
            fn slot(entries: &mut Entries) -> &mut Slot<$key, $value> {
                &mut entries.$field
            }
        }
    };
}
kind!(Credentials, 0, credentials, String, Credential);
kind!(Pools, 1, pools, String, Pool);
kind!(IdentityPools, 2, identity_pools, String, String);
kind!(Functions, 3, functions, (String, String, Qualifier), Resolved);

impl Cache {
    pub(super) fn new() -> Cache {
        Cache { ping_channel: format!("synctrig_ping_{}", super::super::random_hex(8)), ..Cache::default() }
    }

    fn current<K: Kind>(&self) -> Option<u64> {
        self.listening.load(Ordering::Acquire).then(|| self.generations[K::INDEX].load(Ordering::Acquire))
    }

    /// `K`'s entries, emptied if they are of an older generation than `generation`.
    fn slot<K: Kind>(
        &self,
        generation: u64,
        f: impl FnOnce(&mut Slot<K::Key, K::Value>) -> Option<K::Value>,
    ) -> Option<K::Value> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let slot = K::slot(&mut entries);
        if slot.generation != generation {
            *slot = Slot { generation, map: HashMap::new() };
        }
        f(slot)
    }

    /// The cached value of `key`, if caching is on and it is current.
    pub(super) fn get<K: Kind>(&self, key: &K::Key) -> Option<K::Value> {
        let generation = self.current::<K>()?;
        self.slot::<K>(generation, |slot| {
            slot.map.get(key).filter(|(at, _)| at.elapsed() < MAX_AGE).map(|(_, value)| value.clone())
        })
    }

    /// Taken before a read whose result may be cached.
    pub(super) fn ticket<K: Kind>(&self) -> Option<Ticket> {
        self.current::<K>().map(|generation| Ticket { generation, at: Instant::now() })
    }

    /// Keeps `value`, read after `ticket` was taken, unless its kind changed since.
    pub(super) fn put<K: Kind>(&self, ticket: Option<Ticket>, key: K::Key, value: K::Value) {
        let Some(Ticket { generation, at }) = ticket else { return };
        if self.current::<K>() != Some(generation) {
            return;
        }
        self.slot::<K>(generation, |slot| {
            if slot.map.len() >= MAX_ENTRIES {
                slot.map.clear();
            }
            slot.map.insert(key, (at, value));
            None
        });
    }

    /// Drops the entries of `kinds` (a change was committed, here or on another node).
    pub(super) fn invalidate(&self, kinds: Kinds) {
        for (index, generation) in self.generations.iter().enumerate() {
            if kinds.has(index) {
                generation.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// Whether the listener is connected (and so whether anything is cached).
    #[cfg(test)]
    pub(super) fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Keeps a connection that LISTENs for changes until `stop` is dropped: caching is on
    /// only while notifications are proven to arrive on it.
    pub(super) async fn listen(
        self: Arc<Self>,
        config: tokio_postgres::Config,
        tls: tokio_postgres_rustls::MakeRustlsConnect,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        loop {
            let ended = tokio::select! {
                _ = &mut stop => return,
                ended = self.listen_once(&config, &tls) => ended,
            };
            if let Err(e) = ended {
                tracing::warn!(
                    "the cache listener lost its database connection ({e}); reading through until it is back"
                );
            }
            self.listening.store(false, Ordering::Release);
            self.invalidate(Kinds::ALL);
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(RECONNECT_AFTER) => {}
            }
        }
    }

    async fn listen_once(
        &self,
        config: &tokio_postgres::Config,
        tls: &tokio_postgres_rustls::MakeRustlsConnect,
    ) -> Result<(), tokio_postgres::Error> {
        let mut config = config.clone();
        // Named, so that an operator sees what it is in pg_stat_activity.
        config.application_name(LISTENER_NAME);
        let (client, mut connection) = config.connect(tls.clone()).await?;
        // Per connection, so that no echo of an earlier one counts.
        let pinged = tokio::sync::Notify::new();
        // Driving the connection is what delivers notifications; it ends when the
        // connection does.
        let messages = async {
            while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                if let AsyncMessage::Notification(n) = message? {
                    if n.channel() == self.ping_channel {
                        pinged.notify_one();
                    } else {
                        self.invalidate(Kinds::from_payload(n.payload()));
                    }
                }
            }
            Ok::<(), tokio_postgres::Error>(())
        };
        let watch = async {
            client.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {}", self.ping_channel)).await?;
            loop {
                // A notification sent to itself must come back: then every change
                // committed from now on reaches this node.
                client.batch_execute(&format!("NOTIFY {}", self.ping_channel)).await?;
                if tokio::time::timeout(PING_EVERY, pinged.notified()).await.is_err() {
                    tracing::warn!("the cache listener's notifications stopped arriving; reconnecting");
                    return Ok(());
                }
                if !self.listening.load(Ordering::Acquire) {
                    // What was read before notifications were proven is dropped.
                    self.invalidate(Kinds::ALL);
                    self.listening.store(true, Ordering::Release);
                }
                tokio::time::sleep(PING_EVERY).await;
            }
        };
        tokio::select! {
            ended = messages => ended,
            ended = watch => ended,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_drops_only_its_kinds_and_a_raced_read_is_not_kept() {
        let cache = Cache::new();
        cache.listening.store(true, Ordering::Release);
        let t = cache.ticket::<Pools>();
        cache.put::<Pools>(t, "p".into(), pool("old"));
        let t = cache.ticket::<IdentityPools>();
        cache.put::<IdentityPools>(t, "i".into(), "p".into());
        // A merge: credentials and identities' pools, not pools.
        cache.invalidate(Kinds::from_payload(&Kinds::CREDENTIALS.and(Kinds::IDENTITY_POOLS).payload()));
        assert_eq!(cache.get::<Pools>(&"p".into()).map(|p| p.name), Some("old".into()));
        assert_eq!(cache.get::<IdentityPools>(&"i".into()), None);
        // A read that began before a change is not kept.
        let before = cache.ticket::<Pools>();
        cache.invalidate(Kinds::POOLS);
        cache.put::<Pools>(before, "p".into(), pool("stale"));
        assert!(cache.get::<Pools>(&"p".into()).is_none());
        // Unreadable payloads drop everything.
        assert_eq!(Kinds::from_payload(""), Kinds::ALL);
        assert_eq!(Kinds::from_payload("x"), Kinds::ALL);
        // Nothing is cached while not listening.
        cache.listening.store(false, Ordering::Release);
        cache.put::<Pools>(cache.ticket::<Pools>(), "q".into(), pool("q"));
        cache.listening.store(true, Ordering::Release);
        assert!(cache.get::<Pools>(&"q".into()).is_none());
    }

    #[test]
    fn an_entry_is_not_used_past_its_age() {
        let cache = Cache::new();
        cache.listening.store(true, Ordering::Release);
        let Some(at) = Instant::now().checked_sub(MAX_AGE) else { return };
        let old = Ticket { generation: 0, at };
        cache.put::<Pools>(Some(old), "p".into(), pool("p"));
        assert!(cache.get::<Pools>(&"p".into()).is_none());
    }

    fn pool(name: &str) -> Pool {
        Pool {
            pool_id: "p".into(),
            tenant: "t".into(),
            sync_trigger: None,
            name: name.into(),
            allow_unauthenticated: true,
            settings: Default::default(),
        }
    }
}
