//! Subscriptions on JetStream (`--nats`): each one is a durable pull consumer of
//! the telemetry stream, so JetStream holds the leases and the acks, and every node
//! on the same NATS serves every subscription. No second queue: what the embedded
//! default keeps in its ledger and catalog, JetStream keeps here.
//!
//! ```text
//!   CreateSubscription ──▶ durable consumer "ps_<hash of the name>"
//!                            filter = the topic's subject, AckWait = ack deadline,
//!                            description = the subscription as JSON
//!   Pull ──▶ fetch ──▶ ack id = the delivery's ack subject ($JS.ACK.…)
//!   Acknowledge ──▶ +ACK   ModifyAckDeadline(n) ──▶ -NAK {delay: n}   (0: -NAK)
//!   Seek ──▶ the consumer made again at the sequence found for the time
//! ```
//!
//! A lease on JetStream is one deadline per delivery: `-NAK` with a delay keeps the
//! message pending (an ack still applies) and delivers it again when the delay
//! ends, which is exactly a changed ack deadline. What this node remembers of the
//! deliveries it made is only for flow control (`outstanding`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tether_route::NatsSink;
use tether_route::durable::{self, DurableSpec, Settle, Start};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    AckReport, Backoff, Delivery, NewSubscription, PubSub, Settings, Subscription,
    SubscriptionInfo, ack_deadline, check_name,
};
use crate::error::{PubSubError, PubSubResult};
use crate::ledger::{Ledger, StreamId};
use crate::names::Kind;

/// How long past a pull's own expiry JetStream may take to answer it.
const FETCH_GRACE: Duration = Duration::from_secs(3);

/// What marks a consumer's description as a subscription's.
const MARK: &str = "tetherPubSubSubscription";

/// The consumer of subscription `name`: a name JetStream accepts, from a hash, since
/// subscription names hold `/` and `.`.
pub(super) fn consumer_name(name: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("ps_{hex}")
}

/// The subscription as the consumer's description keeps it.
fn describe(name: &str, topic: &str, settings: &Settings) -> PubSubResult<String> {
    let text = json!({
        MARK: 1,
        "name": name,
        "topic": topic,
        "pushEndpoint": settings.push_endpoint,
        "minBackoffMs": settings.backoff.min_ms,
        "maxBackoffMs": settings.backoff.max_ms,
    })
    .to_string();
    if text.len() > durable::MAX_DESCRIPTION {
        return Err(PubSubError::Invalid(format!(
            "push_config.push_endpoint is too long to keep with the subscription on JetStream \
             ({} bytes of {} in all): use a shorter URL",
            text.len(),
            durable::MAX_DESCRIPTION
        )));
    }
    Ok(text)
}

/// A subscription read back from a consumer; `None` for consumers that are not
/// subscriptions.
fn described(info: &durable::DurableInfo) -> Option<(String, String, Settings)> {
    let v: Value = serde_json::from_str(&info.description).ok()?;
    v.get(MARK)?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let number = |k: &str| v.get(k).and_then(Value::as_u64);
    let name = text("name")?;
    if consumer_name(&name) != info.name {
        return None;
    }
    let settings = Settings {
        ack_deadline_s: u32::try_from(info.ack_wait.as_secs()).unwrap_or(u32::MAX),
        push_endpoint: text("pushEndpoint").unwrap_or_default(),
        backoff: Backoff {
            min_ms: number("minBackoffMs").unwrap_or(Backoff::DEFAULT.min_ms),
            max_ms: number("maxBackoffMs").unwrap_or(Backoff::DEFAULT.max_ms),
        },
    };
    Some((name, text("topic")?, settings))
}

/// The consumer of subscription `name` on `topic` with `settings`, described.
struct Described {
    consumer: String,
    description: String,
    ack_wait: Duration,
}

impl Described {
    fn new(name: &str, topic: &str, settings: &Settings) -> PubSubResult<Self> {
        Ok(Self {
            consumer: consumer_name(name),
            description: describe(name, topic, settings)?,
            ack_wait: Duration::from_secs(u64::from(settings.ack_deadline_s)),
        })
    }

    fn spec<'a>(&'a self, topic: &'a str) -> DurableSpec<'a> {
        DurableSpec {
            name: &self.consumer,
            description: &self.description,
            topic,
            ack_wait: self.ack_wait,
        }
    }
}

fn unavailable(e: tether_route::ReadError) -> PubSubError {
    PubSubError::Unavailable(format!("JetStream: {e}"))
}

