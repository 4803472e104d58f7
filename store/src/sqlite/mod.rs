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

mod backend;
mod export;
mod identities;

use super::{
    Credential, DatasetHead, DatasetRow, DbError, DeployRefused, FunctionSummary, FunctionVersion, Idempotency,
    InvocationRow, KEEP_INVOCATIONS, Pool, PoolSettings, Principal, RecordCursor, RecordPage, RecordRow, Result,
    Snapshot, Update, UpdateOutcome, UpdateResult, new_cognito_id, now, random_hex, random_key,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use synctrig_runtime::limits;

/// Connections for reads and occasional writes; WAL lets readers run beside the writer.
const CONNECTIONS: usize = 4;
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
    Invocation {
        tenant: String,
        name: String,
        row: InvocationRow,
    },
    Purge,
}

/// The SQLite store.
pub struct Sqlite {
    conns: Vec<Mutex<Connection>>,
    next: std::sync::atomic::AtomicUsize,
    writer: Mutex<std::sync::mpsc::Sender<Job>>,
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

/// Schema migrations, applied in order at start-up; `PRAGMA user_version` is the number
/// applied. Never edit one that has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY, created INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS credentials (
         access_key TEXT PRIMARY KEY, secret TEXT NOT NULL, kind TEXT NOT NULL,
         tenant TEXT, pool_id TEXT, identity_id TEXT, session_token TEXT, expires INTEGER);
     CREATE TABLE IF NOT EXISTS pools (
         pool_id TEXT PRIMARY KEY, name TEXT NOT NULL, tenant TEXT NOT NULL,
         sync_trigger TEXT, created INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS identities (
         identity_id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, created INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS datasets (
         pool_id TEXT NOT NULL, identity_id TEXT NOT NULL, name TEXT NOT NULL,
         sync_count INTEGER NOT NULL, created INTEGER NOT NULL, modified INTEGER NOT NULL,
         modified_by TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (pool_id, identity_id, name));
     CREATE TABLE IF NOT EXISTS records (
         pool_id TEXT NOT NULL, identity_id TEXT NOT NULL, dataset TEXT NOT NULL,
         key TEXT NOT NULL, value TEXT, sync_count INTEGER NOT NULL, modified INTEGER NOT NULL,
         modified_by TEXT NOT NULL, device_modified INTEGER,
         PRIMARY KEY (pool_id, identity_id, dataset, key));
     CREATE TABLE IF NOT EXISTS functions (
         tenant TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
         digest TEXT NOT NULL, wasm BLOB NOT NULL, created INTEGER NOT NULL,
         PRIMARY KEY (tenant, name, version));
     CREATE TABLE IF NOT EXISTS invocations (
         id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, name TEXT NOT NULL,
         version INTEGER NOT NULL, at INTEGER NOT NULL, outcome TEXT NOT NULL,
         wall_us INTEGER NOT NULL, fuel INTEGER NOT NULL, peak_memory INTEGER NOT NULL,
         log TEXT NOT NULL);
     CREATE INDEX IF NOT EXISTS invocations_by_function ON invocations (tenant, name, id);",
    // 2: the SyncCount of a dataset's last deletion; device times in milliseconds;
    // stored answers of applied updates (for safe retries); keyset listing by SyncCount;
    // expiry sweeps.
    "ALTER TABLE datasets ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0;
     UPDATE datasets SET deleted_at = sync_count WHERE deleted = 1;
     ALTER TABLE records RENAME COLUMN device_modified TO device_modified_ms;
     UPDATE records SET device_modified_ms = device_modified_ms * 1000 WHERE device_modified_ms IS NOT NULL;
     CREATE INDEX records_by_sync_count ON records (pool_id, identity_id, dataset, sync_count, key);
     CREATE INDEX credentials_by_expiry ON credentials (expires) WHERE expires IS NOT NULL;
     CREATE TABLE applied_updates (
         token_hash TEXT PRIMARY KEY, request_hash TEXT NOT NULL, answer TEXT NOT NULL,
         expires INTEGER NOT NULL);
     CREATE INDEX applied_updates_by_expiry ON applied_updates (expires);",
    // 3: JavaScript functions keep their script and handler, to be shown and deployed again.
    "ALTER TABLE functions ADD COLUMN source TEXT;
     ALTER TABLE functions ADD COLUMN handler TEXT;",
    // 4: identity pools configured through Cognito Identity; logins linked to identities
    // (an identity that ever had one stays authenticated); merged identities (disabled) and
    // the datasets they brought, with their names before the merge; each tenant's OpenID
    // Connect issuers (an IAM OIDC provider is an account's).
    "ALTER TABLE pools ADD COLUMN allow_unauthenticated INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE pools ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
     CREATE INDEX pools_by_tenant ON pools (tenant, pool_id);
     ALTER TABLE identities ADD COLUMN modified INTEGER NOT NULL DEFAULT 0;
     UPDATE identities SET modified = created;
     ALTER TABLE identities ADD COLUMN merged_into TEXT;
     ALTER TABLE identities ADD COLUMN authenticated INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX identities_by_pool ON identities (pool_id, identity_id);
     ALTER TABLE credentials ADD COLUMN authenticated INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX credentials_by_identity ON credentials (identity_id);
     ALTER TABLE datasets ADD COLUMN merged_from TEXT;
     ALTER TABLE datasets ADD COLUMN merged_base TEXT;
     CREATE TABLE logins (
         pool_id TEXT NOT NULL, provider TEXT NOT NULL, subject TEXT NOT NULL,
         identity_id TEXT NOT NULL, created INTEGER NOT NULL,
         PRIMARY KEY (pool_id, provider, subject));
     CREATE INDEX logins_by_identity ON logins (identity_id);
     CREATE TABLE oidc_issuers (
         tenant TEXT NOT NULL, issuer TEXT NOT NULL, audiences TEXT NOT NULL, jwks TEXT NOT NULL,
         jwks_file TEXT, created INTEGER NOT NULL, PRIMARY KEY (tenant, issuer));",
    // 5: merged datasets' names keep to the model's 128 characters, and pool settings to the
    // model's patterns (`migrate` renames the longer ones merges made before, in Rust: a free
    // name needs the merge's own rule; and rewrites settings as `PoolSettings::conformed`).
    "-- no change of schema",
];

/// The first schema version whose merged dataset names all keep to 128 characters and
/// whose pool settings keep to the model.
pub(super) const SHORT_MERGED_NAMES: i64 = 5;

fn migrate(conn: &mut Connection) -> Result<()> {
    // An exclusive transaction: two processes starting at once apply each migration once.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    let applied: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    if applied < SHORT_MERGED_NAMES {
        identities::shorten_merged_names(&tx)?;
        identities::conform_pool_settings(&tx)?;
    }
    tx.commit()?;
    Ok(())
}

