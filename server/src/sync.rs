//! The Cognito Sync operations (rest-json): one table that routes a method and URI
//! template to an operation's name, the credential it needs and its handler; then one
//! typed handler per operation.

use super::error::ApiError;
use super::functions::{
    describe_function, get_function_version, list_functions, publish_function_version, test_function,
};
use super::wire::*;
use super::{AppState, now_secs};
use axum::body::Bytes;
use axum::http::Method;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use synctrig_runtime::limits;
use synctrig_runtime::merge::{self, EventMeta, Patch, PatchError};
use synctrig_sigv4::{Query, percent_decode};
use synctrig_store::{
    Credential, DatasetRow, Idempotency, InvocationRow, Pool, Principal, RecordCursor, Scope, Update, UpdateOutcome,
};

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
    pub(super) fn label(&self, i: usize) -> &str {
        self.labels.get(i).map_or("", String::as_str)
    }

    fn query(&self, name: &str) -> Result<Option<&str>, ApiError> {
        self.query.get(name).map_err(|e| ApiError::invalid_parameter(e.0))
    }

    pub(super) fn body<T: DeserializeOwned>(&self, operation: &str) -> Result<T, ApiError> {
        let invalid =
            |e: serde_json::Error| ApiError::invalid_parameter(format!("invalid {operation} request body: {e}"));
        if !self.input.is_null() {
            return T::deserialize(&self.input).map_err(invalid);
        }
        let body: &[u8] = if self.body.is_empty() { b"{}" } else { &self.body };
        serde_json::from_slice(body).map_err(invalid)
    }
}

/// Who may call an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Identity, developer or root credentials (the handler checks which identity).
    Any,
    /// Developer or root credentials.
    Developer,
}

type Handled = Pin<Box<dyn Future<Output = Result<axum::response::Response, ApiError>> + Send>>;

/// One operation of the API.
pub struct Operation {
    /// The model's operation name.
    pub name: &'static str,
    method: Method,
    /// The model's URI template, e.g. `/identitypools/{IdentityPoolId}/events`.
    pub(super) template: &'static str,
    pub access: Access,
    pub handler: fn(Call) -> Handled,
}

impl Operation {
    /// The HTTP method, as a name.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn method_name(&self) -> &'static str {
        match self.method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::DELETE => "DELETE",
            _ => "PUT",
        }
    }

    /// The names of the URI template's labels, in order.
    pub fn label_names(&self) -> impl Iterator<Item = &'static str> {
        self.template.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
    }
}

fn ok<T: Serialize>(value: T) -> axum::response::Response {
    axum::response::IntoResponse::into_response(axum::Json(value))
}

/// A handler's answer as a response: its typed output as JSON, or (`raw`) the response it
/// made itself.
macro_rules! reply {
    ($value:expr,) => {
        ok($value)
    };
    ($value:expr, raw) => {
        $value
    };
}

macro_rules! operations {
    ($($name:ident: $method:ident $template:literal, $access:ident => $handler:ident $(as $raw:ident)?;)*) => {
        /// Every operation: one entry each.
        pub static OPERATIONS: &[Operation] = &[$(
            Operation {
                name: stringify!($name),
                method: Method::$method,
                template: $template,
                access: Access::$access,
                handler: |call| Box::pin(async move { $handler(call).await.map(|v| reply!(v, $($raw)?)) }),
            },
        )*];
    };
}

operations! {
    ListIdentityPoolUsage: GET "/identitypools", Developer => list_identity_pool_usage;
    DescribeIdentityPoolUsage: GET "/identitypools/{IdentityPoolId}", Developer => describe_identity_pool_usage;
    GetCognitoEvents: GET "/identitypools/{IdentityPoolId}/events", Developer => get_cognito_events;
    SetCognitoEvents: POST "/identitypools/{IdentityPoolId}/events", Developer => set_cognito_events;
    GetIdentityPoolConfiguration: GET "/identitypools/{IdentityPoolId}/configuration", Developer => get_identity_pool_configuration;
    SetIdentityPoolConfiguration: POST "/identitypools/{IdentityPoolId}/configuration", Developer => set_identity_pool_configuration;
    BulkPublish: POST "/identitypools/{IdentityPoolId}/bulkpublish", Developer => bulk_publish;
    GetBulkPublishDetails: POST "/identitypools/{IdentityPoolId}/getBulkPublishDetails", Developer => get_bulk_publish_details;
    RegisterDevice: POST "/identitypools/{IdentityPoolId}/identity/{IdentityId}/device", Any => register_device;
    DescribeIdentityUsage: GET "/identitypools/{IdentityPoolId}/identities/{IdentityId}", Any => describe_identity_usage;
    ListDatasets: GET "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets", Any => list_datasets;
    DescribeDataset: GET "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}", Any => describe_dataset;
    UpdateRecords: POST "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}", Any => update_records;
    DeleteDataset: DELETE "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}", Any => delete_dataset;
    ListRecords: GET "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}/records", Any => list_records;
    SubscribeToDataset: POST "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}/subscriptions/{DeviceId}", Any => subscribe_to_dataset;
    UnsubscribeFromDataset: DELETE "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}/subscriptions/{DeviceId}", Any => unsubscribe_from_dataset;
    ListTriggerInvocations: GET "/synctrig/functions/{FunctionName}/invocations", Developer => list_trigger_invocations;
    ExportIdentityPool: GET "/synctrig/identitypools/{IdentityPoolId}/export", Developer => export_identity_pool as raw;
    ListFunctions: GET "/synctrig/functions", Developer => list_functions;
    DescribeFunction: GET "/synctrig/functions/{FunctionName}", Developer => describe_function;
    PublishFunctionVersion: POST "/synctrig/functions/{FunctionName}/versions", Developer => publish_function_version;
    GetFunctionVersion: GET "/synctrig/functions/{FunctionName}/versions/{Version}", Developer => get_function_version;
    TestFunction: POST "/synctrig/functions/{FunctionName}/test", Developer => test_function;
}

