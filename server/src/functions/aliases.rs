//! Aliases of a function (Lambda's shapes: `live` → version 3, with an optional share for
//! a second version), rollouts of that second version, and the decisions they made.

use super::{function_name, function_not_found, tenant};
use crate::call::{Call, max_results};
use crate::error::ApiError;
use crate::releases::shown_figures;
use crate::triggers::alias_name_ok;
use crate::wire::*;
use synctrig_store::releases::{MAX_ALIASES_PER_FUNCTION, MAX_WEIGHT_BP, RolloutSettings, Routing};
use synctrig_store::{Alias, AliasChange, AliasRefused, PutMode, Store};

pub use crate::wire::{AliasConfiguration, AliasRoutingConfig, PutAliasRequest, RolloutConfig, VersionFiguresShown};

/// The error margin a rollout keeps unless told otherwise (5 points).
const DEFAULT_ERROR_MARGIN_BP: i64 = 500;
/// Invocations of a candidate before it is judged, unless told otherwise.
const DEFAULT_MIN_INVOCATIONS: i64 = 20;
/// The longest a rollout may be set to run before it is promoted: 30 days.
const MAX_ROLLOUT_SECONDS: i64 = 30 * 86_400;

fn alias_label(call: &Call, index: usize) -> Result<String, ApiError> {
    let name = call.label(index);
    alias_name(name)
}

fn alias_name(name: &str) -> Result<String, ApiError> {
    alias_name_ok(name).map(str::to_owned).ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "alias name {name:?} must be 1 to 128 letters, digits, - or _, and not all digits"
        ))
    })
}

fn version_number(what: &str, v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>().ok().filter(|n| *n >= 1 && v.bytes().all(|b| b.is_ascii_digit())).ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "{what} {v:?} is not a version number (an alias points to a published version)"
        ))
    })
}

fn share_bp(weight: f64) -> Result<i64, ApiError> {
    let max = MAX_WEIGHT_BP as f64 / 10_000.0;
    if !(weight.is_finite() && (0.0..=max).contains(&weight)) {
        return Err(ApiError::invalid_parameter(format!("a version's weight must be from 0 to {max}, not {weight}")));
    }
    Ok((weight * 10_000.0).round() as i64)
}

fn rate_bp(what: &str, rate: f64) -> Result<i64, ApiError> {
    if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
        return Err(ApiError::invalid_parameter(format!("{what} must be from 0 to 1, not {rate}")));
    }
    Ok((rate * 10_000.0).round() as i64)
}

/// The change a request asks for, checked.
fn change_of(request: &PutAliasRequest) -> Result<AliasChange, ApiError> {
    let version = request
        .function_version
        .as_deref()
        .ok_or_else(|| ApiError::invalid_parameter("FunctionVersion is required"))
        .and_then(|v| version_number("FunctionVersion", v))?;
    let weights = request.routing_config.as_ref().map(|r| &r.additional_version_weights);
    let routing = match weights.map(|w| w.iter().collect::<Vec<_>>()).unwrap_or_default().as_slice() {
        [] => None,
        [(v, weight)] => {
            let second = version_number("AdditionalVersionWeights key", v)?;
            if second == version {
                return Err(ApiError::invalid_parameter("the additional version must differ from FunctionVersion"));
            }
            let weight_bp = share_bp(**weight)?;
            (weight_bp > 0).then_some(Routing { version: second, weight_bp })
        }
        _ => return Err(ApiError::invalid_parameter("AdditionalVersionWeights takes one version at most")),
    };
    let rollout = match &request.rollout {
        None => None,
        Some(r) => {
            if routing.is_none() {
                return Err(ApiError::invalid_parameter(
                    "a Rollout needs RoutingConfig with the candidate version and a weight above 0",
                ));
            }
            if r.promote_after_invocations.is_none() && r.promote_after_seconds.is_none() {
                return Err(ApiError::invalid_parameter(
                    "a Rollout needs PromoteAfterInvocations, PromoteAfterSeconds or both",
                ));
            }
            if r.promote_after_invocations.is_some_and(|n| !(1..=1_000_000_000).contains(&n)) {
                return Err(ApiError::invalid_parameter("PromoteAfterInvocations must be from 1 to 1,000,000,000"));
            }
            if r.promote_after_seconds.is_some_and(|s| !(1..=MAX_ROLLOUT_SECONDS).contains(&s)) {
                return Err(ApiError::invalid_parameter(format!(
                    "PromoteAfterSeconds must be from 1 to {MAX_ROLLOUT_SECONDS} (30 days)"
                )));
            }
            let min_invocations = r.min_invocations.unwrap_or(DEFAULT_MIN_INVOCATIONS);
            if !(1..=1_000_000).contains(&min_invocations) {
                return Err(ApiError::invalid_parameter("MinInvocations must be from 1 to 1,000,000"));
            }
            Some(RolloutSettings {
                promote_after_invocations: r.promote_after_invocations,
                promote_after_seconds: r.promote_after_seconds,
                error_margin_bp: r
                    .max_error_rate_increase
                    .map(|m| rate_bp("MaxErrorRateIncrease", m))
                    .transpose()?
                    .unwrap_or(DEFAULT_ERROR_MARGIN_BP),
                reject_margin_bp: r
                    .max_reject_rate_increase
                    .map(|m| rate_bp("MaxRejectRateIncrease", m))
                    .transpose()?,
                min_invocations,
            })
        }
    };
    let description = request.description.clone().unwrap_or_default();
    if description.chars().count() > 256 {
        return Err(ApiError::invalid_parameter("Description must be at most 256 characters"));
    }
    Ok(AliasChange { version, routing, rollout, description })
}

