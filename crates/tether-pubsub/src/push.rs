//! Push subscriptions: each message POSTed to the subscription's endpoint as
//! Pub/Sub's push JSON. A 102, 200, 201, 202 or 204 answer acks it; any other
//! answer, or none within the ack deadline, retries after the subscription's
//! backoff (10 s doubling to 600 s by default). Unacked messages survive restarts
//! like any other: the ledger delivers them again.
//!
//! ```text
//!  supervisor ── one worker per push subscription ── pull(≤ in-flight room)
//!                                                      └─ POST each ─▶ 2xx: ack
//!                                                                    └ else: lease until backoff ends ─▶ due again
//! ```
//!
//! The receiver can tell a genuine POST by a static `Authorization` header or an
//! HMAC-SHA256 signature of the body (`X-Tether-Signature: t=<unix secs>,v1=<hex>`,
//! over `"<t>.<body>"`), both server-wide settings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use base64::Engine as _;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::engine::{Delivery, PubSub, Subscription};

/// Answers that ack a pushed message (Pub/Sub's list).
const ACKING: [u16; 5] = [102, 200, 201, 202, 204];
/// How often an idle worker checks its subscription is still a push one.
const RECHECK: Duration = Duration::from_secs(5);

/// Server-wide push settings. `Debug` hides the secrets.
#[derive(Clone)]
pub struct PushOptions {
    /// Messages in flight (POSTed, not answered) per subscription.
    pub max_in_flight: usize,
    /// Sent as the `Authorization` header of every POST, if set.
    pub authorization: Option<String>,
    /// Signs every body (`X-Tether-Signature`), if set.
    pub hmac_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushOptions")
            .field("max_in_flight", &self.max_in_flight)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<set>"),
            )
            .field("hmac_secret", &self.hmac_secret.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            max_in_flight: 100,
            authorization: None,
            hmac_secret: None,
        }
    }
}

/// The push JSON of one delivery (Pub/Sub writes both spellings of the ids).
pub fn body(subscription: &str, d: &Delivery) -> String {
    let m = &d.record.message;
    let time = tether_iot::UnixTime::from_micros(m.publish_time).to_string();
    let id = d.record.offset.to_string();
    serde_json::json!({
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(&m.data),
            "attributes": &*m.attributes,
            "messageId": id,
            "message_id": id,
            "publishTime": time,
            "publish_time": time,
        },
        "subscription": subscription,
    })
    .to_string()
}

/// `t=<secs>,v1=<hex HMAC-SHA256 of "<secs>.<body>">`.
pub fn signature(secret: &[u8], unix_secs: u64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, format!("{unix_secs}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_secs},v1={hex}")
}

/// The running workers; stopping the supervisor (dropping its future) stops them.
#[derive(Debug, Default)]
struct Workers(HashMap<String, JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in self.0.values() {
            worker.abort();
        }
    }
}

/// Starts the supervisor: one worker per push subscription, started and stopped as
/// subscriptions change.
pub fn spawn(pubsub: Arc<PubSub>, options: PushOptions) -> JoinHandle<()> {
    tokio::spawn(async move {
        // reqwest is built without a bundled TLS provider; ring is the project's one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = match reqwest::Client::builder().build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "push delivery cannot start: no HTTP client");
                return;
            }
        };
        let options = Arc::new(options);
        let mut workers = Workers::default();
        loop {
            let changed = pubsub.push_changed();
            // On JetStream another node may have made or changed a push subscription.
            if let Err(e) = pubsub.refresh().await {
                tracing::warn!(error = %e, "push: cannot read the subscriptions");
            }
            for sub in pubsub.push_subscriptions() {
                let running = workers.0.get(sub.name()).is_some_and(|w| !w.is_finished());
                if !running {
                    let name = sub.name().to_owned();
                    let worker = tokio::spawn(work(
                        Arc::clone(&pubsub),
                        sub,
                        client.clone(),
                        Arc::clone(&options),
                    ));
                    workers.0.insert(name, worker);
                }
            }
            workers.0.retain(|_, w| !w.is_finished());
            let _ = tokio::time::timeout(RECHECK, changed).await;
        }
    })
}

