//! Cloud → device: SUBSCRIBE and UNSUBSCRIBE, config delivery (with QoS 1
//! redelivery and acks), commands from the hub, and re-checks after API changes.

use std::sync::Arc;

use tether_iot::MqttMessageInfo;
use tether_mqtt::session::SessionError;
use tether_mqtt::{
    PacketId, QoS, ServerSession, SubAck, SubAckCode, Subscribe, Timestamp, TopicName, Unsubscribe,
};
use tether_registry::model::{DeviceConfig, MqttState, Timestamp as RegistryTime};
use tether_registry::names::DeviceRef;
use tether_registry::{Activity, ActivityKind, StoreError};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument as _;

use super::{Driver, Held};
use crate::bridge::hub::{DeviceAddress, HubError};
use crate::bridge::{Code, Reason};
use crate::mqtt::Shared;
use crate::mqtt::config_push::{Action, ConfigPush};
use crate::mqtt::connections::Control;
use crate::mqtt::topics::{self, Outbound};

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn on_subscribe(&mut self, subscribe: Subscribe) {
        if self.provisioning.is_some() {
            return self.on_provision_subscribe(subscribe);
        }
        let now = self.now();
        let Some(live) = &mut self.live else {
            return;
        };
        let max = self.shared.options.limits.filters_per_subscribe;
        if subscribe.subscriptions.len() > max {
            let reason = Reason::new(
                Code::InvalidArgument,
                "subscribe_too_many_filters",
                format!(
                    "The connection was closed because a SUBSCRIBE carried {} filters; the \
                     limit is {max} per packet (a device needs '/devices/{id}/config' and \
                     '/devices/{id}/commands/#').",
                    subscribe.subscriptions.len(),
                    id = live.device_id()
                ),
            );
            return self.close(reason);
        }
        // A SUBSCRIBE counts against the device's message rate like a PUBLISH.
        if let Err(at) = live.messages.take(now) {
            metrics::counter!("tether_mqtt_throttled_total", "kind" => "subscribe").increment(1);
            self.held = Some((Held::Subscribe(subscribe), at));
            return;
        }
        let device_id = live.device_id().to_owned();
        let gateway = live.gateway.is_some();
        let mut codes = Vec::with_capacity(subscribe.subscriptions.len());
        let mut configs = Vec::new();
        // One log line and one recorded error per packet, however many filters fail.
        let mut refused: Vec<Reason> = Vec::new();
        for sub in &subscribe.subscriptions {
            let (target, qos) = match topics::authorize_subscribe(
                &device_id,
                gateway,
                &sub.filter,
                sub.qos,
            ) {
                Ok(granted) => granted,
                Err(reason) => {
                    metrics::counter!("tether_mqtt_subscribe_refusals_total", "reason" => reason.label)
                            .increment(1);
                    refused.push(reason);
                    codes.push(SubAckCode::Failure);
                    continue;
                }
            };
            if let Some(other) = target.device
                && !self.is_attached(other)
            {
                self.not_attached(
                    other,
                    MqttMessageInfo {
                        message_type: "SUBSCRIBE".into(),
                        topic: sub.filter.as_str().to_owned(),
                        packet_id: Some(subscribe.packet_id.get()),
                    },
                );
                codes.push(SubAckCode::Failure);
                continue;
            }
            let code = match target.kind {
                Outbound::Config => match self.latest_config(target.device).await {
                    Ok(latest) => {
                        configs.push((target.device.map(str::to_owned), qos, latest));
                        SubAckCode::Granted(qos)
                    }
                    Err(reason) => {
                        // Refuse the filter rather than subscribe without a config.
                        if self.may_log() {
                            tracing::warn!("config subscription refused: {reason}");
                        }
                        SubAckCode::Failure
                    }
                },
                Outbound::Commands => {
                    self.set_commands(target.device, Some(qos));
                    SubAckCode::Granted(qos)
                }
                Outbound::Errors => {
                    if let Some(g) = self.live.as_mut().and_then(|l| l.gateway.as_mut()) {
                        g.errors = true;
                    }
                    SubAckCode::Granted(qos)
                }
                Outbound::ProvisionResult => {
                    if let Some(live) = self.live.as_mut() {
                        live.rotation_result = Some(qos);
                    }
                    SubAckCode::Granted(qos)
                }
            };
            codes.push(code);
        }
        self.report_refused_filters(&refused, codes.len());
        let _ = self.session.suback(SubAck {
            packet_id: subscribe.packet_id,
            codes,
        });
        for (device, qos, latest) in configs {
            if let Some(push) = self.config_push(device.as_deref()) {
                push.subscribe(qos, latest);
            }
        }
        let now = self.now();
        self.pump_config(now);
    }

    /// Logs and records the filters of one SUBSCRIBE that were refused: one line with
    /// the count and the first few reasons, and the last reason on the device (as if
    /// each had been recorded in turn).
    fn report_refused_filters(&self, refused: &[Reason], filters: usize) {
        let Some(first) = refused.first() else {
            return;
        };
        const SHOWN: usize = 3;
        let mut reasons: Vec<&str> = refused
            .iter()
            .take(SHOWN)
            .map(|r| r.message.as_str())
            .collect();
        if refused.len() > SHOWN {
            reasons.push("…");
        }
        if !self.may_log() {
            if let (Some(live), Some(last)) = (&self.live, refused.last()) {
                self.record_error(&live.address, last);
            }
            return;
        }
        tracing::warn!(
            refused = refused.len(),
            filters,
            reason = first.label,
            "SUBSCRIBE refused {} of {filters} filter(s): {}",
            refused.len(),
            reasons.join(" | ")
        );
        if let (Some(live), Some(last)) = (&self.live, refused.last()) {
            self.record_error(&live.address, last);
        }
    }

    /// The config push of the connected device (`None`) or of an attached one.
    fn config_push(&mut self, device: Option<&str>) -> Option<&mut ConfigPush> {
        let live = self.live.as_mut()?;
        match device {
            None => Some(&mut live.config),
            Some(id) => live
                .gateway
                .as_mut()?
                .attached
                .get_mut(id)
                .map(|a| &mut a.config),
        }
    }

    /// Sets (or with `None` clears) the command subscription of a device.
    fn set_commands(&mut self, device: Option<&str>, qos: Option<QoS>) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let (slot, inbox) = match device {
            None => (&mut live.commands_qos, &live.inbox),
            Some(id) => match live.gateway.as_mut().and_then(|g| g.attached.get_mut(id)) {
                Some(a) => (&mut a.commands_qos, &a.inbox),
                None => return,
            },
        };
        *slot = qos;
        inbox.set_commands(qos.is_some());
    }

    pub(super) async fn latest_config(&self, device: Option<&str>) -> Result<DeviceConfig, Reason> {
        let Some(address) = self.address_of(device) else {
            return Err(super::not_connected());
        };
        self.shared
            .store
            .get_device(&address.registry, &DeviceRef::NumId(address.num_id))
            .await
            .map(|d| d.config)
            .map_err(|e| {
                Reason::new(
                    Code::Unavailable,
                    "store_unavailable",
                    format!("the config could not be read: {e}"),
                )
            })
    }

    pub(super) fn on_unsubscribe(&mut self, unsubscribe: &Unsubscribe) {
        let Some(live) = &self.live else {
            return;
        };
        let device_id = live.device_id().to_owned();
        let gateway = live.gateway.is_some();
        for filter in &unsubscribe.filters {
            let Ok((target, _)) =
                topics::authorize_subscribe(&device_id, gateway, filter, QoS::AtMostOnce)
            else {
                continue;
            };
            match target.kind {
                Outbound::Config => {
                    let ids = self
                        .config_push(target.device)
                        .map(ConfigPush::unsubscribe)
                        .unwrap_or_default();
                    for id in ids {
                        self.session.forget(id);
                    }
                }
                Outbound::Commands => self.set_commands(target.device, None),
                Outbound::Errors => {
                    if let Some(g) = self.live.as_mut().and_then(|l| l.gateway.as_mut()) {
                        g.errors = false;
                    }
                }
                Outbound::ProvisionResult => {
                    if let Some(live) = self.live.as_mut() {
                        live.rotation_result = None;
                    }
                }
            }
        }
    }

    pub(super) fn on_delivered(&mut self, id: PacketId) {
        let Some(live) = &mut self.live else {
            return;
        };
        let acked = match live.config.acked(id) {
            Some(version) => Some((live.address.clone(), version)),
            None => live
                .gateway
                .iter_mut()
                .flat_map(|g| g.attached.values_mut())
                .find_map(|a| a.config.acked(id).map(|v| (a.address.clone(), v))),
        };
        let Some((address, version)) = acked else {
            return;
        };
        let store = Arc::clone(&self.shared.store);
        let now = self.registry_now();
        tokio::spawn(
            async move {
                if let Err(e) = store
                    .ack_config(&address.registry, address.num_id, version, now)
                    .await
                {
                    tracing::warn!(error = %e, version, "config acknowledgement not recorded");
                }
            }
            .in_current_span(),
        );
    }

    pub(super) fn on_config_changed(&mut self) {
        let Some(live) = &mut self.live else {
            return;
        };
        if let Some(config) = live.inbox.latest_config() {
            live.config.update(config);
        }
        let now = self.now();
        self.pump_config(now);
    }

    /// Sends or re-sends config as [`ConfigPush`] decides, for the connected device
    /// and every attached one.
    pub(super) fn pump_config(&mut self, now: Timestamp) {
        let Some(live) = &mut self.live else {
            return;
        };
        let shared = &*self.shared;
        let own_id = live.principal.device.id.clone();
        pump_one(
            &mut self.session,
            shared,
            &mut live.config,
            &own_id,
            &live.address,
            now,
        );
        for (id, attached) in live.gateway.iter_mut().flat_map(|g| g.attached.iter_mut()) {
            pump_one(
                &mut self.session,
                shared,
                &mut attached.config,
                id,
                &attached.address,
                now,
            );
        }
    }

    pub(super) async fn on_control(&mut self, control: Control) {
        let own = self.live.as_ref().map(|l| l.address.num_id);
        let attached_id = |driver: &Self, num_id: u64| {
            driver
                .live
                .as_ref()
                .and_then(|l| l.gateway.as_ref())
                .and_then(|g| g.id_of(num_id))
        };
        match control {
            Control::Command {
                num_id,
                subfolder,
                payload,
                deadline,
                done,
            } => {
                let result = if tokio::time::Instant::now() >= deadline {
                    // The caller has given up (a frozen or busy node): never send late.
                    Err(HubError::Unavailable(
                        "the command expired before the connection got to it".into(),
                    ))
                } else if Some(num_id) == own {
                    self.send_command(None, &subfolder, payload)
                } else {
                    match attached_id(self, num_id) {
                        Some(id) => self.send_command(Some(&id), &subfolder, payload),
                        None => Err(HubError::NotConnected),
                    }
                };
                let _ = done.send(result);
            }
            Control::Recheck(num_id) if Some(num_id) == own => self.recheck().await,
            Control::Recheck(num_id) => self.recheck_attached(num_id).await,
            Control::RegistryChanged => self.registry_changed().await,
            Control::Config(_) => {
                self.refresh_attached_configs();
                let now = self.now();
                self.pump_config(now);
            }
            Control::Detach { num_id, reason } => {
                if let Some(id) = attached_id(self, num_id) {
                    self.detach_device(&id, Some(reason));
                }
            }
        }
    }

    pub(super) fn send_command(
        &mut self,
        device: Option<&str>,
        subfolder: &str,
        payload: Vec<u8>,
    ) -> Result<(), HubError> {
        let max = self.shared.options.limits.command_bytes;
        let Some(live) = &mut self.live else {
            return Err(HubError::NotConnected);
        };
        let (device_id, qos) = match device {
            None => (live.principal.device.id.clone(), live.commands_qos),
            Some(id) => {
                let attached = live
                    .gateway
                    .as_ref()
                    .and_then(|g| g.attached.get(id))
                    .ok_or(HubError::NotConnected)?;
                (id.to_owned(), attached.commands_qos)
            }
        };
        let Some(qos) = qos else {
            return Err(HubError::NotSubscribed(device_id));
        };
        if payload.len() > max {
            return Err(HubError::Unavailable(format!(
                "the command is {} bytes; the limit is {max}",
                payload.len()
            )));
        }
        let topic = if subfolder.is_empty() {
            format!("/devices/{device_id}/commands")
        } else {
            format!("/devices/{device_id}/commands/{subfolder}")
        };
        let topic = TopicName::new(topic)
            .map_err(|e| HubError::Unavailable(format!("invalid command subfolder: {e}")))?;
        match self.session.publish(topic, payload, qos) {
            Ok(id) => {
                // Commands are not redelivered, so their PUBACK is not awaited: the
                // in-flight window stays free for config.
                if let Some(id) = id {
                    self.session.forget(id);
                }
                metrics::counter!("tether_mqtt_messages_out_total", "kind" => "command")
                    .increment(1);
                Ok(())
            }
            Err(SessionError::NotConnected) => Err(HubError::NotConnected),
            Err(e) => Err(HubError::Unavailable(e.to_string())),
        }
    }

    /// The registry changed through the API: take the new copy (routing applies to the
    /// next message) and close if MQTT was disabled.
    pub(super) async fn registry_changed(&mut self) {
        let Some(path) = self.live.as_ref().map(|l| l.address.registry.clone()) else {
            return;
        };
        // One read for all of this registry's connections, started after the change.
        let changes = self.shared.connections.registry_changes();
        let copy = self
            .shared
            .registries
            .after_change(&path, changes, &*self.shared.store)
            .await;
        let copy = match copy {
            Ok(copy) => copy,
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the changed registry");
                return;
            }
        };
        let now = self.now();
        let Some(live) = &mut self.live else {
            return;
        };
        let disabled = copy.registry.mqtt_state == MqttState::Disabled;
        if copy.read_at > live.registry_copy_at {
            live.registry_copy_at = copy.read_at;
            live.set_registry(&copy);
        }
        live.registry_read_at = now;
        if disabled {
            self.close(super::inbound::mqtt_disabled(&path));
        }
    }

    /// The device changed through the API: close if it may no longer be connected.
    pub(super) async fn recheck(&mut self) {
        let Some(live) = &self.live else {
            return;
        };
        let address = live.address.clone();
        self.shared.credentials.invalidate(&address);
        let device = self
            .shared
            .store
            .get_device(&address.registry, &DeviceRef::NumId(address.num_id))
            .await;
        let mut fresh = None;
        let reason = match device {
            Err(StoreError::NotFound(_)) => Some(Reason::new(
                Code::NotFound,
                "device_deleted",
                "The connection was closed because the device was deleted.",
            )),
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the device");
                None
            }
            Ok(device) if device.blocked => Some(Reason::new(
                Code::PermissionDenied,
                "device_blocked",
                "The connection was closed because the device was blocked.",
            )),
            Ok(device) => {
                let keys = self
                    .shared
                    .credentials
                    .credentials(&address.registry, &device)
                    .await;
                let now = self.shared.clock.unix_secs();
                let still_valid = keys.iter().any(|c| {
                    c.key == live.principal.key && c.expires_at.is_none_or(|exp| exp > now)
                });
                if still_valid {
                    fresh = Some(device);
                    None
                } else {
                    Some(Reason::new(
                        Code::Unauthenticated,
                        "credential_removed",
                        "The connection was closed because the key that authenticated it was \
                         removed or expired.",
                    ))
                }
            }
        };
        if let Some(reason) = reason {
            self.close(reason);
        }
        // The connection's copy stays current: a re-authentication checks against it.
        if let (Some(device), Some(live)) = (fresh, &mut self.live) {
            live.principal.device = Arc::new(crate::mqtt::auth::connection_copy(device));
        }
    }
}

