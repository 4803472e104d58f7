//! Request dispatch and the Cognito Sync operations.

use super::error::ApiError;
use super::sigv4::{self, percent_decode};
use super::store::{Credential, DatasetRow, InvocationRow, Pool, Principal, RecordRow, Update};
use super::{AppState, identity};
use crate::event::Op;
use crate::limits;
use crate::merge::{self, EventMeta, Patch, PatchError};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

type ApiResult = Result<Value, ApiError>;

fn now_secs() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Every request comes here: bound it, route it, time it, count it.
pub async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    let Ok(_permit) = state.requests.clone().try_acquire_owned() else {
        return ApiError::too_many_requests("the server is at its concurrency limit; retry").into_response();
    };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, state.config.max_body_bytes).await {
        Ok(body) => body,
        Err(_) => {
            let limit = state.config.max_body_bytes;
            return ApiError::limit_exceeded(format!("request body is over the limit of {limit} bytes"))
                .into_response();
        }
    };
    let (operation, result) = route(&state, &parts, &body).await;
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(operation, error = e.name, message = %e.message, "request failed");
            e.into_response()
        }
    };
    state.metrics.request(operation, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

fn json_response(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

async fn route(
    state: &Arc<AppState>,
    parts: &axum::http::request::Parts,
    body: &Bytes,
) -> (&'static str, Result<Response, ApiError>) {
    let path = parts.uri.path();
    if path == "/metrics" && parts.method == Method::GET {
        let text = state.metrics.render();
        return ("Metrics", Ok(([("content-type", "text/plain; version=0.0.4")], text).into_response()));
    }
    if path == "/" && parts.method == Method::POST && parts.headers.contains_key("x-amz-target") {
        let (op, result) = identity::handle(state, &parts.headers, body).await;
        return (op, result.map(|v| ([("content-type", "application/x-amz-json-1.1")], v.to_string()).into_response()));
    }
    let segments: Vec<String> = path.trim_matches('/').split('/').map(percent_decode).collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let m = &parts.method;
    let operation: &'static str = match (m, segs.as_slice()) {
        (&Method::GET, ["identitypools"]) => "ListIdentityPoolUsage",
        (&Method::GET, ["identitypools", _]) => "DescribeIdentityPoolUsage",
        (&Method::GET, ["identitypools", _, "events"]) => "GetCognitoEvents",
        (&Method::POST, ["identitypools", _, "events"]) => "SetCognitoEvents",
        (&Method::GET, ["identitypools", _, "identities", _]) => "DescribeIdentityUsage",
        (&Method::GET, ["identitypools", _, "identities", _, "datasets"]) => "ListDatasets",
        (&Method::GET, ["identitypools", _, "identities", _, "datasets", _]) => "DescribeDataset",
        (&Method::POST, ["identitypools", _, "identities", _, "datasets", _]) => "UpdateRecords",
        (&Method::DELETE, ["identitypools", _, "identities", _, "datasets", _]) => "DeleteDataset",
        (&Method::GET, ["identitypools", _, "identities", _, "datasets", _, "records"]) => "ListRecords",
        (&Method::GET, ["synctrig", "functions", _, "invocations"]) => "ListTriggerInvocations",
        (_, ["identitypools", _, "bulkpublish" | "getBulkPublishDetails"]) => "BulkPublish",
        (_, ["identitypools", _, "configuration"]) => "IdentityPoolConfiguration",
        (_, ["identitypools", _, "identity", _, "device"]) => "RegisterDevice",
        (_, ["identitypools", _, "identities", _, "datasets", _, "subscriptions", _]) => "Subscriptions",
        _ => {
            return ("Unknown", Err(ApiError::not_found(format!("no operation {} {path}", parts.method))));
        }
    };
    if matches!(operation, "BulkPublish" | "IdentityPoolConfiguration" | "RegisterDevice" | "Subscriptions") {
        let message = format!(
            "{operation} is not supported by synctrig-wasm (bulk publish, push sync, streams and devices are not implemented)"
        );
        return (operation, Err(ApiError::invalid_configuration(message)));
    }
    let result = async {
        let cred = authenticate(state, parts, body).await?;
        let query = parse_query(parts.uri.query().unwrap_or(""));
        let value = match operation {
            "ListIdentityPoolUsage" => list_pool_usage(state, &cred, &query).await?,
            "DescribeIdentityPoolUsage" => describe_pool_usage(state, &cred, segs[1]).await?,
            "GetCognitoEvents" => get_events(state, &cred, segs[1]).await?,
            "SetCognitoEvents" => set_events(state, &cred, segs[1], body).await?,
            "DescribeIdentityUsage" => describe_identity_usage(state, &cred, segs[1], segs[3]).await?,
            "ListDatasets" => list_datasets(state, &cred, segs[1], segs[3], &query).await?,
            "DescribeDataset" => describe_dataset(state, &cred, segs[1], segs[3], segs[5]).await?,
            "DeleteDataset" => delete_dataset(state, &cred, segs[1], segs[3], segs[5]).await?,
            "ListRecords" => list_records(state, &cred, segs[1], segs[3], segs[5], &query).await?,
            "UpdateRecords" => update_records(state, &cred, segs[1], segs[3], segs[5], body).await?,
            "ListTriggerInvocations" => list_invocations(state, &cred, segs[2], &query).await?,
            _ => return Err(ApiError::internal("unrouted operation")),
        };
        Ok(json_response(value))
    }
    .await;
    (operation, result)
}

fn parse_query(raw: &str) -> BTreeMap<String, String> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

/// Runs store work. SQLite reads here take microseconds with cached statements, far less
/// than a hop to the blocking pool costs on a small machine (BENCHMARKS.md), so they run
/// in place; the slow part of an update, its commit, goes to the group-commit writer.
async fn store_op<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    f()
}

