//! The PostgreSQL store: several `serve` nodes on one database.
//!
//! Every piece of shared state is here, so any node answers any request. What makes
//! concurrent changes safe across nodes is row locks, not a writer thread: a change to
//! an identity's datasets, logins or existence first locks the identity's row
//! (`SELECT … FOR UPDATE`), so updates of one identity are serialised whichever nodes
//! they reach, and the SyncCount and dataset-limit checks that follow in the same
//! transaction cannot be raced past. Deploys lock their tenant (an advisory lock) for
//! the same reason. A transaction commits (with the server's `synchronous_commit`)
//! before its request is answered.
//!
//! Round trips are what a node spends most on, so the hot paths make few: an
//! UpdateRecords' transaction is one call of a server-side function
//! (`synctrig_update_v1`), a ListRecords page and an update's snapshot are one statement
//! each, and credentials, pools and function versions come from a cache that every
//! change's `NOTIFY` empties on every node ([`cache`]).
//!
//! Text columns are `COLLATE "C"` (byte order, as SQLite compares), so listings,
//! pagination and export order rows as the SQLite store does. Integers are `BIGINT`,
//! flags too (0 or 1), so an export is the same from either backend.

mod cache;
pub mod tls;

use super::export::{
    Counts, ImportError, NOT_EMPTY, Reader, Scope, TABLES, Target, Value, end_line, header, pool_refused, row_line,
};
use super::{
    Backend, Credential, DatasetHead, DatasetRow, DbError, DeployRefused, FunctionSummary, FunctionVersion,
    Idempotency, IdentityRow, InvocationRow, Issuer, KEEP_INVOCATIONS, LinkOutcome, MERGED_NAME_ATTEMPTS, Merge,
    MergeOutcome, MergeRule, Pool, PoolSettings, Principal, RecordCursor, RecordPage, RecordRow, Result, Snapshot,
    Update, UpdateOutcome, UpdateResult, merged_dataset_name, new_cognito_id, now, random_hex, random_key,
};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, RecyclingMethod, Transaction};
use futures_util::{StreamExt, pin_mut};
use std::collections::{BTreeMap, HashMap};
use synctrig_runtime::limits;
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

/// Connections per node, unless `serve --database-connections` says otherwise. Requests
/// beyond them wait (at most `POOL_WAIT`) for one.
pub const DEFAULT_CONNECTIONS: usize = 16;
/// How long a request waits for a connection before it fails.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// The longest a statement (and so a lock wait) may take.
const STATEMENT_TIMEOUT_MS: u32 = 30_000;
/// Background jobs (invocation records, sweeps) queued before new ones are dropped.
const BACKGROUND_QUEUE: usize = 4096;
/// Most background jobs written in one transaction.
const MAX_BATCH: usize = 256;
/// The advisory lock key under which migrations run (any constant; "synctrig").
const MIGRATION_LOCK: i64 = 0x73796e6374726967;

/// Schema migrations: (the schema version it brings, its SQL). Versions are the SQLite
/// store's: version 4 is SQLite's migrations 1 to 4 in one, and the next of either
/// backend is 5. Never edit one that has shipped: add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        4,
        r#"CREATE TABLE meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE tenants (name TEXT COLLATE "C" PRIMARY KEY, created BIGINT NOT NULL);
    CREATE TABLE credentials (
        access_key TEXT COLLATE "C" PRIMARY KEY, secret TEXT NOT NULL, kind TEXT NOT NULL,
        tenant TEXT COLLATE "C", pool_id TEXT COLLATE "C", identity_id TEXT COLLATE "C", session_token TEXT,
        expires BIGINT, authenticated BIGINT NOT NULL DEFAULT 0);
    CREATE INDEX credentials_by_expiry ON credentials (expires) WHERE expires IS NOT NULL;
    CREATE INDEX credentials_by_identity ON credentials (identity_id);
    CREATE INDEX credentials_by_pool ON credentials (pool_id);
    CREATE TABLE pools (
        pool_id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL, tenant TEXT COLLATE "C" NOT NULL,
        sync_trigger TEXT, created BIGINT NOT NULL, allow_unauthenticated BIGINT NOT NULL DEFAULT 1,
        settings TEXT NOT NULL DEFAULT '{}');
    CREATE INDEX pools_by_tenant ON pools (tenant, pool_id);
    CREATE TABLE identities (
        identity_id TEXT COLLATE "C" PRIMARY KEY, pool_id TEXT COLLATE "C" NOT NULL, created BIGINT NOT NULL,
        modified BIGINT NOT NULL DEFAULT 0, merged_into TEXT COLLATE "C",
        authenticated BIGINT NOT NULL DEFAULT 0);
    CREATE INDEX identities_by_pool ON identities (pool_id, identity_id);
    CREATE INDEX identities_by_merged_into ON identities (merged_into) WHERE merged_into IS NOT NULL;
    CREATE TABLE logins (
        pool_id TEXT COLLATE "C" NOT NULL, provider TEXT COLLATE "C" NOT NULL, subject TEXT COLLATE "C" NOT NULL,
        identity_id TEXT COLLATE "C" NOT NULL, created BIGINT NOT NULL,
        PRIMARY KEY (pool_id, provider, subject));
    CREATE INDEX logins_by_identity ON logins (identity_id);
    CREATE TABLE datasets (
        pool_id TEXT COLLATE "C" NOT NULL, identity_id TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        sync_count BIGINT NOT NULL, created BIGINT NOT NULL, modified BIGINT NOT NULL,
        modified_by TEXT NOT NULL, deleted BIGINT NOT NULL DEFAULT 0, deleted_at BIGINT NOT NULL DEFAULT 0,
        merged_from TEXT COLLATE "C", merged_base TEXT COLLATE "C",
        PRIMARY KEY (pool_id, identity_id, name));
    CREATE INDEX datasets_by_identity ON datasets (identity_id);
    CREATE TABLE records (
        pool_id TEXT COLLATE "C" NOT NULL, identity_id TEXT COLLATE "C" NOT NULL, dataset TEXT COLLATE "C" NOT NULL,
        key TEXT COLLATE "C" NOT NULL, value TEXT, sync_count BIGINT NOT NULL, modified BIGINT NOT NULL,
        modified_by TEXT NOT NULL, device_modified_ms BIGINT,
        PRIMARY KEY (pool_id, identity_id, dataset, key));
    CREATE INDEX records_by_sync_count ON records (pool_id, identity_id, dataset, sync_count, key);
    CREATE INDEX records_by_identity ON records (identity_id);
    CREATE TABLE functions (
        tenant TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL,
        digest TEXT NOT NULL, wasm BYTEA NOT NULL, created BIGINT NOT NULL, source TEXT, handler TEXT,
        PRIMARY KEY (tenant, name, version));
    CREATE TABLE invocations (
        id BIGSERIAL PRIMARY KEY, tenant TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL, at BIGINT NOT NULL, outcome TEXT NOT NULL, wall_us BIGINT NOT NULL,
        fuel BIGINT NOT NULL, peak_memory BIGINT NOT NULL, log TEXT NOT NULL);
    CREATE INDEX invocations_by_function ON invocations (tenant, name, id);
    CREATE TABLE applied_updates (
        token_hash TEXT COLLATE "C" PRIMARY KEY, request_hash TEXT NOT NULL, answer TEXT NOT NULL,
        expires BIGINT NOT NULL);
    CREATE INDEX applied_updates_by_expiry ON applied_updates (expires);
    CREATE TABLE oidc_issuers (
        tenant TEXT COLLATE "C" NOT NULL, issuer TEXT COLLATE "C" NOT NULL, audiences TEXT NOT NULL,
        jwks TEXT NOT NULL, jwks_file TEXT, created BIGINT NOT NULL, PRIMARY KEY (tenant, issuer));"#,
    ),
    // 5: merged datasets' names keep to the model's 128 characters (`migrate` renames the
    // longer ones merges made before, in Rust: a free name needs the merge's own rule).
    (5, "-- no change of schema"),
];

/// SQLite's `SHORT_MERGED_NAMES`: the first schema whose merged names all keep to 128.
const SHORT_MERGED_NAMES: i64 = 5;

/// Server-side code, (re)created at every start-up under the migration lock. Not a schema
/// migration: it holds no data, and an export's schema version stays SQLite's. A change
/// to it is a new name (`_v2`), so nodes of two releases can run side by side.
///
/// `synctrig_update_v1` is an UpdateRecords' whole transaction in one statement (one
/// round trip instead of four): under the identity's row lock (which every change to an
/// identity's data takes first) it re-checks the SyncCount and the dataset limit, then
/// writes the dataset, its records and the answer kept for retries. The rules are the
/// SQLite store's `apply_update`.
const FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION synctrig_update_v1(
    p_pool TEXT, p_identity TEXT, p_name TEXT, p_expected BIGINT, p_now BIGINT, p_by TEXT, p_max BIGINT,
    p_keys TEXT[], p_values TEXT[], p_devices BIGINT[],
    p_token_hash TEXT, p_request_hash TEXT, p_answer TEXT, p_expires BIGINT,
    OUT outcome TEXT, OUT answer TEXT)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_live BOOLEAN;
    v_found BOOLEAN;
    v_count BIGINT;
    v_deleted BIGINT;
    v_stored_hash TEXT;
    v_stored_answer TEXT;
    v_writes INT := COALESCE(cardinality(p_keys), 0);
    v_new BIGINT;
