//! Export and import: an installation, or one identity pool, as a stream of JSON lines.
//!
//! The stream is documented in the README. Its first line names the format and version; then
//! one line per row, `{"type": <table>, "row": {<column>: <value>}}`, tables in a fixed
//! order and rows in primary-key order (so exporting what was imported gives the same
//! bytes); its last line, `{"type": "end", "rows": <count>}`, proves it is whole. Values
//! are JSON numbers, strings and nulls; bytes are `{"base64": "..."}`. What is not kept:
//! identity credentials (temporary; devices get new ones), stored update answers (an
//! hour's retries) and invocation logs.
//!
//! Import reads the whole stream into one transaction on an empty store (or, for a pool,
//! one absent from it): any bad line, unknown column, duplicate or truncation changes
//! nothing.

use super::{DbError, Result, Store};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior, params_from_iter};
use serde_json::{Map, json};
use std::io::{BufRead, Write};

/// The stream's format name (its first line's `format`).
pub const FORMAT: &str = "synctrig-export";
/// The version of the stream's layout; import refuses others.
pub const VERSION: i64 = 1;
/// Longest line import reads: a 32 MiB function as base64, with room.
const MAX_LINE: u64 = 48 << 20;

/// One exported table: its columns in order, and how a pool's rows are picked.
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    order_by: &'static str,
    /// Rows of a whole installation (e.g. only long-lived credentials).
    filter: &'static str,
    /// The condition picking one pool's rows (`?1` is the pool id), if it has any.
    pool_filter: Option<&'static str>,
}

const TABLES: &[Table] = &[
    Table { name: "meta", columns: &["key", "value"], order_by: "key", filter: "1", pool_filter: None },
    Table { name: "tenants", columns: &["name", "created"], order_by: "name", filter: "1", pool_filter: None },
    Table {
        name: "credentials",
        columns: &["access_key", "secret", "kind", "tenant"],
        order_by: "access_key",
        // Root and developer keys; identity credentials are temporary.
        filter: "kind IN ('root', 'developer')",
        pool_filter: None,
    },
    Table {
        name: "oidc_issuers",
        columns: &["tenant", "issuer", "audiences", "jwks", "jwks_file", "created"],
        order_by: "tenant, issuer",
        filter: "1",
        pool_filter: None,
    },
    Table {
        name: "functions",
        columns: &["tenant", "name", "version", "digest", "wasm", "created", "source", "handler"],
        order_by: "tenant, name, version",
        filter: "1",
        pool_filter: None,
    },
    Table {
        name: "pools",
        columns: &["pool_id", "name", "tenant", "sync_trigger", "created", "allow_unauthenticated", "settings"],
        order_by: "pool_id",
        filter: "1",
        pool_filter: Some("pool_id = ?1"),
    },
    Table {
        name: "identities",
        columns: &["identity_id", "pool_id", "created", "modified", "merged_into", "authenticated"],
        order_by: "identity_id",
        filter: "1",
        pool_filter: Some("pool_id = ?1"),
    },
    Table {
        name: "logins",
        columns: &["pool_id", "provider", "subject", "identity_id", "created"],
        order_by: "pool_id, provider, subject",
        filter: "1",
        pool_filter: Some("pool_id = ?1"),
    },
    Table {
        name: "datasets",
        columns: &[
            "pool_id",
            "identity_id",
            "name",
            "sync_count",
            "created",
            "modified",
            "modified_by",
            "deleted",
            "deleted_at",
            "merged_from",
            "merged_base",
        ],
        order_by: "pool_id, identity_id, name",
        filter: "1",
        pool_filter: Some("pool_id = ?1"),
    },
    Table {
        name: "records",
        columns: &[
            "pool_id",
            "identity_id",
            "dataset",
            "key",
            "value",
            "sync_count",
            "modified",
            "modified_by",
            "device_modified_ms",
        ],
        order_by: "pool_id, identity_id, dataset, key",
        filter: "1",
        pool_filter: Some("pool_id = ?1"),
    },
];

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything but temporary state.
    Installation,
    /// One identity pool: the pool, its identities, logins, datasets and records.
    Pool(String),
}

/// Why an import was refused (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("line {line}: {reason}")]
    Bad { line: usize, reason: String },
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot read the stream: {0}")]
    Io(#[from] std::io::Error),
}

/// How many rows of each table an import wrote.
pub type Counts = Vec<(&'static str, u64)>;

fn to_json(value: Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => json!(i),
        Value::Real(f) => json!(f),
        Value::Text(s) => json!(s),
        Value::Blob(b) => json!({ "base64": B64.encode(b) }),
    }
}

