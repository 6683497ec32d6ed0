//! Device → cloud: telemetry and state. Each message is checked (topic, size, rate),
//! then appended by a spawned task; the tasks form an ordered pipeline so PUBACKs
//! leave in arrival order once each message is durable.

use std::sync::Arc;

use tether_log::DeviceCoordinates;
use tether_mqtt::{PacketId, Publish, Timestamp};
use tether_registry::ActivityKind;
use tether_registry::model::MqttState;
use tether_registry::names::RegistryPath;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::{Driver, Outcome, gateway};
use crate::mqtt::reason::{Reason, RpcCode};
use crate::mqtt::topics::{self, Inbound};
use crate::telemetry;

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn on_publish(&mut self, publish: Publish) {
        let now = self.now();
        let Some(live) = &self.live else {
            return;
        };
        let topic = publish.topic.clone();
        let target = match topics::authorize_publish(
            live.device_id(),
            live.gateway.is_some(),
            &topic,
            publish.delivery.qos(),
        ) {
            Ok(target) => target,
            Err(reason) => return self.close(reason),
        };
        let ack = publish.delivery.packet_id();
        if ack.is_some_and(|id| live.unacked.contains(&id)) {
            metrics::counter!("tether_mqtt_duplicates_total").increment(1);
            return;
        }
        let inbound = target.kind;
        match inbound {
            Inbound::Attach => return self.on_attach(target.device, &publish).await,
            Inbound::Detach => return self.on_detach(target.device, &publish),
            Inbound::Event { .. } | Inbound::State => {}
        }
        if let Some(device) = target.device
            && !self.is_attached(device)
        {
            return self.not_attached(device, gateway::message_info(&publish));
        }
        let limits = self.shared.options.limits;
        let (kind, max) = match inbound {
            Inbound::State => ("state", limits.state_bytes),
            _ => ("event", limits.telemetry_bytes),
        };
        if publish.payload.len() > max {
            return self.close(Reason::new(
                RpcCode::InvalidArgument,
                "payload_too_large",
                format!(
                    "The connection was closed because a {kind} payload of {} bytes on '{}' is \
                     over the {max}-byte limit.",
                    publish.payload.len(),
                    publish.topic.as_str()
                ),
            ));
        }
        if let Err(at) = self.take_tokens(target.device, inbound, now) {
            metrics::counter!("tether_mqtt_throttled_total", "kind" => kind).increment(1);
            self.held = Some((publish, at));
            return;
        }
        let Some((address, coords)) = self.target(target.device) else {
            return;
        };
        metrics::counter!("tether_mqtt_messages_in_total", "kind" => kind).increment(1);
        metrics::counter!("tether_mqtt_payload_bytes_in_total", "kind" => kind)
            .increment(publish.payload.len() as u64);
        let task = match inbound {
            Inbound::Event { subfolder } => {
                match self
                    .event_task(subfolder, &coords, publish.payload, ack, now)
                    .await
                {
                    Ok(task) => task,
                    Err(reason) => return self.close(reason),
                }
            }
            _ => self.state_task(&address, &coords, publish.payload, ack),
        };
        if let Some(live) = &mut self.live {
            if let Some(id) = ack {
                live.unacked.insert(id);
            }
            live.pipeline.push_back(task);
        }
        if matches!(inbound, Inbound::Event { .. }) {
            self.record_on(&address, ActivityKind::Event);
        }
        if target.device.is_some()
            && let Some(live) = &self.live
        {
            let gateway_id = live.device_id().to_owned();
            self.record_on(&address, ActivityKind::GatewayAccess { gateway_id });
        }
    }

    /// The hub address and routing coordinates of the connected device (`None`) or of
    /// an attached one.
    pub(super) fn target(
        &self,
        device: Option<&str>,
    ) -> Option<(crate::hub::DeviceAddress, DeviceCoordinates)> {
        let live = self.live.as_ref()?;
        match device {
            None => Some((live.address.clone(), live.coords.clone())),
            Some(id) => live
                .gateway
                .as_ref()?
                .attached
                .get(id)
                .map(|a| (a.address.clone(), a.coords.clone())),
        }
    }

    pub(super) fn take_tokens(
        &mut self,
        device: Option<&str>,
        inbound: Inbound<'_>,
        now: Timestamp,
    ) -> Result<(), Timestamp> {
        let Some(live) = &mut self.live else {
            return Ok(());
        };
        if inbound == Inbound::State {
            let attached =
                device.and_then(|id| live.gateway.as_mut().and_then(|g| g.attached.get_mut(id)));
            match attached {
                Some(a) => a.states.take(now)?,
                None => live.states.take(now)?,
            }
        }
        // Messages of attached devices count against the gateway's connection.
        live.messages.take(now)
    }

    /// Re-reads the registry when the cached copy is older than `registry_refresh`, so
    /// routing changes reach connected devices even when the API's nudge did not (a
    /// full control queue, another server on the same database). Refuses once MQTT is
    /// disabled on it.
    pub(super) async fn fresh_registry(&mut self, now: Timestamp) -> Result<(), Reason> {
        let refresh = self.shared.options.registry_refresh;
        let Some(live) = &mut self.live else {
            return Ok(());
        };
        if now < live.registry_read_at.saturating_add(refresh) {
            return Ok(());
        }
        live.registry_read_at = now;
        match self.shared.store.get_registry(&live.address.registry).await {
            Ok(registry) => live.principal.registry = registry,
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the registry; using the cached copy")
            }
        }
        match live.principal.registry.mqtt_state {
            MqttState::Disabled => Err(mqtt_disabled(&live.address.registry)),
            _ => Ok(()),
        }
    }

    pub(super) async fn event_task(
        &mut self,
        subfolder: &str,
        coords: &DeviceCoordinates,
        payload: Vec<u8>,
        ack: Option<PacketId>,
        now: Timestamp,
    ) -> Result<JoinHandle<Outcome>, Reason> {
        self.fresh_registry(now).await?;
        let Some(live) = &self.live else {
            return Err(Reason::new(
                RpcCode::Unavailable,
                "internal",
                "not connected",
            ));
        };
        let message = telemetry::event_message(
            &live.principal.registry,
            coords,
            subfolder,
            payload,
            self.shared.clock.unix_micros(),
        )
        .map_err(|why| {
            Reason::new(
                RpcCode::FailedPrecondition,
                "no_telemetry_topic",
                format!(
                    "The connection was closed because telemetry to subfolder '{subfolder}' \
                     cannot be delivered: {why}."
                ),
            )
        })?;
        let shared = Arc::clone(&self.shared);
        Ok(tokio::spawn(
            async move {
                let timeout = shared.options.sink_timeout;
                Outcome {
                    ack,
                    kind: "event",
                    result: telemetry::publish(&*shared.sink, message, timeout).await,
                }
            }
            .in_current_span(),
        ))
    }

    pub(super) fn state_task(
        &self,
        address: &crate::hub::DeviceAddress,
        coords: &DeviceCoordinates,
        payload: Vec<u8>,
        ack: Option<PacketId>,
    ) -> JoinHandle<Outcome> {
        let shared = Arc::clone(&self.shared);
        let registry = self
            .live
            .as_ref()
            .map(|l| l.principal.registry.clone())
            .unwrap_or_default();
        let address = address.clone();
        let coords = coords.clone();
        let now = self.registry_now();
        tokio::spawn(
            async move {
                let stored = telemetry::store_state(
                    &*shared.store,
                    Arc::clone(&shared.sink),
                    &registry,
                    &coords,
                    &address,
                    payload,
                    now,
                )
                .await;
                Outcome {
                    ack,
                    kind: "state",
                    result: stored.map_err(|e| e.to_string()),
                }
            }
            .in_current_span(),
        )
    }

    pub(super) fn on_appended(&mut self, outcome: Result<Outcome, tokio::task::JoinError>) {
        let Some(live) = &mut self.live else {
            return;
        };
        live.pipeline.pop_front();
        let outcome = outcome.unwrap_or_else(|e| Outcome {
            ack: None,
            kind: "unknown",
            result: Err(format!("append task failed: {e}")),
        });
        if let Some(id) = outcome.ack {
            live.unacked.remove(&id);
        }
        match outcome.result {
            Ok(()) => {
                if let Some(id) = outcome.ack {
                    let _ = self.session.puback(id);
                }
            }
            Err(e) => {
                // No PUBACK: the device resends, as with IoT Core's full retry buffer.
                metrics::counter!("tether_mqtt_append_failures_total", "kind" => outcome.kind)
                    .increment(1);
                tracing::warn!(kind = outcome.kind, error = %e, "message not accepted; no PUBACK");
            }
        }
    }

    /// Waits for every append in flight and acknowledges it (graceful shutdown).
    pub(super) async fn drain_pipeline(&mut self) {
        while let Some(task) = self.live.as_mut().and_then(|l| l.pipeline.front_mut()) {
            let outcome = task.await;
            // `on_appended` pops the front we just awaited.
            self.on_appended(outcome);
        }
        let _ = self.flush().await;
    }
}

/// Why a live connection is closed when its registry's MQTT is disabled.
pub(super) fn mqtt_disabled(path: &RegistryPath) -> Reason {
    Reason::new(
        RpcCode::FailedPrecondition,
        "mqtt_disabled",
        format!(
            "The connection was closed because MQTT was disabled for registry '{path}' \
             (mqttConfig.mqttEnabledState is MQTT_DISABLED)."
        ),
    )
}