/// Verifies the request's SigV4 signature and returns its credential.
async fn authenticate(
    state: &Arc<AppState>,
    parts: &axum::http::request::Parts,
    body: &Bytes,
) -> Result<Credential, ApiError> {
    let header = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::not_authorized("missing Authorization header; sign requests with SigV4"))?;
    let auth = sigv4::parse_authorization(header)
        .ok_or_else(|| ApiError::not_authorized("malformed Authorization header; expected AWS4-HMAC-SHA256"))?;
    let store = state.store.clone();
    let key = auth.access_key.clone();
    let cred = store_op(move || Ok(store.credential(&key)?))
        .await?
        .ok_or_else(|| ApiError::not_authorized("The security token included in the request is invalid."))?;
    if let Some(token) = &cred.session_token {
        let presented = parts.headers.get("x-amz-security-token").and_then(|v| v.to_str().ok());
        if presented != Some(token.as_str()) {
            return Err(ApiError::not_authorized(
                "temporary credentials need their session token (X-Amz-Security-Token)",
            ));
        }
    }
    if cred.expires.is_some_and(|e| e < now_secs()) {
        return Err(ApiError::not_authorized("The security token included in the request is expired"));
    }
    let headers = |name: &str| header_values(&parts.headers, name);
    let req = sigv4::Request {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    sigv4::verify(&req, &auth, &cred.secret, "cognito-sync", SystemTime::now())
        .map_err(|e| ApiError::not_authorized(e.0))?;
    Ok(cred)
}

fn header_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
}

/// The pool, if `cred` may act on it; otherwise NotAuthorized (never revealing whether
/// another tenant's pool exists).
async fn authorize_pool(state: &Arc<AppState>, cred: &Credential, pool_id: &str) -> Result<Pool, ApiError> {
    if !limits::is_valid_cognito_id(pool_id) {
        return Err(ApiError::invalid_parameter(format!(
            "IdentityPoolId {pool_id:?} is not of the form region:hex-id"
        )));
    }
    let store = state.store.clone();
    let id = pool_id.to_owned();
    let pool = store_op(move || Ok(store.pool(&id)?)).await?;
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
    state: &Arc<AppState>,
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
    if let Principal::Identity { identity_id: own, .. } = &cred.principal
        && own != identity_id
    {
        return Err(denied());
    }
    let store = state.store.clone();
    let id = identity_id.to_owned();
    match store_op(move || Ok(store.identity_pool(&id)?)).await? {
        Some(p) if p == pool.pool_id => Ok(pool),
        _ => Err(denied()),
    }
}

