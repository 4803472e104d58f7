//! Fuzzing harnesses: each takes arbitrary bytes, drives one surface that untrusted input
//! reaches, and asserts what must hold for every input — no panic, no server fault, and
//! the round trips the code promises. `fuzz/` runs them under libFuzzer (`cargo fuzz`,
//! coverage-guided); the unit tests below replay the committed corpus (`fuzz/corpus`) and
//! a seeded stream of random inputs on stable, so a crash once found stays a test.
//!
//! - [`event_codec`]: the Sync Trigger event's JSON codec;
//! - [`merge`]: patches, the event built from them, a trigger's response, the merge;
//! - [`sigv4`]: the Authorization parser, query and path canonicalisers, sign/verify;
//! - [`api_request`]: a signed rest-json or JSON 1.1 request through the real router and
//!   typed handlers of a server on a scratch store;
//! - [`lift`]: a trigger's output lifted from guest memory the fuzzer writes.

use crate::event::{EventRecord, Op, SyncEvent};
use crate::limits;
use crate::merge::{self, Dataset, EventMeta, Patch};
use crate::server::sigv4;
use arbitrary::{Arbitrary, Unstructured};

/// The event codec: what decodes encodes back to the same event, compact and indented.
pub fn event_codec(data: &[u8]) {
    let Ok(event) = SyncEvent::from_json(data) else {
        let _ = SyncEvent::from_json_input(data);
        return;
    };
    let compact = SyncEvent::from_json(event.to_json().as_bytes()).expect("our compact encoding decodes");
    assert_eq!(compact, event);
    let pretty = SyncEvent::from_json(event.to_json_pretty().as_bytes()).expect("our indented encoding decodes");
    assert_eq!(pretty, event);
    let _ = SyncEvent::from_json_input(data);
}

/// A short string from a small alphabet, so that keys collide and values repeat.
#[derive(Debug)]
struct Small(String);

impl<'a> Arbitrary<'a> for Small {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        const ALPHABET: &[&str] = &["a", "b", "k", "é", "\0", "😀", " ", "."];
        let len = u.int_in_range(0..=4)?;
        let mut s = String::new();
        for _ in 0..len {
            s.push_str(u.choose(ALPHABET)?);
        }
        Ok(Small(s))
    }
}

#[derive(Arbitrary, Debug)]
struct MergeCase {
    stored: Vec<(Small, Small)>,
    patches: Vec<(Small, bool, Option<Small>)>,
    /// What the trigger does to each record of its input: keep, drop, rewrite, remove.
    edits: Vec<(u8, Option<Small>)>,
    added: Vec<(Small, Option<Small>, bool)>,
    /// Which read-only field the trigger changes, if any.
    tamper: u8,
}

