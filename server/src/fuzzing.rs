//! The API fuzzing harness (`fuzz/fuzz_targets/api_request.rs`): a signed rest-json or
//! JSON 1.1 request of any operation through the real router and handlers of a server on a
//! scratch SQLite store. See `synctrig_runtime::fuzzing` for how the targets run.

use arbitrary::{Arbitrary, Unstructured};

#[derive(Debug)]
struct Json(serde_json::Value);

impl<'a> Arbitrary<'a> for Json {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        fn value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<serde_json::Value> {
            use serde_json::Value;
            const NAMES: &[&str] = &[
                "IdentityPoolId",
                "IdentityId",
                "DatasetName",
                "SyncSessionToken",
                "RecordPatches",
                "Op",
                "Key",
                "Value",
                "SyncCount",
                "DeviceLastModifiedDate",
                "Events",
                "SyncTrigger",
                "MaxResults",
                "NextToken",
                "Logins",
                "IdentityPoolName",
                "AllowUnauthenticatedIdentities",
                "DeveloperProviderName",
                "DeveloperUserIdentifier",
                "IdentityIdsToDelete",
                "SupportedLoginProviders",
                "AccountId",
                "CognitoIdentityProviders",
                "ProviderName",
                "ClientId",
                "TokenDuration",
                "HideDisabled",
                "LoginsToRemove",
                "SourceUserIdentifier",
                "DestinationUserIdentifier",
                "DeviceId",
            ];
            const STRINGS: &[&str] = &[
                "",
                "replace",
                "remove",
                "us-east-1:00000000-0000-0000-0000-000000000000",
                "login.fuzz.app",
                "ada",
                "game",
                ".",
                "..",
                "\0",
                "é😀",
                "sample",
                "cognito-identity.amazonaws.com",
                "POOL",
                "IDENTITY",
                "TOKEN",
            ];
            Ok(match u.int_in_range(0..=7)? {
                0 => Value::Null,
                1 => Value::Bool(u.arbitrary()?),
                2 => Value::from(u.arbitrary::<i64>()?),
                3 => Value::from(u.int_in_range(-2..=70)?),
                4 => Value::String(u.choose(STRINGS)?.to_string()),
                5 => Value::String(u.arbitrary::<String>()?),
                6 if depth < 4 => {
                    let n = u.int_in_range(0..=3)?;
                    Value::Array((0..n).map(|_| value(u, depth + 1)).collect::<arbitrary::Result<_>>()?)
                }
                _ if depth < 4 => {
                    let n = u.int_in_range(0..=4)?;
                    let mut map = serde_json::Map::new();
                    for _ in 0..n {
                        let key = if u.ratio(7, 8)? { u.choose(NAMES)?.to_string() } else { u.arbitrary()? };
                        map.insert(key, value(u, depth + 1)?);
                    }
                    Value::Object(map)
                }
                _ => Value::Null,
            })
        }
        value(u, 0).map(Json)
    }
}

/// A query parameter: mostly one the APIs read, with a value of the kinds they take.
#[derive(Debug)]
struct QueryPair(String, String);

impl<'a> Arbitrary<'a> for QueryPair {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        const NAMES: &[&str] = &["maxResults", "nextToken", "lastSyncCount", "syncSessionToken", "x-id"];
        const VALUES: &[&str] = &["0", "1", "-1", "20", "64", "1025", "99999999999", "abc", "", "MA", "1.5"];
        let name = if u.ratio(7, 8)? { u.choose(NAMES)?.to_string() } else { u.arbitrary()? };
        let value = if u.ratio(3, 4)? { u.choose(VALUES)?.to_string() } else { u.arbitrary()? };
        Ok(QueryPair(name, value))
    }
}

#[derive(Arbitrary, Debug)]
struct ApiCase<'a> {
    /// Which operation: an index into the two APIs' operations.
    operation: u8,
    /// Which real resource (or none) each URI label names.
    labels: [u8; 4],
    query: Vec<QueryPair>,
    body: Json,
    /// Raw bytes instead of the JSON body.
    raw_body: Option<&'a [u8]>,
    /// Which credential signs: the developer's (half the time), the identity's own, none.
    signer: u8,
}

