//! Developer-authenticated identities: the backend signs its users in
//! (GetOpenIdTokenForDeveloperIdentity), looks them up, merges and unlinks them.

use super::Call;
use super::logins::*;
use super::lookup::*;
use super::shapes::*;
use crate::error::ApiError;
use crate::oidc::OWN_PROVIDER;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::collections::BTreeMap;
use std::time::Duration;
use synctrig_store::{LinkOutcome, MergeOutcome, MergeRule, Pool};

/// The pool's developer provider, which a developer-authentication call must name.
pub(super) fn developer_provider(pool: &Pool, named: &str) -> Result<String, ApiError> {
    match &pool.settings.developer_provider_name {
        Some(name) if name == named => Ok(name.clone()),
        Some(name) => Err(ApiError::invalid_parameter(format!(
            "{named:?} is not this identity pool's developer provider ({name:?})"
        ))),
        None => Err(ApiError::invalid_parameter("this identity pool has no DeveloperProviderName")),
    }
}

pub(super) fn user_identifier(id: &str) -> Result<(), ApiError> {
    if (1..=1024).contains(&id.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter("DeveloperUserIdentifier must be 1 to 1024 characters"))
    }
}

pub(super) async fn get_open_id_token_for_developer_identity(call: &Call) -> Result<TokenOutput, ApiError> {
    let state = &call.state;
    let input: DeveloperTokenInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    state.admission.identity_call_for(&pool.pool_id)?;
    let provider = pool
        .settings
        .developer_provider_name
        .clone()
        .ok_or_else(|| ApiError::invalid_parameter("this identity pool has no DeveloperProviderName"))?;
    let user = input.logins.get(&provider).ok_or_else(|| {
        ApiError::invalid_parameter(format!("Logins must name this identity pool's developer provider {provider:?}"))
    })?;
    user_identifier(user)?;
    let duration = input.token_duration.unwrap_or(900);
    if !(1..=86_400).contains(&duration) {
        return Err(ApiError::invalid_parameter("TokenDuration must be from 1 to 86400 seconds"));
    }
    // The other logins are verified, then linked to the identity as well.
    let others: BTreeMap<String, String> =
        input.logins.iter().filter(|(p, _)| **p != provider).map(|(p, t)| (p.clone(), t.clone())).collect();
    if others.contains_key(OWN_PROVIDER) {
        return Err(ApiError::invalid_parameter(format!(
            "Logins: {OWN_PROVIDER} tokens are this call's answer, not its input"
        )));
    }
    let others = verify_logins(state, &pool, &others).await?;
    let already_registered = |owner: &str| ApiError {
        name: "DeveloperUserAlreadyRegisteredException",
        status: 400,
        message: format!("The developer user {user:?} is linked to identity {owner} already"),
    };
    let owner = state.store.login_identity(&pool.pool_id, &provider, user).await?;
    let identity = match (input.identity_id, owner) {
        (Some(id), Some(owner)) if id != owner => {
            // The user signed in on a device that was a guest so far: as in Cognito, the
            // guest merges into the user's identity. An identity with logins of its own
            // is another user's.
            let row = pool_identity(state, &pool, &id).await?;
            if row.authenticated() || row.merged_into.is_some() {
                return Err(already_registered(&owner));
            }
            match state.store.merge_identities(&pool.pool_id, &id, &owner, MergeRule::SourceUnauthenticated).await? {
                MergeOutcome::Merged(_) => owner,
                _ => return Err(changed_concurrently()),
            }
        }
        (Some(id), owner) => {
            let row = pool_identity(state, &pool, &id).await?;
            if row.merged_into.is_some() {
                return Err(live_identity(state, &id).await.err().unwrap_or_else(changed_concurrently));
            }
            if owner.is_none() {
                // The developer vouches for its user: linking to a guest or a signed-in
                // identity of its own pool is its call to make.
                match state.store.link_login(&pool.pool_id, &provider, user, &id, false).await? {
                    LinkOutcome::Linked => {}
                    LinkOutcome::Taken => return Err(changed_concurrently()),
                    LinkOutcome::Changed => return Err(changed_concurrently()),
                }
            }
            id
        }
        (None, Some(owner)) => owner,
        (None, None) => {
            state.store.identity_for_login(&pool.pool_id, &state.config.region, &provider, user).await?.identity_id
        }
    };
    for login in &others {
        if let Login::Provider { provider: p, subject } = login {
            match state.store.link_login(&pool.pool_id, p, subject, &identity, false).await? {
                LinkOutcome::Linked => {}
                LinkOutcome::Taken
                    if state.store.login_identity(&pool.pool_id, p, subject).await?.as_deref() == Some(&identity) => {}
                LinkOutcome::Taken => {
                    return Err(ApiError::conflict(format!("The login {p} is linked to another identity already")));
                }
                LinkOutcome::Changed => return Err(changed_concurrently()),
            }
        }
    }
    let token =
        state.oidc()?.issue(&identity, &pool.pool_id, true, &[provider], Duration::from_secs(duration as u64))?;
    Ok(TokenOutput { identity_id: identity, token })
}