/// Runs one device's [`ConfigPush`] on the session: publishes on
/// `/devices/{device_id}/config` and records `lastConfigSendTime`.
fn pump_one(
    session: &mut ServerSession,
    shared: &Shared,
    push: &mut ConfigPush,
    device_id: &str,
    address: &DeviceAddress,
    now: Timestamp,
) {
    let Ok(topic) = TopicName::new(format!("/devices/{device_id}/config")) else {
        return;
    };
    while let Some(action) = push.poll(now) {
        match action {
            Action::Send {
                config,
                qos,
                forget,
            } => {
                if let Some(old) = forget {
                    session.forget(old);
                }
                match session.publish(topic.clone(), config.binary_data.clone(), qos) {
                    Ok(id) => {
                        push.sent(&config, id, now);
                        metrics::counter!("tether_mqtt_messages_out_total", "kind" => "config")
                            .increment(1);
                        shared.activity.record(Activity {
                            registry: address.registry.clone(),
                            num_id: address.num_id,
                            kind: ActivityKind::ConfigSent,
                            at: RegistryTime(shared.clock.unix_micros()),
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, version = config.version, "config not sent");
                        push.sent(&config, None, now);
                    }
                }
            }
            Action::Resend { id, payload } => {
                if session.resend(id, topic.clone(), payload).is_ok() {
                    metrics::counter!("tether_mqtt_config_resends_total").increment(1);
                }
            }
        }
    }
}