impl Subscription {
    fn on_jetstream(name: String, topic: String, settings: Settings, d: durable::Durable) -> Self {
        Subscription {
            name,
            topic,
            settings: RwLock::new(settings),
            ledger: Mutex::new(Ledger::new(0, [])),
            durable: Some(d),
            leases: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            room: Notify::new(),
        }
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<String, (StreamId, Instant)>> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Deliveries this node made on `stream` whose lease has not ended.
    pub(super) fn leased_on(&self, stream: StreamId) -> usize {
        let now = Instant::now();
        let mut leases = self.leases();
        leases.retain(|_, (_, until)| *until > now);
        leases.values().filter(|(s, _)| *s == stream).count()
    }

    /// Deliveries this node made whose lease has not ended.
    pub(super) fn leased_here(&self) -> usize {
        let now = Instant::now();
        let mut leases = self.leases();
        leases.retain(|_, (_, until)| *until > now);
        leases.len()
    }
}

impl PubSub {
    /// Keeps subscriptions as durable consumers of `nats`'s stream from now on.
    /// Subscriptions an earlier version kept in the catalog become consumers that
    /// start where their acks ended.
    ///
    /// # Errors
    /// When JetStream cannot be read or written.
    pub async fn use_jetstream(mut self, nats: NatsSink) -> PubSubResult<Self> {
        let old: Vec<Arc<Subscription>> = self
            .subs
            .read()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        for sub in old {
            let d = Described::new(&sub.name, &sub.topic, &sub.settings())?;
            let start = Start::At(sub.ledger().floor());
            nats.create_durable(d.spec(&sub.topic), start)
                .await
                .map_err(unavailable)?;
            let name = &d.consumer;
            self.catalog.delete_subscription(&sub.name).await?;
            tracing::info!(subscription = %sub.name, consumer = %name, "Pub/Sub: subscription moved to a JetStream consumer");
        }
        if let Ok(mut s) = self.subs.write() {
            s.clear();
        }
        self.jetstream = Some(nats);
        self.refresh().await?;
        Ok(self)
    }

    pub(super) fn nats(&self) -> Option<&NatsSink> {
        self.jetstream.as_ref()
    }

    /// Reads the subscriptions again from JetStream (other nodes create, change and
    /// delete them too). Nothing to do on the embedded default.
    ///
    /// # Errors
    /// When JetStream cannot be read.
    pub async fn refresh(&self) -> PubSubResult<()> {
        let Some(nats) = self.nats() else {
            return Ok(());
        };
        let mut found = BTreeMap::new();
        for info in nats.durables().await.map_err(unavailable)? {
            if let Some((name, topic, settings)) = described(&info) {
                found.insert(name, (info.name, topic, settings));
            }
        }
        let known = self.subs.read().map(|s| s.clone()).unwrap_or_default();
        let mut next = BTreeMap::new();
        let mut changed = false;
        for (name, (consumer, topic, settings)) in found {
            match known.get(&name) {
                Some(sub) if sub.topic == topic => {
                    if sub.settings() != settings {
                        sub.set_settings(settings);
                        changed = true;
                    }
                    next.insert(name, Arc::clone(sub));
                }
                _ => {
                    let Ok(handle) = nats.durable(&consumer).await else {
                        continue; // deleted since it was listed
                    };
                    let sub = Subscription::on_jetstream(name.clone(), topic, settings, handle);
                    next.insert(name, Arc::new(sub));
                    changed = true;
                }
            }
        }
        changed |= known.keys().any(|k| !next.contains_key(k));
        for (name, sub) in &known {
            if !next.contains_key(name) {
                sub.changed.notify_waiters();
            }
        }
        if let Ok(mut s) = self.subs.write() {
            *s = next;
        }
        if changed {
            self.push_notify.notify_waiters();
        }
        Ok(())
    }

    pub(super) async fn js_create(
        &self,
        nats: &NatsSink,
        new: NewSubscription,
    ) -> PubSubResult<SubscriptionInfo> {
        let settings = Settings {
            ack_deadline_s: ack_deadline(new.ack_deadline_s)?,
            push_endpoint: new.push_endpoint,
            backoff: new.backoff.unwrap_or(Backoff::DEFAULT),
        };
        let d = Described::new(&new.name, &new.topic, &settings)?;
        let created = nats
            .create_durable(d.spec(&new.topic), Start::New)
            .await
            .map_err(unavailable)?;
        if !created {
            return Err(PubSubError::AlreadyExists(format!(
                "subscription {:?} already exists",
                new.name
            )));
        }
        let handle = nats.durable(&d.consumer).await.map_err(unavailable)?;
        let sub = Subscription::on_jetstream(new.name.clone(), new.topic, settings, handle);
        let info = sub.info();
        if let Ok(mut s) = self.subs.write() {
            s.insert(new.name, Arc::new(sub));
        }
        self.push_notify.notify_waiters();
        Ok(info)
    }

    pub(super) async fn js_update(
        &self,
        nats: &NatsSink,
        sub: &Subscription,
        settings: &Settings,
    ) -> PubSubResult<()> {
        let d = Described::new(&sub.name, &sub.topic, settings)?;
        nats.update_durable(d.spec(&sub.topic))
            .await
            .map_err(unavailable)
    }

