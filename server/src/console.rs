//! The web console at `/console`: static pages built into the binary, and a sign-in that
//! turns a developer's (or the root) access key and secret into a session cookie.
//!
//! The console calls the same operations as every client. A request that carries the
//! session cookie (and the console's header, which no cross-site form can send) is
//! authenticated as the credential that signed in — the same `Credential` a SigV4
//! signature would give — so every authorisation check is the one the API makes.
//! Sessions are stateless: an HMAC of the access key, the expiry and a hash of the secret
//! under the server's session key, so they work on every node and end when the secret
//! changes or the credential is deleted.

use super::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use synctrig_sigv4::constant_time_eq;
use synctrig_store::now;
use synctrig_store::{Credential, Principal};

/// The session cookie's name.
pub const COOKIE: &str = "synctrig_console";
/// The header every console API call sends: a cross-site form cannot, so a cookie alone
/// authorises nothing.
pub const HEADER: &str = "x-synctrig-console";
/// How long a console session lasts, in seconds.
const SESSION_SECS: i64 = 8 * 3600;

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const APP_CSS: &str = include_str!("console/app.css");
/// The "cognito-sync-trigger" blueprint: the seed's Node.js sample (the same bytes as
/// `examples/js/sample-trigger.js`; a test holds them equal).
const BLUEPRINT_JS: &str = include_str!("console/blueprints/cognito-sync-trigger.js");
/// The seed's sample event, the Test button's default (`examples/seed-event.json`).
const SAMPLE_EVENT: &str = include_str!("console/sample-event.json");

/// Answers a request under `/console`: (operation name for metrics and logs, response).
pub async fn handle(
    state: &AppState,
    client: IpAddr,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> (&'static str, Result<Response, ApiError>) {
    let asset = |content_type: &'static str, text: &'static str| Ok(static_response(content_type, text));
    match (method, path) {
        (&Method::GET, "/console") => {
            ("Console", Ok((StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, "/console/")]).into_response()))
        }
        (&Method::GET, "/console/") => ("Console", asset("text/html; charset=utf-8", INDEX_HTML)),
        (&Method::GET, "/console/app.js") => ("Console", asset("text/javascript; charset=utf-8", APP_JS)),
        (&Method::GET, "/console/app.css") => ("Console", asset("text/css; charset=utf-8", APP_CSS)),
        (&Method::GET, "/console/blueprints/cognito-sync-trigger.js") => {
            ("Console", asset("text/javascript; charset=utf-8", BLUEPRINT_JS))
        }
        (&Method::GET, "/console/sample-event.json") => ("Console", asset("application/json", SAMPLE_EVENT)),
        (&Method::POST, "/console/session") => ("ConsoleSignIn", sign_in(state, client, headers, body).await),
        (&Method::GET, "/console/session") => ("ConsoleSession", whoami(state, headers).await),
        (&Method::DELETE, "/console/session") => ("ConsoleSignOut", Ok(sign_out())),
        _ => (
            "Console",
            Err(ApiError {
                name: "ResourceNotFoundException",
                status: 404,
                message: format!("no console page {path}"),
            }),
        ),
    }
}

fn static_response(content_type: &'static str, text: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], text).into_response();
    let h = response.headers_mut();
    // Everything the page loads comes from here: no inline script, no other origin, no
    // framing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignInRequest {
    access_key_id: String,
    secret_access_key: String,
}

/// Who is signed in.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Session {
    access_key_id: String,
    /// `root` or `developer`.
    principal: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    /// When the session ends (epoch seconds).
    expires: i64,
}

async fn sign_in(state: &AppState, client: IpAddr, headers: &HeaderMap, body: &Bytes) -> Result<Response, ApiError> {
    // Only the console's own script signs in: a cross-site form can send neither the header
    // nor a JSON content type, so it cannot sign a victim in to the attacker's tenant.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if headers.get(HEADER).is_none() || !json {
        return Err(ApiError::not_authorized(format!(
            "console sign-in needs the {HEADER} header and Content-Type: application/json"
        )));
    }
    state
        .admission
        .identity_call_from(client)
        .map_err(|_| ApiError::too_many_requests("too many console sign-ins from this address; retry later"))?;
    let request: SignInRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_parameter(format!("invalid sign-in request body: {e}")))?;
    // One answer for an unknown key, a wrong secret and identity credentials: the form
    // reveals nothing about which keys exist.
    let refused = || ApiError::not_authorized("the access key ID or secret access key is not valid for the console");
    let cred = state.store.credential(&request.access_key_id).await?.ok_or_else(refused)?;
    if matches!(cred.principal, Principal::Identity { .. })
        || !constant_time_eq(cred.secret.as_bytes(), request.secret_access_key.as_bytes())
    {
        return Err(refused());
    }
    let expires = now() + SESSION_SECS;
    // The key is encoded: an operator's root key may hold any character, and a cookie's
    // value must not carry `.`, `;` or spaces.
    let value = format!(
        "v1.{}.{expires}.{}",
        B64.encode(&request.access_key_id),
        session_mac(state, &request.access_key_id, expires, &cred.secret)
    );
    let cookie = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}");
    let session = describe(&request.access_key_id, &cred, expires);
    let mut response = axum::Json(session).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|_| ApiError::invalid_parameter("the access key ID is not ASCII"))?,
    );
    Ok(response)
}

