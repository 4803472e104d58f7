//! Cognito Identity (JSON 1.1, `X-Amz-Target: AWSCognitoIdentityService.<Op>`): identity
//! pools managed through the API, unauthenticated and logged-in identities, OpenID Connect
//! and developer-authenticated logins, linking and merging, and the credentials identities
//! sync with. One table routes an operation to its handler and to whether it is signed
//! (SigV4, service `cognito-identity`, developer or root credentials) or, as in AWS, not.
//!
//! The calls that create rows (an identity, a credential, a token) are rate-limited per
//! client address and per pool (`TooManyRequestsException`).

use super::error::ApiError;
use super::oidc::{self, OWN_PROVIDER};
use super::{AppState, auth};
use axum::body::Bytes;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use synctrig_runtime::limits;
use synctrig_sigv4 as sigv4;
use synctrig_store::{
    CognitoIdentityProvider, Credential, IdentityRow, LinkOutcome, MergeOutcome, MergeRule, Pool, PoolSettings,
    Principal, Store,
};

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
struct Call {
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
        false => super::model::parse_body(body)?,
    };
    if !input.is_object() {
        return Err(ApiError::invalid_parameter("the request body must be a JSON object"));
    }
    super::model::IDENTITY.check(operation, &input)?;
    Ok(input)
}