/// The operation a method and raw path name, with its labels decoded; `Err` when a label
/// is not valid percent-encoded UTF-8.
pub fn route(method: &Method, raw_path: &str) -> Result<Option<(&'static Operation, Vec<String>)>, ApiError> {
    let segments: Vec<&str> = raw_path.trim_start_matches('/').split('/').collect();
    for op in OPERATIONS.iter().filter(|op| op.method == method) {
        let template: Vec<&str> = op.template.trim_start_matches('/').split('/').collect();
        if template.len() != segments.len() {
            continue;
        }
        let mut labels = Vec::new();
        let matches = template.iter().zip(&segments).all(|(t, s)| {
            if t.starts_with('{') {
                labels.push(*s);
                true
            } else {
                t == s
            }
        });
        if matches {
            let decoded = labels
                .into_iter()
                .map(|l| {
                    percent_decode(l).ok_or_else(|| {
                        ApiError::invalid_parameter(format!("path segment {l:?} is not valid percent-encoded UTF-8"))
                    })
                })
                .collect::<Result<_, _>>()?;
            return Ok(Some((op, decoded)));
        }
    }
    Ok(None)
}

/// The operation a request names, refusing a path whose normalised form — the path its
/// signature covers — names a different operation or resource. Only datasets named `.`
/// or `..` can do that (e.g. `GET …/datasets/./records` is signed as
/// `GET …/datasets/records`); without this check a request signed for one could be sent
/// as the other.
pub fn route_signed(method: &Method, raw_path: &str) -> Result<Option<(&'static Operation, Vec<String>)>, ApiError> {
    let Some((op, labels)) = route(method, raw_path)? else { return Ok(None) };
    // An empty label is signed as the path without it (SigV4 merges slashes), so it could
    // name another operation too; it is refused as the model refuses it, by its name.
    if let Some(name) = op.label_names().zip(&labels).find(|(_, value)| value.is_empty()).map(|(name, _)| name) {
        return Err(super::model::empty_member(name));
    }
    let normalized = synctrig_sigv4::normalized_path(raw_path);
    if normalized != raw_path
        && let Ok(Some((other, other_labels))) = route(method, &normalized)
        && (other.name, &other_labels) != (op.name, &labels)
    {
        return Err(ApiError::invalid_parameter(format!(
            "{} of {:?} cannot be told apart from {} of {:?}: SigV4 signs the path with its '.' and '..' \
             segments removed, so dataset names '.' and '..' cannot be used with {}",
            op.name,
            labels.last().map(String::as_str).unwrap_or(""),
            other.name,
            other_labels.last().map(String::as_str).unwrap_or(""),
            op.name
        )));
    }
    Ok(Some((op, labels)))
}

/// Checks an operation's credential kind before its handler runs.
pub fn check_access(op: &Operation, cred: &Credential) -> Result<(), ApiError> {
    match (op.access, &cred.principal) {
        (Access::Developer, Principal::Identity { .. }) => {
            Err(ApiError::not_authorized(format!("{} needs developer credentials, not identity credentials", op.name)))
        }
        _ => Ok(()),
    }
}

/// The pool, if `cred` may act on it; otherwise NotAuthorized (never revealing whether
/// another tenant's pool exists).
async fn authorize_pool(state: &AppState, cred: &Credential, pool_id: &str) -> Result<Pool, ApiError> {
    if !limits::is_valid_cognito_id(pool_id) {
        return Err(ApiError::invalid_parameter(format!(
            "IdentityPoolId {pool_id:?} is not of the form region:hex-id"
        )));
    }
    let pool = state.store.pool(pool_id).await?;
    let allowed = match (&pool, &cred.principal) {
        (Some(_), Principal::Root) => true,
        (Some(p), Principal::Developer { tenant }) => &p.tenant == tenant,
        (Some(p), Principal::Identity { pool_id, .. }) => &p.pool_id == pool_id,
        (None, _) => false,
    };
    match pool {
        Some(pool) if allowed => Ok(pool),
        _ => Err(ApiError::not_authorized(format!("not authorized to access identity pool {pool_id}"))),
    }
}