/// Merge: an event built from any stored dataset and valid patches holds every stored and
/// patched key; the identity trigger writes exactly the patches; any response either
/// merges into a dataset within the limits or is refused.
pub fn merge(data: &[u8]) {
    let Ok(case) = MergeCase::arbitrary(&mut Unstructured::new(data)) else { return };
    let meta = EventMeta {
        region: "us-east-1".into(),
        identity_pool_id: "us-east-1:00".into(),
        identity_id: "us-east-1:01".into(),
        dataset_name: "d".into(),
    };
    let stored: Dataset = case
        .stored
        .into_iter()
        .filter(|(k, v)| limits::key_problem(&k.0).is_none() && limits::value_problem(&k.0, &v.0).is_none())
        .map(|(k, v)| (k.0, v.0))
        .collect();
    let patches: Vec<Patch> = case
        .patches
        .into_iter()
        .map(|(k, replace, v)| Patch {
            key: k.0,
            op: if replace { Op::Replace } else { Op::Remove },
            value: v.map(|v| v.0),
        })
        .collect();
    if merge::check_patches(&patches).is_err() {
        return;
    }
    let input = merge::build_event(&meta, &stored, &patches);
    let keys: std::collections::BTreeSet<&str> = input.dataset_records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), input.dataset_records.len(), "one record per key");
    // Every stored key, and every patched one but a removal of what is not there.
    let removes_nothing = |p: &Patch| (p.op == Op::Remove || p.value.is_none()) && !stored.contains_key(&p.key);
    let shown = patches.iter().filter(|p| !removes_nothing(p)).map(|p| p.key.as_str());
    for key in stored.keys().map(String::as_str).chain(shown) {
        assert!(keys.contains(key), "{key:?} is missing from the event");
    }
    for p in patches.iter().filter(|p| removes_nothing(p)) {
        assert!(!keys.contains(p.key.as_str()), "removing the absent {:?} is not shown", p.key);
    }
    if let (Ok(identity), Ok(direct)) =
        (merge::merge(&stored, &input, &input), merge::apply_patches(&meta, &stored, &patches))
    {
        assert_eq!(identity, direct, "the identity trigger writes exactly the patches");
    }
    let mut response = input.clone();
    let mut edits = case.edits.into_iter();
    response.dataset_records.retain_mut(|r| match edits.next() {
        None | Some((0, _)) => true,
        Some((1, _)) => false,
        Some((2, value)) => {
            r.new_value = value.map(|v| v.0);
            r.op = Op::Replace;
            true
        }
        Some(_) => {
            r.op = Op::Remove;
            true
        }
    });
    for (key, value, replace) in case.added {
        let op = if replace { Op::Replace } else { Op::Remove };
        response.dataset_records.push(EventRecord { key: key.0, old_value: None, new_value: value.map(|v| v.0), op });
    }
    match case.tamper % 8 {
        1 => response.region.push('x'),
        2 => response.identity_id.push('x'),
        3 => response.dataset_name.push('x'),
        4 => response.version += 1,
        _ => {}
    }
    let checked = merge::check_response(&input, &response);
    let tampered = (1..=4).contains(&(case.tamper % 8));
    match merge::merge(&stored, &input, &response) {
        Ok(writes) => {
            assert!(!tampered, "a changed read-only field is refused");
            assert!(checked.is_ok(), "a response that merges passes the checks");
            let (records, bytes) = merge::size_after(&stored, &writes);
            assert!(records <= limits::MAX_RECORDS && bytes <= limits::MAX_DATASET_BYTES);
            let mut written: Vec<&str> = writes.iter().map(|w| w.key.as_str()).collect();
            written.sort_unstable();
            assert!(written.windows(2).all(|w| w[0] != w[1]), "each key written once");
            for w in &writes {
                if let Some(v) = &w.value {
                    assert!(limits::key_problem(&w.key).is_none() && limits::value_problem(&w.key, v).is_none());
                }
            }
        }
        Err(_) => assert!(!tampered || checked.is_err(), "check_response refuses what merge does"),
    }
}

#[derive(Arbitrary, Debug)]
struct SigV4Case<'a> {
    authorization: &'a str,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    body: &'a [u8],
    secret: &'a str,
    /// A byte of the signed request to change, and what to add to it.
    flip: Option<(u16, u8)>,
}

/// SigV4: parsing never panics; a query's canonical form parses back to the same pairs;
/// path normalisation is idempotent; what the signer signs the verifier accepts, and a
/// change to the body is refused.
pub fn sigv4(data: &[u8]) {
    let Ok(case) = SigV4Case::arbitrary(&mut Unstructured::new(data)) else { return };
    let _ = sigv4::parse_authorization(case.authorization);
    let normalized = sigv4::normalized_path(case.path);
    assert_eq!(sigv4::normalized_path(&normalized), normalized, "normalising twice changes nothing");
    let _ = sigv4::canonical_path(case.path);
    let Ok(query) = sigv4::Query::parse(case.query) else { return };
    let again = sigv4::Query::parse(&query.canonical()).expect("a canonical query parses");
    let sorted = |q: &sigv4::Query| {
        let mut pairs: Vec<(String, Option<String>)> =
            q.names().map(|n| (n.to_owned(), q.get(n).ok().flatten().map(str::to_owned))).collect();
        pairs.sort();
        pairs
    };
    assert_eq!(sorted(&again), sorted(&query), "the canonical query holds the same pairs");

    // Only what an SDK could send is signed: a path of visible ASCII starting with '/'.
    let path_ok = case.path.starts_with('/') && case.path.bytes().all(|b| b.is_ascii_graphic());
    let method_ok = !case.method.is_empty() && case.method.bytes().all(|b| b.is_ascii_uppercase());
    if !path_ok || !method_ok || case.secret.is_empty() {
        return;
    }
    let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
    let creds = ("AKIDFUZZ", case.secret, None);
    let mut headers = sigv4::sign(case.method, "h", case.path, case.query, case.body, creds, "r", "s", now);
    // The signer leaves the Host header to the client, which sends it.
    headers.push(("host".to_owned(), "h".to_owned()));
    let lookup = |name: &str| headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect();
    let auth_header = headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.as_str()).unwrap_or("");
    let auth = sigv4::parse_authorization(auth_header).expect("the signer's header parses");
    let scope = sigv4::Scope { service: "s", region: "r" };
    let req =
        sigv4::Request { method: case.method, raw_path: case.path, query: &query, headers: &lookup, body: case.body };
    if let Err(e) = sigv4::verify(&req, &auth, case.secret, scope, now) {
        panic!("a request this server signed is refused: {e}\n{case:?}");
    }
    if let Some((at, by)) = case.flip
        && !case.body.is_empty()
        && by != 0
    {
        let mut body = case.body.to_vec();
        let i = at as usize % body.len();
        body[i] = body[i].wrapping_add(by);
        let req = sigv4::Request { body: &body, ..req };
        assert!(sigv4::verify(&req, &auth, case.secret, scope, now).is_err(), "a changed body is refused");
    }
}