fn require_developer(cred: &Credential, operation: &str) -> Result<(), ApiError> {
    match cred.principal {
        Principal::Identity { .. } => {
            Err(ApiError::not_authorized(format!("{operation} needs developer credentials, not identity credentials")))
        }
        _ => Ok(()),
    }
}

fn check_dataset_name(name: &str) -> Result<(), ApiError> {
    limits::dataset_name_problem(name).map_or(Ok(()), |p| Err(ApiError::invalid_parameter(p)))
}

fn max_results(query: &BTreeMap<String, String>, default: usize) -> Result<usize, ApiError> {
    match query.get("maxResults") {
        None => Ok(default),
        Some(v) => v.parse::<usize>().ok().filter(|n| (1..=default.max(1024)).contains(n)).ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "maxResults {v:?} must be a whole number from 1 to {}",
                default.max(1024)
            ))
        }),
    }
}

fn offset_token(query: &BTreeMap<String, String>) -> Result<usize, ApiError> {
    match query.get("nextToken") {
        None => Ok(0),
        Some(t) => t
            .parse()
            .map_err(|_| ApiError::invalid_parameter(format!("nextToken {t:?} is not one this service issued"))),
    }
}

fn dataset_json(identity_id: &str, d: &DatasetRow) -> Value {
    json!({
        "IdentityId": identity_id,
        "DatasetName": d.name,
        "CreationDate": d.created,
        "LastModifiedDate": d.modified,
        "LastModifiedBy": d.modified_by,
        "DataStorage": d.data_storage,
        "NumRecords": d.num_records,
    })
}

fn record_json(r: &RecordRow) -> Value {
    let mut v = json!({
        "Key": r.key,
        "SyncCount": r.sync_count,
        "LastModifiedDate": r.modified,
        "LastModifiedBy": r.modified_by,
    });
    if let Some(value) = &r.value {
        v["Value"] = json!(value);
    }
    if let Some(device) = r.device_modified {
        v["DeviceLastModifiedDate"] = json!(device);
    }
    v
}

async fn list_pool_usage(state: &Arc<AppState>, cred: &Credential, query: &BTreeMap<String, String>) -> ApiResult {
    require_developer(cred, "ListIdentityPoolUsage")?;
    let max = max_results(query, 60)?;
    let offset = offset_token(query)?;
    let tenant = match &cred.principal {
        Principal::Developer { tenant } => Some(tenant.clone()),
        _ => None,
    };
    let store = state.store.clone();
    store_op(move || {
        let pools = store.pools(tenant.as_deref())?;
        let mut usages = Vec::new();
        for p in pools.iter().skip(offset).take(max) {
            let (sessions, bytes, modified) = store.pool_usage(&p.pool_id)?;
            usages.push(json!({"IdentityPoolId": p.pool_id, "SyncSessionsCount": sessions, "DataStorage": bytes, "LastModifiedDate": modified}));
        }
        let mut out = json!({"IdentityPoolUsages": usages, "MaxResults": max, "Count": usages.len()});
        if offset + max < pools.len() {
            out["NextToken"] = json!((offset + max).to_string());
        }
        Ok(out)
    })
    .await
}

async fn describe_pool_usage(state: &Arc<AppState>, cred: &Credential, pool_id: &str) -> ApiResult {
    require_developer(cred, "DescribeIdentityPoolUsage")?;
    let pool = authorize_pool(state, cred, pool_id).await?;
    let store = state.store.clone();
    store_op(move || {
        let (sessions, bytes, modified) = store.pool_usage(&pool.pool_id)?;
        Ok(json!({"IdentityPoolUsage": {"IdentityPoolId": pool.pool_id, "SyncSessionsCount": sessions, "DataStorage": bytes, "LastModifiedDate": modified}}))
    })
    .await
}

