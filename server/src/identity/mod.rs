//! Cognito Identity (JSON 1.1, `X-Amz-Target: AWSCognitoIdentityService.<Op>`): identity
//! pools managed through the API, unauthenticated and logged-in identities, OpenID Connect
//! and developer-authenticated logins, linking and merging, and the credentials identities
//! sync with. One table routes an operation to its handler and to whether it is signed
//! (SigV4, service `cognito-identity`, developer or root credentials) or, as in AWS, not.
//! The handlers, by what they act on: `sign_in` (the unsigned calls a device makes),
//! `pools`, `identities`, `developer` (developer-authenticated users); `logins` holds the
//! rules of verifying, linking and merging logins, `lookup` the lookups every handler
//! shares, `shapes` the operations' inputs and outputs.
//!
//! The calls that create rows (an identity, a credential, a token) are rate-limited per
//! client address and per pool (`TooManyRequestsException`).

mod developer;
mod identities;
mod logins;
mod lookup;
mod pools;
mod shapes;
mod sign_in;

pub use pools::create_pool;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use developer::*;
use identities::*;
use pools::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sign_in::*;
use std::net::IpAddr;
use std::sync::Arc;
use synctrig_sigv4 as sigv4;
use synctrig_store::{Credential, Principal};

/// The content type of JSON 1.1 answers, errors included.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The JSON 1.1 target prefix of every operation.
pub const TARGET_PREFIX: &str = "AWSCognitoIdentityService.";

/// How a caller of an operation proves who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// Unsigned, as in AWS (the request carries logins or nothing).
    None,
    /// SigV4 with developer or root credentials.
    Developer,
}

/// One call of the identity API.
pub(super) struct Call {
    state: Arc<AppState>,
    client: IpAddr,
    /// The developer or root credential of a signed operation.
    cred: Option<Credential>,
    /// The request body, checked against the operation's input shape.
    input: serde_json::Value,
}

impl Call {
    fn input<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        T::deserialize(&self.input).map_err(|e| ApiError::invalid_parameter(format!("invalid request body: {e}")))
    }

    fn tenant(&self) -> Option<&str> {
        match self.cred.as_ref().map(|c| &c.principal) {
            Some(Principal::Developer { tenant }) => Some(tenant),
            _ => None,
        }
    }
}

/// A handler's answer, the JSON body, to come.
type Handled<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, ApiError>> + Send + 'a>>;

type Handler = for<'a> fn(&'a Call) -> Handled<'a>;

struct Operation {
    name: &'static str,
    auth: Auth,
    handler: Handler,
}

fn respond<T: Serialize>(value: T) -> Result<String, ApiError> {
    serde_json::to_string(&value).map_err(|e| ApiError::internal(e.to_string()))
}

macro_rules! operations {
    ($($name:ident: $auth:ident => $handler:ident;)*) => {
        static OPERATIONS: &[Operation] = &[$(
            Operation {
                name: stringify!($name),
                auth: Auth::$auth,
                handler: |call| Box::pin(async move { respond($handler(call).await?) }),
            },
        )*];
    };
}

operations! {
    GetId: None => get_id;
    GetCredentialsForIdentity: None => get_credentials_for_identity;
    GetOpenIdToken: None => get_open_id_token;
    UnlinkIdentity: None => unlink_identity;
    CreateIdentityPool: Developer => create_identity_pool;
    DescribeIdentityPool: Developer => describe_identity_pool;
    UpdateIdentityPool: Developer => update_identity_pool;
    DeleteIdentityPool: Developer => delete_identity_pool;
    ListIdentityPools: Developer => list_identity_pools;
    ListIdentities: Developer => list_identities;
    DescribeIdentity: Developer => describe_identity;
    DeleteIdentities: Developer => delete_identities;
    GetOpenIdTokenForDeveloperIdentity: Developer => get_open_id_token_for_developer_identity;
    LookupDeveloperIdentity: Developer => lookup_developer_identity;
    MergeDeveloperIdentities: Developer => merge_developer_identities;
    UnlinkDeveloperIdentity: Developer => unlink_developer_identity;
}

/// The model's operations synctrig-wasm does not implement (IAM roles, principal tags and
/// resource tags have nothing to act on here).
pub const NOT_IMPLEMENTED: &[&str] = &[
    "GetIdentityPoolRoles",
    "SetIdentityPoolRoles",
    "GetPrincipalTagAttributeMap",
    "SetPrincipalTagAttributeMap",
    "ListTagsForResource",
    "TagResource",
    "UntagResource",
];

/// Every operation's name, implemented or not.
#[cfg(any(test, feature = "fuzzing"))]
pub(super) fn operation_names() -> impl Iterator<Item = &'static str> {
    OPERATIONS.iter().map(|op| op.name).chain(NOT_IMPLEMENTED.iter().copied())
}

/// Handles one Cognito Identity call: (operation, result as the JSON body).
pub async fn handle(
    state: &Arc<AppState>,
    client: IpAddr,
    parts: &axum::http::request::Parts,
    body: &Bytes,
) -> (&'static str, Result<String, ApiError>) {
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let name = target.strip_prefix(TARGET_PREFIX).unwrap_or("");
    let Some(op) = OPERATIONS.iter().find(|op| op.name == name) else {
        if NOT_IMPLEMENTED.contains(&name) {
            let message = format!(
                "{name} is not supported by synctrig-wasm: it has no IAM roles, principal tags or resource tags"
            );
            return ("UnsupportedIdentityOperation", Err(ApiError::invalid_parameter(message)));
        }
        let message = format!("{target:?} is not an operation of AWSCognitoIdentityService");
        return ("UnknownIdentityOperation", Err(ApiError::unknown_operation(message)));
    };
    let cred = match op.auth {
        Auth::None => None,
        Auth::Developer => {
            let query = sigv4::Query::default();
            match auth::authenticate(state, parts, &query, body, "cognito-identity").await {
                Ok(cred) if !matches!(cred.principal, Principal::Identity { .. }) => Some(cred),
                Ok(_) => {
                    let e = ApiError::not_authorized(format!(
                        "{} needs developer credentials, not identity credentials",
                        op.name
                    ));
                    return (op.name, Err(e));
                }
                Err(e) => return (op.name, Err(e)),
            }
        }
    };
    let input = match checked_input(op.name, body) {
        Ok(input) => input,
        Err(e) => return (op.name, Err(e)),
    };
    let call = Call { state: state.clone(), client, cred, input };
    (op.name, (op.handler)(&call).await)
}

/// The body as a JSON object, checked against `operation`'s input shape in the model.
fn checked_input(operation: &str, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let input = match body.iter().all(u8::is_ascii_whitespace) {
        true => serde_json::Value::Object(Default::default()),
        false => crate::model::parse_body(body)?,
    };
    if !input.is_object() {
        return Err(ApiError::invalid_parameter("the request body must be a JSON object"));
    }
    crate::model::IDENTITY.check(operation, &input)?;
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_operation_is_implemented_or_named_unsupported() {
        let model: serde_json::Value =
            serde_json::from_str(include_str!("../models/cognito-identity-2014-06-30.json")).unwrap();
        for name in model["operations"].as_object().unwrap().keys() {
            let implemented = OPERATIONS.iter().any(|op| op.name == name);
            assert!(implemented != NOT_IMPLEMENTED.contains(&name.as_str()), "{name}");
        }
    }
}
