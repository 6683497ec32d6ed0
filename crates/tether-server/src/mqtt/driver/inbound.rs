//! Device → cloud: telemetry and state. A PUBLISH is classified (who may publish
//! where, duplicates, gateway control), admitted (size, rate: a message over the rate
//! is held), then submitted: its append (queued to the sink's writer, or a task of
//! its own, see [`AppendTask`]) joins the connection's
//! [`AckPipeline`](super::pipeline::AckPipeline), so PUBACKs leave in arrival order
//! once each message is durable.

use std::sync::Arc;

use tether_log::{Attributes, DeviceCoordinates};
use tether_mqtt::{PacketId, Publish};
use tether_registry::ActivityKind;
use tether_registry::model::MqttState;
use tether_registry::names::RegistryPath;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument as _;

use super::append_task::AppendTask;
use super::pipeline::{AppendError, AppendKind, Settled};
use super::{Driver, Held, Now, gateway};
use crate::bridge::hub::DeviceAddress;
use crate::bridge::uplink::{self, UplinkError};
use crate::bridge::{Code, Reason, shown};
use crate::mqtt::topics::{self, Inbound};

/// Message activity (lastEventTime, gateway access) is recorded at most this often
/// per device.
const ACTIVITY_EVERY_MICROS: i64 = 1_000_000;

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// One PUBLISH from the device: classify → admit → submit.
    pub(super) async fn on_publish(
        &mut self,
        publish: Publish,
        properties: super::UserProperties,
        now: Now,
    ) {
        if self.provisioning.is_some() {
            return Box::pin(self.on_provision_publish(publish)).await;
        }
        let Some(live) = &self.live else {
            return;
        };
        // Classify: may this device publish here, is it a resend, is it a gateway's
        // control message?
        let target = match topics::authorize_publish(
            live.device_id(),
            live.gateway.is_some(),
            &publish.topic,
            publish.delivery.qos(),
        ) {
            Ok(target) => target,
            Err(reason) => return self.close(reason),
        };
        let ack = publish.delivery.packet_id();
        if ack.is_some_and(|id| live.pipeline.is_in_flight(id)) {
            metrics::counter!("tether_mqtt_duplicates_total").increment(1);
            return;
        }
        let inbound = target.kind;
        match inbound {
            // Rare and large: boxed, so that every connection's future is not as
            // large as theirs.
            Inbound::Attach => return Box::pin(self.on_attach(target.device, &publish)).await,
            Inbound::Detach => return self.on_detach(target.device, &publish),
            Inbound::RotateKey => return Box::pin(self.on_rotate_key(&publish)).await,
            Inbound::Event { .. } | Inbound::State => {}
        }
        if let Some(device) = target.device
            && !self.is_attached(device)
        {
            return self.not_attached(device, gateway::message_info(&publish));
        }
        // Admit: size, then rate (a message over the rate waits; the socket is not
        // read meanwhile, so TCP slows the device down).
        let kind = match inbound {
            Inbound::State => AppendKind::State,
            _ => AppendKind::Event,
        };
        if let Err(reason) = self.check_size(kind, &publish) {
            return self.close(reason);
        }
        if let Err(at) = self.take_tokens(target.device, inbound, now.mqtt()) {
            metrics::counter!("tether_mqtt_throttled_total", "kind" => kind.label()).increment(1);
            self.held = Some((Held::Publish(publish, properties), at));
            return;
        }
        // Submit.
        if self.address_of(target.device).is_none() {
            return;
        }
        let counters = &self.shared.counters;
        let (messages, bytes) = match kind {
            AppendKind::State => (&counters.states_in, &counters.state_bytes_in),
            _ => (&counters.events_in, &counters.event_bytes_in),
        };
        messages.increment(1);
        bytes.increment(publish.payload.len() as u64);
        let task = match inbound {
            Inbound::Event { subfolder } => {
                self.event_task(target.device, subfolder, publish.payload, properties, now)
            }
            _ => self.state_task(target.device, publish.payload, properties, now),
        };
        let task = match task {
            Ok(task) => task,
            Err(reason) => return self.close(reason),
        };
        if let Some(live) = &mut self.live {
            live.pipeline.submit(ack, kind, task);
        }
        // lastEventTime and the gateway's access are kept to the second, not per
        // message: the activity writer stores them every few seconds anyway.
        if self.activity_due(target.device, now)
            && let Some(live) = &self.live
            && let Some(address) = self.address_of(target.device)
        {
            if kind == AppendKind::Event {
                self.record_on(address, ActivityKind::Event, now);
            }
            // A message of an attached device is also an access through its gateway.
            if target.device.is_some() {
                let gateway_id = live.device_id().to_owned();
                self.record_on(address, ActivityKind::GatewayAccess { gateway_id }, now);
            }
        }
    }

    /// Whether a second has passed since this device's (`None`: the connection's own,
    /// or an attached one) last message activity was recorded; if so, it is now.
    fn activity_due(&mut self, device: Option<&str>, now: Now) -> bool {
        let Some(live) = &mut self.live else {
            return false;
        };
        let last = match device {
            None => &mut live.activity_at,
            Some(id) => match live.gateway.as_mut().and_then(|g| g.attached.get_mut(id)) {
                Some(a) => &mut a.activity_at,
                None => return true,
            },
        };
        let due = last.is_none_or(|at| now.micros().saturating_sub(at) >= ACTIVITY_EVERY_MICROS);
        if due {
            *last = Some(now.micros());
        }
        due
    }

    /// Refuses a payload over its kind's limit.
    fn check_size(&self, kind: AppendKind, publish: &Publish) -> Result<(), Reason> {
        let limits = self.shared.options.limits;
        let max = match kind {
            AppendKind::State => limits.state_bytes,
            _ => limits.telemetry_bytes,
        };
        if publish.payload.len() <= max {
            return Ok(());
        }
        Err(Reason::new(
            Code::InvalidArgument,
            "payload_too_large",
            format!(
                "The connection was closed because a {} payload of {} bytes on '{}' is \
                 over the {max}-byte limit.",
                kind.label(),
                publish.payload.len(),
                shown(publish.topic.as_str())
            ),
        ))
    }

    /// The address of the connection's device (`None`) or of one attached through it.
    pub(super) fn address_of(&self, device: Option<&str>) -> Option<&DeviceAddress> {
        let live = self.live.as_ref()?;
        match device {
            None => Some(&live.address),
            Some(id) => Some(&live.gateway.as_ref()?.attached.get(id)?.address),
        }
    }

    /// The attributes of an event to `subfolder` of the connection's device or of one
    /// attached through it: the set its last event had when the subfolder is the same.
    fn event_attributes_of(&mut self, device: Option<&str>, subfolder: &str) -> Option<Attributes> {
        let live = self.live.as_mut()?;
        Some(match device {
            None => live.events.get(&live.coords, subfolder),
            Some(id) => {
                let attached = live.gateway.as_mut()?.attached.get_mut(id)?;
                attached.events.get(&attached.coords, subfolder)
            }
        })
    }

    /// The routing coordinates of the connection's device or of one attached through it.
    fn coords_of(&self, device: Option<&str>) -> Option<&DeviceCoordinates> {
        let live = self.live.as_ref()?;
        match device {
            None => Some(&live.coords),
            Some(id) => Some(&live.gateway.as_ref()?.attached.get(id)?.coords),
        }
    }

    pub(super) fn take_tokens(
        &mut self,
        device: Option<&str>,
        inbound: Inbound<'_>,
        now: tether_mqtt::Timestamp,
    ) -> Result<(), tether_mqtt::Timestamp> {
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

    /// Takes the node's newer copy of the registry, at most every `registry_refresh`,
    /// so routing changes reach connected devices even when the API's nudge did not (a
    /// full control queue, another server on the same database). Never waits for the
    /// database: the shared copy is re-read in the background. Refuses once MQTT is
    /// disabled on it.
    pub(super) fn fresh_registry(&mut self, now: tether_mqtt::Timestamp) -> Result<(), Reason> {
        let refresh = self.shared.options.registry_refresh;
        let Some(live) = &mut self.live else {
            return Ok(());
        };
        if now < live.registry_read_at.saturating_add(refresh) {
            return Ok(());
        }
        live.registry_read_at = now;
        if let Some(copy) = self.shared.registries.periodic(
            &live.address.registry,
            live.registry_copy_at,
            self.shared.connections.registry_changes(),
            refresh,
            &self.shared.store,
        ) {
            live.registry_copy_at = copy.read_at;
            live.set_registry(&copy);
        }
        match live.principal.registry.mqtt_state {
            MqttState::Disabled => Err(mqtt_disabled(&live.address.registry)),
            _ => Ok(()),
        }
    }

    fn event_task(
        &mut self,
        device: Option<&str>,
        subfolder: &str,
        payload: Vec<u8>,
        properties: super::UserProperties,
        now: Now,
    ) -> Result<AppendTask, Reason> {
        self.fresh_registry(now.mqtt())?;
        let extra = uplink::user_attributes(properties)?;
        let Some(attributes) = self.event_attributes_of(device, subfolder) else {
            return Err(super::not_connected());
        };
        let Some(live) = &self.live else {
            return Err(super::not_connected());
        };
        let mut message = uplink::event_message(
            &live.routing,
            attributes,
            subfolder,
            payload,
            now.micros(),
        )
        .map_err(|why| {
            Reason::new(
                Code::FailedPrecondition,
                "no_telemetry_topic",
                format!(
                    "The connection was closed because telemetry to subfolder '{subfolder}' \
                         cannot be delivered: {why}."
                ),
            )
        })?;
        if !extra.is_empty() {
            // MQTT 5 user properties: this message's own set.
            Arc::make_mut(&mut message.attributes).extend(extra);
        }
        let timeout = self.shared.options.sink_timeout;
        let batch = match self.shared.sink.submit(vec![message]) {
            Ok(receipt) => {
                return Ok(AppendTask::Queued {
                    receipt,
                    deadline: now.mqtt().saturating_add(timeout),
                });
            }
            Err(batch) => batch,
        };
        let shared = Arc::clone(&self.shared);
        Ok(AppendTask::Spawned(tokio::spawn(
            async move { Ok(uplink::publish(&*shared.sink, batch, timeout).await?) }
                .in_current_span(),
        )))
    }

    fn state_task(
        &self,
        device: Option<&str>,
        payload: Vec<u8>,
        properties: super::UserProperties,
        now: Now,
    ) -> Result<AppendTask, Reason> {
        let attributes = uplink::user_attributes(properties)?;
        let shared = Arc::clone(&self.shared);
        let state_topic = self
            .live
            .as_ref()
            .and_then(|l| l.routing.state_topic().map(str::to_owned));
        let (Some(address), Some(coords)) = (self.address_of(device), self.coords_of(device))
        else {
            return Err(super::not_connected());
        };
        let (address, coords) = (address.clone(), coords.clone());
        Ok(AppendTask::Spawned(tokio::spawn(
            async move {
                Ok(uplink::store_state(
                    &*shared.store,
                    Arc::clone(&shared.sink),
                    uplink::StateNotice {
                        topic: state_topic.as_deref(),
                        coords: &coords,
                        attributes,
                    },
                    &address,
                    payload,
                    now.registry(),
                )
                .await?)
            }
            .in_current_span(),
        )))
    }

    /// The oldest append finished: settle what can be settled.
    pub(super) fn on_appended(&mut self, result: Result<(), AppendError>) {
        if let Some(live) = &mut self.live {
            live.pipeline.finish_oldest(result);
        }
        self.settle();
    }

    /// Gives up on the oldest append once the sink timeout has run out (one queued
    /// to the sink: a task enforces its own): the connection is closed and the device
    /// sends it again.
    pub(super) fn expire_append(&mut self, now: tether_mqtt::Timestamp) {
        let timeout = self.shared.options.sink_timeout;
        let Some(live) = &mut self.live else {
            return;
        };
        if live
            .pipeline
            .oldest()
            .and_then(AppendTask::deadline)
            .is_some_and(|deadline| now >= deadline)
        {
            live.pipeline
                .finish_oldest(Err(AppendError::Uplink(UplinkError::Timeout(timeout))));
            self.settle();
        }
    }

    /// Acknowledges, in order, every message whose turn has come. A message that could
    /// not be made durable closes the connection: the device reconnects and sends it
    /// again (and every message after it that was not acknowledged), instead of
    /// waiting for a PUBACK that will never come.
    ///
    /// Appends that finished meanwhile are taken here too, without waiting: one group
    /// commit makes a device's messages durable together, and their PUBACKs then leave
    /// in one TLS record and one write instead of one each.
    pub(super) fn settle(&mut self) {
        while let Some(Settled { ack, kind, result }) = self.next_settled() {
            match result {
                Ok(()) => {
                    if let Some(id) = ack {
                        let _ = self.session.puback(id);
                    }
                }
                Err(e) => {
                    metrics::counter!(
                        "tether_mqtt_append_failures_total",
                        "kind" => kind.label(),
                        "cause" => e.label()
                    )
                    .increment(1);
                    if self
                        .shared
                        .log_budget
                        .allow(&format!("append:{}", e.label()))
                    {
                        tracing::warn!(kind = kind.label(), cause = e.label(), error = %e, "message not stored; closing the connection");
                    }
                    if let Some(live) = &mut self.live {
                        live.pipeline.clear();
                    }
                    return self.close(append_failed(kind, &e));
                }
            }
        }
    }

    /// The oldest message once it has settled, taking the result of its append if
    /// that has finished.
    fn next_settled(&mut self) -> Option<Settled> {
        let pipeline = &mut self.live.as_mut()?.pipeline;
        pipeline.next_settled_or(AppendTask::finished)
    }

    /// Waits for every append in flight and acknowledges it (graceful shutdown).
    pub(super) async fn drain_pipeline(&mut self) {
        let timeout = self.shared.options.sink_timeout;
        while let Some(task) = self.live.as_mut().and_then(|l| l.pipeline.oldest_running()) {
            let result = tokio::time::timeout(timeout, task)
                .await
                .unwrap_or(Err(AppendError::Uplink(UplinkError::Timeout(timeout))));
            self.on_appended(result);
        }
        self.settle();
        let _ = self.flush().await;
    }

    /// Queues the PUBACK of a message with nothing to store (a gateway's attach or
    /// detach): it leaves after the messages before it.
    pub(super) fn ack_in_order(&mut self, ack: Option<PacketId>) {
        if let Some(live) = &mut self.live {
            live.pipeline.submit_settled(ack, AppendKind::Control);
        }
        self.settle();
    }
}

/// Why the connection is closed after a message could not be stored.
fn append_failed(kind: AppendKind, error: &AppendError) -> Reason {
    Reason::new(
        Code::Unavailable,
        "append_failed",
        format!(
            "The connection was closed because a {} message could not be stored ({error}); \
             reconnect and send it again.",
            kind.label()
        ),
    )
}

/// Why a live connection is closed when its registry's MQTT is disabled.
pub(super) fn mqtt_disabled(path: &RegistryPath) -> Reason {
    Reason::new(
        Code::FailedPrecondition,
        "mqtt_disabled",
        format!(
            "The connection was closed because MQTT was disabled for registry '{path}' \
             (mqttConfig.mqttEnabledState is MQTT_DISABLED)."
        ),
    )
}
