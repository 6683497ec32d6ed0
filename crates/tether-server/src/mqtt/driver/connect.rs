//! CONNECT: authenticate (under the CONNECT timeout), then register the device with
//! the hub (closing an older connection) and accept; or refuse with the CONNACK code
//! and record why.

use std::sync::Arc;

use tether_mqtt::{Connect, Timestamp};
use tokio::io::{AsyncRead, AsyncWrite};

use super::pipeline::{AckPipeline, DEFAULT_CAP};
use super::{Driver, Live};
use crate::bridge::limits::TokenBucket;
use crate::bridge::uplink::Routing;
use crate::bridge::{Code, Reason, shown};
use crate::mqtt::auth::{self, Principal};
use crate::mqtt::config_push::ConfigPush;
use crate::mqtt::reason_codes::{self, JWT_AUTH_METHOD};

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn on_connect(&mut self, mut connect: Connect) {
        metrics::counter!("tether_mqtt_connect_attempts_total").increment(1);
        if let Err(refused) = self.take_auth_data(&mut connect) {
            return self.refuse(&connect, refused);
        }
        let shared = Arc::clone(&self.shared);
        let now_secs = shared.clock.unix_secs();
        // A registry patched while this CONNECT is checked would notify connections
        // this one is not yet among: look again once it is registered.
        let registry_changes = shared.connections.registry_changes();
        // With admission threads this already runs on them (see `listener`).
        let outcome = tokio::time::timeout(
            shared.options.connect_timeout,
            auth::authenticate_or_claim(
                &connect,
                auth::Lookup {
                    store: &*shared.admission_store,
                    cache: shared.connections.device_cache(),
                },
                &*shared.credentials,
                &shared.claims,
                shared.options.jwt,
                now_secs,
            ),
        )
        .await
        .unwrap_or_else(|_| {
            Err(auth::Refused {
                code: tether_mqtt::ConnectReturnCode::ServerUnavailable,
                reason: Reason::new(
                    Code::Unavailable,
                    "auth_timeout",
                    "authentication took too long (the device registry did not answer); \
                     try again later",
                ),
                device: None,
            })
        });
        match outcome {
            Err(refused) => self.refuse(&connect, refused),
            Ok(auth::Authenticated::Provisioning(session)) => self.accept_provisioning(session),
            Ok(auth::Authenticated::Device(principal)) => {
                self.accept(*principal);
                if shared.connections.registry_changes() != registry_changes {
                    self.registry_changed().await;
                }
            }
        }
    }

    /// MQTT 5 enhanced authentication: with Authentication Method `jwt` the token is
    /// the Authentication Data (a password, if also sent, must be the same token).
    fn take_auth_data(&self, connect: &mut Connect) -> Result<(), auth::Refused> {
        let Some(properties) = self.session.connect_properties() else {
            return Ok(());
        };
        let refuse = |label, message: String| auth::Refused {
            code: tether_mqtt::ConnectReturnCode::BadUserNameOrPassword,
            reason: Reason::new(Code::Unauthenticated, label, message),
            device: None,
        };
        match properties.auth_method.as_deref() {
            None => Ok(()),
            Some(JWT_AUTH_METHOD) => {
                let data = properties.auth_data.clone().unwrap_or_default();
                if connect.password.as_ref().is_some_and(|p| *p != data) {
                    return Err(refuse(
                        "auth_data",
                        "CONNECT carries a password and different Authentication Data; with \
                         Authentication Method 'jwt' send the JWT as Authentication Data \
                         only"
                            .to_owned(),
                    ));
                }
                connect.password = Some(data);
                Ok(())
            }
            Some(other) => Err(refuse(
                "auth_method",
                format!(
                    "Authentication Method '{}' is not supported; use '{JWT_AUTH_METHOD}' \
                     with the device's JWT as Authentication Data, or send the JWT as the \
                     password",
                    shown(other)
                ),
            )),
        }
    }

    fn refuse(&mut self, connect: &Connect, refused: auth::Refused) {
        metrics::counter!("tether_mqtt_refusals_total", "reason" => refused.reason.label)
            .increment(1);
        let budget = &self.shared.log_budget;
        budget.refused();
        // Per source address, then per device: a credential-stuffing client
        // cannot fill the disk through the log.
        let loggable = budget.allow(&format!("ip:{}", self.peer))
            && refused
                .device
                .as_deref()
                .is_none_or(|d| budget.allow(&super::device_key(d)));
        if loggable {
            tracing::warn!(
                client_id = %shown(&connect.client_id),
                connack = refused.code.as_u8(),
                reason = refused.reason.label,
                "CONNECT refused: {}",
                refused.reason.message
            );
        }
        if let Some(device) = &refused.device {
            self.record_error(device, &refused.reason);
        }
        let _ = self.session.refuse_with(
            refused.code,
            reason_codes::connack(&refused.reason),
            &refused.reason.message,
        );
    }

    pub(super) fn accept(&mut self, mut principal: Principal) {
        let now = self.now();
        let options = &self.shared.options;
        let address = principal.address();
        tracing::Span::current().record(
            "device",
            tracing::field::display(address.registry.device_name(&principal.device.id)),
        );
        if !principal.warnings.is_empty() {
            let warnings: Vec<String> =
                principal.warnings.iter().map(ToString::to_string).collect();
            let warning = Reason::new(
                Code::Ok,
                "jwt_warning",
                format!("JWT accepted with a warning: {}", warnings.join("; ")),
            );
            if self.shared.log_budget.allow(&super::device_key(&address)) {
                tracing::info!("{}", warning.message);
            }
            metrics::counter!("tether_mqtt_jwt_warnings_total").increment(1);
            // Code 0: the device connected, but strict verifiers (and
            // `EncodingPolicy::Strict`) would refuse its token.
            self.record_error(&address, &warning);
        }
        let inbox = self.shared.connections.register(&address, self.conn_id);
        let expires_secs = principal.token_exp.saturating_add(options.jwt.skew_secs);
        let expires_at = Timestamp::from_millis(
            u64::try_from(expires_secs)
                .unwrap_or(0)
                .saturating_mul(1000),
        );
        let coords = crate::bridge::uplink::coordinates(&address, &principal.device.id);
        // The node's copy of the registry when it says the same as this CONNECT's read:
        // an idle device keeps it for hours, and a copy each is memory per device.
        // Without one, a background read makes one for the next connections.
        let shared_copy = self
            .shared
            .registries
            .latest(&address.registry)
            .filter(|c| *c.registry == *principal.registry);
        let routing = match shared_copy {
            Some(copy) => {
                principal.registry = copy.registry;
                copy.routing
            }
            None => {
                let _ = self.shared.registries.periodic(
                    &address.registry,
                    tokio::time::Instant::now(),
                    self.shared.connections.registry_changes(),
                    options.registry_refresh,
                    &self.shared.store,
                );
                Arc::new(Routing::of(&principal.registry))
            }
        };
        self.live = Some(Live {
            coords,
            events: tether_log::EventAttributes::default(),
            address,
            inbox,
            registry_read_at: now,
            registry_copy_at: tokio::time::Instant::now(),
            expires_at,
            connected_at: now,
            config: ConfigPush::new(
                options.limits.config_interval(),
                options.config_resend_interval,
            ),
            commands_qos: None,
            rotation_result: None,
            rotations: 0,
            messages: TokenBucket::new(options.limits.messages_per_sec, now),
            states: TokenBucket::new(options.limits.state_per_sec, now),
            pipeline: AckPipeline::new(DEFAULT_CAP),
            routing,
            activity_at: None,
            gateway: super::gateway::GatewayLive::of(&principal.device),
            principal,
        });
        if self.session.accept(false, now).is_ok() {
            metrics::counter!("tether_mqtt_connects_total").increment(1);
            self.shared.log_budget.connected();
            tracing::debug!("device connected");
        }
    }
}