/// A signed request of either API through the real router and handlers of a server on a
/// scratch SQLite store: whatever the input, the answer is a well-formed API answer, and
/// never a server fault (5xx).
pub fn api_request(data: &[u8]) {
    let Ok(case) = ApiCase::arbitrary(&mut Unstructured::new(data)) else { return };
    api::run(case);
}

mod api {
    use super::ApiCase;
    use crate::{self as server, AppState, ServerConfig};
    use axum::body::Body;
    use std::sync::{Arc, LazyLock};
    use synctrig_sigv4 as sigv4;
    use tower::ServiceExt as _;

    /// A server on a scratch store with one tenant and pool, a guest identity with a
    /// dataset `game`, and a developer user `ada`. A body's strings `POOL`, `IDENTITY` and
    /// `TOKEN` are replaced with the pool's id, the identity's and a fresh SyncSessionToken
    /// of `game`, so that the fuzzer reaches what lies behind them.
    struct Fixture {
        tokio: tokio::runtime::Runtime,
        router: axum::Router,
        pool: String,
        identity: String,
        developer: Creds,
        identity_creds: Creds,
        _dir: tempfile::TempDir,
    }

    /// (access key, secret, session token).
    type Creds = (String, String, Option<String>);

    /// A request as the harness sends it.
    struct Request<'a> {
        method: &'a str,
        path: &'a str,
        query: &'a str,
        /// `X-Amz-Target` of a Cognito Identity call.
        target: Option<&'a str>,
        body: Vec<u8>,
        creds: Option<&'a Creds>,
    }

    /// Sends a request signed as an SDK signs it: (status, headers, body).
    async fn send(router: &axum::Router, r: Request<'_>) -> (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let service = if r.target.is_some() { "cognito-identity" } else { "cognito-sync" };
        let uri = if r.query.is_empty() { r.path.to_owned() } else { format!("{}?{}", r.path, r.query) };
        // Signed for the Host it is sent with (the signer leaves that header to the client).
        let mut request = axum::http::Request::builder().method(r.method).uri(uri).header("host", "fuzz");
        if let Some((ak, sk, token)) = r.creds {
            let now = std::time::SystemTime::now();
            let creds = (ak.as_str(), sk.as_str(), token.as_deref());
            for (k, v) in sigv4::sign(r.method, "fuzz", r.path, r.query, &r.body, creds, "us-east-1", service, now) {
                request = request.header(k, v);
            }
        }
        if let Some(target) = r.target {
            request = request.header("x-amz-target", target).header("content-type", "application/x-amz-json-1.1");
        }
        request = request.header("content-length", r.body.len());
        let Ok(mut request) = request.body(Body::from(r.body)) else {
            return (axum::http::StatusCode::BAD_REQUEST, Default::default(), Vec::new());
        };
        request.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 9))));
        let response = router.clone().oneshot(request).await.expect("the router answers");
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20).await.expect("the body is read");
        (status, headers, bytes.to_vec())
    }

    fn dataset_path(f: &Fixture, name: &str) -> String {
        format!("/identitypools/{}/identities/{}/datasets/{name}", percent_encode(&f.pool), percent_encode(&f.identity))
    }

    /// A fresh SyncSessionToken of the fixture's dataset `game`.
    async fn session_token(f: &Fixture) -> String {
        let path = format!("{}/records", dataset_path(f, "game"));
        let request = Request {
            method: "GET",
            path: &path,
            query: "",
            target: None,
            body: vec![],
            creds: Some(&f.identity_creds),
        };
        let (_, _, body) = send(&f.router, request).await;
        let listed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        listed["SyncSessionToken"].as_str().unwrap_or("").to_owned()
    }

    static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
        let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio");
        // On a memory file system where there is one: each write is an fsync.
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).expect("scratch dir");
        let mut fixture = tokio.block_on(async {
            let store =
                synctrig_store::open(&synctrig_store::Database::Sqlite(dir.path().join("db"))).await.expect("store");
            let runtime = Arc::new(
                synctrig_runtime::Runtime::new(synctrig_runtime::RuntimeConfig {
                    compiler: synctrig_runtime::sandbox::Compiler::InProcess,
                    pool_instances: 2,
                    ..Default::default()
                })
                .expect("runtime"),
            );
            let mut config = ServerConfig::default();
            // Throttling would hide the paths behind it.
            let unlimited = server::admission::Rate { per_second: 1_000_000, burst: 1_000_000 };
            config.admission.identity_calls_per_client = unlimited;
            config.admission.identity_calls_per_pool = unlimited;
            let synctrig_store::AccessKeys { access_key: ak, secret: sk } =
                store.create_tenant("fuzz").await.expect("tenant").expect("new tenant");
            let settings = synctrig_store::PoolSettings {
                developer_provider_name: Some("login.fuzz.app".into()),
                ..Default::default()
            };
            let pool = store.create_pool("fuzz", "us-east-1", "fuzz", true, &settings).await.expect("pool").pool_id;
            let identity = store.create_identity(&pool, "us-east-1").await.expect("identity");
            let synctrig_store::IssuedCredentials { access_key: iak, secret: isk, session_token: token, .. } =
                store.issue_identity_credentials(&pool, &identity, false, 86_400).await.expect("credentials");
            let state = AppState::new(config, store, runtime).await.expect("state");
            state.init_oidc("127.0.0.1:9".parse().expect("address")).await.expect("signing key");
            Fixture {
                tokio: tokio::runtime::Builder::new_current_thread().build().expect("placeholder runtime"),
                router: server::http::router(&state),
                pool,
                identity,
                developer: (ak, sk, None),
                identity_creds: (iak, isk, Some(token)),
                _dir: tempfile::tempdir().expect("placeholder dir"),
            }
        });
        tokio.block_on(async {
            // The dataset `game` with a record, and the developer user `ada`.
            let token = session_token(&fixture).await;
            let body = serde_json::json!({"SyncSessionToken": token,
                "RecordPatches": [{"Op": "replace", "Key": "k", "Value": "v", "SyncCount": 0}]});
            let path = dataset_path(&fixture, "game");
            let update = Request {
                method: "POST",
                path: &path,
                query: "",
                target: None,
                body: body.to_string().into_bytes(),
                creds: Some(&fixture.identity_creds),
            };
            assert!(send(&fixture.router, update).await.0.is_success(), "the fixture's dataset is made");
            let body = serde_json::json!({"IdentityPoolId": fixture.pool, "Logins": {"login.fuzz.app": "ada"}});
            let token = Request {
                method: "POST",
                path: "/",
                query: "",
                target: Some("AWSCognitoIdentityService.GetOpenIdTokenForDeveloperIdentity"),
                body: body.to_string().into_bytes(),
                creds: Some(&fixture.developer),
            };
            assert!(send(&fixture.router, token).await.0.is_success(), "the fixture's developer user is made");
        });
        fixture.tokio = tokio;
        fixture._dir = dir;
        fixture
    });

    /// The body with its placeholders replaced (see [`Fixture`]).
    fn fill(value: &mut serde_json::Value, f: &Fixture, token: &mut Option<String>) {
        match value {
            serde_json::Value::String(s) if s == "POOL" => *s = f.pool.clone(),
            serde_json::Value::String(s) if s == "IDENTITY" => *s = f.identity.clone(),
            serde_json::Value::String(s) if s == "TOKEN" => {
                *s = token.get_or_insert_with(|| f.tokio.block_on(session_token(f))).clone();
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| fill(v, f, token)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| fill(v, f, token)),
            _ => {}
        }
    }

    /// Sends the case's request; answers its status and body (after the checks).
    pub(super) fn run(case: ApiCase) -> (u16, String) {
        let f = &*FIXTURE;
        let sync_ops: Vec<(&str, &str)> = server::sync_operations().collect();
        let identity_ops: Vec<&str> = server::identity_operations().collect();
        let index = case.operation as usize % (sync_ops.len() + identity_ops.len());
        // Each label names the fixture's resource (most often: that is where the handlers'
        // work is), a function, nothing, or another id.
        let values = [f.pool.as_str(), f.identity.as_str(), "game", "device"];
        let label = |i: usize| match case.labels[i % 4] % 8 {
            0..=4 => values[i.min(3)],
            5 => "sample",
            6 => "",
            _ => "us-east-1:0a",
        };
        let body = match case.raw_body {
            Some(raw) => raw.to_vec(),
            None => {
                let mut body = case.body.0.clone();
                fill(&mut body, f, &mut None);
                serde_json::to_vec(&body).unwrap_or_default()
            }
        };
        let (method, path, query, target) = if index < sync_ops.len() {
            let (method, template) = sync_ops[index];
            let mut i = 0;
            let path: Vec<String> = template
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        i += 1;
                        percent_encode(label(i - 1))
                    } else {
                        s.to_owned()
                    }
                })
                .collect();
            let query: Vec<String> = case
                .query
                .iter()
                .take(4)
                .map(|q| format!("{}={}", percent_encode(&q.0), percent_encode(&q.1)))
                .collect();
            (method, path.join("/"), query.join("&"), None)
        } else {
            let name = identity_ops[index - sync_ops.len()];
            ("POST", "/".to_owned(), String::new(), Some(format!("AWSCognitoIdentityService.{name}")))
        };
        let creds = match case.signer % 4 {
            0 | 1 => Some(&f.developer),
            2 => Some(&f.identity_creds),
            _ => None,
        };
        let request = Request { method, path: &path, query: &query, target: target.as_deref(), body, creds };
        let (status, headers, bytes) = f.tokio.block_on(send(&f.router, request));
        let text = String::from_utf8_lossy(&bytes);
        assert!(status.as_u16() < 500, "{method} {path}?{query} {target:?}: a server fault: {status} {text}");
        if !status.is_success() {
            let error: serde_json::Value = serde_json::from_slice(&bytes).expect("an error is JSON");
            let name = error["__type"].as_str().expect("an error has a __type");
            assert_eq!(headers.get("x-amzn-errortype").and_then(|v| v.to_str().ok()), Some(name));
        }
        (status.as_u16(), text.into_owned())
    }

    fn percent_encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synctrig_runtime::fuzzing::replay;

    #[test]
    fn the_api_corpus_and_random_inputs_hold() {
        assert!(replay("api_request", api_request, 300, 512) > 0);
    }

    #[test]
    fn the_api_harness_reaches_the_handlers() {
        let describe =
            crate::sync_operations().position(|(m, t)| m == "GET" && t.ends_with("/datasets/{DatasetName}")).unwrap();
        let case = ApiCase {
            operation: describe as u8,
            labels: [0; 4],
            query: vec![],
            body: Json(serde_json::Value::Null),
            raw_body: None,
            signer: 0,
        };
        let (status, body) = api::run(case);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"DatasetName\":\"game\""), "{body}");
        // A placeholder token reaches UpdateRecords' writes.
        let update =
            crate::sync_operations().position(|(m, t)| m == "POST" && t.ends_with("/datasets/{DatasetName}")).unwrap();
        // A key of its own: the corpus replayed in this process may have written others.
        let key = format!("harness-{}", std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_nanos());
        let body = serde_json::json!({"SyncSessionToken": "TOKEN",
            "RecordPatches": [{"Op": "replace", "Key": key, "Value": "w", "SyncCount": 0}]});
        let case = ApiCase {
            operation: update as u8,
            labels: [0; 4],
            query: vec![],
            body: Json(body),
            raw_body: None,
            signer: 2,
        };
        let (status, body) = api::run(case);
        assert_eq!(status, 200, "{body}");
    }
}