/// A short JSON value, mostly of the shapes the APIs take.
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
    /// Which credential signs: developer, root, the identity's own, none.
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
    use crate::server::{self, AppState, ServerConfig, sigv4};
    use axum::body::Body;
    use std::sync::{Arc, LazyLock};
    use tower::ServiceExt as _;

    /// A server on a scratch store with one tenant, pool, identity and dataset.
    struct Fixture {
        tokio: tokio::runtime::Runtime,
        router: axum::Router,
        pool: String,
        identity: String,
        developer: (String, String),
        identity_creds: (String, String, String),
        _dir: tempfile::TempDir,
    }

    static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
        let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio");
        // On a memory file system where there is one: each write is an fsync.
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).expect("scratch dir");
        let fixture = tokio.block_on(async {
            let store =
                server::store::open(&server::store::Database::Sqlite(dir.path().join("db"))).await.expect("store");
            let runtime = Arc::new(
                crate::Runtime::new(crate::RuntimeConfig {
                    compiler: crate::sandbox::Compiler::InProcess,
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
            let (ak, sk) = store.create_tenant("fuzz").await.expect("tenant").expect("new tenant");
            let settings = server::store::PoolSettings {
                developer_provider_name: Some("login.fuzz.app".into()),
                ..Default::default()
            };
            let pool = store.create_pool("fuzz", "us-east-1", "fuzz", true, &settings).await.expect("pool").pool_id;
            let identity = store.create_identity(&pool, "us-east-1").await.expect("identity");
            let (iak, isk, token, _) =
                store.issue_identity_credentials(&pool, &identity, false, 86_400).await.expect("credentials");
            let state = AppState::new(config, store, runtime).await.expect("state");
            state.init_oidc("127.0.0.1:9".parse().expect("address")).await.expect("signing key");
            (server::http::router(&state), pool, identity, (ak, sk), (iak, isk, token))
        });
        let (router, pool, identity, developer, identity_creds) = fixture;
        Fixture { tokio, router, pool, identity, developer, identity_creds, _dir: dir }
    });

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
            None => serde_json::to_vec(&case.body.0).unwrap_or_default(),
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
        let service = if target.is_some() { "cognito-identity" } else { "cognito-sync" };
        let (ak, sk, token) = match case.signer % 4 {
            0 | 1 => (f.developer.0.as_str(), f.developer.1.as_str(), None),
            2 => (f.identity_creds.0.as_str(), f.identity_creds.1.as_str(), Some(f.identity_creds.2.as_str())),
            _ => ("", "", None),
        };
        let mut request = axum::http::Request::builder().method(method).uri(if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{query}")
        });
        // Signed for the Host it is sent with (the signer leaves that header to the client).
        request = request.header("host", "fuzz");
        if !ak.is_empty() {
            let now = std::time::SystemTime::now();
            for (k, v) in sigv4::sign(method, "fuzz", &path, &query, &body, (ak, sk, token), "us-east-1", service, now)
            {
                request = request.header(k, v);
            }
        }
        if let Some(target) = &target {
            request = request.header("x-amz-target", target).header("content-type", "application/x-amz-json-1.1");
        }
        request = request.header("content-length", body.len());
        let Ok(mut request) = request.body(Body::from(body)) else { return (0, String::new()) };
        request.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 9))));
        let response = f.tokio.block_on(async {
            let response = f.router.clone().oneshot(request).await.expect("the router answers");
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = axum::body::to_bytes(response.into_body(), 64 << 20).await.expect("the body is read");
            (status, headers, bytes)
        });
        let (status, headers, bytes) = response;
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