pub(super) async fn lookup_developer_identity(call: &Call) -> Result<LookupOutput, ApiError> {
    let input: LookupInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    let provider = pool
        .settings
        .developer_provider_name
        .clone()
        .ok_or_else(|| ApiError::invalid_parameter("this identity pool has no DeveloperProviderName"))?;
    let max = input.max_results.map(max_results).transpose()?.unwrap_or(60);
    let after = cursor(&input.next_token)?;
    let by_user = match &input.developer_user_identifier {
        Some(user) => {
            user_identifier(user)?;
            let found = call.state.store.login_identity(&pool.pool_id, &provider, user).await?;
            Some(
                found
                    .ok_or_else(|| ApiError::not_found(format!("no identity is linked to developer user {user:?}")))?,
            )
        }
        None => None,
    };
    let identity = match (&input.identity_id, by_user) {
        (Some(id), Some(found)) if *id != found => {
            return Err(ApiError::conflict(format!("The developer user is linked to another identity than {id}")));
        }
        (Some(id), _) => id.clone(),
        (None, Some(found)) => found,
        (None, None) => return Err(ApiError::invalid_parameter("give IdentityId or DeveloperUserIdentifier")),
    };
    let row = own_identity(call, &identity).await?;
    if row.pool_id != pool.pool_id {
        return Err(identity_not_found(&identity));
    }
    // A page of the identity's developer users, in order, after the cursor's.
    let mut users: Vec<String> =
        row.logins.iter().filter(|(p, s)| *p == provider && *s > after).map(|(_, s)| s.clone()).collect();
    users.sort();
    let more = users.len() > max;
    users.truncate(max);
    Ok(LookupOutput {
        identity_id: row.identity_id,
        next_token: more.then(|| B64.encode(&users[users.len() - 1])),
        developer_user_identifier_list: users,
    })
}

pub(super) async fn merge_developer_identities(call: &Call) -> Result<IdentityIdOutput, ApiError> {
    let state = &call.state;
    let input: MergeInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    let provider = developer_provider(&pool, &input.developer_provider_name)?;
    user_identifier(&input.source_user_identifier)?;
    user_identifier(&input.destination_user_identifier)?;
    let source = state
        .store
        .login_identity(&pool.pool_id, &provider, &input.source_user_identifier)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("no identity is linked to developer user {:?}", input.source_user_identifier))
        })?;
    let destination = state
        .store
        .login_identity(&pool.pool_id, &provider, &input.destination_user_identifier)
        .await?
        .ok_or_else(|| {
        ApiError::not_found(format!("no identity is linked to developer user {:?}", input.destination_user_identifier))
    })?;
    if source != destination {
        match state
            .store
            .merge_identities(&pool.pool_id, &source, &destination, MergeRule::Developer(&provider))
            .await?
        {
            MergeOutcome::Merged(_) => {}
            MergeOutcome::Changed => return Err(changed_concurrently()),
            MergeOutcome::ProviderClash(other) => {
                return Err(ApiError::conflict(format!(
                    "Both identities have logins of {other} for different users; they are not merged"
                )));
            }
        }
    }
    Ok(IdentityIdOutput { identity_id: destination })
}

pub(super) async fn unlink_developer_identity(call: &Call) -> Result<Empty, ApiError> {
    let input: UnlinkDeveloperInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    let provider = developer_provider(&pool, &input.developer_provider_name)?;
    let row = own_identity(call, &input.identity_id).await?;
    if row.pool_id != pool.pool_id {
        return Err(identity_not_found(&input.identity_id));
    }
    if call.state.store.unlink_logins(&row.identity_id, &provider, Some(&input.developer_user_identifier)).await? == 0 {
        return Err(ApiError::not_found(format!(
            "developer user {:?} is not linked to identity {}",
            input.developer_user_identifier, row.identity_id
        )));
    }
    Ok(Empty {})
}
