//! The rest-json operations: one table that routes a method and URI template to an
//! operation's name, the credential it needs and its handler (in `sync`, `functions` and
//! `archive`), and the routing of a request's path to it.

use crate::archive::export_identity_pool;
use crate::call::Call;
use crate::error::ApiError;
use crate::functions::*;
use crate::sync::{datasets::*, pools::*, records::*, streams::*, update::*};
use axum::http::Method;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use synctrig_sigv4::percent_decode;
use synctrig_store::{Credential, Principal};

/// Who may call an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Identity, developer or root credentials (the handler checks which identity).
    Any,
    /// Developer or root credentials.
    Developer,
}

type Handled = Pin<Box<dyn Future<Output = Result<axum::response::Response, ApiError>> + Send>>;

/// One operation of the API.
pub struct Operation {
    /// The model's operation name.
    pub name: &'static str,
    method: Method,
    /// The model's URI template, e.g. `/identitypools/{IdentityPoolId}/events`.
    pub(super) template: &'static str,
    pub access: Access,
    pub handler: fn(Call) -> Handled,
}

impl Operation {
    /// The HTTP method, as a name.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn method_name(&self) -> &'static str {
        match self.method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::DELETE => "DELETE",
            _ => "PUT",
        }
    }

    /// The names of the URI template's labels, in order.
    pub fn label_names(&self) -> impl Iterator<Item = &'static str> {
        self.template.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
    }
}

fn ok<T: Serialize>(value: T) -> axum::response::Response {
    axum::response::IntoResponse::into_response(axum::Json(value))
}

/// A handler's answer as a response: its typed output as JSON, or (`raw`) the response it
/// made itself.
macro_rules! reply {
    ($value:expr,) => {
        ok($value)
    };
    ($value:expr, raw) => {
        $value
    };
}

macro_rules! operations {
    ($($name:ident: $method:ident $template:literal, $access:ident => $handler:ident $(as $raw:ident)?;)*) => {
        /// Every operation: one entry each.
        pub static OPERATIONS: &[Operation] = &[$(
            Operation {
                name: stringify!($name),
                method: Method::$method,
                template: $template,
                access: Access::$access,
                handler: |call| Box::pin(async move { $handler(call).await.map(|v| reply!(v, $($raw)?)) }),
            },
        )*];
    };
}

