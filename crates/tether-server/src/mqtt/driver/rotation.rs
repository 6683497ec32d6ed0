//! Key rotation on a device's own connection: a PUBLISH to `/devices/{id}/provision`
//! with a new key and a proof signed by it adds the key; the older keys expire after
//! the grace period of the claim that made the device (`bridge::provision::rotate`).
//! The reply goes to `/devices/{id}/provision/result` when the device subscribed to it.

use std::sync::Arc;

use tether_mqtt::{Publish, TopicName};
use tether_registry::model::Timestamp as RegistryTime;
use tether_registry::names::DeviceRef;
use tether_registry::provisioning::{DEFAULT_ROTATION_GRACE_SECS, PROVISIONED_BY};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Driver;
use crate::bridge::provision::{Provisioned, proof, request, rotate};
use crate::bridge::{Code, Reason};

/// Rotations one connection may ask for (a device needs one).
const ROTATIONS_PER_CONNECTION: u8 = 3;

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn on_rotate_key(&mut self, publish: &Publish) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        live.rotations = live.rotations.saturating_add(1);
        let too_many = live.rotations > ROTATIONS_PER_CONNECTION;
        let outcome = if too_many {
            Err(Reason::new(
                Code::ResourceExhausted,
                "rotation_requests",
                format!("a connection may rotate keys at most {ROTATIONS_PER_CONNECTION} times"),
            ))
        } else {
            self.rotate(&publish.payload).await
        };
        metrics::counter!("tether_provisioning_requests_total", "result" => match &outcome {
            Ok(_) => "rotated",
            Err(_) => "refused",
        })
        .increment(1);
        if let Err(reason) = &outcome
            && self.may_log()
        {
            tracing::warn!(
                reason = reason.label,
                "key rotation refused: {}",
                reason.message
            );
        }
        if let Some(id) = publish.delivery.packet_id() {
            let _ = self.session.puback(id);
        }
        let Some(live) = self.live.as_ref() else {
            return;
        };
        let reply = match &outcome {
            Ok(p) => serde_json::json!({
                "device": {
                    "id": p.device.id,
                    "numId": p.device.num_id.to_string(),
                    "name": live.address.registry.device_name(&p.device.id),
                },
                "credential": {"format": p.format, "fingerprint": p.fingerprint},
            }),
            Err(reason) => serde_json::json!({
                "error": {"code": reason.code.name(), "message": reason.message},
            }),
        };
        let topic = format!("/devices/{}/provision/result", live.device_id());
        if let (Some(qos), Ok(topic)) = (live.rotation_result, TopicName::new(topic)) {
            let _ = self
                .session
                .publish(topic, reply.to_string().into_bytes(), qos);
        }
    }

    /// Checks the request and stores the new credential list.
    async fn rotate(&mut self, body: &[u8]) -> Result<Provisioned, Reason> {
        let Some(live) = self.live.as_ref() else {
            return Err(Reason::new(Code::Internal, "internal", "not connected"));
        };
        let shared = Arc::clone(&self.shared);
        let registry = live.address.registry.clone();
        let now_secs = shared.clock.unix_secs();
        let now = RegistryTime::from_secs(now_secs);
        let request = request::parse(body)?;
        proof::check(
            &request.proof,
            &request.key,
            &registry.project,
            live.device_id(),
            shared.options.jwt,
            now_secs,
        )?;
        let store_error = |e| crate::bridge::auth::unavailable(&e).reason;
        let mut device = shared
            .store
            .get_device(&registry, &DeviceRef::NumId(live.address.num_id))
            .await
            .map_err(store_error)?;
        let grace = match device.metadata.get(PROVISIONED_BY) {
            Some(claim) => shared
                .store
                .get_claim(&registry, claim)
                .await
                .map_or(DEFAULT_ROTATION_GRACE_SECS, |c| c.rotation_grace_secs),
            None => DEFAULT_ROTATION_GRACE_SECS,
        };
        let grace_until =
            RegistryTime::from_secs(now_secs.saturating_add(i64::try_from(grace).unwrap_or(0)));
        let format = request.credential.format.name();
        let fingerprint = request.key.fingerprint().to_string();
        if let Some(credentials) =
            rotate::rotated(&device.credentials, &request.credential, grace_until, now)?
        {
            tether_registry::credentials::validate_device_credentials(
                &credentials,
                &live.principal.registry,
                now,
            )
            .map_err(|e| {
                Reason::new(
                    Code::InvalidArgument,
                    "provision_key",
                    format!("the new key cannot be registered: {e}"),
                )
            })?;
            device.credentials = credentials;
            device = shared
                .store
                .update_device(&registry, &device)
                .await
                .map_err(store_error)?;
            shared.credentials.invalidate(&live.address);
            // The next CONNECT must see the new key list (the old key expires).
            shared
                .connections
                .device_cache()
                .forget_device(&live.address);
            if self.may_log() {
                tracing::info!(%fingerprint, grace_secs = grace, "device rotated to a new key");
            }
        }
        Ok(Provisioned {
            device,
            created: false,
            format,
            fingerprint,
        })
    }
}