async fn whoami(state: &AppState, headers: &HeaderMap) -> Result<Response, ApiError> {
    let (access_key, expires, cred) = match session(state, headers).await {
        Some(result) => result?,
        None => return Err(ApiError::not_authorized(format!("not signed in to the console: {SIGN_IN_AGAIN}"))),
    };
    Ok(axum::Json(describe(&access_key, &cred, expires)).into_response())
}

fn sign_out() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], axum::Json(serde_json::json!({}))).into_response()
}

fn describe(access_key: &str, cred: &Credential, expires: i64) -> Session {
    let (principal, tenant) = match &cred.principal {
        Principal::Root => ("root", None),
        Principal::Developer { tenant } => ("developer", Some(tenant.clone())),
        Principal::Identity { .. } => ("identity", None),
    };
    Session { access_key_id: access_key.to_owned(), principal, tenant, expires }
}

fn session_mac(state: &AppState, access_key: &str, expires: i64, secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&state.session_key).expect("HMAC takes any key length");
    mac.update(b"synctrig console session v1\0");
    mac.update(access_key.as_bytes());
    mac.update(b"\0");
    mac.update(expires.to_string().as_bytes());
    mac.update(b"\0");
    // The secret's hash, so that a changed secret ends every session made with the old one.
    mac.update(&Sha256::digest(secret.as_bytes()));
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a request comes from the console: its session cookie, or its header (a page
/// whose session ended, by a sign-out in another tab or its expiry, sends only that).
pub fn presented(headers: &HeaderMap) -> bool {
    headers.contains_key(HEADER) || !cookies(headers).is_empty()
}

/// What every refused console session says; the page then shows the sign-in form.
const SIGN_IN_AGAIN: &str = "sign in again";

/// The credential a request's console session cookie stands for (call when
/// [`presented`]): an error when it is invalid or expired, or the console's header is
/// missing.
pub async fn credential(state: &AppState, headers: &HeaderMap) -> Result<Credential, ApiError> {
    match session(state, headers).await {
        Some(r) => r.map(|(_, _, cred)| cred),
        None => Err(ApiError::not_authorized(format!(
            "no console session (it was signed out, perhaps in another tab, or expired): {SIGN_IN_AGAIN}"
        ))),
    }
}

async fn session(state: &AppState, headers: &HeaderMap) -> Option<Result<(String, i64, Credential), ApiError>> {
    let values = cookies(headers);
    match values.as_slice() {
        [] => None,
        [value] => Some(verify(state, headers, value).await),
        // Another site on this host could plant a second session cookie with a longer
        // path; which one a request meant cannot be told, so neither counts.
        _ => Some(Err(ApiError::not_authorized(format!("more than one console session cookie: {SIGN_IN_AGAIN}")))),
    }
}

async fn verify(state: &AppState, headers: &HeaderMap, value: &str) -> Result<(String, i64, Credential), ApiError> {
    if headers.get(HEADER).is_none() {
        return Err(ApiError::not_authorized(format!("a console session is accepted only with the {HEADER} header")));
    }
    let invalid = || ApiError::not_authorized(format!("the console session is not valid: {SIGN_IN_AGAIN}"));
    let mut parts = value.split('.');
    let (Some("v1"), Some(access_key), Some(expires), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let access_key = B64.decode(access_key).ok().and_then(|k| String::from_utf8(k).ok()).ok_or_else(invalid)?;
    let access_key = access_key.as_str();
    let expires: i64 = expires.parse().map_err(|_| invalid())?;
    if expires < now() {
        return Err(ApiError::not_authorized(format!("the console session has expired: {SIGN_IN_AGAIN}")));
    }
    let cred = state.store.credential(access_key).await?.ok_or_else(invalid)?;
    if matches!(cred.principal, Principal::Identity { .. })
        || !constant_time_eq(session_mac(state, access_key, expires, &cred.secret).as_bytes(), mac.as_bytes())
    {
        return Err(invalid());
    }
    Ok((access_key.to_owned(), expires, cred))
}

/// The values of the request's session cookies (normally none or one).
fn cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_blueprint_and_the_sample_event_are_the_examples() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let read = |p: &str| std::fs::read_to_string(examples.join(p)).unwrap();
        assert_eq!(super::BLUEPRINT_JS, read("js/sample-trigger.js"));
        assert_eq!(super::SAMPLE_EVENT, read("seed-event.json"));
    }
}
