//! Cognito Streams and push sync: a pool's configuration, bulk publishes, devices and
//! their subscriptions. What these write is published by [`crate::streams`] (the outbox
//! is written by the changes themselves, in their transactions).

use super::{authorize_identity, authorize_pool, check_dataset_name};
use crate::call::Call;
use crate::error::ApiError;
use crate::state::AppState;
use crate::streams::record::valid_stream_name;
use crate::wire::*;
use synctrig_store::streams::{
    BulkRefused, ConfigurationRefused, PoolConfiguration, PushSettings, StreamsChange, SubscriptionRefused,
};

/// The longest push token kept (APNs tokens are 64 characters, FCM's about 160).
const MAX_TOKEN_BYTES: usize = 4096;

/// What to configure for streams and push sync to work.
fn no_broker(what: &str) -> String {
    format!(
        "{what} needs a message broker, and this server has none: start serve with --nats nats://HOST:4222 \
         (or SYNCTRIG_NATS_URL) naming a NATS server with JetStream enabled"
    )
}

fn answer(pool_id: String, config: PoolConfiguration) -> IdentityPoolConfigurationResponse {
    IdentityPoolConfigurationResponse {
        identity_pool_id: pool_id,
        push_sync: config.push.map(|p| PushSync { application_arns: Some(p.application_arns), role_arn: p.role_arn }),
        cognito_streams: config.streams.map(|s| CognitoStreams {
            stream_name: s.stream_name,
            role_arn: s.role_arn,
            streaming_status: Some(if s.enabled { "ENABLED" } else { "DISABLED" }.to_owned()),
            disabled_reason: s.disabled_reason,
        }),
    }
}

pub(crate) async fn get_identity_pool_configuration(call: Call) -> Result<IdentityPoolConfigurationResponse, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    let config = call.state.store.pool_configuration(&pool.pool_id).await?;
    Ok(answer(pool.pool_id, config))
}

pub(crate) async fn set_identity_pool_configuration(call: Call) -> Result<IdentityPoolConfigurationResponse, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    let request: SetIdentityPoolConfigurationRequest = call.body("SetIdentityPoolConfiguration")?;
    let broker = call.state.config.broker.as_ref();
    let streams = match request.cognito_streams {
        Some(s) => {
            let enabled = match s.streaming_status.as_deref() {
                None => None,
                Some("ENABLED") => Some(true),
                Some("DISABLED") => Some(false),
                Some(other) => {
                    return Err(ApiError::invalid_parameter(format!(
                        "StreamingStatus {other:?} must be ENABLED or DISABLED"
                    )));
                }
            };
            if let Some(name) = &s.stream_name {
                let push_stream = broker.map_or("SYNCTRIG_PUSH", |b| b.push_stream.as_str());
                if !valid_stream_name(name, push_stream) {
                    return Err(ApiError::invalid_parameter(format!(
                        "StreamName {name:?} cannot name a JetStream stream: no spaces, '.', '*', '>', '/' or '\\', \
                         and not {push_stream:?} (the push stream)"
                    )));
                }
            }
            Some(StreamsChange { stream_name: s.stream_name, role_arn: s.role_arn, enabled })
        }
        None => None,
    };
    let push = request.push_sync.map(|p| {
        let current = p.application_arns.unwrap_or_default();
        PushSettings { application_arns: current, role_arn: p.role_arn }
    });
    if broker.is_none() {
        if streams.as_ref().is_some_and(|s| s.enabled != Some(false)) {
            return Err(ApiError::invalid_parameter(no_broker("Cognito streams")));
        }
        if push.as_ref().is_some_and(|p| !p.application_arns.is_empty()) {
            return Err(ApiError::invalid_parameter(no_broker("Push sync")));
        }
    }
    let set = call.state.store.set_pool_configuration(&pool.tenant, &pool.pool_id, streams.as_ref(), push.as_ref());
    match set.await? {
        Ok(config) => Ok(answer(pool.pool_id, config)),
        Err(ConfigurationRefused::StreamNameTaken) => Err(ApiError::invalid_parameter(
            "StreamName is in use by another tenant's identity pool: choose another name",
        )),
        Err(ConfigurationRefused::NoStreamName) => {
            Err(ApiError::invalid_parameter("CognitoStreams needs a StreamName to be ENABLED"))
        }
    }
}

