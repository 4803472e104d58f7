//! Logins: verifying a request's logins against the pool's providers, and linking them to
//! an identity, merging identities as Cognito did. The rules every sign-in follows.

use super::lookup::*;
use super::shapes::*;
use crate::error::ApiError;
use crate::oidc::{self, OWN_PROVIDER};
use crate::state::AppState;
use std::collections::BTreeMap;
use synctrig_store::{IdentityRow, LinkOutcome, MergeOutcome, MergeRule, Pool};

/// The issuer URL an OpenID Connect provider ARN names.
pub(super) fn arn_issuer(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, provider) = rest.split_once(":oidc-provider/")?;
    let valid = !account.is_empty() && account.chars().all(|c| c.is_ascii_digit()) && !provider.is_empty();
    valid.then(|| format!("https://{provider}"))
}

/// Who signed in with a login: this server's own token names an identity; another
/// provider's token names a subject of that provider.
pub(super) enum Login {
    /// This server's token: the identity, and whether it was issued as authenticated.
    Own(String, bool),
    Provider {
        provider: String,
        subject: String,
    },
}

/// Verifies every login of a request against the pool's login configuration.
/// (Their number and sizes were checked against the model with the request.)
pub(super) async fn verify_logins(
    state: &AppState,
    pool: &Pool,
    logins: &BTreeMap<String, String>,
) -> Result<Vec<Login>, ApiError> {
    let mut verified = Vec::with_capacity(logins.len());
    for (provider, token) in logins {
        verified.push(verify_login(state, pool, provider, token).await?);
    }
    Ok(verified)
}

pub(super) async fn verify_login(
    state: &AppState,
    pool: &Pool,
    provider: &str,
    token: &str,
) -> Result<Login, ApiError> {
    if provider == OWN_PROVIDER {
        let (identity, authenticated) = state.oidc()?.verify(token, &pool.pool_id)?;
        return Ok(Login::Own(identity, authenticated));
    }
    let s = &pool.settings;
    let issuer_url = format!("https://{provider}");
    let mut accepted = vec![issuer_url.clone()];
    let audiences: Option<Vec<String>> =
        if s.open_id_connect_provider_arns.iter().any(|a| arn_issuer(a).as_deref() == Some(&issuer_url)) {
            Some(Vec::new())
        } else if s.cognito_identity_providers.iter().any(|c| c.provider_name == provider) {
            Some(
                s.cognito_identity_providers
                    .iter()
                    .filter(|c| c.provider_name == provider)
                    .map(|c| c.client_id.clone())
                    .collect(),
            )
        } else if let Some(ids) = s.supported_login_providers.get(provider) {
            // Google's tokens name their issuer with or without the scheme. A provider names
            // several client ids with `;` (the model's pattern has no comma; older pools used one).
            accepted.push(provider.to_owned());
            Some(ids.split([',', ';']).map(|id| id.trim().to_owned()).filter(|id| !id.is_empty()).collect())
        } else {
            None
        };
    let Some(pool_audiences) = audiences else {
        return Err(ApiError::not_authorized(format!(
            "Invalid login token. The login provider {provider} is not configured for this identity pool."
        )));
    };
    let issuer = state.store.issuer(&pool.tenant, &issuer_url).await?.ok_or_else(|| {
        ApiError::not_authorized(format!(
            "Invalid login token. The issuer {issuer_url} is not registered with this server."
        ))
    })?;
    // An OpenID Connect provider accepts the audiences it was registered with; the others
    // accept the client ids the pool names.
    let audiences = if pool_audiences.is_empty() { issuer.audiences.clone() } else { pool_audiences };
    let subject = oidc::verify(&*state.store, token, &issuer, &accepted, &audiences).await?;
    Ok(Login::Provider { provider: provider.to_owned(), subject })
}

/// The message AWS answers when a request's logins do not prove an identity.
pub(super) const LOGINS_DONT_MATCH: &str =
    "Logins don't match. Please include at least one valid login for this identity or identity pool.";