async fn get_events(state: &Arc<AppState>, cred: &Credential, pool_id: &str) -> ApiResult {
    require_developer(cred, "GetCognitoEvents")?;
    let pool = authorize_pool(state, cred, pool_id).await?;
    let events = match pool.sync_trigger {
        Some(f) => json!({"SyncTrigger": f}),
        None => json!({}),
    };
    Ok(json!({ "Events": events }))
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
        Some((name, v)) => (name, Some(v.parse().ok()?)),
        None => (rest, None),
    };
    let valid =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then(|| (name.to_owned(), version))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SetEventsBody {
    events: BTreeMap<String, String>,
}

async fn set_events(state: &Arc<AppState>, cred: &Credential, pool_id: &str, body: &Bytes) -> ApiResult {
    require_developer(cred, "SetCognitoEvents")?;
    let pool = authorize_pool(state, cred, pool_id).await?;
    let parsed: SetEventsBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_parameter(format!("invalid SetCognitoEvents body: {e}")))?;
    if let Some(other) = parsed.events.keys().find(|k| *k != "SyncTrigger") {
        return Err(ApiError::invalid_parameter(format!("unknown event {other:?}; the only event is SyncTrigger")));
    }
    let mapping = parsed.events.get("SyncTrigger").filter(|v| !v.is_empty()).cloned();
    if let Some(value) = &mapping {
        let (name, version) = parse_function_ref(value).ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "SyncTrigger {value:?} is not a function name or arn:aws:lambda:<region>:<account>:function:<name>[:<version>]"
            ))
        })?;
        let store = state.store.clone();
        let tenant = pool.tenant.clone();
        let exists = store_op(move || Ok(store.function(&tenant, &name, version)?.is_some())).await?;
        if !exists {
            return Err(ApiError::invalid_parameter(format!(
                "no function {value:?} is deployed for this identity pool's tenant"
            )));
        }
    }
    let store = state.store.clone();
    store_op(move || Ok(store.set_sync_trigger(&pool.pool_id, mapping.as_deref())?)).await?;
    Ok(json!({}))
}

async fn describe_identity_usage(
    state: &Arc<AppState>,
    cred: &Credential,
    pool_id: &str,
    identity_id: &str,
) -> ApiResult {
    let pool = authorize_identity(state, cred, pool_id, identity_id).await?;
    let store = state.store.clone();
    let identity = identity_id.to_owned();
    store_op(move || {
        let (count, bytes, modified) = store.identity_usage(&pool.pool_id, &identity)?;
        Ok(json!({"IdentityUsage": {"IdentityId": identity, "IdentityPoolId": pool.pool_id, "LastModifiedDate": modified, "DatasetCount": count, "DataStorage": bytes}}))
    })
    .await
}

async fn list_datasets(
    state: &Arc<AppState>,
    cred: &Credential,
    pool_id: &str,
    identity_id: &str,
    query: &BTreeMap<String, String>,
) -> ApiResult {
    let pool = authorize_identity(state, cred, pool_id, identity_id).await?;
    let max = max_results(query, 20)?;
    let offset = offset_token(query)?;
    let store = state.store.clone();
    let identity = identity_id.to_owned();
    store_op(move || {
        let all = store.datasets(&pool.pool_id, &identity)?;
        let page: Vec<Value> = all.iter().skip(offset).take(max).map(|d| dataset_json(&identity, d)).collect();
        let mut out = json!({"Count": page.len(), "Datasets": page});
        if offset + max < all.len() {
            out["NextToken"] = json!((offset + max).to_string());
        }
        Ok(out)
    })
    .await
}