pub(crate) async fn bulk_publish(call: Call) -> Result<BulkPublishResponse, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    if call.state.config.broker.is_none() {
        return Err(ApiError::invalid_parameter(no_broker("BulkPublish")));
    }
    match call.state.store.start_bulk_publish(&pool.pool_id).await? {
        Ok(_) => Ok(BulkPublishResponse { identity_pool_id: pool.pool_id }),
        Err(BulkRefused::NotStreaming) => Err(ApiError::invalid_parameter(
            "BulkPublish needs Cognito streams ENABLED for the identity pool (SetIdentityPoolConfiguration)",
        )),
        Err(BulkRefused::InProgress) => {
            Err(ApiError::duplicate_request("a bulk publish of this identity pool is in progress"))
        }
        Err(BulkRefused::AlreadyStreamed) => {
            Err(ApiError::already_streamed("a bulk publish of this identity pool succeeded less than 24 hours ago"))
        }
    }
}

pub(crate) async fn get_bulk_publish_details(call: Call) -> Result<GetBulkPublishDetailsResponse, ApiError> {
    let pool = authorize_pool(&call.state, &call.cred, call.label(0)).await?;
    let bulk = call.state.store.bulk_publish(&pool.pool_id).await?;
    Ok(match bulk {
        None => GetBulkPublishDetailsResponse {
            identity_pool_id: pool.pool_id,
            bulk_publish_start_time: None,
            bulk_publish_complete_time: None,
            bulk_publish_status: "NOT_STARTED".into(),
            failure_message: None,
        },
        Some(b) => GetBulkPublishDetailsResponse {
            identity_pool_id: pool.pool_id,
            bulk_publish_start_time: Some(Timestamp::from_millis(b.started_ms)),
            bulk_publish_complete_time: b.completed_ms.map(Timestamp::from_millis),
            bulk_publish_status: b.status,
            failure_message: b.failure,
        },
    })
}

/// The pool of an identity, if push sync is configured for it.
async fn push_pool(state: &AppState, call: &Call) -> Result<String, ApiError> {
    let pool = authorize_identity(state, &call.cred, call.label(0), call.label(1)).await?;
    let config = state.store.pool_configuration(&pool.pool_id).await?;
    if !config.push_enabled() || state.config.broker.is_none() {
        return Err(ApiError::invalid_configuration(
            "push sync is not configured for this identity pool (SetIdentityPoolConfiguration's PushSync names no \
             ApplicationArns)",
        ));
    }
    Ok(pool.pool_id)
}

pub(crate) async fn register_device(call: Call) -> Result<RegisterDeviceResponse, ApiError> {
    let request: RegisterDeviceRequest = call.body("RegisterDevice")?;
    let pool = push_pool(&call.state, &call).await?;
    let (Some(platform), Some(token)) = (request.platform, request.token) else {
        return Err(ApiError::invalid_parameter("RegisterDevice needs Platform and Token"));
    };
    // The model bounds no token, but every push message carries it: a bound far above any
    // push service's tokens keeps each message well under the broker's largest.
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(ApiError::invalid_parameter(format!("Token must be 1 to {MAX_TOKEN_BYTES} bytes")));
    }
    let device_id = call.state.store.register_device(&pool, call.label(1), &platform, &token).await?;
    Ok(RegisterDeviceResponse { device_id })
}

async fn subscription(call: Call, on: bool) -> Result<Empty, ApiError> {
    push_pool(&call.state, &call).await?;
    let (identity, dataset, device) = (call.label(1), call.label(2), call.label(3));
    check_dataset_name(dataset)?;
    match call.state.store.subscribe(identity, dataset, device, on).await? {
        Ok(()) => Ok(Empty {}),
        Err(SubscriptionRefused::UnknownDevice) => {
            Err(ApiError::not_found(format!("device {device:?} is not registered for identity {identity}")))
        }
    }
}

pub(crate) async fn subscribe_to_dataset(call: Call) -> Result<Empty, ApiError> {
    subscription(call, true).await
}

pub(crate) async fn unsubscribe_from_dataset(call: Call) -> Result<Empty, ApiError> {
    subscription(call, false).await
}
