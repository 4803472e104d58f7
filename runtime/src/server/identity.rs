//! The Cognito Identity calls a client needs to get identity credentials: GetId and
//! GetCredentialsForIdentity (JSON 1.1, `X-Amz-Target: AWSCognitoIdentityService.<Op>`,
//! unsigned, as in the real service). Identities are unauthenticated ones.

use super::AppState;
use super::error::ApiError;
use crate::limits;
use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetIdRequest {
    identity_pool_id: String,
    #[serde(default)]
    logins: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetCredentialsRequest {
    identity_id: String,
    #[serde(default)]
    logins: serde_json::Map<String, Value>,
}

/// Handles one Cognito Identity call: (operation, result).
pub async fn handle(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: &Bytes,
) -> (&'static str, Result<Value, ApiError>) {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    match target {
        "AWSCognitoIdentityService.GetId" => ("GetId", get_id(state, body).await),
        "AWSCognitoIdentityService.GetCredentialsForIdentity" => {
            ("GetCredentialsForIdentity", get_credentials(state, body).await)
        }
        other => (
            "UnknownIdentityOperation",
            Err(ApiError::invalid_configuration(format!(
                "{other} is not supported; synctrig-wasm implements GetId and GetCredentialsForIdentity"
            ))),
        ),
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid_parameter(format!("invalid request body: {e}")))
}

fn no_logins(logins: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    if logins.is_empty() {
        Ok(())
    } else {
        Err(ApiError::not_authorized("Logins are not supported; synctrig-wasm issues unauthenticated identities"))
    }
}

async fn get_id(state: &Arc<AppState>, body: &Bytes) -> Result<Value, ApiError> {
    let request: GetIdRequest = parse(body)?;
    no_logins(&request.logins)?;
    if !limits::is_valid_cognito_id(&request.identity_pool_id) {
        return Err(ApiError::invalid_parameter("IdentityPoolId must be of the form region:hex-id"));
    }
    let store = state.store.clone();
    let region = state.config.region.clone();
    tokio::task::spawn_blocking(move || {
        if store.pool(&request.identity_pool_id)?.is_none() {
            return Err(ApiError::not_found(format!("IdentityPool '{}' not found.", request.identity_pool_id)));
        }
        let id = store.create_identity(&request.identity_pool_id, &region)?;
        Ok(json!({ "IdentityId": id }))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

async fn get_credentials(state: &Arc<AppState>, body: &Bytes) -> Result<Value, ApiError> {
    let request: GetCredentialsRequest = parse(body)?;
    no_logins(&request.logins)?;
    if !limits::is_valid_cognito_id(&request.identity_id) {
        return Err(ApiError::invalid_parameter("IdentityId must be of the form region:hex-id"));
    }
    let store = state.store.clone();
    let ttl = state.config.credentials_ttl_secs;
    tokio::task::spawn_blocking(move || {
        let pool = store
            .identity_pool(&request.identity_id)?
            .ok_or_else(|| ApiError::not_found(format!("Identity '{}' not found.", request.identity_id)))?;
        let (ak, sk, token, expires) = store.issue_identity_credentials(&pool, &request.identity_id, ttl)?;
        Ok(json!({
            "IdentityId": request.identity_id,
            "Credentials": { "AccessKeyId": ak, "SecretKey": sk, "SessionToken": token, "Expiration": expires }
        }))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}
