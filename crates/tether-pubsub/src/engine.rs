//! The Pub/Sub layer's state and operations, free of gRPC: topics (created ones,
//! the ones registries route to, the ones holding telemetry), subscriptions and
//! their ledgers, publish, pull, ack. The gRPC services in `grpc/` only convert.
//!
//! ```text
//!   Publish ──▶ Sink::append ──▶ telemetry (embedded log | JetStream) ◀── devices
//!                                   │ read(topic, offset) / wait
//!   Pull, StreamingPull ──▶ Subscription { ledger } ──▶ ReceivedMessage + ack id
//!   Acknowledge ──▶ ledger.ack ──▶ catalog (committed before the answer)
//! ```

mod jetstream;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tether_log::{Message, Record};
use tether_route::durable::{Durable, Settle};
use tether_route::{NatsSink, ReadLimits, Sink, TelemetryReader};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::ack_id::{AckIds, Forged};
use crate::ack_log::AckLog;
use crate::catalog::{Catalog, SubscriptionRow};
use crate::error::{PubSubError, PubSubResult};
use crate::ledger::{AckOutcome, Ledger, Refusal, StreamId};
use crate::names::{self, Kind};

/// Pub/Sub's bounds on the ack deadline, in seconds.
pub const ACK_DEADLINE_S: std::ops::RangeInclusive<u32> = 10..=600;
/// The ack deadline when none is given.
pub const DEFAULT_ACK_DEADLINE_S: u32 = 10;
/// Most messages one pull returns (Pub/Sub's limit too).
pub const MAX_PULL: usize = 1000;
/// Pub/Sub's publish limits.
pub const MAX_PUBLISH_MESSAGES: usize = 1000;
/// Bytes of one publish request, data and attributes together.
pub const MAX_PUBLISH_BYTES: usize = 10 * 1000 * 1000;
/// Attributes per message.
pub const MAX_ATTRIBUTES: usize = 100;

/// Whether an ack call waits for its acks to be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Answer once committed (`Acknowledge`): an answered ack survives a crash.
    Wait,
    /// Queue and go on (acks on a streaming pull, which get no answer).
    Queue,
}

/// How long the registries' topics, once read, answer "this topic exists" without
/// reading them again. A topic removed from a registry can still be found for this
/// long; one added is found at once (a miss reads again).
pub const REGISTRY_TOPICS_FRESH: Duration = Duration::from_secs(5);

/// Topics that exist because a registry routes telemetry or state to them.
#[async_trait]
pub trait RegistryTopics: Send + Sync + std::fmt::Debug {
    /// Every `pubsubTopicName` in every registry's notification configs.
    async fn topics(&self) -> Vec<String>;
}

/// The wall clock, for `publishTime` (the server passes its own; this crate never
/// reads the clock). Lease deadlines use tokio's monotonic clock.
pub trait WallClock: Send + Sync + std::fmt::Debug {
    /// Microseconds since the Unix epoch.
    fn unix_micros(&self) -> i64;
}

/// No registries (tests, or a server without a store).
#[derive(Debug, Default)]
pub struct NoRegistries;

#[async_trait]
impl RegistryTopics for NoRegistries {
    async fn topics(&self) -> Vec<String> {
        Vec::new()
    }
}

/// One message handed to a subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// What the subscriber acks with.
    pub ack_id: String,
    /// The message and its offset (the `messageId`).
    pub record: Record,
    /// 1 for the first delivery.
    pub attempt: u32,
}

/// How long a push waits before retrying a message its endpoint refused: Pub/Sub's
/// `RetryPolicy`, `min_ms` doubling per attempt up to `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub min_ms: u64,
    /// The longest wait.
    pub max_ms: u64,
}

impl Backoff {
    /// Pub/Sub's default: 10 s, doubling up to 600 s.
    pub const DEFAULT: Backoff = Backoff {
        min_ms: 10_000,
        max_ms: 600_000,
    };

    /// A policy from Pub/Sub's `minimum_backoff` and `maximum_backoff` (each 0 to
    /// 600 s, the minimum not above the maximum).
    pub fn new(min_ms: u64, max_ms: u64) -> PubSubResult<Self> {
        if max_ms > 600_000 || min_ms > max_ms {
            return Err(PubSubError::Invalid(format!(
                "retry_policy: minimum_backoff {min_ms} ms and maximum_backoff {max_ms} ms \
                 must be within 0 to 600 s, the minimum not above the maximum"
            )));
        }
        Ok(Self { min_ms, max_ms })
    }

    /// The wait after delivery `attempt` (1 for the first) failed.
    pub fn after(&self, attempt: u32) -> u64 {
        let doublings = attempt.saturating_sub(1).min(32);
        self.min_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms)
    }
}

