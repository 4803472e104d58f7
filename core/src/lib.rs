//! What every layer of synctrig-wasm shares and nothing else: Cognito Sync's limits and
//! their checks ([`limits`]), and the shapes of a stored dataset and of a write. The
//! sandbox (`synctrig-runtime`) and the store both stand on it, so neither depends on the
//! other.

pub mod limits;

use std::collections::BTreeMap;

/// The live records of a stored dataset: key → value.
pub type Dataset = BTreeMap<String, String>;

/// What one record becomes: `Some(value)` is written, `None` is deleted (a tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The record key.
    pub key: String,
    /// The value written, or `None` for a deletion.
    pub value: Option<String>,
}
