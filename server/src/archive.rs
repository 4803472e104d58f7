//! Our extension: a tenant takes its pool's users' data elsewhere — the pool, its
//! identities, logins, datasets and records as `admin export --pool` writes them (JSON
//! lines), streamed from one snapshot as it is read.

use crate::call::Call;
use crate::error::ApiError;
use crate::sync::authorize_pool;
use axum::body::Bytes;
use synctrig_store::Scope;

/// Our extension: a tenant takes its pool's users' data elsewhere — the pool, its
/// identities, logins, datasets and records as `admin export --pool` writes them (JSON
/// lines), streamed from one snapshot as it is read.
pub(crate) async fn export_identity_pool(call: Call) -> Result<axum::response::Response, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    // Read from one snapshot as the client takes it; a client that goes away ends the
    // export, and a failure midway ends the body without its end line (import refuses it).
    let chunks = call.state.store.clone().export_stream(Scope::Pool(pool.pool_id));
    let body = axum::body::Body::from_stream(futures_util::StreamExt::map(chunks, |chunk| chunk.map(Bytes::from)));
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )))
}