BEGIN
    SELECT i.merged_into IS NULL AND i.pool_id = p_pool INTO v_live
        FROM identities i WHERE i.identity_id = p_identity FOR UPDATE;
    IF v_live IS NOT TRUE THEN
        outcome := 'identity_gone';
        RETURN;
    END IF;
    SELECT d.sync_count, d.deleted INTO v_count, v_deleted
        FROM datasets d WHERE d.pool_id = p_pool AND d.identity_id = p_identity AND d.name = p_name;
    v_found := FOUND;
    IF COALESCE(v_count, 0) <> p_expected THEN
        -- A retry of an update that was applied gets the answer it had; anything else
        -- on a stale SyncCount is a conflict.
        SELECT a.request_hash, a.answer INTO v_stored_hash, v_stored_answer
            FROM applied_updates a WHERE a.token_hash = p_token_hash;
        IF FOUND AND v_stored_hash = p_request_hash THEN
            outcome := 'replayed';
            answer := v_stored_answer;
        ELSE
            outcome := 'conflict';
        END IF;
        RETURN;
    END IF;
    IF (NOT v_found OR v_deleted <> 0) AND (
        SELECT COUNT(*) FROM datasets d
        WHERE d.pool_id = p_pool AND d.identity_id = p_identity AND d.deleted = 0) >= p_max THEN
        outcome := 'too_many_datasets';
        RETURN;
    END IF;
    -- A change, or bringing a deleted dataset back, is a new SyncCount; creating an empty
    -- dataset is not (nothing to sync).
    v_new := CASE WHEN v_writes = 0 AND NOT (v_found AND v_deleted <> 0) THEN p_expected ELSE p_expected + 1 END;
    IF NOT v_found THEN
        -- A first update creates the dataset even when it writes nothing.
        INSERT INTO datasets (pool_id, identity_id, name, sync_count, created, modified, modified_by, deleted, deleted_at)
            VALUES (p_pool, p_identity, p_name, v_new, p_now, p_now, p_by, 0, 0);
    ELSIF v_deleted <> 0 THEN
        -- Recreating a deleted dataset keeps counting, and keeps its deletion's count.
        UPDATE datasets d SET sync_count = v_new, created = p_now, modified = p_now, modified_by = p_by, deleted = 0
            WHERE d.pool_id = p_pool AND d.identity_id = p_identity AND d.name = p_name;
    END IF;
    IF v_writes > 0 THEN
        -- The common case's three writes in one statement: the dataset's new count (unless
        -- written above), the records, and the answer kept for retries.
        WITH dataset AS (
            UPDATE datasets d SET sync_count = v_new, modified = p_now, modified_by = p_by
            WHERE v_found AND v_deleted = 0
                AND d.pool_id = p_pool AND d.identity_id = p_identity AND d.name = p_name),
        written AS (
            INSERT INTO records AS r (pool_id, identity_id, dataset, key, value, sync_count, modified, modified_by, device_modified_ms)
            SELECT p_pool, p_identity, p_name, w.k, w.v, v_new, p_now, p_by, w.d
            FROM UNNEST(p_keys, p_values, p_devices) AS w (k, v, d)
            ON CONFLICT (pool_id, identity_id, dataset, key) DO UPDATE SET value = EXCLUDED.value,
                sync_count = EXCLUDED.sync_count, modified = EXCLUDED.modified,
                modified_by = EXCLUDED.modified_by, device_modified_ms = EXCLUDED.device_modified_ms)
        INSERT INTO applied_updates AS a (token_hash, request_hash, answer, expires)
            VALUES (p_token_hash, p_request_hash, p_answer, p_expires)
            ON CONFLICT (token_hash) DO UPDATE SET request_hash = EXCLUDED.request_hash,
                answer = EXCLUDED.answer, expires = EXCLUDED.expires;
    END IF;
    outcome := 'applied';
END
$fn$"#;

/// Work done off the request path.
enum Background {
    Invocation {
        tenant: String,
        name: String,
        row: InvocationRow,
    },
    Purge,
    /// Answered once every job queued before it is written (or failed).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The PostgreSQL store.
pub struct Postgres {
    pool: deadpool_postgres::Pool,
    background: tokio::sync::mpsc::Sender<Background>,
    cache: std::sync::Arc<cache::Cache>,
    /// Dropped with the store, which stops the cache's listener.
    _stop_listener: tokio::sync::oneshot::Sender<()>,
}

/// `url` with its password hidden, for logs.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &rest[..colon], &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn other(e: impl std::fmt::Display) -> DbError {
    DbError::Other(e.to_string())
}

const POOL_COLUMNS: &str = "pool_id, tenant, sync_trigger, name, allow_unauthenticated, settings";

fn pool_from_row(r: &Row) -> Result<Pool> {
    let settings: String = r.try_get(5)?;
    Ok(Pool {
        pool_id: r.try_get(0)?,
        tenant: r.try_get(1)?,
        sync_trigger: r.try_get(2)?,
        name: r.try_get(3)?,
        allow_unauthenticated: r.try_get::<_, i64>(4)? != 0,
        // Written by this program from the same type.
        settings: serde_json::from_str(&settings).unwrap_or_default(),
    })
}

const DATASET_COLUMNS: &str = "d.name, d.sync_count, d.created, d.modified, d.modified_by, d.deleted, d.deleted_at,
    (SELECT COUNT(*) FROM records r WHERE r.pool_id = d.pool_id AND r.identity_id = d.identity_id
         AND r.dataset = d.name AND r.value IS NOT NULL),
    (SELECT COALESCE(SUM(octet_length(r.key) + octet_length(r.value)), 0)::BIGINT FROM records r
         WHERE r.pool_id = d.pool_id AND r.identity_id = d.identity_id AND r.dataset = d.name
         AND r.value IS NOT NULL)";

fn dataset_from_row(r: &Row) -> Result<DatasetRow> {
    Ok(DatasetRow {
        name: r.try_get(0)?,
        sync_count: r.try_get(1)?,
        created: r.try_get(2)?,
        modified: r.try_get(3)?,
        modified_by: r.try_get(4)?,
        deleted: r.try_get::<_, i64>(5)? != 0,
        deleted_at: r.try_get(6)?,
        num_records: r.try_get(7)?,
        data_storage: r.try_get(8)?,
    })
}

const RECORD_COLUMNS: &str = "key, value, sync_count, modified, modified_by, device_modified_ms";

/// The record in `RECORD_COLUMNS` from column `at` on, if any (a LEFT JOIN's row may have
/// none).
fn record_at(r: &Row, at: usize) -> Result<Option<RecordRow>> {
    let Some(key) = r.try_get::<_, Option<String>>(at)? else { return Ok(None) };
    Ok(Some(RecordRow {
        key,
        value: r.try_get(at + 1)?,
        sync_count: r.try_get(at + 2)?,
        modified: r.try_get(at + 3)?,
        modified_by: r.try_get(at + 4)?,
        device_modified_ms: r.try_get(at + 5)?,
    }))
}

const IDENTITY_COLUMNS: &str = "identity_id, pool_id, created, modified, merged_into, authenticated";

fn identity_from_row(r: &Row) -> Result<IdentityRow> {
    Ok(IdentityRow {
        identity_id: r.try_get(0)?,
        pool_id: r.try_get(1)?,
        created: r.try_get(2)?,
        modified: r.try_get(3)?,
        merged_into: r.try_get(4)?,
        ever_authenticated: r.try_get::<_, i64>(5)? != 0,
        logins: Vec::new(),
    })
}

/// A stored answer; this program wrote it, so it decodes (an empty answer otherwise).
fn decode_answer(answer: &str) -> Vec<RecordRow> {
    serde_json::from_str(answer).unwrap_or_default()
}

/// Runs `sql` (with `params`) as a prepared statement cached on the connection.
async fn query(c: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query(&stmt, params).await?)
}

async fn query_opt(c: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params).await?)
}

async fn query_one(c: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_one(&stmt, params).await?)
}

async fn execute(c: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, params).await?)
}

async fn dataset_row(c: &impl GenericClient, pool: &str, identity: &str, name: &str) -> Result<Option<DatasetRow>> {
    let sql =
        format!("SELECT {DATASET_COLUMNS} FROM datasets d WHERE d.pool_id = $1 AND d.identity_id = $2 AND d.name = $3");
    query_opt(c, &sql, &[&pool, &identity, &name]).await?.as_ref().map(dataset_from_row).transpose()
}

