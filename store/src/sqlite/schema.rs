//! The SQLite schema: its migrations, applied in order at start-up (`PRAGMA
//! user_version` is the number applied).

use super::*;

/// The triggers that keep `pool_usage` (schema 11); an import drops them for its rows and
/// makes them again before it commits ([`DROP_USAGE_TRIGGERS`]). The records' own are
/// apart: schema 12 makes the records table again, and its triggers with it.
macro_rules! usage_triggers {
    () => {
        concat!(datasets_usage_triggers!(), "\n     ", records_usage_triggers!())
    };
}
macro_rules! datasets_usage_triggers {
    () => {
"CREATE TRIGGER datasets_usage_insert AFTER INSERT ON datasets BEGIN
         INSERT INTO pool_usage (pool_id, sync_sessions, modified) VALUES (NEW.pool_id, NEW.sync_count, NEW.modified)
             ON CONFLICT (pool_id) DO UPDATE SET sync_sessions = sync_sessions + excluded.sync_sessions,
                 modified = max(COALESCE(modified, 0), excluded.modified);
     END;
     CREATE TRIGGER datasets_usage_update AFTER UPDATE ON datasets BEGIN
         UPDATE pool_usage SET sync_sessions = sync_sessions - OLD.sync_count WHERE pool_id = OLD.pool_id;
         INSERT INTO pool_usage (pool_id, sync_sessions, modified) VALUES (NEW.pool_id, NEW.sync_count, NEW.modified)
             ON CONFLICT (pool_id) DO UPDATE SET sync_sessions = sync_sessions + excluded.sync_sessions,
                 modified = max(COALESCE(modified, 0), excluded.modified);
     END;
     CREATE TRIGGER datasets_usage_delete AFTER DELETE ON datasets BEGIN
         UPDATE pool_usage SET sync_sessions = sync_sessions - OLD.sync_count WHERE pool_id = OLD.pool_id;
     END;"
    };
}
macro_rules! records_usage_triggers {
    () => {
"CREATE TRIGGER records_usage_insert AFTER INSERT ON records WHEN NEW.value IS NOT NULL BEGIN
         INSERT INTO pool_usage (pool_id, bytes)
             VALUES (NEW.pool_id, length(CAST(NEW.key AS BLOB)) + length(CAST(NEW.value AS BLOB)))
             ON CONFLICT (pool_id) DO UPDATE SET bytes = bytes + excluded.bytes;
     END;
     CREATE TRIGGER records_usage_update AFTER UPDATE ON records BEGIN
         UPDATE pool_usage SET bytes = bytes - COALESCE(length(CAST(OLD.key AS BLOB)) + length(CAST(OLD.value AS BLOB)), 0)
             WHERE pool_id = OLD.pool_id;
         INSERT INTO pool_usage (pool_id, bytes)
             VALUES (NEW.pool_id, COALESCE(length(CAST(NEW.key AS BLOB)) + length(CAST(NEW.value AS BLOB)), 0))
             ON CONFLICT (pool_id) DO UPDATE SET bytes = bytes + excluded.bytes;
     END;
     CREATE TRIGGER records_usage_delete AFTER DELETE ON records WHEN OLD.value IS NOT NULL BEGIN
         UPDATE pool_usage SET bytes = bytes - (length(CAST(OLD.key AS BLOB)) + length(CAST(OLD.value AS BLOB)))
             WHERE pool_id = OLD.pool_id;
     END;"
    };
}
pub(super) const USAGE_TRIGGERS: &str = usage_triggers!();
pub(super) const DROP_USAGE_TRIGGERS: &str = "DROP TRIGGER datasets_usage_insert; DROP TRIGGER datasets_usage_update;
     DROP TRIGGER datasets_usage_delete; DROP TRIGGER records_usage_insert; DROP TRIGGER records_usage_update;
     DROP TRIGGER records_usage_delete;";

