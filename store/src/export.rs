//! Export and import: an installation, or one identity pool, as a stream of JSON lines.
//!
//! The stream is documented in the README. Its first line names the format and version; then
//! one line per row, `{"type": <table>, "row": {<column>: <value>}}`, tables in a fixed
//! order and rows in primary-key order (so exporting what was imported gives the same
//! bytes); its last line, `{"type": "end", "rows": <count>}`, proves it is whole. Values
//! are JSON numbers, strings and nulls; bytes are `{"base64": "..."}`. What is not kept:
//! identity credentials (temporary; devices get new ones), stored update answers (an
//! hour's retries), invocation logs and recorded invocations (a
//! function's settings to record are kept; what it recorded is users' data for replay).
//!
//! Import reads the whole stream into one transaction on an empty store (or, for a pool,
//! one absent from it): any bad line, unknown column, duplicate or truncation changes
//! nothing. The stream is the same from either backend, so it moves an installation
//! between SQLite and PostgreSQL. This module is the stream; each backend reads and
//! writes its tables.

use super::StoreError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use std::io::BufRead;

pub(crate) use crate::sql::Value;

/// The stream's format name (its first line's `format`).
pub const FORMAT: &str = "synctrig-export";
/// The version of the stream's layout; import refuses others.
pub const VERSION: i64 = 1;
/// Longest line import reads: a 32 MiB function as base64, with room.
pub(crate) const MAX_LINE: u64 = 48 << 20;

/// One exported table: its columns in order, and how a pool's rows are picked.
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub order_by: &'static str,
    /// Rows of a whole installation (e.g. only long-lived credentials).
    pub filter: &'static str,
    /// The condition picking one pool's rows (`$1` is the pool id), if it has any.
    pub pool_filter: Option<&'static str>,
    /// Columns added to the stream after the table's first layout, with the schema that
    /// added each: a stream from an older schema has none of them, and they import as null.
    pub added: &'static [(&'static str, i64)],
}

impl Table {
    /// The columns a stream from `schema` has for this table.
    fn columns_of(&self, schema: i64) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().copied().filter(move |c| self.added.iter().all(|(a, since)| a != c || *since <= schema))
    }
}