/// The pool, if `cred` may act on `identity_id`'s datasets in it.
async fn authorize_identity(
    state: &AppState,
    cred: &Credential,
    pool_id: &str,
    identity_id: &str,
) -> Result<Pool, ApiError> {
    if !limits::is_valid_cognito_id(identity_id) {
        return Err(ApiError::invalid_parameter(format!(
            "IdentityId {identity_id:?} is not of the form region:hex-id"
        )));
    }
    let pool = authorize_pool(state, cred, pool_id).await?;
    let denied = || ApiError::not_authorized(format!("not authorized to access identity {identity_id}"));
    if let Principal::Identity { identity_id: own, .. } = &cred.principal {
        // Its credential was found only because the identity is live, and of the pool
        // authorize_pool just matched: no need to look it up again.
        return if own == identity_id { Ok(pool) } else { Err(denied()) };
    }
    match state.store.identity_pool(identity_id).await? {
        Some(p) if p == pool.pool_id => Ok(pool),
        _ => Err(denied()),
    }
}

fn check_dataset_name(name: &str) -> Result<(), ApiError> {
    limits::dataset_name_problem(name).map_or(Ok(()), |p| Err(ApiError::invalid_parameter(p)))
}

/// A listing's page size: `default` when not asked; a size past `max` is `max` (the model
/// puts no bound on it, and clients ask for more: the Sync Manager lists 64 datasets).
fn max_results(call: &Call, default: usize, max: usize) -> Result<usize, ApiError> {
    match call.query("maxResults")? {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX).min(max)),
            _ => Err(ApiError::invalid_parameter(format!("maxResults {v:?} must be a whole number, 1 or more"))),
        },
    }
}

fn bad_token(t: &str) -> ApiError {
    ApiError::invalid_parameter(format!("nextToken {t:?} is not one this service issued"))
}

/// The name after which a name-ordered listing resumes.
fn name_cursor(call: &Call) -> Result<String, ApiError> {
    match call.query("nextToken")? {
        None => Ok(String::new()),
        Some(t) => B64.decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| bad_token(t)),
    }
}

fn principal_name(cred: &Credential) -> String {
    match &cred.principal {
        Principal::Root => "root".into(),
        Principal::Developer { tenant } => format!("developer:{tenant}"),
        Principal::Identity { identity_id, .. } => identity_id.clone(),
    }
}

async fn pool_usage(state: &AppState, pool_id: &str) -> Result<IdentityPoolUsage, ApiError> {
    let (sessions, bytes, modified) = state.store.pool_usage(pool_id).await?;
    Ok(IdentityPoolUsage {
        identity_pool_id: pool_id.to_owned(),
        sync_sessions_count: sessions,
        data_storage: bytes,
        last_modified_date: modified.map(Timestamp::from_secs),
    })
}

async fn list_identity_pool_usage(call: Call) -> Result<ListIdentityPoolUsageResponse, ApiError> {
    let max = max_results(&call, 60, 60)?;
    let after = name_cursor(&call)?;
    let tenant = match &call.cred.principal {
        Principal::Developer { tenant } => Some(tenant.as_str()),
        _ => None,
    };
    let mut pools = call.state.store.pools_after(tenant, &after, max + 1).await?;
    let more = pools.len() > max;
    pools.truncate(max);
    let mut usages = Vec::with_capacity(pools.len());
    for p in &pools {
        usages.push(pool_usage(&call.state, &p.pool_id).await?);
    }
    Ok(ListIdentityPoolUsageResponse {
        count: usages.len(),
        next_token: more.then(|| B64.encode(&pools[pools.len() - 1].pool_id)),
        identity_pool_usages: usages,
        max_results: max,
    })
}

async fn describe_identity_pool_usage(call: Call) -> Result<DescribeIdentityPoolUsageResponse, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    Ok(DescribeIdentityPoolUsageResponse { identity_pool_usage: pool_usage(&call.state, &pool.pool_id).await? })
}

async fn get_cognito_events(call: Call) -> Result<GetCognitoEventsResponse, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    let events = pool.sync_trigger.map(|f| ("SyncTrigger".to_owned(), f)).into_iter().collect();
    Ok(GetCognitoEventsResponse { events })
}

/// A SyncTrigger mapping: a function name or Lambda ARN, with an optional version.
pub fn parse_function_ref(value: &str) -> Option<(String, Option<i64>)> {
    let rest = match value.strip_prefix("arn:aws:lambda:") {
        Some(arn) => {
            let mut parts = arn.splitn(4, ':');
            let (_region, _account, kind) = (parts.next()?, parts.next()?, parts.next()?);
            if kind != "function" {
                return None;
            }
            parts.next()?
        }
        None => value,
    };
    let (name, version) = match rest.split_once(':') {
        Some((name, v)) => (name, Some(v.parse().ok().filter(|v| *v > 0)?)),
        None => (rest, None),
    };
    let valid =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then(|| (name.to_owned(), version))
}