/// Schema migrations, applied in order at start-up; `PRAGMA user_version` is the number
/// applied. Never edit one that has shipped: add the next.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 6: a JavaScript function version's own environment variables (a JSON object).
    "ALTER TABLE functions ADD COLUMN environment TEXT;",
    // 7: aliases of functions (a share may go to a second version; a rollout judges it),
    // the figures each version earns behind an alias per epoch, and rollouts' decisions.
    "CREATE TABLE function_aliases (
         tenant TEXT NOT NULL, name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,
         candidate INTEGER, weight_bp INTEGER NOT NULL DEFAULT 0, rollout TEXT,
         epoch INTEGER NOT NULL, epoch_started INTEGER NOT NULL, description TEXT NOT NULL DEFAULT '',
         created INTEGER NOT NULL, modified INTEGER NOT NULL,
         PRIMARY KEY (tenant, name, alias));
     CREATE TABLE alias_figures (
         tenant TEXT NOT NULL, name TEXT NOT NULL, alias TEXT NOT NULL, epoch INTEGER NOT NULL,
         version INTEGER NOT NULL, ok INTEGER NOT NULL, rejected INTEGER NOT NULL,
         error INTEGER NOT NULL, timeout INTEGER NOT NULL,
         PRIMARY KEY (tenant, name, alias, epoch, version));
     CREATE TABLE alias_histograms (
         tenant TEXT NOT NULL, name TEXT NOT NULL, alias TEXT NOT NULL, epoch INTEGER NOT NULL,
         version INTEGER NOT NULL, metric TEXT NOT NULL, bucket INTEGER NOT NULL, count INTEGER NOT NULL,
         PRIMARY KEY (tenant, name, alias, epoch, version, metric, bucket));
     CREATE TABLE alias_decisions (
         id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, name TEXT NOT NULL,
         alias TEXT NOT NULL, at INTEGER NOT NULL, epoch INTEGER NOT NULL, decision TEXT NOT NULL,
         primary_version INTEGER NOT NULL, candidate INTEGER NOT NULL, reason TEXT NOT NULL,
         figures TEXT NOT NULL);
     CREATE INDEX alias_decisions_by_function ON alias_decisions (tenant, name, id);",
    // 8: functions' recording settings and their recorded invocations (with a shadow
    // version's run beside each, if one ran).
    "CREATE TABLE function_recording (
         tenant TEXT NOT NULL, name TEXT NOT NULL, max_count INTEGER NOT NULL,
         max_age_secs INTEGER NOT NULL, shadow_version INTEGER, modified INTEGER NOT NULL,
         PRIMARY KEY (tenant, name));
     CREATE TABLE recordings (
         id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, name TEXT NOT NULL,
         at_ms INTEGER NOT NULL, pool_id TEXT NOT NULL, identity_id TEXT NOT NULL, dataset TEXT NOT NULL,
         version INTEGER NOT NULL, outcome TEXT NOT NULL, input TEXT NOT NULL, output TEXT, error TEXT,
         seed TEXT NOT NULL, clock_secs INTEGER NOT NULL, wall_us INTEGER NOT NULL, fuel INTEGER NOT NULL,
         shadow_version INTEGER, shadow_outcome TEXT, shadow_output TEXT, shadow_error TEXT,
         shadow_wall_us INTEGER, shadow_fuel INTEGER);
     CREATE INDEX recordings_by_function ON recordings (tenant, name, id);
     CREATE INDEX recordings_by_pool ON recordings (pool_id);",
    // 9: Cognito Streams and push sync: pools' configuration, the outbox of committed
    // changes (counted in slots per pool), devices and their subscriptions, bulk
    // publishes, and the publisher's lease.
    "CREATE TABLE pool_streams (
         pool_id TEXT PRIMARY KEY, stream_name TEXT, stream_role TEXT, streaming INTEGER NOT NULL DEFAULT 0,
         disabled_reason TEXT, push_arns TEXT, push_role TEXT, modified INTEGER NOT NULL);
     CREATE INDEX pool_streams_by_name ON pool_streams (stream_name);
     CREATE TABLE outbox (
         id INTEGER PRIMARY KEY AUTOINCREMENT, pool_id TEXT NOT NULL, identity_id TEXT NOT NULL,
         dataset TEXT NOT NULL, sync_count INTEGER NOT NULL, kind TEXT NOT NULL, records TEXT NOT NULL,
         at_ms INTEGER NOT NULL, stream_name TEXT, push INTEGER NOT NULL, device_id TEXT, slot INTEGER NOT NULL);
     CREATE INDEX outbox_by_pool ON outbox (pool_id);
     CREATE TABLE outbox_depth (
         pool_id TEXT NOT NULL, slot INTEGER NOT NULL, depth INTEGER NOT NULL, PRIMARY KEY (pool_id, slot));
     CREATE TABLE devices (
         device_id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, identity_id TEXT NOT NULL, platform TEXT NOT NULL,
         token TEXT NOT NULL, registered INTEGER NOT NULL);
     CREATE INDEX devices_by_identity ON devices (identity_id);
     CREATE INDEX devices_by_pool ON devices (pool_id);
     CREATE TABLE subscriptions (
         identity_id TEXT NOT NULL, dataset TEXT NOT NULL, device_id TEXT NOT NULL,
         PRIMARY KEY (identity_id, dataset, device_id));
     CREATE INDEX subscriptions_by_device ON subscriptions (device_id);
     CREATE TABLE bulk_publish (
         pool_id TEXT PRIMARY KEY, status TEXT NOT NULL, started_ms INTEGER NOT NULL, completed_ms INTEGER,
         failure TEXT, cursor_identity TEXT, cursor_dataset TEXT, stream_name TEXT NOT NULL);
     CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_ms INTEGER NOT NULL);",
    // 10: the answer of a dataset's last applied update, one per dataset (a retry can only
    // be of the latest: any later update makes its token stale), instead of one per update.
    "CREATE TABLE update_answers (
         pool_id TEXT NOT NULL, identity_id TEXT NOT NULL, dataset TEXT NOT NULL, token_hash TEXT NOT NULL,
         request_hash TEXT NOT NULL, answer TEXT NOT NULL, expires INTEGER NOT NULL,
         PRIMARY KEY (pool_id, identity_id, dataset));
     CREATE INDEX update_answers_by_expiry ON update_answers (expires);
     DROP TABLE applied_updates;",
    // 11: each pool's usage (SyncSessionsCount, DataStorage, last change) kept by triggers
    // in the transactions that change datasets and records, so DescribeIdentityPoolUsage
    // reads one row instead of scanning the pool.
    concat!(
        "CREATE TABLE pool_usage (
         pool_id TEXT PRIMARY KEY, sync_sessions INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,
         modified INTEGER);
     INSERT INTO pool_usage (pool_id, sync_sessions, modified)
         SELECT pool_id, SUM(sync_count), MAX(modified) FROM datasets WHERE true GROUP BY pool_id;
     INSERT INTO pool_usage (pool_id, bytes)
         SELECT pool_id, SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))) FROM records
         WHERE value IS NOT NULL GROUP BY pool_id
         ON CONFLICT (pool_id) DO UPDATE SET bytes = excluded.bytes;
     ",
        usage_triggers!()
    ),
    // 12: records in a WITHOUT ROWID table, ordered by their primary key: each record's
    // pool, identity and dataset were stored three times (the row, its primary key's index,
    // the SyncCount index) and are now stored twice; an upsert is one b-tree instead of two.
    // (Dropping the old table drops its index and triggers; DROP fires no delete trigger, and
    // the copy is made before the new table has any, so the usage counters stay as they are.)
    concat!(
        "CREATE TABLE records_by_key (
         pool_id TEXT NOT NULL, identity_id TEXT NOT NULL, dataset TEXT NOT NULL,
         key TEXT NOT NULL, value TEXT, sync_count INTEGER NOT NULL, modified INTEGER NOT NULL,
         modified_by TEXT NOT NULL, device_modified_ms INTEGER,
         PRIMARY KEY (pool_id, identity_id, dataset, key)) WITHOUT ROWID;
     INSERT INTO records_by_key (pool_id, identity_id, dataset, key, value, sync_count, modified, modified_by, device_modified_ms)
         SELECT pool_id, identity_id, dataset, key, value, sync_count, modified, modified_by, device_modified_ms
         FROM records ORDER BY pool_id, identity_id, dataset, key;
     DROP TABLE records;
     ALTER TABLE records_by_key RENAME TO records;
     CREATE INDEX records_by_sync_count ON records (pool_id, identity_id, dataset, sync_count, key);
     ",
        records_usage_triggers!()
    ),
    // 13: PostgreSQL's usage counters' upsert in PL/pgSQL (versions are shared between the
    // backends, so that export streams pass between them).
    "-- no change of schema",
    // 14: PostgreSQL's records keyed by their dataset's number (SQLite's WITHOUT ROWID
    // table, ordered by pool, identity, dataset and key, stores them twice already). As
    // there, records without their dataset's row (only an import could make them) go, and
    // their bytes with them (the usage triggers count it), so that both backends hold, and
    // export, the same. The index on `merged_into` PostgreSQL has had from the start (a
    // merge and a deletion look identities up by it: without it, a scan of every identity).
    "DELETE FROM records WHERE NOT EXISTS (SELECT 1 FROM datasets d
         WHERE d.pool_id = records.pool_id AND d.identity_id = records.identity_id AND d.name = records.dataset);
     CREATE INDEX identities_by_merged_into ON identities (merged_into) WHERE merged_into IS NOT NULL;",
];

/// The first schema version whose merged dataset names all keep to 128 characters and
/// whose pool settings keep to the model.
pub(super) const SHORT_MERGED_NAMES: i64 = 5;

/// The schema that made the records table again, WITHOUT ROWID.
const RECORDS_WITHOUT_ROWID: i64 = 12;

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    // An exclusive transaction: two processes starting at once apply each migration once.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    let applied: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    if applied < SHORT_MERGED_NAMES {
        sql::ready(sql::identities::shorten_merged_names(&Lite(&tx)))?;
        sql::ready(sql::identities::conform_pool_settings(&Lite(&tx)))?;
    }
    tx.commit()?;
    if applied > 0 && applied < RECORDS_WITHOUT_ROWID {
        // The old records table's pages are free but still in the file (the database would
        // stay its old size plus the new table's): give them back, once.
        tracing::info!("schema {RECORDS_WITHOUT_ROWID}: records rewritten; compacting the database (once)");
        if let Err(e) = conn.execute_batch("VACUUM") {
            // The data is whole either way; only the file's size waits for another chance.
            tracing::warn!("cannot compact the database after schema {RECORDS_WITHOUT_ROWID}: {e}");
        }
    }
    Ok(())
}
