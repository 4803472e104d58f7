//! The unsigned calls a device makes, as in AWS: GetId, GetCredentialsForIdentity,
//! GetOpenIdToken, UnlinkIdentity. Each is rate-limited per address and per pool.

use super::Call;
use super::logins::*;
use super::lookup::*;
use super::shapes::*;
use crate::error::ApiError;
use std::time::Duration;
use synctrig_store::Pool;

pub(super) async fn get_id(call: &Call) -> Result<IdentityIdOutput, ApiError> {
    let state = &call.state;
    state.admission.identity_call_from(call.client)?;
    let input: GetIdInput = call.input()?;
    let pool = pool(state, &input.identity_pool_id).await?;
    state.admission.identity_call_for(&pool.pool_id)?;
    if input.logins.is_empty() {
        if !pool.allow_unauthenticated {
            return Err(ApiError::not_authorized("Unauthenticated access is not supported for this identity pool."));
        }
        let identity_id = state.store.create_identity(&pool.pool_id, &state.config.region).await?;
        return Ok(IdentityIdOutput { identity_id });
    }
    let logins = verify_logins(state, &pool, &input.logins).await?;
    // The identity a login (or this server's token) already names, else a new one.
    let mut existing = None;
    for login in &logins {
        let found = match login {
            Login::Own(id, _) => Some(id.clone()),
            Login::Provider { provider, subject } => {
                state.store.login_identity(&pool.pool_id, provider, subject).await?
            }
        };
        if found.is_some() {
            existing = found;
            break;
        }
    }
    let identity = match existing {
        Some(id) => live_identity(state, &id).await?,
        None => {
            let Some(Login::Provider { provider, subject }) = logins.first() else {
                return Err(ApiError::invalid_parameter("Logins is empty"));
            };
            let login = state.store.identity_for_login(&pool.pool_id, &state.config.region, provider, subject).await?;
            live_identity(state, &login.identity_id).await?
        }
    };
    let identity_id = link(state, &pool, &identity, &logins).await?;
    Ok(IdentityIdOutput { identity_id })
}

/// GetCredentialsForIdentity and GetOpenIdToken: the identity the caller signs in as,
/// rate-limited per address and per pool.
pub(super) async fn sign_in(call: &Call) -> Result<(Pool, String, bool), ApiError> {
    let state = &call.state;
    state.admission.identity_call_from(call.client)?;
    let input: GetCredentialsInput = call.input()?;
    let identity = live_identity(state, &input.identity_id).await?;
    state.admission.identity_call_for(&identity.pool_id)?;
    signed_in(state, &identity, &input.logins).await
}

pub(super) async fn get_credentials_for_identity(call: &Call) -> Result<GetCredentialsOutput, ApiError> {
    let (pool, target, authenticated) = sign_in(call).await?;
    issue_credentials(&call.state, &pool, &target, authenticated).await
}

/// Lifetime of the tokens GetOpenIdToken issues.
pub(super) const OPEN_ID_TOKEN_TTL: Duration = Duration::from_secs(600);

pub(super) async fn get_open_id_token(call: &Call) -> Result<TokenOutput, ApiError> {
    let state = &call.state;
    let (pool, target, authenticated) = sign_in(call).await?;
    let providers: Vec<String> = live_identity(state, &target).await?.logins.into_iter().map(|(p, _)| p).collect();
    let token = state.oidc()?.issue(&target, &pool.pool_id, authenticated, &providers, OPEN_ID_TOKEN_TTL)?;
    Ok(TokenOutput { identity_id: target, token })
}

pub(super) async fn unlink_identity(call: &Call) -> Result<Empty, ApiError> {
    let state = &call.state;
    state.admission.identity_call_from(call.client)?;
    let input: UnlinkIdentityInput = call.input()?;
    let identity = live_identity(state, &input.identity_id).await?;
    let pool = state.store.pool(&identity.pool_id).await?.ok_or_else(|| pool_not_found(&identity.pool_id))?;
    if input.logins.is_empty() {
        return Err(ApiError::not_authorized("Logins must prove the caller signs in as this identity"));
    }
    for login in verify_logins(state, &pool, &input.logins).await? {
        let owner = match &login {
            Login::Own(id, true) => Some(id.clone()),
            Login::Own(_, false) => None,
            Login::Provider { provider, subject } => {
                state.store.login_identity(&pool.pool_id, provider, subject).await?
            }
        };
        if owner.as_deref() != Some(identity.identity_id.as_str()) {
            return Err(ApiError::not_authorized("Logins don't match. The logins given are not this identity's."));
        }
    }
    // The model bounds each name, not the list: only the providers the identity has are
    // unlinked, so the work is bounded by its logins, not by the request.
    let linked: std::collections::BTreeSet<&String> = identity.logins.iter().map(|(p, _)| p).collect();
    for provider in linked.into_iter().filter(|p| input.logins_to_remove.contains(p)) {
        state.store.unlink_logins(&identity.identity_id, provider, None).await?;
    }
    Ok(Empty {})
}