/// Whether one of `logins` proves the caller signs in as `identity`: a login already
/// linked to it, or this server's authenticated token for it.
pub(super) async fn proves(state: &AppState, pool: &Pool, identity: &str, logins: &[Login]) -> Result<bool, ApiError> {
    for login in logins {
        let proved = match login {
            Login::Own(named, authenticated) => named == identity && *authenticated,
            Login::Provider { provider, subject } => {
                state.store.login_identity(&pool.pool_id, provider, subject).await?.as_deref() == Some(identity)
            }
        };
        if proved {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Links the logins to an identity, merging in the identities they belonged to: the
/// identity that has logins survives. Answers the surviving identity. An identity with
/// logins is only acted on by a caller who proves one of them, so a login cannot be
/// attached to someone else's account; each link and merge re-checks, in its own
/// transaction, that what was decided on still holds.
pub(super) async fn link(
    state: &AppState,
    pool: &Pool,
    identity: &IdentityRow,
    logins: &[Login],
) -> Result<String, ApiError> {
    if identity.ever_authenticated && identity.logins.is_empty() {
        // Its last login was unlinked: as in Cognito, nobody can sign in to it again.
        return Err(ApiError::not_authorized(LOGINS_DONT_MATCH));
    }
    let mut proved = proves(state, pool, &identity.identity_id, logins).await?;
    if identity.authenticated() && !proved {
        return Err(ApiError::not_authorized(LOGINS_DONT_MATCH));
    }
    let mut target = identity.identity_id.clone();
    let mut authenticated = identity.authenticated();
    for login in logins {
        let (provider, subject) = match login {
            Login::Own(named, _) if *named == target => continue,
            Login::Own(..) => {
                return Err(ApiError::not_authorized("Invalid login token. The token is for another identity."));
            }
            Login::Provider { provider, subject } => (provider, subject),
        };
        // A login linked meanwhile by someone else is looked at again; twice is plenty.
        let mut settled = false;
        for _ in 0..3 {
            match state.store.login_identity(&pool.pool_id, provider, subject).await? {
                Some(owner) if owner == target => {}
                None => match state.store.link_login(&pool.pool_id, provider, subject, &target, !proved).await? {
                    LinkOutcome::Linked => {}
                    LinkOutcome::Taken => continue,
                    LinkOutcome::Changed => return Err(changed_concurrently()),
                },
                Some(owner) => {
                    if authenticated {
                        return Err(ApiError::conflict(format!(
                            "The login {provider} is linked to another identity already; both identities have logins, \
                             so they are not merged"
                        )));
                    }
                    // The unauthenticated identity merges into the authenticated one.
                    match state
                        .store
                        .merge_identities(&pool.pool_id, &target, &owner, MergeRule::SourceUnauthenticated)
                        .await?
                    {
                        MergeOutcome::Merged(_) => target = owner,
                        _ => return Err(changed_concurrently()),
                    }
                }
            }
            (authenticated, proved, settled) = (true, true, true);
            break;
        }
        if !settled {
            return Err(changed_concurrently());
        }
    }
    Ok(target)
}

pub(super) fn changed_concurrently() -> ApiError {
    ApiError::conflict("The identities changed while they were being merged; retry the request")
}

pub(super) async fn issue_credentials(
    state: &AppState,
    pool: &Pool,
    identity: &str,
    authenticated: bool,
) -> Result<GetCredentialsOutput, ApiError> {
    let issued = state
        .store
        .issue_identity_credentials(&pool.pool_id, identity, authenticated, state.config.credentials_ttl_secs)
        .await?;
    Ok(GetCredentialsOutput {
        identity_id: identity.to_owned(),
        credentials: Credentials {
            access_key_id: issued.access_key,
            secret_key: issued.secret,
            session_token: issued.session_token,
            expiration: issued.expires,
        },
    })
}

/// The identity a request with `logins` (or none) acts as: its own logins checked, new
/// logins linked (merging as Cognito does), and unauthenticated access as the pool allows.
pub(super) async fn signed_in(
    state: &AppState,
    identity: &IdentityRow,
    logins: &BTreeMap<String, String>,
) -> Result<(Pool, String, bool), ApiError> {
    let pool = state.store.pool(&identity.pool_id).await?.ok_or_else(|| pool_not_found(&identity.pool_id))?;
    let verified = verify_logins(state, &pool, logins).await?;
    let target = link(state, &pool, identity, &verified).await?;
    let row = live_identity(state, &target).await?;
    let authenticated =
        row.authenticated() || verified.iter().any(|l| matches!(l, Login::Own(named, true) if *named == target));
    if !authenticated && !pool.allow_unauthenticated {
        return Err(ApiError::not_authorized("Unauthenticated access is not supported for this identity pool."));
    }
    Ok((pool, target, authenticated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidc_provider_arns_name_issuers() {
        assert_eq!(
            arn_issuer("arn:aws:iam::123456789012:oidc-provider/login.example.com/realm").as_deref(),
            Some("https://login.example.com/realm")
        );
        assert!(arn_issuer("arn:aws:iam::abc:oidc-provider/x").is_none());
        assert!(arn_issuer("arn:aws:iam::1:saml-provider/x").is_none());
    }
}
