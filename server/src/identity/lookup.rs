//! The lookups every identity handler shares: a pool or identity, found and checked to be
//! the caller's, with the errors the model names; and the listings' paging.

use super::Call;
use crate::error::ApiError;
use crate::state::AppState;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use synctrig_runtime::limits;
use synctrig_store::{IdentityRow, Pool};

pub(super) fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    if limits::is_valid_cognito_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(format!("{field} {id:?} is not of the form region:hex-id")))
    }
}

pub(super) fn pool_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("IdentityPool '{id}' not found."))
}

pub(super) fn identity_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Identity '{id}' not found."))
}

/// A pool that exists (for the unsigned calls).
pub(super) async fn pool(state: &AppState, id: &str) -> Result<Pool, ApiError> {
    check_id("IdentityPoolId", id)?;
    state.store.pool(id).await?.ok_or_else(|| pool_not_found(id))
}

/// A pool the signed caller may manage: any for root, its tenant's for a developer;
/// another tenant's pool is reported as not found.
pub(super) async fn own_pool(call: &Call, id: &str) -> Result<Pool, ApiError> {
    let pool = pool(&call.state, id).await?;
    match call.tenant() {
        Some(tenant) if tenant != pool.tenant => Err(pool_not_found(id)),
        _ => Ok(pool),
    }
}

/// An identity that exists and is not merged away.
pub(super) async fn live_identity(state: &AppState, id: &str) -> Result<IdentityRow, ApiError> {
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
pub(super) async fn pool_identity(state: &AppState, pool: &Pool, id: &str) -> Result<IdentityRow, ApiError> {
    check_id("IdentityId", id)?;
    state.store.identity(id).await?.filter(|r| r.pool_id == pool.pool_id).ok_or_else(|| identity_not_found(id))
}

/// An identity of a pool the caller may manage (another tenant's is not found).
pub(super) async fn own_identity(call: &Call, id: &str) -> Result<IdentityRow, ApiError> {
    check_id("IdentityId", id)?;
    let row = call.state.store.identity(id).await?.ok_or_else(|| identity_not_found(id))?;
    own_pool(call, &row.pool_id).await.map_err(|_| identity_not_found(id))?;
    Ok(row)
}

pub(super) fn max_results(n: i64) -> Result<usize, ApiError> {
    usize::try_from(n)
        .ok()
        .filter(|n| (1..=60).contains(n))
        .ok_or_else(|| ApiError::invalid_parameter(format!("MaxResults {n} must be from 1 to 60")))
}

pub(super) fn cursor(token: &Option<String>) -> Result<String, ApiError> {
    match token {
        None => Ok(String::new()),
        Some(t) => B64
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ApiError::invalid_parameter("NextToken is not one this service issued")),
    }
}
