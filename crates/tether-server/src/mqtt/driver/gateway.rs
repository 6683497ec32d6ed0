//! A gateway's connection: attach and detach devices, report failures on
//! `/devices/{gw}/errors`, and keep per-device state (config push, command
//! subscription, state rate) for each attached device.
//!
//! An attached device is registered with the hub through this connection, so the API
//! reaches it (commands, config, re-checks) exactly as if it were connected itself.
//! When the gateway's connection ends, every attached device is detached.

use std::collections::HashMap;
use std::sync::Arc;

use tether_iot::{GatewayError, GatewayErrorType, MqttMessageInfo};
use tether_log::{DeviceCoordinates, EventAttributes};
use tether_mqtt::{PacketId, Publish, QoS, TopicName};
use tether_registry::ActivityKind;
use tether_registry::model::{Device, GatewayAuthMethod, GatewayType};
use tether_registry::names::DeviceRef;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Driver;
use crate::bridge::auth as device_auth;
use crate::bridge::gateway_rules;
use crate::bridge::hub::DeviceAddress;
use crate::bridge::limits::TokenBucket;
use crate::bridge::{Code, Reason};
use crate::mqtt::config_push::ConfigPush;
use crate::mqtt::mailbox::Inbox;

/// One device attached through the gateway.
#[derive(Debug)]
pub(super) struct Attached {
    pub(super) address: DeviceAddress,
    pub(super) coords: DeviceCoordinates,
    /// The attribute set its events share.
    pub(super) events: EventAttributes,
    /// Its config and command subscription (its messages come in the gateway's).
    pub(super) inbox: Inbox,
    pub(super) config: ConfigPush,
    pub(super) commands_qos: Option<QoS>,
    pub(super) states: TokenBucket,
    /// When message activity was last recorded (µs).
    pub(super) activity_at: Option<i64>,
}

/// The gateway part of a connection.
#[derive(Debug)]
pub(super) struct GatewayLive {
    pub(super) method: GatewayAuthMethod,
    /// Subscribed to `/devices/{gw}/errors`.
    pub(super) errors: bool,
    /// By device id.
    pub(super) attached: HashMap<String, Attached>,
}

impl GatewayLive {
    /// The gateway part for `device`, if it is a gateway.
    pub(super) fn of(device: &Device) -> Option<Self> {
        (device.gateway_config.gateway_type == GatewayType::Gateway).then(|| Self {
            method: device.gateway_config.gateway_auth_method,
            errors: false,
            attached: HashMap::new(),
        })
    }

    pub(super) fn id_of(&self, num_id: u64) -> Option<String> {
        self.attached
            .iter()
            .find(|(_, a)| a.address.num_id == num_id)
            .map(|(id, _)| id.clone())
    }
}