async fn describe_dataset(
    state: &Arc<AppState>,
    cred: &Credential,
    pool_id: &str,
    identity_id: &str,
    name: &str,
) -> ApiResult {
    check_dataset_name(name)?;
    let pool = authorize_identity(state, cred, pool_id, identity_id).await?;
    let store = state.store.clone();
    let (identity, name) = (identity_id.to_owned(), name.to_owned());
    store_op(move || match store.dataset(&pool.pool_id, &identity, &name)? {
        Some(d) if !d.deleted => Ok(json!({"Dataset": dataset_json(&identity, &d)})),
        _ => Err(ApiError::not_found(format!("dataset {name} does not exist"))),
    })
    .await
}

fn principal_name(cred: &Credential) -> String {
    match &cred.principal {
        Principal::Root => "root".into(),
        Principal::Developer { tenant } => format!("developer:{tenant}"),
        Principal::Identity { identity_id, .. } => identity_id.clone(),
    }
}

async fn delete_dataset(
    state: &Arc<AppState>,
    cred: &Credential,
    pool_id: &str,
    identity_id: &str,
    name: &str,
) -> ApiResult {
    check_dataset_name(name)?;
    let pool = authorize_identity(state, cred, pool_id, identity_id).await?;
    let store = state.store.clone();
    let (identity, name, by) = (identity_id.to_owned(), name.to_owned(), principal_name(cred));
    store_op(move || match store.delete_dataset(&pool.pool_id, &identity, &name, &by)? {
        Some(d) => Ok(json!({"Dataset": dataset_json(&identity, &d)})),
        None => Err(ApiError::not_found(format!("dataset {name} does not exist"))),
    })
    .await
}