    pub(super) async fn js_delete(&self, nats: &NatsSink, name: &str) -> PubSubResult<()> {
        nats.delete_durable(&consumer_name(name))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// A subscription another node created, looked up when this node does not know
    /// it yet.
    pub(super) async fn js_find(&self, name: &str) -> PubSubResult<Option<Arc<Subscription>>> {
        check_name("subscription", name, Kind::Subscription)?;
        self.refresh().await?;
        Ok(self.subs.read().ok().and_then(|s| s.get(name).cloned()))
    }

    pub(super) async fn js_pull(
        &self,
        sub: &Arc<Subscription>,
        d: &durable::Durable,
        max: usize,
        stream: StreamId,
        deadline_s: u32,
        until: Option<Instant>,
    ) -> PubSubResult<Vec<Delivery>> {
        let wait = until
            .map(|u| u.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        // JetStream answers a pull by its expiry; a consumer deleted by another node
        // answers nothing at all, so silence past that is checked for deletion.
        let fetched = match tokio::time::timeout(wait + FETCH_GRACE, d.fetch(max, wait)).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return Err(self.js_gone(sub, e).await),
            Err(_) => {
                let silent = tether_route::ReadError::Nats {
                    action: format!("fetch from consumer {}", d.name()),
                    source: "no answer from JetStream".into(),
                };
                return Err(self.js_gone(sub, silent).await);
            }
        };
        let lease = Duration::from_secs(u64::from(deadline_s));
        let until = Instant::now() + lease;
        let mut out = Vec::with_capacity(fetched.len());
        {
            let mut leases = sub.leases();
            for f in fetched {
                leases.insert(f.ack.clone(), (stream, until));
                out.push(Delivery {
                    ack_id: f.ack,
                    record: f.record,
                    attempt: u32::try_from(f.delivered).unwrap_or(u32::MAX),
                });
            }
        }
        let first = out.iter().filter(|d| d.attempt <= 1).count() as u64;
        metrics::counter!("tether_pubsub_deliveries_total", "delivery" => "first").increment(first);
        metrics::counter!("tether_pubsub_deliveries_total", "delivery" => "again")
            .increment(out.len() as u64 - first);
        // The consumer's AckWait is the subscription's deadline; a stream that asked
        // for another one gets it per delivery.
        if !out.is_empty() && deadline_s != sub.ack_deadline_s() {
            let ids: Vec<&str> = out.iter().map(|d| d.ack_id.as_str()).collect();
            self.js_settle(sub, d, &ids, Settle::Redeliver(lease))
                .await?;
        }
        Ok(out)
    }

    /// A fetch that failed because the subscription was deleted (here or on another
    /// node) is NOT_FOUND; anything else is JetStream being unavailable.
    async fn js_gone(&self, sub: &Subscription, e: tether_route::ReadError) -> PubSubError {
        let consumer = consumer_name(&sub.name);
        let gone = match self.nats() {
            Some(nats) => matches!(nats.durable_info(&consumer).await, Ok(None)),
            None => false,
        };
        if gone {
            if let Ok(mut s) = self.subs.write() {
                s.remove(&sub.name);
            }
            sub.changed.notify_waiters();
            return PubSubError::NotFound(format!("subscription {:?} was deleted", sub.name));
        }
        unavailable(e)
    }

    /// Settles deliveries by ack id; returns the ids that are not this
    /// subscription's (forged, or another subscription's).
    pub(super) async fn js_settle(
        &self,
        sub: &Subscription,
        d: &durable::Durable,
        ids: &[&str],
        how: Settle,
    ) -> PubSubResult<AckReport> {
        let request: Vec<(&str, Settle)> = ids.iter().map(|id| (*id, how)).collect();
        let refused = nats_of(self)?
            .settle(d, &request)
            .await
            .map_err(unavailable)?;
        let mut report = AckReport::default();
        for i in &refused {
            if let Some(id) = ids.get(*i) {
                report.forged.push((*id).to_owned());
            }
        }
        let applied = ids.len() - refused.len();
        {
            let mut leases = sub.leases();
            for id in ids {
                match how {
                    Settle::Ack => {
                        leases.remove(*id);
                    }
                    Settle::Redeliver(after) if after.is_zero() => {
                        leases.remove(*id);
                    }
                    Settle::Redeliver(after) => {
                        if let Some(lease) = leases.get_mut(*id) {
                            lease.1 = Instant::now() + after;
                        }
                    }
                }
            }
        }
        if applied > 0 {
            if how == Settle::Ack {
                metrics::counter!("tether_pubsub_acks_total").increment(applied as u64);
            }
            sub.room.notify_waiters();
        }
        Ok(report)
    }

    /// Starts the subscription's consumer again at `target`: every lease and ack
    /// before it is dropped.
    pub(super) async fn js_seek(
        &self,
        nats: &NatsSink,
        sub: &Subscription,
        target: u64,
    ) -> PubSubResult<()> {
        let d = Described::new(&sub.name, &sub.topic, &sub.settings())?;
        nats.restart_durable(d.spec(&sub.topic), Start::At(target))
            .await
            .map_err(unavailable)?;
        sub.leases().clear();
        Ok(())
    }
}

fn nats_of(p: &PubSub) -> PubSubResult<&NatsSink> {
    p.nats().ok_or_else(|| {
        PubSubError::Unavailable("the subscription is on JetStream, but NATS is not in use".into())
    })
}
