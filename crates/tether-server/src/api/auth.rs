//! Admin authentication: one bearer token, kept only as its SHA-256 digest and
//! compared in constant time.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::digest::{SHA256, digest};

use super::ApiState;
use super::error::ApiError;
use crate::bridge::Code;

/// Length of a SHA-256 digest.
pub const DIGEST_LEN: usize = 32;

/// The admin token's digest, and where an operator finds the token.
#[derive(Clone)]
pub struct AdminAuth {
    digest: [u8; DIGEST_LEN],
    hint: String,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a token.
pub fn token_digest(token: &str) -> [u8; DIGEST_LEN] {
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

/// Equality that takes the same time wherever the inputs differ.
fn constant_time_eq(a: &[u8; DIGEST_LEN], b: &[u8; DIGEST_LEN]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl AdminAuth {
    /// From the plaintext token; `hint` tells a caller without a token where to find
    /// it (e.g. "the file ./tether-data/admin-token").
    pub fn from_token(token: &str, hint: impl Into<String>) -> Self {
        AdminAuth::from_digest(token_digest(token), hint)
    }

    /// From a stored digest.
    pub fn from_digest(digest: [u8; DIGEST_LEN], hint: impl Into<String>) -> Self {
        AdminAuth {
            digest,
            hint: hint.into(),
        }
    }

    /// Checks an `Authorization` header value.
    pub fn check(&self, header: Option<&str>) -> Result<(), ApiError> {
        let Some(header) = header else {
            return Err(ApiError::new(
                Code::Unauthenticated,
                format!(
                    "this call needs the admin token: send 'Authorization: Bearer <token>'; the token is in {}",
                    self.hint
                ),
            ));
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::new(
                    Code::Unauthenticated,
                    "the Authorization header must be 'Bearer <admin token>'",
                )
            })?;
        if constant_time_eq(&token_digest(token), &self.digest) {
            Ok(())
        } else {
            Err(ApiError::new(
                Code::PermissionDenied,
                format!(
                    "the admin token is not valid for this server (the valid one is in {})",
                    self.hint
                ),
            ))
        }
    }
}

/// Middleware: refuses calls without the admin token.
pub async fn require_admin(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.admin.check(header) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_check() {
        let auth = AdminAuth::from_token("s3cret", "the file X");
        assert!(auth.check(Some("Bearer s3cret")).is_ok());
        assert!(auth.check(None).is_err_and(|e| e.code == Code::Unauthenticated && e.message.contains("the file X")));
        assert!(
            auth.check(Some("Basic abc"))
                .is_err_and(|e| e.code == Code::Unauthenticated)
        );
        assert!(
            auth.check(Some("Bearer s3cre"))
                .is_err_and(|e| e.code == Code::PermissionDenied)
        );
    }
}
