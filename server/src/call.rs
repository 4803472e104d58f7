//! What a rest-json handler gets: the verified credential and the request's parts, its
//! input as the model shapes it, and the paging helpers every listing shares.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use synctrig_sigv4::Query;
use synctrig_store::Credential;

/// Everything a handler gets: the verified credential and the request's parts.
pub struct Call {
    pub state: Arc<AppState>,
    pub cred: Credential,
    /// The URI template's `{labels}`, percent-decoded, in order.
    pub labels: Vec<String>,
    pub query: Query,
    pub body: Bytes,
    /// The input as the model shapes it (labels, query, headers and body by member name),
    /// already checked against the operation's input shape; `Null` for our extensions,
    /// which the model does not have.
    pub input: serde_json::Value,
}

impl Call {
    pub(crate) fn label(&self, i: usize) -> &str {
        self.labels.get(i).map_or("", String::as_str)
    }

    pub(crate) fn query(&self, name: &str) -> Result<Option<&str>, ApiError> {
        self.query.get(name).map_err(|e| ApiError::invalid_parameter(e.0))
    }

    pub(crate) fn body<T: DeserializeOwned>(&self, operation: &str) -> Result<T, ApiError> {
        let invalid =
            |e: serde_json::Error| ApiError::invalid_parameter(format!("invalid {operation} request body: {e}"));
        if !self.input.is_null() {
            return T::deserialize(&self.input).map_err(invalid);
        }
        let body: &[u8] = if self.body.is_empty() { b"{}" } else { &self.body };
        serde_json::from_slice(body).map_err(invalid)
    }
}

/// A listing's page size: `default` when not asked; a size past `max` is `max` (the model
/// puts no bound on it, and clients ask for more: the Sync Manager lists 64 datasets).
pub(crate) fn max_results(call: &Call, default: usize, max: usize) -> Result<usize, ApiError> {
    match call.query("maxResults")? {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX).min(max)),
            _ => Err(ApiError::invalid_parameter(format!("maxResults {v:?} must be a whole number, 1 or more"))),
        },
    }
}

pub(crate) fn bad_token(t: &str) -> ApiError {
    ApiError::invalid_parameter(format!("nextToken {t:?} is not one this service issued"))
}

/// The name after which a name-ordered listing resumes.
pub(crate) fn name_cursor(call: &Call) -> Result<String, ApiError> {
    match call.query("nextToken")? {
        None => Ok(String::new()),
        Some(t) => B64.decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| bad_token(t)),
    }
}
