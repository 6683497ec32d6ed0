//! The one error type of the Pub/Sub layer; each variant is one gRPC status code,
//! and its message says what to fix.

/// Why a Pub/Sub call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PubSubError {
    /// A field is missing, malformed or out of range (`INVALID_ARGUMENT`).
    #[error("{0}")]
    Invalid(String),
    /// The topic or subscription does not exist (`NOT_FOUND`).
    #[error("{0}")]
    NotFound(String),
    /// The name is taken (`ALREADY_EXISTS`).
    #[error("{0}")]
    AlreadyExists(String),
    /// The call conflicts with the current state (`FAILED_PRECONDITION`).
    #[error("{0}")]
    Precondition(String),
    /// A field or method Tether does not support (`UNIMPLEMENTED`).
    #[error("{0}")]
    Unsupported(String),
    /// A server-wide bound was reached (`RESOURCE_EXHAUSTED`).
    #[error("{0}")]
    Exhausted(String),
    /// The telemetry store or the catalog failed; retry (`UNAVAILABLE`).
    #[error("{0}")]
    Unavailable(String),
}

/// Results of the Pub/Sub layer.
pub type PubSubResult<T> = Result<T, PubSubError>;

impl From<crate::catalog::CatalogError> for PubSubError {
    fn from(e: crate::catalog::CatalogError) -> Self {
        PubSubError::Unavailable(e.to_string())
    }
}

impl From<tether_route::ReadError> for PubSubError {
    fn from(e: tether_route::ReadError) -> Self {
        match e {
            tether_route::ReadError::InvalidTopic { .. } => PubSubError::Invalid(e.to_string()),
            other => PubSubError::Unavailable(format!("reading telemetry: {other}")),
        }
    }
}

impl From<PubSubError> for tonic::Status {
    fn from(e: PubSubError) -> Self {
        match e {
            PubSubError::Invalid(m) => tonic::Status::invalid_argument(m),
            PubSubError::NotFound(m) => tonic::Status::not_found(m),
            PubSubError::AlreadyExists(m) => tonic::Status::already_exists(m),
            PubSubError::Precondition(m) => tonic::Status::failed_precondition(m),
            PubSubError::Unsupported(m) => tonic::Status::unimplemented(m),
            PubSubError::Exhausted(m) => tonic::Status::resource_exhausted(m),
            PubSubError::Unavailable(m) => tonic::Status::unavailable(m),
        }
    }
}
