//! The Cognito Sync operations (rest-json), one typed handler each, grouped by what they
//! act on: identity pools (`pools`), an identity's datasets (`datasets`), a dataset's
//! records and sessions (`records`), and updates with their Sync Trigger (`update`). Here:
//! who may act on a pool or an identity.

pub mod datasets;
pub mod pools;
pub mod records;
pub mod streams;
pub mod update;

use crate::error::ApiError;
use crate::state::AppState;
use synctrig_runtime::limits;
use synctrig_store::{Credential, Pool, Principal};

/// The pool, if `cred` may act on it; otherwise NotAuthorized (never revealing whether
/// another tenant's pool exists).
pub(super) async fn authorize_pool(state: &AppState, cred: &Credential, pool_id: &str) -> Result<Pool, ApiError> {
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
pub(super) async fn authorize_identity(
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

pub(super) fn check_dataset_name(name: &str) -> Result<(), ApiError> {
    limits::dataset_name_problem(name).map_or(Ok(()), |p| Err(ApiError::invalid_parameter(p)))
}

pub(super) fn principal_name(cred: &Credential) -> String {
    match &cred.principal {
        Principal::Root => "root".into(),
        Principal::Developer { tenant } => format!("developer:{tenant}"),
        Principal::Identity { identity_id, .. } => identity_id.clone(),
    }
}
