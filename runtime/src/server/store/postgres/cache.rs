//! What every request reads and almost nothing changes — credentials, pools, which
//! identity is in which pool, a function's versions — kept in memory on each node, and
//! dropped on every node when any node changes it.
//!
//! A change's transaction sends `NOTIFY synctrig_cache`, which PostgreSQL delivers to
//! every node's listener when (and only if) it commits; the listener then bumps the
//! generation, and entries of an older generation are not used. The node that made the
//! change bumps its own at once, so it never answers from before its own change; another
//! node answers from before it for the notification's latency (sub-millisecond on one
//! network) at most. Without a listening connection nothing is cached: every read goes to
//! the database, as if there were no cache.
//!
//! An entry is stored only if no bump came between the ticket taken before its read and
//! its storing, so a read that raced a change never outlives the change's notification.

use super::super::{Credential, Pool};
use futures_util::future::poll_fn;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio_postgres::AsyncMessage;

/// The channel changes are announced on.
pub(super) const CHANNEL: &str = "synctrig_cache";
/// Most entries of each kind kept; past it the kind is emptied (entries are re-read).
const MAX_ENTRIES: usize = 100_000;
/// How often the listener proves its connection alive; a ping that takes longer than
/// this counts as a lost connection.
const PING_EVERY: Duration = Duration::from_secs(5);
/// The listener connection's application_name.
pub(super) const LISTENER_NAME: &str = "synctrig-wasm cache listener";
/// How long the listener waits before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(super) struct Cache {
    generation: AtomicU64,
    listening: AtomicBool,
    entries: Mutex<Entries>,
}

#[derive(Default)]
pub(super) struct Entries {
    generation: u64,
    credentials: HashMap<String, Credential>,
    pools: HashMap<String, Pool>,
    identity_pools: HashMap<String, String>,
    functions: HashMap<(String, String, Option<i64>), (i64, String)>,
}

/// The generation a read started in: what it read may be stored only if it is still current.
#[derive(Clone, Copy)]
pub(super) struct Ticket(u64);

/// One kind of entry.
pub(super) trait Kind {
    type Key: std::hash::Hash + Eq;
    type Value: Clone;
    fn map(entries: &mut Entries) -> &mut HashMap<Self::Key, Self::Value>;
}

macro_rules! kind {
    ($name:ident, $field:ident, $key:ty, $value:ty) => {
        pub(super) struct $name;
        impl Kind for $name {
            type Key = $key;
            type Value = $value;
            fn map(entries: &mut Entries) -> &mut HashMap<$key, $value> {
                &mut entries.$field
            }
        }
    };
}
kind!(Credentials, credentials, String, Credential);
kind!(Pools, pools, String, Pool);
kind!(IdentityPools, identity_pools, String, String);
kind!(Functions, functions, (String, String, Option<i64>), (i64, String));

impl Cache {
    fn current(&self) -> Option<u64> {
        self.listening.load(Ordering::Acquire).then(|| self.generation.load(Ordering::Acquire))
    }

    /// The entries, emptied if they are of an older generation than `generation`.
    fn entries(&self, generation: u64) -> std::sync::MutexGuard<'_, Entries> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.generation != generation {
            *entries = Entries { generation, ..Entries::default() };
        }
        entries
    }

    /// The cached value of `key`, if caching is on and it is current.
    pub(super) fn get<K: Kind>(&self, key: &K::Key) -> Option<K::Value> {
        let generation = self.current()?;
        K::map(&mut self.entries(generation)).get(key).cloned()
    }

    /// Taken before a read whose result may be cached.
    pub(super) fn ticket(&self) -> Option<Ticket> {
        self.current().map(Ticket)
    }

    /// Keeps `value`, read after `ticket` was taken, unless something changed since.
    pub(super) fn put<K: Kind>(&self, ticket: Option<Ticket>, key: K::Key, value: K::Value) {
        let Some(Ticket(generation)) = ticket else { return };
        if self.current() != Some(generation) {
            return;
        }
        let mut entries = self.entries(generation);
        let map = K::map(&mut entries);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, value);
    }

    /// Whether the listener is connected (and so whether anything is cached).
    #[cfg(test)]
    pub(super) fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Drops every entry (a change was committed, here or on another node).
    pub(super) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Keeps a connection that LISTENs for changes, for as long as the store lives:
    /// caching is on only while it is connected and proven alive.
    pub(super) async fn listen(self: std::sync::Arc<Self>, config: tokio_postgres::Config) {
        let cache = std::sync::Arc::downgrade(&self);
        drop(self);
        loop {
            let Some(this) = cache.upgrade() else { return };
            if let Err(e) = this.listen_once(&config).await {
                tracing::warn!(
                    "the cache listener lost its database connection ({e}); reading through until it is back"
                );
            }
            this.listening.store(false, Ordering::Release);
            this.invalidate();
            drop(this);
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }

    async fn listen_once(&self, config: &tokio_postgres::Config) -> Result<(), tokio_postgres::Error> {
        let mut config = config.clone();
        // Named, so that an operator sees what it is in pg_stat_activity.
        config.application_name(LISTENER_NAME);
        let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
        // Driving the connection is what delivers notifications; it ends when the
        // connection does.
        let messages = async {
            while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                if let AsyncMessage::Notification(_) = message? {
                    self.invalidate();
                }
            }
            Ok::<(), tokio_postgres::Error>(())
        };
        let watch = async {
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
            // Only from now on is every change announced to this node: what was read
            // before is dropped.
            self.invalidate();
            self.listening.store(true, Ordering::Release);
            loop {
                tokio::time::sleep(PING_EVERY).await;
                match tokio::time::timeout(PING_EVERY, client.simple_query("SELECT 1")).await {
                    Ok(result) => {
                        result?;
                    }
                    Err(_) => {
                        tracing::warn!("the cache listener's connection stopped answering; reconnecting");
                        return Ok(());
                    }
                }
            }
        };
        tokio::select! {
            ended = messages => ended,
            ended = watch => ended,
        }
    }
}