/// A subscription's settings that an update can change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Seconds, 10 to 600.
    pub ack_deadline_s: u32,
    /// Empty for pull.
    pub push_endpoint: String,
    /// Push retries.
    pub backoff: Backoff,
}

/// A subscription as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// `projects/{p}/subscriptions/{s}`.
    pub name: String,
    /// Its topic.
    pub topic: String,
    /// Its settings.
    pub settings: Settings,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// `projects/{p}/subscriptions/{s}`.
    pub name: String,
    /// `projects/{p}/topics/{t}`.
    pub topic: String,
    /// 0 for the default, else 10 to 600.
    pub ack_deadline_s: i32,
    /// Empty for pull.
    pub push_endpoint: String,
    /// `None` for the default.
    pub backoff: Option<Backoff>,
}

/// What an update changes (`None`: keep).
#[derive(Debug, Clone, Default)]
pub struct SubscriptionUpdate {
    /// 0 for the default, else 10 to 600.
    pub ack_deadline_s: Option<i32>,
    /// Empty turns push off.
    pub push_endpoint: Option<String>,
    /// `Some(None)` restores the default.
    pub backoff: Option<Option<Backoff>>,
}

/// The outcome of an ack or deadline change: ack ids that did not apply, and why.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AckReport {
    /// Ack ids whose lease ended (the message is delivered again).
    pub expired: Vec<String>,
    /// Ack ids this server did not issue (since it started) for this subscription.
    pub forged: Vec<String>,
}

impl AckReport {
    /// `Ok` when every ack id applied, else a precise `INVALID_ARGUMENT`.
    pub fn into_result(self, what: &str) -> PubSubResult<()> {
        if self.expired.is_empty() && self.forged.is_empty() {
            return Ok(());
        }
        let show = |ids: &[String]| {
            let mut s: Vec<String> = ids.iter().take(3).map(|i| format!("{i:?}")).collect();
            if ids.len() > 3 {
                s.push(format!("and {} more", ids.len() - 3));
            }
            s.join(", ")
        };
        let mut parts = Vec::new();
        if !self.expired.is_empty() {
            parts.push(format!(
                "{} ack id(s) expired ({}): the ack deadline passed or the message was nacked, \
                 and it is delivered again; {what} the new delivery's ack id",
                self.expired.len(),
                show(&self.expired)
            ));
        }
        if !self.forged.is_empty() {
            parts.push(format!(
                "{} ack id(s) were not issued by this server for this subscription since it \
                 started ({}): use the ack id of a message received from this subscription; \
                 a message not acked before a restart is delivered again",
                self.forged.len(),
                show(&self.forged)
            ));
        }
        Err(PubSubError::Invalid(format!(
            "{}; the other ack ids of the request applied",
            parts.join("; ")
        )))
    }
}

/// One subscription at run time.
#[derive(Debug)]
pub struct Subscription {
    name: String,
    topic: String,
    settings: RwLock<Settings>,
    ledger: Mutex<Ledger>,
    /// With `--nats`: the durable consumer that holds the leases and acks instead
    /// of the ledger.
    durable: Option<Durable>,
    /// With `--nats`: the deliveries this node made, by ack id, with their stream
    /// and lease end (for flow control only; JetStream holds the leases).
    leases: Mutex<HashMap<String, (StreamId, Instant)>>,
    /// Woken when messages become due again (nack, expiry, seek) or settings change.
    changed: Notify,
    /// Woken when acks free room under a stream's flow control. Kept apart from
    /// `changed`: an ack must not wake every puller into a read of the log.
    room: Notify,
}

impl Subscription {
    /// The subscription's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic it reads.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The ack deadline, seconds.
    pub fn ack_deadline_s(&self) -> u32 {
        self.settings().ack_deadline_s
    }

    fn set_settings(&self, settings: Settings) {
        match self.settings.write() {
            Ok(mut s) => *s = settings,
            Err(poisoned) => *poisoned.into_inner() = settings,
        }
    }

