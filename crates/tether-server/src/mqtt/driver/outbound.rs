//! Cloud → device: SUBSCRIBE and UNSUBSCRIBE, config delivery (with QoS 1
//! redelivery and acks), commands from the hub, and re-checks after API changes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tether_mqtt::session::SessionError;
use tether_mqtt::{
    PacketId, QoS, SubAck, SubAckCode, Subscribe, Timestamp, TopicName, Unsubscribe,
};
use tether_registry::model::{DeviceConfig, Timestamp as RegistryTime};
use tether_registry::names::DeviceRef;
use tether_registry::{Activity, ActivityKind, StoreError};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument as _;

use super::Driver;
use crate::hub::HubError;
use crate::mqtt::config_push::Action;
use crate::mqtt::delivery::Control;
use crate::mqtt::reason::{Reason, RpcCode};
use crate::mqtt::topics::{self, Outbound};

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn on_subscribe(&mut self, subscribe: Subscribe) {
        let Some(live) = &self.live else {
            return;
        };
        let device_id = live.device_id().to_owned();
        let mut codes = Vec::with_capacity(subscribe.subscriptions.len());
        let mut config_qos = None;
        for sub in &subscribe.subscriptions {
            match topics::authorize_subscribe(&device_id, &sub.filter, sub.qos) {
                Ok((Outbound::Config, qos)) => {
                    config_qos = Some(qos);
                    codes.push(SubAckCode::Granted(qos));
                }
                Ok((Outbound::Commands, qos)) => {
                    if let Some(live) = &mut self.live {
                        live.commands_qos = Some(qos);
                        live.reg.commands.store(true, Ordering::Release);
                    }
                    codes.push(SubAckCode::Granted(qos));
                }
                Err(reason) => {
                    metrics::counter!("tether_mqtt_subscribe_refusals_total", "reason" => reason.label)
                        .increment(1);
                    tracing::warn!(
                        reason = reason.label,
                        "SUBSCRIBE refused: {}",
                        reason.message
                    );
                    if let Some(live) = &self.live {
                        self.record_error(&live.address, &reason);
                    }
                    codes.push(SubAckCode::Failure);
                }
            }
        }
        let latest = match config_qos {
            Some(_) => match self.latest_config().await {
                Ok(config) => Some(config),
                Err(reason) => {
                    // Refuse the config filter rather than subscribe without a config.
                    tracing::warn!("config subscription refused: {reason}");
                    for (code, sub) in codes.iter_mut().zip(&subscribe.subscriptions) {
                        if topics::authorize_subscribe(&device_id, &sub.filter, sub.qos)
                            .is_ok_and(|(o, _)| o == Outbound::Config)
                        {
                            *code = SubAckCode::Failure;
                        }
                    }
                    None
                }
            },
            None => None,
        };
        let _ = self.session.suback(SubAck {
            packet_id: subscribe.packet_id,
            codes,
        });
        if let (Some(qos), Some(latest), Some(live)) = (config_qos, latest, &mut self.live) {
            live.config.subscribe(qos, latest);
            let now = self.now();
            self.pump_config(now);
        }
    }

    pub(super) async fn latest_config(&self) -> Result<DeviceConfig, Reason> {
        let Some(live) = &self.live else {
            return Err(Reason::new(
                RpcCode::Unavailable,
                "internal",
                "not connected",
            ));
        };
        self.shared
            .store
            .get_device(
                &live.address.registry,
                &DeviceRef::NumId(live.address.num_id),
            )
            .await
            .map(|d| d.config)
            .map_err(|e| {
                Reason::new(
                    RpcCode::Unavailable,
                    "store_unavailable",
                    format!("the config could not be read: {e}"),
                )
            })
    }

    pub(super) fn on_unsubscribe(&mut self, unsubscribe: &Unsubscribe) {
        let Some(live) = &mut self.live else {
            return;
        };
        let device_id = live.device_id().to_owned();
        for filter in &unsubscribe.filters {
            match topics::authorize_subscribe(&device_id, filter, QoS::AtMostOnce) {
                Ok((Outbound::Config, _)) => {
                    if let Some(id) = live.config.unsubscribe() {
                        self.session.forget(id);
                    }
                }
                Ok((Outbound::Commands, _)) => {
                    live.commands_qos = None;
                    live.reg.commands.store(false, Ordering::Release);
                }
                Err(_) => {}
            }
        }
    }

    pub(super) fn on_delivered(&mut self, id: PacketId) {
        let Some(live) = &mut self.live else {
            return;
        };
        let Some(version) = live.config.acked(id) else {
            return;
        };
        let store = Arc::clone(&self.shared.store);
        let registry = live.address.registry.clone();
        let num_id = live.address.num_id;
        let now = self.registry_now();
        tokio::spawn(
            async move {
                if let Err(e) = store.ack_config(&registry, num_id, version, now).await {
                    tracing::warn!(error = %e, version, "config acknowledgement not recorded");
                }
            }
            .in_current_span(),
        );
    }

    pub(super) fn on_config_changed(&mut self, open: bool) {
        let Some(live) = &mut self.live else {
            return;
        };
        if !open {
            live.config_open = false;
            return;
        }
        let latest = live.reg.config.borrow_and_update().clone();
        if let Some(config) = latest {
            live.config.update(config);
        }
        let now = self.now();
        self.pump_config(now);
    }

    /// Sends or re-sends config as [`ConfigPush`] decides.
    pub(super) fn pump_config(&mut self, now: Timestamp) {
        let Some(live) = &mut self.live else {
            return;
        };
        let Ok(topic) = TopicName::new(format!("/devices/{}/config", live.device_id())) else {
            return;
        };
        while let Some(action) = live.config.poll(now) {
            match action {
                Action::Send {
                    config,
                    qos,
                    supersedes,
                } => {
                    if let Some(old) = supersedes {
                        self.session.forget(old);
                    }
                    match self
                        .session
                        .publish(topic.clone(), config.binary_data.clone(), qos)
                    {
                        Ok(id) => {
                            live.config.sent(&config, id, now);
                            metrics::counter!("tether_mqtt_messages_out_total", "kind" => "config")
                                .increment(1);
                            self.shared.activity.record(Activity {
                                registry: live.address.registry.clone(),
                                num_id: live.address.num_id,
                                kind: ActivityKind::ConfigSent,
                                at: RegistryTime(self.shared.clock.unix_micros()),
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, version = config.version, "config not sent");
                            live.config.sent(&config, None, now);
                        }
                    }
                }
                Action::Resend { id, payload } => {
                    if self.session.resend(id, topic.clone(), payload).is_ok() {
                        metrics::counter!("tether_mqtt_config_resends_total").increment(1);
                    }
                }
            }
        }
    }

    pub(super) async fn on_control(&mut self, control: Control) {
        match control {
            Control::Command {
                subfolder,
                payload,
                done,
            } => {
                let _ = done.send(self.send_command(&subfolder, payload));
            }
            Control::Recheck => self.recheck().await,
        }
    }

    pub(super) fn send_command(
        &mut self,
        subfolder: &str,
        payload: Vec<u8>,
    ) -> Result<(), HubError> {
        let max = self.shared.options.limits.command_bytes;
        let Some(live) = &mut self.live else {
            return Err(HubError::NotConnected);
        };
        let Some(qos) = live.commands_qos else {
            return Err(HubError::NotSubscribed(live.device_id().to_owned()));
        };
        if payload.len() > max {
            return Err(HubError::Unavailable(format!(
                "the command is {} bytes; the limit is {max}",
                payload.len()
            )));
        }
        let topic = if subfolder.is_empty() {
            format!("/devices/{}/commands", live.device_id())
        } else {
            format!("/devices/{}/commands/{subfolder}", live.device_id())
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
        let reason = match device {
            Err(StoreError::NotFound(_)) => Some(Reason::new(
                RpcCode::NotFound,
                "device_deleted",
                "The connection was closed because the device was deleted.",
            )),
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the device");
                None
            }
            Ok(device) if device.blocked => Some(Reason::new(
                RpcCode::PermissionDenied,
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
                    None
                } else {
                    Some(Reason::new(
                        RpcCode::Unauthenticated,
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
    }
}
