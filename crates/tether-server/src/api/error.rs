//! The one error type of the admin API, rendered as Google's error envelope
//! `{"error":{"code":404,"message":"…","status":"NOT_FOUND"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tether_registry::StoreError;
use tether_registry::names::NameError;

use crate::hub::HubError;

/// The `google.rpc.Code`s the API answers with. The HTTP status follows Google's
/// mapping (`google/rpc/code.proto`), so Google's client libraries raise the usual
/// exception classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// 400: the request breaks a rule.
    InvalidArgument,
    /// 400: valid, but the state of the resource forbids it.
    FailedPrecondition,
    /// 401: no admin token.
    Unauthenticated,
    /// 403: a wrong admin token.
    PermissionDenied,
    /// 404.
    NotFound,
    /// 409: the id is taken.
    AlreadyExists,
    /// 409: a compare-and-set lost (`versionToUpdate`).
    Aborted,
    /// 400: a value past the end (the HTTP bridge's `localVersion` ahead of the server).
    OutOfRange,
    /// 413: the request body is over the admin API's limit.
    PayloadTooLarge,
    /// 429.
    ResourceExhausted,
    /// 500.
    Internal,
    /// 501: IAM methods.
    Unimplemented,
    /// 503.
    Unavailable,
}

impl Code {
    /// The HTTP status.
    pub fn http_status(self) -> StatusCode {
        match self {
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                StatusCode::BAD_REQUEST
            }
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `status` string of the envelope (the `google.rpc.Code` name). Google has no
    /// code for 413; its body says INVALID_ARGUMENT, the HTTP status says more.
    pub fn status_name(self) -> &'static str {
        match self {
            Code::InvalidArgument | Code::PayloadTooLarge => "INVALID_ARGUMENT",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::Internal => "INTERNAL",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Unavailable => "UNAVAILABLE",
        }
    }
}

/// A refused or failed API call: a code and a message that names the field and the
/// rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {}: {message}", .code.http_status().as_u16(), .code.status_name())]
pub struct ApiError {
    /// What kind of failure.
    pub code: Code,
    /// For the caller.
    pub message: String,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// 400 INVALID_ARGUMENT.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(Code::InvalidArgument, message)
    }

    /// 400 FAILED_PRECONDITION.
    pub fn precondition(message: impl Into<String>) -> Self {
        ApiError::new(Code::FailedPrecondition, message)
    }

    /// 404 NOT_FOUND.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(Code::NotFound, message)
    }

    /// The envelope as JSON.
    pub fn envelope(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "code": self.code.http_status().as_u16(),
                "message": self.message,
                "status": self.code.status_name(),
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == Code::Internal {
            tracing::error!(message = %self.message, "admin API internal error");
        }
        (self.code.http_status(), axum::Json(self.envelope())).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::new(Code::NotFound, m),
            StoreError::AlreadyExists(m) => ApiError::new(Code::AlreadyExists, m),
            StoreError::FailedPrecondition(m) => ApiError::new(Code::FailedPrecondition, m),
            StoreError::Aborted(m) => ApiError::new(Code::Aborted, m),
            StoreError::InvalidArgument(m) => ApiError::new(Code::InvalidArgument, m),
            // The database text is for the log, not for the caller.
            corrupt @ StoreError::Corrupt { .. } => {
                tracing::error!(error = %corrupt, "store failure");
                ApiError::new(
                    Code::Internal,
                    "the registry store holds data it cannot read; see the server log",
                )
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::new(
                    Code::Unavailable,
                    "the registry store is unavailable; see the server log",
                )
            }
        }
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::invalid(e.0)
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::NotConnected | HubError::NotSubscribed(_) => {
                ApiError::precondition(e.to_string())
            }
            HubError::Unavailable(m) => ApiError::new(Code::ResourceExhausted, m),
        }
    }
}

/// Result of an API handler step.
pub type ApiResult<T> = Result<T, ApiError>;
