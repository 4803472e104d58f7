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

mod archive;
mod cache;
mod datasets;
mod functions;
mod identities;
mod recordings;
mod releases;
mod schema;
mod streams;
mod tenants;
pub mod tls;

use super::export::{
    Counts, NOT_EMPTY, Reader, Scope, TABLES, Target, Value, end_line, header, pool_refused, row_line,
};
use crate::sql;
use crate::*;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, RecyclingMethod, Transaction};
use futures_util::{StreamExt, pin_mut};
use std::collections::{BTreeMap, HashMap};
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
const MAX_BATCH: usize = 1024;
/// How long invocation rows wait for more to be written with (a listing has them written at
/// once).
const INVOCATION_LOG_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Work done off the request path.
enum Background {
    Invocation {
        tenant: String,
        name: String,
        row: InvocationRow,
    },
    Recording {
        tenant: String,
        name: String,
        recording: Box<Recording>,
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
    /// The bound of each pool's outbox ([`Streams::set_outbox_max`]).
    outbox_max: std::sync::atomic::AtomicI64,
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

fn other(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(e.to_string())
}

const DATASET_COLUMNS: &str = "d.name, d.sync_count, d.created, d.modified, d.modified_by, d.deleted, d.deleted_at,
    (SELECT COUNT(*) FROM dataset_records r WHERE r.dataset_id = d.id AND r.value IS NOT NULL),
    (SELECT COALESCE(SUM(octet_length(r.key) + octet_length(r.value)), 0)::BIGINT FROM dataset_records r
         WHERE r.dataset_id = d.id AND r.value IS NOT NULL)";

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

/// The export's value of column `i` of `row`.
fn column_value(row: &Row, i: usize) -> Result<Value> {
    let ty = row.columns()[i].type_();
    Ok(if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Integer)
    } else if *ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?.map_or(Value::Null, |i| Value::Integer(i.into()))
    } else if *ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, |b| Value::Integer(b.into()))
    } else if *ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Value::Null, Value::Blob)
    } else if *ty == Type::TEXT {
        row.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text)
    } else {
        return Err(StoreError::Other(format!("column {} has the unexpected type {ty}", row.columns()[i].name())));
    })
}

/// A stream value as a parameter of type `ty`, or why it cannot be one.
fn param(value: Value, ty: &Type) -> std::result::Result<Box<dyn ToSql + Sync + Send>, String> {
    Ok(match (value, ty) {
        (Value::Null, t) if *t == Type::INT8 => Box::new(None::<i64>),
        (Value::Null, t) if *t == Type::BYTEA => Box::new(None::<Vec<u8>>),
        (Value::Null, _) => Box::new(None::<String>),
        (Value::Integer(i), t) if *t == Type::INT8 => Box::new(i),
        // Shared statements compare parameters with literals (`$3 = 0`), which PostgreSQL
        // types as `integer`.
        (Value::Integer(i), t) if *t == Type::INT4 => Box::new(i32::try_from(i).map_err(|e| e.to_string())?),
        (Value::Integer(i), t) if *t == Type::BOOL => Box::new(i != 0),
        (Value::Text(s), t) if *t == Type::TEXT => Box::new(s),
        (Value::Blob(b), t) if *t == Type::BYTEA => Box::new(b),
        (v, t) => return Err(format!("{v:?} is not a {t}")),
    })
}

/// A client or transaction running the statements both backends share.
pub(super) struct Pg<'a, C>(pub &'a C);

impl<C: GenericClient + Sync> crate::sql::Db for Pg<'_, C> {
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const FOR_SHARE: &'static str = " FOR SHARE";
    const RECORDS_FOLLOW_DATASETS: bool = true;

    async fn take_turns(&self, key: &str) -> Result<()> {
        self.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[Value::from(key)]).await.map(drop)
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let stmt = self.0.prepare_cached(sql).await?;
        let bound = bind(&stmt, params)?;
        Ok(self.0.execute(&stmt, &refs(&bound)).await?)
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>> {
        let stmt = self.0.prepare_cached(sql).await?;
        let bound = bind(&stmt, params)?;
        let rows = self.0.query(&stmt, &refs(&bound)).await?;
        rows.iter().map(|row| (0..row.len()).map(|i| column_value(row, i)).collect()).collect()
    }
}

/// `params` as the types the server gave the statement's parameters.
fn bind(stmt: &tokio_postgres::Statement, params: &[Value]) -> Result<Vec<Box<dyn ToSql + Sync + Send>>> {
    if stmt.params().len() != params.len() {
        return Err(StoreError::Other(format!(
            "a statement takes {} parameters and was given {}",
            stmt.params().len(),
            params.len()
        )));
    }
    params.iter().zip(stmt.params()).map(|(v, ty)| param(v.clone(), ty).map_err(StoreError::Other)).collect()
}

