//! A pool's identities through the API: list, describe, delete.

use super::Call;
use super::lookup::*;
use super::shapes::*;
use crate::error::ApiError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

pub(super) async fn list_identities(call: &Call) -> Result<ListIdentitiesOutput, ApiError> {
    let input: ListInput = call.input()?;
    let pool = own_pool(call, &input.identity_pool_id).await?;
    let max = max_results(input.max_results)?;
    let mut rows = call
        .state
        .store
        .identities_after(&pool.pool_id, &cursor(&input.next_token)?, max + 1, input.hide_disabled)
        .await?;
    let more = rows.len() > max;
    rows.truncate(max);
    Ok(ListIdentitiesOutput {
        identity_pool_id: pool.pool_id,
        next_token: more.then(|| B64.encode(&rows[rows.len() - 1].identity_id)),
        identities: rows.iter().map(IdentityDescription::of).collect(),
    })
}

pub(super) async fn describe_identity(call: &Call) -> Result<IdentityDescription, ApiError> {
    let input: IdentityIdInput = call.input()?;
    Ok(IdentityDescription::of(&own_identity(call, &input.identity_id).await?))
}

pub(super) async fn delete_identities(call: &Call) -> Result<DeleteIdentitiesOutput, ApiError> {
    let input: DeleteIdentitiesInput = call.input()?;
    if !(1..=60).contains(&input.identity_ids_to_delete.len()) {
        return Err(ApiError::invalid_parameter("IdentityIdsToDelete must hold 1 to 60 identity ids"));
    }
    for id in &input.identity_ids_to_delete {
        check_id("IdentityIdsToDelete", id)?;
    }
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    for id in input.identity_ids_to_delete {
        if own_identity(call, &id).await.is_ok() { mine.push(id) } else { theirs.push(id) }
    }
    let missing = call.state.store.delete_identities(None, &mine).await?;
    let unprocessed = theirs
        .into_iter()
        .chain(missing)
        .map(|identity_id| Unprocessed { identity_id, error_code: "AccessDenied" })
        .collect();
    Ok(DeleteIdentitiesOutput { unprocessed_identity_ids: unprocessed })
}