async fn set_cognito_events(call: Call) -> Result<Empty, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    let request: SetCognitoEventsRequest = call.body("SetCognitoEvents")?;
    if let Some(other) = request.events.keys().find(|k| *k != "SyncTrigger") {
        return Err(ApiError::invalid_parameter(format!("unknown event {other:?}; the only event is SyncTrigger")));
    }
    let mapping = request.events.get("SyncTrigger").filter(|v| !v.is_empty()).cloned();
    if let Some(value) = &mapping {
        let (name, version) = parse_function_ref(value).ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "SyncTrigger {value:?} is not a function name or arn:aws:lambda:<region>:<account>:function:<name>[:<version>]"
            ))
        })?;
        if call.state.store.function(&pool.tenant, &name, version).await?.is_none() {
            return Err(ApiError::invalid_parameter(format!(
                "no function {value:?} is deployed for this identity pool's tenant"
            )));
        }
    }
    call.state.store.set_sync_trigger(&pool.pool_id, mapping.as_deref()).await?;
    // Compile it now, in the background, rather than on the pool's next update.
    if let Some(m) = mapping
        && let Some(f) = call.state.resolve(&pool.tenant, &m).await?
    {
        call.state.triggers.prefetch(f);
    }
    Ok(Empty {})
}

async fn get_identity_pool_configuration(call: Call) -> Result<GetIdentityPoolConfigurationResponse, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    Ok(GetIdentityPoolConfigurationResponse { identity_pool_id: pool.pool_id })
}

fn not_supported(operation: &str, what: &str) -> String {
    format!("{operation} is not supported by synctrig-wasm: {what}")
}

async fn set_identity_pool_configuration(call: Call) -> Result<Empty, ApiError> {
    authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    Err(ApiError::invalid_parameter(not_supported(
        "SetIdentityPoolConfiguration",
        "push sync and Cognito streams are not implemented",
    )))
}

async fn bulk_publish(call: Call) -> Result<Empty, ApiError> {
    authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    Err(ApiError::invalid_parameter(not_supported("BulkPublish", "Cognito streams are not implemented")))
}

async fn get_bulk_publish_details(call: Call) -> Result<Empty, ApiError> {
    authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    Err(ApiError::invalid_parameter(not_supported("GetBulkPublishDetails", "Cognito streams are not implemented")))
}

async fn register_device(call: Call) -> Result<Empty, ApiError> {
    authorize_identity(&call.state, &call.cred, call.label(0), call.label(1)).await?;
    Err(ApiError::invalid_configuration(not_supported("RegisterDevice", "push sync is not configured for any pool")))
}

async fn subscribe_to_dataset(call: Call) -> Result<Empty, ApiError> {
    authorize_identity(&call.state, &call.cred, call.label(0), call.label(1)).await?;
    Err(ApiError::invalid_configuration(not_supported(
        "SubscribeToDataset",
        "push sync is not configured for any pool",
    )))
}

async fn unsubscribe_from_dataset(call: Call) -> Result<Empty, ApiError> {
    authorize_identity(&call.state, &call.cred, call.label(0), call.label(1)).await?;
    Err(ApiError::invalid_configuration(not_supported(
        "UnsubscribeFromDataset",
        "push sync is not configured for any pool",
    )))
}

async fn describe_identity_usage(call: Call) -> Result<DescribeIdentityUsageResponse, ApiError> {
    let (pool_id, identity_id) = (call.label(0), call.label(1));
    let pool = authorize_identity(&call.state, &call.cred, pool_id, identity_id).await?;
    let (count, bytes, modified) = call.state.store.identity_usage(&pool.pool_id, identity_id).await?;
    Ok(DescribeIdentityUsageResponse {
        identity_usage: IdentityUsage {
            identity_id: identity_id.to_owned(),
            identity_pool_id: pool.pool_id,
            last_modified_date: modified.map(Timestamp::from_secs),
            dataset_count: count,
            data_storage: bytes,
        },
    })
}

async fn list_datasets(call: Call) -> Result<ListDatasetsResponse, ApiError> {
    let (pool_id, identity_id) = (call.label(0), call.label(1));
    let pool = authorize_identity(&call.state, &call.cred, pool_id, identity_id).await?;
    let max = max_results(&call, 20, limits::MAX_DATASETS_PER_IDENTITY.max(20))?;
    let after = name_cursor(&call)?;
    let mut rows = call.state.store.datasets_after(&pool.pool_id, identity_id, &after, max + 1).await?;
    let more = rows.len() > max;
    rows.truncate(max);
    Ok(ListDatasetsResponse {
        count: rows.len(),
        next_token: more.then(|| B64.encode(&rows[rows.len() - 1].name)),
        datasets: rows.iter().map(|d| Dataset::new(identity_id, d)).collect(),
    })
}

async fn describe_dataset(call: Call) -> Result<DatasetResponse, ApiError> {
    let (pool_id, identity_id, name) = (call.label(0), call.label(1), call.label(2));
    check_dataset_name(name)?;
    let pool = authorize_identity(&call.state, &call.cred, pool_id, identity_id).await?;
    match call.state.store.dataset(&pool.pool_id, identity_id, name).await? {
        Some(d) if !d.deleted => Ok(DatasetResponse { dataset: Dataset::new(identity_id, &d) }),
        _ => Err(ApiError::not_found(format!("dataset {name} does not exist"))),
    }
}

