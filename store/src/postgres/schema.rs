//! The PostgreSQL schema: its migrations, and the server-side function UpdateRecords
//! runs, applied at start-up under an advisory lock.

use super::*;

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
    // 6: a JavaScript function version's own environment variables (a JSON object).
    (6, "ALTER TABLE functions ADD COLUMN environment TEXT"),
    // 7: aliases of functions (a share may go to a second version; a rollout judges it),
    // the figures each version earns behind an alias per epoch, and rollouts' decisions.
    (
        7,
        r#"CREATE TABLE function_aliases (
        tenant TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, alias TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL, candidate BIGINT, weight_bp BIGINT NOT NULL DEFAULT 0, rollout TEXT,
        epoch BIGINT NOT NULL, epoch_started BIGINT NOT NULL, description TEXT NOT NULL DEFAULT '',
        created BIGINT NOT NULL, modified BIGINT NOT NULL,
        PRIMARY KEY (tenant, name, alias));
    CREATE TABLE alias_figures (
        tenant TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, alias TEXT COLLATE "C" NOT NULL,
        epoch BIGINT NOT NULL, version BIGINT NOT NULL, ok BIGINT NOT NULL, rejected BIGINT NOT NULL,
        error BIGINT NOT NULL, timeout BIGINT NOT NULL,
        PRIMARY KEY (tenant, name, alias, epoch, version));
    CREATE TABLE alias_histograms (
        tenant TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, alias TEXT COLLATE "C" NOT NULL,
        epoch BIGINT NOT NULL, version BIGINT NOT NULL, metric TEXT NOT NULL, bucket BIGINT NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (tenant, name, alias, epoch, version, metric, bucket));
    CREATE TABLE alias_decisions (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL, alias TEXT COLLATE "C" NOT NULL, at BIGINT NOT NULL,
        epoch BIGINT NOT NULL, decision TEXT NOT NULL, primary_version BIGINT NOT NULL,
        candidate BIGINT NOT NULL, reason TEXT NOT NULL, figures TEXT NOT NULL);
    CREATE INDEX alias_decisions_by_function ON alias_decisions (tenant, name, id);"#,
    ),
    // 8: functions' recording settings and their recorded invocations (with a shadow
    // version's run beside each, if one ran).
    (
        8,
        r#"CREATE TABLE function_recording (
        tenant TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, max_count BIGINT NOT NULL,
        max_age_secs BIGINT NOT NULL, shadow_version BIGINT, modified BIGINT NOT NULL,
        PRIMARY KEY (tenant, name));
    CREATE TABLE recordings (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL, at_ms BIGINT NOT NULL, pool_id TEXT COLLATE "C" NOT NULL,
        identity_id TEXT NOT NULL, dataset TEXT NOT NULL, version BIGINT NOT NULL, outcome TEXT NOT NULL,
        input TEXT NOT NULL, output TEXT, error TEXT, seed TEXT NOT NULL, clock_secs BIGINT NOT NULL,
        wall_us BIGINT NOT NULL, fuel BIGINT NOT NULL, shadow_version BIGINT, shadow_outcome TEXT,
        shadow_output TEXT, shadow_error TEXT, shadow_wall_us BIGINT, shadow_fuel BIGINT);
    CREATE INDEX recordings_by_function ON recordings (tenant, name, id);
    CREATE INDEX recordings_by_pool ON recordings (pool_id);"#,
    ),
    // 9: Cognito Streams and push sync: pools' configuration, the outbox of committed
    // changes (counted in slots per pool), devices and their subscriptions, bulk
    // publishes, and the publisher's lease.
    (
        9,
        r#"CREATE TABLE pool_streams (
        pool_id TEXT COLLATE "C" PRIMARY KEY, stream_name TEXT COLLATE "C", stream_role TEXT,
        streaming BIGINT NOT NULL DEFAULT 0, disabled_reason TEXT, push_arns TEXT, push_role TEXT,
        modified BIGINT NOT NULL);
    CREATE INDEX pool_streams_by_name ON pool_streams (stream_name);
    CREATE TABLE outbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, pool_id TEXT COLLATE "C" NOT NULL,
        identity_id TEXT COLLATE "C" NOT NULL, dataset TEXT COLLATE "C" NOT NULL, sync_count BIGINT NOT NULL,
        kind TEXT NOT NULL, records TEXT NOT NULL, at_ms BIGINT NOT NULL, stream_name TEXT,
        push BIGINT NOT NULL, device_id TEXT, slot BIGINT NOT NULL);
    CREATE INDEX outbox_by_pool ON outbox (pool_id);
    CREATE TABLE outbox_depth (
        pool_id TEXT COLLATE "C" NOT NULL, slot BIGINT NOT NULL, depth BIGINT NOT NULL, PRIMARY KEY (pool_id, slot));
    CREATE TABLE devices (
        device_id TEXT COLLATE "C" PRIMARY KEY, pool_id TEXT COLLATE "C" NOT NULL,
        identity_id TEXT COLLATE "C" NOT NULL, platform TEXT NOT NULL, token TEXT NOT NULL,
        registered BIGINT NOT NULL);
    CREATE INDEX devices_by_identity ON devices (identity_id);
    CREATE INDEX devices_by_pool ON devices (pool_id);
    CREATE TABLE subscriptions (
        identity_id TEXT COLLATE "C" NOT NULL, dataset TEXT COLLATE "C" NOT NULL,
        device_id TEXT COLLATE "C" NOT NULL, PRIMARY KEY (identity_id, dataset, device_id));
    CREATE INDEX subscriptions_by_device ON subscriptions (device_id);
    CREATE TABLE bulk_publish (
        pool_id TEXT COLLATE "C" PRIMARY KEY, status TEXT NOT NULL, started_ms BIGINT NOT NULL,
        completed_ms BIGINT, failure TEXT, cursor_identity TEXT COLLATE "C", cursor_dataset TEXT COLLATE "C",
        stream_name TEXT NOT NULL);
    CREATE TABLE leases (name TEXT COLLATE "C" PRIMARY KEY, holder TEXT NOT NULL, expires_ms BIGINT NOT NULL);"#,
    ),
    // 10: the answer of a dataset's last applied update, one per dataset (a retry can only
    // be of the latest: any later update makes its token stale), instead of one per update.
    // applied_updates stays for nodes of the previous release (synctrig_update_v1) until
    // its answers expire.
    (
        10,
        r#"CREATE TABLE update_answers (
        pool_id TEXT COLLATE "C" NOT NULL, identity_id TEXT COLLATE "C" NOT NULL, dataset TEXT COLLATE "C" NOT NULL,
        token_hash TEXT NOT NULL, request_hash TEXT NOT NULL, answer TEXT NOT NULL, expires BIGINT NOT NULL,
        PRIMARY KEY (pool_id, identity_id, dataset));
    CREATE INDEX update_answers_by_expiry ON update_answers (expires);"#,
    ),
    // 11: each pool's usage (SyncSessionsCount, DataStorage, last change) kept by triggers
    // in the transactions that change datasets and records, in 32 slots by identity so
    // that concurrent updates of one pool seldom wait on the same counter row.
    (
        11,
        r#"CREATE TABLE pool_usage (
        pool_id TEXT COLLATE "C" NOT NULL, slot BIGINT NOT NULL, sync_sessions BIGINT NOT NULL DEFAULT 0,
        bytes BIGINT NOT NULL DEFAULT 0, modified BIGINT, PRIMARY KEY (pool_id, slot));
    INSERT INTO pool_usage (pool_id, slot, sync_sessions, modified)
        SELECT pool_id, hashtext(identity_id) & 31, SUM(sync_count), MAX(modified) FROM datasets GROUP BY 1, 2;
    INSERT INTO pool_usage (pool_id, slot, bytes)
        SELECT pool_id, hashtext(identity_id) & 31, SUM(octet_length(key) + octet_length(value)) FROM records
        WHERE value IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (pool_id, slot) DO UPDATE SET bytes = EXCLUDED.bytes;
    CREATE FUNCTION synctrig_usage_add(p_pool TEXT, p_identity TEXT, p_sessions BIGINT, p_bytes BIGINT, p_modified BIGINT)
    RETURNS void LANGUAGE sql AS $fn$
        INSERT INTO pool_usage AS u (pool_id, slot, sync_sessions, bytes, modified)
            VALUES (p_pool, hashtext(p_identity) & 31, p_sessions, p_bytes, p_modified)
            ON CONFLICT (pool_id, slot) DO UPDATE SET sync_sessions = u.sync_sessions + EXCLUDED.sync_sessions,
                bytes = u.bytes + EXCLUDED.bytes, modified = GREATEST(u.modified, EXCLUDED.modified)
    $fn$;
    CREATE FUNCTION synctrig_datasets_usage() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
        -- An import counts once at its end (every row's upsert of one counter is slow).
        IF current_setting('synctrig.bulk_load', true) = 'on' THEN
            RETURN NULL;
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.pool_id = NEW.pool_id AND OLD.identity_id = NEW.identity_id THEN
            PERFORM synctrig_usage_add(NEW.pool_id, NEW.identity_id, NEW.sync_count - OLD.sync_count, 0, NEW.modified);
            RETURN NULL;
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            PERFORM synctrig_usage_add(OLD.pool_id, OLD.identity_id, -OLD.sync_count, 0, NULL);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            PERFORM synctrig_usage_add(NEW.pool_id, NEW.identity_id, NEW.sync_count, 0, NEW.modified);
        END IF;
        RETURN NULL;
    END
    $fn$;
    CREATE FUNCTION synctrig_records_usage() RETURNS trigger LANGUAGE plpgsql AS $fn$
    DECLARE
        v_old BIGINT := 0;
        v_new BIGINT := 0;
    BEGIN
        IF current_setting('synctrig.bulk_load', true) = 'on' THEN
            RETURN NULL;
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            v_old := COALESCE(octet_length(OLD.key) + octet_length(OLD.value), 0);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            v_new := COALESCE(octet_length(NEW.key) + octet_length(NEW.value), 0);
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.pool_id = NEW.pool_id AND OLD.identity_id = NEW.identity_id THEN
            IF v_new <> v_old THEN
                PERFORM synctrig_usage_add(NEW.pool_id, NEW.identity_id, 0, v_new - v_old, NULL);
            END IF;
            RETURN NULL;
        END IF;
        IF v_old <> 0 THEN
            PERFORM synctrig_usage_add(OLD.pool_id, OLD.identity_id, 0, -v_old, NULL);
        END IF;
        IF v_new <> 0 THEN
            PERFORM synctrig_usage_add(NEW.pool_id, NEW.identity_id, 0, v_new, NULL);
        END IF;
        RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER datasets_usage AFTER INSERT OR UPDATE OR DELETE ON datasets
        FOR EACH ROW EXECUTE FUNCTION synctrig_datasets_usage();
    CREATE TRIGGER records_usage AFTER INSERT OR UPDATE OR DELETE ON records
        FOR EACH ROW EXECUTE FUNCTION synctrig_records_usage();"#,
    ),
    // 12: records_by_identity served no query (every read of records names its pool first)
    // and cost every record write an index entry. (SQLite's 12 made its records table
    // again, WITHOUT ROWID; the version is shared, so that streams pass between backends.)
    (12, "DROP INDEX records_by_identity"),
    // 13: the usage counters' upsert in PL/pgSQL: a `LANGUAGE sql` function called from a
    // trigger is parsed and planned again at every call (PostgreSQL before 18 keeps no plan
    // for it), twice per update; PL/pgSQL keeps its plan for the session.
    (
        13,
        r#"CREATE OR REPLACE FUNCTION synctrig_usage_add(p_pool TEXT, p_identity TEXT, p_sessions BIGINT, p_bytes BIGINT, p_modified BIGINT)
    RETURNS void LANGUAGE plpgsql AS $fn$
    BEGIN
        INSERT INTO pool_usage AS u (pool_id, slot, sync_sessions, bytes, modified)
            VALUES (p_pool, hashtext(p_identity) & 31, p_sessions, p_bytes, p_modified)
            ON CONFLICT (pool_id, slot) DO UPDATE SET sync_sessions = u.sync_sessions + EXCLUDED.sync_sessions,
                bytes = u.bytes + EXCLUDED.bytes, modified = GREATEST(u.modified, EXCLUDED.modified);
    END
    $fn$;"#,
    ),
    // 14: records keyed by their dataset's number instead of its pool, identity and name
    // (94 bytes and more, in the row and in both indexes of every record: the store was
    // 1.6 times its export stream). A merge that moves a dataset moves its records with it
    // (their bytes stay in the source identity's usage slot: slots are only read summed by pool).
    // `records` stays as a view for reads (the export, the usage recount, a node of the
    // previous release during an upgrade). Records without a dataset row were never listed
    // and are not copied (nor counted).
    (
        14,
        r#"ALTER TABLE datasets ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY;
    CREATE UNIQUE INDEX datasets_by_id ON datasets (id);
    CREATE TABLE dataset_records (
        dataset_id BIGINT NOT NULL, key TEXT COLLATE "C" NOT NULL, value TEXT, sync_count BIGINT NOT NULL,
        modified BIGINT NOT NULL, modified_by TEXT NOT NULL, device_modified_ms BIGINT,
        PRIMARY KEY (dataset_id, key));
    INSERT INTO dataset_records (dataset_id, key, value, sync_count, modified, modified_by, device_modified_ms)
        SELECT d.id, r.key, r.value, r.sync_count, r.modified, r.modified_by, r.device_modified_ms
        FROM records r JOIN datasets d ON d.pool_id = r.pool_id AND d.identity_id = r.identity_id AND d.name = r.dataset;
    CREATE INDEX dataset_records_by_sync_count ON dataset_records (dataset_id, sync_count, key);
    UPDATE pool_usage u SET bytes = u.bytes - o.bytes
        FROM (SELECT r.pool_id, hashtext(r.identity_id) & 31 AS slot,
                  SUM(octet_length(r.key) + octet_length(r.value)) AS bytes
              FROM records r WHERE r.value IS NOT NULL AND NOT EXISTS (
                  SELECT 1 FROM datasets d WHERE d.pool_id = r.pool_id AND d.identity_id = r.identity_id
                      AND d.name = r.dataset)
              GROUP BY 1, 2) o
        WHERE u.pool_id = o.pool_id AND u.slot = o.slot;
    DROP TABLE records;
    DROP FUNCTION synctrig_records_usage();
    CREATE VIEW records AS
        SELECT d.pool_id, d.identity_id, d.name AS dataset, r.key, r.value, r.sync_count, r.modified,
            r.modified_by, r.device_modified_ms
        FROM dataset_records r JOIN datasets d ON d.id = r.dataset_id;
    CREATE FUNCTION synctrig_dataset_records_usage() RETURNS trigger LANGUAGE plpgsql AS $fn$
    DECLARE
        v_pool TEXT;
        v_identity TEXT;
        v_dataset BIGINT;
        v_bytes BIGINT := 0;
    BEGIN
        IF current_setting('synctrig.bulk_load', true) = 'on' THEN
            RETURN NULL;
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            v_dataset := OLD.dataset_id;
            v_bytes := -COALESCE(octet_length(OLD.key) + octet_length(OLD.value), 0);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            v_dataset := NEW.dataset_id;
            v_bytes := v_bytes + COALESCE(octet_length(NEW.key) + octet_length(NEW.value), 0);
        END IF;
        -- Records go before their dataset's row, so it is still there.
        SELECT d.pool_id, d.identity_id INTO v_pool, v_identity FROM datasets d WHERE d.id = v_dataset;
        IF FOUND THEN
            PERFORM synctrig_usage_add(v_pool, v_identity, 0, v_bytes, NULL);
        END IF;
        RETURN NULL;
    END
    $fn$;
    -- Called only when a row's live bytes change (the WHEN clauses cost no call): an
    -- update's record mostly keeps its length. Nothing changes a record's dataset or key.
    CREATE TRIGGER dataset_records_usage_insert AFTER INSERT ON dataset_records
        FOR EACH ROW WHEN (NEW.value IS NOT NULL) EXECUTE FUNCTION synctrig_dataset_records_usage();
    CREATE TRIGGER dataset_records_usage_update AFTER UPDATE ON dataset_records
        FOR EACH ROW WHEN (octet_length(OLD.value) IS DISTINCT FROM octet_length(NEW.value))
        EXECUTE FUNCTION synctrig_dataset_records_usage();
    CREATE TRIGGER dataset_records_usage_delete AFTER DELETE ON dataset_records
        FOR EACH ROW WHEN (OLD.value IS NOT NULL) EXECUTE FUNCTION synctrig_dataset_records_usage();"#,
    ),
];