const LIVE_DATASETS: &str = "SELECT COUNT(*) FROM datasets WHERE pool_id = $1 AND identity_id = $2 AND deleted = 0";

const LOCK_IDENTITY: &str = "SELECT merged_into IS NULL AND pool_id = $2 AND ($3 = FALSE OR authenticated = 0)
     FROM identities WHERE identity_id = $1 FOR UPDATE";

/// Locks an identity's row for the rest of the transaction: every change to an
/// identity's datasets, logins or existence takes this lock first. Answers whether the
/// identity is a live (not merged) identity of `pool` — and, with `unauthenticated`,
/// never had a login.
async fn lock_identity(tx: &Transaction<'_>, pool: &str, identity: &str, unauthenticated: bool) -> Result<bool> {
    let row = query_opt(tx, LOCK_IDENTITY, &[&identity, &pool, &unauthenticated]).await?;
    Ok(match row {
        Some(r) => r.try_get(0)?,
        None => false,
    })
}

async fn with_logins(c: &impl GenericClient, mut row: IdentityRow) -> Result<IdentityRow> {
    let rows = query(
        c,
        "SELECT provider, subject FROM logins WHERE identity_id = $1 ORDER BY provider, subject",
        &[&row.identity_id],
    )
    .await?;
    row.logins = rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_>>()?;
    Ok(row)
}

/// A merged dataset's name (see the SQLite store's `merged_name`).
async fn merged_name(tx: &Transaction<'_>, pool: &str, target: &str, base: &str, source: &str) -> Result<String> {
    for n in 1..=MERGED_NAME_ATTEMPTS {
        let candidate = merged_dataset_name(base, source, n);
        let taken: bool = query_one(
            tx,
            "SELECT EXISTS (SELECT 1 FROM datasets WHERE pool_id = $1 AND identity_id = $2 AND name = $3)",
            &[&pool, &target, &candidate],
        )
        .await?
        .try_get(0)?;
        if !taken {
            return Ok(candidate);
        }
    }
    Err(DbError::Other("no free name for a merged dataset".into()))
}

/// SQLite's `conform_pool_settings`: settings made before schema 5, as
/// [`PoolSettings::conformed`] keeps them.
async fn conform_pool_settings(tx: &Transaction<'_>) -> Result<usize> {
    let pools =
        query(tx, "SELECT pool_id, settings FROM pools WHERE settings LIKE '%,%' ORDER BY pool_id", &[]).await?;
    let mut changed = 0;
    for row in &pools {
        let (pool, settings): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        let Ok(parsed) = serde_json::from_str::<PoolSettings>(&settings) else { continue };
        if let Some(conformed) = parsed.conformed() {
            let text = serde_json::to_string(&conformed).map_err(other)?;
            execute(tx, "UPDATE pools SET settings = $2 WHERE pool_id = $1", &[&pool, &text]).await?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// SQLite's `shorten_merged_names`: merged datasets named past the model's 128 characters
/// take the names merges make now, their records following.
async fn shorten_merged_names(tx: &Transaction<'_>) -> Result<usize> {
    let long = query(
        tx,
        "SELECT pool_id, identity_id, name, COALESCE(merged_base, name), COALESCE(merged_from, '') FROM datasets
         WHERE char_length(name) > $1 ORDER BY pool_id, identity_id, name",
        &[&(limits::MAX_DATASET_NAME_CHARS as i32)],
    )
    .await?;
    for row in &long {
        let (pool, identity, name, base, source): (String, String, String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
        let new_name = merged_name(tx, &pool, &identity, &base, &source).await?;
        execute(
            tx,
            "UPDATE datasets SET name = $4 WHERE pool_id = $1 AND identity_id = $2 AND name = $3",
            &[&pool, &identity, &name, &new_name],
        )
        .await?;
        execute(
            tx,
            "UPDATE records SET dataset = $4 WHERE pool_id = $1 AND identity_id = $2 AND dataset = $3",
            &[&pool, &identity, &name, &new_name],
        )
        .await?;
    }
    Ok(long.len())
}

/// The export's value of column `i` of `row`.
fn column_value(row: &Row, i: usize) -> Result<Value> {
    let ty = row.columns()[i].type_();
    Ok(if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Integer)
    } else if *ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Value::Null, Value::Blob)
    } else if *ty == Type::TEXT {
        row.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text)
    } else {
        return Err(DbError::Other(format!("column {} has the unexpected type {ty}", row.columns()[i].name())));
    })
}

/// A stream value as a parameter of type `ty`, or why it cannot be one.
fn param(value: Value, ty: &Type) -> std::result::Result<Box<dyn ToSql + Sync + Send>, String> {
    Ok(match (value, ty) {
        (Value::Null, t) if *t == Type::INT8 => Box::new(None::<i64>),
        (Value::Null, t) if *t == Type::BYTEA => Box::new(None::<Vec<u8>>),
        (Value::Null, _) => Box::new(None::<String>),
        (Value::Integer(i), t) if *t == Type::INT8 => Box::new(i),
        (Value::Text(s), t) if *t == Type::TEXT => Box::new(s),
        (Value::Blob(b), t) if *t == Type::BYTEA => Box::new(b),
        (v, t) => return Err(format!("{v:?} is not a {t}")),
    })
}

impl Postgres {
    /// Connects to the database at `url` and brings its schema up to date (under an
    /// advisory lock, so nodes starting at once apply each migration once).
    /// TLS as the URL's `sslmode` and `sslrootcert` ask ([`tls`]).
    pub async fn open(url: &str, connections: usize) -> Result<Postgres> {
        let connect = tls::parse(url).map_err(DbError::Other)?;
        Self::open_with(connect.config, connect.tls, connections).await
    }

    /// [`Postgres::open`] with a parsed configuration (TLS when the server offers it).
    #[cfg(test)]
    pub(crate) async fn open_config(config: tokio_postgres::Config, connections: usize) -> Result<Postgres> {
        let tls = tls::parse("postgres://localhost").map_err(DbError::Other)?.tls;
        Self::open_with(config, tls, connections).await
    }