operations! {
    ListIdentityPoolUsage: GET "/identitypools", Developer => list_identity_pool_usage;
    DescribeIdentityPoolUsage: GET "/identitypools/{IdentityPoolId}", Developer => describe_identity_pool_usage;
    GetCognitoEvents: GET "/identitypools/{IdentityPoolId}/events", Developer => get_cognito_events;
    SetCognitoEvents: POST "/identitypools/{IdentityPoolId}/events", Developer => set_cognito_events;
    GetIdentityPoolConfiguration: GET "/identitypools/{IdentityPoolId}/configuration", Developer => get_identity_pool_configuration;
    SetIdentityPoolConfiguration: POST "/identitypools/{IdentityPoolId}/configuration", Developer => set_identity_pool_configuration;
    BulkPublish: POST "/identitypools/{IdentityPoolId}/bulkpublish", Developer => bulk_publish;
    GetBulkPublishDetails: POST "/identitypools/{IdentityPoolId}/getBulkPublishDetails", Developer => get_bulk_publish_details;
    RegisterDevice: POST "/identitypools/{IdentityPoolId}/identity/{IdentityId}/device", Any => register_device;
    DescribeIdentityUsage: GET "/identitypools/{IdentityPoolId}/identities/{IdentityId}", Any => describe_identity_usage;
    ListDatasets: GET "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets", Any => list_datasets;
    DescribeDataset: GET "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}", Any => describe_dataset;
    UpdateRecords: POST "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}", Any => update_records;
    DeleteDataset: DELETE "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}", Any => delete_dataset;
    ListRecords: GET "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}/records", Any => list_records;
    SubscribeToDataset: POST "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}/subscriptions/{DeviceId}", Any => subscribe_to_dataset;
    UnsubscribeFromDataset: DELETE "/identitypools/{IdentityPoolId}/identities/{IdentityId}/datasets/{DatasetName}/subscriptions/{DeviceId}", Any => unsubscribe_from_dataset;
    ListTriggerInvocations: GET "/synctrig/functions/{FunctionName}/invocations", Developer => list_trigger_invocations;
    ExportIdentityPool: GET "/synctrig/identitypools/{IdentityPoolId}/export", Developer => export_identity_pool as raw;
    ListFunctions: GET "/synctrig/functions", Developer => list_functions;
    DescribeFunction: GET "/synctrig/functions/{FunctionName}", Developer => describe_function;
    DeleteFunction: DELETE "/synctrig/functions/{FunctionName}", Developer => delete_function;
    PublishFunctionVersion: POST "/synctrig/functions/{FunctionName}/versions", Developer => publish_function_version;
    GetFunctionVersion: GET "/synctrig/functions/{FunctionName}/versions/{Version}", Developer => get_function_version;
    TestFunction: POST "/synctrig/functions/{FunctionName}/test", Developer => test_function;
    ListAliases: GET "/synctrig/functions/{FunctionName}/aliases", Developer => list_aliases;
    CreateAlias: POST "/synctrig/functions/{FunctionName}/aliases", Developer => create_alias;
    GetAlias: GET "/synctrig/functions/{FunctionName}/aliases/{Name}", Developer => get_alias;
    UpdateAlias: PUT "/synctrig/functions/{FunctionName}/aliases/{Name}", Developer => update_alias;
    DeleteAlias: DELETE "/synctrig/functions/{FunctionName}/aliases/{Name}", Developer => delete_alias;
    ListRolloutDecisions: GET "/synctrig/functions/{FunctionName}/decisions", Developer => list_rollout_decisions;
    GetRecordingConfiguration: GET "/synctrig/functions/{FunctionName}/recording", Developer => get_recording_config;
    PutRecordingConfiguration: PUT "/synctrig/functions/{FunctionName}/recording", Developer => put_recording_config;
    ListRecordings: GET "/synctrig/functions/{FunctionName}/recordings", Developer => list_recordings;
    DeleteRecordings: DELETE "/synctrig/functions/{FunctionName}/recordings", Developer => delete_recordings;
    GetRecording: GET "/synctrig/functions/{FunctionName}/recordings/{RecordingId}", Developer => get_recording;
    DeleteRecording: DELETE "/synctrig/functions/{FunctionName}/recordings/{RecordingId}", Developer => delete_recording;
    ReplayFunction: POST "/synctrig/functions/{FunctionName}/replay", Developer => replay_function;
    GetShadowReport: GET "/synctrig/functions/{FunctionName}/shadow", Developer => get_shadow_report;
}

/// The operation a method and raw path name, with its labels decoded; `Err` when a label
/// is not valid percent-encoded UTF-8.
pub fn route(method: &Method, raw_path: &str) -> Result<Option<(&'static Operation, Vec<String>)>, ApiError> {
    let segments: Vec<&str> = raw_path.trim_start_matches('/').split('/').collect();
    for op in OPERATIONS.iter().filter(|op| op.method == method) {
        let template: Vec<&str> = op.template.trim_start_matches('/').split('/').collect();
        if template.len() != segments.len() {
            continue;
        }
        let mut labels = Vec::new();
        let matches = template.iter().zip(&segments).all(|(t, s)| {
            if t.starts_with('{') {
                labels.push(*s);
                true
            } else {
                t == s
            }
        });
        if matches {
            let decoded = labels
                .into_iter()
                .map(|l| {
                    percent_decode(l).ok_or_else(|| {
                        ApiError::invalid_parameter(format!("path segment {l:?} is not valid percent-encoded UTF-8"))
                    })
                })
                .collect::<Result<_, _>>()?;
            return Ok(Some((op, decoded)));
        }
    }
    Ok(None)
}

