//! Export and import of the SQLite store (the stream is [`crate::export`]).

use super::{Lite, Sqlite, from_sql};
use crate::export::{
    BlockingChunks, Counts, ExportStream, NOT_EMPTY, RECORD_WITHOUT_DATASET, Reader, Scope, TABLES, Target,
    chunk_channel, end_line, ended, header, pool_refused, row_line,
};
use crate::{Archive, Result, StoreError};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, TransactionBehavior, params_from_iter};
use std::io::{BufRead, Write};
use std::sync::Arc;

pub(super) fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

impl Sqlite {
    /// Writes `scope` to `out` as JSON lines, from one consistent snapshot; the number of
    /// rows written.
    pub fn export(&self, scope: &Scope, out: &mut dyn Write) -> Result<u64> {
        let mut conn = super::connect(&self.path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let pool = match scope {
            Scope::Installation => None,
            Scope::Pool(pool) => Some(pool.as_str()),
        };
        if let Some(pool) = pool {
            let exists: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM pools WHERE pool_id = ?1)", [pool], |r| r.get(0))?;
            if !exists {
                return Err(StoreError::Refused(format!("no identity pool {pool}")));
            }
        }
        writeln!(out, "{}", header(scope, schema_version(&tx)?))?;
        let mut rows = 0u64;
        for table in TABLES {
            let condition = match (pool, table.pool_filter) {
                (None, _) => table.filter,
                (Some(_), Some(filter)) => filter,
                (Some(_), None) => continue,
            };
            let sql = format!(
                "SELECT {} FROM {} WHERE {} ORDER BY {}",
                table.columns.join(", "),
                table.name,
                condition.replace("$1", "?1"),
                table.order_by
            );
            let mut stmt = tx.prepare(&sql)?;
            let mut cursor = match pool {
                Some(pool) => stmt.query([pool]),
                None => stmt.query([]),
            }?;
            while let Some(row) = cursor.next()? {
                let values = (0..table.columns.len())
                    .map(|i| row.get::<_, SqlValue>(i).map(from_sql))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                writeln!(out, "{}", row_line(table, values))?;
                rows += 1;
            }
        }
        writeln!(out, "{}", end_line(rows))?;
        out.flush()?;
        Ok(rows)
    }

