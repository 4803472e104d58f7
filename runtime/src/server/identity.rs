//! The Cognito Identity calls a client needs to get identity credentials: GetId and
//! GetCredentialsForIdentity (JSON 1.1, `X-Amz-Target: AWSCognitoIdentityService.<Op>`,
//! unsigned, as in the real service). Identities are unauthenticated ones.
//!
//! Both calls create rows (an identity, a credential), so both are rate-limited per
//! client address and per pool, as AWS throttles them (`TooManyRequestsException`).

use super::AppState;
use super::error::ApiError;
use crate::limits;
use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;

/// The JSON 1.1 target prefix of every operation.
pub const TARGET_PREFIX: &str = "AWSCognitoIdentityService.";

/// The model's operations that synctrig-wasm does not implement.
const NOT_IMPLEMENTED: &[&str] = &[
    "CreateIdentityPool",
    "DeleteIdentities",
    "DeleteIdentityPool",
    "DescribeIdentity",
    "DescribeIdentityPool",
    "GetIdentityPoolRoles",
    "GetOpenIdToken",
    "GetOpenIdTokenForDeveloperIdentity",
    "GetPrincipalTagAttributeMap",
    "ListIdentities",
    "ListIdentityPools",
    "ListTagsForResource",
    "LookupDeveloperIdentity",
    "MergeDeveloperIdentities",
    "SetIdentityPoolRoles",
    "SetPrincipalTagAttributeMap",
    "TagResource",
    "UnlinkDeveloperIdentity",
    "UnlinkIdentity",
    "UntagResource",
    "UpdateIdentityPool",
];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetIdRequest {
    identity_pool_id: String,
    #[allow(dead_code)]
    account_id: Option<String>,
    #[serde(default)]
    logins: serde_json::Map<String, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetIdResponse {
    identity_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetCredentialsRequest {
    identity_id: String,
    #[serde(default)]
    logins: serde_json::Map<String, Value>,
    #[allow(dead_code)]
    custom_role_arn: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Credentials {
    access_key_id: String,
    secret_key: String,
    session_token: String,
    expiration: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetCredentialsResponse {
    identity_id: String,
    credentials: Credentials,
}

/// Handles one Cognito Identity call: (operation, result as the JSON body).
pub async fn handle(
    state: &Arc<AppState>,
    client: IpAddr,
    headers: &HeaderMap,
    body: &Bytes,
) -> (&'static str, Result<String, ApiError>) {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let operation = target.strip_prefix(TARGET_PREFIX).unwrap_or("");
    match operation {
        "GetId" => ("GetId", respond(get_id(state, client, body))),
        "GetCredentialsForIdentity" => ("GetCredentialsForIdentity", respond(get_credentials(state, client, body))),
        op if NOT_IMPLEMENTED.contains(&op) => (
            "UnsupportedIdentityOperation",
            Err(ApiError::invalid_parameter(format!(
                "{op} is not supported by synctrig-wasm, which implements GetId and GetCredentialsForIdentity of Cognito Identity"
            ))),
        ),
        _ => (
            "UnknownIdentityOperation",
            Err(ApiError::unknown_operation(format!("{target:?} is not an operation of AWSCognitoIdentityService"))),
        ),
    }
}

fn respond<T: Serialize>(result: Result<T, ApiError>) -> Result<String, ApiError> {
    result.and_then(|v| serde_json::to_string(&v).map_err(|e| ApiError::internal(e.to_string())))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid_parameter(format!("invalid request body: {e}")))
}

fn no_logins(logins: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    if logins.is_empty() {
        Ok(())
    } else {
        Err(ApiError::not_authorized("Logins are not supported; synctrig-wasm issues unauthenticated identities"))
    }
}

fn get_id(state: &AppState, client: IpAddr, body: &[u8]) -> Result<GetIdResponse, ApiError> {
    state.admission.identity_call_from(client)?;
    let request: GetIdRequest = parse(body)?;
    no_logins(&request.logins)?;
    if !limits::is_valid_cognito_id(&request.identity_pool_id) {
        return Err(ApiError::invalid_parameter("IdentityPoolId must be of the form region:hex-id"));
    }
    if state.store.pool(&request.identity_pool_id)?.is_none() {
        return Err(ApiError::not_found(format!("IdentityPool '{}' not found.", request.identity_pool_id)));
    }
    state.admission.identity_call_for(&request.identity_pool_id)?;
    let identity_id = state.store.create_identity(&request.identity_pool_id, &state.config.region)?;
    Ok(GetIdResponse { identity_id })
}

fn get_credentials(state: &AppState, client: IpAddr, body: &[u8]) -> Result<GetCredentialsResponse, ApiError> {
    state.admission.identity_call_from(client)?;
    let request: GetCredentialsRequest = parse(body)?;
    no_logins(&request.logins)?;
    if !limits::is_valid_cognito_id(&request.identity_id) {
        return Err(ApiError::invalid_parameter("IdentityId must be of the form region:hex-id"));
    }
    let pool = state
        .store
        .identity_pool(&request.identity_id)?
        .ok_or_else(|| ApiError::not_found(format!("Identity '{}' not found.", request.identity_id)))?;
    state.admission.identity_call_for(&pool)?;
    let (ak, sk, token, expires) =
        state.store.issue_identity_credentials(&pool, &request.identity_id, state.config.credentials_ttl_secs)?;
    Ok(GetCredentialsResponse {
        identity_id: request.identity_id,
        credentials: Credentials { access_key_id: ak, secret_key: sk, session_token: token, expiration: expires },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_operation_is_implemented_or_named_unsupported() {
        let model: Value =
            serde_json::from_str(include_str!("../../../tests/models/cognito-identity-2014-06-30.json")).unwrap();
        for name in model["operations"].as_object().unwrap().keys() {
            assert!(
                ["GetId", "GetCredentialsForIdentity"].contains(&name.as_str())
                    || NOT_IMPLEMENTED.contains(&name.as_str()),
                "{name}"
            );
        }
    }
}