/// The operation a request names, refusing a path whose normalised form — the path its
/// signature covers — names a different operation or resource. Only datasets named `.`
/// or `..` can do that (e.g. `GET …/datasets/./records` is signed as
/// `GET …/datasets/records`); without this check a request signed for one could be sent
/// as the other.
pub fn route_signed(method: &Method, raw_path: &str) -> Result<Option<(&'static Operation, Vec<String>)>, ApiError> {
    let Some((op, labels)) = route(method, raw_path)? else { return Ok(None) };
    // An empty label is signed as the path without it (SigV4 merges slashes), so it could
    // name another operation too; it is refused as the model refuses it, by its name.
    if let Some(name) = op.label_names().zip(&labels).find(|(_, value)| value.is_empty()).map(|(name, _)| name) {
        return Err(super::model::empty_member(name));
    }
    let normalized = synctrig_sigv4::normalized_path(raw_path);
    if normalized != raw_path
        && let Ok(Some((other, other_labels))) = route(method, &normalized)
        && (other.name, &other_labels) != (op.name, &labels)
    {
        return Err(ApiError::invalid_parameter(format!(
            "{} of {:?} cannot be told apart from {} of {:?}: SigV4 signs the path with its '.' and '..' \
             segments removed, so dataset names '.' and '..' cannot be used with {}",
            op.name,
            labels.last().map(String::as_str).unwrap_or(""),
            other.name,
            other_labels.last().map(String::as_str).unwrap_or(""),
            op.name
        )));
    }
    Ok(Some((op, labels)))
}

/// Checks an operation's credential kind before its handler runs.
pub fn check_access(op: &Operation, cred: &Credential) -> Result<(), ApiError> {
    match (op.access, &cred.principal) {
        (Access::Developer, Principal::Identity { .. }) => {
            Err(ApiError::not_authorized(format!("{} needs developer credentials, not identity credentials", op.name)))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_operation_is_routed_by_its_own_name() {
        let model: serde_json::Value =
            serde_json::from_str(include_str!("models/cognito-sync-2014-06-30.json")).unwrap();
        for (name, op) in model["operations"].as_object().unwrap() {
            let method: Method = op["http"]["method"].as_str().unwrap().parse().unwrap();
            let uri = op["http"]["requestUri"].as_str().unwrap();
            // Fill every label with a sample value, as a client would.
            let path: Vec<String> = uri
                .split('/')
                .map(|s| if s.starts_with('{') { "us-east-1%3Aabc".to_owned() } else { s.to_owned() })
                .collect();
            let (routed, labels) = route(&method, &path.join("/")).unwrap().unwrap_or_else(|| panic!("{name}"));
            assert_eq!(routed.name, name);
            assert!(labels.iter().all(|l| l == "us-east-1:abc"));
        }
        assert!(route(&Method::GET, "/nothing").unwrap().is_none());
        assert!(route(&Method::GET, "/identitypools/%ff").is_err());
    }

    #[test]
    fn an_empty_label_is_refused_by_its_name() {
        for (method, path, name) in [
            (Method::GET, "/identitypools//events", "IdentityPoolId"),
            (Method::GET, "/identitypools/p/identities//datasets", "IdentityId"),
            (Method::GET, "/identitypools/p/identities/i/datasets//records", "DatasetName"),
        ] {
            let e = route_signed(&method, path).err().unwrap_or_else(|| panic!("{path}"));
            assert_eq!(
                e.message,
                format!(
                    "1 validation error detected: Value '' at '{name}' failed to satisfy constraint: \
                     Member must have length greater than or equal to 1"
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn dot_segments_that_would_move_a_signature_are_refused() {
        let ds = "/identitypools/p/identities/i/datasets";
        // Signed as DescribeDataset("records"), ListDatasets, DescribeIdentityUsage.
        for (method, path) in [
            (Method::GET, format!("{ds}/./records")),
            (Method::GET, format!("{ds}/.")),
            (Method::GET, format!("{ds}/..")),
        ] {
            let e = route_signed(&method, &path).err().unwrap_or_else(|| panic!("{path}"));
            assert!(e.message.contains("cannot be told apart"), "{}", e.message);
        }
        // Unambiguous uses work: nothing else is signed the same way.
        for (method, path, op) in [
            (Method::GET, format!("{ds}/../records"), "ListRecords"),
            (Method::POST, format!("{ds}/.."), "UpdateRecords"),
            (Method::POST, format!("{ds}/."), "UpdateRecords"),
            (Method::DELETE, format!("{ds}/."), "DeleteDataset"),
            (Method::GET, format!("{ds}/%2E/records"), "ListRecords"),
        ] {
            let (routed, _) = route_signed(&method, &path).unwrap().unwrap();
            assert_eq!(routed.name, op, "{path}");
        }
    }
}