    /// Loads a stream; see [`crate::Backend::import`].
    pub fn import(&self, input: &mut (dyn BufRead + Send), tenant: Option<&str>) -> Result<Counts> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut reader = Reader::open(input, schema_version(&tx)?, tenant)?;
        match &reader.target {
            Target::Installation => {
                let used: bool =
                    tx.query_row("SELECT EXISTS (SELECT 1 FROM tenants) OR EXISTS (SELECT 1 FROM pools)", [], |r| {
                        r.get(0)
                    })?;
                if used {
                    return Err(StoreError::Refused(NOT_EMPTY.into()));
                }
                // A fresh store made its own keys: the installation's replace them.
                tx.execute("DELETE FROM meta", [])?;
                tx.execute("DELETE FROM credentials WHERE kind = 'root'", [])?;
            }
            Target::Pool { pool, tenant } => {
                let ok: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM tenants WHERE name = ?1) AND NOT EXISTS (SELECT 1 FROM pools WHERE pool_id = ?2)",
                    [tenant, pool],
                    |r| r.get(0),
                )?;
                if !ok {
                    return Err(pool_refused(pool, tenant));
                }
            }
        }
        // The usage triggers stand aside for the rows below (the transaction holds the
        // database's write lock, so no other write goes by without them); the usage is
        // counted once at the end, and they are made again before the commit.
        tx.execute_batch(super::schema::DROP_USAGE_TRIGGERS)?;
        // The last dataset a record was found to belong to: a stream's records come grouped
        // by dataset, so each dataset is looked up once, not once per record.
        let mut held: Option<Vec<crate::sql::Value>> = None;
        while let Some((line, table, values)) = reader.next_row()? {
            if table.name == "records" && held.as_deref() != Some(&values[..3]) {
                // A record only of a dataset the stream held before it (as PostgreSQL,
                // whose records are kept by their dataset's number).
                let exists: bool = tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM datasets WHERE pool_id = ?1 AND identity_id = ?2 AND name = ?3)",
                    )?
                    .query_row(params_from_iter(&values[..3]), |r| r.get(0))?;
                if !exists {
                    return Err(StoreError::Archive { line, reason: RECORD_WITHOUT_DATASET.into() });
                }
                held = Some(values[..3].to_vec());
            }
            let placeholders = vec!["?"; values.len()].join(", ");
            let sql = format!("INSERT INTO {} ({}) VALUES ({placeholders})", table.name, table.columns.join(", "));
            tx.prepare_cached(&sql).and_then(|mut stmt| stmt.execute(params_from_iter(values))).map_err(|e| {
                StoreError::Archive { line, reason: format!("cannot insert the {} row: {e}", table.name) }
            })?;
        }
        // A stream from before schema 5 may hold merged names past 128 characters, and
        // settings with old separators.
        crate::sql::ready(crate::sql::identities::shorten_merged_names(&Lite(&tx)))?;
        crate::sql::ready(crate::sql::identities::conform_pool_settings(&Lite(&tx)))?;
        let only = match &reader.target {
            Target::Installation => None,
            Target::Pool { pool, .. } => Some(pool.clone()),
        };
        tx.execute("DELETE FROM pool_usage WHERE ?1 IS NULL OR pool_id = ?1", [&only])?;
        tx.execute(
            "INSERT INTO pool_usage (pool_id, sync_sessions, modified)
             SELECT pool_id, SUM(sync_count), MAX(modified) FROM datasets WHERE ?1 IS NULL OR pool_id = ?1
             GROUP BY pool_id",
            [&only],
        )?;
        tx.execute(
            "INSERT INTO pool_usage (pool_id, bytes)
             SELECT pool_id, SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))) FROM records
             WHERE value IS NOT NULL AND (?1 IS NULL OR pool_id = ?1) GROUP BY pool_id
             ON CONFLICT (pool_id) DO UPDATE SET bytes = excluded.bytes",
            [&only],
        )?;
        tx.execute_batch(super::schema::USAGE_TRIGGERS)?;
        let counts = reader.counts;
        tx.commit()?;
        // The import's one transaction is all in the log: into the database with it, so
        // the next start does not read it all again.
        super::checkpoint(&conn, super::BUSY_TIMEOUT)?;
        Ok(counts)
    }
}

#[async_trait::async_trait]
impl Archive for Sqlite {
    async fn export(&self, scope: &Scope, out: &mut (dyn std::io::Write + Send)) -> Result<u64> {
        Sqlite::export(self, scope, out)
    }

    async fn import(&self, input: &mut (dyn std::io::BufRead + Send), tenant: Option<&str>) -> Result<Counts> {
        // On the caller's thread: only `admin import` calls it, a command of its own that
        // serves nothing else meanwhile.
        Sqlite::import(self, input, tenant)
    }