fn from_json(value: &serde_json::Value) -> Option<Value> {
    Some(match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64()?),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Object(o) if o.len() == 1 => Value::Blob(B64.decode(o.get("base64")?.as_str()?).ok()?),
        _ => return None,
    })
}

fn schema_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

impl Store {
    /// Writes `scope` to `out` as JSON lines, from one consistent snapshot; the number of
    /// rows written.
    pub fn export(&self, scope: &Scope, out: &mut dyn Write) -> std::result::Result<u64, ImportError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(DbError)?;
        let (scope_name, pool) = match scope {
            Scope::Installation => ("installation", None),
            Scope::Pool(pool) => ("pool", Some(pool.as_str())),
        };
        if let Some(pool) = pool {
            let exists: bool = tx
                .query_row("SELECT EXISTS (SELECT 1 FROM pools WHERE pool_id = ?1)", [pool], |r| r.get(0))
                .map_err(DbError)?;
            if !exists {
                return Err(ImportError::Refused(format!("no identity pool {pool}")));
            }
        }
        let header = json!({ "format": FORMAT, "version": VERSION, "scope": scope_name, "schema": schema_version(&tx)?, "pool": pool });
        writeln!(out, "{header}")?;
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
            let mut stmt = tx.prepare(&sql).map_err(DbError)?;
            let mut cursor = match pool {
                Some(pool) => stmt.query([pool]),
                None => stmt.query([]),
            }
            .map_err(DbError)?;
            while let Some(row) = cursor.next().map_err(DbError)? {
                let mut object = Map::new();
                for (i, column) in table.columns.iter().enumerate() {
                    object.insert((*column).to_owned(), to_json(row.get::<_, Value>(i).map_err(DbError)?));
                }
                writeln!(out, "{}", json!({ "type": table.name, "row": object }))?;
                rows += 1;
            }
        }
        writeln!(out, "{}", json!({ "type": "end", "rows": rows }))?;
        out.flush()?;
        Ok(rows)
    }

    /// Loads a stream [`Store::export`] wrote. A whole installation goes only into a store
    /// with no tenants and no pools; a pool only into a store without it, under `tenant`
    /// (which must exist). All or nothing.
    pub fn import(&self, input: &mut dyn BufRead, tenant: Option<&str>) -> std::result::Result<Counts, ImportError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(DbError)?;
        let mut line_no = 0usize;
        let mut buf = Vec::new();
        // Each line with its number, bounded in length.
        let mut next_line = || -> std::result::Result<Option<(usize, serde_json::Value)>, ImportError> {
            buf.clear();
            line_no += 1;
            let n = std::io::Read::take(&mut *input, MAX_LINE + 1).read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            let bad = |reason: String| ImportError::Bad { line: line_no, reason };
            if n as u64 > MAX_LINE {
                return Err(bad(format!("longer than {MAX_LINE} bytes")));
            }
            serde_json::from_slice(&buf).map(|v| Some((line_no, v))).map_err(|e| bad(format!("not JSON: {e}")))
        };
        let (_, header) = next_line()?.ok_or_else(|| ImportError::Refused("the stream is empty".into()))?;
        if header["format"] != FORMAT || header["version"] != VERSION {
            return Err(ImportError::Refused(format!(
                "not a {FORMAT} stream of version {VERSION} (first line: format {}, version {})",
                header["format"], header["version"]
            )));
        }
        let schema = schema_version(&tx)?;
        if header["schema"].as_i64().is_none_or(|s| s > schema) {
            return Err(ImportError::Refused(
                "the stream is from a newer synctrig-wasm; upgrade this one first".into(),
            ));
        }
        let pool = match header["scope"].as_str() {
            Some("installation") => {
                let used: bool = tx
                    .query_row("SELECT EXISTS (SELECT 1 FROM tenants) OR EXISTS (SELECT 1 FROM pools)", [], |r| {
                        r.get(0)
                    })
                    .map_err(DbError)?;
                if used {
                    return Err(ImportError::Refused(
                        "an installation is imported only into an empty store (no tenants, no pools)".into(),
                    ));
                }
                // A fresh store made its own keys: the installation's replace them.
                tx.execute("DELETE FROM meta", []).map_err(DbError)?;
                tx.execute("DELETE FROM credentials WHERE kind = 'root'", []).map_err(DbError)?;
                None
            }
            Some("pool") => {
                let pool = header["pool"]
                    .as_str()
                    .ok_or_else(|| ImportError::Refused("the pool stream names no pool".into()))?;
                let tenant = tenant
                    .ok_or_else(|| ImportError::Refused("a pool is imported for a tenant: give --tenant".into()))?;
                let ok: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM tenants WHERE name = ?1) AND NOT EXISTS (SELECT 1 FROM pools WHERE pool_id = ?2)",
                        [tenant, pool],
                        |r| r.get(0),
                    )
                    .map_err(DbError)?;
                if !ok {
                    return Err(ImportError::Refused(format!(
                        "needs tenant {tenant:?} to exist and pool {pool} not to"
                    )));
                }
                Some((pool.to_owned(), tenant.to_owned()))
            }
            _ => return Err(ImportError::Refused("the first line names no scope".into())),
        };
        let mut counts: Counts = TABLES.iter().map(|t| (t.name, 0)).collect();
        let mut total = 0u64;
        loop {
            let Some((line, item)) = next_line()? else {
                return Err(ImportError::Refused("the stream ends without its end line: it is truncated".into()));
            };
            let bad = |reason: String| ImportError::Bad { line, reason };
            let kind = item["type"].as_str().ok_or_else(|| bad("no type".into()))?;
            if kind == "end" {
                if item["rows"].as_u64() != Some(total) {
                    return Err(bad(format!("the end line counts {} rows; the stream had {total}", item["rows"])));
                }
                if next_line()?.is_some() {
                    return Err(ImportError::Refused("lines after the end line".into()));
                }
                break;
            }
            let index =
                TABLES.iter().position(|t| t.name == kind).ok_or_else(|| bad(format!("unknown type {kind:?}")))?;
            let table = &TABLES[index];
            let row = item["row"].as_object().ok_or_else(|| bad("no row object".into()))?;
            if row.len() != table.columns.len() || !table.columns.iter().all(|c| row.contains_key(*c)) {
                return Err(bad(format!("a {kind} row has exactly the columns {}", table.columns.join(", "))));
            }
            let mut values = Vec::with_capacity(table.columns.len());
            for column in table.columns {
                values.push(from_json(&row[*column]).ok_or_else(|| bad(format!("{kind}.{column} is not a value")))?);
            }
            if let Some((pool, tenant)) = &pool {
                if table.pool_filter.is_none() {
                    return Err(bad(format!("a pool stream has no {kind} rows")));
                }
                let pool_at = table.columns.iter().position(|c| *c == "pool_id").unwrap_or(0);
                if values[pool_at] != Value::Text(pool.clone()) {
                    return Err(bad(format!("a row of another pool than {pool}")));
                }
                if let Some(t) = table.columns.iter().position(|c| *c == "tenant") {
                    values[t] = Value::Text(tenant.clone());
                }
            }
            let placeholders = vec!["?"; values.len()].join(", ");
            let sql = format!("INSERT INTO {} ({}) VALUES ({placeholders})", table.name, table.columns.join(", "));
            tx.prepare_cached(&sql)
                .and_then(|mut stmt| stmt.execute(params_from_iter(values.iter())))
                .map_err(|e| bad(format!("cannot insert the {kind} row: {e}")))?;
            counts[index].1 += 1;
            total += 1;
        }
        tx.commit().map_err(DbError)?;
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::server::store::temp_store as store;

    fn export(store: &Store, scope: &Scope) -> Vec<u8> {
        let mut out = Vec::new();
        store.export(scope, &mut out).unwrap();
        out
    }

    fn fill(store: &Store) -> String {
        store.create_tenant("acme").unwrap();
        let pool = store.create_pool("acme", "us-east-1", "game", true, &Default::default()).unwrap().pool_id;
        let identity = store.create_identity(&pool, "us-east-1").unwrap();
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
        assert!(matches!(b.import(&mut first.as_slice(), None), Err(ImportError::Refused(_))));
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
        b.create_tenant("other").unwrap();
        assert!(matches!(b.import(&mut stream.as_slice(), Some("nobody")), Err(ImportError::Refused(_))));
        let counts = b.import(&mut stream.as_slice(), Some("other")).unwrap();
        assert!(counts.contains(&("records", 2)) && counts.contains(&("identities", 1)));
        let moved = b.pool(&pool).unwrap().unwrap();
        assert_eq!(moved.tenant, "other");
        // The same rows, but for the tenant that owns the pool now.
        let expected = text.replace("\"tenant\":\"acme\"", "\"tenant\":\"other\"");
        assert_eq!(String::from_utf8(export(&b, &Scope::Pool(pool))).unwrap(), expected);
    }
}