    async fn open_with(
        mut config: tokio_postgres::Config,
        tls: tokio_postgres_rustls::MakeRustlsConnect,
        connections: usize,
    ) -> Result<Postgres> {
        if config.get_options().is_none() {
            // Bounds every wait on a lock or a slow statement.
            config.options(format!("-c statement_timeout={STATEMENT_TIMEOUT_MS}"));
        }
        if config.get_application_name().is_none() {
            config.application_name("synctrig-wasm");
        }
        let listener_config = config.clone();
        let manager =
            Manager::from_config(config, tls.clone(), ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .build()
            .map_err(other)?;
        migrate(&pool).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(BACKGROUND_QUEUE);
        tokio::spawn(background(pool.clone(), rx));
        let cache = std::sync::Arc::new(cache::Cache::new());
        let (stop_listener, stop) = tokio::sync::oneshot::channel();
        tokio::spawn(cache.clone().listen(listener_config, tls, stop));
        Ok(Postgres { pool, background: tx, cache, _stop_listener: stop_listener })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        Ok(self.pool.get().await?)
    }

    /// Whether this node's connections speak TLS.
    #[cfg(test)]
    pub(crate) async fn uses_tls(&self) -> Result<bool> {
        let c = self.client().await?;
        Ok(query_one(&c, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await?.try_get(0)?)
    }

    /// Whether this node caches what it reads (its listener is connected).
    #[cfg(test)]
    pub(crate) fn caching(&self) -> bool {
        self.cache.listening()
    }

    /// `read`'s answer, from this node's cache when it has it; what is found is kept
    /// there (what is not is read again next time: it may be created on any node).
    async fn through<K: cache::Kind>(
        &self,
        key: K::Key,
        read: impl std::future::Future<Output = Result<Option<K::Value>>>,
    ) -> Result<Option<K::Value>> {
        if let Some(hit) = self.cache.get::<K>(&key) {
            return Ok(Some(hit));
        }
        // Before the read starts (a future does nothing until awaited).
        let ticket = self.cache.ticket::<K>();
        let found = read.await?;
        if let Some(value) = &found {
            self.cache.put::<K>(ticket, key, value.clone());
        }
        Ok(found)
    }

    /// Commits a change to what nodes cache: every node drops its cached reads of
    /// `kinds` once it commits, this one at once.
    async fn commit_change(&self, tx: Transaction<'_>, kinds: cache::Kinds) -> Result<()> {
        tx.execute("SELECT pg_notify($1, $2)", &[&cache::CHANNEL, &kinds.payload()]).await?;
        tx.commit().await?;
        self.cache.invalidate(kinds);
        Ok(())
    }

    async fn apply_update(&self, u: &Update) -> Result<UpdateOutcome> {
        let t = now();
        // Every written record is at the next SyncCount: an update that writes nothing
        // stores no answer, so its count does not matter here.
        let count = u.expected + 1;
        let written: Vec<RecordRow> = u
            .writes
            .iter()
            .map(|w| RecordRow {
                key: w.key.clone(),
                value: w.value.clone(),
                sync_count: count,
                modified: t,
                modified_by: u.by.clone(),
                device_modified_ms: u.device_modified_ms.get(&w.key).copied(),
            })
            .collect();
        let keys: Vec<&str> = written.iter().map(|r| r.key.as_str()).collect();
        let values: Vec<Option<&str>> = written.iter().map(|r| r.value.as_deref()).collect();
        let devices: Vec<Option<i64>> = written.iter().map(|r| r.device_modified_ms).collect();
        let answer = serde_json::to_string(&written).unwrap_or_default();
        let max = i64::try_from(u.max_datasets).unwrap_or(i64::MAX);
        let i = &u.idempotency;
        // One statement, so one round trip and its own transaction: the function locks the
        // identity, re-checks the SyncCount and the dataset limit, and writes.
        let c = self.client().await?;
        let row = query_one(
            &c,
            "SELECT outcome, answer FROM synctrig_update_v1($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            &[
                &u.pool,
                &u.identity,
                &u.name,
                &u.expected,
                &t,
                &u.by,
                &max,
                &keys,
                &values,
                &devices,
                &i.token_hash,
                &i.request_hash,
                &answer,
                &i.expires,
            ],
        )
        .await?;
        let outcome: String = row.try_get(0)?;
        Ok(match outcome.as_str() {
            "applied" => UpdateOutcome::Applied(written),
            "replayed" => UpdateOutcome::Replayed(decode_answer(row.try_get(1)?)),
            "conflict" => UpdateOutcome::Conflict,
            "too_many_datasets" => UpdateOutcome::TooManyDatasets,
            "identity_gone" => UpdateOutcome::IdentityGone,
            other => return Err(DbError::Other(format!("synctrig_update_v1 answered {other:?}"))),
        })
    }

    async fn apply_delete(&self, pool: &str, identity: &str, name: &str, by: &str) -> Result<Option<DatasetRow>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_identity(&tx, pool, identity, false).await?;
        let Some(row) = dataset_row(&tx, pool, identity, name).await?.filter(|d| !d.deleted) else {
            return Ok(None);
        };
        execute(
            &tx,
            "DELETE FROM records WHERE pool_id = $1 AND identity_id = $2 AND dataset = $3",
            &[&pool, &identity, &name],
        )
        .await?;
        execute(
            &tx,
            "UPDATE datasets SET deleted = 1, sync_count = sync_count + 1, deleted_at = sync_count + 1,
                 modified = $4, modified_by = $5
             WHERE pool_id = $1 AND identity_id = $2 AND name = $3",
            &[&pool, &identity, &name, &now(), &by],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    /// A credential as stored, if it is valid: an identity's only while the identity is
    /// live and, unless it signed in, its pool allows unauthenticated identities.
    async fn read_credential(&self, access_key: &str) -> Result<Option<Credential>> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            "SELECT c.secret, c.kind, c.tenant, c.pool_id, c.identity_id, c.session_token, c.expires
             FROM credentials c LEFT JOIN identities i ON i.identity_id = c.identity_id
             LEFT JOIN pools p ON p.pool_id = i.pool_id
             WHERE c.access_key = $1
             AND (c.kind != 'identity' OR (i.identity_id IS NOT NULL AND i.merged_into IS NULL
                  AND (c.authenticated = 1 OR p.allow_unauthenticated = 1)))",
            &[&access_key],
        )
        .await?;
        let Some(r) = row else { return Ok(None) };
        let (secret, kind): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        let (tenant, pool_id, identity_id): (Option<String>, Option<String>, Option<String>) =
            (r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
        let principal = match (kind.as_str(), tenant, pool_id, identity_id) {
            ("root", ..) => Principal::Root,
            ("developer", Some(tenant), ..) => Principal::Developer { tenant },
            ("identity", _, Some(pool_id), Some(identity_id)) => Principal::Identity { pool_id, identity_id },
            _ => return Ok(None),
        };
        Ok(Some(Credential { secret, principal, session_token: r.try_get(5)?, expires: r.try_get(6)? }))
    }

    async fn schema_version(c: &impl GenericClient) -> Result<i64> {
        Ok(query_one(c, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.try_get(0)?)
    }
}

async fn migrate(pool: &deadpool_postgres::Pool) -> Result<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // Taken before anything is read or created: a node starting beside another waits
    // here, then finds the schema made.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
    )
    .await?;
    let applied: i64 =
        tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.try_get(0)?;
    let newest = MIGRATIONS.last().map_or(0, |m| m.0);
    if applied > newest {
        return Err(DbError::Other(format!(
            "the database's schema (version {applied}) is newer than this synctrig-wasm knows ({newest}): upgrade it"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)", &[version, &now()]).await?;
    }
    if applied < SHORT_MERGED_NAMES {
        shorten_merged_names(&tx).await?;
        conform_pool_settings(&tx).await?;
    }
    tx.batch_execute(FUNCTIONS).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes queued invocation records and runs sweeps, a batch per transaction.
async fn background(pool: deadpool_postgres::Pool, mut jobs: tokio::sync::mpsc::Receiver<Background>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(job) = jobs.try_recv()
        {
            batch.push(job);
        }
        if let Err(e) = write_batch(&pool, batch).await {
            tracing::warn!("cannot record trigger invocations or sweep: {e}");
        }
    }
}

async fn write_batch(pool: &deadpool_postgres::Pool, batch: Vec<Background>) -> Result<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let mut functions = std::collections::BTreeSet::new();
    // Dropped, so answered, when the batch is done whichever way.
    let mut _flushed = Vec::new();
    for job in batch {
        match job {
            Background::Invocation { tenant, name, row } => {
                execute(
                    &tx,
                    "INSERT INTO invocations (tenant, name, version, at, outcome, wall_us, fuel, peak_memory, log)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[
                        &tenant,
                        &name,
                        &row.version,
                        &row.at,
                        &row.outcome,
                        &row.wall_us,
                        &row.fuel,
                        &row.peak_memory_bytes,
                        &row.log,
                    ],
                )
                .await?;
                functions.insert((tenant, name));
            }
            Background::Purge => {
                let t = now();
                execute(&tx, "DELETE FROM credentials WHERE expires IS NOT NULL AND expires < $1", &[&t]).await?;
                execute(&tx, "DELETE FROM applied_updates WHERE expires < $1", &[&t]).await?;
            }
            Background::Flush(done) => _flushed.push(done),
        }
    }
    for (tenant, name) in functions {
        execute(
            &tx,
            "DELETE FROM invocations WHERE tenant = $1 AND name = $2 AND id <= (
                 SELECT id FROM invocations WHERE tenant = $1 AND name = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)",
            &[&tenant, &name, &KEEP_INVOCATIONS],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[async_trait::async_trait]
impl Backend for Postgres {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn update(&self, update: Update) -> UpdateResult {
        self.apply_update(&update).await
    }

    async fn delete_dataset(&self, pool: &str, identity: &str, name: &str, by: &str) -> Result<Option<DatasetRow>> {
        self.apply_delete(pool, identity, name, by).await
    }

    fn submit_invocation(&self, tenant: &str, name: &str, row: InvocationRow) {
        let job = Background::Invocation { tenant: tenant.to_owned(), name: name.to_owned(), row };
        if self.background.try_send(job).is_err() {
            tracing::warn!(tenant, function = name, "the invocation log queue is full: an invocation is not recorded");
        }
    }

    fn submit_purge(&self) {
        let _ = self.background.try_send(Background::Purge);
    }

    async fn meta_or_insert(&self, key: &str, value: String) -> Result<(String, bool)> {
        let c = self.client().await?;
        let created =
            execute(&c, "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", &[&key, &value])
                .await?
                == 1;
        let value: String = query_one(&c, "SELECT value FROM meta WHERE key = $1", &[&key]).await?.try_get(0)?;
        Ok((value, created))
    }

    async fn put_root_credential(&self, access_key: &str, secret: &str) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        execute(&tx, "DELETE FROM credentials WHERE kind = 'root' AND access_key != $1", &[&access_key]).await?;
        execute(
            &tx,
            "INSERT INTO credentials (access_key, secret, kind) VALUES ($1, $2, 'root')
             ON CONFLICT (access_key) DO UPDATE SET secret = EXCLUDED.secret, kind = 'root', tenant = NULL,
                 pool_id = NULL, identity_id = NULL, session_token = NULL, expires = NULL, authenticated = 0",
            &[&access_key, &secret],
        )
        .await?;
        self.commit_change(tx, cache::Kinds::CREDENTIALS).await
    }

    async fn create_tenant(&self, name: &str) -> Result<Option<(String, String)>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let inserted = execute(
            &tx,
            "INSERT INTO tenants (name, created) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &now()],
        )
        .await?;
        if inserted == 0 {
            return Ok(None);
        }
        let (ak, sk) = (random_key("AKIA"), random_hex(20));
        execute(
            &tx,
            "INSERT INTO credentials (access_key, secret, kind, tenant) VALUES ($1, $2, 'developer', $3)",
            &[&ak, &sk, &name],
        )
        .await?;
        tx.commit().await?;
        Ok(Some((ak, sk)))
    }

