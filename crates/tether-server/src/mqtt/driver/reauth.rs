//! MQTT 5 re-authentication: a device sends AUTH (0x19) with a fresh JWT before its
//! token expires; the token is checked under the same rules as at CONNECT and, when
//! it passes, the connection lives on to the new `exp` with its subscriptions and
//! in-flight messages untouched. A refused token closes the connection (0x87) with
//! the precise reason.

use std::sync::Arc;

use tether_mqtt::Timestamp;
use tether_registry::ActivityKind;
use tether_registry::model::MqttState;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Driver;
use super::{Live, Shared};
use crate::bridge::auth::{self as device_auth, Verified};
use crate::bridge::{Code, Reason};

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn on_reauthenticate(&mut self, token: Vec<u8>) {
        let Some(live) = &self.live else {
            return self.close(Reason::new(
                Code::PermissionDenied,
                "reauth_refused",
                "re-authentication is not available on a provisioning session; reconnect \
                 with the new device's own token",
            ));
        };
        // Checked against the connection's own copies of the device and its registry,
        // which every change to either updates (or closes the connection for): no
        // store read, only the signature (a key added since is in the key cache,
        // which the same change refreshed).
        let shared = Arc::clone(&self.shared);
        let token = String::from_utf8(token).map_err(|_| {
            Reason::new(
                Code::Unauthenticated,
                "password_not_text",
                "the Authentication Data is not text, so it cannot be a JWT",
            )
        });
        let checked = match token {
            Ok(token) => check(&token, live, &shared).await,
            Err(reason) => Err(reason),
        };
        let verified = match checked {
            Ok(verified) => verified,
            Err(reason) => {
                metrics::counter!("tether_mqtt_reauth_total", "result" => "refused").increment(1);
                return self.close(Reason::new(
                    reason.code,
                    "reauth_refused",
                    format!("re-authentication refused: {}", reason.message),
                ));
            }
        };
        let now = self.instant();
        let skew = self.shared.options.jwt.skew_secs;
        let Some(live) = &mut self.live else {
            return;
        };
        let expires_secs = verified.exp.saturating_add(skew);
        live.expires_at = Timestamp::from_millis(
            u64::try_from(expires_secs)
                .unwrap_or(0)
                .saturating_mul(1000),
        );
        live.principal.key = verified.key;
        live.principal.token_exp = verified.exp;
        live.principal.warnings = verified.warnings;
        let address = live.address.clone();
        if self.session.reauthenticated().is_ok() {
            metrics::counter!("tether_mqtt_reauth_total", "result" => "ok").increment(1);
            self.record_on(&address, ActivityKind::Heartbeat, now);
            tracing::debug!(exp = verified.exp, "re-authenticated");
        }
    }
}

/// The new token, checked as at CONNECT against the connection's copies.
async fn check(token: &str, live: &Live, shared: &Shared) -> Result<Verified, Reason> {
    let address = &live.address;
    if live.principal.registry.mqtt_state == MqttState::Disabled {
        return Err(crate::mqtt::auth::mqtt_disabled(&address.registry));
    }
    let device = &live.principal.device;
    device_auth::check_not_blocked(device, address).map_err(|d| d.reason)?;
    device_auth::verify_token(
        token,
        &address.registry.project,
        &address.registry,
        device,
        &*shared.credentials,
        shared.options.jwt,
        shared.clock.unix_secs(),
    )
    .await
    .map_err(|d| d.reason)
}