    fn export_stream(self: Arc<Self>, scope: Scope) -> ExportStream {
        let (tx, stream) = chunk_channel();
        let mut out = BlockingChunks::new(tx.clone());
        tokio::task::spawn_blocking(move || {
            if let Some(e) = ended(self.export(&scope, &mut out)) {
                tx.fail(e);
            }
        });
        stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sqlite::Sqlite as Store;
    use crate::sqlite::temp_store as store;
    use crate::sqlite::wait;
    use crate::{Identities, Tenants};

    fn export(store: &Store, scope: &Scope) -> Vec<u8> {
        let mut out = Vec::new();
        store.export(scope, &mut out).unwrap();
        out
    }

    fn fill(store: &Store) -> String {
        wait(store.create_tenant("acme")).unwrap();
        let pool = wait(store.create_pool("acme", "us-east-1", "game", true, &Default::default())).unwrap().pool_id;
        let identity = wait(store.create_identity(&pool, "us-east-1")).unwrap();
        let conn = store.conn();
        conn.execute(
            "INSERT INTO datasets (pool_id, identity_id, name, sync_count, created, modified, modified_by, deleted_at)
             VALUES (?1, ?2, 'd', 3, 1, 2, 'me', 2)",
            [&pool, &identity],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO records (pool_id, identity_id, dataset, key, value, sync_count, modified, modified_by, device_modified_ms)
             VALUES (?1, ?2, 'd', 'k', 'v\u{e9}\n', 3, 2, 'me', 1795810224455), (?1, ?2, 'd', 'gone', NULL, 2, 2, 'me', NULL)",
            [&pool, &identity],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO functions (tenant, name, version, digest, wasm, created) VALUES ('acme', 'f', 1, 'x', X'0061736d00ff', 5)",
            [],
        )
        .unwrap();
        pool
    }

    #[test]
    fn an_installation_round_trips_byte_for_byte() {
        let (_a, a) = store();
        fill(&a);
        let first = export(&a, &Scope::Installation);
        let (_b, b) = store();
        b.import(&mut first.as_slice(), None).unwrap();
        assert_eq!(
            String::from_utf8(export(&b, &Scope::Installation)).unwrap(),
            String::from_utf8(first.clone()).unwrap()
        );
        // Not twice: the store is no longer empty.
        assert!(matches!(b.import(&mut first.as_slice(), None), Err(StoreError::Refused(_))));
    }

    #[test]
    fn a_bad_or_truncated_stream_writes_nothing() {
        let (_a, a) = store();
        fill(&a);
        let good = String::from_utf8(export(&a, &Scope::Installation)).unwrap();
        let lines: Vec<&str> = good.lines().collect();
        let mut cases = vec![
            lines[..lines.len() - 1].join("\n"),                                // no end line
            good.replace("\"created\":", "\"made\":"),                          // unknown column
            good.replace("\"type\":\"records\"", "\"type\":\"sqlite_master\""), // unknown table
            good.replace("\"rows\":", "\"rows\":1"),                            // wrong count
            format!("{good}{}\n", lines[2]),                                    // after the end
            String::new(),
            "{\"format\":\"other\"}\n".into(),
        ];
        // A duplicate row (a primary key conflict) with the count adjusted.
        let mut dup: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        let record = dup.iter().position(|l| l.contains("\"type\":\"records\"")).unwrap();
        dup.insert(record, dup[record].clone());
        let n = dup.len() - 2;
        *dup.last_mut().unwrap() = format!("{{\"type\":\"end\",\"rows\":{n}}}");
        cases.push(dup.join("\n"));
        cases.push(crate::tests::without_datasets(&lines));
        for case in cases {
            let (_b, b) = store();
            let before = export(&b, &Scope::Installation);
            assert!(b.import(&mut case.as_bytes(), None).is_err(), "{case}");
            assert_eq!(export(&b, &Scope::Installation), before);
        }
    }

    #[test]
    fn a_pool_moves_to_another_tenant_of_another_store() {
        let (_a, a) = store();
        let pool = fill(&a);
        let stream = export(&a, &Scope::Pool(pool.clone()));
        let text = String::from_utf8(stream.clone()).unwrap();
        assert!(!text.contains("\"type\":\"credentials\"") && !text.contains("\"type\":\"functions\""));
        let (_b, b) = store();
        wait(b.create_tenant("other")).unwrap();
        assert!(matches!(b.import(&mut stream.as_slice(), Some("nobody")), Err(StoreError::Refused(_))));
        let counts = b.import(&mut stream.as_slice(), Some("other")).unwrap();
        assert!(counts.contains(&("records", 2)) && counts.contains(&("identities", 1)));
        let moved = wait(b.pool(&pool)).unwrap().unwrap();
        assert_eq!(moved.tenant, "other");
        // The same rows, but for the tenant that owns the pool now.
        let expected = text.replace("\"tenant\":\"acme\"", "\"tenant\":\"other\"");
        assert_eq!(String::from_utf8(export(&b, &Scope::Pool(pool))).unwrap(), expected);
    }
}