fn refs(bound: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    bound.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect()
}

impl Postgres {
    /// Connects to the database at `url` and brings its schema up to date (under an
    /// advisory lock, so nodes starting at once apply each migration once).
    /// TLS as the URL's `sslmode` and `sslrootcert` ask ([`tls`]).
    pub async fn open(url: &str, connections: usize) -> Result<Postgres> {
        let connect = tls::parse(url).map_err(StoreError::Other)?;
        Self::open_with(connect.config, connect.tls, connections).await
    }

    /// [`Postgres::open`] with a parsed configuration (TLS when the server offers it).
    #[cfg(test)]
    pub(crate) async fn open_config(config: tokio_postgres::Config, connections: usize) -> Result<Postgres> {
        let tls = tls::parse("postgres://localhost").map_err(StoreError::Other)?.tls;
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
        schema::migrate(&pool).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(BACKGROUND_QUEUE);
        tokio::spawn(background(pool.clone(), rx));
        let cache = std::sync::Arc::new(cache::Cache::new());
        let (stop_listener, stop) = tokio::sync::oneshot::channel();
        tokio::spawn(cache.clone().listen(listener_config, tls, stop));
        Ok(Postgres {
            pool,
            background: tx,
            cache,
            _stop_listener: stop_listener,
            outbox_max: std::sync::atomic::AtomicI64::new(crate::streams::DEFAULT_OUTBOX_MAX),
        })
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
        // The records written (and the answer kept for retries) are at the SyncCount
        // the update makes (`synctrig_update_v2` makes the same decision).
        let count = crate::update::next_sync_count(u.expected, u.writes.len(), false);
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
        let outbox_max = self.outbox_max.load(std::sync::atomic::Ordering::Relaxed);
        let slot = crate::streams::outbox_slot(&u.identity);
        // One statement, so one round trip and its own transaction: the function locks the
        // identity, re-checks the SyncCount and the dataset limit, and writes.
        let c = self.client().await?;
        let row = query_one(
            &c,
            "SELECT outcome, answer FROM synctrig_update_v2($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                 $15, $16, $17, $18, $19)",
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
                &u.device_id,
                &slot,
                &crate::streams::slot_bound(outbox_max),
                &sql::streams::outbox_full_reason(outbox_max),
                &now_ms(),
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
            other => return Err(StoreError::Other(format!("synctrig_update_v2 answered {other:?}"))),
        })
    }

    async fn apply_delete(&self, pool: &str, identity: &str, name: &str, by: &str) -> Result<Option<DatasetRow>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        sql::identities::lock_identity(&Pg(&tx), pool, identity, false).await?;
        let Some(row) = dataset_row(&tx, pool, identity, name).await?.filter(|d| !d.deleted) else {
            return Ok(None);
        };
        execute(
            &tx,
            "DELETE FROM dataset_records
             WHERE dataset_id = (SELECT id FROM datasets WHERE pool_id = $1 AND identity_id = $2 AND name = $3)",
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
        let change = crate::streams::Change::deletion(pool, identity, name, row.sync_count + 1);
        sql::streams::enqueue(&Pg(&tx), &change, self.outbox_max.load(std::sync::atomic::Ordering::Relaxed)).await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    async fn schema_version(c: &impl GenericClient) -> Result<i64> {
        Ok(query_one(c, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.try_get(0)?)
    }

    /// Waits (a bounded time) until the background jobs queued so far are written.
    pub(super) async fn flush_background(&self) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        // Behind a full queue too (at shutdown it holds the rows still to write).
        let _ = tokio::time::timeout(POOL_WAIT, async {
            if self.background.send(Background::Flush(done)).await.is_ok() {
                let _ = flushed.await;
            }
        })
        .await;
    }
}

/// Writes queued invocation records and runs sweeps, a batch per transaction. Invocation
/// rows wait up to [`INVOCATION_LOG_EVERY`] for more (a flush, a recording or a sweep writes
/// them at once): one transaction per interval instead of one per few rows, each a commit
/// on a database already busy with the syncs.
async fn background(pool: deadpool_postgres::Pool, mut jobs: tokio::sync::mpsc::Receiver<Background>) {
    let mut trims = crate::rows::InvocationTrims::default();
    while let Some(first) = jobs.recv().await {
        let until = tokio::time::Instant::now() + INVOCATION_LOG_EVERY;
        let urgent = |job: &Background| !matches!(job, Background::Invocation { .. });
        let mut now = urgent(&first);
        let mut batch = vec![first];
        loop {
            while batch.len() < MAX_BATCH
                && let Ok(job) = jobs.try_recv()
            {
                now |= urgent(&job);
                batch.push(job);
            }
            if now || batch.len() >= MAX_BATCH {
                break;
            }
            match tokio::time::timeout_at(until, jobs.recv()).await {
                Ok(Some(job)) => {
                    now |= urgent(&job);
                    batch.push(job);
                }
                Ok(None) | Err(_) => break,
            }
        }
        if let Err(e) = write_batch(&pool, batch, &mut trims).await {
            tracing::warn!("cannot record trigger invocations or sweep: {e}");
        }
    }
}