    fn info(&self) -> SubscriptionInfo {
        SubscriptionInfo {
            name: self.name.clone(),
            topic: self.topic.clone(),
            settings: self.settings(),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // A panic while holding the lock cannot leave the ledger half-changed in a
        // way that matters more than stopping delivery would.
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Messages out on a lease held by `stream`.
    pub fn outstanding(&self, stream: StreamId) -> usize {
        if self.durable.is_some() {
            return self.leased_on(stream);
        }
        self.ledger().outstanding(stream)
    }

    /// A future that completes when messages become due again (nack, expiry, seek)
    /// or the subscription changes.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// A future that completes on the next ack or expiry (room under flow control).
    pub fn room_freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.room.notified()
    }
}

/// The Pub/Sub layer.
#[derive(Debug)]
pub struct PubSub {
    catalog: Catalog,
    acks: AckLog,
    reader: Arc<dyn TelemetryReader>,
    sink: Arc<dyn Sink>,
    registries: Arc<dyn RegistryTopics>,
    /// The registries' topics as last read, and when: a publish to a registry topic
    /// (the common case) need not read every registry's configs each time.
    registry_topics: RwLock<Option<(Instant, BTreeSet<String>)>>,
    ack_ids: AckIds,
    created: RwLock<BTreeSet<String>>,
    subs: RwLock<BTreeMap<String, Arc<Subscription>>>,
    epoch: Instant,
    next_stream: AtomicU64,
    /// Woken when a subscription is created, changed or deleted (push workers).
    push_notify: Notify,
    clock: Arc<dyn WallClock>,
    /// With `--nats`: subscriptions are durable consumers of this sink's stream.
    jetstream: Option<NatsSink>,
}

fn check_name(what: &str, name: &str, kind: Kind) -> PubSubResult<()> {
    names::parse(name, kind)
        .map(|_| ())
        .map_err(|why| PubSubError::Invalid(format!("{what} {name:?} {why}")))
}

impl PubSub {
    /// Opens the catalog and loads every subscription's ack state.
    ///
    /// # Errors
    /// When the catalog cannot be opened or read, or there is no random source.
    pub async fn open(
        catalog: Catalog,
        reader: Arc<dyn TelemetryReader>,
        sink: Arc<dyn Sink>,
        registries: Arc<dyn RegistryTopics>,
        clock: Arc<dyn WallClock>,
    ) -> PubSubResult<Self> {
        let created = catalog.topics().await?.into_iter().collect();
        let mut subs = BTreeMap::new();
        for (row, acked) in catalog.subscriptions().await? {
            subs.insert(row.name.clone(), Arc::new(Self::runtime(&row, acked)));
        }
        let ack_ids = AckIds::new().map_err(|e| PubSubError::Unavailable(e.to_string()))?;
        Ok(Self {
            acks: AckLog::start(catalog.clone()),
            catalog,
            reader,
            sink,
            registries,
            registry_topics: RwLock::new(None),
            ack_ids,
            created: RwLock::new(created),
            subs: RwLock::new(subs),
            epoch: Instant::now(),
            next_stream: AtomicU64::new(1),
            push_notify: Notify::new(),
            clock,
            jetstream: None,
        })
    }