async fn delete_dataset(call: Call) -> Result<DatasetResponse, ApiError> {
    let (pool_id, identity_id, name) = (call.label(0), call.label(1), call.label(2));
    check_dataset_name(name)?;
    let pool = authorize_identity(&call.state, &call.cred, pool_id, identity_id).await?;
    let deleted: Option<DatasetRow> =
        call.state.store.delete_dataset(&pool.pool_id, identity_id, name, &principal_name(&call.cred)).await?;
    match deleted {
        Some(d) => Ok(DatasetResponse { dataset: Dataset::new(identity_id, &d) }),
        None => Err(ApiError::not_found(format!("dataset {name} does not exist"))),
    }
}

/// A SyncSessionToken: `<expires>.<dataset SyncCount>.<nonce>.<mac>`, bound to the
/// pool, identity and dataset, and to the dataset's SyncCount when it was issued. The
/// nonce makes every token unique, so a retry (same token, same patches) is told apart
/// from another device's identical push.
struct Session {
    expires: i64,
    sync_count: i64,
    nonce: String,
}

fn session_mac(state: &AppState, dataset: (&str, &str, &str), session: &Session) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&state.session_key).expect("HMAC takes any key size");
    let (pool, identity, name) = dataset;
    let Session { expires, sync_count, nonce } = session;
    mac.update(format!("{pool}|{identity}|{name}|{sync_count}|{expires}|{nonce}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn session_token(state: &AppState, dataset: (&str, &str, &str), sync_count: i64) -> String {
    let session = Session {
        expires: now_secs() + state.config.session_ttl_secs,
        sync_count,
        nonce: synctrig_store::random_hex(8),
    };
    let mac = session_mac(state, dataset, &session);
    format!("{}.{}.{}.{mac}", session.expires, session.sync_count, session.nonce)
}

fn check_session_token(state: &AppState, token: &str, dataset: (&str, &str, &str)) -> Result<Session, ApiError> {
    let invalid =
        || ApiError::invalid_parameter("SyncSessionToken is invalid or expired; call ListRecords for a fresh one");
    let parts: Vec<&str> = token.split('.').collect();
    let [expires, count, nonce, mac] = parts.as_slice() else {
        return Err(invalid());
    };
    let session = Session {
        expires: expires.parse().map_err(|_| invalid())?,
        sync_count: count.parse().map_err(|_| invalid())?,
        nonce: (*nonce).to_owned(),
    };
    let expected = session_mac(state, dataset, &session);
    if !synctrig_sigv4::constant_time_eq(expected.as_bytes(), mac.as_bytes()) || session.expires < now_secs() {
        return Err(invalid());
    }
    Ok(session)
}

/// A ListRecords NextToken: the listing's upper SyncCount and the last record returned.
fn records_cursor(token: &str) -> Option<(i64, RecordCursor)> {
    let mut parts = token.splitn(3, '.');
    let upper: i64 = parts.next()?.parse().ok()?;
    let sync_count: i64 = parts.next()?.parse().ok()?;
    let key = String::from_utf8(B64.decode(parts.next()?).ok()?).ok()?;
    (0 <= sync_count && sync_count <= upper).then_some((upper, RecordCursor { sync_count, key }))
}

async fn list_records(call: Call) -> Result<ListRecordsResponse, ApiError> {
    let (pool_id, identity_id, name) = (call.label(0), call.label(1), call.label(2));
    check_dataset_name(name)?;
    let pool = authorize_identity(&call.state, &call.cred, pool_id, identity_id).await?;
    let last: i64 = match call.query("lastSyncCount")? {
        None => 0,
        Some(v) => v.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::invalid_parameter(format!("lastSyncCount {v:?} must be a whole number, 0 or more"))
        })?,
    };
    let max = max_results(&call, limits::MAX_RECORDS, limits::MAX_RECORDS)?;
    let (upper, cursor) = match call.query("nextToken")? {
        None => (None, None),
        Some(t) => {
            let (upper, cursor) = records_cursor(t).ok_or_else(|| bad_token(t))?;
            (Some(upper), Some(cursor))
        }
    };
    let dataset = (pool.pool_id.as_str(), identity_id, name);
    if let Some(token) = call.query("syncSessionToken")? {
        check_session_token(&call.state, token, dataset)?;
    }
    let page = call.state.store.records_page(dataset, last, upper, cursor.as_ref(), max).await?;
    let next_token = page.more.then(|| {
        let last = &page.records[page.records.len() - 1];
        format!("{}.{}.{}", page.upper, last.sync_count, B64.encode(&last.key))
    });
    let d = page.dataset.as_ref();
    Ok(ListRecordsResponse {
        count: page.records.len(),
        records: page.records.iter().map(Record::from).collect(),
        next_token,
        dataset_sync_count: page.upper,
        last_modified_by: d.map(|d| d.modified_by.clone()),
        // Datasets of identities merged into this one, kept as `<name>.<identityId>`: the
        // Sync Manager's onDatasetsMerged hands them to the app to fold in and delete.
        merged_dataset_names: page.merged_names.clone(),
        dataset_exists: d.is_some_and(|d| !d.deleted),
        // Only a device that synced before the last deletion was told of records that
        // are gone; one at 0 never synced, one past it synced after.
        dataset_deleted_after_requested_sync_count: d.is_some_and(|d| last > 0 && last < d.deleted_at),
        sync_session_token: session_token(&call.state, dataset, page.upper),
    })
}

