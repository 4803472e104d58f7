//! Identity pools: usage and Cognito Events (the Sync Trigger mapping).

use super::authorize_pool;
use crate::call::{Call, max_results, name_cursor};
use crate::error::ApiError;
use crate::state::AppState;
use crate::triggers::parse_function_ref;
use crate::wire::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use synctrig_store::{Principal, Qualifier};

async fn pool_usage(state: &AppState, pool_id: &str) -> Result<IdentityPoolUsage, ApiError> {
    let usage = state.store.pool_usage(pool_id).await?;
    Ok(IdentityPoolUsage {
        identity_pool_id: pool_id.to_owned(),
        sync_sessions_count: usage.count,
        data_storage: usage.bytes,
        last_modified_date: usage.last_modified.map(Timestamp::from_secs),
    })
}

pub(crate) async fn list_identity_pool_usage(call: Call) -> Result<ListIdentityPoolUsageResponse, ApiError> {
    let max = max_results(&call, 60, 60)?;
    let after = name_cursor(&call)?;
    let tenant = match &call.cred.principal {
        Principal::Developer { tenant } => Some(tenant.as_str()),
        _ => None,
    };
    let mut pools = call.state.store.pools_after(tenant, &after, max + 1).await?;
    let more = pools.len() > max;
    pools.truncate(max);
    let mut usages = Vec::with_capacity(pools.len());
    for p in &pools {
        usages.push(pool_usage(&call.state, &p.pool_id).await?);
    }
    Ok(ListIdentityPoolUsageResponse {
        count: usages.len(),
        next_token: more.then(|| B64.encode(&pools[pools.len() - 1].pool_id)),
        identity_pool_usages: usages,
        max_results: max,
    })
}

pub(crate) async fn describe_identity_pool_usage(call: Call) -> Result<DescribeIdentityPoolUsageResponse, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    Ok(DescribeIdentityPoolUsageResponse { identity_pool_usage: pool_usage(&call.state, &pool.pool_id).await? })
}

pub(crate) async fn get_cognito_events(call: Call) -> Result<GetCognitoEventsResponse, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    let events = pool.sync_trigger.map(|f| ("SyncTrigger".to_owned(), f)).into_iter().collect();
    Ok(GetCognitoEventsResponse { events })
}

pub(crate) async fn set_cognito_events(call: Call) -> Result<Empty, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    let request: SetCognitoEventsRequest = call.body("SetCognitoEvents")?;
    if let Some(other) = request.events.keys().find(|k| *k != "SyncTrigger") {
        return Err(ApiError::invalid_parameter(format!("unknown event {other:?}; the only event is SyncTrigger")));
    }
    let mapping = request.events.get("SyncTrigger").filter(|v| !v.is_empty()).cloned();
    let mut named = None;
    if let Some(value) = &mapping {
        let (name, qualifier) = parse_function_ref(value).ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "SyncTrigger {value:?} is not a function name or arn:aws:lambda:<region>:<account>:function:<name>, \
                 optionally with :<version>, :<alias> or :$LATEST"
            ))
        })?;
        if call.state.store.resolve_function(&pool.tenant, &name, &qualifier).await?.is_none() {
            return Err(ApiError::invalid_parameter(format!(
                "no function {value:?} is deployed for this identity pool's tenant"
            )));
        }
        let alias = match qualifier {
            Qualifier::Alias(a) => Some(a),
            _ => None,
        };
        named = Some((name, alias));
    }
    let held = named.as_ref().map(|(name, a)| (pool.tenant.as_str(), name.as_str(), a.as_deref()));
    if !call.state.store.set_sync_trigger(&pool.pool_id, mapping.as_deref(), held).await? {
        return Err(ApiError::invalid_parameter(format!(
            "the function or alias {:?} was deleted meanwhile",
            mapping.unwrap_or_default()
        )));
    }
    // Compile it now, in the background, rather than on the pool's next update.
    if let Some(m) = mapping {
        for f in call.state.versions_of(&pool.tenant, &m).await? {
            call.state.triggers.prefetch(f);
        }
    }
    Ok(Empty {})
}
