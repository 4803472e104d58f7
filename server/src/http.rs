//! The HTTP layer: connections under admission control with a header-read timeout,
//! request bodies read under a deadline before a request takes one of the server's
//! request slots, a request id on every answer, CORS for configured origins, then
//! routing to Cognito Identity (JSON 1.1) or Cognito Sync (rest-json, SigV4).

use super::admission::SMALL_BODY_BYTES;
use super::error::ApiError;
use crate::state::AppState;
use crate::{auth, call, console, identity, model, routes};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use synctrig_sigv4::Query;
use tokio::net::TcpListener;
use tower::ServiceExt as _;
use tracing::Instrument as _;

/// The header that carries a response's request id, as AWS services send it.
pub const REQUEST_ID: &str = "x-amzn-RequestId";

/// Serves the API on `listener` until `shutdown` resolves, then finishes the requests
/// in flight (for at most `shutdown_grace`).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        state.init_oidc(addr).await?;
    }
    let app = router(&state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // The header timeout also ends idle keep-alive connections: a connection that never
    // finishes its headers holds nothing for long.
    http.timer(TokioTimer::new()).header_read_timeout(state.config.header_timeout);
    let janitor = tokio::spawn(janitor(state.clone()));
    let releases = tokio::spawn(state.releases.clone().run());
    let publisher = state.config.broker.clone().map(|broker| {
        tokio::spawn(crate::streams::publisher::run(state.store.clone(), broker, state.stream_metrics.clone()))
    });
    if let Err(e) = state.prefetch_triggers().await {
        tracing::warn!("cannot list the pools' triggers to compile at start-up: {}", e.message);
    }
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: back off rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(permit) = state.admission.connect(peer.ip()) else {
            state.metrics.refused_connection();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(client = %peer, "connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    janitor.abort();
    releases.abort();
    if let Some(publisher) = publisher {
        // What it did not publish stays in the outbox, for the next round of any node.
        publisher.abort();
    }
    // What this node counted since the last write still counts.
    state.releases.flush().await;
    if tokio::time::timeout(state.config.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after {:?}; stopping anyway", state.config.shutdown_grace);
    }
    // The next start then reads no log.
    if let Err(e) = state.store.checkpoint().await {
        tracing::warn!("cannot checkpoint the database's log at shutdown: {e}");
    }
    Ok(())
}

/// Sweeps expired credentials, stored update answers and idle rate-limit state, and
/// keeps the database's log short.
async fn janitor(state: Arc<AppState>) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        state.store.submit_purge();
        state.admission.sweep();
        match state.store.checkpoint().await {
            Ok(true) => {}
            Ok(false) => tracing::debug!("the database's log is in use: checkpointed next time"),
            Err(e) => tracing::warn!("cannot checkpoint the database's log: {e}"),
        }
    }
}

