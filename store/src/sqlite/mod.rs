//! The embedded SQLite store: one file in the data directory.
//!
//! WAL mode with `synchronous=FULL`: a transaction is on disk before the request that
//! made it is acknowledged, so it survives `kill -9` and power loss alike. Every change
//! to a dataset goes through one writer thread, in a transaction that re-checks the
//! dataset's SyncCount and every limit that the change could break; so concurrent
//! updates are serialised, the loser gets a conflict, and no limit can be raced past.
//! The writer commits the jobs that queued while it was busy in one transaction (one
//! fsync), each under its own savepoint.
//!
//! The database holds secrets (the root and developer secret keys, the session key):
//! it is created 0600 in a 0700 data directory.

mod archive;
mod datasets;
mod functions;
mod identities;
mod recordings;
mod releases;
mod schema;
mod streams;
mod tenants;

use crate::sql::{self, Value};
use crate::update::{self, Change, Found, Step};
use crate::*;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Threads (each with its connection) for reads and occasional writes; WAL lets readers
/// run beside the writer.
const READERS: usize = 4;
/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 256;

enum Job {
    Update(Box<Update>, tokio::sync::oneshot::Sender<UpdateResult>),
    Delete {
        pool: String,
        identity: String,
        name: String,
        by: String,
        reply: tokio::sync::oneshot::Sender<Result<Option<DatasetRow>>>,
    },
    /// Invocation rows wait in [`InvocationLog`]: the first of a window, or many.
    LogRows,
    Recording {
        tenant: String,
        name: String,
        recording: Box<Recording>,
    },
    Purge,
    /// Writes the invocation rows that wait ([`InvocationLog`]); answered once on disk.
    FlushInvocations(tokio::sync::oneshot::Sender<Result<()>>),
    /// Moves the write-ahead log into the database and empties it, after the batch
    /// commits; answers whether it could (readers may hold the log a moment).
    Checkpoint(tokio::sync::oneshot::Sender<Result<bool>>),
    /// A shared rule run by the writer, in its batch (under a savepoint), for writes that
    /// come often enough that taking the database's write lock beside the writer would
    /// stall it (the stream publisher's lease and removals).
    Rule(Box<dyn WriterRule>),
}

/// A rule the writer runs: `apply` in the batch's transaction, then `answer` once the
/// batch committed (or failed).
trait WriterRule: Send {
    fn apply(&mut self, tx: &Connection) -> Result<()>;
    fn answer(self: Box<Self>, committed: std::result::Result<(), StoreError>);
}

struct TypedRule<T, F> {
    rule: Option<F>,
    value: Option<Result<T>>,
    reply: tokio::sync::oneshot::Sender<Result<T>>,
}

impl<T: Send, F: FnOnce(&Lite) -> Result<T> + Send> WriterRule for TypedRule<T, F> {
    fn apply(&mut self, tx: &Connection) -> Result<()> {
        let Some(rule) = self.rule.take() else { return Ok(()) };
        match rule(&Lite(tx)) {
            Ok(v) => {
                self.value = Some(Ok(v));
                Ok(())
            }
            Err(e) => {
                let back = e.for_each();
                self.value = Some(Err(e));
                Err(back)
            }
        }
    }

    fn answer(self: Box<Self>, committed: std::result::Result<(), StoreError>) {
        let answer = match committed {
            Ok(()) => self.value.unwrap_or_else(|| Err(StoreError::Other("lost answer".into()))),
            Err(e) => Err(e),
        };
        let _ = self.reply.send(answer);
    }
}

/// Owned copies of a call's borrowed arguments, under the same names, for work sent to
/// a reader thread.
macro_rules! owned {
    ($($arg:ident),+) => { $(let $arg = $arg.to_owned();)+ };
}
use owned;

/// Work for a reader thread, with that thread's connection.
type Task = Box<dyn FnOnce(&mut Connection) + Send>;

/// The SQLite store.
///
/// SQLite's calls block (on the disk, on a busy database's lock), so none runs on the
/// async runtime's threads: updates and deletions go to the writer thread, every other
/// call to a reader thread ([`Sqlite::run`]), and the async side only awaits the answer.
pub struct Sqlite {
    readers: std::sync::mpsc::Sender<Task>,
    writer: Mutex<std::sync::mpsc::Sender<Job>>,
    /// For the synchronous callers: import (on a thread of its own) and tests.
    conn: Mutex<Connection>,
    /// The database file: an export reads from a connection of its own (it may hold its
    /// snapshot as long as a slow client takes).
    path: std::path::PathBuf,
    /// The bound of each pool's outbox ([`Streams::set_outbox_max`]), read by the writer.
    outbox_max: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Invocation rows on their way to the writer.
    log: std::sync::Arc<InvocationLog>,
}

/// Makes the database file private before SQLite opens it; SQLite gives its `-wal` and
/// `-shm` files the database file's mode.
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        if Path::new(&p).exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// A stored answer; this process wrote it, so it decodes (an empty answer otherwise).
fn decode_answer(answer: &str) -> Vec<RecordRow> {
    serde_json::from_str(answer).unwrap_or_default()
}

/// A connection or transaction running the statements both backends share.
pub(super) struct Lite<'a>(pub &'a Connection);

impl sql::Db for Lite<'_> {
    // An update's transaction is `IMMEDIATE`: it holds the database until it ends.
    const FOR_UPDATE: &'static str = "";
    const FOR_SHARE: &'static str = "";
    const RECORDS_FOLLOW_DATASETS: bool = false;

    async fn take_turns(&self, _key: &str) -> Result<()> {
        Ok(())
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let mut stmt = self.0.prepare_cached(&numbered(sql))?;
        Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>> {
        let mut stmt = self.0.prepare_cached(&numbered(sql))?;
        let n = stmt.column_count();
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |row| {
            (0..n).map(|i| row.get::<_, rusqlite::types::Value>(i).map(from_sql)).collect()
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// A shared statement's `$1`, `$2`, … as SQLite's `?1`, `?2`, …: SQLite numbers `$name`
/// parameters in the order they first appear, not by their digits.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) { '?' } else { c });
    }
    out
}

pub(super) fn from_sql(value: rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as V;
    match value {
        V::Null => Value::Null,
        V::Integer(i) => Value::Integer(i),
        V::Real(f) => Value::Real(f),
        V::Text(s) => Value::Text(s),
        V::Blob(b) => Value::Blob(b),
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef;
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

const DATASET_COLUMNS: &str = "d.name, d.sync_count, d.created, d.modified, d.modified_by, d.deleted, d.deleted_at,
    (SELECT COUNT(*) FROM records r WHERE r.pool_id = d.pool_id AND r.identity_id = d.identity_id
         AND r.dataset = d.name AND r.value IS NOT NULL),
    (SELECT COALESCE(SUM(LENGTH(CAST(r.key AS BLOB)) + LENGTH(CAST(r.value AS BLOB))), 0) FROM records r
         WHERE r.pool_id = d.pool_id AND r.identity_id = d.identity_id AND r.dataset = d.name
         AND r.value IS NOT NULL)";

fn dataset_from_row(r: &rusqlite::Row) -> rusqlite::Result<DatasetRow> {
    Ok(DatasetRow {
        name: r.get(0)?,
        sync_count: r.get(1)?,
        created: r.get(2)?,
        modified: r.get(3)?,
        modified_by: r.get(4)?,
        deleted: r.get::<_, i64>(5)? != 0,
        deleted_at: r.get(6)?,
        num_records: r.get(7)?,
        data_storage: r.get(8)?,
    })
}

const RECORD_COLUMNS: &str = "key, value, sync_count, modified, modified_by, device_modified_ms";

fn record_from_row(r: &rusqlite::Row) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        key: r.get(0)?,
        value: r.get(1)?,
        sync_count: r.get(2)?,
        modified: r.get(3)?,
        modified_by: r.get(4)?,
        device_modified_ms: r.get(5)?,
    })
}

