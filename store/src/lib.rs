//! The store: tenants, credentials, pools, identities, datasets, records, trigger
//! functions and their recent invocations, behind one interface ([`Backend`]) with two
//! implementations: SQLite in the data directory (the default: one process, no setup)
//! and PostgreSQL (several `serve` nodes on one database).
//!
//! Both keep the same promises: an update is one transaction that re-checks the
//! dataset's SyncCount and every limit the change could break, so concurrent updates
//! are serialised (the loser gets a conflict) and no limit can be raced past; and a
//! change is durable before it is acknowledged.

pub mod export;
mod interface;
pub mod postgres;
pub mod recordings;
pub mod releases;
mod rows;
mod sql;
pub mod sqlite;
pub mod streams;
#[cfg(test)]
mod tests;
pub mod update;

pub use export::{Counts, ExportStream, FORMAT as EXPORT_FORMAT, Scope};
pub use interface::*;
pub use recordings::{Recording, RecordingRefused, RecordingSettings, ShadowRun};
pub use releases::{
    Alias, AliasChange, AliasRefused, Decision, FiguresDelta, PutMode, Qualifier, Resolved, Verdict, VersionFigures,
};
pub use rows::*;

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the store could not do what it was asked; nothing was written. The API answers
/// `InternalErrorException` for the database's own errors; the archive's are for the
/// operator who exports or imports.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {}", postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("database error: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database error: {0}")]
    Other(String),
    /// The database's storage is full: nothing was written.
    #[error("database error: the storage is full: {0}")]
    Full(String),
    /// A line of an archive that cannot be imported.
    #[error("line {line}: {reason}")]
    Archive { line: usize, reason: String },
    /// An import this store refuses (it is not empty, the pool exists, no tenant).
    #[error("{0}")]
    Refused(String),
    /// An archive that cannot be read or written.
    #[error("cannot read or write the archive: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether the database refused a write because its storage is full (SQLite's
    /// `SQLITE_FULL`, PostgreSQL's `disk_full`).
    pub fn is_full(&self) -> bool {
        match self {
            StoreError::Full(_) => true,
            StoreError::Sqlite(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            StoreError::Postgres(e) => e.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL),
            _ => false,
        }
    }

    /// This error for one more waiter (a batch that failed answers each of its jobs).
    pub fn for_each(&self) -> StoreError {
        if self.is_full() { StoreError::Full(self.to_string()) } else { StoreError::Other(self.to_string()) }
    }
}

pub(crate) type Result<T> = std::result::Result<T, StoreError>;

/// A PostgreSQL error with the server's message (tokio-postgres says only "db error").
fn postgres_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Now, in epoch seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The name a dataset merged in from identity `source` takes at its `attempt`-th try (1,
/// then 2, 3… while the name is taken): `<base>.<source>`, then `<base>.<source>.<n>`,
/// with `base` cut so that the name keeps to the model's 128 characters. Identity ids hold
/// only characters dataset names may (`[\w-]+:[0-9a-f-]+`) and at most 55, so at least 68
/// characters of the base are kept.
pub fn merged_dataset_name(base: &str, source: &str, attempt: usize) -> String {
    let suffix = if attempt <= 1 { format!(".{source}") } else { format!(".{source}.{attempt}") };
    let room = synctrig_core::limits::MAX_DATASET_NAME_CHARS.saturating_sub(suffix.chars().count());
    let kept: String = base.chars().take(room).collect();
    format!("{kept}{suffix}")
}

/// Most tries at a free name for a merged dataset: an identity holds a few dozen datasets
/// at most, so a thousand collisions cannot happen.
pub const MERGED_NAME_ATTEMPTS: usize = 1000;

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

pub(crate) fn random_key(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    let tail: String = bytes.iter().map(|b| ALPHABET[(*b as usize) % 32] as char).collect();
    format!("{prefix}{tail}")
}

/// Creates the data directory (and its parents) if needed and makes it private (0700):
/// it holds the database's secrets and the artifact cache's key.
pub fn prepare_data_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Where the store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file (the data directory's `synctrig.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its `postgres://` URL, with at most this many
    /// connections from this process.
    Postgres(String, usize),
}

impl Database {
    /// `url` when it is a PostgreSQL URL (`SYNCTRIG_DATABASE_URL`, `--database`), else the
    /// SQLite file in `data_dir`.
    pub fn choose(url: Option<&str>, data_dir: &Path, connections: usize) -> std::result::Result<Database, String> {
        match url {
            None => Ok(Database::Sqlite(data_dir.join("synctrig.db"))),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Database::Postgres(u.to_owned(), connections))
            }
            Some(u) if u.starts_with("sqlite:") => Ok(Database::Sqlite(PathBuf::from(&u["sqlite:".len()..]))),
            Some(_) => Err("the database URL must start with postgres:// (or sqlite: for a file)".into()),
        }
    }

    /// For logs: the URL without its password.
    pub fn redacted(&self) -> String {
        match self {
            Database::Sqlite(p) => p.display().to_string(),
            Database::Postgres(url, _) => postgres::redact(url),
        }
    }
}

/// Opens the store (creating it if needed) and brings its schema up to date.
pub async fn open(database: &Database) -> Result<Arc<Store>> {
    Ok(match database {
        Database::Sqlite(path) => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || sqlite::Sqlite::open(&path))
                .await
                .map_err(|e| StoreError::Other(e.to_string()))??;
            Arc::new(store)
        }
        Database::Postgres(url, connections) => Arc::new(postgres::Postgres::open(url, *connections).await?),
    })
}