/// SQLite's `SHORT_MERGED_NAMES`: the first schema whose merged names all keep to 128.
const SHORT_MERGED_NAMES: i64 = 5;

/// Server-side code, (re)created at every start-up under the migration lock. Not a schema
/// migration: it holds no data, and an export's schema version stays SQLite's. A change
/// of what it does is a new name (`_v2`), so nodes of two releases can run side by side;
/// a body that only follows a migration's tables keeps its name (a node of the previous
/// release, which refuses to start on the newer schema, runs the new body once it is
/// made: PL/pgSQL compiles a replaced function again).
///
/// `synctrig_update_v1` is an UpdateRecords' whole transaction in one statement (one
/// round trip instead of four): under the identity's row lock (which every change to an
/// identity's data takes first) it re-checks the SyncCount and the dataset limit, then
/// writes the dataset, its records and the answer kept for retries. Its rules are
/// [`crate::update::decide`]'s table, step for step (the parity test holds them together).
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
    v_id BIGINT;
BEGIN
    SELECT i.merged_into IS NULL AND i.pool_id = p_pool INTO v_live
        FROM identities i WHERE i.identity_id = p_identity FOR UPDATE;
    IF v_live IS NOT TRUE THEN
        outcome := 'identity_gone';
        RETURN;
    END IF;
    SELECT d.id, d.sync_count, d.deleted INTO v_id, v_count, v_deleted
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
            VALUES (p_pool, p_identity, p_name, v_new, p_now, p_now, p_by, 0, 0) RETURNING id INTO v_id;
    ELSIF v_deleted <> 0 THEN
        -- Recreating a deleted dataset keeps counting, and keeps its deletion's count.
        UPDATE datasets d SET sync_count = v_new, created = p_now, modified = p_now, modified_by = p_by, deleted = 0
            WHERE d.id = v_id;
    END IF;
    IF v_writes > 0 THEN
        -- The common case's three writes in one statement: the dataset's new count (unless
        -- written above), the records, and the answer kept for retries.
        WITH dataset AS (
            UPDATE datasets d SET sync_count = v_new, modified = p_now, modified_by = p_by
            WHERE v_found AND v_deleted = 0 AND d.id = v_id),
        written AS (
            INSERT INTO dataset_records AS r (dataset_id, key, value, sync_count, modified, modified_by, device_modified_ms)
            SELECT v_id, w.k, w.v, v_new, p_now, p_by, w.d
            FROM UNNEST(p_keys, p_values, p_devices) AS w (k, v, d)
            ON CONFLICT (dataset_id, key) DO UPDATE SET value = EXCLUDED.value,
                sync_count = EXCLUDED.sync_count, modified = EXCLUDED.modified,
                modified_by = EXCLUDED.modified_by, device_modified_ms = EXCLUDED.device_modified_ms)
        INSERT INTO applied_updates AS a (token_hash, request_hash, answer, expires)
            VALUES (p_token_hash, p_request_hash, p_answer, p_expires)
            ON CONFLICT (token_hash) DO UPDATE SET request_hash = EXCLUDED.request_hash,
                answer = EXCLUDED.answer, expires = EXCLUDED.expires;
    END IF;
    outcome := 'applied';
