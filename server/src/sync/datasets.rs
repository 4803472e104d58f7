//! An identity's datasets: its usage, the listing, one dataset, and its deletion.

use super::{authorize_identity, check_dataset_name, principal_name};
use crate::call::{Call, max_results, name_cursor};
use crate::error::ApiError;
use crate::wire::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use synctrig_runtime::limits;
use synctrig_store::{DatasetKey, DatasetRow};

pub(crate) async fn describe_identity_usage(call: Call) -> Result<DescribeIdentityUsageResponse, ApiError> {
    let (pool_id, identity_id) = (call.label(0), call.label(1));
    let pool = authorize_identity(&call.state, &call.cred, pool_id, identity_id).await?;
    let usage = call.state.store.identity_usage(&pool.pool_id, identity_id).await?;
    Ok(DescribeIdentityUsageResponse {
        identity_usage: IdentityUsage {
            identity_id: identity_id.to_owned(),
            identity_pool_id: pool.pool_id,
            last_modified_date: usage.last_modified.map(Timestamp::from_secs),
            dataset_count: usage.count,
            data_storage: usage.bytes,
        },
    })
}

pub(crate) async fn list_datasets(call: Call) -> Result<ListDatasetsResponse, ApiError> {
    let (pool_id, identity_id) = (call.label(0), call.label(1));
    let pool = authorize_identity(&call.state, &call.cred, pool_id, identity_id).await?;
    let max = max_results(&call, 20, limits::MAX_DATASETS_PER_IDENTITY.max(20))?;
    let after = name_cursor(&call)?;
    let mut rows = call.state.store.datasets_after(&pool.pool_id, identity_id, &after, max + 1).await?;
    let more = rows.len() > max;
    rows.truncate(max);
    Ok(ListDatasetsResponse {
        count: rows.len(),
        next_token: more.then(|| B64.encode(&rows[rows.len() - 1].name)),
        datasets: rows.iter().map(|d| Dataset::new(identity_id, d)).collect(),
    })
}

pub(crate) async fn describe_dataset(call: Call) -> Result<DatasetResponse, ApiError> {
    let (pool_id, identity_id, name) = (call.label(0), call.label(1), call.label(2));
    check_dataset_name(name)?;
    let pool = authorize_identity(&call.state, &call.cred, pool_id, identity_id).await?;
    match call.state.store.dataset(DatasetKey::new(&pool.pool_id, identity_id, name)).await? {
        Some(d) if !d.deleted => Ok(DatasetResponse { dataset: Dataset::new(identity_id, &d) }),
        _ => Err(ApiError::not_found(format!("dataset {name} does not exist"))),
    }
}

pub(crate) async fn delete_dataset(call: Call) -> Result<DatasetResponse, ApiError> {
    let (pool_id, identity_id, name) = (call.label(0), call.label(1), call.label(2));
    check_dataset_name(name)?;
    let pool = authorize_identity(&call.state, &call.cred, pool_id, identity_id).await?;
    let key = DatasetKey::new(&pool.pool_id, identity_id, name);
    let deleted: Option<DatasetRow> = call.state.store.delete_dataset(key, &principal_name(&call.cred)).await?;
    match deleted {
        Some(d) => Ok(DatasetResponse { dataset: Dataset::new(identity_id, &d) }),
        None => Err(ApiError::not_found(format!("dataset {name} does not exist"))),
    }
}