/// Invocation rows as columns, for one multi-row insert.
#[derive(Default)]
struct InvocationColumns {
    tenant: Vec<String>,
    name: Vec<String>,
    version: Vec<i64>,
    at: Vec<i64>,
    outcome: Vec<String>,
    wall_us: Vec<i64>,
    fuel: Vec<i64>,
    peak_memory: Vec<i64>,
    log: Vec<String>,
}

impl InvocationColumns {
    fn push(&mut self, tenant: String, name: String, row: InvocationRow) {
        self.tenant.push(tenant);
        self.name.push(name);
        self.version.push(row.version);
        self.at.push(row.at);
        self.outcome.push(row.outcome);
        self.wall_us.push(row.wall_us);
        self.fuel.push(row.fuel);
        self.peak_memory.push(row.peak_memory_bytes);
        // PostgreSQL's text holds no NUL, which a trigger may log: one would fail the batch.
        self.log.push(if row.log.contains('\0') { row.log.replace('\0', "\u{fffd}") } else { row.log });
    }
}

async fn write_batch(
    pool: &deadpool_postgres::Pool,
    batch: Vec<Background>,
    trims: &mut crate::rows::InvocationTrims,
) -> Result<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let mut functions = std::collections::BTreeSet::new();
    let mut recorded = std::collections::BTreeSet::new();
    // Dropped, so answered, when the batch is done whichever way.
    let mut _flushed = Vec::new();
    let invoked: Vec<(&str, &str)> = batch
        .iter()
        .filter_map(|job| match job {
            Background::Invocation { tenant, name, .. } => Some((tenant.as_str(), name.as_str())),
            _ => None,
        })
        .collect();
    let (insert, due) = crate::rows::newest_invocations(&invoked);
    functions.extend(due);
    let mut insert = insert.into_iter();
    let mut rows = InvocationColumns::default();
    for job in batch {
        match job {
            Background::Invocation { tenant, name, row } => {
                if insert.next() == Some(false) {
                    continue;
                }
                if trims.inserted(&tenant, &name) {
                    functions.insert((tenant.clone(), name.clone()));
                }
                rows.push(tenant, name, row);
            }
            Background::Recording { tenant, name, recording } => {
                sql::recordings::add(&Pg(&tx), &tenant, &name, &recording).await?;
                recorded.insert((tenant, name));
            }
            Background::Purge => {
                let t = now();
                sql::recordings::sweep(&Pg(&tx), now_ms()).await?;
                execute(&tx, "DELETE FROM credentials WHERE expires IS NOT NULL AND expires < $1", &[&t]).await?;
                execute(&tx, "DELETE FROM update_answers WHERE expires < $1", &[&t]).await?;
                // Written by nodes of the previous release (synctrig_update_v1) only.
                execute(&tx, "DELETE FROM applied_updates WHERE expires < $1", &[&t]).await?;
            }
            Background::Flush(done) => _flushed.push(done),
        }
    }
    if !rows.tenant.is_empty() {
        // One statement for them all, in their order: a round trip per row could not keep
        // up with a few hundred syncs a second on a busy database.
        let InvocationColumns { tenant, name, version, at, outcome, wall_us, fuel, peak_memory, log } = &rows;
        execute(
            &tx,
            "INSERT INTO invocations (tenant, name, version, at, outcome, wall_us, fuel, peak_memory, log)
             SELECT t, n, v, a, o, w, f, p, l
             FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[],
                         $7::bigint[], $8::bigint[], $9::text[]) WITH ORDINALITY AS r (t, n, v, a, o, w, f, p, l, i)
             -- Not for a function deleted meanwhile (by another node, or before its rows came).
             WHERE EXISTS (SELECT 1 FROM functions WHERE tenant = r.t AND name = r.n)
             ORDER BY i",
            &[tenant, name, version, at, outcome, wall_us, fuel, peak_memory, log],
        )
        .await?;
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
    for (tenant, name) in recorded {
        sql::recordings::trim(&Pg(&tx), &tenant, &name).await?;
    }
    tx.commit().await?;
    Ok(())
}

impl Backend for Postgres {
    fn kind(&self) -> &'static str {
        "postgres"
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