END
$fn$;

CREATE OR REPLACE FUNCTION synctrig_update_v2(
    p_pool TEXT, p_identity TEXT, p_name TEXT, p_expected BIGINT, p_now BIGINT, p_by TEXT, p_max BIGINT,
    p_keys TEXT[], p_values TEXT[], p_devices BIGINT[],
    p_token_hash TEXT, p_request_hash TEXT, p_answer TEXT, p_expires BIGINT,
    p_device TEXT, p_slot BIGINT, p_slot_bound BIGINT, p_full_reason TEXT, p_now_ms BIGINT,
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
    v_id BIGINT;
    v_stream TEXT;
    v_push BOOLEAN;
    v_rows BIGINT;
BEGIN
    SELECT i.merged_into IS NULL AND i.pool_id = p_pool INTO v_live
        FROM identities i WHERE i.identity_id = p_identity FOR UPDATE;
    IF v_live IS NOT TRUE THEN
        outcome := 'identity_gone';
        RETURN;
    END IF;
    SELECT d.id, d.sync_count, d.deleted INTO v_id, v_count, v_deleted
        FROM datasets d WHERE d.pool_id = p_pool AND d.identity_id = p_identity AND d.name = p_name;
    v_found := FOUND;
    IF COALESCE(v_count, 0) <> p_expected THEN
        -- A retry of an update that was applied gets the answer it had; anything else
        -- on a stale SyncCount is a conflict.
        SELECT a.request_hash, a.answer INTO v_stored_hash, v_stored_answer
            FROM update_answers a WHERE a.pool_id = p_pool AND a.identity_id = p_identity AND a.dataset = p_name
                AND a.token_hash = p_token_hash;
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
            VALUES (p_pool, p_identity, p_name, v_new, p_now, p_now, p_by, 0, 0) RETURNING id INTO v_id;
    ELSIF v_deleted <> 0 THEN
        -- Recreating a deleted dataset keeps counting, and keeps its deletion's count.
        UPDATE datasets d SET sync_count = v_new, created = p_now, modified = p_now, modified_by = p_by, deleted = 0
            WHERE d.id = v_id;
    END IF;
    IF v_writes > 0 THEN
        -- The common case's three writes in one statement: the dataset's new count (unless
        -- written above), the records, and the answer kept for retries.
        WITH dataset AS (
            UPDATE datasets d SET sync_count = v_new, modified = p_now, modified_by = p_by
            WHERE v_found AND v_deleted = 0 AND d.id = v_id),
        written AS (
            INSERT INTO dataset_records AS r (dataset_id, key, value, sync_count, modified, modified_by, device_modified_ms)
            SELECT v_id, w.k, w.v, v_new, p_now, p_by, w.d
            FROM UNNEST(p_keys, p_values, p_devices) AS w (k, v, d)
            ON CONFLICT (dataset_id, key) DO UPDATE SET value = EXCLUDED.value,
                sync_count = EXCLUDED.sync_count, modified = EXCLUDED.modified,
                modified_by = EXCLUDED.modified_by, device_modified_ms = EXCLUDED.device_modified_ms)
        INSERT INTO update_answers AS a (pool_id, identity_id, dataset, token_hash, request_hash, answer, expires)
            VALUES (p_pool, p_identity, p_name, p_token_hash, p_request_hash, p_answer, p_expires)
            ON CONFLICT (pool_id, identity_id, dataset) DO UPDATE SET token_hash = EXCLUDED.token_hash,
                request_hash = EXCLUDED.request_hash, answer = EXCLUDED.answer, expires = EXCLUDED.expires;
    END IF;
    IF v_new <> p_expected THEN
        -- The outbox entry of a streaming (or push-syncing) pool, in this transaction:
        -- sql::streams::enqueue's rule, step for step.
        SELECT CASE WHEN s.streaming = 1 THEN s.stream_name END,
               s.push_arns IS NOT NULL AND s.push_arns <> '[]'
            INTO v_stream, v_push FROM pool_streams s WHERE s.pool_id = p_pool;
        IF FOUND AND (v_stream IS NOT NULL OR v_push) THEN
            UPDATE outbox_depth o SET depth = o.depth + 1
                WHERE o.pool_id = p_pool AND o.slot = p_slot AND o.depth < p_slot_bound;
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            IF v_rows = 0 THEN
                INSERT INTO outbox_depth (pool_id, slot, depth) VALUES (p_pool, p_slot, 1)
                    ON CONFLICT (pool_id, slot) DO NOTHING;
                GET DIAGNOSTICS v_rows = ROW_COUNT;
                IF v_rows = 0 THEN
                    UPDATE outbox_depth o SET depth = o.depth + 1
                        WHERE o.pool_id = p_pool AND o.slot = p_slot AND o.depth < p_slot_bound;
                    GET DIAGNOSTICS v_rows = ROW_COUNT;
                END IF;
            END IF;
            IF v_rows = 1 THEN
                INSERT INTO outbox (pool_id, identity_id, dataset, sync_count, kind, records, at_ms, stream_name,
                        push, device_id, slot)
                    VALUES (p_pool, p_identity, p_name, v_new, 'update', p_answer, p_now_ms, v_stream,
                        CASE WHEN v_push THEN 1 ELSE 0 END, p_device, p_slot);
            ELSE
                UPDATE pool_streams s SET streaming = 0, disabled_reason = p_full_reason
                    WHERE s.pool_id = p_pool AND s.streaming = 1;
            END IF;
        END IF;
    END IF;
    outcome := 'applied';
END
$fn$"#;

pub(super) async fn migrate(pool: &deadpool_postgres::Pool) -> Result<()> {
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
        return Err(StoreError::Other(format!(
            "the database's schema (version {applied}) is newer than this synctrig-wasm knows ({newest}): upgrade it"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)", &[version, &now()]).await?;
    }
    if applied < SHORT_MERGED_NAMES {
        sql::identities::shorten_merged_names(&Pg(&tx)).await?;
        sql::identities::conform_pool_settings(&Pg(&tx)).await?;
    }
    tx.batch_execute(FUNCTIONS).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of schema 13 started by this release: every record (a tombstone, a value
    /// PostgreSQL keeps out of line, two identities' datasets of one name, a deleted
    /// dataset's row) as it was through the `records` view, the usage counters as they
    /// were and counting on, a record without its dataset's row not copied, and updates
    /// going on from where they were.
    #[tokio::test]
    async fn records_move_to_dataset_numbers_unchanged_on_upgrade() {
        let config = testing::fresh_database().await;
        let c = testing::connect(&config).await;
        c.batch_execute("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)")
            .await
            .unwrap();
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 <= 13) {
            c.batch_execute(sql).await.unwrap();
            c.execute("INSERT INTO schema_migrations VALUES ($1, 0)", &[version]).await.unwrap();
        }
        c.batch_execute(
            "INSERT INTO datasets (pool_id, identity_id, name, sync_count, created, modified, modified_by, deleted, deleted_at)
             VALUES ('p', 'i', 'd', 300, 0, 0, 'me', 0, 0), ('p', 'j', 'd', 2, 0, 0, 'me', 0, 0),
                    ('p', 'i', 'gone', 4, 0, 0, 'me', 1, 4);
             INSERT INTO records VALUES ('p', 'j', 'd', 'x', 'yz', 2, 5, 'them', NULL),
                 ('p', 'i', 'nowhere', 'lost', 'never listed', 1, 0, 'me', NULL);",
        )
        .await
        .unwrap();
        for n in 0..300i64 {
            let value = match n % 7 {
                0 => None,
                _ if n == 5 => Some("x".repeat(100_000)),
                _ => Some(format!("value {n}")),
            };
            let device = (n % 2 == 0).then_some(n);
            c.execute(
                "INSERT INTO records VALUES ('p', 'i', 'd', $1, $2, $3, 7, 'me', $4)",
                &[&format!("key {n}"), &value, &(300 - n), &device],
            )
            .await
            .unwrap();
        }
        let all = "SELECT pool_id, identity_id, dataset, key, value, sync_count, modified, modified_by,
                          device_modified_ms FROM records WHERE dataset <> 'nowhere'
                   ORDER BY pool_id, identity_id, dataset, key";
        type Record = (String, String, String, String, Option<String>, i64, i64, String, Option<i64>);
        let read = |rows: Vec<Row>| -> Vec<Record> {
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7), r.get(8)))
                .collect()
        };
        let usage = "SELECT pool_id, SUM(sync_sessions)::BIGINT, SUM(bytes)::BIGINT FROM pool_usage GROUP BY 1";
        let counters = |rows: Vec<Row>| -> Vec<(String, i64, i64)> {
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
        };
        let records = read(c.query(all, &[]).await.unwrap());
        let before = counters(c.query(usage, &[]).await.unwrap());
        assert_eq!(records.len(), 301);

        let store = Postgres::open_config(config.clone(), 2).await.unwrap();
        let version: i64 = c.query_one("SELECT MAX(version) FROM schema_migrations", &[]).await.unwrap().get(0);
        assert_eq!(version, 14);
        let kind: i8 = c.query_one("SELECT relkind FROM pg_class WHERE relname = 'records'", &[]).await.unwrap().get(0);
        assert_eq!(kind as u8, b'v', "records is a view now");
        assert_eq!(read(c.query(all, &[]).await.unwrap()), records);
        let lost: i64 =
            c.query_one("SELECT COUNT(*) FROM records WHERE dataset = 'nowhere'", &[]).await.unwrap().get(0);
        assert_eq!(lost, 0);
        // The orphan's bytes were counted at schema 13; they go with it.
        let after = counters(c.query(usage, &[]).await.unwrap());
        assert_eq!(after.len(), 1);
        assert_eq!((after[0].0.as_str(), after[0].1), (before[0].0.as_str(), before[0].1));
        assert_eq!(after[0].2, before[0].2 - ("lost".len() + "never listed".len()) as i64);

        // On from SyncCount 300: a value overwritten, the out-of-line one removed.
        let key = DatasetKey::new("p", "i", "d");
        let update = Update {
            pool: "p".into(),
            identity: "i".into(),
            name: "d".into(),
            expected: 300,
            writes: vec![
                synctrig_core::Write { key: "key 1".into(), value: Some("one".into()) },
                synctrig_core::Write { key: "key 5".into(), value: None },
            ],
            device_modified_ms: BTreeMap::new(),
            by: "me".into(),
            max_datasets: 20,
            idempotency: Idempotency { token_hash: "t".into(), request_hash: "r".into(), expires: now() + 60 },
            device_id: None,
        };
        c.execute("INSERT INTO identities (identity_id, pool_id, created) VALUES ('i', 'p', 0)", &[]).await.unwrap();
        let outcome = store.update(update).await.unwrap();
        assert!(matches!(outcome, UpdateOutcome::Applied(ref rows) if rows.len() == 2), "{outcome:?}");
        let snapshot = store.snapshot(key).await.unwrap();
        assert_eq!(snapshot.dataset.as_ref().map(|d| d.sync_count), Some(301));
        assert_eq!(snapshot.records.len(), 300);
        assert_eq!(snapshot.records["key 1"].value.as_deref(), Some("one"));
        assert_eq!(snapshot.records["key 5"].value, None);
        let page = store.records_page(key, 300, None, None, 10).await.unwrap();
        let keys: Vec<&str> = page.records.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["key 1", "key 5"]);
        let changed = counters(c.query(usage, &[]).await.unwrap());
        let delta = ("one".len() as i64 - "value 1".len() as i64) - ("key 5".len() + 100_000) as i64;
        assert_eq!(changed[0].2, after[0].2 + delta);
        assert_eq!(changed[0].1, after[0].1 + 1);
    }
}
