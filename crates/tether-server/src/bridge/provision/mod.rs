//! Zero-touch provisioning: a device that does not exist yet registers the key it
//! generated, through a registry's provisioning claim (docs/provisioning.md). MQTT
//! (`/devices/D/provision`) and the HTTP bridge (`…/devices/D:provision`) share it.
//!
//! ```text
//!  claim token ─▶ claim::check (which claim, live, pattern, room) ─▶ ClaimSession
//!  request ─▶ request::parse (key in any format, ES256_RAW too)
//!          ─▶ the registry's key rules ─▶ proof::check (signed by the NEW key, sub = D)
//!          ─▶ Store::provision_device (atomic: count, revocation, idempotent retry)
//!          ─▶ Reply {device, credential} or {error}
//! ```
//!
//! Nothing is registered before the proof verifies against the submitted key, and a
//! claim never changes a device that exists.

pub mod claim;
pub mod proof;
pub mod request;
pub mod rotate;

use serde_json::{Value, json};
use tether_registry::model::{Device, DeviceCredential, GatewayConfig, Timestamp};
use tether_registry::provisioning::{PROVISIONED_BY, PROVISIONED_TIME};
use tether_registry::{Store, StoreError};

pub use claim::{ClaimCheck, ClaimSession};

use crate::bridge::auth::{JwtPolicy, unavailable};
use crate::bridge::{Code, Reason};

/// A provisioned device, as the reply names it.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The device.
    pub device: Device,
    /// False when this answered a retry (the device was there already).
    pub created: bool,
    /// The registered key's format name.
    pub format: &'static str,
    /// The registered key's fingerprint (`sha256:…`).
    pub fingerprint: String,
}

/// Runs one provisioning request of `session` at `now` (Unix seconds).
///
/// # Errors
/// Why nothing was registered, in words the device's owner can act on.
pub async fn provision(
    store: &dyn Store,
    session: &ClaimSession,
    body: &[u8],
    policy: JwtPolicy,
    now: i64,
) -> Result<Provisioned, Reason> {
    let outcome = run(store, session, body, policy, now).await;
    let result = match &outcome {
        Ok(p) if p.created => "created",
        Ok(_) => "repeated",
        Err(_) => "refused",
    };
    metrics::counter!("tether_provisioning_requests_total", "result" => result).increment(1);
    outcome
}

async fn run(
    store: &dyn Store,
    session: &ClaimSession,
    body: &[u8],
    policy: JwtPolicy,
    now: i64,
) -> Result<Provisioned, Reason> {
    if let Some(refusal) = &session.refusal {
        return Err(refusal.clone());
    }
    let request = request::parse(body)?;
    let registry = &session.registry;
    let at = Timestamp::from_secs(now);
    let credential = DeviceCredential {
        public_key: request.credential.clone(),
        expiration_time: None,
    };
    // The registry's rules for device keys hold here too (strength, CA-signed
    // certificates while it has CAs).
    tether_registry::credentials::validate_device_credentials(
        std::slice::from_ref(&credential),
        registry,
        at,
    )
    .map_err(|e| {
        Reason::new(
            Code::InvalidArgument,
            "provision_key",
            format!("the submitted key cannot be registered: {e}"),
        )
    })?;
    proof::check(
        &request.proof,
        &request.key,
        &registry.path.project,
        &session.device_id,
        policy,
        now,
    )?;
    let template = &session.claim.device_template;
    let mut metadata = template.metadata.clone();
    metadata.insert(PROVISIONED_BY.into(), session.claim.id.clone());
    metadata.insert(
        PROVISIONED_TIME.into(),
        tether_jwt::time::Utc(now).to_string(),
    );
    let device = Device {
        id: session.device_id.clone(),
        credentials: vec![credential],
        metadata,
        log_level: template.log_level,
        gateway_config: GatewayConfig {
            gateway_type: template.gateway_type,
            gateway_auth_method: template.gateway_auth_method,
            ..GatewayConfig::default()
        },
        ..Device::default()
    };
    let done = store
        .provision_device(&registry.path, &session.claim.id, &device, at)
        .await
        .map_err(|e| match e {
            StoreError::FailedPrecondition(m) if m.contains("maximum") => {
                Reason::new(Code::ResourceExhausted, "claim_full", m)
            }
            StoreError::FailedPrecondition(m) => {
                Reason::new(Code::PermissionDenied, "claim_unusable", m)
            }
            StoreError::AlreadyExists(m) => Reason::new(Code::AlreadyExists, "device_exists", m),
            StoreError::NotFound(m) => Reason::new(Code::NotFound, "claim_not_found", m),
            StoreError::InvalidArgument(m) => {
                Reason::new(Code::InvalidArgument, "provision_request", m)
            }
            other => unavailable(&other).reason,
        })?;
    Ok(Provisioned {
        device: done.device,
        created: done.created,
        format: request.credential.format.name(),
        fingerprint: request.key.fingerprint().to_string(),
    })
}

/// The reply's JSON: `{"device": {…}, "credential": {…}}` or `{"error": {…}}`.
pub fn reply(session: &ClaimSession, outcome: &Result<Provisioned, Reason>) -> Value {
    match outcome {
        Ok(p) => json!({
            "device": {
                "id": p.device.id,
                "numId": p.device.num_id.to_string(),
                "name": session.registry.path.device_name(&p.device.id),
            },
            "credential": {"format": p.format, "fingerprint": p.fingerprint},
        }),
        Err(reason) => json!({
            "error": {"code": reason.code.name(), "message": reason.message},
        }),
    }
}
