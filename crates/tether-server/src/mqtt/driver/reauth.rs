//! MQTT 5 re-authentication: a device sends AUTH (0x19) with a fresh JWT before its
//! token expires; the token is checked under the same rules as at CONNECT and, when
//! it passes, the connection lives on to the new `exp` with its subscriptions and
//! in-flight messages untouched. A refused token closes the connection (0x87) with
//! the precise reason.

use std::sync::Arc;

use tether_mqtt::{Connect, Timestamp};
use tether_registry::ActivityKind;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Driver;
use crate::bridge::{Code, Reason};
use crate::mqtt::auth;

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
        let mut connect = Connect::new(live.address.registry.device_name(live.device_id()));
        connect.password = Some(token);
        let shared = Arc::clone(&self.shared);
        let checked = tokio::time::timeout(
            shared.options.connect_timeout,
            auth::authenticate(
                &connect,
                &*shared.store,
                &*shared.credentials,
                shared.options.jwt,
                shared.clock.unix_secs(),
            ),
        )
        .await;
        let principal = match checked {
            Ok(Ok(principal)) => principal,
            Ok(Err(refused)) => {
                metrics::counter!("tether_mqtt_reauth_total", "result" => "refused").increment(1);
                return self.close(Reason::new(
                    refused.reason.code,
                    "reauth_refused",
                    format!("re-authentication refused: {}", refused.reason.message),
                ));
            }
            Err(_) => {
                metrics::counter!("tether_mqtt_reauth_total", "result" => "timeout").increment(1);
                return self.close(Reason::new(
                    Code::Unavailable,
                    "reauth_unavailable",
                    "re-authentication took too long (the device registry did not answer); \
                     reconnect with the new token",
                ));
            }
        };
        let now = self.instant();
        let skew = self.shared.options.jwt.skew_secs;
        let Some(live) = &mut self.live else {
            return;
        };
        let expires_secs = principal.token_exp.saturating_add(skew);
        live.expires_at = Timestamp::from_millis(
            u64::try_from(expires_secs)
                .unwrap_or(0)
                .saturating_mul(1000),
        );
        live.principal.key = principal.key;
        live.principal.token_exp = principal.token_exp;
        live.principal.warnings = principal.warnings;
        let address = live.address.clone();
        if self.session.reauthenticated().is_ok() {
            metrics::counter!("tether_mqtt_reauth_total", "result" => "ok").increment(1);
            self.record_on(&address, ActivityKind::Heartbeat, now);
            tracing::debug!(exp = principal.token_exp, "re-authenticated");
        }
    }
}
