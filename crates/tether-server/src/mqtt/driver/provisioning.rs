//! A provisioning session: a device that does not exist yet connected with a claim's
//! token. It may subscribe to `/devices/D/provision/result` and publish to
//! `/devices/D/provision`, nothing else. The reply goes to the result topic; one
//! that is ready before the SUBSCRIBE waits for it (AWS's fleet provisioning loses it
//! then), for as long as the session lasts.
//!
//! The session is never registered with the hub (there is no device to reach) and
//! stays on the admission threads: provisioning is part of connecting.

use tether_mqtt::{Publish, QoS, SubAck, SubAckCode, Subscribe, Timestamp, TopicName};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Driver;
use crate::bridge::provision::{self, ClaimSession};
use crate::bridge::{Code, Reason, shown};

/// Provisioning requests one session may make: a device needs one, a retry a second.
const REQUESTS_PER_SESSION: u32 = 8;

/// State of an accepted provisioning session.
#[derive(Debug)]
pub(super) struct ProvisionLive {
    session: ClaimSession,
    /// `/devices/D/provision`.
    request_topic: String,
    /// `/devices/D/provision/result`.
    result_topic: String,
    /// The QoS the result topic was subscribed at.
    subscribed: Option<QoS>,
    /// A reply made before the device subscribed.
    waiting: Option<Vec<u8>>,
    requests: u32,
    pub(super) expires_at: Timestamp,
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) fn accept_provisioning(&mut self, session: Box<ClaimSession>) {
        let now = self.now();
        let expires_secs = session
            .exp
            .saturating_add(self.shared.options.jwt.skew_secs);
        let expires_at = Timestamp::from_millis(
            u64::try_from(expires_secs)
                .unwrap_or(0)
                .saturating_mul(1000),
        );
        tracing::Span::current().record(
            "device",
            tracing::field::display(session.registry.path.device_name(&session.device_id)),
        );
        let device = &session.device_id;
        self.provisioning = Some(Box::new(ProvisionLive {
            request_topic: format!("/devices/{device}/provision"),
            result_topic: format!("/devices/{device}/provision/result"),
            subscribed: None,
            waiting: None,
            requests: 0,
            expires_at,
            session: *session,
        }));
        if self.session.accept(false, now).is_ok() {
            metrics::counter!("tether_provisioning_sessions_total").increment(1);
            if self.may_log()
                && let Some(live) = &self.provisioning
            {
                let claim = &live.session.claim.id;
                match &live.session.refusal {
                    None => tracing::info!(%claim, "provisioning session accepted"),
                    // Accepted only to tell the device why (a CONNACK cannot).
                    Some(why) => tracing::warn!(
                        %claim,
                        reason = why.label,
                        "provisioning session accepted; its requests will be refused: {}",
                        why.message
                    ),
                }
            }
        }
    }

    /// A PUBLISH in a provisioning session: only the request topic.
    pub(super) async fn on_provision_publish(&mut self, publish: Publish) {
        let Some(live) = self.provisioning.as_mut() else {
            return;
        };
        if publish.delivery.qos() == QoS::ExactlyOnce {
            return self.refuse_provisioning(Reason::new(
                Code::InvalidArgument,
                "qos2",
                "PUBLISH used QoS 2, which is not supported; use QoS 0 or 1",
            ));
        }
        if publish.topic.as_str() != live.request_topic {
            let reason = Reason::new(
                Code::PermissionDenied,
                "provisioning_topic",
                format!(
                    "a provisioning session may only publish to '{}' (and subscribe to '{}'); \
                     it published to '{}'. Provision first, then connect with the device's \
                     own key",
                    live.request_topic,
                    live.result_topic,
                    shown(publish.topic.as_str())
                ),
            );
            return self.refuse_provisioning(reason);
        }
        live.requests += 1;
        if live.requests > REQUESTS_PER_SESSION {
            return self.refuse_provisioning(Reason::new(
                Code::ResourceExhausted,
                "provisioning_requests",
                format!("a provisioning session may make at most {REQUESTS_PER_SESSION} requests"),
            ));
        }
        let shared = std::sync::Arc::clone(&self.shared);
        let session = live.session.clone();
        let outcome = provision::provision(
            &*shared.store,
            &session,
            &publish.payload,
            shared.options.jwt,
            shared.clock.unix_secs(),
        )
        .await;
        match &outcome {
            Ok(p) => {
                if self.may_log() {
                    tracing::info!(
                        claim = %session.claim.id,
                        num_id = p.device.num_id,
                        created = p.created,
                        "device provisioned"
                    );
                }
            }
            Err(reason) => {
                if self.may_log() {
                    tracing::warn!(
                        claim = %session.claim.id,
                        reason = reason.label,
                        "provisioning refused: {}",
                        reason.message
                    );
                }
            }
        }
        let reply = provision::reply(&session, &outcome)
            .to_string()
            .into_bytes();
        if let Some(id) = publish.delivery.packet_id() {
            let _ = self.session.puback(id);
        }
        if let Some(live) = self.provisioning.as_mut() {
            live.waiting = Some(reply);
        }
        self.send_provision_reply();
    }

    /// A SUBSCRIBE in a provisioning session: only the result topic is granted.
    pub(super) fn on_provision_subscribe(&mut self, subscribe: Subscribe) {
        let Some(live) = self.provisioning.as_mut() else {
            return;
        };
        let mut refused = Vec::new();
        let codes = subscribe
            .subscriptions
            .iter()
            .map(|s| {
                if s.filter.as_str() == live.result_topic {
                    let qos = s.qos.min(QoS::AtLeastOnce);
                    live.subscribed = Some(qos);
                    SubAckCode::Granted(qos)
                } else {
                    refused.push(shown(s.filter.as_str()));
                    SubAckCode::Failure
                }
            })
            .collect();
        let result_topic = live.result_topic.clone();
        let _ = self.session.suback(SubAck {
            packet_id: subscribe.packet_id,
            codes,
        });
        if !refused.is_empty() && self.may_log() {
            refused.truncate(3);
            tracing::warn!(
                "provisioning session: SUBSCRIBE refused for {} (only '{result_topic}' is \
                 allowed before the device is provisioned)",
                refused.join(", ")
            );
        }
        self.send_provision_reply();
    }

    /// Sends a waiting reply once the result topic is subscribed.
    fn send_provision_reply(&mut self) {
        let Some(live) = self.provisioning.as_mut() else {
            return;
        };
        let Some(qos) = live.subscribed else {
            return;
        };
        let Some(reply) = live.waiting.take() else {
            return;
        };
        let Ok(topic) = TopicName::new(live.result_topic.clone()) else {
            return;
        };
        if let Err(e) = self.session.publish(topic, reply, qos) {
            tracing::debug!(error = %e, "provisioning reply not sent");
        }
    }

    fn refuse_provisioning(&mut self, reason: Reason) {
        metrics::counter!("tether_provisioning_refusals_total", "reason" => reason.label)
            .increment(1);
        if self.may_log() {
            tracing::warn!(
                reason = reason.label,
                "provisioning session closed: {}",
                reason.message
            );
        }
        self.close(reason);
    }
}