/// A trigger's output lifted from guest memory that the fuzzer writes: the guest copies
/// the input event's `eventType` (hex, so any bytes) to its memory at 0 and answers with a
/// pointer the first word chooses. Whatever the memory holds, the lift gives a valid
/// response or a named error within the output caps, never a panic.
pub fn lift(data: &[u8]) {
    let fixture = &*lift::FIXTURE;
    let event = SyncEvent {
        version: 2,
        event_type: hex::encode(&data[..data.len().min(lift::MEMORY)]),
        region: "r".into(),
        identity_pool_id: "p".into(),
        identity_id: "i".into(),
        dataset_name: "d".into(),
        dataset_records: vec![EventRecord {
            key: "k".into(),
            old_value: None,
            new_value: Some("v".into()),
            op: Op::Replace,
        }],
    };
    let invocation = fixture.runtime.invoke(&fixture.trigger, &event);
    if let Ok(response) = &invocation.result {
        let limits = &fixture.runtime.config().limits;
        let strings: usize = [
            &response.event_type,
            &response.region,
            &response.identity_pool_id,
            &response.identity_id,
            &response.dataset_name,
        ]
        .iter()
        .map(|s| s.len())
        .sum::<usize>()
            + response
                .dataset_records
                .iter()
                .map(|r| {
                    r.key.len()
                        + r.old_value.as_ref().map_or(0, String::len)
                        + r.new_value.as_ref().map_or(0, String::len)
                })
                .sum::<usize>();
        assert!(strings <= limits.max_output_bytes, "the output cap holds");
        assert!(response.dataset_records.len() <= limits.max_output_records, "the record cap holds");
    }
}

mod lift {
    use std::sync::LazyLock;

    /// Bytes of guest memory the fuzzer writes (the first page).
    pub const MEMORY: usize = 65536;

    pub struct Fixture {
        pub runtime: crate::Runtime,
        pub trigger: crate::Trigger,
    }

    pub static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
        let runtime = crate::Runtime::new(crate::RuntimeConfig {
            compiler: crate::sandbox::Compiler::InProcess,
            pool_instances: 2,
            ..Default::default()
        })
        .expect("runtime");
        let wasm = wat::parse_str(GUEST).expect("the guest assembles");
        let trigger = runtime.load(&wasm).expect("the guest loads");
        Fixture { runtime, trigger }
    });

    /// The guest: `handle` hex-decodes `eventType` into memory at 0 and returns the
    /// pointer its first word names (kept in the first page and aligned, so the lift, not
    /// the bounds check, is what runs).
    const GUEST: &str = r#"