pub(crate) const TABLES: &[Table] = &[
    Table { name: "meta", columns: &["key", "value"], order_by: "key", filter: "TRUE", pool_filter: None, added: &[] },
    Table {
        name: "tenants",
        columns: &["name", "created"],
        order_by: "name",
        filter: "TRUE",
        pool_filter: None,
        added: &[],
    },
    Table {
        name: "credentials",
        columns: &["access_key", "secret", "kind", "tenant"],
        order_by: "access_key",
        // Root and developer keys; identity credentials are temporary.
        filter: "kind IN ('root', 'developer')",
        pool_filter: None,
        added: &[],
    },
    Table {
        name: "oidc_issuers",
        columns: &["tenant", "issuer", "audiences", "jwks", "jwks_file", "created"],
        order_by: "tenant, issuer",
        filter: "TRUE",
        pool_filter: None,
        added: &[],
    },
    Table {
        name: "functions",
        columns: &["tenant", "name", "version", "digest", "wasm", "created", "source", "handler", "environment"],
        order_by: "tenant, name, version",
        filter: "TRUE",
        pool_filter: None,
        added: &[("environment", 6)],
    },
    Table {
        name: "function_aliases",
        columns: &[
            "tenant",
            "name",
            "alias",
            "version",
            "candidate",
            "weight_bp",
            "rollout",
            "epoch",
            "epoch_started",
            "description",
            "created",
            "modified",
        ],
        order_by: "tenant, name, alias",
        filter: "TRUE",
        pool_filter: None,
        added: &[],
    },
    Table {
        name: "function_recording",
        columns: &["tenant", "name", "max_count", "max_age_secs", "shadow_version", "modified"],
        order_by: "tenant, name",
        filter: "TRUE",
        pool_filter: None,
        added: &[],
    },
    Table {
        name: "pools",
        columns: &["pool_id", "name", "tenant", "sync_trigger", "created", "allow_unauthenticated", "settings"],
        order_by: "pool_id",
        filter: "TRUE",
        pool_filter: Some("pool_id = $1"),
        added: &[],
    },
    Table {
        name: "identities",
        columns: &["identity_id", "pool_id", "created", "modified", "merged_into", "authenticated"],
        order_by: "identity_id",
        filter: "TRUE",
        pool_filter: Some("pool_id = $1"),
        added: &[],
    },
    Table {
        name: "logins",
        columns: &["pool_id", "provider", "subject", "identity_id", "created"],
        order_by: "pool_id, provider, subject",
        filter: "TRUE",
        pool_filter: Some("pool_id = $1"),
        added: &[],
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
        filter: "TRUE",
        pool_filter: Some("pool_id = $1"),
        added: &[],
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
        filter: "TRUE",
        pool_filter: Some("pool_id = $1"),
        added: &[],
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

/// How many rows of each table an import wrote.
pub type Counts = Vec<(&'static str, u64)>;

pub(crate) fn to_json(value: Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => json!(i),
        Value::Real(f) => json!(f),
        Value::Text(s) => json!(s),
        Value::Blob(b) => json!({ "base64": B64.encode(b) }),
    }
}

pub(crate) fn from_json(value: &serde_json::Value) -> Option<Value> {
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

/// The stream's first line.
pub(crate) fn header(scope: &Scope, schema: i64) -> serde_json::Value {
    let (scope_name, pool) = match scope {
        Scope::Installation => ("installation", None),
        Scope::Pool(pool) => ("pool", Some(pool.as_str())),
    };
    json!({ "format": FORMAT, "version": VERSION, "scope": scope_name, "schema": schema, "pool": pool })
}

/// A row's line.
pub(crate) fn row_line(table: &Table, values: Vec<Value>) -> String {
    let mut object = serde_json::Map::new();
    for (column, value) in table.columns.iter().zip(values) {
        object.insert((*column).to_owned(), to_json(value));
    }
    json!({ "type": table.name, "row": object }).to_string()
}

/// The last line.
pub(crate) fn end_line(rows: u64) -> String {
    json!({ "type": "end", "rows": rows }).to_string()
}

/// A row read: (its line, its table, its values in the table's column order).
pub(crate) type Row = (usize, &'static Table, Vec<Value>);

/// What an import loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A whole installation, into an empty store.
    Installation,
    /// One pool, for a tenant of this store.
    Pool { pool: String, tenant: String },
}

/// Reads a stream, line by line, checking everything that does not need the database:
/// the header, each row's table and columns, the pool of a pool stream's rows, and the
/// end line's count.
pub(crate) struct Reader<'a> {
    input: &'a mut (dyn BufRead + Send),
    line_no: usize,
    buf: Vec<u8>,
    total: u64,
    /// What the stream holds.
    pub target: Target,
    /// The schema it was written from.
    schema: i64,
    /// Rows read, per table.
    pub counts: Counts,
}

impl<'a> Reader<'a> {
    /// Reads the header: a stream of this format and version, from a schema no newer than
    /// `schema`; a pool stream needs `tenant`.
    pub fn open(
        input: &'a mut (dyn BufRead + Send),
        schema: i64,
        tenant: Option<&str>,
    ) -> std::result::Result<Self, StoreError> {
        let mut reader = Reader {
            input,
            line_no: 0,
            buf: Vec::new(),
            total: 0,
            target: Target::Installation,
            schema,
            counts: Vec::new(),
        };
        let (_, header) = reader.next_line()?.ok_or_else(|| StoreError::Refused("the stream is empty".into()))?;
        if header["format"] != FORMAT || header["version"] != VERSION {
            return Err(StoreError::Refused(format!(
                "not a {FORMAT} stream of version {VERSION} (first line: format {}, version {})",
                header["format"], header["version"]
            )));
        }
        match header["schema"].as_i64() {
            Some(s) if s <= schema => reader.schema = s,
            _ => {
                return Err(StoreError::Refused(
                    "the stream is from a newer synctrig-wasm; upgrade this one first".into(),
                ));
            }
        }
        reader.target = match header["scope"].as_str() {
            Some("installation") => Target::Installation,
            Some("pool") => {
                let pool = header["pool"]
                    .as_str()
                    .ok_or_else(|| StoreError::Refused("the pool stream names no pool".into()))?;
                let tenant = tenant
                    .ok_or_else(|| StoreError::Refused("a pool is imported for a tenant: give --tenant".into()))?;
                Target::Pool { pool: pool.to_owned(), tenant: tenant.to_owned() }
            }
            _ => return Err(StoreError::Refused("the first line names no scope".into())),
        };
        reader.counts = TABLES.iter().map(|t| (t.name, 0)).collect();
        Ok(reader)
    }

    /// Each line with its number, bounded in length.
    fn next_line(&mut self) -> std::result::Result<Option<(usize, serde_json::Value)>, StoreError> {
        self.buf.clear();
        self.line_no += 1;
        let n = std::io::Read::take(&mut *self.input, MAX_LINE + 1).read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        let line = self.line_no;
        let bad = |reason: String| StoreError::Archive { line, reason };
        if n as u64 > MAX_LINE {
            return Err(bad(format!("longer than {MAX_LINE} bytes")));
        }
        serde_json::from_slice(&self.buf).map(|v| Some((line, v))).map_err(|e| bad(format!("not JSON: {e}")))
    }

    /// The next row: (its line, its table, its values in the table's column order); `None`
    /// after a valid end line that nothing follows. A pool stream's rows are checked to be
    /// the pool's, and their `tenant` becomes the importing tenant.
    pub fn next_row(&mut self) -> std::result::Result<Option<Row>, StoreError> {
        let Some((line, item)) = self.next_line()? else {
            return Err(StoreError::Refused("the stream ends without its end line: it is truncated".into()));
        };
        let bad = |reason: String| StoreError::Archive { line, reason };
        let kind = item["type"].as_str().ok_or_else(|| bad("no type".into()))?;
        if kind == "end" {
            if item["rows"].as_u64() != Some(self.total) {
                return Err(bad(format!("the end line counts {} rows; the stream had {}", item["rows"], self.total)));
            }
            if self.next_line()?.is_some() {
                return Err(StoreError::Refused("lines after the end line".into()));
            }
            return Ok(None);
        }
        let index = TABLES.iter().position(|t| t.name == kind).ok_or_else(|| bad(format!("unknown type {kind:?}")))?;
        let table = &TABLES[index];
        let row = item["row"].as_object().ok_or_else(|| bad("no row object".into()))?;
        let expected: Vec<&str> = table.columns_of(self.schema).collect();
        if row.len() != expected.len() || !expected.iter().all(|c| row.contains_key(*c)) {
            return Err(bad(format!(
                "a {kind} row of schema {} has exactly the columns {}",
                self.schema,
                expected.join(", ")
            )));
        }
        let mut values = Vec::with_capacity(table.columns.len());
        for column in table.columns {
            // A column the stream's schema did not have yet imports as null.
            let value = match row.get(*column) {
                Some(v) => from_json(v).ok_or_else(|| bad(format!("{kind}.{column} is not a value")))?,
                None => Value::Null,
            };
            values.push(value);
        }
        if let Target::Pool { pool, tenant } = &self.target {
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
        self.counts[index].1 += 1;
        self.total += 1;
        Ok(Some((line, table, values)))
    }
}

/// Why an installation stream cannot go into a store that is in use.
pub(crate) const NOT_EMPTY: &str = "an installation is imported only into an empty store (no tenants, no pools)";

/// Why a record cannot be imported: its dataset was not in the stream before it (the
/// records' first three columns, pool, identity and dataset, name it).
pub(crate) const RECORD_WITHOUT_DATASET: &str = "a record of a dataset the stream has not held before it";

/// Why a pool stream cannot go into this store.
pub(crate) fn pool_refused(pool: &str, tenant: &str) -> StoreError {
    StoreError::Refused(format!("needs tenant {tenant:?} to exist and pool {pool} not to"))
}

/// An export as the chunks of its stream, read from one snapshot at the pace its consumer
/// takes them. A failure midway ends it with the error (and without the end line, so an
/// import refuses what was cut); a consumer that goes away ends the export.
pub type ExportStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send>>;

/// How much of an export is sent at a time.
pub(crate) const CHUNK: usize = 64 << 10;

/// How long an export waits for a consumer that takes nothing before giving up: a client
/// that stops reading must not hold a snapshot (SQLite: the log cannot be checkpointed
/// past it) or a pooled connection (PostgreSQL) for ever.
pub(crate) const STALLED: std::time::Duration = std::time::Duration::from_secs(60);

/// The sending side of an [`ExportStream`].
#[derive(Clone)]
pub(crate) struct ChunkSender {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
    stall: std::time::Duration,
}

impl ChunkSender {
    /// Sends a chunk, waiting at most `stall` for room.
    async fn send(&self, chunk: Vec<u8>) -> std::io::Result<()> {
        use tokio::sync::mpsc::error::SendTimeoutError;
        match self.tx.send_timeout(Ok(chunk), self.stall).await {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Closed(_)) => Err(std::io::ErrorKind::BrokenPipe.into()),
            Err(SendTimeoutError::Timeout(_)) => {
                Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the export's consumer stopped reading"))
            }
        }
    }

    /// Ends the stream with an error, if there is room for it at once (a consumer that
    /// stalled sees the stream cut without its end line, which an import refuses).
    pub(crate) fn fail(&self, e: std::io::Error) {
        let _ = self.tx.try_send(Err(e));
    }
}

/// The sending side of an [`ExportStream`], and the stream.
pub(crate) fn chunk_channel() -> (ChunkSender, ExportStream) {
    chunk_channel_stalling_after(STALLED)
}

pub(crate) fn chunk_channel_stalling_after(stall: std::time::Duration) -> (ChunkSender, ExportStream) {
    // A few chunks in flight: the reader runs ahead of a slow client by this much only.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    (ChunkSender { tx, stall }, Box::pin(stream))
}

/// What ends an export: its rows written, or the error that cut it, passed on.
pub(crate) fn ended(exported: crate::Result<u64>) -> Option<std::io::Error> {
    match exported {
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "export failed");
            Some(std::io::Error::other(e.to_string()))
        }
    }
}

