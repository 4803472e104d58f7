//! `synctrig-wasm serve`: a Cognito Sync–compatible dataset service (rest-json, SigV4)
//! plus Cognito Identity (JSON 1.1), over the runtime (`synctrig_runtime`), SigV4
//! (`synctrig_sigv4`) and the store (`synctrig_store`, SQLite or PostgreSQL).
//!
//! From the bottom up:
//! - [`state`]: the settings and what the handlers share; [`admission`]: connection caps
//!   and rate limits; `metrics`; `error`: the API's errors;
//! - `model` (the API models; every request's input is checked against them), `wire`
//!   (the typed shapes), `call` (what a rest-json handler gets), `auth` (SigV4) and
//!   `oidc` (login tokens); [`triggers`]: loading the pools' triggers;
//! - the APIs, grouped by what they act on: `sync` (Cognito Sync), `identity` (Cognito
//!   Identity), [`functions`] and `archive` (our extensions);
//! - `routes`: the one table of rest-json operations; `console`: the web console;
//! - `http`: connections, request ids, body limits, dispatch — and [`serve`].
//!
//! The binary parses flags and calls [`serve`], so tests can bind port 0 in-process.

pub mod admission;
mod archive;
mod auth;
mod call;
mod console;
mod error;
pub mod functions;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod http;
mod identity;
mod metrics;
mod model;
mod oidc;
pub mod releases;
mod routes;
pub mod state;
pub mod streams;
mod sync;
pub mod triggers;
mod wire;

pub use error::ApiError;
pub use http::{REQUEST_ID, serve};
pub use identity::create_pool;
pub use oidc::register_issuer;
pub use state::{AppState, ServerConfig};
pub use triggers::api_function_name_ok;

/// Every rest-json operation's (method, URI template), for the fuzzing harness.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn sync_operations() -> impl Iterator<Item = (&'static str, &'static str)> {
    routes::OPERATIONS.iter().map(|op| (op.method_name(), op.template))
}

/// Every Cognito Identity operation's name, for the fuzzing harness.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn identity_operations() -> impl Iterator<Item = &'static str> {
    identity::operation_names()
}
