//! `ProvisioningClaim` (Tether's extension of API v1) in the same JSON style as the
//! IoT Core resources.

use serde_json::Value;
use tether_registry::model::{PublicKeyCredential, Timestamp};
use tether_registry::provisioning::{DeviceTemplate, ProvisioningClaim};

use super::reader::Obj;
use super::{Enc, Out};
use crate::api::error::{ApiError, ApiResult};

/// A claim as read from a create body (output-only fields are accepted and ignored).
#[derive(Debug, Clone, Default)]
pub struct ClaimInput {
    /// The key.
    pub credential: PublicKeyCredential,
    /// `deviceIdPattern`.
    pub device_id_pattern: String,
    /// `maxDevices`, if given.
    pub max_devices: Option<i64>,
    /// `expirationTime`, if given.
    pub expiration_time: Option<Timestamp>,
    /// `deviceTemplate`.
    pub device_template: DeviceTemplate,
    /// `keyRotationGracePeriod` in seconds, if given.
    pub rotation_grace_secs: Option<u64>,
}

/// Reads a `google.protobuf.Duration` in JSON (`"86400s"`, whole seconds).
fn duration_secs(at: &str, text: &str) -> ApiResult<u64> {
    text.strip_suffix('s')
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{at} is '{text}'; give whole seconds with an 's', e.g. \"86400s\""
            ))
        })
}

/// Reads a `ProvisioningClaim` body.
pub fn parse_claim(body: Value, at: &str) -> ApiResult<ClaimInput> {
    let mut o = Obj::new(body, at)?;
    let mut input = ClaimInput::default();
    let credential_at = o.path("credential");
    let mut c = o.object("credential")?.ok_or_else(|| {
        ApiError::invalid(format!(
            "{credential_at} is required: {{\"publicKey\": {{\"format\": \"ES256_PEM\", \"key\": \
             \"-----BEGIN PUBLIC KEY-----…\"}}}}"
        ))
    })?;
    let key_at = c.path("publicKey");
    let mut k = c
        .object("publicKey")?
        .ok_or_else(|| ApiError::invalid(format!("{key_at} is required")))?;
    input.credential = PublicKeyCredential {
        format: k.enumeration("format")?.unwrap_or_default(),
        key: k.string("key")?.unwrap_or_default(),
    };
    k.finish()?;
    c.ignore("fingerprint");
    c.finish()?;
    input.device_id_pattern = o.string("deviceIdPattern")?.unwrap_or_default();
    input.max_devices = o.int64("maxDevices")?;
    input.expiration_time = o.timestamp("expirationTime")?;
    let grace_at = o.path("keyRotationGracePeriod");
    if let Some(text) = o.string("keyRotationGracePeriod")? {
        input.rotation_grace_secs = Some(duration_secs(&grace_at, &text)?);
    }
    if let Some(mut t) = o.object("deviceTemplate")? {
        let template = &mut input.device_template;
        if let Some(pairs) = t.string_map("metadata")? {
            template.metadata = pairs.into_iter().collect();
        }
        template.log_level = t.enumeration("logLevel")?.unwrap_or_default();
        if let Some(mut g) = t.object("gatewayConfig")? {
            template.gateway_type = g.enumeration("gatewayType")?.unwrap_or_default();
            template.gateway_auth_method = g.enumeration("gatewayAuthMethod")?.unwrap_or_default();
            g.finish()?;
        }
        t.finish()?;
    }
    for output_only in [
        "name",
        "id",
        "devicesProvisioned",
        "lastUsedTime",
        "createTime",
        "revokeTime",
        "state",
    ] {
        o.ignore(output_only);
    }
    o.finish()?;
    Ok(input)
}

/// `ACTIVE`, `REVOKED`, `EXPIRED` or `EXHAUSTED` (at its maximum) at `now`.
pub fn claim_state(claim: &ProvisioningClaim, now: Timestamp) -> &'static str {
    if claim.revoke_time.is_some() {
        "REVOKED"
    } else if claim.expiration_time.is_some_and(|t| now >= t) {
        "EXPIRED"
    } else if claim.full().is_some() {
        "EXHAUSTED"
    } else {
        "ACTIVE"
    }
}

/// A whole claim, with its state at `now`.
pub fn render_claim(claim: &ProvisioningClaim, enc: Enc, now: Timestamp) -> Value {
    let fingerprint = tether_registry::parse_key(&claim.credential.key)
        .map(|k| k.fingerprint().to_string())
        .unwrap_or_default();
    let key = Out::new(enc)
        .enumeration("format", claim.credential.format)
        .string("key", &claim.credential.key)
        .build();
    let credential = Out::new(enc)
        .message("publicKey", key)
        .string("fingerprint", &fingerprint)
        .build();
    let t = &claim.device_template;
    let metadata: serde_json::Map<String, Value> = t
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut template = Out::new(enc).enumeration("logLevel", t.log_level);
    if !metadata.is_empty() {
        template = template.message("metadata", Value::Object(metadata));
    }
    let gateway = Out::new(enc)
        .enumeration("gatewayType", t.gateway_type)
        .enumeration("gatewayAuthMethod", t.gateway_auth_method)
        .build();
    if gateway.as_object().is_some_and(|g| !g.is_empty()) {
        template = template.message("gatewayConfig", gateway);
    }
    let mut out = Out::new(enc)
        .string(
            "name",
            &format!("{}/provisioningClaims/{}", claim.registry, claim.id),
        )
        .string("id", &claim.id)
        .message("credential", credential)
        .string("deviceIdPattern", &claim.device_id_pattern);
    if let Some(max) = claim.max_devices {
        out = out.int64_always("maxDevices", i64::try_from(max).unwrap_or(i64::MAX));
    }
    out.time("expirationTime", claim.expiration_time)
        .message("deviceTemplate", template.build())
        .int64_always(
            "devicesProvisioned",
            i64::try_from(claim.devices_provisioned).unwrap_or(i64::MAX),
        )
        .time("lastUsedTime", claim.last_used_time)
        .time("createTime", claim.create_time)
        .time("revokeTime", claim.revoke_time)
        .string(
            "keyRotationGracePeriod",
            &format!("{}s", claim.rotation_grace_secs),
        )
        .string("state", claim_state(claim, now))
        .build()
}