(component
  (core module $m
    (memory (export "memory") 2)
    (global $heap (mut i32) (i32.const 65536))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
      (global.set $heap (i32.add (local.get $p) (local.get 3)))
      (block $fits
        (br_if $fits (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (br_if $fits (i32.ne (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
          (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))) (i32.const -1)))
        unreachable)
      (local.get $p))
    (func $nibble (param $c i32) (result i32)
      (if (result i32) (i32.le_u (local.get $c) (i32.const 57))
        (then (i32.sub (local.get $c) (i32.const 48)))
        (else (i32.sub (local.get $c) (i32.const 87)))))
    (func (export "handle")
      (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (local $i i32) (local $n i32)
      (local.set $n (i32.shr_u (local.get 2) (i32.const 1)))
      (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (local.set $n (i32.const 65536))))
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (i32.store8 (local.get $i)
            (i32.or
              (i32.shl (call $nibble (i32.load8_u (i32.add (local.get 1) (i32.shl (local.get $i) (i32.const 1)))))
                       (i32.const 4))
              (call $nibble (i32.load8_u (i32.add (local.get 1)
                (i32.add (i32.shl (local.get $i) (i32.const 1)) (i32.const 1)))))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (i32.and (i32.load (i32.const 0)) (i32.const 0xfffc))))
  (core instance $i (instantiate $m))
  (type $op-def (enum "replace" "remove"))
  (export $op "op" (type $op-def))
  (type $record-def (record (field "key" string) (field "old-value" (option string))
                            (field "new-value" (option string)) (field "op" $op)))
  (export $record "dataset-record" (type $record-def))
  (type $event-def (record (field "version" u32) (field "event-type" string) (field "region" string)
                           (field "identity-pool-id" string) (field "identity-id" string)
                           (field "dataset-name" string) (field "records" (list $record))))
  (export $event "sync-event" (type $event-def))
  (type $error-def (variant (case "reject" string)))
  (export $error "trigger-error" (type $error-def))
  (func (export "handle") (param "event" $event) (result (result $event (error $error)))
    (canon lift (core func $i "handle") (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))
"#;
}

/// Replays a target's committed corpus, then `random` seeded random inputs of up to `max`
/// bytes (`SYNCTRIG_FUZZ_RANDOM` and `SYNCTRIG_FUZZ_SEED` override the count and the seed):
/// the stable-toolchain run of a target (the unit tests, and `tests/fuzz.sh` without
/// nightly).
pub fn replay(target: &str, run: fn(&[u8]), random: usize, max: usize) -> usize {
    let random = std::env::var("SYNCTRIG_FUZZ_RANDOM").ok().and_then(|s| s.parse().ok()).unwrap_or(random);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut ran = 0;
    let mut entries: Vec<_> =
        std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    entries.sort();
    for path in entries {
        let bytes = std::fs::read(&path).expect("a corpus file reads");
        run(&bytes);
        ran += 1;
    }
    let seed: u64 = std::env::var("SYNCTRIG_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let mut state = seed;
    for _ in 0..random {
        let mut next = || {
            // SplitMix64: a fixed, fast stream of bytes.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let len = (next() as usize) % max;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        run(&bytes);
        ran += 1;
    }
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_codec_corpus_and_random_inputs_hold() {
        assert!(replay("event_codec", event_codec, 2000, 512) > 0);
    }

    #[test]
    fn the_merge_corpus_and_random_inputs_hold() {
        assert!(replay("merge", merge, 3000, 512) > 0);
    }

    #[test]
    fn the_sigv4_corpus_and_random_inputs_hold() {
        assert!(replay("sigv4", sigv4, 3000, 512) > 0);
    }

    #[test]
    fn the_api_corpus_and_random_inputs_hold() {
        assert!(replay("api_request", api_request, 300, 512) > 0);
    }

    #[test]
    fn the_api_harness_reaches_the_handlers() {
        let describe = crate::server::sync_operations()
            .position(|(m, t)| m == "GET" && t.ends_with("/datasets/{DatasetName}"))
            .unwrap();
        let case = ApiCase {
            operation: describe as u8,
            labels: [0; 4],
            query: vec![],
            body: Json(serde_json::Value::Null),
            raw_body: None,
            signer: 0,
        };
        let (status, body) = api::run(case);
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("ResourceNotFoundException"), "{body}");
    }

    #[test]
    fn the_lift_corpus_and_random_inputs_hold() {
        assert!(replay("lift", lift, 200, 2048) > 0);
    }

    #[test]
    fn the_lift_guest_answers_with_what_its_memory_holds() {
        // The return area at 8: `err` (1), case `reject` (0) at 12, its string at 16 (a
        // pointer to 24 and a length of 2), and the string's bytes at 24.
        let mut memory = vec![0u8; 32];
        memory[0..4].copy_from_slice(&8u32.to_le_bytes());
        memory[8] = 1;
        memory[16..20].copy_from_slice(&24u32.to_le_bytes());
        memory[20..24].copy_from_slice(&2u32.to_le_bytes());
        memory[24..26].copy_from_slice(b"hi");
        let fixture = &*lift::FIXTURE;
        let mut event = SyncEvent::from_json(
            br#"{"version":2,"eventType":"","region":"r","identityPoolId":"p",
            "identityId":"i","datasetName":"d","datasetRecords":{}}"#,
        )
        .unwrap();
        event.event_type = hex::encode(&memory);
        let out = fixture.runtime.invoke(&fixture.trigger, &event);
        assert_eq!(out.result, Err(crate::Error::Rejected { reason: "hi".into() }));
        // The committed seed of a whole event (one record, k = v) lifts as written.
        let seed = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/lift/ok-one-record")).unwrap();
        event.event_type = hex::encode(&seed);
        let response = fixture.runtime.invoke(&fixture.trigger, &event).result.unwrap();
        assert_eq!((response.event_type.as_str(), response.dataset_name.as_str()), ("SyncTrigger", "d"));
        assert_eq!(
            response.dataset_records,
            [EventRecord { key: "k".into(), old_value: None, new_value: Some("v".into()), op: Op::Replace }]
        );
    }
}