fn refused(function: &str, alias: &str, r: AliasRefused) -> ApiError {
    match r {
        AliasRefused::NoVersion(v) => function_not_found(&format!("{function}:{v}")),
        AliasRefused::Exists => ApiError::conflict(format!("alias {alias:?} of {function:?} exists already")),
        AliasRefused::Missing => ApiError::not_found(format!("function {function:?} has no alias {alias:?}")),
        AliasRefused::TooMany => {
            ApiError::limit_exceeded(format!("a function may have at most {MAX_ALIASES_PER_FUNCTION} aliases"))
        }
        AliasRefused::InUse { pool } => ApiError::conflict(format!(
            "alias {alias:?} is the SyncTrigger of identity pool {pool}: point the pool elsewhere first"
        )),
        AliasRefused::Changed { epoch } => ApiError::conflict(format!(
            "alias {alias:?} changed meanwhile (its RevisionId is now {epoch}): read it and try again"
        )),
    }
}

fn weights(routing: Option<Routing>) -> Option<AliasRoutingConfig> {
    routing.map(|r| AliasRoutingConfig {
        additional_version_weights: [(r.version.to_string(), r.weight_bp as f64 / 10_000.0)].into(),
    })
}

/// An alias as the API shows it, with the figures of its current revision.
pub async fn shown(store: &Store, tenant: &str, alias: Alias) -> Result<AliasConfiguration, ApiError> {
    let figures = store.figures(tenant, &alias.function, &alias.alias, alias.epoch).await?;
    Ok(AliasConfiguration {
        figures: figures.iter().map(|f| shown_figures(f.version, f)).collect(),
        routing_config: weights(alias.routing),
        rollout: alias.rollout.map(|r| RolloutConfig {
            promote_after_invocations: r.promote_after_invocations,
            promote_after_seconds: r.promote_after_seconds,
            max_error_rate_increase: Some(r.error_margin_bp as f64 / 10_000.0),
            max_reject_rate_increase: r.reject_margin_bp.map(|m| m as f64 / 10_000.0),
            min_invocations: Some(r.min_invocations),
        }),
        name: alias.alias,
        function_name: alias.function,
        function_version: alias.version.to_string(),
        description: alias.description,
        revision_id: alias.epoch.to_string(),
        revision_started: alias.epoch_started,
    })
}

pub(crate) async fn list_aliases(call: Call) -> Result<ListAliasesResponse, ApiError> {
    let (tenant, function) = (tenant(&call)?, function_name(&call)?);
    let mut aliases = Vec::new();
    for alias in call.state.store.aliases(&tenant, &function).await? {
        aliases.push(shown(&*call.state.store, &tenant, alias).await?);
    }
    Ok(ListAliasesResponse { aliases })
}

pub(crate) async fn get_alias(call: Call) -> Result<AliasConfiguration, ApiError> {
    let (tenant, function, name) = (tenant(&call)?, function_name(&call)?, alias_label(&call, 1)?);
    let alias = call.state.store.alias(&tenant, &function, &name).await?;
    let alias = alias.ok_or_else(|| refused(&function, &name, AliasRefused::Missing))?;
    shown(&*call.state.store, &tenant, alias).await
}

