//! Errors on the wire: the model's error name, its HTTP status, and a message that says
//! what to change. Body `{"__type": ..., "message": ...}` plus `x-amzn-ErrorType`, which
//! is what the AWS SDKs parse into typed exceptions.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The model's error name, e.g. `ResourceConflictException`.
    pub name: &'static str,
    /// The HTTP status the model gives it.
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

macro_rules! constructors {
    ($($fn:ident => $name:literal, $status:literal;)*) => {
        impl ApiError {
            $(
                #[doc = concat!("`", $name, "` (HTTP ", stringify!($status), ").")]
                pub fn $fn(message: impl Into<String>) -> Self {
                    ApiError { name: $name, status: $status, message: message.into() }
                }
            )*
        }
    };
}

constructors! {
    not_authorized => "NotAuthorizedException", 403;
    invalid_parameter => "InvalidParameterException", 400;
    limit_exceeded => "LimitExceededException", 400;
    not_found => "ResourceNotFoundException", 404;
    conflict => "ResourceConflictException", 409;
    too_many_requests => "TooManyRequestsException", 429;
    internal => "InternalErrorException", 500;
    invalid_configuration => "InvalidConfigurationException", 400;
    unknown_operation => "UnknownOperationException", 400;
    request_timeout => "RequestTimeoutException", 408;
    duplicate_request => "DuplicateRequestException", 400;
    already_streamed => "AlreadyStreamedException", 400;
}

impl From<synctrig_runtime::Error> for ApiError {
    fn from(e: synctrig_runtime::Error) -> Self {
        ApiError { name: e.api_name(), status: e.http_status(), message: e.to_string() }
    }
}

impl From<synctrig_store::StoreError> for ApiError {
    fn from(e: synctrig_store::StoreError) -> Self {
        tracing::error!("{e}");
        if e.is_full() {
            // A 500: the SDKs retry it, and it passes once space is freed.
            return ApiError::internal(STORAGE_FULL);
        }
        ApiError::internal("internal error; the request changed nothing")
    }
}

/// What a write is answered while the database's storage is full.
pub const STORAGE_FULL: &str =
    "the service's storage is full, so it cannot write: nothing was changed. Reads still work; retry the write later";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({ "__type": self.name, "message": self.message });
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static(self.name));
        response
    }
}