/// The routes and, around them, the layers every request passes (outermost first): a
/// request id, CORS, observation (the client's address, a log span, metrics), the body
/// (bounded, read under a deadline, reserved when large), a request slot. The console,
/// metrics and OpenID documents have routes of their own; everything else is a call of
/// Cognito Identity or Cognito Sync ([`api`]).
pub(crate) fn router(state: &Arc<AppState>) -> axum::Router {
    use axum::middleware::from_fn_with_state;
    use axum::routing::{any, get};
    let app = axum::Router::new()
        // Other methods on these paths are API calls, as they were before these had routes
        // (a signed call there is answered UnknownOperationException).
        .route("/metrics", get(metrics).head(api).fallback(api))
        .route("/.well-known/", get(no_document).head(api).fallback(api))
        .route("/.well-known/{*document}", get(well_known).head(api).fallback(api))
        .route("/console", any(console))
        .route("/console/", any(console))
        .route("/console/{*path}", any(console))
        .fallback(api)
        .layer(from_fn_with_state(state.clone(), request_slot))
        .layer(from_fn_with_state(state.clone(), bounded_body))
        // The body layer enforces the server's own limit; axum's default would cut at 2 MB.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(from_fn_with_state(state.clone(), observe))
        .with_state(state.clone());
    let app = match cors_layer(&state.config.cors_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    // Outermost, so that what the CORS layer answers itself carries an id too.
    app.layer(axum::middleware::from_fn(with_request_id))
}

/// The operation a response answered, for the metrics and the log.
#[derive(Clone, Copy)]
struct Operation(&'static str);

/// `response`, marked as the answer of `operation`.
fn answered(operation: &'static str, mut response: Response) -> Response {
    response.extensions_mut().insert(Operation(operation));
    response
}

/// The client's address ([`client_address`]), for the layers and handlers inside.
#[derive(Clone, Copy)]
struct Client(IpAddr);

/// A request's id, for its log lines.
#[derive(Clone)]
struct RequestId(String);

async fn with_request_id(mut request: Request, next: axum::middleware::Next) -> Response {
    let id = new_request_id();
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(id) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

/// CORS for browser clients (the JavaScript SDK, the Cognito Sync Manager): preflights
/// are answered for the configured origins, and the headers the SDKs read are exposed.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([
                header::HeaderName::from_static("x-amzn-requestid"),
                header::HeaderName::from_static("x-amzn-errortype"),
                header::HeaderName::from_static("x-amz-request-id"),
                header::DATE,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// A fresh request id in the UUID form AWS uses.
fn new_request_id() -> String {
    let h = synctrig_store::random_hex(16);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The client's address: the peer's, or behind a trusted proxy the last address of the
/// `X-Forwarded-For` it appended.
fn client_address(state: &AppState, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !state.admission.is_trusted_proxy(peer) {
        return peer;
    }
    let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).next_back();
    forwarded.and_then(|v| v.rsplit(',').next()).and_then(|a| a.trim().parse().ok()).unwrap_or(peer)
}

/// Every request: its client, its log span, its time and outcome counted.
async fn observe(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let client = client_address(&state, peer.ip(), request.headers());
    request.extensions_mut().insert(Client(client));
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        client = %client,
        method = %request.method(),
        path = %request.uri().path(),
        operation = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    let operation = response.extensions().get::<Operation>().map_or("Unknown", |op| op.0);
    span.record("operation", operation);
    let status = response.status().as_u16();
    span.in_scope(|| tracing::debug!(status, "answered"));
    state.metrics.request(operation, status, started.elapsed().as_secs_f64());
    response
}

/// An error answered before routing, in the protocol of the API called.
fn refuse(parts: &axum::http::request::Parts, e: ApiError) -> Response {
    answered("Unknown", if is_identity_call(parts) { identity_error(e) } else { e.into_response() })
}

/// Reads the request's body, bounded: a large body is read only once its bytes are
/// reserved, and one of unknown length may be small only, so the bodies in memory are
/// bounded per address and in all. It is read before a request slot is taken, so slow
/// senders hold a connection (capped per client) but never a slot.
async fn bounded_body(
    State(state): State<Arc<AppState>>,
    Extension(Client(client)): Extension<Client>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let max = state.config.max_body_bytes;
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let (limit, _budget) = match declared {
        Some(n) if n > max => {
            let e = ApiError::limit_exceeded(format!("request body is {n} bytes, over the limit of {max} bytes"));
            return close(refuse(&parts, e));
        }
        Some(n) if n > SMALL_BODY_BYTES => match state.admission.reserve_body(client, n) {
            Ok(permit) => (n, Some(permit)),
            Err(e) => return close(refuse(&parts, e)),
        },
        Some(n) => (n, None),
        None => (SMALL_BODY_BYTES, None),
    };
    let body = match tokio::time::timeout(state.config.body_timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            let e = ApiError::limit_exceeded(match declared {
                Some(_) => "request body is longer than its Content-Length, or was cut off".to_owned(),
                None => format!("a request body over {SMALL_BODY_BYTES} bytes needs a Content-Length header"),
            });
            return close(refuse(&parts, e));
        }
        Err(_) => {
            let secs = state.config.body_timeout.as_secs_f64();
            let e = ApiError::request_timeout(format!("the request body did not arrive within {secs} s"));
            return close(refuse(&parts, e));
        }
    };
    // The reservation is held until the answer is made.
    next.run(Request::from_parts(parts, axum::body::Body::from(body))).await
}

/// Takes one of the server's request slots for the rest of the request, or refuses it.
async fn request_slot(State(state): State<Arc<AppState>>, request: Request, next: axum::middleware::Next) -> Response {
    let Ok(_slot) = state.requests.clone().try_acquire_owned() else {
        let (parts, _) = request.into_parts();
        return refuse(&parts, ApiError::too_many_requests("the server is at its concurrency limit; retry"));
    };
    next.run(request).await
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = state.metrics.render();
    if state.config.broker.is_some() {
        state.stream_metrics.render(&mut text);
    }
    answered("Metrics", ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// `GET /.well-known/…`: this server's OpenID Connect issuer metadata, how anyone
/// verifies its tokens.
async fn well_known(State(state): State<Arc<AppState>>, uri: axum::http::Uri) -> Response {
    // The name as sent, not percent-decoded: only the two exact names are documents.
    let document = uri.path().strip_prefix("/.well-known/").unwrap_or_default();
    let found = match document {
        "openid-configuration" => state.oidc().map(|key| key.discovery()),
        "jwks.json" => state.oidc().map(|key| key.jwks()),
        _ => return no_such_document(document),
    };
    answered("OpenIdConfiguration", found.map_or_else(IntoResponse::into_response, |d| axum::Json(d).into_response()))
}

async fn no_document() -> Response {
    no_such_document("")
}

fn no_such_document(document: &str) -> Response {
    let message = format!("no document /.well-known/{document}");
    answered(
        "OpenIdConfiguration",
        ApiError { name: "ResourceNotFoundException", status: 404, message }.into_response(),
    )
}

/// The web console ([`console`]).
async fn console(
    State(state): State<Arc<AppState>>,
    Extension(Client(client)): Extension<Client>,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response {
    let (op, result) = console::handle(&state, client, &parts.method, parts.uri.path(), &parts.headers, &body).await;
    answered(op, result.unwrap_or_else(|e| failed(op, e)))
}

/// A call of Cognito Identity (JSON 1.1) or Cognito Sync (rest-json, SigV4).
async fn api(
    State(state): State<Arc<AppState>>,
    Extension(Client(client)): Extension<Client>,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response {
    let (op, result) = route(&state, client, &parts, body).await;
    answered(op, result.unwrap_or_else(|e| failed(op, e)))
}

fn failed(operation: &'static str, e: ApiError) -> Response {
    tracing::debug!(operation, error = e.name, message = %e.message, "request failed");
    e.into_response()
}

/// Whether a request calls Cognito Identity (JSON 1.1), not Cognito Sync.
fn is_identity_call(parts: &axum::http::request::Parts) -> bool {
    parts.uri.path() == "/" && parts.method == Method::POST && parts.headers.contains_key("x-amz-target")
}

/// A Cognito Identity error: every client error is 400 with the error's name in `__type`
/// (only server faults are 5xx), with the protocol's content type.
fn identity_error(e: ApiError) -> Response {
    let mut response = if e.status < 500 { ApiError { status: 400, ..e }.into_response() } else { e.into_response() };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(identity::CONTENT_TYPE));
    response
}

fn close(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn route(
    state: &Arc<AppState>,
    client: IpAddr,
    parts: &axum::http::request::Parts,
    body: Bytes,
) -> (&'static str, Result<Response, ApiError>) {
    let path = parts.uri.path();
    if is_identity_call(parts) {
        let (op, result) = identity::handle(state, client, parts, &body).await;
        let mut response = match result {
            Ok(body) => body.into_response(),
            Err(e) => identity_error(e),
        };
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(identity::CONTENT_TYPE));
        return (op, Ok(response));
    }
    // Cognito Sync: the signature is checked before anything else is looked at.
    let query = match Query::parse(parts.uri.query().unwrap_or("")) {
        Ok(query) => query,
        Err(e) => return ("Unknown", Err(ApiError::invalid_parameter(e.0))),
    };
    let cred = match auth::authenticate(state, parts, &query, &body, "cognito-sync").await {
        Ok(cred) => cred,
        Err(e) => return ("Unauthenticated", Err(e)),
    };
    let (op, labels) = match routes::route_signed(&parts.method, path) {
        Ok(Some(routed)) => routed,
        Ok(None) => {
            let e = ApiError {
                name: "UnknownOperationException",
                status: 404,
                message: format!("no operation {} {path}", parts.method),
            };
            return ("Unknown", Err(e));
        }
        Err(e) => return ("Unknown", Err(e)),
    };
    if let Err(e) = routes::check_access(op, &cred) {
        return (op.name, Err(e));
    }
    let input = if model::SYNC.has(op.name) {
        let named: Vec<(&str, String)> = op.label_names().zip(labels.iter().cloned()).collect();
        match model::SYNC.rest_input(op.name, &named, &query, &parts.headers, &body) {
            Ok(input) => input,
            Err(e) => return (op.name, Err(e)),
        }
    } else {
        serde_json::Value::Null
    };
    let call = call::Call { state: state.clone(), cred, labels, query, body, input };
    (op.name, (op.handler)(call).await)
}