/// The latest DeviceLastModifiedDate accepted: the end of year 9999, the last date the
/// SDKs can represent.
const MAX_DEVICE_DATE_SECS: f64 = 253_402_300_799.999;

fn device_millis(p: &RecordPatch) -> Result<Option<i64>, ApiError> {
    match p.device_last_modified_date {
        None => Ok(None),
        Some(secs) if secs.is_finite() && (0.0..=MAX_DEVICE_DATE_SECS).contains(&secs) => {
            Ok(Some((secs * 1000.0).round() as i64))
        }
        Some(secs) => Err(ApiError::invalid_parameter(format!(
            "DeviceLastModifiedDate {secs} of record {:?} is not a date between 1970 and 9999",
            p.key
        ))),
    }
}

fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::InvalidParameter(m) => ApiError::invalid_parameter(m),
        PatchError::LimitExceeded(m) => ApiError::limit_exceeded(m),
    }
}

async fn update_records(call: Call) -> Result<UpdateRecordsResponse, ApiError> {
    let state = &call.state;
    let (pool_id, identity_id, name) = (call.label(0), call.label(1), call.label(2));
    check_dataset_name(name)?;
    let pool = authorize_identity(state, &call.cred, pool_id, identity_id).await?;
    let request: UpdateRecordsRequest = call.body("UpdateRecords")?;
    let dataset = (pool.pool_id.as_str(), identity_id, name);
    let token = request
        .sync_session_token
        .as_deref()
        .ok_or_else(|| ApiError::invalid_parameter("SyncSessionToken is required"))?;
    let session = check_session_token(state, token, dataset)?;
    if let Some(device) = &request.device_id
        && !(1..=256).contains(&device.chars().count())
    {
        return Err(ApiError::invalid_parameter("DeviceId must be 1 to 256 characters"));
    }
    let patches: Vec<Patch> =
        request.record_patches.iter().map(|p| Patch { key: p.key.clone(), op: p.op, value: p.value.clone() }).collect();
    merge::check_patches(&patches).map_err(patch_error)?;
    let mut device_times = BTreeMap::new();
    for p in &request.record_patches {
        if p.sync_count < 0 {
            return Err(ApiError::invalid_parameter(format!("SyncCount of record {:?} is negative", p.key)));
        }
        if let Some(ms) = device_millis(p)? {
            device_times.insert(p.key.clone(), ms);
        }
    }
    let idempotency = Idempotency {
        token_hash: hex::encode(Sha256::digest(token.as_bytes())),
        request_hash: request_hash(&request, &device_times),
        expires: session.expires,
    };

    let snapshot = state.store.snapshot(dataset.0, dataset.1, dataset.2).await?;
    if snapshot.sync_count() != session.sync_count {
        // Either a retry of an update that was applied (answered as then), or a push on
        // a stale session: the client must pull what changed first.
        if let Some(answer) = state.store.applied_answer(&idempotency).await? {
            return Ok(UpdateRecordsResponse { records: answer.iter().map(Record::from).collect() });
        }
        return Err(stale_session(name, session.sync_count, snapshot.sync_count()));
    }
    for p in &request.record_patches {
        let current = snapshot.records.get(&p.key).map_or(0, |r| r.sync_count);
        if p.sync_count != current {
            return Err(ApiError::conflict(format!(
                "Current SyncCount for: {} is: {current} not: {}",
                p.key, p.sync_count
            )));
        }
    }
    if !snapshot.exists() && snapshot.identity_datasets >= limits::MAX_DATASETS_PER_IDENTITY {
        return Err(too_many_datasets());
    }

    let stored = snapshot.live();
    let meta = EventMeta {
        region: state.config.region.clone(),
        identity_pool_id: pool.pool_id.clone(),
        identity_id: identity_id.to_owned(),
        dataset_name: name.to_owned(),
    };
    let runs_trigger = matches!(call.cred.principal, Principal::Identity { .. }) && pool.sync_trigger.is_some();
    let mut writes = if runs_trigger {
        run_sync_trigger(state, &pool, &meta, stored.clone(), &patches).await?
    } else {
        merge::apply_patches(&meta, &stored, &patches).map_err(patch_error)?
    };
    // Every patched key is written at the new SyncCount, with its value as it now stands
    // (a tombstone when it has none), so the device that patched it learns its state and
    // sees it in its next incremental sync.
    for p in &patches {
        if !writes.iter().any(|w| w.key == p.key) {
            writes.push(merge::Write { key: p.key.clone(), value: stored.get(&p.key).cloned() });
        }
    }
    writes.sort_by(|a, b| a.key.cmp(&b.key));

    let update = Update {
        pool: pool.pool_id.clone(),
        identity: identity_id.to_owned(),
        name: name.to_owned(),
        expected: session.sync_count,
        writes,
        device_modified_ms: device_times,
        by: principal_name(&call.cred),
        max_datasets: limits::MAX_DATASETS_PER_IDENTITY,
        idempotency,
    };
    let outcome = state.store.update(update).await?;
    match outcome {
        UpdateOutcome::Applied(rows) | UpdateOutcome::Replayed(rows) => {
            Ok(UpdateRecordsResponse { records: rows.iter().map(Record::from).collect() })
        }
        UpdateOutcome::Conflict => {
            let now = state.store.dataset(dataset.0, dataset.1, dataset.2).await?.map_or(0, |d| d.sync_count);
            Err(stale_session(name, session.sync_count, now))
        }
        UpdateOutcome::TooManyDatasets => Err(too_many_datasets()),
        UpdateOutcome::IdentityGone => Err(ApiError::not_authorized(format!(
            "identity {} was merged into another identity or deleted; get its credentials again",
            call.label(1)
        ))),
    }
}