fn session_mac(state: &AppState, pool: &str, identity: &str, dataset: &str, expires: i64) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&state.session_key).expect("HMAC takes any key size");
    mac.update(format!("{pool}|{identity}|{dataset}|{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn session_token(state: &AppState, pool: &str, identity: &str, dataset: &str) -> String {
    let expires = now_secs() + state.config.session_ttl_secs;
    format!("{expires}.{}", session_mac(state, pool, identity, dataset, expires))
}

fn check_session_token(
    state: &AppState,
    token: &str,
    pool: &str,
    identity: &str,
    dataset: &str,
) -> Result<(), ApiError> {
    let invalid =
        || ApiError::invalid_parameter("SyncSessionToken is invalid or expired; call ListRecords for a fresh one");
    let (expires, mac) = token.split_once('.').ok_or_else(invalid)?;
    let expires: i64 = expires.parse().map_err(|_| invalid())?;
    let expected = session_mac(state, pool, identity, dataset, expires);
    let same = expected.len() == mac.len() && expected.bytes().zip(mac.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
    if !same || expires < now_secs() {
        return Err(invalid());
    }
    Ok(())
}

async fn list_records(
    state: &Arc<AppState>,
    cred: &Credential,
    pool_id: &str,
    identity_id: &str,
    name: &str,
    query: &BTreeMap<String, String>,
) -> ApiResult {
    check_dataset_name(name)?;
    let pool = authorize_identity(state, cred, pool_id, identity_id).await?;
    let last: i64 = match query.get("lastSyncCount") {
        None => 0,
        Some(v) => v.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::invalid_parameter(format!("lastSyncCount {v:?} must be a whole number, 0 or more"))
        })?,
    };
    let max = max_results(query, 1024)?;
    let offset = offset_token(query)?;
    if let Some(token) = query.get("syncSessionToken") {
        check_session_token(state, token, &pool.pool_id, identity_id, name)?;
    }
    let token = session_token(state, &pool.pool_id, identity_id, name);
    let store = state.store.clone();
    let (identity, name) = (identity_id.to_owned(), name.to_owned());
    store_op(move || {
        let dataset = store.dataset(&pool.pool_id, &identity, &name)?;
        let records = store.records_since(&pool.pool_id, &identity, &name, last)?;
        let page: Vec<Value> = records.iter().skip(offset).take(max).map(record_json).collect();
        let exists = dataset.as_ref().is_some_and(|d| !d.deleted);
        let deleted_after = dataset.as_ref().is_some_and(|d| d.deleted && d.sync_count > last);
        let mut out = json!({
            "Records": page,
            "Count": page.len(),
            "DatasetSyncCount": dataset.as_ref().map_or(0, |d| d.sync_count),
            "DatasetExists": exists,
            "DatasetDeletedAfterRequestedSyncCount": deleted_after,
            "MergedDatasetNames": [],
            "SyncSessionToken": token,
        });
        if let Some(d) = &dataset {
            out["LastModifiedBy"] = json!(d.modified_by);
        }
        if offset + max < records.len() {
            out["NextToken"] = json!((offset + max).to_string());
        }
        Ok(out)
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct UpdateBody {
    device_id: Option<String>,
    #[serde(default)]
    record_patches: Vec<PatchBody>,
    sync_session_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct PatchBody {
    op: Op,
    key: String,
    value: Option<String>,
    sync_count: i64,
    device_last_modified_date: Option<f64>,
}

async fn update_records(
    state: &Arc<AppState>,
    cred: &Credential,
    pool_id: &str,
    identity_id: &str,
    name: &str,
    body: &Bytes,
) -> ApiResult {
    check_dataset_name(name)?;
    let pool = authorize_identity(state, cred, pool_id, identity_id).await?;
    let request: UpdateBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_parameter(format!("invalid UpdateRecords body: {e}")))?;
    let token = request
        .sync_session_token
        .as_deref()
        .ok_or_else(|| ApiError::invalid_parameter("SyncSessionToken is required"))?;
    check_session_token(state, token, &pool.pool_id, identity_id, name)?;
    if let Some(device) = &request.device_id
        && !(1..=256).contains(&device.chars().count())
    {
        return Err(ApiError::invalid_parameter("DeviceId must be 1 to 256 characters"));
    }
    let patches: Vec<Patch> =
        request.record_patches.iter().map(|p| Patch { key: p.key.clone(), op: p.op, value: p.value.clone() }).collect();
    merge::check_patches(&patches).map_err(|e| match e {
        PatchError::InvalidParameter(m) => ApiError::invalid_parameter(m),
        PatchError::LimitExceeded(m) => ApiError::limit_exceeded(m),
    })?;
    if let Some(p) = request.record_patches.iter().find(|p| p.sync_count < 0) {
        return Err(ApiError::invalid_parameter(format!("SyncCount of record {:?} is negative", p.key)));
    }

    let store = state.store.clone();
    let (pid, iid, dname) = (pool.pool_id.clone(), identity_id.to_owned(), name.to_owned());
    let snapshot = store_op(move || Ok(store.snapshot(&pid, &iid, &dname)?)).await?;

    // Optimistic concurrency per record; a patch that changes nothing never conflicts,
    // so a client retrying an applied update is not stuck in a 409 loop.
    for p in &request.record_patches {
        let stored = snapshot.records.get(&p.key);
        let current = stored.map_or(0, |r| r.sync_count);
        let stored_value = stored.and_then(|r| r.value.as_deref());
        let proposed = if p.op == Op::Remove { None } else { p.value.as_deref() };
        if p.sync_count != current && stored_value != proposed {
            return Err(ApiError::conflict(format!(
                "Current SyncCount for: {} is: {current} not: {}",
                p.key, p.sync_count
            )));
        }
    }
    if !snapshot.exists() && snapshot.identity_datasets >= limits::MAX_DATASETS_PER_IDENTITY {
        return Err(ApiError::limit_exceeded(format!(
            "an identity may have at most {} datasets",
            limits::MAX_DATASETS_PER_IDENTITY
        )));
    }

    let stored = snapshot.live();
    let meta = EventMeta {
        region: state.config.region.clone(),
        identity_pool_id: pool.pool_id.clone(),
        identity_id: identity_id.to_owned(),
        dataset_name: name.to_owned(),
    };
    let runs_trigger = matches!(cred.principal, Principal::Identity { .. }) && pool.sync_trigger.is_some();
    let writes = if runs_trigger {
        run_sync_trigger(state, &pool, &meta, stored, &patches).await?
    } else {
        merge::apply_patches(&meta, &stored, &patches).map_err(|e| match e {
            PatchError::InvalidParameter(m) => ApiError::invalid_parameter(m),
            PatchError::LimitExceeded(m) => ApiError::limit_exceeded(m),
        })?
    };

    let device_times: BTreeMap<String, i64> = request
        .record_patches
        .iter()
        .filter_map(|p| Some((p.key.clone(), p.device_last_modified_date? as i64)))
        .collect();
    let update = Update {
        pool: pool.pool_id.clone(),
        identity: identity_id.to_owned(),
        name: name.to_owned(),
        expected: snapshot.sync_count(),
        writes,
        device_modified: device_times,
        by: principal_name(cred),
    };
    let written = state
        .store
        .submit_update(update)
        .await
        .map_err(|_| ApiError::internal("the database writer stopped; the update was not applied"))?
        .map_err(|e| {
            tracing::error!("{e}");
            ApiError::internal("internal error; the update was not applied")
        })?
        .ok_or_else(|| ApiError::conflict(format!("dataset {name} was changed by another update; sync and retry")))?;

    // Patched records the update did not change (a no-op, or a change the trigger
    // dropped) are answered as they stand, so the client learns their state; a key
    // that was never stored comes back with SyncCount 0 and no value.
    let mut records: Vec<Value> = written.iter().map(record_json).collect();
    for p in &request.record_patches {
        if !written.iter().any(|w| w.key == p.key) {
            records.push(match snapshot.records.get(&p.key) {
                Some(r) => record_json(r),
                None => json!({ "Key": p.key, "SyncCount": 0 }),
            });
        }
    }
    Ok(json!({ "Records": records }))
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
    let (name, version) = parse_function_ref(&mapping)
        .ok_or_else(|| ApiError::internal(format!("the pool's SyncTrigger {mapping:?} is malformed")))?;
    let store = state.store.clone();
    let tenant = pool.tenant.clone();
    let fname = name.clone();
    let (version, digest) = store_op(move || Ok(store.function(&tenant, &fname, version)?))
        .await?
        .ok_or_else(|| ApiError::internal(format!("the pool's SyncTrigger function {mapping:?} is not deployed")))?;
    let reservation = state.invoker.reserve(&pool.pool_id).await.map_err(ApiError::from)?;
    let trigger = match state.cached_trigger(&digest) {
        Some(trigger) => trigger,
        None => {
            // Compiling takes tens of milliseconds: keep it off the async workers.
            let st = state.clone();
            let (tenant, fname) = (pool.tenant.clone(), name.clone());
            tokio::task::spawn_blocking(move || st.trigger(&tenant, &fname, version, &digest))
                .await
                .map_err(|e| ApiError::internal(format!("task failed: {e}")))??
        }
    };
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

async fn list_invocations(
    state: &Arc<AppState>,
    cred: &Credential,
    function: &str,
    query: &BTreeMap<String, String>,
) -> ApiResult {
    let Principal::Developer { tenant } = &cred.principal else {
        return Err(ApiError::not_authorized("trigger invocations are readable with developer credentials only"));
    };
    let limit = max_results(query, 100)? as i64;
    let store = state.store.clone();
    let (tenant, function) = (tenant.clone(), function.to_owned());
    store_op(move || {
        let rows = store.invocations(&tenant, &function, limit)?;
        Ok(json!({ "Function": function, "Invocations": rows }))
    })
    .await
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
    }

    #[test]
    fn queries_are_decoded() {
        let q = parse_query("lastSyncCount=3&syncSessionToken=a%2Eb&x");
        assert_eq!(q["lastSyncCount"], "3");
        assert_eq!(q["syncSessionToken"], "a.b");
        assert_eq!(q["x"], "");
    }
}