    fn runtime(row: &SubscriptionRow, acked: Vec<u64>) -> Subscription {
        Subscription {
            name: row.name.clone(),
            topic: row.topic.clone(),
            settings: RwLock::new(Settings {
                ack_deadline_s: row.ack_deadline_s,
                push_endpoint: row.push_endpoint.clone(),
                backoff: Backoff {
                    min_ms: row.min_backoff_ms,
                    max_ms: row.max_backoff_ms,
                },
            }),
            ledger: Mutex::new(Ledger::new(row.floor, acked)),
            durable: None,
            leases: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            room: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Now, in microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        self.clock.unix_micros()
    }

    /// A fresh id for a stream's (or pull's) leases.
    pub fn stream_id(&self) -> StreamId {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
    }

    // ---- topics ----

    /// Every topic: created, routed to by a registry, or holding telemetry.
    pub async fn topics(&self) -> PubSubResult<BTreeSet<String>> {
        let mut all: BTreeSet<String> = self.created.read().map(|c| c.clone()).unwrap_or_default();
        all.extend(self.registries.topics().await);
        all.extend(self.reader.topics().await?.into_iter().map(|t| t.topic));
        Ok(all)
    }

    /// Whether `topic` exists (see [`topics`](Self::topics)).
    pub async fn topic_exists(&self, topic: &str) -> PubSubResult<bool> {
        if self.created.read().is_ok_and(|c| c.contains(topic)) {
            return Ok(true);
        }
        if self.is_registry_topic(topic).await {
            return Ok(true);
        }
        Ok(self.reader.offsets(topic).await?.is_some())
    }

    /// Whether a registry names `topic`: from the registries' topics as read within
    /// [`REGISTRY_TOPICS_FRESH`], else (and on a miss, so that a topic added to a
    /// registry a moment ago is found at once) read again.
    async fn is_registry_topic(&self, topic: &str) -> bool {
        let cached = self.registry_topics.read().ok().and_then(|c| {
            c.as_ref()
                .filter(|(at, _)| at.elapsed() < REGISTRY_TOPICS_FRESH)
                .map(|(_, topics)| topics.contains(topic))
        });
        if cached == Some(true) {
            return true;
        }
        let topics: BTreeSet<String> = self.registries.topics().await.into_iter().collect();
        let found = topics.contains(topic);
        if let Ok(mut c) = self.registry_topics.write() {
            *c = Some((Instant::now(), topics));
        }
        found
    }

    async fn require_topic(&self, topic: &str) -> PubSubResult<()> {
        check_name("topic", topic, Kind::Topic)?;
        if self.topic_exists(topic).await? {
            Ok(())
        } else {
            Err(PubSubError::NotFound(format!(
                "topic {topic:?} does not exist: create it, or name it in a registry's \
                 eventNotificationConfigs or stateNotificationConfig"
            )))
        }
    }

    /// Creates a topic.
    pub async fn create_topic(&self, topic: &str) -> PubSubResult<()> {
        check_name("topic", topic, Kind::Topic)?;
        if self.topic_exists(topic).await?
            || !self
                .catalog
                .create_topic(topic, self.clock.unix_micros())
                .await?
        {
            return Err(PubSubError::AlreadyExists(format!(
                "topic {topic:?} already exists"
            )));
        }
        if let Ok(mut c) = self.created.write() {
            c.insert(topic.to_owned());
        }
        Ok(())
    }

    /// Gets a topic (only its name: Tether keeps no topic settings).
    pub async fn get_topic(&self, topic: &str) -> PubSubResult<()> {
        self.require_topic(topic).await
    }

    /// Deletes a created topic. Its subscriptions stay, as on Pub/Sub, and its
    /// stored telemetry stays until retention removes it.
    pub async fn delete_topic(&self, topic: &str) -> PubSubResult<()> {
        check_name("topic", topic, Kind::Topic)?;
        if self.registries.topics().await.iter().any(|t| t == topic) {
            return Err(PubSubError::Precondition(format!(
                "topic {topic:?} is named in a registry's notification configs: remove it \
                 there first (PATCH the registry), then delete it"
            )));
        }
        if self.catalog.delete_topic(topic).await? {
            if let Ok(mut c) = self.created.write() {
                c.remove(topic);
            }
            return Ok(());
        }
        Err(PubSubError::NotFound(format!(
            "topic {topic:?} was not created with CreateTopic, so there is nothing to delete"
        )))
    }

    /// The topics of `project` (`projects/{p}`), sorted.
    pub async fn list_topics(&self, project: &str) -> PubSubResult<Vec<String>> {
        let id = names::parse_project(project)
            .map_err(|why| PubSubError::Invalid(format!("project {project:?} {why}")))?;
        let prefix = format!("projects/{id}/topics/");
        Ok(self
            .topics()
            .await?
            .into_iter()
            .filter(|t| t.starts_with(&prefix))
            .collect())
    }

    /// The subscriptions of `topic`.
    pub async fn topic_subscriptions(&self, topic: &str) -> PubSubResult<Vec<String>> {
        self.require_topic(topic).await?;
        self.refresh().await?;
        Ok(self
            .subs
            .read()
            .map(|s| {
                s.values()
                    .filter(|s| s.topic == topic)
                    .map(|s| s.name.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Publishes messages to `topic`; returns their message ids.
    pub async fn publish(
        &self,
        topic: &str,
        messages: Vec<(Vec<u8>, BTreeMap<String, String>)>,
    ) -> PubSubResult<Vec<String>> {
        self.require_topic(topic).await?;
        if messages.is_empty() {
            return Err(PubSubError::Invalid(
                "messages is empty: a publish carries 1 to 1000 messages".into(),
            ));
        }
        if messages.len() > MAX_PUBLISH_MESSAGES {
            return Err(PubSubError::Invalid(format!(
                "messages has {} entries: a publish carries at most {MAX_PUBLISH_MESSAGES}",
                messages.len()
            )));
        }
        let mut bytes = 0usize;
        for (i, (data, attributes)) in messages.iter().enumerate() {
            if data.is_empty() && attributes.is_empty() {
                return Err(PubSubError::Invalid(format!(
                    "messages[{i}] has neither data nor attributes: a message needs one"
                )));
            }
            if attributes.len() > MAX_ATTRIBUTES {
                return Err(PubSubError::Invalid(format!(
                    "messages[{i}].attributes has {} entries; at most {MAX_ATTRIBUTES}",
                    attributes.len()
                )));
            }
            for (k, v) in attributes {
                if k.is_empty() || k.len() > 256 || v.len() > 1024 {
                    return Err(PubSubError::Invalid(format!(
                        "messages[{i}].attributes[{k:?}]: keys are 1 to 256 bytes and values \
                         at most 1024 bytes"
                    )));
                }
                bytes += k.len() + v.len();
            }
            bytes += data.len();
        }
        if bytes > MAX_PUBLISH_BYTES {
            return Err(PubSubError::Invalid(format!(
                "the messages hold {bytes} bytes; a publish carries at most {MAX_PUBLISH_BYTES}"
            )));
        }
        let now = self.clock.unix_micros();
        let n = messages.len();
        let batch = messages
            .into_iter()
            .map(|(data, attributes)| Message {
                topic: topic.to_owned(),
                data,
                attributes: attributes.into(),
                publish_time: now,
            })
            .collect();
        let offsets = self
            .sink
            .append(batch)
            .await
            .map_err(|e| PubSubError::Unavailable(format!("storing the messages: {e}")))?;
        if offsets.len() != n {
            return Err(PubSubError::Unavailable(
                "the telemetry sink stored the messages but did not say where".into(),
            ));
        }
        Ok(offsets.iter().map(u64::to_string).collect())
    }

    // ---- subscriptions ----

    /// The subscription called `name`.
    pub async fn subscription(&self, name: &str) -> PubSubResult<Arc<Subscription>> {
        check_name("subscription", name, Kind::Subscription)?;
        let known = self.subs.read().ok().and_then(|s| s.get(name).cloned());
        let found = match known {
            Some(sub) => Some(sub),
            None if self.jetstream.is_some() => self.js_find(name).await?,
            None => None,
        };
        found.ok_or_else(|| {
            PubSubError::NotFound(format!(
                "subscription {name:?} does not exist: create it with CreateSubscription \
                     (or `tether pubsub subscriptions create`)"
            ))
        })
    }

    /// Creates a subscription that receives what is published from now on.
    pub async fn create_subscription(
        &self,
        new: NewSubscription,
    ) -> PubSubResult<SubscriptionInfo> {
        check_name("subscription", &new.name, Kind::Subscription)?;
        self.require_topic(&new.topic).await?;
        let ack_deadline_s = ack_deadline(new.ack_deadline_s)?;
        check_push_endpoint(&new.push_endpoint)?;
        if let Some(nats) = &self.jetstream {
            return self.js_create(nats, new).await;
        }
        if self.subs.read().is_ok_and(|s| s.contains_key(&new.name)) {
            return Err(PubSubError::AlreadyExists(format!(
                "subscription {:?} already exists",
                new.name
            )));
        }
        let floor = self
            .reader
            .offsets(&new.topic)
            .await?
            .map(|o| o.next)
            .unwrap_or(0);
        let backoff = new.backoff.unwrap_or(Backoff::DEFAULT);
        let row = SubscriptionRow {
            name: new.name.clone(),
            topic: new.topic.clone(),
            ack_deadline_s,
            push_endpoint: new.push_endpoint,
            min_backoff_ms: backoff.min_ms,
            max_backoff_ms: backoff.max_ms,
            floor,
            created_us: self.clock.unix_micros(),
        };
        if !self.catalog.create_subscription(&row).await? {
            return Err(PubSubError::AlreadyExists(format!(
                "subscription {:?} already exists",
                new.name
            )));
        }
        let sub = Arc::new(Self::runtime(&row, Vec::new()));
        let info = sub.info();
        if let Ok(mut s) = self.subs.write() {
            s.insert(row.name, sub);
        }
        self.push_notify.notify_waiters();
        Ok(info)
    }

    /// A subscription's settings.
    pub async fn get_subscription(&self, name: &str) -> PubSubResult<SubscriptionInfo> {
        if self.jetstream.is_some() {
            // Another node may have changed or deleted it.
            self.refresh().await?;
        }
        Ok(self.subscription(name).await?.info())
    }

    /// Every subscription of `project` (`projects/{p}`), sorted.
    pub async fn list_subscriptions(&self, project: &str) -> PubSubResult<Vec<SubscriptionInfo>> {
        let id = names::parse_project(project)
            .map_err(|why| PubSubError::Invalid(format!("project {project:?} {why}")))?;
        self.refresh().await?;
        let prefix = format!("projects/{id}/subscriptions/");
        Ok(self
            .subs
            .read()
            .map(|s| {
                s.values()
                    .filter(|s| s.name.starts_with(&prefix))
                    .map(|s| s.info())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Changes the ack deadline, the push endpoint or the push backoff.
    pub async fn update_subscription(
        &self,
        name: &str,
        update: SubscriptionUpdate,
    ) -> PubSubResult<SubscriptionInfo> {
        let sub = self.subscription(name).await?;
        let mut settings = sub.settings();
        if let Some(d) = update.ack_deadline_s {
            settings.ack_deadline_s = ack_deadline(d)?;
        }
        if let Some(e) = update.push_endpoint {
            check_push_endpoint(&e)?;
            settings.push_endpoint = e;
        }
        if let Some(b) = update.backoff {
            settings.backoff = b.unwrap_or(Backoff::DEFAULT);
        }
        if let Some(nats) = &self.jetstream {
            self.js_update(nats, &sub, &settings).await?;
        } else {
            self.catalog
                .update_subscription(&SubscriptionRow {
                    name: name.to_owned(),
                    topic: sub.topic.clone(),
                    ack_deadline_s: settings.ack_deadline_s,
                    push_endpoint: settings.push_endpoint.clone(),
                    min_backoff_ms: settings.backoff.min_ms,
                    max_backoff_ms: settings.backoff.max_ms,
                    floor: 0,
                    created_us: 0,
                })
                .await?;
        }
        sub.set_settings(settings);
        sub.changed.notify_waiters();
        self.push_notify.notify_waiters();
        Ok(sub.info())
    }

    /// Deletes a subscription and its ack state.
    pub async fn delete_subscription(&self, name: &str) -> PubSubResult<()> {
        let sub = self.subscription(name).await?;
        match &self.jetstream {
            Some(nats) => self.js_delete(nats, name).await?,
            None => {
                self.catalog.delete_subscription(name).await?;
            }
        }
        if let Ok(mut s) = self.subs.write() {
            s.remove(name);
        }
        sub.changed.notify_waiters();
        self.push_notify.notify_waiters();
        Ok(())
    }

    /// The push subscriptions.
    pub fn push_subscriptions(&self) -> Vec<Arc<Subscription>> {
        self.subs
            .read()
            .map(|s| {
                s.values()
                    .filter(|s| !s.settings().push_endpoint.is_empty())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Completes when a subscription is created, changed or deleted.
    pub fn push_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.push_notify.notified()
    }

    /// Whether the subscription still exists (a stream ends when it is deleted).
    pub fn is_live(&self, sub: &Arc<Subscription>) -> bool {
        self.subs
            .read()
            .is_ok_and(|s| s.get(&sub.name).is_some_and(|s| Arc::ptr_eq(s, sub)))
    }

    // ---- delivery ----

    /// Delivers up to `max` messages on `stream`, leased for `deadline_s`. Waits
    /// until `until` for one when there is none (returns empty after it).
    pub async fn pull(
        &self,
        sub: &Arc<Subscription>,
        max: usize,
        stream: StreamId,
        deadline_s: u32,
        until: Option<Instant>,
    ) -> PubSubResult<Vec<Delivery>> {
        let max = max.clamp(1, MAX_PULL);
        if let Some(d) = &sub.durable {
            return self.js_pull(sub, d, max, stream, deadline_s, until).await;
        }
        loop {
            let changed = sub.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let out = self.deliver_once(sub, max, stream, deadline_s).await?;
            if !out.is_empty() {
                return Ok(out);
            }
            let now = Instant::now();
            let Some(until) = until.filter(|u| *u > now) else {
                return Ok(out);
            };
            // Wake for a new message, a nack, or the next lease expiry.
            let (next, expiry) = {
                let l = sub.ledger();
                (l.next(), l.next_deadline())
            };
            let mut wait = until - now;
            if let Some(at) = expiry {
                let in_ms = at.saturating_sub(self.now_ms());
                wait = wait.min(Duration::from_millis(in_ms));
            }
            tokio::select! {
                _ = changed => {}
                r = self.reader.wait(&sub.topic, next, wait) => { r?; }
            }
            if !self.is_live(sub) {
                return Ok(Vec::new());
            }
        }
    }

    async fn deliver_once(
        &self,
        sub: &Arc<Subscription>,
        max: usize,
        stream: StreamId,
        deadline_s: u32,
    ) -> PubSubResult<Vec<Delivery>> {
        let now = self.now_ms();
        let lease_until = now.saturating_add(u64::from(deadline_s) * 1000);
        let (again, from) = {
            let mut l = sub.ledger();
            let expired = l.expire(now);
            if expired > 0 {
                metrics::counter!("tether_pubsub_lease_expiries_total").increment(expired as u64);
                sub.changed.notify_waiters();
                sub.room.notify_waiters();
            }
            (l.take_due(max, lease_until, stream), l.next())
        };
        let mut out = Vec::with_capacity(again.len());
        let mut gone = Vec::new();
        for (offset, attempt) in again {
            let found = self
                .reader
                .read(&sub.topic, offset, ReadLimits::new(1))
                .await?
                .into_iter()
                .next()
                .filter(|r| r.offset == offset);
            match found {
                Some(record) => out.push(self.delivery(sub, record, attempt)),
                None => gone.push(offset),
            }
        }
        let again = out.len();
        if again > 0 {
            metrics::counter!("tether_pubsub_deliveries_total", "delivery" => "again")
                .increment(again as u64);
        }
        let room = max - out.len();
        if room > 0 {
            let records = self
                .reader
                .read(&sub.topic, from, ReadLimits::new(room))
                .await?;
            let mut l = sub.ledger();
            if let Some(first) = records.first()
                && first.offset > from
            {
                // Retention removed what was not yet read.
                l.forget_below(first.offset);
            }
            let before = out.len();
            for record in records {
                if let Some(attempt) = l.claim_new(record.offset, lease_until, stream) {
                    out.push(self.delivery(sub, record, attempt));
                }
            }
            metrics::counter!("tether_pubsub_deliveries_total", "delivery" => "first")
                .increment((out.len() - before) as u64);
        }
        if !gone.is_empty() {
            // Removed by retention while due: nothing left to deliver or ack.
            let floor = {
                let mut l = sub.ledger();
                let mut floor = None;
                for offset in &gone {
                    floor = l.forget(*offset).or(floor);
                }
                floor
            };
            self.acks.acks(&sub.name, &gone, floor).await?;
        }
        Ok(out)
    }

    fn delivery(&self, sub: &Subscription, record: Record, attempt: u32) -> Delivery {
        Delivery {
            ack_id: self.ack_ids.make(&sub.name, record.offset, attempt),
            record,
            attempt,
        }
    }

    /// Acks deliveries. With [`Commit::Wait`] the acks that apply are committed
    /// when this returns; the report lists the ones that did not apply.
    pub async fn acknowledge(
        &self,
        sub: &Arc<Subscription>,
        ack_ids: &[String],
        commit: Commit,
    ) -> PubSubResult<AckReport> {
        if let Some(d) = &sub.durable {
            let ids: Vec<&str> = ack_ids.iter().map(String::as_str).collect();
            let report = self.js_settle(sub, d, &ids, Settle::Ack).await?;
            count_refusals(&report);
            return Ok(report);
        }
        let mut report = AckReport::default();
        let mut outcome = AckOutcome::default();
        {
            let mut l = sub.ledger();
            for id in ack_ids {
                match self.ack_ids.check(&sub.name, id) {
                    Ok((offset, attempt)) => match l.ack(offset, attempt, &mut outcome) {
                        Ok(()) => {}
                        Err(Refusal::Expired) => report.expired.push(id.clone()),
                        Err(Refusal::Unknown) => report.forged.push(id.clone()),
                    },
                    Err(Forged::Malformed | Forged::BadTag) => report.forged.push(id.clone()),
                }
            }
        }
        count_refusals(&report);
        if !outcome.acked.is_empty() {
            match commit {
                Commit::Wait => {
                    self.acks
                        .acks(&sub.name, &outcome.acked, outcome.new_floor)
                        .await?;
                }
                Commit::Queue => {
                    self.acks
                        .acks_queued(&sub.name, &outcome.acked, outcome.new_floor);
                }
            }
            metrics::counter!("tether_pubsub_acks_total").increment(outcome.acked.len() as u64);
            sub.room.notify_waiters();
        }
        Ok(report)
    }

    /// Sets the ack deadline of deliveries to `seconds` from now; 0 nacks them.
    pub async fn modify_ack_deadline(
        &self,
        sub: &Arc<Subscription>,
        ack_ids: &[String],
        seconds: i32,
    ) -> PubSubResult<AckReport> {
        if !(0..=600).contains(&seconds) {
            return Err(PubSubError::Invalid(format!(
                "ack_deadline_seconds {seconds} is out of range: use 0 (nack: deliver again \
                 now) to 600"
            )));
        }
        let seconds = u64::try_from(seconds).unwrap_or(0);
        if let Some(d) = &sub.durable {
            let ids: Vec<&str> = ack_ids.iter().map(String::as_str).collect();
            let how = Settle::Redeliver(Duration::from_secs(seconds));
            let report = self.js_settle(sub, d, &ids, how).await?;
            count_refusals(&report);
            return Ok(report);
        }
        let deadline = (seconds > 0).then(|| self.now_ms().saturating_add(seconds * 1000));
        let mut report = AckReport::default();
        let mut nacked = false;
        {
            let mut l = sub.ledger();
            for id in ack_ids {
                match self.ack_ids.check(&sub.name, id) {
                    Ok((offset, attempt)) => match l.modify(offset, attempt, deadline) {
                        Ok(()) => nacked |= deadline.is_none(),
                        Err(Refusal::Expired) => report.expired.push(id.clone()),
                        Err(Refusal::Unknown) => report.forged.push(id.clone()),
                    },
                    Err(_) => report.forged.push(id.clone()),
                }
            }
        }
        count_refusals(&report);
        if nacked {
            sub.changed.notify_waiters();
        }
        Ok(report)
    }

    /// Acks a delivery made to a push endpoint (no ack id involved).
    pub async fn ack_delivery(&self, sub: &Arc<Subscription>, d: &Delivery) {
        if let Some(durable) = &sub.durable {
            if let Err(e) = self
                .js_settle(sub, durable, &[d.ack_id.as_str()], Settle::Ack)
                .await
            {
                // JetStream delivers it again after the deadline (at-least-once).
                tracing::warn!(subscription = %sub.name, error = %e, "push: cannot record an ack");
            }
            return;
        }
        let mut outcome = AckOutcome::default();
        let applied = sub.ledger().ack(d.record.offset, d.attempt, &mut outcome);
        if applied.is_err() || outcome.acked.is_empty() {
            return;
        }
        metrics::counter!("tether_pubsub_acks_total").increment(1);
        if let Err(e) = self
            .acks
            .acks(&sub.name, &outcome.acked, outcome.new_floor)
            .await
        {
            // Not durable: after a restart the message is pushed again (at-least-once).
            tracing::warn!(subscription = %sub.name, error = %e, "push: cannot record an ack");
        }
        sub.room.notify_waiters();
    }

    /// Keeps a refused push leased for `wait_ms`, after which it is due again.
    pub async fn retry_later(&self, sub: &Arc<Subscription>, d: &Delivery, wait_ms: u64) {
        if let Some(durable) = &sub.durable {
            let how = Settle::Redeliver(Duration::from_millis(wait_ms));
            if let Err(e) = self
                .js_settle(sub, durable, &[d.ack_id.as_str()], how)
                .await
            {
                tracing::warn!(subscription = %sub.name, error = %e, "push: cannot delay a retry");
            }
            return;
        }
        let until = self.now_ms().saturating_add(wait_ms);
        let _ = sub.ledger().modify(d.record.offset, d.attempt, Some(until));
    }

    /// Seeks to a time: messages the store holds that were published at or after
    /// `unix_micros` are delivered (again), earlier ones count as acked. Leases end.
    pub async fn seek_to_time(
        &self,
        sub: &Arc<Subscription>,
        unix_micros: i64,
    ) -> PubSubResult<u64> {
        let target = match self.reader.offsets(&sub.topic).await? {
            None => sub.ledger().next(),
            Some(offsets) => {
                // The first offset whose message (or the next one held) is not older
                // than the time; publish times grow with offsets.
                let (mut lo, mut hi) = (offsets.earliest, offsets.next);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    let first = self
                        .reader
                        .read(&sub.topic, mid, ReadLimits::new(1))
                        .await?
                        .into_iter()
                        .next();
                    match first {
                        Some(r) if r.message.publish_time < unix_micros => lo = r.offset + 1,
                        _ => hi = mid,
                    }
                }
                lo
            }
        };
        if let Some(nats) = &self.jetstream {
            self.js_seek(nats, sub, target).await?;
            sub.changed.notify_waiters();
            return Ok(target);
        }
        self.acks.reset(&sub.name, target).await?;
        sub.ledger().reset(target);
        sub.changed.notify_waiters();
        Ok(target)
    }

    /// Gives deliveries back undelivered (the stream that pulled them closed before
    /// they could be sent): they are due again at once, for another subscriber.
    pub async fn give_back(&self, sub: &Arc<Subscription>, deliveries: &[Delivery]) {
        if let Some(d) = &sub.durable {
            let ids: Vec<&str> = deliveries.iter().map(|d| d.ack_id.as_str()).collect();
            let _ = self
                .js_settle(sub, d, &ids, Settle::Redeliver(Duration::ZERO))
                .await;
            return;
        }
        {
            let mut l = sub.ledger();
            for d in deliveries {
                // Refused only if already acked or re-leased: nothing to give back then.
                let _ = l.modify(d.record.offset, d.attempt, None);
            }
        }
        sub.changed.notify_waiters();
    }

    /// Messages out on a lease or due again, over every subscription (the
    /// `tether_pubsub_outstanding` gauge).
    pub fn outstanding(&self) -> usize {
        self.subs
            .read()
            .map(|s| {
                s.values()
                    .map(|sub| {
                        if sub.durable.is_some() {
                            return sub.leased_here();
                        }
                        let l = sub.ledger();
                        l.leased() + l.due()
                    })
                    .sum()
            })
            .unwrap_or_default()
    }
}

fn count_refusals(report: &AckReport) {
    for (reason, n) in [
        ("expired", report.expired.len()),
        ("forged", report.forged.len()),
    ] {
        if n > 0 {
            metrics::counter!("tether_pubsub_ack_refusals_total", "reason" => reason)
                .increment(n as u64);
        }
    }
}

/// 0 → the default; else 10 to 600.
fn ack_deadline(seconds: i32) -> PubSubResult<u32> {
    if seconds == 0 {
        return Ok(DEFAULT_ACK_DEADLINE_S);
    }
    u32::try_from(seconds)
        .ok()
        .filter(|s| ACK_DEADLINE_S.contains(s))
        .ok_or_else(|| {
            PubSubError::Invalid(format!(
                "ack_deadline_seconds {seconds} is out of range: use 10 to 600 (or 0 for the \
                 default, 10)"
            ))
        })
}

fn check_push_endpoint(endpoint: &str) -> PubSubResult<()> {
    if endpoint.is_empty() || endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        Ok(())
    } else {
        Err(PubSubError::Invalid(format!(
            "push_config.push_endpoint {endpoint:?} is not an http:// or https:// URL"
        )))
    }
}