/// An export written, a chunk at a time, into a channel from a thread that may block.
pub(crate) struct BlockingChunks {
    tx: ChunkSender,
    /// The runtime the consumer runs on, to wait for room with a deadline.
    runtime: tokio::runtime::Handle,
    buf: Vec<u8>,
}

impl BlockingChunks {
    /// Must be made on the runtime (it keeps a handle to it) and used off it.
    pub(crate) fn new(tx: ChunkSender) -> Self {
        BlockingChunks { tx, runtime: tokio::runtime::Handle::current(), buf: Vec::with_capacity(CHUNK) }
    }
}

impl std::io::Write for BlockingChunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.runtime.block_on(self.tx.send(chunk))
    }
}

/// Where an export's lines go.
pub(crate) trait Lines: Send {
    async fn line(&mut self, line: &str) -> std::io::Result<()>;
    async fn finish(&mut self) -> std::io::Result<()>;
}

/// Lines into a writer (`admin export`: a file or standard output).
pub(crate) struct WriterLines<'a>(pub(crate) &'a mut (dyn std::io::Write + Send));

impl Lines for WriterLines<'_> {
    async fn line(&mut self, line: &str) -> std::io::Result<()> {
        writeln!(self.0, "{line}")
    }

    async fn finish(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Lines into a channel, a chunk at a time, waiting while the consumer is behind.
pub(crate) struct ChannelLines {
    tx: ChunkSender,
    buf: Vec<u8>,
}

impl ChannelLines {
    pub(crate) fn new(tx: ChunkSender) -> Self {
        ChannelLines { tx, buf: Vec::with_capacity(CHUNK) }
    }
}

impl Lines for ChannelLines {
    async fn line(&mut self, line: &str) -> std::io::Result<()> {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        if self.buf.len() >= CHUNK {
            self.finish().await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.send(chunk).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    const BRIEF: std::time::Duration = std::time::Duration::from_millis(50);

    #[tokio::test]
    async fn a_consumer_that_stops_reading_ends_the_export() {
        let (tx, _stream) = chunk_channel_stalling_after(BRIEF);
        let mut lines = ChannelLines::new(tx);
        let line = "x".repeat(CHUNK);
        // Four chunks fit in the channel; the fifth waits for a reader that never comes.
        for _ in 0..4 {
            lines.line(&line).await.unwrap();
        }
        let e = lines.line(&line).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_blocking_export_also_gives_up_on_a_stalled_consumer() {
        let (tx, _stream) = chunk_channel_stalling_after(BRIEF);
        let mut out = BlockingChunks::new(tx);
        let written = tokio::task::spawn_blocking(move || {
            let chunk = vec![b'x'; CHUNK];
            (0..5).try_for_each(|_| out.write_all(&chunk))
        })
        .await
        .unwrap();
        assert_eq!(written.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_consumer_that_goes_away_ends_the_export_at_once() {
        let (tx, stream) = chunk_channel_stalling_after(STALLED);
        drop(stream);
        let mut lines = ChannelLines::new(tx);
        lines.line("x").await.unwrap();
        assert_eq!(lines.finish().await.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    }
}
