//! The one `google.rpc.Code` of the server: what a device's `lastErrorStatus`, the admin
//! API's error envelope and (later) gRPC statuses all carry. The numbers and names are
//! Google's (`google/rpc/code.proto`); the HTTP statuses follow Google's mapping, so
//! Google's client libraries raise their usual exception classes.

use axum::http::StatusCode;

/// A `google.rpc.Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// 0: not an error (a warning stored with an accepted connection).
    Ok = 0,
    /// 1: the operation was cancelled (the server ended a connection).
    Cancelled = 1,
    /// 2: an error with no better code.
    Unknown = 2,
    /// 3: the request breaks a rule (a malformed id, topic, packet or field).
    InvalidArgument = 3,
    /// 4: a timer ran out (CONNECT, keep-alive, idle).
    DeadlineExceeded = 4,
    /// 5: no such registry, device or resource.
    NotFound = 5,
    /// 6: the id is taken.
    AlreadyExists = 6,
    /// 7: authenticated, but not allowed (a blocked device, a wrong admin token).
    PermissionDenied = 7,
    /// 8: a limit or quota was hit.
    ResourceExhausted = 8,
    /// 9: valid, but the state of the resource forbids it (MQTT disabled, not connected).
    FailedPrecondition = 9,
    /// 10: a compare-and-set lost (`versionToUpdate`).
    Aborted = 10,
    /// 11: a value past the end (the HTTP bridge's `localVersion` ahead of the server).
    OutOfRange = 11,
    /// 12: not implemented (IAM methods).
    Unimplemented = 12,
    /// 13: a bug or a corrupt stored row.
    Internal = 13,
    /// 14: the store, sink or cluster link is not answering; retry.
    Unavailable = 14,
    /// 15: unrecoverable data loss.
    DataLoss = 15,
    /// 16: no credentials, or credentials that do not authenticate.
    Unauthenticated = 16,
}

impl Code {
    /// The number, as `google.rpc.Status.code` carries it.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The name, as the error envelope's `status` carries it.
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The HTTP status Google's REST APIs answer with for this code.
    pub fn http_status(self) -> StatusCode {
        match self {
            Code::Ok => StatusCode::OK,
            Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                StatusCode::BAD_REQUEST
            }
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_names_and_statuses_are_google_s() {
        let cases = [
            (Code::InvalidArgument, 3, "INVALID_ARGUMENT", 400),
            (Code::NotFound, 5, "NOT_FOUND", 404),
            (Code::AlreadyExists, 6, "ALREADY_EXISTS", 409),
            (Code::PermissionDenied, 7, "PERMISSION_DENIED", 403),
            (Code::ResourceExhausted, 8, "RESOURCE_EXHAUSTED", 429),
            (Code::FailedPrecondition, 9, "FAILED_PRECONDITION", 400),
            (Code::Unavailable, 14, "UNAVAILABLE", 503),
            (Code::Unauthenticated, 16, "UNAUTHENTICATED", 401),
        ];
        for (code, number, name, status) in cases {
            assert_eq!(
                (code.as_i32(), code.name(), code.http_status().as_u16()),
                (number, name, status)
            );
        }
    }
}
