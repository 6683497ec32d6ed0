//! Device → cloud: telemetry and state. Each message is checked (topic, size, rate),
//! then appended by a spawned task; the tasks form an ordered pipeline so PUBACKs
//! leave in arrival order once each message is durable.

use std::sync::Arc;

use tether_mqtt::{PacketId, Publish, Timestamp};
use tether_registry::ActivityKind;
use tether_route::{Message, Route, route_event, route_state};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::{Driver, Outcome};
use crate::mqtt::reason::{Reason, RpcCode};
use crate::mqtt::topics::{self, Inbound};

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn on_publish(&mut self, publish: Publish) {
        let now = self.now();
        let Some(live) = &self.live else {
            return;
        };
        let inbound = match topics::authorize_publish(
            live.device_id(),
            &publish.topic,
            publish.delivery.qos(),
        ) {
            Ok(inbound) => inbound,
            Err(reason) => return self.close(reason),
        };
        let ack = publish.delivery.packet_id();
        if ack.is_some_and(|id| live.unacked.contains(&id)) {
            metrics::counter!("tether_mqtt_duplicates_total").increment(1);
            return;
        }
        let limits = self.shared.options.limits;
        let (kind, max) = match inbound {
            Inbound::Event { .. } => ("event", limits.telemetry_bytes),
            Inbound::State => ("state", limits.state_bytes),
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
        if let Err(at) = self.take_tokens(inbound, now) {
            metrics::counter!("tether_mqtt_throttled_total", "kind" => kind).increment(1);
            self.held = Some((publish, at));
            return;
        }
        metrics::counter!("tether_mqtt_messages_in_total", "kind" => kind).increment(1);
        metrics::counter!("tether_mqtt_payload_bytes_in_total", "kind" => kind)
            .increment(publish.payload.len() as u64);
        let task = match inbound {
            Inbound::Event { subfolder } => {
                let subfolder = subfolder.to_owned();
                match self.event_task(&subfolder, publish.payload, ack, now).await {
                    Ok(task) => task,
                    Err(reason) => return self.close(reason),
                }
            }
            Inbound::State => self.state_task(publish.payload, ack),
        };
        if let Some(live) = &mut self.live {
            if let Some(id) = ack {
                live.unacked.insert(id);
            }
            live.pipeline.push_back(task);
        }
        if matches!(inbound, Inbound::Event { .. }) {
            self.record(ActivityKind::Event);
        }
    }

    pub(super) fn take_tokens(
        &mut self,
        inbound: Inbound<'_>,
        now: Timestamp,
    ) -> Result<(), Timestamp> {
        let Some(live) = &mut self.live else {
            return Ok(());
        };
        if inbound == Inbound::State {
            live.states.take(now)?;
        }
        live.messages.take(now)
    }

    /// Re-reads the registry when the cached copy is older than `registry_refresh`, so
    /// routing changes reach connected devices.
    pub(super) async fn fresh_registry(&mut self, now: Timestamp) {
        let refresh = self.shared.options.registry_refresh;
        let Some(live) = &mut self.live else {
            return;
        };
        if now < live.registry_read_at.saturating_add(refresh) {
            return;
        }
        live.registry_read_at = now;
        match self.shared.store.get_registry(&live.address.registry).await {
            Ok(registry) => live.principal.registry = registry,
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the registry; using the cached copy")
            }
        }
    }

    pub(super) async fn event_task(
        &mut self,
        subfolder: &str,
        payload: Vec<u8>,
        ack: Option<PacketId>,
        now: Timestamp,
    ) -> Result<JoinHandle<Outcome>, Reason> {
        self.fresh_registry(now).await;
        let Some(live) = &self.live else {
            return Err(Reason::new(
                RpcCode::Unavailable,
                "internal",
                "not connected",
            ));
        };
        let configs: Vec<tether_route::EventNotificationConfig> = live
            .principal
            .registry
            .event_notification_configs
            .iter()
            .map(|c| tether_route::EventNotificationConfig {
                subfolder_matches: c.subfolder_matches.clone(),
                pubsub_topic_name: c.pubsub_topic_name.clone(),
            })
            .collect();
        let topic = match route_event(&configs, subfolder) {
            Route::Topic(topic) => topic,
            Route::NoTopic(why) => {
                return Err(Reason::new(
                    RpcCode::FailedPrecondition,
                    "no_telemetry_topic",
                    format!(
                        "The connection was closed because telemetry to subfolder '{subfolder}' \
                         cannot be delivered: {why}."
                    ),
                ));
            }
        };
        let message = Message::event(
            topic,
            &live.coords,
            subfolder,
            payload,
            self.shared.clock.unix_micros(),
        );
        let shared = Arc::clone(&self.shared);
        Ok(tokio::spawn(
            async move {
                let result = match tokio::time::timeout(
                    shared.options.sink_timeout,
                    shared.sink.publish(vec![message]),
                )
                .await
                {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("the sink did not answer in time".to_owned()),
                };
                Outcome {
                    ack,
                    kind: "event",
                    result,
                }
            }
            .in_current_span(),
        ))
    }

    pub(super) fn state_task(
        &self,
        payload: Vec<u8>,
        ack: Option<PacketId>,
    ) -> JoinHandle<Outcome> {
        let shared = Arc::clone(&self.shared);
        let live = self.live.as_ref();
        let registry = live.map(|l| l.address.registry.clone()).unwrap_or_default();
        let num_id = live.map_or(0, |l| l.address.num_id);
        let coords = live.map(|l| l.coords.clone());
        let state_topic = live.and_then(|l| {
            l.principal
                .registry
                .state_notification_config
                .as_ref()
                .map(|c| c.pubsub_topic_name.clone())
        });
        let now = self.registry_now();
        tokio::spawn(
            async move {
                let stored = shared
                    .store
                    .record_state(&registry, num_id, &payload, now)
                    .await;
                if stored.is_ok()
                    && let (Route::Topic(topic), Some(coords)) =
                        (route_state(state_topic.as_deref()), coords)
                {
                    // Best effort, as IoT Core: the state is stored either way.
                    let message = Message::state(topic, &coords, payload, now.0);
                    let sink = Arc::clone(&shared.sink);
                    tokio::spawn(
                        async move {
                            if let Err(e) = sink.publish(vec![message]).await {
                                tracing::warn!(error = %e, "state notification not delivered");
                            }
                        }
                        .in_current_span(),
                    );
                }
                Outcome {
                    ack,
                    kind: "state",
                    result: stored.map(|_| ()).map_err(|e| e.to_string()),
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