/// Bytes the write-ahead log keeps after a checkpoint has emptied it.
const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// Copies the write-ahead log into the database and truncates it to nothing, waiting at
/// most `wait` for readers to leave it; whether it did. Without this the log only ever
/// grows while readers keep it in use (a busy server) and after a large transaction
/// (an import), and every start reads all of it before serving.
pub(super) fn checkpoint(conn: &Connection, wait: std::time::Duration) -> Result<bool> {
    conn.busy_timeout(wait)?;
    let done = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The first column is 1 when readers or a writer kept it from finishing.
    Ok(done? == 0)
}

/// How long a statement waits for the database's lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps the write-ahead log and its index (`-wal`, `-shm`) when the last connection
/// closes, instead of deleting them. Opening a WAL database needs both; a server stopped
/// on a full disk could not make them again, and so could not start to serve reads.
fn keep_wal_files(conn: &Connection) -> Result<()> {
    let mut on: std::ffi::c_int = 1;
    // SAFETY: `handle` is this open connection's; the file control reads and writes the
    // one int it is given, which outlives the call.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut on).cast(),
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        return Err(StoreError::Other(format!("cannot keep the write-ahead log's files (SQLite error {rc})")));
    }
    Ok(())
}

/// A connection to the database at `path`, set up as every connection of the store is.
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // Every statement the store runs stays prepared (rusqlite keeps 16 by default, fewer
    // than one connection's rules use, so the rest were parsed again and again).
    conn.set_prepared_statement_cache_capacity(256);
    // And stays planned: without the query planner stability guarantee SQLite parses and
    // plans a statement again whenever a parameter its plan looked at is bound anew (a
    // bound LIMIT, a column compared beside a partial index, an OR), which is every run:
    // a quarter of a busy server's CPU. Our statements' plans are index lookups that no
    // bound value would change.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    keep_wal_files(&conn)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The log is truncated to this after a checkpoint that empties it.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    Ok(conn)
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`, private to this user, and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> Result<Sqlite> {
        private_file(path).map_err(|e| StoreError::Other(e.to_string()))?;
        let connect = || connect(path);
        let mut conn = connect()?;
        schema::migrate(&mut conn)?;
        // What a stopped process left in the log goes into the database now, once, so
        // the log starts empty (nothing else uses the database yet). Best effort: on a
        // full disk it cannot, and the server must still start to serve reads.
        if let Err(e) = checkpoint(&conn, BUSY_TIMEOUT) {
            tracing::warn!("cannot checkpoint the database's log at start-up: {e}");
        }
        let spawn_failed = |e: std::io::Error| StoreError::Other(format!("cannot start a database thread: {e}"));
        let (readers, tasks) = std::sync::mpsc::channel::<Task>();
        let tasks = std::sync::Arc::new(Mutex::new(tasks));
        for i in 0..READERS {
            let (mut conn, tasks) = (connect()?, tasks.clone());
            std::thread::Builder::new()
                .name(format!("synctrig-reader-{i}"))
                .spawn(move || {
                    // Ends when the store is dropped (its sender with it).
                    loop {
                        // The queue's lock only while taking a task, not while running it.
                        let next = tasks.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(task) = next else { break };
                        // A task that panics drops its answer (its caller gets an error);
                        // the thread and its connection serve on.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task(&mut conn)));
                    }
                })
                .map_err(spawn_failed)?;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let writer_conn = connect()?;
        let outbox_max = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(crate::streams::DEFAULT_OUTBOX_MAX));
        let writer_outbox_max = outbox_max.clone();
        let log = std::sync::Arc::new(InvocationLog::default());
        let writer_log = log.clone();
        std::thread::Builder::new()
            .name("synctrig-writer".into())
            .spawn(move || group_commit(writer_conn, rx, &writer_outbox_max, &writer_log))
            .map_err(spawn_failed)?;
        Ok(Sqlite { readers, writer: Mutex::new(tx), conn: Mutex::new(conn), path: path.to_owned(), outbox_max, log })
    }

    /// Runs `work` on a reader thread with its connection, and answers what it answers.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move |conn| {
            let _ = reply.send(work(conn));
        });
        let stopped = || StoreError::Other("the database reader stopped".into());
        self.readers.send(task).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// [`Sqlite::run`] for a shared rule, in one transaction (`IMMEDIATE` when it writes).
    async fn rule<T: Send + 'static>(
        &self,
        writes: bool,
        rule: impl FnOnce(&Lite) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.run(move |conn| {
            let behavior = if writes { TransactionBehavior::Immediate } else { TransactionBehavior::Deferred };
            let tx = conn.transaction_with_behavior(behavior)?;
            let out = rule(&Lite(&tx))?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// The connection of the synchronous callers.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn submit(&self, job: Job) {
        // The writer only stops when the store is dropped.
        let _ = self.writer.lock().unwrap_or_else(|e| e.into_inner()).send(job);
    }

    /// Runs a shared rule on the writer, in its next batch; the answer comes once that
    /// batch is on disk.
    async fn write<T: Send + 'static>(&self, rule: impl FnOnce(&Lite) -> Result<T> + Send + 'static) -> Result<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Rule(Box::new(TypedRule { rule: Some(rule), value: None, reply })));
        answer.await.map_err(|_| StoreError::Other("the database writer stopped".into()))?
    }

    /// Writes the invocation rows the writer holds back ([`InvocationLog`]).
    async fn flush_invocations(&self) -> Result<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::FlushInvocations(reply));
        answer.await.map_err(|_| StoreError::Other("the database writer stopped".into()))?
    }

    /// Queues an update for the group-commit writer; the answer comes once it is on disk.
    pub fn submit_update(&self, update: Update) -> tokio::sync::oneshot::Receiver<UpdateResult> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Update(Box::new(update), tx));
        rx
    }

    /// The dataset row with its live size.
    fn dataset_row(conn: &Connection, pool: &str, identity: &str, name: &str) -> Result<Option<DatasetRow>> {
        Ok(conn
            .prepare_cached(&format!(
                "SELECT {DATASET_COLUMNS} FROM datasets d WHERE d.pool_id = ?1 AND d.identity_id = ?2 AND d.name = ?3"
            ))?
            .query_row(params![pool, identity, name], dataset_from_row)
            .optional()?)
    }

    fn live_datasets(conn: &Connection, pool: &str, identity: &str) -> Result<usize> {
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM datasets WHERE pool_id = ?1 AND identity_id = ?2 AND deleted = 0")?
            .query_row(params![pool, identity], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Applies one update inside the writer's transaction, if the dataset's SyncCount is
    /// still `expected`; otherwise answers a repeat of an applied update with its stored
    /// answer, and anything else with a conflict.
    fn apply_update(tx: &Connection, u: &Update, outbox_max: i64) -> Result<UpdateOutcome> {
        let (pool, identity, name) = (u.pool.as_str(), u.identity.as_str(), u.name.as_str());
        // Checked in the transaction: a merge moves the identity's datasets away, and a
        // write landing after it would be left on a disabled identity.
        let live: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM identities WHERE identity_id = ?1 AND pool_id = ?2 AND merged_into IS NULL)")?
            .query_row(params![identity, pool], |r| r.get(0))?;
        let found = tx
            .prepare_cached(
                "SELECT sync_count, deleted FROM datasets WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3",
            )?
            .query_row(params![pool, identity, name], |r| {
                Ok(Found { sync_count: r.get(0)?, deleted: r.get::<_, i64>(1)? != 0 })
            })
            .optional()?;
        let full = || Ok(Self::live_datasets(tx, pool, identity)? >= u.max_datasets);
        let (change, count) = match update::decide(live, found, u.expected, u.writes.len(), full)? {
            Step::IdentityGone => return Ok(UpdateOutcome::IdentityGone),
            Step::TooManyDatasets => return Ok(UpdateOutcome::TooManyDatasets),
            Step::Stale => {
                let stored: Option<(String, String)> = tx
                    .prepare_cached(
                        "SELECT request_hash, answer FROM update_answers
                         WHERE pool_id = ?1 AND identity_id = ?2 AND dataset = ?3 AND token_hash = ?4",
                    )?
                    .query_row(params![pool, identity, name, u.idempotency.token_hash], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                return Ok(match stored {
                    Some((request, answer)) if request == u.idempotency.request_hash => {
                        UpdateOutcome::Replayed(decode_answer(&answer))
                    }
                    _ => UpdateOutcome::Conflict,
                });
            }
            Step::Write { change, count } => (change, count),
        };
        let t = now();
        let sql = match change {
            Change::Keep => None,
            Change::Bump => Some(
                "UPDATE datasets SET sync_count = ?4, modified = ?5, modified_by = ?6
                 WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3",
            ),
            Change::Recreate => Some(
                "UPDATE datasets SET sync_count = ?4, created = ?5, modified = ?5, modified_by = ?6, deleted = 0
                 WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3",
            ),
            Change::Create => Some(
                "INSERT INTO datasets (pool_id, identity_id, name, sync_count, created, modified, modified_by, deleted, deleted_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, 0, 0)",
            ),
        };
        if let Some(sql) = sql {
            tx.prepare_cached(sql)?.execute(params![pool, identity, name, count, t, u.by])?;
        }
        let mut written = Vec::with_capacity(u.writes.len());
        {
            let mut stmt = tx.prepare_cached(
                // An upsert, not REPLACE: the usage triggers see an update (a REPLACE's
                // delete fires no trigger).
                "INSERT INTO records (pool_id, identity_id, dataset, key, value, sync_count, modified, modified_by, device_modified_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (pool_id, identity_id, dataset, key) DO UPDATE SET value = excluded.value,
                     sync_count = excluded.sync_count, modified = excluded.modified, modified_by = excluded.modified_by,
                     device_modified_ms = excluded.device_modified_ms",
            )?;
            for w in &u.writes {
                let device = u.device_modified_ms.get(&w.key).copied();
                stmt.execute(params![pool, identity, name, w.key, w.value, count, t, u.by, device])?;
                written.push(RecordRow {
                    key: w.key.clone(),
                    value: w.value.clone(),
                    sync_count: count,
                    modified: t,
                    modified_by: u.by.clone(),
                    device_modified_ms: device,
                });
            }
        }
        let answer = serde_json::to_string(&written).unwrap_or_default();
        if !written.is_empty() {
            // One answer per dataset: this update's replaces the last one's.
            tx.prepare_cached(
                "INSERT OR REPLACE INTO update_answers (pool_id, identity_id, dataset, token_hash, request_hash, answer, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                pool,
                identity,
                name,
                u.idempotency.token_hash,
                u.idempotency.request_hash,
                answer,
                u.idempotency.expires
            ])?;
        }
        if count != u.expected {
            let change = crate::streams::Change {
                pool_id: pool,
                identity_id: identity,
                dataset: name,
                sync_count: count,
                kind: crate::streams::ChangeKind::Update,
                records_json: &answer,
                device_id: u.device_id.as_deref(),
            };
            sql::ready(sql::streams::enqueue(&Lite(tx), &change, outbox_max))?;
        }
        Ok(UpdateOutcome::Applied(written))
    }

    fn apply_delete(
        tx: &Connection,
        pool: &str,
        identity: &str,
        name: &str,
        by: &str,
        outbox_max: i64,
    ) -> Result<Option<DatasetRow>> {
        let Some(row) = Self::dataset_row(tx, pool, identity, name)?.filter(|d| !d.deleted) else {
            return Ok(None);
        };
        tx.execute(
            "DELETE FROM records WHERE pool_id = ?1 AND identity_id = ?2 AND dataset = ?3",
            params![pool, identity, name],
        )?;
        tx.execute(
            "UPDATE datasets SET deleted = 1, sync_count = sync_count + 1, deleted_at = sync_count + 1,
                 modified = ?4, modified_by = ?5
             WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3",
            params![pool, identity, name, now(), by],
        )?;
        let change = crate::streams::Change::deletion(pool, identity, name, row.sync_count + 1);
        sql::ready(sql::streams::enqueue(&Lite(tx), &change, outbox_max))?;
        Ok(Some(row))
    }

    fn purge(tx: &Connection) -> Result<()> {
        let t = now();
        tx.execute("DELETE FROM credentials WHERE expires IS NOT NULL AND expires < ?1", [t])?;
        tx.execute("DELETE FROM update_answers WHERE expires < ?1", [t])?;
        sql::ready(sql::recordings::sweep(&Lite(tx), now_ms()))
    }
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    /// On one reader: a trip to a reader thread and back costs more than the function's
    /// two lookups.
    async fn snapshot_and_function(
        &self,
        DatasetKey { pool, identity, name }: DatasetKey<'_>,
        (tenant, function, qualifier): (&str, &str, &Qualifier),
    ) -> Result<(Snapshot, Option<Resolved>)> {
        owned!(pool, identity, name, tenant, function);
        let qualifier = qualifier.clone();
        self.run(move |conn| {
            let snapshot = Self::read_snapshot(conn, &pool, &identity, &name)?;
            let resolved = sql::ready(sql::releases::resolve(&Lite(conn), &tenant, &function, &qualifier))?;
            Ok((snapshot, resolved))
        })
        .await
    }
}

/// The writer thread: takes every queued job, applies them in one transaction (each
/// under its own savepoint, so one failing job spoils no other), commits once — one
/// fsync for the batch — and only then answers.
fn group_commit(
    mut conn: Connection,
    jobs: std::sync::mpsc::Receiver<Job>,
    outbox_max: &std::sync::atomic::AtomicI64,
    log: &InvocationLog,
) {
    let mut trims = crate::rows::InvocationTrims::default();
    // Since when invocation rows are known to wait.
    let mut window: Option<std::time::Instant> = None;
    loop {
        // With rows waiting, no job in their time (or the store dropped) makes a batch of
        // them alone.
        let (first, waited_out, closing) = match window {
            None => match jobs.recv() {
                Ok(job) => (Some(job), false, false),
                Err(_) => return, // The store was dropped.
            },
            Some(since) => match jobs.recv_timeout(INVOCATION_LOG_EVERY.saturating_sub(since.elapsed())) {
                Ok(job) => (Some(job), false, false),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => (None, true, false),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => (None, true, true),
            },
        };
        let outbox_max = outbox_max.load(std::sync::atomic::Ordering::Relaxed);
        let mut batch = Vec::new();
        let mut next = first;
        while let Some(job) = next {
            match job {
                Job::LogRows => {
                    window.get_or_insert_with(std::time::Instant::now);
                }
                job => batch.push(job),
            }
            next = if batch.len() < MAX_BATCH { jobs.try_recv().ok() } else { None };
        }
        // Invocation rows are written once they have waited their time (with a batch of
        // updates, or in a commit of their own if none comes), or when a listing or a
        // checkpoint (at shutdown) asks, or when many wait; not with every batch, so that
        // commits do not each carry the log's pages (BENCHMARKS.md: syncs with a trigger
        // 5–11% faster).
        let asked = batch.iter().any(|j| matches!(j, Job::FlushInvocations(_) | Job::Checkpoint(_)));
        let due =
            asked || waited_out || window.is_some_and(|since| since.elapsed() >= INVOCATION_LOG_EVERY) || log.full();
        if batch.is_empty() && !due {
            continue;
        }
        // Taken before the transaction: rows lost with a batch that fails are gone, and
        // the next row tells the writer again (none is left waiting untold).
        let log_rows = if due {
            window = None;
            log.take()
        } else {
            Vec::new()
        };
        let mut updates = Vec::new();
        let mut deletes = Vec::new();
        let outcome = (|| -> Result<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut functions = std::collections::BTreeSet::new();
            let mut recorded = std::collections::BTreeSet::new();
            let savepoint = |f: &mut dyn FnMut() -> Result<()>| -> Result<Result<()>> {
                // Prepared once: two of these per job were the writer's largest parsing cost.
                tx.prepare_cached("SAVEPOINT one_job")?.execute([])?;
                let result = f();
                if result.is_err() {
                    tx.prepare_cached("ROLLBACK TO one_job")?.execute([])?;
                }
                tx.prepare_cached("RELEASE one_job")?.execute([])?;
                Ok(result)
            };
            // Before the jobs: a function deleted in this batch takes its rows with it.
            if !log_rows.is_empty() {
                // Under a savepoint: rows that cannot be written spoil no update.
                let _ = savepoint(&mut || {
                    functions.extend(insert_invocations(&tx, &log_rows, &mut trims)?);
                    Ok(())
                })?;
            }
            for job in &mut batch {
                match job {
                    Job::Update(update, _) => {
                        let mut answer = None;
                        let done = savepoint(&mut || {
                            answer = Some(Sqlite::apply_update(&tx, update, outbox_max)?);
                            Ok(())
                        })?;
                        updates.push(done.and_then(|()| answer.ok_or_else(|| StoreError::Other("no answer".into()))));
                    }
                    Job::Delete { pool, identity, name, by, .. } => {
                        let mut answer = None;
                        let done = savepoint(&mut || {
                            answer = Some(Sqlite::apply_delete(&tx, pool, identity, name, by, outbox_max)?);
                            Ok(())
                        })?;
                        deletes.push(done.and_then(|()| answer.ok_or_else(|| StoreError::Other("no answer".into()))));
                    }
                    Job::LogRows | Job::FlushInvocations(_) => {}
                    Job::Recording { tenant, name, recording } => {
                        // Under a savepoint: a recording that cannot be written spoils no update.
                        let _ =
                            savepoint(&mut || sql::ready(sql::recordings::add(&Lite(&tx), tenant, name, recording)))?;
                        recorded.insert((tenant.clone(), name.clone()));
                    }
                    Job::Purge => Sqlite::purge(&tx)?,
                    Job::Checkpoint(_) => {}
                    Job::Rule(rule) => {
                        // Its own error is its answer; the batch goes on.
                        let _ = savepoint(&mut || rule.apply(&tx))?;
                    }
                }
            }
            for (tenant, name) in functions {
                trim_invocations(&tx, &tenant, &name)?;
            }
            for (tenant, name) in recorded {
                sql::ready(sql::recordings::trim(&Lite(&tx), &tenant, &name))?;
            }
            tx.commit()?;
            Ok(())
        })();
        let failed = |e: &StoreError| e.for_each();
        let (mut updates, mut deletes) = (updates.into_iter(), deletes.into_iter());
        for job in batch {
            match job {
                Job::Update(_, reply) => {
                    let answer = match &outcome {
                        Ok(()) => updates.next().unwrap_or_else(|| Err(StoreError::Other("lost answer".into()))),
                        Err(e) => Err(failed(e)),
                    };
                    let _ = reply.send(answer);
                }
                Job::Delete { reply, .. } => {
                    let answer = match &outcome {
                        Ok(()) => deletes.next().unwrap_or_else(|| Err(StoreError::Other("lost answer".into()))),
                        Err(e) => Err(failed(e)),
                    };
                    let _ = reply.send(answer);
                }
                Job::Rule(rule) => rule.answer(outcome.as_ref().map(|_| ()).map_err(failed)),
                Job::Checkpoint(reply) => {
                    let _ = reply.send(checkpoint(&conn, std::time::Duration::from_millis(100)));
                }
                Job::FlushInvocations(reply) => {
                    let _ = reply.send(outcome.as_ref().map(|_| ()).map_err(failed));
                }
                Job::LogRows | Job::Recording { .. } | Job::Purge => {}
            }
        }
        if closing {
            return;
        }
    }
}

/// How long invocation log rows wait to be written (a listing has them written at once).
const INVOCATION_LOG_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Most invocation rows kept waiting.
const INVOCATION_LOG_MAX: usize = 1024;

/// Invocation log rows on their way to the writer, which writes them [`INVOCATION_LOG_EVERY`]
/// after the first of them came (with a batch of updates if one comes): a row costs its
/// caller a lock (only the first since the writer last took them wakes it), and the writer
/// one write of the log's pages per interval, not one per commit.
#[derive(Default)]
pub(super) struct InvocationLog(Mutex<LogRows>);

#[derive(Default)]
struct LogRows {
    rows: Vec<(String, String, InvocationRow)>,
    /// The writer was told that rows wait ([`Job::LogRows`]) and has not taken them yet.
    told: bool,
}

impl InvocationLog {
    fn lock(&self) -> MutexGuard<'_, LogRows> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a row; whether the writer must be told (the first row since it last took
    /// them, or enough to write now). Past a bound (a writer stalled on its disk) rows
    /// are dropped: they are diagnostics, and memory is not theirs to take.
    fn push(&self, tenant: &str, name: &str, row: InvocationRow) -> bool {
        let mut log = self.lock();
        if log.rows.len() >= 8 * INVOCATION_LOG_MAX {
            return false;
        }
        log.rows.push((tenant.to_owned(), name.to_owned(), row));
        let tell = !log.told || log.rows.len() == INVOCATION_LOG_MAX;
        log.told = true;
        tell
    }

    /// Drops the waiting rows of a deleted function.
    pub(super) fn forget(&self, tenant: &str, name: &str) {
        self.lock().rows.retain(|(t, n, _)| (t.as_str(), n.as_str()) != (tenant, name));
    }

    fn full(&self) -> bool {
        self.lock().rows.len() >= INVOCATION_LOG_MAX
    }

    /// Every waiting row; a row added after this tells the writer again.
    fn take(&self) -> Vec<(String, String, InvocationRow)> {
        let mut log = self.lock();
        log.told = false;
        std::mem::take(&mut log.rows)
    }
}

/// Inserts invocation rows in `tx` (of a function with more rows here than are kept, only
/// the newest kept count: [`crate::rows::newest_invocations`]); the functions whose rows are
/// due a trim.
fn insert_invocations(
    tx: &Connection,
    rows: &[(String, String, InvocationRow)],
    trims: &mut crate::rows::InvocationTrims,
) -> Result<Vec<(String, String)>> {
    let functions: Vec<(&str, &str)> = rows.iter().map(|(t, n, _)| (t.as_str(), n.as_str())).collect();
    let (insert, mut due) = crate::rows::newest_invocations(&functions);
    let mut statement = tx.prepare_cached(
        "INSERT INTO invocations (tenant, name, version, at, outcome, wall_us, fuel, peak_memory, log)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for ((tenant, name, row), _) in rows.iter().zip(insert).filter(|(_, insert)| *insert) {
        statement.execute(params![
            tenant,
            name,
            row.version,
            row.at,
            row.outcome,
            row.wall_us,
            row.fuel,
            row.peak_memory_bytes,
            row.log
        ])?;
        if trims.inserted(tenant, name) {
            due.push((tenant.clone(), name.clone()));
        }
    }
    Ok(due)
}

/// Keeps a function's newest [`KEEP_INVOCATIONS`] invocation rows.
fn trim_invocations(tx: &Connection, tenant: &str, name: &str) -> Result<()> {
    tx.prepare_cached(
        "DELETE FROM invocations WHERE tenant = ?1 AND name = ?2 AND id <= (
             SELECT id FROM invocations WHERE tenant = ?1 AND name = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)",
    )?
    .execute(params![tenant, name, KEEP_INVOCATIONS])?;
    Ok(())
}

/// Runs a store call to its end, for the synchronous tests (SQLite's calls do not wait on
/// the runtime, except for the writer's answer).
#[cfg(test)]
pub(crate) fn wait<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(call)
}

/// An empty store in a temporary directory, for tests.
#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, Sqlite) {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&dir.path().join("db")).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::schema::MIGRATIONS;
    use super::*;
    use crate::{MergeOutcome, MergeRule, merged_dataset_name, prepare_data_dir};
    use std::collections::BTreeMap;
    use synctrig_core::Write;
    use synctrig_core::limits;

    type Store = Sqlite;

    /// A store with identity `i` of pool `p`, which the updates below write as.
    fn store() -> (tempfile::TempDir, Store) {
        let (dir, store) = temp_store();
        store
            .conn()
            .execute("INSERT INTO identities (identity_id, pool_id, created) VALUES ('i', 'p', 0)", [])
            .unwrap();
        store
            .conn()
            .execute("INSERT INTO pools (pool_id, name, tenant, created) VALUES ('p', 'p', 't', 0)", [])
            .unwrap();
        (dir, store)
    }

    fn update(expected: i64, writes: &[(&str, Option<&str>)], token: &str) -> Update {
        Update {
            pool: "p".into(),
            identity: "i".into(),
            name: "d".into(),
            expected,
            writes: writes.iter().map(|(k, v)| Write { key: k.to_string(), value: v.map(str::to_owned) }).collect(),
            device_modified_ms: BTreeMap::new(),
            by: "me".into(),
            max_datasets: 2,
            idempotency: Idempotency {
                token_hash: token.into(),
                request_hash: format!("{writes:?}"),
                expires: now() + 60,
            },
            device_id: None,
        }
    }

    async fn apply(store: &Store, u: Update) -> UpdateOutcome {
        store.submit_update(u).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn an_update_applies_once_and_its_retry_gets_the_same_answer() {
        let (_dir, store) = store();
        let first = apply(&store, update(0, &[("k", Some("v"))], "t1")).await;
        let UpdateOutcome::Applied(rows) = &first else { panic!("{first:?}") };
        assert_eq!(rows[0].sync_count, 1);
        // The same request again (a retry): the stored answer, nothing written.
        assert_eq!(apply(&store, update(0, &[("k", Some("v"))], "t1")).await, UpdateOutcome::Replayed(rows.clone()));
        assert_eq!(store.dataset(DatasetKey::new("p", "i", "d")).await.unwrap().unwrap().sync_count, 1);
        // Another request on the same stale token: a conflict.
        assert_eq!(apply(&store, update(0, &[("k", Some("w"))], "t1")).await, UpdateOutcome::Conflict);
        assert_eq!(apply(&store, update(0, &[("k", Some("v"))], "t2")).await, UpdateOutcome::Conflict);
    }

    #[tokio::test]
    async fn the_dataset_limit_is_checked_in_the_writers_transaction() {
        let (_dir, store) = store();
        // Three creators that each saw room for one more (limit 2): one is refused.
        let make = |name: &str| Update { name: name.into(), ..update(0, &[("k", Some("v"))], name) };
        let answers = futures_join(vec![
            store.submit_update(make("a")),
            store.submit_update(make("b")),
            store.submit_update(make("c")),
        ])
        .await;
        let refused = answers.iter().filter(|a| **a == UpdateOutcome::TooManyDatasets).count();
        assert_eq!(refused, 1, "{answers:?}");
        assert_eq!(Store::live_datasets(&store.conn(), "p", "i").unwrap(), 2);
    }

    async fn futures_join(rxs: Vec<tokio::sync::oneshot::Receiver<UpdateResult>>) -> Vec<UpdateOutcome> {
        let mut out = Vec::new();
        for rx in rxs {
            out.push(rx.await.unwrap().unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_deletion_is_remembered_after_recreation() {
        let (_dir, store) = store();
        apply(&store, update(0, &[("k", Some("v"))], "t1")).await;
        let deleted = store.delete_dataset(DatasetKey::new("p", "i", "d"), "me").await.unwrap().unwrap();
        assert_eq!(deleted.sync_count, 1);
        let row = store.dataset(DatasetKey::new("p", "i", "d")).await.unwrap().unwrap();
        assert!(row.deleted && row.sync_count == 2 && row.deleted_at == 2);
        apply(&store, update(2, &[("k", Some("again"))], "t2")).await;
        let row = store.dataset(DatasetKey::new("p", "i", "d")).await.unwrap().unwrap();
        assert!(!row.deleted && row.sync_count == 3 && row.deleted_at == 2);
    }

    #[tokio::test]
    async fn recreating_an_empty_dataset_is_a_new_sync_count() {
        let (_dir, store) = store();
        apply(&store, update(0, &[("k", Some("v"))], "t1")).await;
        store.delete_dataset(DatasetKey::new("p", "i", "d"), "me").await.unwrap();
        apply(&store, update(2, &[], "t2")).await;
        let row = store.dataset(DatasetKey::new("p", "i", "d")).await.unwrap().unwrap();
        assert!(!row.deleted && row.sync_count == 3);
    }

    #[tokio::test]
    async fn a_next_token_cannot_raise_the_listings_bound() {
        let (_dir, store) = store();
        apply(&store, update(0, &[("k", Some("v"))], "t1")).await;
        let page = store.records_page(DatasetKey::new("p", "i", "d"), 0, Some(999), None, 10).await.unwrap();
        assert_eq!(page.upper, 1);
    }

    #[tokio::test]
    async fn pages_are_keyset_bounded_by_the_first_pages_count() {
        let (_dir, store) = store();
        let writes: Vec<(String, Option<&str>)> = (0..5).map(|i| (format!("k{i}"), Some("v"))).collect();
        let refs: Vec<(&str, Option<&str>)> = writes.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        apply(&store, update(0, &refs, "t1")).await;
        let at = DatasetKey::new("p", "i", "d");
        let first = store.records_page(at, 0, None, None, 2).await.unwrap();
        assert_eq!((first.upper, first.records.len(), first.more), (1, 2, true));
        // k0 changes between pages: it moves past the listing's bound, k2 is not skipped.
        apply(&store, update(1, &[("k0", Some("w"))], "t2")).await;
        let last = first.records.last().unwrap();
        let cursor = RecordCursor { sync_count: last.sync_count, key: last.key.clone() };
        let second = store.records_page(at, 0, Some(first.upper), Some(&cursor), 10).await.unwrap();
        let keys: Vec<&str> = second.records.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["k2", "k3", "k4"]);
        assert!(!second.more);
        // The next incremental sync from the listing's bound gets the change.
        let next = store.records_page(at, first.upper, None, None, 10).await.unwrap();
        assert_eq!(
            next.records.iter().map(|r| (r.key.as_str(), r.value.as_deref())).collect::<Vec<_>>(),
            [("k0", Some("w"))]
        );
    }

    #[tokio::test]
    async fn a_merged_away_identity_writes_nothing() {
        let (_dir, store) = store();
        store
            .conn()
            .execute("INSERT INTO identities (identity_id, pool_id, created) VALUES ('t', 'p', 0)", [])
            .unwrap();
        assert!(matches!(apply(&store, update(0, &[("k", Some("v"))], "a")).await, UpdateOutcome::Applied(_)));
        assert!(matches!(
            store.merge_identities("p", "i", "t", MergeRule::SourceUnauthenticated).await.unwrap(),
            MergeOutcome::Merged(_)
        ));
        assert!(matches!(apply(&store, update(1, &[("k", Some("w"))], "b")).await, UpdateOutcome::IdentityGone));
        let mut other_pool = update(0, &[("k", Some("v"))], "c");
        other_pool.identity = "t".into();
        other_pool.pool = "q".into();
        assert!(matches!(apply(&store, other_pool).await, UpdateOutcome::IdentityGone));
    }

    #[tokio::test]
    async fn expired_credentials_and_answers_are_swept() {
        let (_dir, store) = store();
        store.issue_identity_credentials("p", "i", false, -1).await.unwrap();
        let live = store.issue_identity_credentials("p", "i", false, 60).await.unwrap().access_key;
        let mut stale = update(0, &[("k", Some("v"))], "old");
        stale.idempotency.expires = now() - 1;
        apply(&store, stale).await;
        store.submit_purge();
        // A job queued after the sweep is answered after it commits.
        apply(&store, update(1, &[("k", Some("w"))], "new")).await;
        assert!(store.credential(&live).await.unwrap().is_some());
        let conn = store.conn();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM credentials"), 1);
        assert_eq!(count("SELECT COUNT(*) FROM update_answers"), 1, "only the live token's answer is kept");
    }

    #[test]
    fn function_limits_are_checked_in_the_deploying_transaction() {
        let (_dir, store) = store();
        for i in 0..limits::MAX_FUNCTIONS_PER_TENANT {
            assert_eq!(wait(store.deploy_function("t", &format!("f{i}"), "d", b"w", None, None)).unwrap(), Ok(1));
        }
        assert_eq!(wait(store.function_limit("t", "one-more")).unwrap(), Some(DeployRefused::Functions));
        assert_eq!(wait(store.function_limit("t", "f0")).unwrap(), None);
        let refused = wait(store.deploy_function("t", "one-more", "d", b"w", None, None)).unwrap();
        assert_eq!(refused, Err(DeployRefused::Functions));
        assert_eq!(wait(store.functions("t")).unwrap().len(), limits::MAX_FUNCTIONS_PER_TENANT);
        // A new version of an existing function is not a new function; another tenant has
        // its own count.
        assert_eq!(wait(store.deploy_function("t", "f0", "d", b"w", None, None)).unwrap(), Ok(2));
        assert_eq!(wait(store.deploy_function("u", "f0", "d", b"w", None, None)).unwrap(), Ok(1));
        for v in 3..=limits::MAX_VERSIONS_PER_FUNCTION as i64 {
            assert_eq!(wait(store.deploy_function("t", "f0", "d", b"w", None, None)).unwrap(), Ok(v));
        }
        assert_eq!(wait(store.function_limit("t", "f0")).unwrap(), Some(DeployRefused::Versions));
        // A deploy that expected another latest version is refused in the transaction.
        let stale = wait(store.deploy_function("t", "f1", "d", b"w", None, Some(0))).unwrap();
        assert_eq!(stale, Err(DeployRefused::Changed { latest: 1 }));
        assert_eq!(wait(store.deploy_function("t", "f1", "d", b"w", None, Some(1))).unwrap(), Ok(2));
        assert_eq!(
            wait(store.deploy_function("t", "f0", "d", b"w", None, None)).unwrap(),
            Err(DeployRefused::Versions)
        );
        let versions = wait(store.function_versions("t", "f0")).unwrap();
        assert_eq!(versions.len(), limits::MAX_VERSIONS_PER_FUNCTION);
        assert_eq!(versions[0].version, limits::MAX_VERSIONS_PER_FUNCTION as i64, "newest first");
    }

    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        prepare_data_dir(&data).unwrap();
        let _store = Store::open(&data.join("db")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("db")), 0o600);
        assert_eq!(mode(&data.join("db-wal")), 0o600);
    }

    /// A database at `version` as that release left it: its migrations applied, no later.
    fn at_schema(path: &std::path::Path, version: usize) -> Connection {
        let conn = Connection::open(path).unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64).unwrap();
        conn
    }

    #[test]
    fn migrations_upgrade_a_first_version_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let conn = at_schema(&path, 1);
            conn.execute_batch(
                "INSERT INTO datasets VALUES ('p', 'i', 'd', 4, 0, 0, 'me', 1);
                 INSERT INTO datasets VALUES ('p', 'i', 'e', 1, 0, 0, 'me', 0);
                 INSERT INTO records VALUES ('p', 'i', 'e', 'k', 'v', 1, 0, 'me', 1795810224);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let row = wait(store.dataset(DatasetKey::new("p", "i", "d"))).unwrap().unwrap();
        assert_eq!((row.deleted, row.deleted_at), (true, 4));
        let page = wait(store.records_page(DatasetKey::new("p", "i", "e"), 0, Some(1), None, 10)).unwrap();
        assert_eq!(page.records[0].device_modified_ms, Some(1_795_810_224_000));
    }

    #[test]
    fn merged_names_past_128_characters_are_shortened_on_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let base = "d".repeat(128);
        let source = "us-east-1:0123456789abcdef0123456789abcdef";
        let (long, taken) = (format!("{base}.{source}"), merged_dataset_name(&base, source, 1));
        {
            let conn = at_schema(&path, 4);
            // A merge before schema 5 named it past 128; the target also has a dataset
            // under the name a merge makes now, which the rename must not take.
            conn.execute(
                "INSERT INTO datasets (pool_id, identity_id, name, sync_count, created, modified, modified_by,
                                       merged_from, merged_base)
                 VALUES ('p', 'i', ?1, 2, 0, 0, 'me', ?2, ?3), ('p', 'i', ?4, 1, 0, 0, 'me', NULL, NULL)",
                params![long, source, base, taken],
            )
            .unwrap();
            conn.execute("INSERT INTO records VALUES ('p', 'i', ?1, 'k', 'v', 2, 0, 'me', NULL)", [&long]).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let renamed = merged_dataset_name(&base, source, 2);
        assert!(wait(store.dataset(DatasetKey::new("p", "i", &long))).unwrap().is_none());
        assert_eq!(wait(store.dataset(DatasetKey::new("p", "i", &renamed))).unwrap().unwrap().num_records, 1);
        assert_eq!(
            wait(store.dataset(DatasetKey::new("p", "i", &taken))).unwrap().unwrap().num_records,
            0,
            "untouched"
        );
        assert_eq!(store.merged_dataset_names("p", "i", &base).unwrap(), vec![renamed.clone()]);
        let page = wait(store.records_page(DatasetKey::new("p", "i", &renamed), 0, None, None, 10)).unwrap();
        assert_eq!(page.records[0].value.as_deref(), Some("v"));
        assert_eq!(synctrig_core::limits::dataset_name_problem(&renamed), None);
    }

    /// Schema 12 copies the records into a WITHOUT ROWID table: every row (tombstones and
    /// an overflowing value too) as it was, the usage counters as they were and counting on,
    /// the SyncCount index there, and the old table's pages given back to the file system.
    #[test]
    fn records_move_to_a_without_rowid_table_unchanged_on_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let all = "SELECT pool_id, identity_id, dataset, key, value, sync_count, modified, modified_by,
                          device_modified_ms FROM records ORDER BY pool_id, identity_id, dataset, key";
        let read = |conn: &Connection, sql: &str| -> Vec<Vec<rusqlite::types::Value>> {
            let mut stmt = conn.prepare(sql).unwrap();
            let n = stmt.column_count();
            stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect()).unwrap().map(|r| r.unwrap()).collect()
        };
        let (records, usage, size) = {
            let conn = at_schema(&path, 11);
            conn.execute(
                "INSERT INTO datasets (pool_id, identity_id, name, sync_count, created, modified, modified_by)
                 VALUES ('p', 'i', 'd', 3000, 0, 0, 'me')",
                [],
            )
            .unwrap();
            for n in 0..3000 {
                let value = match n % 7 {
                    0 => None,
                    _ if n == 5 => Some("x".repeat(100_000)),
                    _ => Some(format!("value {n}")),
                };
                conn.execute(
                    "INSERT INTO records VALUES ('p', 'i', 'd', ?1, ?2, ?3, 7, 'me', ?4)",
                    params![format!("key {n}"), value, 3000 - n, (n % 2 == 0).then_some(n)],
                )
                .unwrap();
            }
            let size = std::fs::metadata(&path).unwrap().len();
            (read(&conn, all), read(&conn, "SELECT * FROM pool_usage"), size)
        };
        assert_eq!(records.len(), 3000);
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let table: String =
            conn.query_row("SELECT sql FROM sqlite_master WHERE name = 'records'", [], |r| r.get(0)).unwrap();
        assert!(table.ends_with("WITHOUT ROWID"), "{table}");
        assert_eq!(read(&conn, all), records);
        assert_eq!(read(&conn, "SELECT * FROM pool_usage"), usage);
        let objects = read(&conn, "SELECT type, name FROM sqlite_master WHERE tbl_name = 'records' ORDER BY name");
        let names: Vec<String> = objects.iter().map(|o| format!("{:?}", o[1])).collect();
        assert_eq!(
            names.len(),
            5,
            "the table (no index apart for its key), its SyncCount index, three usage triggers: {names:?}"
        );
        assert!(names.iter().any(|n| n.contains("records_by_sync_count")), "{names:?}");
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap();
        assert_eq!(free, 0, "the old table's pages are given back");
        assert!(std::fs::metadata(&path).unwrap().len() < size);
        conn.execute("INSERT INTO records VALUES ('p', 'i', 'd', 'new', 'four', 3001, 7, 'me', NULL)", []).unwrap();
        let bytes: i64 = conn.query_row("SELECT bytes FROM pool_usage", [], |r| r.get(0)).unwrap();
        let rusqlite::types::Value::Integer(before) = usage[0][2] else { panic!("{usage:?}") };
        assert_eq!(bytes, before + 7);
    }

    /// Schema 14 on SQLite: a record without its dataset's row goes (as on PostgreSQL),
    /// its bytes with it; every other record stays; merged identities are found by index.
    #[test]
    fn records_without_their_dataset_go_on_upgrade_to_14() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let bytes =
            |conn: &Connection| -> i64 { conn.query_row("SELECT bytes FROM pool_usage", [], |r| r.get(0)).unwrap() };
        let before = {
            let conn = at_schema(&path, 13);
            conn.execute_batch(
                "INSERT INTO datasets (pool_id, identity_id, name, sync_count, created, modified, modified_by)
                     VALUES ('p', 'i', 'd', 2, 0, 0, 'me');
                 INSERT INTO records VALUES ('p', 'i', 'd', 'kept', 'here', 1, 0, 'me', NULL),
                     ('p', 'i', 'd', 'gone', NULL, 2, 0, 'me', NULL),
                     ('p', 'i', 'nowhere', 'lost', 'never listed', 1, 0, 'me', NULL),
                     ('p', 'j', 'd', 'lost', 'other identity', 1, 0, 'me', NULL);",
            )
            .unwrap();
            bytes(&conn)
        };
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let mut stmt = conn.prepare("SELECT identity_id, dataset, key FROM records ORDER BY 1, 2, 3").unwrap();
        let left: Vec<(String, String, String)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(|r| r.unwrap()).collect();
        let kept = |key: &str| ("i".to_string(), "d".to_string(), key.to_string());
        assert_eq!(left, [kept("gone"), kept("kept")]);
        let lost = ("lost".len() + "never listed".len() + "lost".len() + "other identity".len()) as i64;
        assert_eq!(bytes(&conn), before - lost);
        let plan: String = conn
            .query_row("EXPLAIN QUERY PLAN SELECT identity_id FROM identities WHERE merged_into = 'x'", [], |r| {
                r.get(3)
            })
            .unwrap();
        assert!(plan.contains("identities_by_merged_into"), "{plan}");
    }

    /// Of a function with more rows in one write than are kept, only the newest kept count
    /// are inserted, and its older rows go at once; another function's rows are all written.
    #[test]
    fn a_write_of_many_invocation_rows_inserts_only_the_newest_kept() {
        let (dir, _store) = store();
        let mut conn = Connection::open(dir.path().join("db")).unwrap();
        let row = |n: i64| InvocationRow {
            at: n,
            version: 1,
            outcome: "ok".into(),
            wall_us: n,
            fuel: 0,
            peak_memory_bytes: 0,
            log: String::new(),
        };
        let keep = KEEP_INVOCATIONS;
        let write = |conn: &mut Connection, rows: Vec<(String, String, InvocationRow)>| {
            let mut trims = crate::rows::InvocationTrims::default();
            let tx = conn.transaction().unwrap();
            let due = insert_invocations(&tx, &rows, &mut trims).unwrap();
            for (tenant, name) in due {
                trim_invocations(&tx, &tenant, &name).unwrap();
            }
            tx.commit().unwrap();
        };
        let of = |conn: &Connection, name: &str| -> Vec<i64> {
            let mut stmt = conn.prepare("SELECT wall_us FROM invocations WHERE name = ?1 ORDER BY id").unwrap();
            stmt.query_map([name], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
        };
        let f = |range: std::ops::RangeInclusive<i64>| range.map(|n| ("t".to_owned(), "f".to_owned(), row(n)));
        write(&mut conn, f(1..=10).collect());
        assert_eq!(of(&conn, "f"), (1..=10).collect::<Vec<_>>());
        let mut rows: Vec<_> = f(11..=2 * keep + 50).collect();
        rows.insert(7, ("t".into(), "g".into(), row(-1)));
        rows.push(("t".into(), "g".into(), row(-2)));
        write(&mut conn, rows);
        assert_eq!(of(&conn, "f"), (keep + 51..=2 * keep + 50).collect::<Vec<_>>());
        assert_eq!(of(&conn, "g"), [-1, -2]);
        let inserted: i64 =
            conn.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'invocations'", [], |r| r.get(0)).unwrap();
        assert_eq!(inserted, 10 + keep + 2, "rows the trim would delete are not inserted");
    }

    /// Invocation rows wait in memory (the writer not woken for each) to be written together
    /// in their time, with or without other jobs: a listing writes them first; a deleted
    /// function's waiting rows are not written after it.
    #[tokio::test]
    async fn invocation_rows_are_written_together_and_never_after_their_function() {
        let (_dir, store) = store();
        let row = |n: i64| InvocationRow {
            at: n,
            version: 1,
            outcome: "ok".into(),
            wall_us: n,
            fuel: n,
            peak_memory_bytes: 0,
            log: format!("call {n}"),
        };
        let on_disk = |store: &Store| -> Vec<i64> {
            let conn = store.conn();
            let mut stmt = conn.prepare("SELECT wall_us FROM invocations ORDER BY id").unwrap();
            stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
        };
        let written = |store: &Store, n: i64| {
            let waited = std::time::Instant::now();
            while !on_disk(store).contains(&n) {
                assert!(waited.elapsed() < std::time::Duration::from_secs(10), "row {n} never written");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        };
        store.submit_invocation("t", "f", row(1));
        store.submit_invocation("t", "f", row(2));
        // Listed at once (the listing has them written first).
        let listed = store.invocations("t", "f", 10).await.unwrap();
        assert_eq!(listed.iter().map(|r| r.wall_us).collect::<Vec<_>>(), [2, 1]);
        // Alone, a row is written in its time, with no listing and no other job.
        store.submit_invocation("t", "f", row(3));
        written(&store, 3);
        // Many rows beside updates: all written, in order; the trim keeps the newest.
        let last = INVOCATION_LOG_MAX as i64 + 10;
        for n in 4..=last {
            store.submit_invocation("t", "f", row(n));
        }
        apply(&store, update(0, &[("k", Some("v"))], "t1")).await;
        written(&store, last);
        let kept = on_disk(&store);
        // The newest, none missing among them (only rows the trim would delete are skipped).
        assert!(kept.windows(2).all(|w| w[1] == w[0] + 1) && kept.last() == Some(&last), "{kept:?}");
        assert!((KEEP_INVOCATIONS..=2 * KEEP_INVOCATIONS).contains(&(kept.len() as i64)), "{} rows kept", kept.len());
        // A deleted function's waiting rows are written with it gone, or not at all.
        store.create_tenant("t").await.unwrap();
        store.deploy_function("t", "f", &"0".repeat(64), b"\0asm", None, None).await.unwrap().unwrap();
        store.submit_invocation("t", "f", row(9_999));
        store.delete_function("t", "f").await.unwrap().unwrap();
        store.submit_invocation("t", "g", row(10_000));
        // The checkpoint writes whatever waits.
        store.checkpoint().await.unwrap();
        assert_eq!(on_disk(&store), [10_000]);
    }

    /// Each statement on this connection that SQLite had to prepare again, with how often.
    fn reprepared(conn: &Connection) -> Vec<(String, i32)> {
        use rusqlite::ffi;
        let mut found = Vec::new();
        // SAFETY: the handle is this open connection's, used on its own thread; every
        // statement pointer comes from `sqlite3_next_stmt` and is only read.
        unsafe {
            let mut stmt = ffi::sqlite3_next_stmt(conn.handle(), std::ptr::null_mut());
            while !stmt.is_null() {
                let n = ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_REPREPARE, 0);
                if n > 0 {
                    let sql = std::ffi::CStr::from_ptr(ffi::sqlite3_sql(stmt)).to_string_lossy().into_owned();
                    found.push((sql, n));
                }
                stmt = ffi::sqlite3_next_stmt(conn.handle(), stmt);
            }
        }
        found
    }

    /// A statement SQLite prepares again whenever one of its parameters is bound anew (a
    /// bound LIMIT, a plan that depends on a bound value) is parsed and planned on every
    /// run: the sync path's statements must stay prepared.
    #[tokio::test]
    async fn the_sync_paths_statements_stay_prepared() {
        let (_dir, store) = temp_store();
        store.create_tenant("t").await.unwrap();
        let pool = store.create_pool("t", "us-east-1", "p", true, &Default::default()).await.unwrap();
        let digest = "0".repeat(64);
        store.deploy_function("t", "f", &digest, b"\0asm", None, None).await.unwrap().unwrap();
        for round in 0..40i64 {
            let identity = store.create_identity(&pool.pool_id, "us-east-1").await.unwrap();
            let creds = store.issue_identity_credentials(&pool.pool_id, &identity, false, 3600).await.unwrap();
            store.credential(&creds.access_key).await.unwrap().unwrap();
            store.pool(&pool.pool_id).await.unwrap().unwrap();
            store.identity_pool(&identity).await.unwrap().unwrap();
            let name = format!("d{}", round % 3);
            let key = DatasetKey::new(&pool.pool_id, &identity, &name);
            store.records_page(key, round % 2, None, None, 100).await.unwrap();
            store.snapshot(key).await.unwrap();
            for qualifier in [Qualifier::Latest, Qualifier::Version(1)] {
                store.resolve_function("t", "f", &qualifier).await.unwrap().unwrap();
            }
            let update = Update {
                pool: pool.pool_id.clone(),
                identity: identity.clone(),
                name: name.clone(),
                expected: 0,
                writes: vec![Write { key: format!("k{round}"), value: Some("v".into()) }],
                device_modified_ms: BTreeMap::new(),
                by: identity.clone(),
                max_datasets: 20,
                idempotency: Idempotency {
                    token_hash: format!("t{round}"),
                    request_hash: "r".into(),
                    expires: now() + 60,
                },
                device_id: None,
            };
            assert!(matches!(store.update(update).await.unwrap(), UpdateOutcome::Applied(_)));
            let row = InvocationRow {
                at: now(),
                version: 1,
                outcome: "ok".into(),
                wall_us: round,
                fuel: round,
                peak_memory_bytes: 0,
                log: String::new(),
            };
            store.submit_invocation("t", "f", row);
        }
        // Every reader's statements (a busy reader leaves the next task to another), and
        // the writer's.
        let mut found: Vec<(String, i32)> = Vec::new();
        let store = std::sync::Arc::new(store);
        let mut collect = tokio::task::JoinSet::new();
        for _ in 0..4 * READERS {
            let store = store.clone();
            collect.spawn(async move {
                store
                    .run(|conn| {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        Ok(reprepared(conn))
                    })
                    .await
            });
        }
        while let Some(one) = collect.join_next().await {
            found.extend(one.unwrap().unwrap());
        }
        found.extend(store.write(|tx| Ok(reprepared(tx.0))).await.unwrap());
        found.sort();
        found.dedup();
        assert!(found.iter().all(|(_, n)| *n <= 2), "prepared again and again: {found:#?}");
    }
}
