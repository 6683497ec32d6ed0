//! `projects.locations.registries.provisioningClaims` (Tether's extension of API v1,
//! docs/provisioning.md): create, get, list, and delete, which revokes (the claim
//! stays, so that a device using it learns why it is refused).

use serde_json::{Value, json};
use tether_registry::model::{Device, DeviceRegistry, PublicKeyFormat};
use tether_registry::names::RegistryPath;
use tether_registry::provisioning::{
    DEFAULT_ROTATION_GRACE_SECS, PROVISIONED_BY, PROVISIONED_TIME, ProvisioningClaim,
};

use super::ApiState;
use super::error::{ApiError, ApiResult};
use super::json::claim::{parse_claim, render_claim};
use super::request::Query;
use super::rules::check_device;
use crate::bridge::provision::claim::compile_pattern;

const BODY_AT: &str = "provisioning_claim";

/// `POST /v1/{registry}/provisioningClaims?claimId=ID`.
pub async fn create(
    state: &ApiState,
    registry: &RegistryPath,
    mut query: Query,
    body: Value,
) -> ApiResult<Value> {
    let enc = query.enc();
    let id = query.take(&["claimId", "claim_id"]).unwrap_or_default();
    query.finish()?;
    if id.is_empty() {
        return Err(ApiError::invalid(
            "claimId is required: POST …/provisioningClaims?claimId=ID",
        ));
    }
    tether_iot::ids::validate_id(&id)
        .map_err(|e| ApiError::invalid(format!("claimId '{id}' is invalid: {e}")))?;
    let input = parse_claim(body, BODY_AT)?;
    let now = state.now();
    if input.credential.format == PublicKeyFormat::Unspecified {
        return Err(ApiError::invalid(format!(
            "{BODY_AT}.credential.publicKey.format is required (ES256_PEM, RSA_PEM, \
             ES256_X509_PEM or RSA_X509_PEM)"
        )));
    }
    // The claim's key follows the device key rules, but never a registry's CA: it is
    // the factory's key, not a device's.
    let credential = tether_registry::model::DeviceCredential {
        public_key: input.credential.clone(),
        expiration_time: None,
    };
    tether_registry::credentials::validate_device_credentials(
        std::slice::from_ref(&credential),
        &DeviceRegistry::default(),
        now,
    )
    .map_err(|m| {
        ApiError::invalid(format!(
            "{BODY_AT}.credential: {}",
            m.trim_start_matches("credentials[0]: ")
        ))
    })?;
    if input.device_id_pattern.is_empty() {
        return Err(ApiError::invalid(format!(
            "{BODY_AT}.deviceIdPattern is required: a regular expression every device id \
             must match, e.g. \"sensor-[0-9a-f]{{8}}\""
        )));
    }
    compile_pattern(&input.device_id_pattern).map_err(|e| {
        ApiError::invalid(format!(
            "{BODY_AT}.deviceIdPattern is not a usable regular expression: {e}"
        ))
    })?;
    let max_devices = match input.max_devices {
        None => None,
        Some(n) if n >= 1 => u64::try_from(n).ok(),
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "{BODY_AT}.maxDevices is {n}; it must be at least 1 (omit it for no limit)"
            )));
        }
    };
    if let Some(at) = input.expiration_time
        && at <= now
    {
        return Err(ApiError::invalid(format!(
            "{BODY_AT}.expirationTime is in the past; a claim must be usable when created"
        )));
    }
    let template = &input.device_template;
    for reserved in [PROVISIONED_BY, PROVISIONED_TIME] {
        if template.metadata.contains_key(reserved) {
            return Err(ApiError::invalid(format!(
                "{BODY_AT}.deviceTemplate.metadata must not set '{reserved}': the server sets it"
            )));
        }
    }
    // The template's fields follow the device rules, with room for the two keys the
    // server adds.
    let mut sample = Device {
        metadata: template.metadata.clone(),
        log_level: template.log_level,
        ..Device::default()
    };
    sample
        .metadata
        .insert(PROVISIONED_BY.into(), "x".repeat(id.len()));
    sample
        .metadata
        .insert(PROVISIONED_TIME.into(), "2000-01-01T00:00:00Z".into());
    check_device(&format!("{BODY_AT}.deviceTemplate"), &sample)?;
    let claim = ProvisioningClaim {
        registry: registry.clone(),
        id,
        credential: input.credential,
        device_id_pattern: input.device_id_pattern,
        max_devices,
        expiration_time: input.expiration_time,
        device_template: input.device_template,
        devices_provisioned: 0,
        last_used_time: None,
        create_time: None,
        revoke_time: None,
        rotation_grace_secs: input
            .rotation_grace_secs
            .unwrap_or(DEFAULT_ROTATION_GRACE_SECS),
    };
    let created = state.store.create_claim(&claim, now).await?;
    Ok(render_claim(&created, enc, now))
}

/// `GET /v1/{registry}/provisioningClaims/{id}`.
pub async fn get(
    state: &ApiState,
    registry: &RegistryPath,
    id: &str,
    query: Query,
) -> ApiResult<Value> {
    let enc = query.enc();
    query.finish()?;
    let claim = state.store.get_claim(registry, id).await?;
    Ok(render_claim(&claim, enc, state.now()))
}

/// `GET /v1/{registry}/provisioningClaims`.
pub async fn list(state: &ApiState, registry: &RegistryPath, query: Query) -> ApiResult<Value> {
    let enc = query.enc();
    query.finish()?;
    let now = state.now();
    let claims = state.store.list_claims(registry).await?;
    if claims.is_empty() {
        return Ok(json!({}));
    }
    let items: Vec<Value> = claims.iter().map(|c| render_claim(c, enc, now)).collect();
    Ok(json!({ "provisioningClaims": items }))
}

/// `DELETE /v1/{registry}/provisioningClaims/{id}`: revokes the claim and answers it.
pub async fn revoke(
    state: &ApiState,
    registry: &RegistryPath,
    id: &str,
    query: Query,
) -> ApiResult<Value> {
    let enc = query.enc();
    query.finish()?;
    let now = state.now();
    let claim = state.store.revoke_claim(registry, id, now).await?;
    Ok(render_claim(&claim, enc, now))
}