// ---- shapes ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetIdInput {
    identity_pool_id: String,
    #[serde(default)]
    logins: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IdentityIdOutput {
    identity_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetCredentialsInput {
    identity_id: String,
    #[serde(default)]
    logins: BTreeMap<String, String>,
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
struct GetCredentialsOutput {
    identity_id: String,
    credentials: Credentials,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TokenOutput {
    identity_id: String,
    token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UnlinkIdentityInput {
    identity_id: String,
    logins: BTreeMap<String, String>,
    logins_to_remove: Vec<String>,
}

#[derive(Serialize)]
struct Empty {}

/// `IdentityPool`: the pool as CreateIdentityPool, DescribeIdentityPool and
/// UpdateIdentityPool answer it (and UpdateIdentityPool takes it).
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IdentityPoolShape {
    #[serde(default)]
    identity_pool_id: String,
    identity_pool_name: String,
    allow_unauthenticated_identities: bool,
    #[serde(default, rename = "SamlProviderARNs", skip_serializing_if = "Vec::is_empty")]
    saml_provider_arns: Vec<String>,
    #[serde(flatten)]
    settings: PoolSettings,
}

impl IdentityPoolShape {
    fn of(pool: &Pool) -> Self {
        IdentityPoolShape {
            identity_pool_id: pool.pool_id.clone(),
            identity_pool_name: pool.name.clone(),
            allow_unauthenticated_identities: pool.allow_unauthenticated,
            saml_provider_arns: Vec::new(),
            settings: pool.settings.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PoolIdInput {
    identity_pool_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListInput {
    #[serde(default)]
    identity_pool_id: String,
    max_results: i64,
    next_token: Option<String>,
    #[serde(default)]
    hide_disabled: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PoolShortDescription {
    identity_pool_id: String,
    identity_pool_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListIdentityPoolsOutput {
    identity_pools: Vec<PoolShortDescription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// `IdentityDescription`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IdentityDescription {
    identity_id: String,
    logins: Vec<String>,
    creation_date: i64,
    last_modified_date: i64,
}

impl IdentityDescription {
    fn of(row: &IdentityRow) -> Self {
        let mut providers: Vec<String> = row.logins.iter().map(|(p, _)| p.clone()).collect();
        providers.dedup();
        IdentityDescription {
            identity_id: row.identity_id.clone(),
            logins: providers,
            creation_date: row.created,
            last_modified_date: row.modified,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListIdentitiesOutput {
    identity_pool_id: String,
    identities: Vec<IdentityDescription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IdentityIdInput {
    identity_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteIdentitiesInput {
    identity_ids_to_delete: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Unprocessed {
    identity_id: String,
    error_code: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteIdentitiesOutput {
    unprocessed_identity_ids: Vec<Unprocessed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeveloperTokenInput {
    identity_pool_id: String,
    identity_id: Option<String>,
    logins: BTreeMap<String, String>,
    token_duration: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LookupInput {
    identity_pool_id: String,
    identity_id: Option<String>,
    developer_user_identifier: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LookupOutput {
    identity_id: String,
    developer_user_identifier_list: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MergeInput {
    source_user_identifier: String,
    destination_user_identifier: String,
    developer_provider_name: String,
    identity_pool_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UnlinkDeveloperInput {
    identity_id: String,
    identity_pool_id: String,
    developer_provider_name: String,
    developer_user_identifier: String,
}

// ---- helpers --------------------------------------------------------------------------

fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    if limits::is_valid_cognito_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(format!("{field} {id:?} is not of the form region:hex-id")))
    }
}

fn pool_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("IdentityPool '{id}' not found."))
}

fn identity_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Identity '{id}' not found."))
}

/// A pool that exists (for the unsigned calls).
async fn pool(state: &AppState, id: &str) -> Result<Pool, ApiError> {
    check_id("IdentityPoolId", id)?;
    state.store.pool(id).await?.ok_or_else(|| pool_not_found(id))
}

/// A pool the signed caller may manage: any for root, its tenant's for a developer;
/// another tenant's pool is reported as not found.
async fn own_pool(call: &Call, id: &str) -> Result<Pool, ApiError> {
    let pool = pool(&call.state, id).await?;
    match call.tenant() {
        Some(tenant) if tenant != pool.tenant => Err(pool_not_found(id)),
        _ => Ok(pool),
    }
}

/// An identity that exists and is not merged away.
async fn live_identity(state: &AppState, id: &str) -> Result<IdentityRow, ApiError> {
    check_id("IdentityId", id)?;
    let row = state.store.identity(id).await?.ok_or_else(|| identity_not_found(id))?;
    if row.merged_into.is_some() {
        return Err(ApiError::not_authorized(format!(
            "Identity '{id}' is disabled: it was merged into another identity; call GetId with its logins"
        )));
    }
    Ok(row)
}

/// An identity of `pool`, live or not; another pool's is not found, whatever became of it.
async fn pool_identity(state: &AppState, pool: &Pool, id: &str) -> Result<IdentityRow, ApiError> {
    check_id("IdentityId", id)?;
    state.store.identity(id).await?.filter(|r| r.pool_id == pool.pool_id).ok_or_else(|| identity_not_found(id))
}

/// Login providers whose tokens can only be checked by calling their owner.
const THIRD_PARTY_PROVIDERS: &[&str] = &["graph.facebook.com", "www.amazon.com", "api.twitter.com", "www.digits.com"];

/// The issuer URL an OpenID Connect provider ARN names.
fn arn_issuer(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, provider) = rest.split_once(":oidc-provider/")?;
    let valid = !account.is_empty() && account.chars().all(|c| c.is_ascii_digit()) && !provider.is_empty();
    valid.then(|| format!("https://{provider}"))
}

/// Checks a pool's configuration as CreateIdentityPool and UpdateIdentityPool take it,
/// beyond what the model states (checked with the request; [`create_pool`] checks it too).
async fn check_pool(store: &Store, tenant: &str, shape: &IdentityPoolShape) -> Result<(), ApiError> {
    if !shape.saml_provider_arns.is_empty() {
        return Err(ApiError::invalid_parameter("SamlProviderARNs: SAML logins are not supported by synctrig-wasm"));
    }
    let s = &shape.settings;
    for provider in s.supported_login_providers.keys() {
        if THIRD_PARTY_PROVIDERS.contains(&provider.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "SupportedLoginProviders: {provider} tokens can only be checked by calling {provider}, which synctrig-wasm \
                 does not do; sign users in through OpenID Connect (OpenIdConnectProviderARNs) or as developer-authenticated identities"
            )));
        }
    }
    // Each issuer is looked up once, however often the list repeats it.
    let arns: std::collections::BTreeSet<&String> = s.open_id_connect_provider_arns.iter().collect();
    for arn in arns {
        let issuer = arn_issuer(arn).ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "OpenIdConnectProviderARNs: {arn:?} is not arn:aws:iam::<account>:oidc-provider/<issuer host and path>"
            ))
        })?;
        if store.issuer(tenant, &issuer).await?.is_none() {
            return Err(ApiError::invalid_parameter(format!(
                "OpenIdConnectProviderARNs: no OpenID Connect issuer {issuer} is registered for this tenant \
                 (synctrig-wasm admin register-issuer --tenant {tenant})"
            )));
        }
    }
    for CognitoIdentityProvider { provider_name, client_id, .. } in &s.cognito_identity_providers {
        let ok = provider_name.starts_with("cognito-idp.")
            && provider_name.contains(".amazonaws.com/")
            && !client_id.is_empty();
        if !ok {
            return Err(ApiError::invalid_parameter(format!(
                "CognitoIdentityProviders: {provider_name:?} is not cognito-idp.<region>.amazonaws.com/<userPoolId> with a ClientId"
            )));
        }
    }
    if let Some(dev) = &s.developer_provider_name
        && (dev == OWN_PROVIDER || s.supported_login_providers.contains_key(dev))
    {
        return Err(ApiError::invalid_parameter(format!(
            "DeveloperProviderName {dev:?} is one of the pool's login providers: name the developer provider apart"
        )));
    }
    Ok(())
}

/// Who signed in with a login: this server's own token names an identity; another
/// provider's token names a subject of that provider.
enum Login {
    /// This server's token: the identity, and whether it was issued as authenticated.
    Own(String, bool),
    Provider {
        provider: String,
        subject: String,
    },
}

/// Verifies every login of a request against the pool's login configuration.
/// (Their number and sizes were checked against the model with the request.)
async fn verify_logins(
    state: &AppState,
    pool: &Pool,
    logins: &BTreeMap<String, String>,
) -> Result<Vec<Login>, ApiError> {
    let mut verified = Vec::with_capacity(logins.len());
    for (provider, token) in logins {
        verified.push(verify_login(state, pool, provider, token).await?);
    }
    Ok(verified)
}

async fn verify_login(state: &AppState, pool: &Pool, provider: &str, token: &str) -> Result<Login, ApiError> {
    if provider == OWN_PROVIDER {
        let (identity, authenticated) = state.oidc()?.verify(token, &pool.pool_id)?;
        return Ok(Login::Own(identity, authenticated));
    }
    let s = &pool.settings;
    let issuer_url = format!("https://{provider}");
    let mut accepted = vec![issuer_url.clone()];
    let audiences: Option<Vec<String>> =
        if s.open_id_connect_provider_arns.iter().any(|a| arn_issuer(a).as_deref() == Some(&issuer_url)) {
            Some(Vec::new())
        } else if s.cognito_identity_providers.iter().any(|c| c.provider_name == provider) {
            Some(
                s.cognito_identity_providers
                    .iter()
                    .filter(|c| c.provider_name == provider)
                    .map(|c| c.client_id.clone())
                    .collect(),
            )
        } else if let Some(ids) = s.supported_login_providers.get(provider) {
            // Google's tokens name their issuer with or without the scheme. A provider names
            // several client ids with `;` (the model's pattern has no comma; older pools used one).
            accepted.push(provider.to_owned());
            Some(ids.split([',', ';']).map(|id| id.trim().to_owned()).filter(|id| !id.is_empty()).collect())
        } else {
            None
        };
    let Some(pool_audiences) = audiences else {
        return Err(ApiError::not_authorized(format!(
            "Invalid login token. The login provider {provider} is not configured for this identity pool."
        )));
    };
    let issuer = state.store.issuer(&pool.tenant, &issuer_url).await?.ok_or_else(|| {
        ApiError::not_authorized(format!(
            "Invalid login token. The issuer {issuer_url} is not registered with this server."
        ))
    })?;
    // An OpenID Connect provider accepts the audiences it was registered with; the others
    // accept the client ids the pool names.
    let audiences = if pool_audiences.is_empty() { issuer.audiences.clone() } else { pool_audiences };
    let subject = oidc::verify(&*state.store, token, &issuer, &accepted, &audiences).await?;
    Ok(Login::Provider { provider: provider.to_owned(), subject })
}

/// The message AWS answers when a request's logins do not prove an identity.
const LOGINS_DONT_MATCH: &str =
    "Logins don't match. Please include at least one valid login for this identity or identity pool.";

/// Whether one of `logins` proves the caller signs in as `identity`: a login already
/// linked to it, or this server's authenticated token for it.
async fn proves(state: &AppState, pool: &Pool, identity: &str, logins: &[Login]) -> Result<bool, ApiError> {
    for login in logins {
        let proved = match login {
            Login::Own(named, authenticated) => named == identity && *authenticated,
            Login::Provider { provider, subject } => {
                state.store.login_identity(&pool.pool_id, provider, subject).await?.as_deref() == Some(identity)
            }
        };
        if proved {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Links the logins to an identity, merging in the identities they belonged to: the
/// identity that has logins survives. Answers the surviving identity. An identity with
/// logins is only acted on by a caller who proves one of them, so a login cannot be
/// attached to someone else's account; each link and merge re-checks, in its own
/// transaction, that what was decided on still holds.
async fn link(state: &AppState, pool: &Pool, identity: &IdentityRow, logins: &[Login]) -> Result<String, ApiError> {
    if identity.ever_authenticated && identity.logins.is_empty() {
        // Its last login was unlinked: as in Cognito, nobody can sign in to it again.
        return Err(ApiError::not_authorized(LOGINS_DONT_MATCH));
    }
    let mut proved = proves(state, pool, &identity.identity_id, logins).await?;
    if identity.authenticated() && !proved {
        return Err(ApiError::not_authorized(LOGINS_DONT_MATCH));
    }
    let mut target = identity.identity_id.clone();
    let mut authenticated = identity.authenticated();
    for login in logins {
        let (provider, subject) = match login {
            Login::Own(named, _) if *named == target => continue,
            Login::Own(..) => {
                return Err(ApiError::not_authorized("Invalid login token. The token is for another identity."));
            }
            Login::Provider { provider, subject } => (provider, subject),
        };
        // A login linked meanwhile by someone else is looked at again; twice is plenty.
        let mut settled = false;
        for _ in 0..3 {
            match state.store.login_identity(&pool.pool_id, provider, subject).await? {
                Some(owner) if owner == target => {}
                None => match state.store.link_login(&pool.pool_id, provider, subject, &target, !proved).await? {
                    LinkOutcome::Linked => {}
                    LinkOutcome::Taken => continue,
                    LinkOutcome::Changed => return Err(changed_concurrently()),
                },
                Some(owner) => {
                    if authenticated {
                        return Err(ApiError::conflict(format!(
                            "The login {provider} is linked to another identity already; both identities have logins, \
                             so they are not merged"
                        )));
                    }
                    // The unauthenticated identity merges into the authenticated one.
                    match state
                        .store
                        .merge_identities(&pool.pool_id, &target, &owner, MergeRule::SourceUnauthenticated)
                        .await?
                    {
                        MergeOutcome::Merged(_) => target = owner,
                        _ => return Err(changed_concurrently()),
                    }
                }
            }
            (authenticated, proved, settled) = (true, true, true);
            break;
        }
        if !settled {
            return Err(changed_concurrently());
        }
    }
    Ok(target)
}

fn changed_concurrently() -> ApiError {
    ApiError::conflict("The identities changed while they were being merged; retry the request")
}

async fn issue_credentials(
    state: &AppState,
    pool: &Pool,
    identity: &str,
    authenticated: bool,
) -> Result<GetCredentialsOutput, ApiError> {
    let (ak, sk, token, expires) = state
        .store
        .issue_identity_credentials(&pool.pool_id, identity, authenticated, state.config.credentials_ttl_secs)
        .await?;
    Ok(GetCredentialsOutput {
        identity_id: identity.to_owned(),
        credentials: Credentials { access_key_id: ak, secret_key: sk, session_token: token, expiration: expires },
    })
}

/// The identity a request with `logins` (or none) acts as: its own logins checked, new
/// logins linked (merging as Cognito does), and unauthenticated access as the pool allows.
async fn signed_in(
    state: &AppState,
    identity: &IdentityRow,
    logins: &BTreeMap<String, String>,
) -> Result<(Pool, String, bool), ApiError> {
    let pool = state.store.pool(&identity.pool_id).await?.ok_or_else(|| pool_not_found(&identity.pool_id))?;
    let verified = verify_logins(state, &pool, logins).await?;
    let target = link(state, &pool, identity, &verified).await?;
    let row = live_identity(state, &target).await?;
    let authenticated =
        row.authenticated() || verified.iter().any(|l| matches!(l, Login::Own(named, true) if *named == target));
    if !authenticated && !pool.allow_unauthenticated {
        return Err(ApiError::not_authorized("Unauthenticated access is not supported for this identity pool."));
    }
    Ok((pool, target, authenticated))
}

// ---- unsigned operations ------------------------------------------------------------

async fn get_id(call: &Call) -> Result<IdentityIdOutput, ApiError> {
    let state = &call.state;
    state.admission.identity_call_from(call.client)?;
    let input: GetIdInput = call.input()?;
    let pool = pool(state, &input.identity_pool_id).await?;
    state.admission.identity_call_for(&pool.pool_id)?;
    if input.logins.is_empty() {
        if !pool.allow_unauthenticated {
            return Err(ApiError::not_authorized("Unauthenticated access is not supported for this identity pool."));
        }
        let identity_id = state.store.create_identity(&pool.pool_id, &state.config.region).await?;
        return Ok(IdentityIdOutput { identity_id });
    }
    let logins = verify_logins(state, &pool, &input.logins).await?;
    // The identity a login (or this server's token) already names, else a new one.
    let mut existing = None;
    for login in &logins {
        let found = match login {
            Login::Own(id, _) => Some(id.clone()),
            Login::Provider { provider, subject } => {
                state.store.login_identity(&pool.pool_id, provider, subject).await?
            }
        };
        if found.is_some() {
            existing = found;
            break;
        }
    }
    let identity = match existing {
        Some(id) => live_identity(state, &id).await?,
        None => {
            let Some(Login::Provider { provider, subject }) = logins.first() else {
                return Err(ApiError::invalid_parameter("Logins is empty"));
            };
            let (id, _) =
                state.store.identity_for_login(&pool.pool_id, &state.config.region, provider, subject).await?;
            live_identity(state, &id).await?
        }
    };
    let identity_id = link(state, &pool, &identity, &logins).await?;
    Ok(IdentityIdOutput { identity_id })
}

/// GetCredentialsForIdentity and GetOpenIdToken: the identity the caller signs in as,
/// rate-limited per address and per pool.
async fn sign_in(call: &Call) -> Result<(Pool, String, bool), ApiError> {
    let state = &call.state;
    state.admission.identity_call_from(call.client)?;
    let input: GetCredentialsInput = call.input()?;
    let identity = live_identity(state, &input.identity_id).await?;
    state.admission.identity_call_for(&identity.pool_id)?;
    signed_in(state, &identity, &input.logins).await
}

async fn get_credentials_for_identity(call: &Call) -> Result<GetCredentialsOutput, ApiError> {
    let (pool, target, authenticated) = sign_in(call).await?;
    issue_credentials(&call.state, &pool, &target, authenticated).await
}

/// Lifetime of the tokens GetOpenIdToken issues.
const OPEN_ID_TOKEN_TTL: Duration = Duration::from_secs(600);

async fn get_open_id_token(call: &Call) -> Result<TokenOutput, ApiError> {
    let state = &call.state;
    let (pool, target, authenticated) = sign_in(call).await?;
    let providers: Vec<String> = live_identity(state, &target).await?.logins.into_iter().map(|(p, _)| p).collect();
    let token = state.oidc()?.issue(&target, &pool.pool_id, authenticated, &providers, OPEN_ID_TOKEN_TTL)?;
    Ok(TokenOutput { identity_id: target, token })
}

async fn unlink_identity(call: &Call) -> Result<Empty, ApiError> {
    let state = &call.state;
    state.admission.identity_call_from(call.client)?;
    let input: UnlinkIdentityInput = call.input()?;
    let identity = live_identity(state, &input.identity_id).await?;
    let pool = state.store.pool(&identity.pool_id).await?.ok_or_else(|| pool_not_found(&identity.pool_id))?;
    if input.logins.is_empty() {
        return Err(ApiError::not_authorized("Logins must prove the caller signs in as this identity"));
    }
    for login in verify_logins(state, &pool, &input.logins).await? {
        let owner = match &login {
            Login::Own(id, true) => Some(id.clone()),
            Login::Own(_, false) => None,
            Login::Provider { provider, subject } => {
                state.store.login_identity(&pool.pool_id, provider, subject).await?
            }
        };
        if owner.as_deref() != Some(identity.identity_id.as_str()) {
            return Err(ApiError::not_authorized("Logins don't match. The logins given are not this identity's."));
        }
    }
    // The model bounds each name, not the list: only the providers the identity has are
    // unlinked, so the work is bounded by its logins, not by the request.
    let linked: std::collections::BTreeSet<&String> = identity.logins.iter().map(|(p, _)| p).collect();
    for provider in linked.into_iter().filter(|p| input.logins_to_remove.contains(p)) {
        state.store.unlink_logins(&identity.identity_id, provider, None).await?;
    }
    Ok(Empty {})
}

// ---- signed operations ----------------------------------------------------------------

/// The tenant a new pool belongs to: the developer's, or for root credentials the tag
/// `synctrig:tenant`.
async fn new_pool_tenant(call: &Call, shape: &IdentityPoolShape) -> Result<String, ApiError> {
    if let Some(tenant) = call.tenant() {
        return Ok(tenant.to_owned());
    }
    let tenant = shape.settings.identity_pool_tags.get("synctrig:tenant").ok_or_else(|| {
        ApiError::invalid_parameter(
            "root credentials belong to no tenant: tag the pool with synctrig:tenant=<tenant>, or use the tenant's developer credentials",
        )
    })?;
    if !call.state.store.tenant_exists(tenant).await? {
        return Err(ApiError::invalid_parameter(format!("no tenant {tenant:?}")));
    }
    Ok(tenant.clone())
}

/// Creates a pool for a tenant, checked as CreateIdentityPool checks it: what the API and
/// `admin create-pool` both do.
pub async fn create_pool(
    store: &Store,
    region: &str,
    tenant: &str,
    name: &str,
    allow_unauthenticated: bool,
    settings: &PoolSettings,
) -> Result<Pool, ApiError> {
    let shape = IdentityPoolShape {
        identity_pool_name: name.to_owned(),
        allow_unauthenticated_identities: allow_unauthenticated,
        settings: settings.clone(),
        ..IdentityPoolShape::default()
    };
    // As CreateIdentityPool's request is checked: against the model, then its rules.
    let mut input = serde_json::to_value(&shape).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(fields) = input.as_object_mut() {
        fields.remove("IdentityPoolId");
    }
    super::model::IDENTITY.check("CreateIdentityPool", &input)?;
    check_pool(store, tenant, &shape).await?;
    Ok(store.create_pool(tenant, region, name, allow_unauthenticated, settings).await?)
}

async fn create_identity_pool(call: &Call) -> Result<IdentityPoolShape, ApiError> {
    let shape: IdentityPoolShape = call.input()?;
    let tenant = new_pool_tenant(call, &shape).await?;
    check_pool(&*call.state.store, &tenant, &shape).await?;
    let pool = call
        .state
        .store
        .create_pool(
            &tenant,
            &call.state.config.region,
            &shape.identity_pool_name,
            shape.allow_unauthenticated_identities,
            &shape.settings,
        )
        .await?;
    Ok(IdentityPoolShape::of(&pool))
}

async fn describe_identity_pool(call: &Call) -> Result<IdentityPoolShape, ApiError> {
    let input: PoolIdInput = call.input()?;
    Ok(IdentityPoolShape::of(&own_pool(call, &input.identity_pool_id).await?))
}

async fn update_identity_pool(call: &Call) -> Result<IdentityPoolShape, ApiError> {
    let shape: IdentityPoolShape = call.input()?;
    let pool = own_pool(call, &shape.identity_pool_id).await?;
    check_pool(&*call.state.store, &pool.tenant, &shape).await?;
    if let Some(old) = &pool.settings.developer_provider_name
        && shape.settings.developer_provider_name.as_ref() != Some(old)
    {
        return Err(ApiError::invalid_parameter(format!("DeveloperProviderName {old:?} cannot be changed once set")));
    }
    call.state
        .store
        .update_pool(&pool.pool_id, &shape.identity_pool_name, shape.allow_unauthenticated_identities, &shape.settings)
        .await?;
    Ok(IdentityPoolShape::of(&own_pool(call, &pool.pool_id).await?))
}

async fn delete_identity_pool(call: &Call) -> Result<Empty, ApiError> {
    let input: PoolIdInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    call.state.store.delete_pool(&pool.pool_id).await?;
    Ok(Empty {})
}

fn max_results(n: i64) -> Result<usize, ApiError> {
    usize::try_from(n)
        .ok()
        .filter(|n| (1..=60).contains(n))
        .ok_or_else(|| ApiError::invalid_parameter(format!("MaxResults {n} must be from 1 to 60")))
}

fn cursor(token: &Option<String>) -> Result<String, ApiError> {
    match token {
        None => Ok(String::new()),
        Some(t) => B64
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ApiError::invalid_parameter("NextToken is not one this service issued")),
    }
}

async fn list_identity_pools(call: &Call) -> Result<ListIdentityPoolsOutput, ApiError> {
    let input: ListInput = call.input()?;
    let max = max_results(input.max_results)?;
    let mut pools = call.state.store.pools_after(call.tenant(), &cursor(&input.next_token)?, max + 1).await?;
    let more = pools.len() > max;
    pools.truncate(max);
    Ok(ListIdentityPoolsOutput {
        next_token: more.then(|| B64.encode(&pools[pools.len() - 1].pool_id)),
        identity_pools: pools
            .into_iter()
            .map(|p| PoolShortDescription { identity_pool_id: p.pool_id, identity_pool_name: p.name })
            .collect(),
    })
}

async fn list_identities(call: &Call) -> Result<ListIdentitiesOutput, ApiError> {
    let input: ListInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    let max = max_results(input.max_results)?;
    let mut rows = call
        .state
        .store
        .identities_after(&pool.pool_id, &cursor(&input.next_token)?, max + 1, input.hide_disabled)
        .await?;
    let more = rows.len() > max;
    rows.truncate(max);
    Ok(ListIdentitiesOutput {
        identity_pool_id: pool.pool_id,
        next_token: more.then(|| B64.encode(&rows[rows.len() - 1].identity_id)),
        identities: rows.iter().map(IdentityDescription::of).collect(),
    })
}

/// An identity of a pool the caller may manage (another tenant's is not found).
async fn own_identity(call: &Call, id: &str) -> Result<IdentityRow, ApiError> {
    check_id("IdentityId", id)?;
    let row = call.state.store.identity(id).await?.ok_or_else(|| identity_not_found(id))?;
    own_pool(call, &row.pool_id).await.map_err(|_| identity_not_found(id))?;
    Ok(row)
}

async fn describe_identity(call: &Call) -> Result<IdentityDescription, ApiError> {
    let input: IdentityIdInput = call.input()?;
    Ok(IdentityDescription::of(&own_identity(call, &input.identity_id).await?))
}

async fn delete_identities(call: &Call) -> Result<DeleteIdentitiesOutput, ApiError> {
    let input: DeleteIdentitiesInput = call.input()?;
    if !(1..=60).contains(&input.identity_ids_to_delete.len()) {
        return Err(ApiError::invalid_parameter("IdentityIdsToDelete must hold 1 to 60 identity ids"));
    }
    for id in &input.identity_ids_to_delete {
        check_id("IdentityIdsToDelete", id)?;
    }
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    for id in input.identity_ids_to_delete {
        if own_identity(call, &id).await.is_ok() { mine.push(id) } else { theirs.push(id) }
    }
    let missing = call.state.store.delete_identities(None, &mine).await?;
    let unprocessed = theirs
        .into_iter()
        .chain(missing)
        .map(|identity_id| Unprocessed { identity_id, error_code: "AccessDenied" })
        .collect();
    Ok(DeleteIdentitiesOutput { unprocessed_identity_ids: unprocessed })
}

/// The pool's developer provider, which a developer-authentication call must name.
fn developer_provider(pool: &Pool, named: &str) -> Result<String, ApiError> {
    match &pool.settings.developer_provider_name {
        Some(name) if name == named => Ok(name.clone()),
        Some(name) => Err(ApiError::invalid_parameter(format!(
            "{named:?} is not this identity pool's developer provider ({name:?})"
        ))),
        None => Err(ApiError::invalid_parameter("this identity pool has no DeveloperProviderName")),
    }
}

fn user_identifier(id: &str) -> Result<(), ApiError> {
    if (1..=1024).contains(&id.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter("DeveloperUserIdentifier must be 1 to 1024 characters"))
    }
}

async fn get_open_id_token_for_developer_identity(call: &Call) -> Result<TokenOutput, ApiError> {
    let state = &call.state;
    let input: DeveloperTokenInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    state.admission.identity_call_for(&pool.pool_id)?;
    let provider = pool
        .settings
        .developer_provider_name
        .clone()
        .ok_or_else(|| ApiError::invalid_parameter("this identity pool has no DeveloperProviderName"))?;
    let user = input.logins.get(&provider).ok_or_else(|| {
        ApiError::invalid_parameter(format!("Logins must name this identity pool's developer provider {provider:?}"))
    })?;
    user_identifier(user)?;
    let duration = input.token_duration.unwrap_or(900);
    if !(1..=86_400).contains(&duration) {
        return Err(ApiError::invalid_parameter("TokenDuration must be from 1 to 86400 seconds"));
    }
    // The other logins are verified, then linked to the identity as well.
    let others: BTreeMap<String, String> =
        input.logins.iter().filter(|(p, _)| **p != provider).map(|(p, t)| (p.clone(), t.clone())).collect();
    if others.contains_key(OWN_PROVIDER) {
        return Err(ApiError::invalid_parameter(format!(
            "Logins: {OWN_PROVIDER} tokens are this call's answer, not its input"
        )));
    }
    let others = verify_logins(state, &pool, &others).await?;
    let already_registered = |owner: &str| ApiError {
        name: "DeveloperUserAlreadyRegisteredException",
        status: 400,
        message: format!("The developer user {user:?} is linked to identity {owner} already"),
    };
    let owner = state.store.login_identity(&pool.pool_id, &provider, user).await?;
    let identity = match (input.identity_id, owner) {
        (Some(id), Some(owner)) if id != owner => {
            // The user signed in on a device that was a guest so far: as in Cognito, the
            // guest merges into the user's identity. An identity with logins of its own
            // is another user's.
            let row = pool_identity(state, &pool, &id).await?;
            if row.authenticated() || row.merged_into.is_some() {
                return Err(already_registered(&owner));
            }
            match state.store.merge_identities(&pool.pool_id, &id, &owner, MergeRule::SourceUnauthenticated).await? {
                MergeOutcome::Merged(_) => owner,
                _ => return Err(changed_concurrently()),
            }
        }
        (Some(id), owner) => {
            let row = pool_identity(state, &pool, &id).await?;
            if row.merged_into.is_some() {
                return Err(live_identity(state, &id).await.err().unwrap_or_else(changed_concurrently));
            }
            if owner.is_none() {
                // The developer vouches for its user: linking to a guest or a signed-in
                // identity of its own pool is its call to make.
                match state.store.link_login(&pool.pool_id, &provider, user, &id, false).await? {
                    LinkOutcome::Linked => {}
                    LinkOutcome::Taken => return Err(changed_concurrently()),
                    LinkOutcome::Changed => return Err(changed_concurrently()),
                }
            }
            id
        }
        (None, Some(owner)) => owner,
        (None, None) => state.store.identity_for_login(&pool.pool_id, &state.config.region, &provider, user).await?.0,
    };
    for login in &others {
        if let Login::Provider { provider: p, subject } = login {
            match state.store.link_login(&pool.pool_id, p, subject, &identity, false).await? {
                LinkOutcome::Linked => {}
                LinkOutcome::Taken
                    if state.store.login_identity(&pool.pool_id, p, subject).await?.as_deref() == Some(&identity) => {}
                LinkOutcome::Taken => {
                    return Err(ApiError::conflict(format!("The login {p} is linked to another identity already")));
                }
                LinkOutcome::Changed => return Err(changed_concurrently()),
            }
        }
    }
    let token =
        state.oidc()?.issue(&identity, &pool.pool_id, true, &[provider], Duration::from_secs(duration as u64))?;
    Ok(TokenOutput { identity_id: identity, token })
}

async fn lookup_developer_identity(call: &Call) -> Result<LookupOutput, ApiError> {
    let input: LookupInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    let provider = pool
        .settings
        .developer_provider_name
        .clone()
        .ok_or_else(|| ApiError::invalid_parameter("this identity pool has no DeveloperProviderName"))?;
    let max = input.max_results.map(max_results).transpose()?.unwrap_or(60);
    let after = cursor(&input.next_token)?;
    let by_user = match &input.developer_user_identifier {
        Some(user) => {
            user_identifier(user)?;
            let found = call.state.store.login_identity(&pool.pool_id, &provider, user).await?;
            Some(
                found
                    .ok_or_else(|| ApiError::not_found(format!("no identity is linked to developer user {user:?}")))?,
            )
        }
        None => None,
    };
    let identity = match (&input.identity_id, by_user) {
        (Some(id), Some(found)) if *id != found => {
            return Err(ApiError::conflict(format!("The developer user is linked to another identity than {id}")));
        }
        (Some(id), _) => id.clone(),
        (None, Some(found)) => found,
        (None, None) => return Err(ApiError::invalid_parameter("give IdentityId or DeveloperUserIdentifier")),
    };
    let row = own_identity(call, &identity).await?;
    if row.pool_id != pool.pool_id {
        return Err(identity_not_found(&identity));
    }
    // A page of the identity's developer users, in order, after the cursor's.
    let mut users: Vec<String> =
        row.logins.iter().filter(|(p, s)| *p == provider && *s > after).map(|(_, s)| s.clone()).collect();
    users.sort();
    let more = users.len() > max;
    users.truncate(max);
    Ok(LookupOutput {
        identity_id: row.identity_id,
        next_token: more.then(|| B64.encode(&users[users.len() - 1])),
        developer_user_identifier_list: users,
    })
}

async fn merge_developer_identities(call: &Call) -> Result<IdentityIdOutput, ApiError> {
    let state = &call.state;
    let input: MergeInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    let provider = developer_provider(&pool, &input.developer_provider_name)?;
    user_identifier(&input.source_user_identifier)?;
    user_identifier(&input.destination_user_identifier)?;
    let source = state
        .store
        .login_identity(&pool.pool_id, &provider, &input.source_user_identifier)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("no identity is linked to developer user {:?}", input.source_user_identifier))
        })?;
    let destination = state
        .store
        .login_identity(&pool.pool_id, &provider, &input.destination_user_identifier)
        .await?
        .ok_or_else(|| {
        ApiError::not_found(format!("no identity is linked to developer user {:?}", input.destination_user_identifier))
    })?;
    if source != destination {
        match state
            .store
            .merge_identities(&pool.pool_id, &source, &destination, MergeRule::Developer(&provider))
            .await?
        {
            MergeOutcome::Merged(_) => {}
            MergeOutcome::Changed => return Err(changed_concurrently()),
            MergeOutcome::ProviderClash(other) => {
                return Err(ApiError::conflict(format!(
                    "Both identities have logins of {other} for different users; they are not merged"
                )));
            }
        }
    }
    Ok(IdentityIdOutput { identity_id: destination })
}

async fn unlink_developer_identity(call: &Call) -> Result<Empty, ApiError> {
    let input: UnlinkDeveloperInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    let provider = developer_provider(&pool, &input.developer_provider_name)?;
    let row = own_identity(call, &input.identity_id).await?;
    if row.pool_id != pool.pool_id {
        return Err(identity_not_found(&input.identity_id));
    }
    if call.state.store.unlink_logins(&row.identity_id, &provider, Some(&input.developer_user_identifier)).await? == 0 {
        return Err(ApiError::not_found(format!(
            "developer user {:?} is not linked to identity {}",
            input.developer_user_identifier, row.identity_id
        )));
    }
    Ok(Empty {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_operation_is_implemented_or_named_unsupported() {
        let model: serde_json::Value =
            serde_json::from_str(include_str!("models/cognito-identity-2014-06-30.json")).unwrap();
        for name in model["operations"].as_object().unwrap().keys() {
            let implemented = OPERATIONS.iter().any(|op| op.name == name);
            assert!(implemented != NOT_IMPLEMENTED.contains(&name.as_str()), "{name}");
        }
    }

    #[test]
    fn oidc_provider_arns_name_issuers() {
        assert_eq!(
            arn_issuer("arn:aws:iam::123456789012:oidc-provider/login.example.com/realm").as_deref(),
            Some("https://login.example.com/realm")
        );
        assert!(arn_issuer("arn:aws:iam::abc:oidc-provider/x").is_none());
        assert!(arn_issuer("arn:aws:iam::1:saml-provider/x").is_none());
    }
}
