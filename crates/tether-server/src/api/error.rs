//! The one error type of the admin API, rendered as Google's error envelope
//! `{"error":{"code":404,"message":"…","status":"NOT_FOUND"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tether_registry::StoreError;
use tether_registry::names::NameError;

use crate::bridge::Code;
use crate::bridge::hub::HubError;
use crate::bridge::uplink::UplinkError;

/// A refused or failed API call: a code and a message that names the field and the
/// rule that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What kind of failure.
    pub code: Code,
    /// For the caller.
    pub message: String,
    /// 413 for an oversized body: Google has no code for it (the envelope says
    /// INVALID_ARGUMENT), the HTTP status says more.
    too_large: bool,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            too_large: false,
        }
    }

    /// 413: the request body is over a limit (INVALID_ARGUMENT in the envelope).
    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError {
            too_large: true,
            ..ApiError::new(Code::InvalidArgument, message)
        }
    }

    /// The HTTP status of the answer.
    pub fn http_status(&self) -> StatusCode {
        if self.too_large {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            self.code.http_status()
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
                "code": self.http_status().as_u16(),
                "message": self.message,
                "status": self.code.name(),
            }
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.http_status().as_u16();
        write!(f, "{status} {}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == Code::Internal {
            tracing::error!(message = %self.message, "admin API internal error");
        }
        (self.http_status(), axum::Json(self.envelope())).into_response()
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

impl From<UplinkError> for ApiError {
    fn from(e: UplinkError) -> Self {
        match e {
            UplinkError::Store(e) => ApiError::from(e),
            other => ApiError::new(
                Code::Unavailable,
                format!("the message was not accepted ({other}); retry"),
            ),
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
            HubError::LinkDown(m) => ApiError::new(Code::Unavailable, m),
        }
    }
}

/// Result of an API handler step.
pub type ApiResult<T> = Result<T, ApiError>;