const POOL_COLUMNS: &str = "pool_id, tenant, sync_trigger, name, allow_unauthenticated, settings";

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
        return Err(DbError::Other(format!("cannot keep the write-ahead log's files (SQLite error {rc})")));
    }
    Ok(())
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`, private to this user, and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> Result<Sqlite> {
        private_file(path).map_err(|e| DbError::Other(e.to_string()))?;
        let connect = || -> Result<Connection> {
            let conn = Connection::open(path)?;
            keep_wal_files(&conn)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            // The log is truncated to this after a checkpoint that empties it.
            conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
            Ok(conn)
        };
        let mut conn = connect()?;
        migrate(&mut conn)?;
        let mut conns = vec![Mutex::new(conn)];
        for _ in 1..CONNECTIONS {
            conns.push(Mutex::new(connect()?));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let writer_conn = connect()?;
        std::thread::Builder::new()
            .name("synctrig-writer".into())
            .spawn(move || group_commit(writer_conn, rx))
            .map_err(|e| DbError::Other(e.to_string()))?;
        Ok(Sqlite { conns, next: Default::default(), writer: Mutex::new(tx) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.conns.len();
        self.conns[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn submit(&self, job: Job) {
        // The writer only stops when the store is dropped.
        let _ = self.writer.lock().unwrap_or_else(|e| e.into_inner()).send(job);
    }

    /// Queues an update for the group-commit writer; the answer comes once it is on disk.
    pub fn submit_update(&self, update: Update) -> tokio::sync::oneshot::Receiver<UpdateResult> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Update(Box::new(update), tx));
        rx
    }

    /// Deletes a dataset through the writer: its records go, its row stays marked
    /// deleted with the SyncCount bumped and that count kept as the deletion's. Answers
    /// the row as it was, or `None` when there was no live dataset.
    pub async fn delete_dataset(&self, pool: &str, identity: &str, name: &str, by: &str) -> Result<Option<DatasetRow>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Delete {
            pool: pool.to_owned(),
            identity: identity.to_owned(),
            name: name.to_owned(),
            by: by.to_owned(),
            reply,
        });
        rx.await.map_err(|_| DbError::Other("the database writer stopped".to_owned()))?
    }

    /// Queues an invocation record (kept: the latest few per function).
    pub fn submit_invocation(&self, tenant: &str, name: &str, row: InvocationRow) {
        self.submit(Job::Invocation { tenant: tenant.to_owned(), name: name.to_owned(), row });
    }

    /// Queues a sweep of expired temporary credentials and stored update answers.
    pub fn submit_purge(&self) {
        self.submit(Job::Purge);
    }

    /// The meta value under `key`, creating it with `make` the first time.
    pub fn meta_or_insert(&self, key: &str, value: String) -> Result<(String, bool)> {
        let conn = self.conn();
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])?;
        let created = conn.changes() == 1;
        let value = conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |r| r.get(0))?;
        Ok((value, created))
    }

    /// Stores (or replaces) the root credential. Writes nothing when it is stored already,
    /// so a server starts on a full disk.
    pub fn put_root_credential(&self, access_key: &str, secret: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM credentials WHERE kind = 'root' AND access_key != ?1", [access_key])?;
        tx.execute(
            "INSERT INTO credentials (access_key, secret, kind) VALUES (?1, ?2, 'root')
             ON CONFLICT (access_key) DO UPDATE SET secret = excluded.secret, kind = 'root', tenant = NULL,
                 pool_id = NULL, identity_id = NULL, session_token = NULL, expires = NULL, authenticated = 0
             WHERE NOT (credentials.secret = excluded.secret AND credentials.kind = 'root')",
            params![access_key, secret],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Creates a tenant with a developer credential: (access key, secret).
    pub fn create_tenant(&self, name: &str) -> Result<Option<(String, String)>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if tx.execute("INSERT OR IGNORE INTO tenants (name, created) VALUES (?1, ?2)", params![name, now()])? == 0 {
            return Ok(None);
        }
        let (ak, sk) = (random_key("AKIA"), random_hex(20));
        tx.execute(
            "INSERT INTO credentials (access_key, secret, kind, tenant) VALUES (?1, ?2, 'developer', ?3)",
            params![ak, sk, name],
        )?;
        tx.commit()?;
        Ok(Some((ak, sk)))
    }

    /// Whether the tenant exists.
    pub fn tenant_exists(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("SELECT 1 FROM tenants WHERE name = ?1")?
            .query_row([name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Creates an identity pool for `tenant`; returns it.
    pub fn create_pool(
        &self,
        tenant: &str,
        region: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<Pool> {
        let pool_id = new_cognito_id(region);
        let json = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
        self.conn().execute(
            "INSERT INTO pools (pool_id, name, tenant, created, allow_unauthenticated, settings) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![pool_id, name, tenant, now(), allow_unauthenticated, json],
        )?;
        Ok(Pool {
            pool_id,
            tenant: tenant.to_owned(),
            sync_trigger: None,
            name: name.to_owned(),
            allow_unauthenticated,
            settings: settings.clone(),
        })
    }

    /// Replaces a pool's name, unauthenticated access and settings.
    pub fn update_pool(
        &self,
        pool_id: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<()> {
        let json = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
        self.conn().execute(
            "UPDATE pools SET name = ?2, allow_unauthenticated = ?3, settings = ?4 WHERE pool_id = ?1",
            params![pool_id, name, allow_unauthenticated, json],
        )?;
        Ok(())
    }

    /// The credential with `access_key`. An identity's credentials exist only while the
    /// identity does and has not been merged into another: they stop working at once.
    pub fn credential(&self, access_key: &str) -> Result<Option<Credential>> {
        let row = self
            .conn()
            .prepare_cached(
                "SELECT c.secret, c.kind, c.tenant, c.pool_id, c.identity_id, c.session_token, c.expires
                 FROM credentials c LEFT JOIN identities i ON i.identity_id = c.identity_id
                 LEFT JOIN pools p ON p.pool_id = i.pool_id
                 WHERE c.access_key = ?1
                 AND (c.kind != 'identity' OR (i.identity_id IS NOT NULL AND i.merged_into IS NULL
                      AND (c.authenticated = 1 OR p.allow_unauthenticated = 1)))",
            )?
            .query_row([access_key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                ))
            })
            .optional()?;
        Ok(row.and_then(|(secret, kind, tenant, pool_id, identity_id, session_token, expires)| {
            let principal = match kind.as_str() {
                "root" => Principal::Root,
                "developer" => Principal::Developer { tenant: tenant? },
                "identity" => Principal::Identity { pool_id: pool_id?, identity_id: identity_id? },
                _ => return None,
            };
            Some(Credential { secret, principal, session_token, expires })
        }))
    }

    /// Issues temporary credentials for an identity, marked with whether it signed in:
    /// (access key, secret, session token, expiry).
    pub fn issue_identity_credentials(
        &self,
        pool_id: &str,
        identity_id: &str,
        authenticated: bool,
        ttl_secs: i64,
    ) -> Result<(String, String, String, i64)> {
        let (ak, sk, token, expires) = (random_key("ASIA"), random_hex(20), random_hex(32), now() + ttl_secs);
        self.conn().execute(
            "INSERT INTO credentials (access_key, secret, kind, pool_id, identity_id, session_token, expires, authenticated)
             VALUES (?1, ?2, 'identity', ?3, ?4, ?5, ?6, ?7)",
            params![ak, sk, pool_id, identity_id, token, expires, authenticated],
        )?;
        Ok((ak, sk, token, expires))
    }

    fn pool_from_row(r: &rusqlite::Row) -> rusqlite::Result<Pool> {
        let settings: String = r.get(5)?;
        Ok(Pool {
            pool_id: r.get(0)?,
            tenant: r.get(1)?,
            sync_trigger: r.get(2)?,
            name: r.get(3)?,
            allow_unauthenticated: r.get::<_, i64>(4)? != 0,
            // Written by this program from the same type.
            settings: serde_json::from_str(&settings).unwrap_or_default(),
        })
    }

    /// The pool with `pool_id`.
    pub fn pool(&self, pool_id: &str) -> Result<Option<Pool>> {
        Ok(self
            .conn()
            .prepare_cached(&format!("SELECT {POOL_COLUMNS} FROM pools WHERE pool_id = ?1"))?
            .query_row([pool_id], Self::pool_from_row)
            .optional()?)
    }

    /// Up to `limit` pools (of `tenant`, or all for `None`) with ids after `after`, in id
    /// order.
    pub fn pools_after(&self, tenant: Option<&str>, after: &str, limit: usize) -> Result<Vec<Pool>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            &format!(
                "SELECT {POOL_COLUMNS} FROM pools WHERE (?1 IS NULL OR tenant = ?1) AND pool_id > ?2 ORDER BY pool_id LIMIT ?3"
            ),
        )?;
        let rows = stmt.query_map(params![tenant, after, limit as i64], Self::pool_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every pool's SyncTrigger mapping: (tenant, mapping).
    pub fn sync_triggers(&self) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT tenant, sync_trigger FROM pools WHERE sync_trigger IS NOT NULL")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets (or with `None` removes) the pool's SyncTrigger mapping.
    pub fn set_sync_trigger(&self, pool_id: &str, function: Option<&str>) -> Result<()> {
        self.conn().execute("UPDATE pools SET sync_trigger = ?2 WHERE pool_id = ?1", params![pool_id, function])?;
        Ok(())
    }

    /// Creates a new identity in the pool.
    pub fn create_identity(&self, pool_id: &str, region: &str) -> Result<String> {
        let identity_id = new_cognito_id(region);
        self.conn().execute(
            "INSERT INTO identities (identity_id, pool_id, created, modified) VALUES (?1, ?2, ?3, ?3)",
            params![identity_id, pool_id, now()],
        )?;
        Ok(identity_id)
    }

    /// The pool an identity belongs to.
    pub fn identity_pool(&self, identity_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT pool_id FROM identities WHERE identity_id = ?1")?
            .query_row([identity_id], |r| r.get(0))
            .optional()?)
    }

    /// The version the next deploy of a function will get (if no other deploy of it
    /// comes first).
    pub fn next_function_version(&self, tenant: &str, name: &str) -> Result<i64> {
        Ok(self
            .conn()
            .prepare_cached("SELECT COALESCE(MAX(version), 0) + 1 FROM functions WHERE tenant = ?1 AND name = ?2")?
            .query_row(params![tenant, name], |r| r.get(0))?)
    }

    /// Stores a new version of a tenant's function — its component, and for a JavaScript
    /// function its script and handler; returns the version.
    pub fn deploy_function(
        &self,
        tenant: &str,
        name: &str,
        digest: &str,
        wasm: &[u8],
        script: Option<(&str, &str)>,
        expected_latest: Option<i64>,
    ) -> Result<std::result::Result<i64, DeployRefused>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(version), 0) + 1 FROM functions WHERE tenant = ?1 AND name = ?2")?
            .query_row(params![tenant, name], |r| r.get(0))?;
        // The limits and the expected version are checked in the transaction that writes,
        // so racing deploys cannot pass them.
        if expected_latest.is_some_and(|e| e != version - 1) {
            return Ok(Err(DeployRefused::Changed { latest: version - 1 }));
        }
        if version as usize > limits::MAX_VERSIONS_PER_FUNCTION {
            return Ok(Err(DeployRefused::Versions));
        }
        if version == 1 {
            let functions: i64 = tx
                .prepare_cached("SELECT COUNT(DISTINCT name) FROM functions WHERE tenant = ?1")?
                .query_row([tenant], |r| r.get(0))?;
            if functions as usize >= limits::MAX_FUNCTIONS_PER_TENANT {
                return Ok(Err(DeployRefused::Functions));
            }
        }
        let (source, handler) = script.unzip();
        tx.execute(
            "INSERT INTO functions (tenant, name, version, digest, wasm, created, source, handler)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![tenant, name, version, digest, wasm, now(), source, handler],
        )?;
        tx.commit()?;
        Ok(Ok(version))
    }

    /// The limit a deploy of `tenant`'s function `name` would pass now, if any: checked
    /// before the work of compiling (and again in the transaction that stores it).
    pub fn function_limit(&self, tenant: &str, name: &str) -> Result<Option<DeployRefused>> {
        let conn = self.conn();
        let (versions, functions): (i64, i64) = conn
            .prepare_cached(
                "SELECT (SELECT COUNT(*) FROM functions WHERE tenant = ?1 AND name = ?2),
                        (SELECT COUNT(DISTINCT name) FROM functions WHERE tenant = ?1)",
            )?
            .query_row(params![tenant, name], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(if versions as usize >= limits::MAX_VERSIONS_PER_FUNCTION {
            Some(DeployRefused::Versions)
        } else if versions == 0 && functions as usize >= limits::MAX_FUNCTIONS_PER_TENANT {
            Some(DeployRefused::Functions)
        } else {
            None
        })
    }

    /// A JavaScript function version's script and handler.
    pub fn function_script(&self, tenant: &str, name: &str, version: i64) -> Result<Option<(String, String)>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT source, handler FROM functions WHERE tenant = ?1 AND name = ?2 AND version = ?3 AND source IS NOT NULL",
            )?
            .query_row(params![tenant, name, version], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// A function version (the latest for `None`): (version, digest).
    pub fn function(&self, tenant: &str, name: &str, version: Option<i64>) -> Result<Option<(i64, String)>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT version, digest FROM functions WHERE tenant = ?1 AND name = ?2 AND (?3 IS NULL OR version = ?3)
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row(params![tenant, name, version], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// The component bytes of a function version.
    pub fn function_wasm(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT wasm FROM functions WHERE tenant = ?1 AND name = ?2 AND version = ?3")?
            .query_row(params![tenant, name, version], |r| r.get(0))
            .optional()?)
    }

    /// A tenant's functions, by name: (name, latest version, its creation time, whether
    /// it is a script).
    pub fn functions(&self, tenant: &str) -> Result<Vec<FunctionSummary>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT f.name, f.version, f.created, f.source IS NOT NULL FROM functions f
             WHERE f.tenant = ?1 AND f.version = (SELECT MAX(version) FROM functions g
                                                  WHERE g.tenant = f.tenant AND g.name = f.name)
             ORDER BY f.name",
        )?;
        let rows = stmt.query_map([tenant], |r| {
            Ok(FunctionSummary { name: r.get(0)?, latest_version: r.get(1)?, modified: r.get(2)?, script: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every version of a function, newest first (without their bytes).
    pub fn function_versions(&self, tenant: &str, name: &str) -> Result<Vec<FunctionVersion>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT version, digest, created, length(wasm), source IS NOT NULL, handler FROM functions
             WHERE tenant = ?1 AND name = ?2 ORDER BY version DESC",
        )?;
        let rows = stmt.query_map(params![tenant, name], |r| {
            Ok(FunctionVersion {
                version: r.get(0)?,
                digest: r.get(1)?,
                created: r.get(2)?,
                component_bytes: r.get(3)?,
                script: r.get(4)?,
                handler: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The latest invocations of a function, newest first.
    pub fn invocations(&self, tenant: &str, name: &str, limit: i64) -> Result<Vec<InvocationRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT at, version, outcome, wall_us, fuel, peak_memory, log FROM invocations
             WHERE tenant = ?1 AND name = ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![tenant, name, limit], |r| {
            Ok(InvocationRow {
                at: r.get(0)?,
                version: r.get(1)?,
                outcome: r.get(2)?,
                wall_us: r.get(3)?,
                fuel: r.get(4)?,
                peak_memory_bytes: r.get(5)?,
                log: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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

    /// The dataset (deleted ones included).
    pub fn dataset(&self, pool: &str, identity: &str, name: &str) -> Result<Option<DatasetRow>> {
        Self::dataset_row(&self.conn(), pool, identity, name)
    }

    /// Up to `limit` live datasets of the identity with names after `after`, by name.
    pub fn datasets_after(&self, pool: &str, identity: &str, after: &str, limit: usize) -> Result<Vec<DatasetRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DATASET_COLUMNS} FROM datasets d WHERE d.pool_id = ?1 AND d.identity_id = ?2 AND d.deleted = 0
             AND d.name > ?3 ORDER BY d.name LIMIT ?4"
        ))?;
        let rows = stmt.query_map(params![pool, identity, after, limit as i64], dataset_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn live_datasets(conn: &Connection, pool: &str, identity: &str) -> Result<usize> {
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM datasets WHERE pool_id = ?1 AND identity_id = ?2 AND deleted = 0")?
            .query_row(params![pool, identity], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Everything an update needs to decide, read in one transaction.
    pub fn snapshot(&self, pool: &str, identity: &str, name: &str) -> Result<Snapshot> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let dataset = Self::dataset_row(&tx, pool, identity, name)?;
        let records = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE pool_id = ?1 AND identity_id = ?2 AND dataset = ?3"
            ))?;
            let rows = stmt.query_map(params![pool, identity, name], record_from_row)?;
            rows.map(|r| r.map(|r| (r.key.clone(), r))).collect::<rusqlite::Result<_>>()?
        };
        let identity_datasets = Self::live_datasets(&tx, pool, identity)?;
        tx.commit()?;
        Ok(Snapshot { dataset, records, identity_datasets })
    }

    /// One page of ListRecords, read in one transaction: records with
    /// `last < SyncCount <= upper` after `cursor`, in (SyncCount, key) order, and the
    /// names of datasets merged in under this one's. A first page (`upper` `None`) takes
    /// the dataset's current SyncCount as the listing's bound.
    pub fn records_page(
        &self,
        (pool, identity, name): (&str, &str, &str),
        last: i64,
        upper: Option<i64>,
        cursor: Option<&RecordCursor>,
        limit: usize,
    ) -> Result<RecordPage> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let dataset = tx
            .prepare_cached(
                "SELECT sync_count, modified_by, deleted, deleted_at FROM datasets
                 WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3",
            )?
            .query_row(params![pool, identity, name], |r| {
                Ok(DatasetHead {
                    sync_count: r.get(0)?,
                    modified_by: r.get(1)?,
                    deleted: r.get::<_, i64>(2)? != 0,
                    deleted_at: r.get(3)?,
                })
            })
            .optional()?;
        let current = dataset.as_ref().map_or(0, |d| d.sync_count);
        // A NextToken comes from the client: its bound may not pass what exists.
        let upper = upper.map_or(current, |u| u.min(current));
        let (after_count, after_key) = cursor.map_or((i64::MIN, ""), |c| (c.sync_count, c.key.as_str()));
        let mut records = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records
                 WHERE pool_id = ?1 AND identity_id = ?2 AND dataset = ?3 AND sync_count > ?4 AND sync_count <= ?5
                 AND (sync_count, key) > (?6, ?7)
                 ORDER BY sync_count, key LIMIT ?8"
            ))?;
            let rows = stmt.query_map(
                params![pool, identity, name, last, upper, after_count, after_key, limit as i64 + 1],
                record_from_row,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let merged_names = Self::merged_names(&tx, pool, identity, name)?;
        tx.commit()?;
        let more = records.len() > limit;
        records.truncate(limit);
        Ok(RecordPage { dataset, upper, records, more, merged_names })
    }

    /// The stored answer of an applied update, if `idempotency` names a repeat of one.
    pub fn applied_answer(&self, idempotency: &Idempotency) -> Result<Option<Vec<RecordRow>>> {
        let stored: Option<(String, String)> = self
            .conn()
            .prepare_cached("SELECT request_hash, answer FROM applied_updates WHERE token_hash = ?1")?
            .query_row([&idempotency.token_hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(stored.filter(|(request, _)| *request == idempotency.request_hash).map(|(_, answer)| decode_answer(&answer)))
    }

    /// Applies one update inside the writer's transaction, if the dataset's SyncCount is
    /// still `expected`; otherwise answers a repeat of an applied update with its stored
    /// answer, and anything else with a conflict.
    fn apply_update(tx: &Connection, u: &Update) -> Result<UpdateOutcome> {
        let (pool, identity, name) = (u.pool.as_str(), u.identity.as_str(), u.name.as_str());
        // Checked in the transaction: a merge moves the identity's datasets away, and a
        // write landing after it would be left on a disabled identity.
        let live: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM identities WHERE identity_id = ?1 AND pool_id = ?2 AND merged_into IS NULL)")?
            .query_row(params![identity, pool], |r| r.get(0))?;
        if !live {
            return Ok(UpdateOutcome::IdentityGone);
        }
        let current = Self::dataset_row(tx, pool, identity, name)?;
        if current.as_ref().map_or(0, |d| d.sync_count) != u.expected {
            let stored: Option<(String, String)> = tx
                .prepare_cached("SELECT request_hash, answer FROM applied_updates WHERE token_hash = ?1")?
                .query_row([&u.idempotency.token_hash], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            return Ok(match stored {
                Some((request, answer)) if request == u.idempotency.request_hash => {
                    UpdateOutcome::Replayed(decode_answer(&answer))
                }
                _ => UpdateOutcome::Conflict,
            });
        }
        let creates = current.as_ref().is_none_or(|d| d.deleted);
        if creates && Self::live_datasets(tx, pool, identity)? >= u.max_datasets {
            return Ok(UpdateOutcome::TooManyDatasets);
        }
        let t = now();
        // A change, or bringing a deleted dataset back, is a new SyncCount; creating an
        // empty dataset is not (nothing to sync).
        let recreates = current.as_ref().is_some_and(|d| d.deleted);
        let count = if u.writes.is_empty() && !recreates { u.expected } else { u.expected + 1 };
        match &current {
            Some(d) if !d.deleted => {
                if !u.writes.is_empty() {
                    tx.execute(
                        "UPDATE datasets SET sync_count = ?4, modified = ?5, modified_by = ?6
                         WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3",
                        params![pool, identity, name, count, t, u.by],
                    )?;
                }
            }
            Some(_) => {
                // Recreating a deleted dataset keeps counting, and keeps its deletion's count.
                tx.execute(
                    "UPDATE datasets SET sync_count = ?4, created = ?5, modified = ?5, modified_by = ?6, deleted = 0
                     WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3",
                    params![pool, identity, name, count, t, u.by],
                )?;
            }
            None => {
                // A first update creates the dataset even when it writes nothing.
                tx.execute(
                    "INSERT INTO datasets (pool_id, identity_id, name, sync_count, created, modified, modified_by, deleted, deleted_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, 0, 0)",
                    params![pool, identity, name, count, t, u.by],
                )?;
            }
        }
        let mut written = Vec::with_capacity(u.writes.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO records (pool_id, identity_id, dataset, key, value, sync_count, modified, modified_by, device_modified_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
        if !written.is_empty() {
            let answer = serde_json::to_string(&written).unwrap_or_default();
            tx.prepare_cached(
                "INSERT OR REPLACE INTO applied_updates (token_hash, request_hash, answer, expires) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![u.idempotency.token_hash, u.idempotency.request_hash, answer, u.idempotency.expires])?;
        }
        Ok(UpdateOutcome::Applied(written))
    }

    fn apply_delete(tx: &Connection, pool: &str, identity: &str, name: &str, by: &str) -> Result<Option<DatasetRow>> {
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
        Ok(Some(row))
    }

    fn purge(tx: &Connection) -> Result<()> {
        let t = now();
        tx.execute("DELETE FROM credentials WHERE expires IS NOT NULL AND expires < ?1", [t])?;
        tx.execute("DELETE FROM applied_updates WHERE expires < ?1", [t])?;
        Ok(())
    }

    /// (datasets, bytes, last modified) of an identity.
    pub fn identity_usage(&self, pool: &str, identity: &str) -> Result<(i64, i64, Option<i64>)> {
        let conn = self.conn();
        let (count, modified): (i64, Option<i64>) = conn
            .prepare_cached(
                "SELECT COUNT(*), MAX(modified) FROM datasets WHERE pool_id = ?1 AND identity_id = ?2 AND deleted = 0",
            )?
            .query_row(params![pool, identity], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let bytes: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB))), 0) FROM records
             WHERE pool_id = ?1 AND identity_id = ?2 AND value IS NOT NULL",
            )?
            .query_row(params![pool, identity], |r| r.get(0))?;
        Ok((count, bytes, modified))
    }

    /// (sync sessions, bytes, last modified) of a pool; sync sessions are counted as
    /// dataset SyncCounts summed.
    pub fn pool_usage(&self, pool: &str) -> Result<(i64, i64, Option<i64>)> {
        let conn = self.conn();
        let (sessions, modified): (i64, Option<i64>) = conn
            .prepare_cached("SELECT COALESCE(SUM(sync_count), 0), MAX(modified) FROM datasets WHERE pool_id = ?1")?
            .query_row([pool], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let bytes: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(CAST(value AS BLOB))), 0) FROM records
             WHERE pool_id = ?1 AND value IS NOT NULL",
            )?
            .query_row([pool], |r| r.get(0))?;
        Ok((sessions, bytes, modified))
    }
}

/// The writer thread: takes every queued job, applies them in one transaction (each
/// under its own savepoint, so one failing job spoils no other), commits once — one
/// fsync for the batch — and only then answers.
fn group_commit(mut conn: Connection, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(job) = jobs.try_recv()
        {
            batch.push(job);
        }
        let mut updates = Vec::new();
        let mut deletes = Vec::new();
        let outcome = (|| -> Result<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut functions = std::collections::BTreeSet::new();
            let savepoint = |f: &mut dyn FnMut() -> Result<()>| -> Result<Result<()>> {
                tx.execute_batch("SAVEPOINT one_job")?;
                let result = f();
                if result.is_err() {
                    tx.execute_batch("ROLLBACK TO one_job")?;
                }
                tx.execute_batch("RELEASE one_job")?;
                Ok(result)
            };
            for job in &batch {
                match job {
                    Job::Update(update, _) => {
                        let mut answer = None;
                        let done = savepoint(&mut || {
                            answer = Some(Sqlite::apply_update(&tx, update)?);
                            Ok(())
                        })?;
                        updates.push(done.and_then(|()| answer.ok_or_else(|| DbError::Other("no answer".into()))));
                    }
                    Job::Delete { pool, identity, name, by, .. } => {
                        let mut answer = None;
                        let done = savepoint(&mut || {
                            answer = Some(Sqlite::apply_delete(&tx, pool, identity, name, by)?);
                            Ok(())
                        })?;
                        deletes.push(done.and_then(|()| answer.ok_or_else(|| DbError::Other("no answer".into()))));
                    }
                    Job::Invocation { tenant, name, row } => {
                        tx.execute(
                            "INSERT INTO invocations (tenant, name, version, at, outcome, wall_us, fuel, peak_memory, log)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                            params![tenant, name, row.version, row.at, row.outcome, row.wall_us, row.fuel, row.peak_memory_bytes, row.log],
                        )?;
                        functions.insert((tenant.clone(), name.clone()));
                    }
                    Job::Purge => Sqlite::purge(&tx)?,
                }
            }
            for (tenant, name) in functions {
                tx.execute(
                    "DELETE FROM invocations WHERE tenant = ?1 AND name = ?2 AND id <= (
                         SELECT id FROM invocations WHERE tenant = ?1 AND name = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)",
                    params![tenant, name, KEEP_INVOCATIONS],
                )?;
            }
            tx.commit()?;
            Ok(())
        })();
        let failed = |e: &DbError| e.for_each();
        let (mut updates, mut deletes) = (updates.into_iter(), deletes.into_iter());
        for job in batch {
            match job {
                Job::Update(_, reply) => {
                    let answer = match &outcome {
                        Ok(()) => updates.next().unwrap_or_else(|| Err(DbError::Other("lost answer".into()))),
                        Err(e) => Err(failed(e)),
                    };
                    let _ = reply.send(answer);
                }
                Job::Delete { reply, .. } => {
                    let answer = match &outcome {
                        Ok(()) => deletes.next().unwrap_or_else(|| Err(DbError::Other("lost answer".into()))),
                        Err(e) => Err(failed(e)),
                    };
                    let _ = reply.send(answer);
                }
                Job::Invocation { .. } | Job::Purge => {}
            }
        }
    }
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
    use super::*;
    use crate::{MergeOutcome, MergeRule, merged_dataset_name, prepare_data_dir};
    use std::collections::BTreeMap;
    use synctrig_runtime::merge::Write;

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
        assert_eq!(store.dataset("p", "i", "d").unwrap().unwrap().sync_count, 1);
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
        let deleted = store.delete_dataset("p", "i", "d", "me").await.unwrap().unwrap();
        assert_eq!(deleted.sync_count, 1);
        let row = store.dataset("p", "i", "d").unwrap().unwrap();
        assert!(row.deleted && row.sync_count == 2 && row.deleted_at == 2);
        apply(&store, update(2, &[("k", Some("again"))], "t2")).await;
        let row = store.dataset("p", "i", "d").unwrap().unwrap();
        assert!(!row.deleted && row.sync_count == 3 && row.deleted_at == 2);
    }

    #[tokio::test]
    async fn recreating_an_empty_dataset_is_a_new_sync_count() {
        let (_dir, store) = store();
        apply(&store, update(0, &[("k", Some("v"))], "t1")).await;
        store.delete_dataset("p", "i", "d", "me").await.unwrap();
        apply(&store, update(2, &[], "t2")).await;
        let row = store.dataset("p", "i", "d").unwrap().unwrap();
        assert!(!row.deleted && row.sync_count == 3);
    }

    #[tokio::test]
    async fn a_next_token_cannot_raise_the_listings_bound() {
        let (_dir, store) = store();
        apply(&store, update(0, &[("k", Some("v"))], "t1")).await;
        let page = store.records_page(("p", "i", "d"), 0, Some(999), None, 10).unwrap();
        assert_eq!(page.upper, 1);
    }

    #[tokio::test]
    async fn pages_are_keyset_bounded_by_the_first_pages_count() {
        let (_dir, store) = store();
        let writes: Vec<(String, Option<&str>)> = (0..5).map(|i| (format!("k{i}"), Some("v"))).collect();
        let refs: Vec<(&str, Option<&str>)> = writes.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        apply(&store, update(0, &refs, "t1")).await;
        let at = ("p", "i", "d");
        let first = store.records_page(at, 0, None, None, 2).unwrap();
        assert_eq!((first.upper, first.records.len(), first.more), (1, 2, true));
        // k0 changes between pages: it moves past the listing's bound, k2 is not skipped.
        apply(&store, update(1, &[("k0", Some("w"))], "t2")).await;
        let last = first.records.last().unwrap();
        let cursor = RecordCursor { sync_count: last.sync_count, key: last.key.clone() };
        let second = store.records_page(at, 0, Some(first.upper), Some(&cursor), 10).unwrap();
        let keys: Vec<&str> = second.records.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["k2", "k3", "k4"]);
        assert!(!second.more);
        // The next incremental sync from the listing's bound gets the change.
        let next = store.records_page(at, first.upper, None, None, 10).unwrap();
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
            store.merge_identities("p", "i", "t", MergeRule::SourceUnauthenticated).unwrap(),
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
        store.issue_identity_credentials("p", "i", false, -1).unwrap();
        let (live, ..) = store.issue_identity_credentials("p", "i", false, 60).unwrap();
        let mut stale = update(0, &[("k", Some("v"))], "old");
        stale.idempotency.expires = now() - 1;
        apply(&store, stale).await;
        store.submit_purge();
        // A job queued after the sweep is answered after it commits.
        apply(&store, update(1, &[("k", Some("w"))], "new")).await;
        let conn = store.conn();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM credentials"), 1);
        assert!(store.credential(&live).unwrap().is_some());
        assert_eq!(count("SELECT COUNT(*) FROM applied_updates"), 1, "only the live token's answer is kept");
    }

    #[test]
    fn function_limits_are_checked_in_the_deploying_transaction() {
        let (_dir, store) = store();
        for i in 0..limits::MAX_FUNCTIONS_PER_TENANT {
            assert_eq!(store.deploy_function("t", &format!("f{i}"), "d", b"w", None, None).unwrap(), Ok(1));
        }
        assert_eq!(store.function_limit("t", "one-more").unwrap(), Some(DeployRefused::Functions));
        assert_eq!(store.function_limit("t", "f0").unwrap(), None);
        let refused = store.deploy_function("t", "one-more", "d", b"w", None, None).unwrap();
        assert_eq!(refused, Err(DeployRefused::Functions));
        assert_eq!(store.functions("t").unwrap().len(), limits::MAX_FUNCTIONS_PER_TENANT);
        // A new version of an existing function is not a new function; another tenant has
        // its own count.
        assert_eq!(store.deploy_function("t", "f0", "d", b"w", None, None).unwrap(), Ok(2));
        assert_eq!(store.deploy_function("u", "f0", "d", b"w", None, None).unwrap(), Ok(1));
        for v in 3..=limits::MAX_VERSIONS_PER_FUNCTION as i64 {
            assert_eq!(store.deploy_function("t", "f0", "d", b"w", None, None).unwrap(), Ok(v));
        }
        assert_eq!(store.function_limit("t", "f0").unwrap(), Some(DeployRefused::Versions));
        // A deploy that expected another latest version is refused in the transaction.
        let stale = store.deploy_function("t", "f1", "d", b"w", None, Some(0)).unwrap();
        assert_eq!(stale, Err(DeployRefused::Changed { latest: 1 }));
        assert_eq!(store.deploy_function("t", "f1", "d", b"w", None, Some(1)).unwrap(), Ok(2));
        assert_eq!(store.deploy_function("t", "f0", "d", b"w", None, None).unwrap(), Err(DeployRefused::Versions));
        let versions = store.function_versions("t", "f0").unwrap();
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

    #[test]
    fn migrations_upgrade_a_first_version_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute_batch(
                "INSERT INTO datasets VALUES ('p', 'i', 'd', 4, 0, 0, 'me', 1);
                 INSERT INTO datasets VALUES ('p', 'i', 'e', 1, 0, 0, 'me', 0);
                 INSERT INTO records VALUES ('p', 'i', 'e', 'k', 'v', 1, 0, 'me', 1795810224);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let row = store.dataset("p", "i", "d").unwrap().unwrap();
        assert_eq!((row.deleted, row.deleted_at), (true, 4));
        let page = store.records_page(("p", "i", "e"), 0, Some(1), None, 10).unwrap();
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
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..4] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 4).unwrap();
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
        assert!(store.dataset("p", "i", &long).unwrap().is_none());
        assert_eq!(store.dataset("p", "i", &renamed).unwrap().unwrap().num_records, 1);
        assert_eq!(store.dataset("p", "i", &taken).unwrap().unwrap().num_records, 0, "untouched");
        assert_eq!(store.merged_dataset_names("p", "i", &base).unwrap(), vec![renamed.clone()]);
        let page = store.records_page(("p", "i", &renamed), 0, None, None, 10).unwrap();
        assert_eq!(page.records[0].value.as_deref(), Some("v"));
        assert_eq!(synctrig_runtime::limits::dataset_name_problem(&renamed), None);
    }
}