fn stale_session(name: &str, issued: i64, now: i64) -> ApiError {
    ApiError::conflict(format!(
        "dataset {name} changed since this SyncSessionToken was issued (its SyncCount was {issued}, now {now}); \
         call ListRecords, merge and retry"
    ))
}

fn too_many_datasets() -> ApiError {
    ApiError::limit_exceeded(format!("an identity may have at most {} datasets", limits::MAX_DATASETS_PER_IDENTITY))
}

/// What makes two UpdateRecords the same request: the device and every patch.
fn request_hash(request: &UpdateRecordsRequest, device_times: &BTreeMap<String, i64>) -> String {
    let patches: Vec<_> = request
        .record_patches
        .iter()
        .map(|p| (&p.key, p.op, &p.value, p.sync_count, device_times.get(&p.key)))
        .collect();
    let canonical = serde_json::to_vec(&(&request.device_id, patches)).unwrap_or_default();
    hex::encode(Sha256::digest(canonical))
}

/// Runs the pool's Sync Trigger in the sandbox and returns the writes it implies.
async fn run_sync_trigger(
    state: &Arc<AppState>,
    pool: &Pool,
    meta: &EventMeta,
    stored: merge::Dataset,
    patches: &[Patch],
) -> Result<Vec<merge::Write>, ApiError> {
    let mapping = pool.sync_trigger.clone().unwrap_or_default();
    let f = state
        .resolve(&pool.tenant, &mapping)
        .await?
        .ok_or_else(|| ApiError::internal(format!("the pool's SyncTrigger function {mapping:?} is not deployed")))?;
    let (name, version) = (f.name.clone(), f.version);
    // Loaded (or compiled in the background) before a slot is taken: a slot never waits
    // on a compile.
    let trigger = state.triggers.get(f).await?;
    let reservation = state.invoker.reserve(&pool.pool_id).await.map_err(ApiError::from)?;
    let input = merge::build_event(meta, &stored, patches);
    let outcome = reservation.run(trigger, stored, input).await;

    let outcome_label = match &outcome.result {
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    };
    state.metrics.invocation(outcome_label, outcome.stats.wall_us as f64 / 1e6, outcome.stats.fuel_consumed);
    let row = InvocationRow {
        at: now_secs(),
        version,
        outcome: outcome_label.to_owned(),
        wall_us: outcome.stats.wall_us as i64,
        fuel: outcome.stats.fuel_consumed as i64,
        peak_memory_bytes: outcome.stats.peak_memory_bytes as i64,
        log: outcome.log,
    };
    state.store.submit_invocation(&pool.tenant, &name, row);
    outcome.result.map(|applied| applied.writes).map_err(ApiError::from)
}

async fn list_trigger_invocations(call: Call) -> Result<ListTriggerInvocationsResponse, ApiError> {
    let Principal::Developer { tenant } = &call.cred.principal else {
        return Err(ApiError::not_authorized("trigger invocations are readable with developer credentials only"));
    };
    let limit = max_results(&call, 100, 100)? as i64;
    let function = call.label(0).to_owned();
    let invocations = call.state.store.invocations(tenant, &function, limit).await?;
    Ok(ListTriggerInvocationsResponse { function, invocations })
}

/// Our extension: a tenant takes its pool's users' data elsewhere — the pool, its
/// identities, logins, datasets and records as `admin export --pool` writes them (JSON
/// lines), streamed from one snapshot as it is read.
async fn export_identity_pool(call: Call) -> Result<axum::response::Response, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let state = call.state.clone();
    // The export writes synchronously, on a blocking thread; a second one relays its
    // chunks to the response (a blocking thread that drives a future cannot also block
    // on the response's channel).
    let (chunks_tx, chunks_rx) = std::sync::mpsc::sync_channel::<Result<Bytes, std::io::Error>>(1);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter { tx: chunks_tx, buf: Vec::with_capacity(CHUNK) };
        // A client that goes away ends the export (its read transaction with it); a
        // failure midway ends the body without its end line, which import refuses.
        let exported =
            tokio::runtime::Handle::current().block_on(state.store.export(&Scope::Pool(pool.pool_id), &mut out));
        if let Err(e) = exported {
            tracing::warn!(error = %e, "pool export failed");
            let _ = out.tx.send(Err(std::io::Error::other(e.to_string())));
        }
    });
    tokio::task::spawn_blocking(move || {
        for chunk in chunks_rx {
            if tx.blocking_send(chunk).is_err() {
                break;
            }
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let body = axum::body::Body::from_stream(chunks);
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )))
}

