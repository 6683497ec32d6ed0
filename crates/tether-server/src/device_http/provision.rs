//! `POST /v1/projects/P/locations/L/registries/R/devices/D:provision`: the HTTP
//! form of provisioning (docs/provisioning.md), for devices that only speak HTTP.
//! The bearer token is a provisioning claim's; the body and the reply are the MQTT
//! flow's, errors use Google's envelope.

use axum::body::Body;
use serde_json::Value;
use tether_registry::StoreError;
use tether_registry::model::HttpState;
use tether_registry::names::DeviceRef;

use super::{DeviceBridge, Target};
use crate::api::error::ApiError;
use crate::bridge::Code;
use crate::bridge::auth::unavailable;
use crate::bridge::provision::claim::Candidate;
use crate::bridge::provision::{self, ClaimCheck, request::MAX_BODY_BYTES};

/// Runs a provisioning call.
///
/// # Errors
/// Google's error envelope with the precise reason.
pub(super) async fn provision(
    bridge: &DeviceBridge,
    target: &Target,
    authorization: Option<&str>,
    body: Body,
) -> Result<Value, ApiError> {
    let inner = &bridge.inner;
    let token = super::auth::bearer(authorization)
        .map_err(|d| ApiError::new(Code::Unauthenticated, d.reason.message))?;
    let DeviceRef::Id(device_id) = &target.device else {
        return Err(ApiError::invalid(
            "provision names the device by its id, not its numId (it has none yet)",
        ));
    };
    let path = &target.registry;
    let registry = inner.store.get_registry(path).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::new(
            Code::NotFound,
            format!("registry '{path}' does not exist (check the project, region and registry)"),
        ),
        other => ApiError::new(Code::Unavailable, unavailable(&other).reason.message),
    })?;
    if registry.http_state == HttpState::Disabled {
        return Err(ApiError::new(
            Code::FailedPrecondition,
            format!(
                "HTTP is disabled for registry '{path}' (httpConfig.httpEnabledState is \
                 HTTP_DISABLED)"
            ),
        ));
    }
    let exists = match inner.store.get_device(path, &target.device).await {
        Ok(_) => true,
        Err(StoreError::NotFound(_)) => false,
        Err(other) => {
            return Err(ApiError::new(
                Code::Unavailable,
                unavailable(&other).reason.message,
            ));
        }
    };
    let now = inner.clock.unix_secs();
    let claims = inner
        .store
        .list_claims(path)
        .await
        .map_err(|e| ApiError::new(Code::Unavailable, unavailable(&e).reason.message))?;
    let candidate = Candidate {
        registry: &registry,
        device_id,
        token,
        exists,
    };
    let check = provision::claim::check(&claims, &*inner.credentials, candidate, inner.jwt, now);
    let session = match check {
        ClaimCheck::Session(session) => session,
        ClaimCheck::NoClaims => {
            return Err(ApiError::new(
                Code::PermissionDenied,
                format!(
                    "registry '{path}' has no provisioning claims, so devices cannot register \
                     themselves; create one (tether provisioning claims create)"
                ),
            ));
        }
        ClaimCheck::NotClaimed => {
            return Err(ApiError::new(
                Code::Unauthenticated,
                format!(
                    "the bearer token is not signed by any provisioning claim of registry \
                     '{path}'; send a JWT signed with a claim's key"
                ),
            ));
        }
        ClaimCheck::Refused(reason) => return Err(ApiError::new(reason.code, reason.message)),
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::invalid(format!(
                "the provisioning request is larger than {MAX_BODY_BYTES} bytes or was cut off"
            ))
        })?;
    let outcome = provision::provision(&*inner.store, &session, &bytes, inner.jwt, now).await;
    match outcome {
        Ok(_) => Ok(provision::reply(&session, &outcome)),
        Err(reason) => Err(ApiError::new(reason.code, reason.message)),
    }
}