/// Delivers one subscription's messages while it is a push subscription.
async fn work(
    pubsub: Arc<PubSub>,
    sub: Arc<Subscription>,
    client: reqwest::Client,
    options: Arc<PushOptions>,
) {
    let stream = pubsub.stream_id();
    let in_flight = Arc::new(Semaphore::new(options.max_in_flight.max(1)));
    loop {
        let settings = sub.settings();
        if !pubsub.is_live(&sub) || settings.push_endpoint.is_empty() {
            return;
        }
        let room = in_flight.available_permits();
        if room == 0 {
            // Wait for one answer, then pull again.
            if let Ok(p) = in_flight.acquire().await {
                drop(p);
            }
            continue;
        }
        let deliveries = match pubsub
            .pull(
                &sub,
                room,
                stream,
                settings.ack_deadline_s,
                Some(Instant::now() + RECHECK),
            )
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(subscription = sub.name(), error = %e, "push: cannot read messages");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for d in deliveries {
            let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                return;
            };
            let (pubsub, sub, client, options) = (
                Arc::clone(&pubsub),
                Arc::clone(&sub),
                client.clone(),
                Arc::clone(&options),
            );
            let endpoint = settings.push_endpoint.clone();
            let timeout = Duration::from_secs(u64::from(settings.ack_deadline_s));
            let backoff = settings.backoff;
            tokio::spawn(async move {
                let _permit = permit;
                let now = pubsub.unix_micros();
                let outcome = post(&client, &options, &endpoint, &sub, &d, timeout, now).await;
                let label = if outcome.is_ok() { "acked" } else { "refused" };
                metrics::counter!("tether_pubsub_push_total", "outcome" => label).increment(1);
                match outcome {
                    Ok(()) => pubsub.ack_delivery(&sub, &d).await,
                    Err(why) => {
                        let wait = backoff.after(d.attempt);
                        tracing::debug!(
                            subscription = sub.name(),
                            message = d.record.offset,
                            attempt = d.attempt,
                            wait_ms = wait,
                            "push refused: {why}"
                        );
                        pubsub.retry_later(&sub, &d, wait).await;
                    }
                }
            });
        }
    }
}

/// POSTs one message; `Ok` when the answer acks it.
async fn post(
    client: &reqwest::Client,
    options: &PushOptions,
    endpoint: &str,
    sub: &Subscription,
    d: &Delivery,
    timeout: Duration,
    unix_micros: i64,
) -> Result<(), String> {
    let body = body(sub.name(), d);
    let mut request = client
        .post(endpoint)
        .timeout(timeout)
        .header("content-type", "application/json");
    if let Some(auth) = &options.authorization {
        request = request.header("authorization", auth);
    }
    if let Some(secret) = &options.hmac_secret {
        let now = u64::try_from(unix_micros.div_euclid(1_000_000)).unwrap_or(0);
        request = request.header("x-tether-signature", signature(secret, now, &body));
    }
    let response = request.body(body).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if ACKING.contains(&status) {
        Ok(())
    } else {
        Err(format!("the endpoint answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_log::{Message, Record};

    #[test]
    fn the_body_is_pub_sub_push_json() -> Result<(), serde_json::Error> {
        let d = Delivery {
            ack_id: String::new(),
            attempt: 1,
            record: Record {
                offset: 7,
                message: Message {
                    topic: "projects/p/topics/t".into(),
                    data: b"hi".to_vec(),
                    attributes: std::sync::Arc::new(
                        [("deviceId".to_owned(), "dev-1".to_owned())].into(),
                    ),
                    publish_time: 1_767_225_600_250_000,
                },
            },
        };
        let v: serde_json::Value = serde_json::from_str(&body("projects/p/subscriptions/s", &d))?;
        assert_eq!(v["subscription"], "projects/p/subscriptions/s");
        assert_eq!(v["message"]["data"], "aGk=");
        assert_eq!(v["message"]["messageId"], "7");
        assert_eq!(v["message"]["message_id"], "7");
        assert_eq!(v["message"]["publishTime"], "2026-01-01T00:00:00.250Z");
        assert_eq!(v["message"]["attributes"]["deviceId"], "dev-1");
        Ok(())
    }

    #[test]
    fn signatures_cover_time_and_body() {
        let a = signature(b"secret", 1, "{}");
        assert!(a.starts_with("t=1,v1="));
        assert_eq!(a.len(), "t=1,v1=".len() + 64);
        assert_ne!(a, signature(b"secret", 2, "{}"));
        assert_ne!(a, signature(b"other", 1, "{}"));
        assert_ne!(a, signature(b"secret", 1, "{ }"));
    }
}