/// How much of an export is sent at a time.
const CHUNK: usize = 64 << 10;

/// Writes into a bounded channel in chunks: the export runs at the client's pace.
struct ChunkWriter {
    tx: std::sync::mpsc::SyncSender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChunkWriter {
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
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.send(Ok(chunk)).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_refs() {
        assert_eq!(parse_function_ref("sample"), Some(("sample".into(), None)));
        assert_eq!(parse_function_ref("sample:3"), Some(("sample".into(), Some(3))));
        assert_eq!(
            parse_function_ref("arn:aws:lambda:us-east-1:123456789012:function:sample"),
            Some(("sample".into(), None))
        );
        assert_eq!(
            parse_function_ref("arn:aws:lambda:us-east-1:123456789012:function:sample:2"),
            Some(("sample".into(), Some(2)))
        );
        assert_eq!(parse_function_ref("arn:aws:lambda:us-east-1:1:layer:x"), None);
        assert_eq!(parse_function_ref("bad name"), None);
        assert_eq!(parse_function_ref("x:latest"), None);
        assert_eq!(parse_function_ref("x:0"), None);
    }

    #[test]
    fn every_model_operation_is_routed_by_its_own_name() {
        let model: serde_json::Value =
            serde_json::from_str(include_str!("models/cognito-sync-2014-06-30.json")).unwrap();
        for (name, op) in model["operations"].as_object().unwrap() {
            let method: Method = op["http"]["method"].as_str().unwrap().parse().unwrap();
            let uri = op["http"]["requestUri"].as_str().unwrap();
            // Fill every label with a sample value, as a client would.
            let path: Vec<String> = uri
                .split('/')
                .map(|s| if s.starts_with('{') { "us-east-1%3Aabc".to_owned() } else { s.to_owned() })
                .collect();
            let (routed, labels) = route(&method, &path.join("/")).unwrap().unwrap_or_else(|| panic!("{name}"));
            assert_eq!(routed.name, name);
            assert!(labels.iter().all(|l| l == "us-east-1:abc"));
        }
        assert!(route(&Method::GET, "/nothing").unwrap().is_none());
        assert!(route(&Method::GET, "/identitypools/%ff").is_err());
    }

    #[test]
    fn an_empty_label_is_refused_by_its_name() {
        for (method, path, name) in [
            (Method::GET, "/identitypools//events", "IdentityPoolId"),
            (Method::GET, "/identitypools/p/identities//datasets", "IdentityId"),
            (Method::GET, "/identitypools/p/identities/i/datasets//records", "DatasetName"),
        ] {
            let e = route_signed(&method, path).err().unwrap_or_else(|| panic!("{path}"));
            assert_eq!(
                e.message,
                format!(
                    "1 validation error detected: Value '' at '{name}' failed to satisfy constraint: \
                     Member must have length greater than or equal to 1"
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn dot_segments_that_would_move_a_signature_are_refused() {
        let ds = "/identitypools/p/identities/i/datasets";
        // Signed as DescribeDataset("records"), ListDatasets, DescribeIdentityUsage.
        for (method, path) in [
            (Method::GET, format!("{ds}/./records")),
            (Method::GET, format!("{ds}/.")),
            (Method::GET, format!("{ds}/..")),
        ] {
            let e = route_signed(&method, &path).err().unwrap_or_else(|| panic!("{path}"));
            assert!(e.message.contains("cannot be told apart"), "{}", e.message);
        }
        // Unambiguous uses work: nothing else is signed the same way.
        for (method, path, op) in [
            (Method::GET, format!("{ds}/../records"), "ListRecords"),
            (Method::POST, format!("{ds}/.."), "UpdateRecords"),
            (Method::POST, format!("{ds}/."), "UpdateRecords"),
            (Method::DELETE, format!("{ds}/."), "DeleteDataset"),
            (Method::GET, format!("{ds}/%2E/records"), "ListRecords"),
        ] {
            let (routed, _) = route_signed(&method, &path).unwrap().unwrap();
            assert_eq!(routed.name, op, "{path}");
        }
    }

    #[test]
    fn records_cursor_round_trips() {
        let token = format!("7.3.{}", B64.encode("key with . and é"));
        let (upper, cursor) = records_cursor(&token).unwrap();
        assert_eq!((upper, cursor.sync_count, cursor.key.as_str()), (7, 3, "key with . and é"));
        assert!(records_cursor("3.7.a2V5").is_none(), "a cursor past its bound");
        assert!(records_cursor("x").is_none());
    }
}
