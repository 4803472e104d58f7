//! The embedded SQLite database: tenants, credentials, pools, identities, datasets,
//! records, trigger functions and their recent invocations.
//!
//! WAL mode with `synchronous=FULL`: a transaction is on disk before the request that
//! made it is acknowledged, so it survives `kill -9` and power loss alike. Every
//! update is one transaction that re-checks the dataset's SyncCount, so concurrent
//! updates are serialised and the loser gets a conflict, never a lost write.

use crate::merge::{Dataset, Write};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// A database error (the API answers `InternalErrorException`).
#[derive(Debug, thiserror::Error)]
#[error("database error: {0}")]
pub struct DbError(#[from] rusqlite::Error);

type Result<T> = std::result::Result<T, DbError>;

/// What a credential may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The operator: every pool.
    Root,
    /// A tenant's developer: every identity of the tenant's pools; never runs triggers.
    Developer {
        /// The tenant.
        tenant: String,
    },
    /// Temporary credentials of one identity of one pool; runs the pool's trigger.
    Identity {
        /// The identity's pool.
        pool_id: String,
        /// The identity.
        identity_id: String,
    },
}

/// A stored credential.
#[derive(Clone, Debug)]
pub struct Credential {
    /// The secret key.
    pub secret: String,
    /// Who it belongs to.
    pub principal: Principal,
    /// The session token temporary credentials must present.
    pub session_token: Option<String>,
    /// When temporary credentials expire (epoch seconds).
    pub expires: Option<i64>,
}

/// An identity pool.
#[derive(Clone, Debug)]
pub struct Pool {
    /// The pool id.
    pub pool_id: String,
    /// Its tenant.
    pub tenant: String,
    /// The SyncTrigger mapping, as set with SetCognitoEvents.
    pub sync_trigger: Option<String>,
}

/// A dataset's row.
#[derive(Clone, Debug, Default)]
pub struct DatasetRow {
    /// Its name.
    pub name: String,
    /// The dataset's SyncCount.
    pub sync_count: i64,
    /// Created (epoch seconds).
    pub created: i64,
    /// Last modified (epoch seconds).
    pub modified: i64,
    /// Who modified it last.
    pub modified_by: String,
    /// Deleted with DeleteDataset (kept so clients learn of the deletion).
    pub deleted: bool,
    /// Live records.
    pub num_records: i64,
    /// Bytes of live keys and values.
    pub data_storage: i64,
}

/// A record's row (tombstones have no value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRow {
    /// The key.
    pub key: String,
    /// The value; `None` for a deleted record.
    pub value: Option<String>,
    /// The record's SyncCount.
    pub sync_count: i64,
    /// Last modified (epoch seconds).
    pub modified: i64,
    /// Who modified it last.
    pub modified_by: String,
    /// The device's own modification time, if it sent one.
    pub device_modified: Option<i64>,
}

/// A dataset as an update sees it: its row (if any) and every record row.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The dataset's row, if it was ever created.
    pub dataset: Option<DatasetRow>,
    /// Every record row, tombstones included.
    pub records: BTreeMap<String, RecordRow>,
    /// How many live datasets the identity has.
    pub identity_datasets: usize,
}

impl Snapshot {
    /// The live records.
    pub fn live(&self) -> Dataset {
        self.records.iter().filter_map(|(k, r)| Some((k.clone(), r.value.clone()?))).collect()
    }

    /// The dataset's SyncCount (0 when it does not exist).
    pub fn sync_count(&self) -> i64 {
        self.dataset.as_ref().map_or(0, |d| d.sync_count)
    }

    /// Whether the dataset exists (not absent, not deleted).
    pub fn exists(&self) -> bool {
        self.dataset.as_ref().is_some_and(|d| !d.deleted)
    }
}

/// A recorded trigger invocation.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRow {
    /// When (epoch seconds).
    pub at: i64,
    /// The function version.
    pub version: i64,
    /// `ok` or the error outcome.
    pub outcome: String,
    /// Wall time in microseconds.
    pub wall_us: i64,
    /// Fuel consumed.
    pub fuel: i64,
    /// Peak linear memory in bytes.
    pub peak_memory_bytes: i64,
    /// The trigger's log.
    pub log: String,
}

/// How many invocations are kept per function.
const KEEP_INVOCATIONS: i64 = 100;

/// Connections for reads and occasional writes; WAL lets readers run beside the writer.
const CONNECTIONS: usize = 4;
/// Most updates committed in one transaction.
const MAX_BATCH: usize = 256;

/// One update of a dataset, for the group-commit writer.
#[derive(Debug)]
pub struct Update {
    /// The identity pool.
    pub pool: String,
    /// The identity.
    pub identity: String,
    /// The dataset's name.
    pub name: String,
    /// The dataset SyncCount the update was computed against.
    pub expected: i64,
    /// The records to write.
    pub writes: Vec<Write>,
    /// Device modification times by key.
    pub device_modified: BTreeMap<String, i64>,
    /// Who writes.
    pub by: String,
}