    async fn tenant_exists(&self, name: &str) -> Result<bool> {
        let c = self.client().await?;
        Ok(query_opt(&c, "SELECT 1 FROM tenants WHERE name = $1", &[&name]).await?.is_some())
    }

    async fn create_pool(
        &self,
        tenant: &str,
        region: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<Pool> {
        let pool_id = new_cognito_id(region);
        let json = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO pools (pool_id, name, tenant, created, allow_unauthenticated, settings) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&pool_id, &name, &tenant, &now(), &(allow_unauthenticated as i64), &json],
        )
        .await?;
        Ok(Pool {
            pool_id,
            tenant: tenant.to_owned(),
            sync_trigger: None,
            name: name.to_owned(),
            allow_unauthenticated,
            settings: settings.clone(),
        })
    }

    async fn update_pool(
        &self,
        pool_id: &str,
        name: &str,
        allow_unauthenticated: bool,
        settings: &PoolSettings,
    ) -> Result<()> {
        let json = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        execute(
            &tx,
            "UPDATE pools SET name = $2, allow_unauthenticated = $3, settings = $4 WHERE pool_id = $1",
            &[&pool_id, &name, &(allow_unauthenticated as i64), &json],
        )
        .await?;
        self.commit_change(tx, cache::Kinds::POOLS.and(cache::Kinds::CREDENTIALS)).await
    }

    async fn credential(&self, access_key: &str) -> Result<Option<Credential>> {
        self.through::<cache::Credentials>(access_key.to_owned(), self.read_credential(access_key)).await
    }

    async fn issue_identity_credentials(
        &self,
        pool_id: &str,
        identity_id: &str,
        authenticated: bool,
        ttl_secs: i64,
    ) -> Result<(String, String, String, i64)> {
        let (ak, sk, token, expires) = (random_key("ASIA"), random_hex(20), random_hex(32), now() + ttl_secs);
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO credentials (access_key, secret, kind, pool_id, identity_id, session_token, expires, authenticated)
             VALUES ($1, $2, 'identity', $3, $4, $5, $6, $7)",
            &[&ak, &sk, &pool_id, &identity_id, &token, &expires, &(authenticated as i64)],
        )
        .await?;
        Ok((ak, sk, token, expires))
    }

    async fn pool(&self, pool_id: &str) -> Result<Option<Pool>> {
        let read = async {
            let c = self.client().await?;
            let sql = format!("SELECT {POOL_COLUMNS} FROM pools WHERE pool_id = $1");
            query_opt(&c, &sql, &[&pool_id]).await?.as_ref().map(pool_from_row).transpose()
        };
        self.through::<cache::Pools>(pool_id.to_owned(), read).await
    }

    async fn pools_after(&self, tenant: Option<&str>, after: &str, limit: usize) -> Result<Vec<Pool>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {POOL_COLUMNS} FROM pools WHERE ($1::TEXT IS NULL OR tenant = $1) AND pool_id > $2
             ORDER BY pool_id LIMIT $3"
        );
        query(&c, &sql, &[&tenant, &after, &(limit as i64)]).await?.iter().map(pool_from_row).collect()
    }

    async fn sync_triggers(&self) -> Result<Vec<(String, String)>> {
        let c = self.client().await?;
        query(&c, "SELECT tenant, sync_trigger FROM pools WHERE sync_trigger IS NOT NULL", &[])
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn set_sync_trigger(&self, pool_id: &str, function: Option<&str>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        execute(&tx, "UPDATE pools SET sync_trigger = $2 WHERE pool_id = $1", &[&pool_id, &function]).await?;
        self.commit_change(tx, cache::Kinds::POOLS).await
    }

    async fn create_identity(&self, pool_id: &str, region: &str) -> Result<String> {
        let identity_id = new_cognito_id(region);
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO identities (identity_id, pool_id, created, modified) VALUES ($1, $2, $3, $3)",
            &[&identity_id, &pool_id, &now()],
        )
        .await?;
        Ok(identity_id)
    }

    async fn identity_pool(&self, identity_id: &str) -> Result<Option<String>> {
        let read = async {
            let c = self.client().await?;
            query_opt(&c, "SELECT pool_id FROM identities WHERE identity_id = $1", &[&identity_id])
                .await?
                .map(|r| Ok(r.try_get(0)?))
                .transpose()
        };
        self.through::<cache::IdentityPools>(identity_id.to_owned(), read).await
    }

    async fn next_function_version(&self, tenant: &str, name: &str) -> Result<i64> {
        let c = self.client().await?;
        Ok(query_one(
            &c,
            "SELECT COALESCE(MAX(version), 0) + 1 FROM functions WHERE tenant = $1 AND name = $2",
            &[&tenant, &name],
        )
        .await?
        .try_get(0)?)
    }

    async fn deploy_function(
        &self,
        tenant: &str,
        name: &str,
        digest: &str,
        wasm: &[u8],
        script: Option<(&str, &str)>,
        expected_latest: Option<i64>,
    ) -> Result<std::result::Result<i64, DeployRefused>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Deploys of one tenant, on any node, one at a time: the version and the limits
        // below cannot be raced past.
        let lock = format!("deploy/{tenant}");
        execute(&tx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&lock]).await?;
        let version: i64 = query_one(
            &tx,
            "SELECT COALESCE(MAX(version), 0) + 1 FROM functions WHERE tenant = $1 AND name = $2",
            &[&tenant, &name],
        )
        .await?
        .try_get(0)?;
        if expected_latest.is_some_and(|e| e != version - 1) {
            return Ok(Err(DeployRefused::Changed { latest: version - 1 }));
        }
        if version as usize > limits::MAX_VERSIONS_PER_FUNCTION {
            return Ok(Err(DeployRefused::Versions));
        }
        if version == 1 {
            let functions: i64 =
                query_one(&tx, "SELECT COUNT(DISTINCT name) FROM functions WHERE tenant = $1", &[&tenant])
                    .await?
                    .try_get(0)?;
            if functions as usize >= limits::MAX_FUNCTIONS_PER_TENANT {
                return Ok(Err(DeployRefused::Functions));
            }
        }
        let (source, handler) = script.unzip();
        execute(
            &tx,
            "INSERT INTO functions (tenant, name, version, digest, wasm, created, source, handler)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&tenant, &name, &version, &digest, &wasm, &now(), &source, &handler],
        )
        .await?;
        self.commit_change(tx, cache::Kinds::FUNCTIONS).await?;
        Ok(Ok(version))
    }

    async fn function_limit(&self, tenant: &str, name: &str) -> Result<Option<DeployRefused>> {
        let c = self.client().await?;
        let r = query_one(
            &c,
            "SELECT (SELECT COUNT(*) FROM functions WHERE tenant = $1 AND name = $2),
                    (SELECT COUNT(DISTINCT name) FROM functions WHERE tenant = $1)",
            &[&tenant, &name],
        )
        .await?;
        let (versions, functions): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        Ok(if versions as usize >= limits::MAX_VERSIONS_PER_FUNCTION {
            Some(DeployRefused::Versions)
        } else if versions == 0 && functions as usize >= limits::MAX_FUNCTIONS_PER_TENANT {
            Some(DeployRefused::Functions)
        } else {
            None
        })
    }

    async fn function_script(&self, tenant: &str, name: &str, version: i64) -> Result<Option<(String, String)>> {
        let c = self.client().await?;
        query_opt(
            &c,
            "SELECT source, handler FROM functions WHERE tenant = $1 AND name = $2 AND version = $3 AND source IS NOT NULL",
            &[&tenant, &name, &version],
        )
        .await?
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .transpose()
    }

    async fn function(&self, tenant: &str, name: &str, version: Option<i64>) -> Result<Option<(i64, String)>> {
        let read = async {
            let c = self.client().await?;
            query_opt(
                &c,
                "SELECT version, digest FROM functions WHERE tenant = $1 AND name = $2 AND ($3::BIGINT IS NULL OR version = $3)
                 ORDER BY version DESC LIMIT 1",
                &[&tenant, &name, &version],
            )
            .await?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
        };
        self.through::<cache::Functions>((tenant.to_owned(), name.to_owned(), version), read).await
    }

    async fn function_wasm(&self, tenant: &str, name: &str, version: i64) -> Result<Option<Vec<u8>>> {
        let c = self.client().await?;
        query_opt(
            &c,
            "SELECT wasm FROM functions WHERE tenant = $1 AND name = $2 AND version = $3",
            &[&tenant, &name, &version],
        )
        .await?
        .map(|r| Ok(r.try_get(0)?))
        .transpose()
    }

    async fn functions(&self, tenant: &str) -> Result<Vec<FunctionSummary>> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT f.name, f.version, f.created, f.source IS NOT NULL FROM functions f
             WHERE f.tenant = $1 AND f.version = (SELECT MAX(version) FROM functions g
                                                  WHERE g.tenant = f.tenant AND g.name = f.name)
             ORDER BY f.name",
            &[&tenant],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(FunctionSummary {
                name: r.try_get(0)?,
                latest_version: r.try_get(1)?,
                modified: r.try_get(2)?,
                script: r.try_get(3)?,
            })
        })
        .collect()
    }

    async fn function_versions(&self, tenant: &str, name: &str) -> Result<Vec<FunctionVersion>> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT version, digest, created, octet_length(wasm)::BIGINT, source IS NOT NULL, handler FROM functions
             WHERE tenant = $1 AND name = $2 ORDER BY version DESC",
            &[&tenant, &name],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(FunctionVersion {
                version: r.try_get(0)?,
                digest: r.try_get(1)?,
                created: r.try_get(2)?,
                component_bytes: r.try_get(3)?,
                script: r.try_get(4)?,
                handler: r.try_get(5)?,
            })
        })
        .collect()
    }

    async fn invocations(&self, tenant: &str, name: &str, limit: i64) -> Result<Vec<InvocationRow>> {
        // The invocations this node ran are written in the background: wait (a bounded
        // time) for those queued so far, so a caller sees the ones it caused.
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.background.try_send(Background::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(POOL_WAIT, flushed).await;
        }
        let c = self.client().await?;
        query(
            &c,
            "SELECT at, version, outcome, wall_us, fuel, peak_memory, log FROM invocations
             WHERE tenant = $1 AND name = $2 ORDER BY id DESC LIMIT $3",
            &[&tenant, &name, &limit],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(InvocationRow {
                at: r.try_get(0)?,
                version: r.try_get(1)?,
                outcome: r.try_get(2)?,
                wall_us: r.try_get(3)?,
                fuel: r.try_get(4)?,
                peak_memory_bytes: r.try_get(5)?,
                log: r.try_get(6)?,
            })
        })
        .collect()
    }

    async fn dataset(&self, pool: &str, identity: &str, name: &str) -> Result<Option<DatasetRow>> {
        dataset_row(&self.client().await?, pool, identity, name).await
    }

    async fn datasets_after(&self, pool: &str, identity: &str, after: &str, limit: usize) -> Result<Vec<DatasetRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {DATASET_COLUMNS} FROM datasets d WHERE d.pool_id = $1 AND d.identity_id = $2 AND d.deleted = 0
             AND d.name > $3 ORDER BY d.name LIMIT $4"
        );
        query(&c, &sql, &[&pool, &identity, &after, &(limit as i64)]).await?.iter().map(dataset_from_row).collect()
    }

    async fn snapshot(&self, pool: &str, identity: &str, name: &str) -> Result<Snapshot> {
        let c = self.client().await?;
        // One statement, so one consistent view (and one round trip): a row per record
        // (one with no record when there is none), each with the dataset's row, if any,
        // and the identity's live dataset count. The row's sizes are counted here from
        // the records rather than by a second pass over them.
        let sql = format!(
            "WITH ds (name, sync_count, created, modified, modified_by, deleted, deleted_at, num_records, data_storage) AS (
                 SELECT d.name, d.sync_count, d.created, d.modified, d.modified_by, d.deleted, d.deleted_at,
                     0::BIGINT, 0::BIGINT
                 FROM datasets d WHERE d.pool_id = $1 AND d.identity_id = $2 AND d.name = $3),
             live (n) AS ({LIVE_DATASETS})
             SELECT ds.*, live.n, r.key, r.value, r.sync_count, r.modified, r.modified_by, r.device_modified_ms
             FROM live LEFT JOIN ds ON TRUE
             LEFT JOIN records r ON r.pool_id = $1 AND r.identity_id = $2 AND r.dataset = $3"
        );
        let rows = query(&c, &sql, &[&pool, &identity, &name]).await?;
        let first = rows.first().ok_or_else(|| DbError::Other("the snapshot query returned no row".into()))?;
        let mut dataset = match first.try_get::<_, Option<String>>(0)? {
            Some(_) => Some(dataset_from_row(first)?),
            None => None,
        };
        let identity_datasets = first.try_get::<_, i64>(9)? as usize;
        let mut records = BTreeMap::new();
        for r in &rows {
            if let Some(row) = record_at(r, 10)? {
                records.insert(row.key.clone(), row);
            }
        }
        if let Some(d) = &mut dataset {
            // As DATASET_COLUMNS counts: live records, and their keys' and values' bytes.
            let live = records.values().filter_map(|r| Some(r.key.len() + r.value.as_ref()?.len()));
            (d.num_records, d.data_storage) = live.fold((0, 0), |(n, bytes), size| (n + 1, bytes + size as i64));
        }
        Ok(Snapshot { dataset, records, identity_datasets })
    }

    async fn records_page(
        &self,
        (pool, identity, name): (&str, &str, &str),
        last: i64,
        upper: Option<i64>,
        cursor: Option<&RecordCursor>,
        limit: usize,
    ) -> Result<RecordPage> {
        let c = self.client().await?;
        // One statement, so one consistent view and one round trip: a row per record of
        // the page (one with no record when there is none), each with the dataset's head,
        // if any, the listing's bound and the merged datasets' names. A NextToken's bound
        // comes from the client: it may not pass what exists.
        let sql = format!(
            "WITH ds AS (
                 SELECT sync_count, modified_by, deleted, deleted_at FROM datasets
                 WHERE pool_id = $1 AND identity_id = $2 AND name = $3),
             bound (upper) AS (
                 SELECT LEAST(COALESCE($5, c.n), c.n) FROM (SELECT COALESCE((SELECT sync_count FROM ds), 0) AS n) c)
             SELECT ds.*, bound.upper,
                 ARRAY(SELECT m.name FROM datasets m WHERE m.pool_id = $1 AND m.identity_id = $2 AND m.deleted = 0
                       AND m.merged_base = $3 ORDER BY m.name),
                 r.key, r.value, r.sync_count, r.modified, r.modified_by, r.device_modified_ms
             FROM bound LEFT JOIN ds ON TRUE
             LEFT JOIN LATERAL (
                 SELECT {RECORD_COLUMNS} FROM records
                 WHERE pool_id = $1 AND identity_id = $2 AND dataset = $3 AND sync_count > $4
                 AND sync_count <= bound.upper AND (sync_count, key) > ($6, $7)
                 ORDER BY sync_count, key LIMIT $8) r ON TRUE
             ORDER BY r.sync_count, r.key"
        );
        let (after_count, after_key) = cursor.map_or((i64::MIN, ""), |c| (c.sync_count, c.key.as_str()));
        let rows =
            query(&c, &sql, &[&pool, &identity, &name, &last, &upper, &after_count, &after_key, &(limit as i64 + 1)])
                .await?;
        let first = rows.first().ok_or_else(|| DbError::Other("the page query returned no row".into()))?;
        let dataset = match first.try_get::<_, Option<i64>>(0)? {
            Some(sync_count) => Some(DatasetHead {
                sync_count,
                modified_by: first.try_get(1)?,
                deleted: first.try_get::<_, i64>(2)? != 0,
                deleted_at: first.try_get(3)?,
            }),
            None => None,
        };
        let upper: i64 = first.try_get(4)?;
        let merged_names: Vec<String> = first.try_get(5)?;
        let mut records = Vec::new();
        for r in &rows {
            records.extend(record_at(r, 6)?);
        }
        let more = records.len() > limit;
        records.truncate(limit);
        Ok(RecordPage { dataset, upper, records, more, merged_names })
    }

    async fn applied_answer(&self, idempotency: &Idempotency) -> Result<Option<Vec<RecordRow>>> {
        let c = self.client().await?;
        let stored = query_opt(
            &c,
            "SELECT request_hash, answer FROM applied_updates WHERE token_hash = $1",
            &[&idempotency.token_hash],
        )
        .await?;
        let Some(r) = stored else { return Ok(None) };
        let (request, answer): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        Ok((request == idempotency.request_hash).then(|| decode_answer(&answer)))
    }

    async fn identity_usage(&self, pool: &str, identity: &str) -> Result<(i64, i64, Option<i64>)> {
        let c = self.client().await?;
        let r = query_one(
            &c,
            "SELECT (SELECT COUNT(*) FROM datasets WHERE pool_id = $1 AND identity_id = $2 AND deleted = 0),
                    (SELECT MAX(modified) FROM datasets WHERE pool_id = $1 AND identity_id = $2 AND deleted = 0),
                    (SELECT COALESCE(SUM(octet_length(key) + octet_length(value)), 0)::BIGINT FROM records
                     WHERE pool_id = $1 AND identity_id = $2 AND value IS NOT NULL)",
            &[&pool, &identity],
        )
        .await?;
        Ok((r.try_get(0)?, r.try_get(2)?, r.try_get(1)?))
    }

    async fn pool_usage(&self, pool: &str) -> Result<(i64, i64, Option<i64>)> {
        let c = self.client().await?;
        let r = query_one(
            &c,
            "SELECT (SELECT COALESCE(SUM(sync_count), 0)::BIGINT FROM datasets WHERE pool_id = $1),
                    (SELECT MAX(modified) FROM datasets WHERE pool_id = $1),
                    (SELECT COALESCE(SUM(octet_length(key) + octet_length(value)), 0)::BIGINT FROM records
                     WHERE pool_id = $1 AND value IS NOT NULL)",
            &[&pool],
        )
        .await?;
        Ok((r.try_get(0)?, r.try_get(2)?, r.try_get(1)?))
    }

    async fn identity(&self, identity_id: &str) -> Result<Option<IdentityRow>> {
        let c = self.client().await?;
        let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE identity_id = $1");
        match query_opt(&c, &sql, &[&identity_id]).await? {
            Some(r) => Ok(Some(with_logins(&c, identity_from_row(&r)?).await?)),
            None => Ok(None),
        }
    }

    async fn identities_after(
        &self,
        pool: &str,
        after: &str,
        limit: usize,
        hide_disabled: bool,
    ) -> Result<Vec<IdentityRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities
             WHERE pool_id = $1 AND identity_id > $2 AND ($3 = FALSE OR merged_into IS NULL)
             ORDER BY identity_id LIMIT $4"
        );
        let rows = query(&c, &sql, &[&pool, &after, &hide_disabled, &(limit as i64)]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(with_logins(&c, identity_from_row(r)?).await?);
        }
        Ok(out)
    }

    async fn login_identity(&self, pool: &str, provider: &str, subject: &str) -> Result<Option<String>> {
        let c = self.client().await?;
        query_opt(
            &c,
            "SELECT identity_id FROM logins WHERE pool_id = $1 AND provider = $2 AND subject = $3",
            &[&pool, &provider, &subject],
        )
        .await?
        .map(|r| Ok(r.try_get(0)?))
        .transpose()
    }

    async fn identity_for_login(
        &self,
        pool: &str,
        region: &str,
        provider: &str,
        subject: &str,
    ) -> Result<(String, bool)> {
        if let Some(identity) = self.login_identity(pool, provider, subject).await? {
            return Ok((identity, false));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let identity = new_cognito_id(region);
        let t = now();
        execute(
            &tx,
            "INSERT INTO identities (identity_id, pool_id, created, modified, authenticated) VALUES ($1, $2, $3, $3, 1)",
            &[&identity, &pool, &t],
        )
        .await?;
        // Two first sign-ins at once: the login's key makes the second wait for the
        // first, then insert nothing; it drops its identity and answers the first's.
        let linked = execute(
            &tx,
            "INSERT INTO logins (pool_id, provider, subject, identity_id, created) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (pool_id, provider, subject) DO NOTHING",
            &[&pool, &provider, &subject, &identity, &t],
        )
        .await?;
        if linked == 0 {
            tx.rollback().await?;
            // On this connection: taking a second one while holding this could wait forever
            // when every connection is held by a sign-in doing the same.
            let winner = query_opt(
                &c,
                "SELECT identity_id FROM logins WHERE pool_id = $1 AND provider = $2 AND subject = $3",
                &[&pool, &provider, &subject],
            )
            .await?
            .ok_or_else(|| DbError::Other("a login vanished while it was being linked".into()))?;
            return Ok((winner.try_get(0)?, false));
        }
        tx.commit().await?;
        Ok((identity, true))
    }

    async fn link_login(
        &self,
        pool: &str,
        provider: &str,
        subject: &str,
        identity: &str,
        only_if_unauthenticated: bool,
    ) -> Result<LinkOutcome> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if !lock_identity(&tx, pool, identity, only_if_unauthenticated).await? {
            return Ok(LinkOutcome::Changed);
        }
        let t = now();
        let inserted = execute(
            &tx,
            "INSERT INTO logins (pool_id, provider, subject, identity_id, created) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (pool_id, provider, subject) DO NOTHING",
            &[&pool, &provider, &subject, &identity, &t],
        )
        .await?;
        if inserted == 0 {
            return Ok(LinkOutcome::Taken);
        }
        execute(&tx, "UPDATE identities SET modified = $2, authenticated = 1 WHERE identity_id = $1", &[&identity, &t])
            .await?;
        tx.commit().await?;
        Ok(LinkOutcome::Linked)
    }

    async fn unlink_logins(&self, identity: &str, provider: &str, subject: Option<&str>) -> Result<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = execute(
            &tx,
            "DELETE FROM logins WHERE identity_id = $1 AND provider = $2 AND ($3::TEXT IS NULL OR subject = $3)",
            &[&identity, &provider, &subject],
        )
        .await?;
        if n > 0 {
            execute(&tx, "UPDATE identities SET modified = $2 WHERE identity_id = $1", &[&identity, &now()]).await?;
        }
        tx.commit().await?;
        Ok(n as usize)
    }

    async fn merge_identities(
        &self,
        pool: &str,
        source: &str,
        target: &str,
        rule: MergeRule<'_>,
    ) -> Result<MergeOutcome> {
        if source == target {
            return Ok(MergeOutcome::Changed);
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let source_unauthenticated = rule == MergeRule::SourceUnauthenticated;
        // Both identities locked, in one order whichever is the source, so two merges of
        // the same pair cannot deadlock.
        let (source_live, target_live) = if source < target {
            let s = lock_identity(&tx, pool, source, source_unauthenticated).await?;
            (s, lock_identity(&tx, pool, target, false).await?)
        } else {
            let t = lock_identity(&tx, pool, target, false).await?;
            (lock_identity(&tx, pool, source, source_unauthenticated).await?, t)
        };
        if !source_live || !target_live {
            return Ok(MergeOutcome::Changed);
        }
        if let MergeRule::Developer(developer) = rule {
            let clash = query_opt(
                &tx,
                "SELECT a.provider FROM logins a JOIN logins b ON a.provider = b.provider AND a.subject != b.subject
                 WHERE a.identity_id = $1 AND b.identity_id = $2 AND a.provider != $3 LIMIT 1",
                &[&source, &target, &developer],
            )
            .await?;
            if let Some(r) = clash {
                return Ok(MergeOutcome::ProviderClash(r.try_get(0)?));
            }
        }
        let t = now();
        let names: Vec<(String, String)> = query(
            &tx,
            "SELECT name, COALESCE(merged_base, name) FROM datasets WHERE pool_id = $1 AND identity_id = $2 AND deleted = 0
             ORDER BY name",
            &[&pool, &source],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_>>()?;
        let mut moved = Vec::new();
        for (name, base) in names {
            let new_name = merged_name(&tx, pool, target, &base, source).await?;
            execute(
                &tx,
                "UPDATE datasets SET identity_id = $3, name = $4, merged_from = $2, merged_base = $6
                 WHERE pool_id = $1 AND identity_id = $2 AND name = $5",
                &[&pool, &source, &target, &new_name, &name, &base],
            )
            .await?;
            execute(
                &tx,
                "UPDATE records SET identity_id = $3, dataset = $4 WHERE pool_id = $1 AND identity_id = $2 AND dataset = $5",
                &[&pool, &source, &target, &new_name, &name],
            )
            .await?;
            moved.push(new_name);
        }
        // What the source had deleted goes with it.
        execute(&tx, "DELETE FROM records WHERE pool_id = $1 AND identity_id = $2", &[&pool, &source]).await?;
        execute(&tx, "DELETE FROM datasets WHERE pool_id = $1 AND identity_id = $2", &[&pool, &source]).await?;
        let had_logins =
            execute(&tx, "UPDATE logins SET identity_id = $2 WHERE identity_id = $1", &[&source, &target]).await? > 0;
        execute(&tx, "DELETE FROM credentials WHERE identity_id = $1", &[&source]).await?;
        execute(
            &tx,
            "UPDATE identities SET merged_into = $2, modified = $3 WHERE identity_id = $1",
            &[&source, &target, &t],
        )
        .await?;
        // Identities merged into the source earlier now point at the target.
        execute(&tx, "UPDATE identities SET merged_into = $2 WHERE merged_into = $1", &[&source, &target]).await?;
        execute(
            &tx,
            "UPDATE identities SET modified = $2, authenticated = GREATEST(authenticated, $3) WHERE identity_id = $1",
            &[&target, &t, &(had_logins as i64)],
        )
        .await?;
        self.commit_change(tx, cache::Kinds::CREDENTIALS.and(cache::Kinds::IDENTITY_POOLS)).await?;
        Ok(MergeOutcome::Merged(Merge { target: target.to_owned(), datasets: moved }))
    }

    async fn delete_identities(&self, pool: Option<&str>, identities: &[String]) -> Result<Vec<String>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut missing = Vec::new();
        for id in identities {
            // The identity's row first: its lock waits for updates in flight, and what
            // follows sees what they wrote.
            let found =
                query_opt(&tx, "SELECT pool_id FROM identities WHERE identity_id = $1 FOR UPDATE", &[id]).await?;
            let found: Option<String> = found.map(|r| r.try_get(0)).transpose()?;
            match found {
                Some(p) if pool.is_none_or(|pool| pool == p) => {
                    execute(&tx, "DELETE FROM identities WHERE identity_id = $1 OR merged_into = $1", &[id]).await?;
                    for table in ["records", "datasets", "logins", "credentials"] {
                        execute(&tx, &format!("DELETE FROM {table} WHERE identity_id = $1"), &[id]).await?;
                    }
                }
                _ => missing.push(id.clone()),
            }
        }
        self.commit_change(tx, cache::Kinds::CREDENTIALS.and(cache::Kinds::IDENTITY_POOLS)).await?;
        Ok(missing)
    }

    async fn delete_pool(&self, pool: &str) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Identities first: deleting them waits for updates in flight, and the deletes
        // that follow see what those wrote.
        for table in ["identities", "records", "datasets", "logins", "credentials"] {
            execute(&tx, &format!("DELETE FROM {table} WHERE pool_id = $1"), &[&pool]).await?;
        }
        let n = execute(&tx, "DELETE FROM pools WHERE pool_id = $1", &[&pool]).await?;
        self.commit_change(tx, cache::Kinds::ALL).await?;
        Ok(n == 1)
    }

    async fn put_issuer(&self, issuer: &Issuer) -> Result<()> {
        let audiences = serde_json::to_string(&issuer.audiences).map_err(other)?;
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO oidc_issuers (tenant, issuer, audiences, jwks, jwks_file, created) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant, issuer) DO UPDATE SET audiences = EXCLUDED.audiences, jwks = EXCLUDED.jwks,
                 jwks_file = EXCLUDED.jwks_file, created = EXCLUDED.created",
            &[&issuer.tenant, &issuer.issuer, &audiences, &issuer.jwks, &issuer.jwks_file, &now()],
        )
        .await?;
        Ok(())
    }

    async fn issuer(&self, tenant: &str, issuer: &str) -> Result<Option<Issuer>> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            "SELECT tenant, issuer, audiences, jwks, jwks_file FROM oidc_issuers WHERE tenant = $1 AND issuer = $2",
            &[&tenant, &issuer],
        )
        .await?;
        let Some(r) = row else { return Ok(None) };
        let audiences: String = r.try_get(2)?;
        Ok(Some(Issuer {
            tenant: r.try_get(0)?,
            issuer: r.try_get(1)?,
            audiences: serde_json::from_str(&audiences).unwrap_or_default(),
            jwks: r.try_get(3)?,
            jwks_file: r.try_get(4)?,
        }))
    }

    async fn export(
        &self,
        scope: &Scope,
        out: &mut (dyn std::io::Write + Send),
    ) -> std::result::Result<u64, ImportError> {
        let mut c = self.client().await?;
        // One snapshot for the whole stream.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let pool = match scope {
            Scope::Installation => None,
            Scope::Pool(pool) => Some(pool.as_str()),
        };
        if let Some(pool) = pool {
            let exists: bool =
                tx.query_one("SELECT EXISTS (SELECT 1 FROM pools WHERE pool_id = $1)", &[&pool]).await?.try_get(0)?;
            if !exists {
                return Err(ImportError::Refused(format!("no identity pool {pool}")));
            }
        }
        writeln!(out, "{}", header(scope, Self::schema_version(&tx).await?))?;
        let mut rows = 0u64;
        for table in TABLES {
            let condition = match (pool, table.pool_filter) {
                (None, _) => table.filter,
                (Some(_), Some(filter)) => filter,
                (Some(_), None) => continue,
            };
            let sql = format!(
                "SELECT {} FROM {} WHERE {condition} ORDER BY {}",
                table.columns.join(", "),
                table.name,
                table.order_by
            );
            let stmt = tx.prepare(&sql).await?;
            let params: Vec<&(dyn ToSql + Sync)> = match &pool {
                Some(pool) => vec![pool],
                None => vec![],
            };
            // Streamed: a table's rows (functions' bytes among them) are never all in memory.
            let stream = tx.query_raw(&stmt, params).await?;
            pin_mut!(stream);
            while let Some(row) = stream.next().await {
                let row = row?;
                let values = (0..table.columns.len()).map(|i| column_value(&row, i)).collect::<Result<Vec<_>>>()?;
                writeln!(out, "{}", row_line(table, values))?;
                rows += 1;
            }
        }
        writeln!(out, "{}", end_line(rows))?;
        out.flush()?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn import(
        &self,
        input: &mut (dyn std::io::BufRead + Send),
        tenant: Option<&str>,
    ) -> std::result::Result<Counts, ImportError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Nothing may create a tenant or a pool while the emptiness checked below holds.
        tx.batch_execute("LOCK TABLE tenants, pools IN SHARE ROW EXCLUSIVE MODE").await?;
        let mut reader = Reader::open(input, Self::schema_version(&tx).await?, tenant)?;
        match &reader.target {
            Target::Installation => {
                let used: bool = tx
                    .query_one("SELECT EXISTS (SELECT 1 FROM tenants) OR EXISTS (SELECT 1 FROM pools)", &[])
                    .await?
                    .try_get(0)?;
                if used {
                    return Err(ImportError::Refused(NOT_EMPTY.into()));
                }
                // A fresh store made its own keys: the installation's replace them.
                tx.execute("DELETE FROM meta", &[]).await?;
                tx.execute("DELETE FROM credentials WHERE kind = 'root'", &[]).await?;
            }
            Target::Pool { pool, tenant } => {
                let ok: bool = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM tenants WHERE name = $1) AND NOT EXISTS (SELECT 1 FROM pools WHERE pool_id = $2)",
                        &[tenant, pool],
                    )
                    .await?
                    .try_get(0)?;
                if !ok {
                    return Err(pool_refused(pool, tenant));
                }
            }
        }
        let mut statements = HashMap::new();
        while let Some((line, table, values)) = reader.next_row()? {
            let bad = |reason: String| ImportError::Bad { line, reason };
            let stmt = match statements.get(table.name) {
                Some(stmt) => stmt,
                None => {
                    let placeholders: Vec<String> = (1..=table.columns.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "INSERT INTO {} ({}) VALUES ({})",
                        table.name,
                        table.columns.join(", "),
                        placeholders.join(", ")
                    );
                    let stmt = tx.prepare(&sql).await?;
                    statements.entry(table.name).or_insert(stmt)
                }
            };
            let params = values
                .into_iter()
                .zip(stmt.params())
                .zip(table.columns)
                .map(|((v, ty), column)| param(v, ty).map_err(|e| bad(format!("{}.{column}: {e}", table.name))))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
            tx.execute(stmt, &refs).await.map_err(|e| bad(format!("cannot insert the {} row: {e}", table.name)))?;
        }
        // A stream from before schema 5 may hold merged names past 128 characters, and
        // settings with old separators.
        shorten_merged_names(&tx).await?;
        conform_pool_settings(&tx).await?;
        let counts = reader.counts;
        self.commit_change(tx, cache::Kinds::ALL).await?;
        Ok(counts)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::str::FromStr;

    /// A fresh database on the test server (`SYNCTRIG_TEST_DATABASE_URL`; the README's
    /// test command starts a throwaway cluster and sets it).
    pub async fn fresh_database() -> tokio_postgres::Config {
        let url = std::env::var("SYNCTRIG_TEST_DATABASE_URL").expect(
            "the PostgreSQL tests need SYNCTRIG_TEST_DATABASE_URL (tests/run-all.sh starts a throwaway cluster for them)",
        );
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let name = format!("synctrig_test_{}", super::random_hex(8));
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let mut config = tokio_postgres::Config::from_str(&url).unwrap();
        config.dbname(&name);
        config
    }

    /// [`fresh_database`] as a URL.
    pub async fn fresh_database_url() -> String {
        let config = fresh_database().await;
        let url = std::env::var("SYNCTRIG_TEST_DATABASE_URL").unwrap_or_default();
        let (base, query) = url.split_once('?').unwrap_or((&url, ""));
        let base = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let name = config.get_dbname().unwrap_or_default();
        if query.is_empty() { format!("{base}/{name}") } else { format!("{base}/{name}?{query}") }
    }

    /// A plain connection to `config`'s database, for changes behind the store's back.
    pub async fn connect(config: &tokio_postgres::Config) -> tokio_postgres::Client {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// Cuts every cache listener's connection to `config`'s database.
    pub async fn cut_listeners(config: &tokio_postgres::Config) {
        connect(config)
            .await
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()
                 AND application_name = $1",
                &[&super::cache::LISTENER_NAME],
            )
            .await
            .unwrap();
    }
}