/// An attach refusal: why, and the device to record it on when it was found.
type AttachRefusal = (Reason, Option<DeviceAddress>);

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Whether `device_id` is attached to this (gateway) connection.
    pub(super) fn is_attached(&self, device_id: &str) -> bool {
        self.live
            .as_ref()
            .and_then(|l| l.gateway.as_ref())
            .is_some_and(|g| g.attached.contains_key(device_id))
    }

    pub(super) async fn on_attach(&mut self, device_id: Option<&str>, publish: &Publish) {
        let info = message_info(publish);
        let ack = publish.delivery.packet_id();
        let Some(device_id) = device_id else {
            let reason = Reason::new(
                Code::InvalidArgument,
                "attach_self",
                "a gateway cannot attach itself; attach the devices behind it",
            );
            let own = self.live.as_ref().map(|l| l.device_id().to_owned());
            return self.gateway_error(
                GatewayErrorType::GatewayAttachmentError,
                own.as_deref().unwrap_or_default(),
                &reason,
                None,
                Some(info),
            );
        };
        match self.try_attach(device_id, &publish.payload).await {
            Ok(()) => {
                metrics::counter!("tether_mqtt_gateway_attaches_total").increment(1);
                tracing::debug!(attached = device_id, "device attached");
                self.ack_in_order(ack);
            }
            Err((reason, device)) => {
                metrics::counter!("tether_mqtt_gateway_attach_refusals_total", "reason" => reason.label)
                    .increment(1);
                self.gateway_error(
                    GatewayErrorType::GatewayAttachmentError,
                    device_id,
                    &reason,
                    device.as_ref(),
                    Some(info),
                );
            }
        }
    }

    async fn try_attach(&mut self, device_id: &str, payload: &[u8]) -> Result<(), AttachRefusal> {
        let token = gateway_rules::parse_attach(payload).map_err(|m| {
            (
                Reason::new(Code::InvalidArgument, "attach_payload", m),
                None,
            )
        })?;
        let Some(live) = &self.live else {
            return Err((super::not_connected(), None));
        };
        let gw_address = live.address.clone();
        let gw_num_id = live.principal.device.num_id;
        let project = live.address.registry.project.clone();
        let method = live.gateway.as_ref().map(|g| g.method).unwrap_or_default();
        let attached_now = live.gateway.as_ref().map_or(0, |g| g.attached.len());
        let already = self.is_attached(device_id);
        let shared = Arc::clone(&self.shared);
        let demands = gateway_rules::demands(method).map_err(|r| (r, None))?;
        let (_, device) = device_auth::lookup(
            &*shared.store,
            &gw_address.registry,
            &DeviceRef::Id(device_id.to_owned()),
        )
        .await
        .map_err(|d| (d.reason, None))?;
        let address = DeviceAddress {
            registry: gw_address.registry.clone(),
            num_id: device.num_id,
        };
        let refuse = |reason: Reason| (reason, Some(address.clone()));
        if device.gateway_config.gateway_type == GatewayType::Gateway {
            return Err(refuse(Reason::new(
                Code::FailedPrecondition,
                "attach_gateway",
                format!("'{device_id}' is a gateway; a gateway cannot be attached to another"),
            )));
        }
        device_auth::check_not_blocked(&device, &address).map_err(|d| refuse(d.reason))?;
        if demands.association {
            let bound = shared
                .store
                .is_bound(&gw_address.registry, gw_num_id, device.num_id)
                .await
                .map_err(|e| refuse(device_auth::unavailable(&e).reason))?;
            if !bound {
                return Err(refuse(Reason::new(
                    Code::PermissionDenied,
                    "attach_not_bound",
                    format!(
                        "device '{device_id}' is not bound to this gateway, and its auth method \
                         {} requires it; bind it with bindDeviceToGateway",
                        method.name()
                    ),
                )));
            }
        }
        if demands.token {
            let Some(token) = token.as_deref() else {
                return Err(refuse(Reason::new(
                    Code::Unauthenticated,
                    "attach_no_token",
                    format!(
                        "the gateway's auth method {} requires the device's own JWT: publish \
                         {{\"authorization\":\"<JWT of '{device_id}'>\"}} to attach",
                        method.name()
                    ),
                )));
            };
            device_auth::verify_token(
                token,
                &project,
                &gw_address.registry,
                &device,
                &*shared.credentials,
                shared.options.jwt,
                shared.clock.unix_secs(),
            )
            .await
            .map_err(|d| refuse(d.reason))?;
        }
        let max = shared.options.limits.attached_per_gateway;
        if !already && attached_now >= max {
            return Err(refuse(Reason::new(
                Code::ResourceExhausted,
                "attach_limit",
                format!("the gateway already has {max} devices attached; detach one first"),
            )));
        }
        let inbox = shared
            .connections
            .attach(&gw_address, self.conn_id, &address)
            .ok_or_else(|| {
                refuse(Reason::new(
                    Code::Cancelled,
                    "superseded",
                    "the gateway's connection is being replaced",
                ))
            })?;
        let now = self.now();
        let options = &shared.options;
        let attached = Attached {
            coords: crate::bridge::uplink::coordinates(&address, &device.id),
            events: EventAttributes::default(),
            address: address.clone(),
            inbox,
            config: ConfigPush::new(
                options.limits.config_interval(),
                options.config_resend_interval,
            ),
            commands_qos: None,
            states: TokenBucket::new(options.limits.state_per_sec, now),
            activity_at: None,
        };
        let gateway_id = self
            .live
            .as_ref()
            .map(|l| l.device_id().to_owned())
            .unwrap_or_default();
        if let Some(g) = self.live.as_mut().and_then(|l| l.gateway.as_mut()) {
            // A repeated attach starts the device afresh (re-subscribe to get config).
            if let Some(old) = g.attached.insert(device_id.to_owned(), attached) {
                forget_config(&mut self.session, old.config);
            }
        }
        self.record_on(
            &address,
            ActivityKind::GatewayAccess { gateway_id },
            self.instant(),
        );
        Ok(())
    }

    pub(super) fn on_detach(&mut self, device_id: Option<&str>, publish: &Publish) {
        // Idempotent: detaching a device that is not attached is acknowledged.
        if let Some(device_id) = device_id
            && self.detach_device(device_id, None)
        {
            tracing::debug!(detached = device_id, "device detached");
        }
        self.ack_in_order(publish.delivery.packet_id());
    }

    /// Detaches `device_id`; with a `reason` the gateway is told on its errors topic
    /// (`GATEWAY_DETACHMENT_DEVICE_ERROR`). False if it was not attached.
    pub(super) fn detach_device(&mut self, device_id: &str, reason: Option<Reason>) -> bool {
        let Some(g) = self.live.as_mut().and_then(|l| l.gateway.as_mut()) else {
            return false;
        };
        let Some(old) = g.attached.remove(device_id) else {
            return false;
        };
        self.shared
            .connections
            .deregister(&old.address, self.conn_id);
        let address = old.address.clone();
        forget_config(&mut self.session, old.config);
        if let Some(reason) = reason {
            self.gateway_error(
                GatewayErrorType::GatewayDetachmentDeviceError,
                device_id,
                &reason,
                Some(&address),
                None,
            );
        }
        true
    }

    /// Records a gateway error on the gateway (and the device) and publishes it on
    /// `/devices/{gw}/errors` if the gateway subscribed (QoS 0, as IoT Core).
    pub(super) fn gateway_error(
        &mut self,
        error_type: GatewayErrorType,
        device_id: &str,
        reason: &Reason,
        device: Option<&DeviceAddress>,
        info: Option<MqttMessageInfo>,
    ) {
        if self.live.is_none() {
            return;
        }
        if self.may_log() {
            tracing::warn!(
                device = %crate::bridge::shown(device_id),
                reason = reason.label,
                "gateway error: {}",
                reason.message
            );
        }
        let Some(live) = &self.live else {
            return;
        };
        let error = GatewayError {
            error_type,
            description: reason.message.clone(),
            device_id: device_id.to_owned(),
            mqtt_message_info: info,
        };
        let topic = TopicName::new(format!("/devices/{}/errors", live.device_id()));
        let subscribed = live.gateway.as_ref().is_some_and(|g| g.errors);
        let gateway = live.address.clone();
        self.record_error(&gateway, reason);
        if let Some(device) = device {
            self.record_error(device, reason);
        }
        if let (true, Ok(topic)) = (subscribed, topic) {
            let _ =
                self.session
                    .publish(topic, gateway_rules::error_payload(&error), QoS::AtMostOnce);
            metrics::counter!("tether_mqtt_messages_out_total", "kind" => "gateway_error")
                .increment(1);
        }
    }

    /// `GATEWAY_DEVICE_NOT_FOUND` for a message about a device not attached.
    pub(super) fn not_attached(&mut self, device_id: &str, info: MqttMessageInfo) {
        let error = gateway_rules::not_attached(device_id, info);
        let reason = Reason::new(
            Code::FailedPrecondition,
            "gateway_not_attached",
            error.description.clone(),
        );
        self.gateway_error(
            error.error_type,
            device_id,
            &reason,
            None,
            error.mqtt_message_info,
        );
    }

    /// The attached device with numId `num_id` changed: detach it if it was deleted,
    /// blocked or (when the auth method needs it) unbound.
    pub(super) async fn recheck_attached(&mut self, num_id: u64) {
        let Some(live) = &self.live else {
            return;
        };
        let Some(g) = &live.gateway else {
            return;
        };
        let Some(device_id) = g.id_of(num_id) else {
            return;
        };
        let needs_binding = gateway_rules::demands(g.method).is_ok_and(|d| d.association);
        let registry = live.address.registry.clone();
        let gw_num_id = live.address.num_id;
        let store = Arc::clone(&self.shared.store);
        let reason = match store.get_device(&registry, &DeviceRef::NumId(num_id)).await {
            Err(tether_registry::StoreError::NotFound(_)) => Some(Reason::new(
                Code::NotFound,
                "device_deleted",
                "Device detached because the device was deleted.",
            )),
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read an attached device");
                None
            }
            Ok(device) if device.blocked => Some(Reason::new(
                Code::PermissionDenied,
                "device_blocked",
                "Device detached because the device was blocked.",
            )),
            Ok(_) if needs_binding => match store.is_bound(&registry, gw_num_id, num_id).await {
                Ok(false) => Some(Reason::new(
                    Code::PermissionDenied,
                    "device_unbound",
                    "Device detached because it was unbound from the gateway.",
                )),
                _ => None,
            },
            Ok(_) => None,
        };
        if let Some(reason) = reason {
            self.detach_device(&device_id, Some(reason));
        }
    }

    /// Takes newer config versions of attached devices from their watches.
    pub(super) fn refresh_attached_configs(&mut self) {
        let Some(g) = self.live.as_mut().and_then(|l| l.gateway.as_mut()) else {
            return;
        };
        for attached in g.attached.values_mut() {
            if let Some(config) = attached.inbox.take_config_change() {
                attached.config.update(config);
            }
        }
    }

    /// Detaches every device (the gateway's connection ends).
    pub(super) fn detach_all(&mut self) {
        let Some(g) = self.live.as_mut().and_then(|l| l.gateway.as_mut()) else {
            return;
        };
        for (_, attached) in g.attached.drain() {
            self.shared
                .connections
                .deregister(&attached.address, self.conn_id);
        }
    }
}

fn forget_config(session: &mut tether_mqtt::ServerSession, mut config: ConfigPush) {
    for id in config.unsubscribe() {
        session.forget(id);
    }
}

pub(super) fn message_info(publish: &Publish) -> MqttMessageInfo {
    MqttMessageInfo {
        message_type: "PUBLISH".into(),
        topic: publish.topic.as_str().to_owned(),
        packet_id: publish.delivery.packet_id().map(PacketId::get),
    }
}
