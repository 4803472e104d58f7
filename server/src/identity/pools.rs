//! Identity pools through the API: create, describe, update, delete and list, with the
//! checks of a pool's configuration beyond what the model states.

use super::Call;
use super::logins::arn_issuer;
use super::lookup::*;
use super::shapes::*;
use crate::error::ApiError;
use crate::oidc::OWN_PROVIDER;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use synctrig_store::{CognitoIdentityProvider, Pool, PoolSettings, Store};

/// Login providers whose tokens can only be checked by calling their owner.
pub(super) const THIRD_PARTY_PROVIDERS: &[&str] =
    &["graph.facebook.com", "www.amazon.com", "api.twitter.com", "www.digits.com"];

/// Checks a pool's configuration as CreateIdentityPool and UpdateIdentityPool take it,
/// beyond what the model states (checked with the request; [`create_pool`] checks it too).
pub(super) async fn check_pool(store: &Store, tenant: &str, shape: &IdentityPoolShape) -> Result<(), ApiError> {
    if !shape.saml_provider_arns.is_empty() {
        return Err(ApiError::invalid_parameter("SamlProviderARNs: SAML logins are not supported by synctrig-wasm"));
    }
    let s = &shape.settings;
    for provider in s.supported_login_providers.keys() {
        if THIRD_PARTY_PROVIDERS.contains(&provider.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "SupportedLoginProviders: {provider} tokens can only be checked by calling {provider}, which synctrig-wasm \
                 does not do; sign users in through OpenID Connect (OpenIdConnectProviderARNs) or as developer-authenticated identities"
            )));
        }
    }
    // Each issuer is looked up once, however often the list repeats it.
    let arns: std::collections::BTreeSet<&String> = s.open_id_connect_provider_arns.iter().collect();
    for arn in arns {
        let issuer = arn_issuer(arn).ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "OpenIdConnectProviderARNs: {arn:?} is not arn:aws:iam::<account>:oidc-provider/<issuer host and path>"
            ))
        })?;
        if store.issuer(tenant, &issuer).await?.is_none() {
            return Err(ApiError::invalid_parameter(format!(
                "OpenIdConnectProviderARNs: no OpenID Connect issuer {issuer} is registered for this tenant \
                 (synctrig-wasm admin register-issuer --tenant {tenant})"
            )));
        }
    }
    for CognitoIdentityProvider { provider_name, client_id, .. } in &s.cognito_identity_providers {
        let ok = provider_name.starts_with("cognito-idp.")
            && provider_name.contains(".amazonaws.com/")
            && !client_id.is_empty();
        if !ok {
            return Err(ApiError::invalid_parameter(format!(
                "CognitoIdentityProviders: {provider_name:?} is not cognito-idp.<region>.amazonaws.com/<userPoolId> with a ClientId"
            )));
        }
    }
    if let Some(dev) = &s.developer_provider_name
        && (dev == OWN_PROVIDER || s.supported_login_providers.contains_key(dev))
    {
        return Err(ApiError::invalid_parameter(format!(
            "DeveloperProviderName {dev:?} is one of the pool's login providers: name the developer provider apart"
        )));
    }
    Ok(())
}

/// The tenant a new pool belongs to: the developer's, or for root credentials the tag
/// `synctrig:tenant`.
pub(super) async fn new_pool_tenant(call: &Call, shape: &IdentityPoolShape) -> Result<String, ApiError> {
    if let Some(tenant) = call.tenant() {
        return Ok(tenant.to_owned());
    }
    let tenant = shape.settings.identity_pool_tags.get("synctrig:tenant").ok_or_else(|| {
        ApiError::invalid_parameter(
            "root credentials belong to no tenant: tag the pool with synctrig:tenant=<tenant>, or use the tenant's developer credentials",
        )
    })?;
    if !call.state.store.tenant_exists(tenant).await? {
        return Err(ApiError::invalid_parameter(format!("no tenant {tenant:?}")));
    }
    Ok(tenant.clone())
}

/// Creates a pool for a tenant, checked as CreateIdentityPool checks it: what the API and
/// `admin create-pool` both do.
pub async fn create_pool(
    store: &Store,
    region: &str,
    tenant: &str,
    name: &str,
    allow_unauthenticated: bool,
    settings: &PoolSettings,
) -> Result<Pool, ApiError> {
    let shape = IdentityPoolShape {
        identity_pool_name: name.to_owned(),
        allow_unauthenticated_identities: allow_unauthenticated,
        settings: settings.clone(),
        ..IdentityPoolShape::default()
    };
    // As CreateIdentityPool's request is checked: against the model, then its rules.
    let mut input = serde_json::to_value(&shape).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(fields) = input.as_object_mut() {
        fields.remove("IdentityPoolId");
    }
    crate::model::IDENTITY.check("CreateIdentityPool", &input)?;
    check_pool(store, tenant, &shape).await?;
    Ok(store.create_pool(tenant, region, name, allow_unauthenticated, settings).await?)
}

pub(super) async fn create_identity_pool(call: &Call) -> Result<IdentityPoolShape, ApiError> {
    let shape: IdentityPoolShape = call.input()?;
    let tenant = new_pool_tenant(call, &shape).await?;
    check_pool(&*call.state.store, &tenant, &shape).await?;
    let pool = call
        .state
        .store
        .create_pool(
            &tenant,
            &call.state.config.region,
            &shape.identity_pool_name,
            shape.allow_unauthenticated_identities,
            &shape.settings,
        )
        .await?;
    Ok(IdentityPoolShape::of(&pool))
}

pub(super) async fn describe_identity_pool(call: &Call) -> Result<IdentityPoolShape, ApiError> {
    let input: PoolIdInput = call.input()?;
    Ok(IdentityPoolShape::of(&own_pool(call, &input.identity_pool_id).await?))
}

pub(super) async fn update_identity_pool(call: &Call) -> Result<IdentityPoolShape, ApiError> {
    let shape: IdentityPoolShape = call.input()?;
    let pool = own_pool(call, &shape.identity_pool_id).await?;
    check_pool(&*call.state.store, &pool.tenant, &shape).await?;
    if let Some(old) = &pool.settings.developer_provider_name
        && shape.settings.developer_provider_name.as_ref() != Some(old)
    {
        return Err(ApiError::invalid_parameter(format!("DeveloperProviderName {old:?} cannot be changed once set")));
    }
    call.state
        .store
        .update_pool(&pool.pool_id, &shape.identity_pool_name, shape.allow_unauthenticated_identities, &shape.settings)
        .await?;
    Ok(IdentityPoolShape::of(&own_pool(call, &pool.pool_id).await?))
}

pub(super) async fn delete_identity_pool(call: &Call) -> Result<Empty, ApiError> {
    let input: PoolIdInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    call.state.store.delete_pool(&pool.pool_id).await?;
    Ok(Empty {})
}

pub(super) async fn list_identity_pools(call: &Call) -> Result<ListIdentityPoolsOutput, ApiError> {
    let input: ListInput = call.input()?;
    let max = max_results(input.max_results)?;
    let mut pools = call.state.store.pools_after(call.tenant(), &cursor(&input.next_token)?, max + 1).await?;
    let more = pools.len() > max;
    pools.truncate(max);
    Ok(ListIdentityPoolsOutput {
        next_token: more.then(|| B64.encode(&pools[pools.len() - 1].pool_id)),
        identity_pools: pools
            .into_iter()
            .map(|p| PoolShortDescription { identity_pool_id: p.pool_id, identity_pool_name: p.name })
            .collect(),
    })
}
