//! Authenticating a request: its SigV4 signature under the credential it names, for the
//! service it calls (`cognito-sync`, or `cognito-identity` for the identity API's signed
//! operations), and the credential's session token and expiry.

use super::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::http::HeaderMap;
use std::time::SystemTime;
use synctrig_sigv4::{self as sigv4, Query};
use synctrig_store::Credential;
use synctrig_store::now;

/// Verifies the request's SigV4 signature and returns its credential.
pub async fn authenticate(
    state: &AppState,
    parts: &axum::http::request::Parts,
    query: &Query,
    body: &Bytes,
    service: &str,
) -> Result<Credential, ApiError> {
    let header = match header_values(&parts.headers, "authorization")?.as_slice() {
        [one] => one.clone(),
        // The web console's session stands for the credential that signed in.
        [] if super::console::presented(&parts.headers) => {
            return super::console::credential(state, &parts.headers).await;
        }
        [] => return Err(ApiError::not_authorized("missing Authorization header; sign requests with SigV4")),
        _ => return Err(ApiError::not_authorized("more than one Authorization header")),
    };
    let auth = sigv4::parse_authorization(&header)
        .ok_or_else(|| ApiError::not_authorized("malformed Authorization header; expected AWS4-HMAC-SHA256"))?;
    // Every header the signature or the verifier reads must be readable: a value that is
    // not visible ASCII is refused rather than skipped.
    for name in auth.signed_headers.iter().map(String::as_str).chain([
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    ]) {
        header_values(&parts.headers, name)?;
    }
    let cred = state
        .store
        .credential(&auth.access_key)
        .await?
        .ok_or_else(|| ApiError::not_authorized("The security token included in the request is invalid."))?;
    if let Some(token) = &cred.session_token {
        let presented = header_values(&parts.headers, "x-amz-security-token")?;
        let matches = matches!(presented.as_slice(), [p] if sigv4::constant_time_eq(p.as_bytes(), token.as_bytes()));
        if !matches {
            return Err(ApiError::not_authorized(
                "temporary credentials need their session token (X-Amz-Security-Token)",
            ));
        }
    }
    if cred.expires.is_some_and(|e| e < now()) {
        return Err(ApiError::not_authorized("The security token included in the request is expired"));
    }
    let headers = |name: &str| header_values(&parts.headers, name).unwrap_or_default();
    let req =
        sigv4::Request { method: parts.method.as_str(), raw_path: parts.uri.path(), query, headers: &headers, body };
    let scope = sigv4::Scope { service, region: &state.config.region };
    sigv4::verify(&req, &auth, &cred.secret, scope, SystemTime::now()).map_err(|e| ApiError::not_authorized(e.0))?;
    Ok(cred)
}

/// Every value of a header; a value that is not visible ASCII is `NotAuthorizedException`.
fn header_values(headers: &HeaderMap, name: &str) -> Result<Vec<String>, ApiError> {
    headers
        .get_all(name)
        .iter()
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::not_authorized(format!("header {name} has a value that is not visible ASCII")))
        })
        .collect()
}