pub(crate) async fn create_alias(call: Call) -> Result<AliasConfiguration, ApiError> {
    let (tenant, function) = (tenant(&call)?, function_name(&call)?);
    let request: PutAliasRequest = call.body("CreateAlias")?;
    let name = alias_name(request.name.as_deref().ok_or_else(|| ApiError::invalid_parameter("Name is required"))?)?;
    put(call, (tenant, function, name), request, PutMode::Create).await
}

pub(crate) async fn update_alias(call: Call) -> Result<AliasConfiguration, ApiError> {
    let (tenant, function, name) = (tenant(&call)?, function_name(&call)?, alias_label(&call, 1)?);
    let request: PutAliasRequest = call.body("UpdateAlias")?;
    if request.name.as_ref().is_some_and(|n| *n != name) {
        return Err(ApiError::invalid_parameter("an alias is not renamed: create the new name, then delete this one"));
    }
    put(call, (tenant, function, name), request, PutMode::Update).await
}

async fn put(
    call: Call,
    (tenant, function, name): (String, String, String),
    request: PutAliasRequest,
    mode: PutMode,
) -> Result<AliasConfiguration, ApiError> {
    let alias = put_alias(&*call.state.store, (&tenant, &function, &name), &request, Some(mode)).await?;
    // Compile its versions now, in the background, rather than on the next sync.
    for f in call.state.versions_of(&tenant, &format!("{function}:{name}")).await? {
        call.state.triggers.prefetch(f);
    }
    shown(&*call.state.store, &tenant, alias).await
}

/// Creates or replaces an alias as `request` asks (`mode` `None`: whichever applies), with
/// the API's checks; what the API and `admin alias` both do.
pub async fn put_alias(
    store: &Store,
    (tenant, function, name): (&str, &str, &str),
    request: &PutAliasRequest,
    mode: Option<PutMode>,
) -> Result<Alias, ApiError> {
    let change = change_of(request)?;
    let expected = match request.revision_id.as_deref() {
        None => None,
        Some(r) => Some(
            r.parse::<i64>()
                .map_err(|_| ApiError::invalid_parameter(format!("RevisionId {r:?} is not one of ours")))?,
        ),
    };
    let put = |mode| store.put_alias(tenant, function, name, &change, mode, expected);
    let result = match mode {
        Some(mode) => put(mode).await?,
        None => match put(PutMode::Update).await? {
            Err(AliasRefused::Missing) => put(PutMode::Create).await?,
            other => other,
        },
    };
    result.map_err(|r| refused(function, name, r))
}

/// Deletes an alias with the API's checks.
pub async fn remove_alias(store: &Store, (tenant, function, name): (&str, &str, &str)) -> Result<(), ApiError> {
    alias_name(name)?;
    store.delete_alias(tenant, function, name).await?.map_err(|r| refused(function, name, r))
}

/// A function's latest rollout decisions as the API shows them.
pub async fn decisions(
    store: &Store,
    tenant: &str,
    function: &str,
    limit: i64,
) -> Result<ListRolloutDecisionsResponse, ApiError> {
    let decisions = store.decisions(tenant, function, limit).await?;
    Ok(ListRolloutDecisionsResponse {
        decisions: decisions
            .into_iter()
            .map(|d| RolloutDecision {
                at: Timestamp::from_secs(d.at),
                alias: d.alias,
                revision_id: d.epoch.to_string(),
                decision: d.decision,
                primary_version: d.primary.to_string(),
                candidate_version: d.candidate.to_string(),
                reason: d.reason,
                figures: serde_json::from_str(&d.figures).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
    })
}

pub(crate) async fn delete_alias(call: Call) -> Result<Empty, ApiError> {
    let (tenant, function, name) = (tenant(&call)?, function_name(&call)?, alias_label(&call, 1)?);
    remove_alias(&*call.state.store, (&tenant, &function, &name)).await?;
    Ok(Empty {})
}

pub(crate) async fn list_rollout_decisions(call: Call) -> Result<ListRolloutDecisionsResponse, ApiError> {
    let (tenant, function) = (tenant(&call)?, function_name(&call)?);
    let limit = max_results(&call, 20, 100)? as i64;
    decisions(&*call.state.store, &tenant, &function, limit).await
}