/// What the writer tells an update: the written rows, `None` for a conflict, or why
/// the commit failed.
pub type UpdateResult = std::result::Result<Option<Vec<RecordRow>>, String>;

enum Job {
    Update(Box<Update>, tokio::sync::oneshot::Sender<UpdateResult>),
    Invocation { tenant: String, name: String, row: InvocationRow },
}

/// The database.
pub struct Store {
    conns: Vec<Mutex<Connection>>,
    next: std::sync::atomic::AtomicUsize,
    writer: Mutex<std::sync::mpsc::Sender<Job>>,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    hex::encode(bytes)
}

/// A random id in Cognito's `region:uuid` form.
pub fn new_cognito_id(region: &str) -> String {
    let h = random_hex(16);
    format!("{region}:{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn random_key(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    let tail: String = bytes.iter().map(|b| ALPHABET[(*b as usize) % 32] as char).collect();
    format!("{prefix}{tail}")
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let connect = || -> Result<Connection> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            Ok(conn)
        };
        let conn = connect()?;
        conn.execute_batch(
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
        )?;
        let mut conns = vec![Mutex::new(conn)];
        for _ in 1..CONNECTIONS {
            conns.push(Mutex::new(connect()?));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let writer_conn = connect()?;
        std::thread::Builder::new()
            .name("synctrig-writer".into())
            .spawn(move || group_commit(writer_conn, rx))
            .map_err(|e| DbError(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        Ok(Store { conns, next: Default::default(), writer: Mutex::new(tx) })
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

    /// Queues an invocation record (kept: the latest few per function).
    pub fn submit_invocation(&self, tenant: &str, name: &str, row: InvocationRow) {
        self.submit(Job::Invocation { tenant: tenant.to_owned(), name: name.to_owned(), row });
    }

    /// The meta value under `key`, creating it with `make` the first time.
    pub fn meta_or_insert(&self, key: &str, make: impl FnOnce() -> String) -> Result<(String, bool)> {
        let conn = self.conn();
        if let Some(v) =
            conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()?
        {
            return Ok((v, false));
        }
        let v = make();
        conn.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", params![key, v])?;
        Ok((v, true))
    }

    /// Stores (or replaces) the root credential.
    pub fn put_root_credential(&self, access_key: &str, secret: &str) -> Result<()> {
        let conn = self.conn();
        conn.execute("DELETE FROM credentials WHERE kind = 'root' AND access_key != ?1", [access_key])?;
        conn.execute(
            "INSERT OR REPLACE INTO credentials (access_key, secret, kind) VALUES (?1, ?2, 'root')",
            params![access_key, secret],
        )?;
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

    /// Creates an identity pool for `tenant`; returns its id.
    pub fn create_pool(&self, tenant: &str, name: &str, region: &str) -> Result<String> {
        let pool_id = new_cognito_id(region);
        self.conn().execute(
            "INSERT INTO pools (pool_id, name, tenant, created) VALUES (?1, ?2, ?3, ?4)",
            params![pool_id, name, tenant, now()],
        )?;
        Ok(pool_id)
    }

    /// The credential with `access_key`.
    pub fn credential(&self, access_key: &str) -> Result<Option<Credential>> {
        let row = self
            .conn()
            .prepare_cached(
                "SELECT secret, kind, tenant, pool_id, identity_id, session_token, expires
                 FROM credentials WHERE access_key = ?1",
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

    /// Issues temporary credentials for an identity: (access key, secret, session token, expiry).
    pub fn issue_identity_credentials(
        &self,
        pool_id: &str,
        identity_id: &str,
        ttl_secs: i64,
    ) -> Result<(String, String, String, i64)> {
        let (ak, sk, token, expires) = (random_key("ASIA"), random_hex(20), random_hex(32), now() + ttl_secs);
        let conn = self.conn();
        // Expired temporary credentials are of no use to anyone; drop them as we go.
        conn.execute("DELETE FROM credentials WHERE kind = 'identity' AND expires < ?1", [now()])?;
        conn.execute(
            "INSERT INTO credentials (access_key, secret, kind, pool_id, identity_id, session_token, expires)
             VALUES (?1, ?2, 'identity', ?3, ?4, ?5, ?6)",
            params![ak, sk, pool_id, identity_id, token, expires],
        )?;
        Ok((ak, sk, token, expires))
    }

    /// The pool with `pool_id`.
    pub fn pool(&self, pool_id: &str) -> Result<Option<Pool>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT pool_id, tenant, sync_trigger FROM pools WHERE pool_id = ?1")?
            .query_row([pool_id], |r| Ok(Pool { pool_id: r.get(0)?, tenant: r.get(1)?, sync_trigger: r.get(2)? }))
            .optional()?)
    }

    /// Every pool (of `tenant`, or all for `None`), in id order.
    pub fn pools(&self, tenant: Option<&str>) -> Result<Vec<Pool>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT pool_id, tenant, sync_trigger FROM pools WHERE ?1 IS NULL OR tenant = ?1 ORDER BY pool_id",
        )?;
        let rows =
            stmt.query_map([tenant], |r| Ok(Pool { pool_id: r.get(0)?, tenant: r.get(1)?, sync_trigger: r.get(2)? }))?;
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
            "INSERT INTO identities (identity_id, pool_id, created) VALUES (?1, ?2, ?3)",
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

    /// Stores a new version of a tenant's function; returns the version.
    pub fn deploy_function(&self, tenant: &str, name: &str, digest: &str, wasm: &[u8]) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let version: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(version), 0) + 1 FROM functions WHERE tenant = ?1 AND name = ?2")?
            .query_row(params![tenant, name], |r| r.get(0))?;
        tx.execute(
            "INSERT INTO functions (tenant, name, version, digest, wasm, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![tenant, name, version, digest, wasm, now()],
        )?;
        tx.commit()?;
        Ok(version)
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
            .prepare_cached("SELECT d.name, d.sync_count, d.created, d.modified, d.modified_by, d.deleted,
                        (SELECT COUNT(*) FROM records r WHERE r.pool_id = d.pool_id AND r.identity_id = d.identity_id
                             AND r.dataset = d.name AND r.value IS NOT NULL),
                        (SELECT COALESCE(SUM(LENGTH(CAST(r.key AS BLOB)) + LENGTH(CAST(r.value AS BLOB))), 0) FROM records r
                             WHERE r.pool_id = d.pool_id AND r.identity_id = d.identity_id AND r.dataset = d.name
                             AND r.value IS NOT NULL)
                 FROM datasets d WHERE d.pool_id = ?1 AND d.identity_id = ?2 AND d.name = ?3")?.query_row(
                params![pool, identity, name],
                |r| {
                    Ok(DatasetRow {
                        name: r.get(0)?,
                        sync_count: r.get(1)?,
                        created: r.get(2)?,
                        modified: r.get(3)?,
                        modified_by: r.get(4)?,
                        deleted: r.get::<_, i64>(5)? != 0,
                        num_records: r.get(6)?,
                        data_storage: r.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    /// The dataset (deleted ones included).
    pub fn dataset(&self, pool: &str, identity: &str, name: &str) -> Result<Option<DatasetRow>> {
        Self::dataset_row(&self.conn(), pool, identity, name)
    }

    /// The identity's live datasets, by name.
    pub fn datasets(&self, pool: &str, identity: &str) -> Result<Vec<DatasetRow>> {
        let conn = self.conn();
        let names: Vec<String> = {
            let mut stmt = conn.prepare(
                "SELECT name FROM datasets WHERE pool_id = ?1 AND identity_id = ?2 AND deleted = 0 ORDER BY name",
            )?;
            stmt.query_map(params![pool, identity], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        let mut rows = Vec::with_capacity(names.len());
        for name in names {
            rows.extend(Self::dataset_row(&conn, pool, identity, &name)?);
        }
        Ok(rows)
    }

    /// Everything an update needs to decide, read in one transaction.
    pub fn snapshot(&self, pool: &str, identity: &str, name: &str) -> Result<Snapshot> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let dataset = Self::dataset_row(&tx, pool, identity, name)?;
        let records =
            Self::record_rows(&tx, pool, identity, name, -1)?.into_iter().map(|r| (r.key.clone(), r)).collect();
        let identity_datasets: i64 = tx
            .prepare_cached("SELECT COUNT(*) FROM datasets WHERE pool_id = ?1 AND identity_id = ?2 AND deleted = 0")?
            .query_row(params![pool, identity], |r| r.get(0))?;
        tx.commit()?;
        Ok(Snapshot { dataset, records, identity_datasets: identity_datasets as usize })
    }

    fn record_rows(conn: &Connection, pool: &str, identity: &str, name: &str, after: i64) -> Result<Vec<RecordRow>> {
        let mut stmt = conn.prepare_cached(
            "SELECT key, value, sync_count, modified, modified_by, device_modified FROM records
             WHERE pool_id = ?1 AND identity_id = ?2 AND dataset = ?3 AND sync_count > ?4
             ORDER BY sync_count, key",
        )?;
        let rows = stmt.query_map(params![pool, identity, name, after], |r| {
            Ok(RecordRow {
                key: r.get(0)?,
                value: r.get(1)?,
                sync_count: r.get(2)?,
                modified: r.get(3)?,
                modified_by: r.get(4)?,
                device_modified: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records changed after `after` (tombstones included), in SyncCount order.
    pub fn records_since(&self, pool: &str, identity: &str, name: &str, after: i64) -> Result<Vec<RecordRow>> {
        Self::record_rows(&self.conn(), pool, identity, name, after)
    }

    /// Applies one update inside the writer's transaction, if the dataset's SyncCount is
    /// still `expected`; `None` when another update got there first.
    fn apply_update(tx: &Connection, u: &Update) -> Result<Option<Vec<RecordRow>>> {
        let (pool, identity, name, expected, writes, device_modified, by) = (
            u.pool.as_str(),
            u.identity.as_str(),
            u.name.as_str(),
            u.expected,
            &u.writes,
            &u.device_modified,
            u.by.as_str(),
        );
        let current = Self::dataset_row(tx, pool, identity, name)?;
        if current.as_ref().map_or(0, |d| d.sync_count) != expected {
            return Ok(None);
        }
        let t = now();
        let count = expected + 1;
        match &current {
            Some(d) if !d.deleted || !writes.is_empty() => {
                if !writes.is_empty() {
                    tx.execute(
                        "UPDATE datasets SET sync_count = ?4, modified = ?5, modified_by = ?6, deleted = 0
                         WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3",
                        params![pool, identity, name, count, t, by],
                    )?;
                }
            }
            _ => {
                // A first update creates the dataset even when it writes nothing.
                tx.execute(
                    "INSERT OR REPLACE INTO datasets (pool_id, identity_id, name, sync_count, created, modified, modified_by, deleted)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, 0)",
                    params![pool, identity, name, if writes.is_empty() { expected } else { count }, t, by],
                )?;
            }
        }
        let mut written = Vec::with_capacity(writes.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO records (pool_id, identity_id, dataset, key, value, sync_count, modified, modified_by, device_modified)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for w in writes {
                let device = device_modified.get(&w.key).copied();
                stmt.execute(params![pool, identity, name, w.key, w.value, count, t, by, device])?;
                written.push(RecordRow {
                    key: w.key.clone(),
                    value: w.value.clone(),
                    sync_count: count,
                    modified: t,
                    modified_by: by.to_owned(),
                    device_modified: device,
                });
            }
        }
        Ok(Some(written))
    }

    /// Deletes a dataset: its records go, its row stays marked deleted with the
    /// SyncCount bumped, so clients that synced before learn of the deletion.
    pub fn delete_dataset(&self, pool: &str, identity: &str, name: &str, by: &str) -> Result<Option<DatasetRow>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(row) = Self::dataset_row(&tx, pool, identity, name)?.filter(|d| !d.deleted) else {
            return Ok(None);
        };
        tx.execute(
            "DELETE FROM records WHERE pool_id = ?1 AND identity_id = ?2 AND dataset = ?3",
            params![pool, identity, name],
        )?;
        tx.execute(
            "UPDATE datasets SET deleted = 1, sync_count = sync_count + 1, modified = ?4, modified_by = ?5
             WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3",
            params![pool, identity, name, now(), by],
        )?;
        tx.commit()?;
        Ok(Some(row))
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
/// update under its own savepoint, so one failing update spoils no other), commits once
/// — one fsync for the batch — and only then answers.
fn group_commit(mut conn: Connection, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(job) = jobs.try_recv()
        {
            batch.push(job);
        }
        let mut answers = Vec::new();
        let outcome = (|| -> Result<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut functions = std::collections::BTreeSet::new();
            for job in &batch {
                match job {
                    Job::Update(update, _) => {
                        tx.execute_batch("SAVEPOINT one_update")?;
                        let result = Store::apply_update(&tx, update);
                        if result.is_err() {
                            tx.execute_batch("ROLLBACK TO one_update")?;
                        }
                        tx.execute_batch("RELEASE one_update")?;
                        answers.push(result.map_err(|e| e.to_string()));
                    }
                    Job::Invocation { tenant, name, row } => {
                        tx.execute(
                            "INSERT INTO invocations (tenant, name, version, at, outcome, wall_us, fuel, peak_memory, log)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                            params![tenant, name, row.version, row.at, row.outcome, row.wall_us, row.fuel, row.peak_memory_bytes, row.log],
                        )?;
                        functions.insert((tenant.clone(), name.clone()));
                    }
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
        let mut answers = answers.into_iter();
        for job in batch {
            if let Job::Update(_, reply) = job {
                let answer = match &outcome {
                    Ok(()) => answers.next().unwrap_or_else(|| Err("lost answer".into())),
                    Err(e) => Err(format!("the update could not be committed: {e}")),
                };
                let _ = reply.send(answer);
            }
        }
    }
}
