//! What both backends run the same way: a connection or transaction of either ([`Db`]),
//! the values it binds and reads ([`Value`]), and the rules written once over it
//! ([`identities`]).
//!
//! Shared statements are written in PostgreSQL's placeholder style (`$1`, `$2`, …); the
//! SQLite side rewrites them to `?1`, `?2`, … (the same numbering). They keep to the SQL
//! both dialects read alike: `ON CONFLICT … DO NOTHING`, `CAST(… AS TEXT)`, `length`,
//! integers for flags. Where the dialects really differ (row locks) the difference is a
//! method of [`Db`], not a second copy of the rule.
//!
//! The hot paths (UpdateRecords, a ListRecords page, the export) stay in each backend's
//! own code: they are shaped by what each engine does fastest (one server-side function
//! call on PostgreSQL, one writer thread on SQLite).

pub(crate) mod functions;
pub(crate) mod identities;
pub(crate) mod recordings;
pub(crate) mod releases;
pub(crate) mod streams;
pub(crate) mod tenants;

use crate::{Result, StoreError};

/// A column's value, as both backends store it (integers, text, bytes, nulls; reals are
/// read but no column holds one). Flags are integers, 0 or 1, in both.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Text(s.clone())
    }
}

impl From<Option<&str>> for Value {
    fn from(s: Option<&str>) -> Value {
        s.map_or(Value::Null, Value::from)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Blob(b.to_vec())
    }
}

impl From<Option<i64>> for Value {
    fn from(i: Option<i64>) -> Value {
        i.map_or(Value::Null, Value::Integer)
    }
}

impl From<Option<&String>> for Value {
    fn from(s: Option<&String>) -> Value {
        s.map_or(Value::Null, Value::from)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Integer(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Integer(b as i64)
    }
}

impl Value {
    fn unexpected(&self, want: &str) -> StoreError {
        StoreError::Other(format!("a column held {self:?} where {want} was expected"))
    }

    pub(crate) fn text(self) -> Result<String> {
        match self {
            Value::Text(s) => Ok(s),
            v => Err(v.unexpected("text")),
        }
    }

    pub(crate) fn opt_text(self) -> Result<Option<String>> {
        match self {
            Value::Null => Ok(None),
            v => v.text().map(Some),
        }
    }

    pub(crate) fn int(self) -> Result<i64> {
        match self {
            Value::Integer(i) => Ok(i),
            v => Err(v.unexpected("an integer")),
        }
    }

    pub(crate) fn blob(self) -> Result<Vec<u8>> {
        match self {
            Value::Blob(b) => Ok(b),
            v => Err(v.unexpected("bytes")),
        }
    }

    pub(crate) fn flag(self) -> Result<bool> {
        self.int().map(|i| i != 0)
    }
}

/// A row's columns, exactly `N` of them (a statement that answers another number is a
/// bug, reported, not a panic).
pub(crate) fn columns<const N: usize>(row: Vec<Value>) -> Result<[Value; N]> {
    let n = row.len();
    row.try_into().map_err(|_| StoreError::Other(format!("a row had {n} columns where {N} were expected")))
}

/// A shared statement's parameters, each made a [`Value`].
macro_rules! values {
    ($($v:expr),* $(,)?) => { &[$($crate::sql::Value::from($v)),*] };
}
pub(crate) use values;

/// A connection or a transaction of either backend, running statements written once.
///
/// The futures of the SQLite side never wait (its statements run on the calling thread);
/// PostgreSQL's make round trips. Rules are generic over this trait, so each backend
/// compiles them with its own futures.
pub(crate) trait Db {
    /// `FOR UPDATE` where the backend locks rows (PostgreSQL); nothing where a write
    /// transaction already holds the whole database (SQLite's are `IMMEDIATE`).
    const FOR_UPDATE: &'static str;
    /// `FOR SHARE` where the backend locks rows: the row cannot change or go until the
    /// transaction ends.
    const FOR_SHARE: &'static str;
    /// Whether records are kept by their dataset's number (PostgreSQL's `dataset_records`),
    /// so that they follow a dataset that moves (a merge, a rename), or by its pool,
    /// identity and name (SQLite's `records`).
    const RECORDS_FOLLOW_DATASETS: bool;

    /// Makes the transactions that call this with `key` take turns, on every node, until
    /// each ends (PostgreSQL: an advisory lock). SQLite's write transactions take turns
    /// already.
    async fn take_turns(&self, key: &str) -> Result<()>;

    /// Runs a statement; answers the number of rows it changed.
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64>;

    /// Runs a query; answers its rows.
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>>;

    /// Deletes the records of the datasets that `datasets_where` (a condition on the
    /// `pool_id` and `identity_id` columns, which both tables have) selects.
    async fn delete_records(&self, datasets_where: &str, params: &[Value]) -> Result<u64> {
        let sql = if Self::RECORDS_FOLLOW_DATASETS {
            format!("DELETE FROM dataset_records WHERE dataset_id IN (SELECT id FROM datasets WHERE {datasets_where})")
        } else {
            format!("DELETE FROM records WHERE {datasets_where}")
        };
        self.execute(&sql, params).await
    }

    /// The first row of a query, if any.
    async fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Vec<Value>>> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// The first column of a query's first row, if any.
    async fn value(&self, sql: &str, params: &[Value]) -> Result<Option<Value>> {
        Ok(self.query_opt(sql, params).await?.and_then(|row| row.into_iter().next()))
    }
}

/// Runs a rule on SQLite, whose statements never wait: the future is ready on its first
/// poll, so no executor (and no lock held across an `.await`) is involved.
pub(crate) fn ready<T>(rule: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    use futures_util::FutureExt;
    rule.now_or_never().unwrap_or_else(|| Err(StoreError::Other("a SQLite statement waited".into())))
}
