//! Several `tether serve` nodes on one PostgreSQL store: the delivery hub's messages
//! cross nodes over core NATS (`--cluster-nats`), so the API of any node reaches a
//! device connected to any other.
//!
//! ```text
//!  API on node A ── ClusterHub ── local Connections (device here?) ── yes ─▶ deliver
//!                                   │ no
//!                                   ▼
//!   commands:  request  {prefix}.dev.{numId}.command ──▶ the one node subscribed
//!              (no responders = not connected anywhere)     (it holds the device)
//!   config, device/registry changes, "connected here":
//!              publish  {prefix}.events ──▶ every node applies it to its own devices
//! ```
//!
//! A node subscribes to a device's command subject while the device is connected (or
//! attached through a gateway) there, so a command for a device that is connected
//! nowhere fails at once with NOT_CONNECTED instead of waiting for a timeout; a node
//! that is asked about a device it no longer holds stays silent, so only the holder
//! answers. When a device connects to node B while a connection on node A is older,
//! node A closes its own ("another active connection"), as a single node does. Which
//! is older is decided by the time each node stamped while registering the connection,
//! ties broken by node name; arrivals are announced again after NATS reconnects.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::{Client, HeaderMap, Subscriber};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tether_registry::Store;
use tether_registry::model::DeviceConfig;
use tether_registry::names::{DeviceRef, RegistryPath, parse_registry};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::bridge::Clock;
use crate::bridge::hub::{DeviceAddress, DeviceHub, HubError};
use crate::mqtt::connections::another_connection;
use crate::mqtt::{Connections, Presence};

/// How long a command waits for the node that holds the device.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(12);
/// The holder must have handed the command to the connection this long before the
/// requester gives up, so that its answer can still arrive: a command is delivered and
/// answered 200, or not delivered and answered with an error, never delivered after an
/// error. (The nodes' clocks must agree to within a part of this margin: NTP.)
const REPLY_MARGIN: Duration = Duration::from_secs(3);
/// After this node's link to NATS comes back, other nodes may not have subscribed again
/// yet: "no responders" in this window is a link problem, not "not connected".
const RESUBSCRIBE_GRACE: Duration = Duration::from_secs(5);
/// How often a node says how many broadcasts it has sent, so a lost one is noticed.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// Devices re-checked at once after a missed broadcast.
const RECHECK_CONCURRENCY: usize = 16;
/// How long an API call waits to tell the other nodes (NATS may be reconnecting).
const BROADCAST_TIMEOUT: Duration = Duration::from_secs(2);
/// Arrivals announced by other nodes, kept for devices not (yet) seen here.
const REMOTE_KEPT: usize = 100_000;
/// The header naming the node a broadcast came from (a node skips its own).
const NODE_HEADER: &str = "Tether-Node";
/// The header with the sending node's start (a restarted node starts a new sequence).
const EPOCH_HEADER: &str = "Tether-Epoch";
/// The header with the broadcast's number in its node's sequence (1, 2, …).
const SEQ_HEADER: &str = "Tether-Seq";

/// What goes to every node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Event {
    /// A new config version was stored for the device.
    Config { registry: String, num_id: u64 },
    /// The device was changed or deleted through the API.
    Changed { registry: String, num_id: u64 },
    /// The registry was changed through the API.
    Registry { registry: String },
    /// The device connected on `node` at `at_ms` (Unix ms).
    Connected {
        registry: String,
        num_id: u64,
        at_ms: u64,
        node: String,
    },
    /// No change: the sender's sequence so far (its number is the last one sent), so
    /// that a receiver notices broadcasts it missed.
    Heartbeat,
}

/// A command for a device on another node.
#[derive(Debug, Serialize, Deserialize)]
struct CommandRequest {
    registry: String,
    device_id: String,
    subfolder: String,
    /// Standard base64.
    payload: String,
    /// Unix ms after which the caller has given up: the holder drops it then.
    deadline_ms: u64,
    /// Only asks whether the device is connected there (the console's online state):
    /// the holder answers [`CommandReply::Present`] and delivers nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    probe: bool,
}

/// The holding node's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum CommandReply {
    Delivered,
    NotSubscribed {
        device_id: String,
    },
    Unavailable {
        message: String,
    },
    /// It reached the holder after its deadline: not delivered.
    Expired,
    /// The answer to a probe: the device is connected there.
    Present,
}

/// Where the cluster's NATS is and how this node is named.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `nats://host:4222`.
    pub url: String,
    /// Subject prefix shared by the nodes of one cluster (`tether.hub`).
    pub prefix: String,
    /// This node's name (unique in the cluster; `tether serve` uses the host name and
    /// process id by default).
    pub node: String,
}

/// The hub of one node in a cluster: local delivery first, then the other nodes.
pub struct ClusterHub {
    local: Arc<Connections>,
    nats: Client,
    config: ClusterConfig,
    clock: Arc<dyn Clock>,
    link: Arc<Link>,
    tasks: Vec<JoinHandle<()>>,
    serving: Serving,
}

/// The task answering command requests for each device held here.
type Serving = Arc<Mutex<HashMap<DeviceAddress, JoinHandle<()>>>>;

/// This node's side of the link: its broadcast sequence and when NATS last connected.
#[derive(Debug)]
struct Link {
    /// This run of the node (its start time, Unix ms): a restart begins a new sequence.
    epoch: String,
    /// The number of the last broadcast sent.
    seq: AtomicU64,
    /// Connects so far (the first is the initial one).
    connects: AtomicU64,
    /// When the link to NATS last came back after an outage (Unix ms; 0: never).
    connected_at_ms: AtomicU64,
    /// Broadcasts that could not be handed to NATS.
    unsent: AtomicU64,
}

impl std::fmt::Debug for ClusterHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHub")
            .field("node", &self.config.node)
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

impl Drop for ClusterHub {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in locked(&self.serving).values() {
            task.abort();
        }
    }
}

/// Why a node could not join the cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// NATS could not be reached.
    #[error("cannot connect to the cluster's NATS at {url}: {message}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The broadcast subject could not be subscribed.
    #[error("cannot subscribe to {subject}: {message}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        message: String,
    },
}

impl ClusterHub {
    /// Connects to NATS and starts relaying for `local` (this node's devices). The
    /// `store` is where a node reads a config another node stored, and what it checks
    /// its devices against when it may have missed a broadcast.
    pub async fn start(
        config: ClusterConfig,
        local: Arc<Connections>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, ClusterError> {
        let link = Arc::new(Link {
            epoch: clock.unix_millis().to_string(),
            seq: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            connected_at_ms: AtomicU64::new(0),
            unsent: AtomicU64::new(0),
        });
        // Every reconnect is signalled: arrivals lost during an outage are announced
        // again, and this node re-checks its devices (it may have missed broadcasts).
        let (reconnected_tx, reconnected) = mpsc::unbounded_channel();
        let (callback_link, callback_clock) = (Arc::clone(&link), Arc::clone(&clock));
        let nats = async_nats::ConnectOptions::new()
            .event_callback(move |event| {
                let tx = reconnected_tx.clone();
                let link = Arc::clone(&callback_link);
                let clock = Arc::clone(&callback_clock);
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            if link.connects.fetch_add(1, Ordering::AcqRel) > 0 {
                                link.connected_at_ms
                                    .store(clock.unix_millis(), Ordering::Release);
                            }
                            let _ = tx.send(());
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("the cluster link (NATS) is down: commands to devices on other nodes fail with UNAVAILABLE until it is back");
                        }
                        _ => {}
                    }
                }
            })
            .connect(&config.url)
            .await
            .map_err(|e| ClusterError::Connect {
                url: config.url.clone(),
                message: e.to_string(),
            })?;
        let subject = format!("{}.events", config.prefix);
        let events =
            nats.subscribe(subject.clone())
                .await
                .map_err(|e| ClusterError::Subscribe {
                    subject,
                    message: e.to_string(),
                })?;
        let (tx, presence) = mpsc::unbounded_channel();
        let serving: Serving = Arc::default();
        let relay = Relay {
            local: Arc::clone(&local),
            nats: nats.clone(),
            config: config.clone(),
            clock: Arc::clone(&clock),
            link: Arc::clone(&link),
            store,
            since: Arc::default(),
            remote: Arc::default(),
            senders: Arc::default(),
            serving: Arc::clone(&serving),
        };
        let tasks = vec![
            tokio::spawn(relay.clone().apply_events(events)),
            tokio::spawn(relay.clone().track_presence(presence)),
            tokio::spawn(relay.clone().after_reconnects(reconnected)),
            tokio::spawn(relay.heartbeat()),
        ];
        // Devices that connected before this point are reported first.
        local.observe(tx, Arc::clone(&clock));
        Ok(Arc::new(ClusterHub {
            local,
            nats,
            config,
            clock,
            link,
            tasks,
            serving,
        }))
    }

    async fn broadcast(&self, event: &Event) {
        broadcast(&self.nats, &self.config, &self.link, event).await;
    }

    /// Whether the link to NATS is up.
    fn link_up(&self) -> bool {
        self.nats.connection_state() == async_nats::connection::State::Connected
    }

    /// Whether NATS reconnected so recently that other nodes may not have subscribed
    /// again yet.
    fn just_reconnected(&self) -> bool {
        let since = self
            .clock
            .unix_millis()
            .saturating_sub(self.link.connected_at_ms.load(Ordering::Acquire));
        since < u64::try_from(RESUBSCRIBE_GRACE.as_millis()).unwrap_or(u64::MAX)
    }

    fn link_down(&self) -> HubError {
        HubError::LinkDown(format!(
            "the cluster link (NATS at {}) is down, so the node the device may be connected \
             to cannot be reached; the command was not delivered; retry once the link is back",
            self.config.url
        ))
    }

    /// Asks the node holding the device to deliver; `Ok(None)` when no node answers
    /// for it (it is connected nowhere).
    async fn ask(
        &self,
        device: &DeviceAddress,
        body: Vec<u8>,
    ) -> Result<Option<CommandReply>, HubError> {
        let subject = command_subject(&self.config.prefix, device.num_id);
        let request = async_nats::Request::new()
            .payload(body.into())
            .timeout(Some(COMMAND_TIMEOUT));
        match self.nats.send_request(subject, request).await {
            Ok(message) => match serde_json::from_slice::<CommandReply>(&message.payload) {
                Ok(reply) => Ok(Some(reply)),
                Err(e) => Err(HubError::LinkDown(format!(
                    "the other node's answer is not understood ({e}); the command may not \
                     have been delivered"
                ))),
            },
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(None),
            Err(e) if e.kind() == async_nats::RequestErrorKind::TimedOut => {
                Err(HubError::LinkDown(format!(
                    "the node holding the device did not answer within {} s (frozen or \
                     overloaded); the command was not delivered and will not be; retry",
                    COMMAND_TIMEOUT.as_secs()
                )))
            }
            Err(e) => Err(HubError::LinkDown(format!(
                "the cluster's NATS did not carry the command ({e}); it was not delivered; retry"
            ))),
        }
    }
}

/// Publishes `event` to every node, numbered in this node's sequence.
async fn broadcast(nats: &Client, config: &ClusterConfig, link: &Link, event: &Event) {
    let Ok(body) = serde_json::to_vec(event) else {
        return;
    };
    let seq = match event {
        Event::Heartbeat => link.seq.load(Ordering::Acquire),
        _ => link.seq.fetch_add(1, Ordering::AcqRel) + 1,
    };
    let mut headers = HeaderMap::new();
    headers.insert(NODE_HEADER, config.node.as_str());
    headers.insert(EPOCH_HEADER, link.epoch.as_str());
    headers.insert(SEQ_HEADER, seq.to_string().as_str());
    let subject = format!("{}.events", config.prefix);
    let sent = nats.publish_with_headers(subject, headers, body.into());
    let failed = match tokio::time::timeout(BROADCAST_TIMEOUT, sent).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "NATS is not accepting messages".to_owned(),
    };
    if matches!(event, Event::Heartbeat) {
        return;
    }
    let unsent = link.unsent.fetch_add(1, Ordering::AcqRel) + 1;
    // The other nodes notice the gap in the sequence at the next heartbeat and
    // re-check their devices.
    tracing::warn!(
        unsent,
        "could not tell the other nodes ({failed}); they will re-check their devices when \
         the link is back"
    );
}

/// Whether the connection stamped (`here`, `node`) is older than (`there`, `other`):
/// the later arrival wins, ties go to the greater node name.
fn older(here: u64, node: &str, there: u64, other: &str) -> bool {
    (here, node) < (there, other)
}

fn command_subject(prefix: &str, num_id: u64) -> String {
    format!("{prefix}.dev.{num_id}.command")
}

#[async_trait]
impl DeviceHub for ClusterHub {
    async fn send_command(
        &self,
        device: &DeviceAddress,
        device_id: &str,
        subfolder: &str,
        payload: Vec<u8>,
    ) -> Result<(), HubError> {
        if self.local.contains(device) {
            return self
                .local
                .send_command(device, device_id, subfolder, payload)
                .await;
        }
        if !self.link_up() {
            return Err(self.link_down());
        }
        let give_up = self
            .clock
            .unix_millis()
            .saturating_add(u64::try_from(COMMAND_TIMEOUT.as_millis()).unwrap_or(u64::MAX));
        let request = CommandRequest {
            registry: device.registry.to_string(),
            device_id: device_id.to_owned(),
            subfolder: subfolder.to_owned(),
            payload: STANDARD.encode(&payload),
            deadline_ms: give_up
                .saturating_sub(u64::try_from(REPLY_MARGIN.as_millis()).unwrap_or(0)),
            probe: false,
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| HubError::Unavailable(format!("cannot encode the command: {e}")))?;
        let mut reply = self.ask(device, body.clone()).await?;
        if reply.is_none() && self.just_reconnected() {
            // The holder may still be subscribing again: ask once more.
            tokio::time::sleep(Duration::from_secs(1)).await;
            reply = self.ask(device, body).await?;
            if reply.is_none() && self.just_reconnected() {
                return Err(HubError::LinkDown(
                    "the cluster link came back moments ago and the node holding the device \
                     has not answered yet; the command was not delivered; retry"
                        .into(),
                ));
            }
        }
        match reply {
            None => Err(HubError::NotConnected),
            Some(CommandReply::Delivered) => Ok(()),
            Some(CommandReply::NotSubscribed { device_id }) => {
                Err(HubError::NotSubscribed(device_id))
            }
            Some(CommandReply::Unavailable { message }) => Err(HubError::Unavailable(message)),
            Some(CommandReply::Present) => Err(HubError::Unavailable(
                "the node holding the device answered a command with a probe's answer; \
                 the command was not delivered; retry"
                    .into(),
            )),
            Some(CommandReply::Expired) => Err(HubError::LinkDown(
                "the command reached the node holding the device too late (frozen or \
                 overloaded); it was not delivered; retry"
                    .into(),
            )),
        }
    }

    async fn config_updated(&self, device: &DeviceAddress, config: &DeviceConfig) {
        self.local.config_updated(device, config).await;
        if !self.local.contains(device) {
            self.broadcast(&Event::Config {
                registry: device.registry.to_string(),
                num_id: device.num_id,
            })
            .await;
        }
    }

    async fn device_changed(&self, device: &DeviceAddress) {
        self.local.device_changed(device).await;
        self.broadcast(&Event::Changed {
            registry: device.registry.to_string(),
            num_id: device.num_id,
        })
        .await;
    }

    async fn is_connected(&self, device: &DeviceAddress) -> Result<bool, HubError> {
        if self.local.contains(device) {
            return Ok(true);
        }
        if !self.link_up() {
            return Err(self.link_down());
        }
        let probe = CommandRequest {
            registry: device.registry.to_string(),
            device_id: String::new(),
            subfolder: String::new(),
            payload: String::new(),
            deadline_ms: 0,
            probe: true,
        };
        let body = serde_json::to_vec(&probe)
            .map_err(|e| HubError::Unavailable(format!("cannot encode the probe: {e}")))?;
        // Any answer means a node holds the device; none means no node does.
        Ok(self.ask(device, body).await?.is_some())
    }

    async fn registry_changed(&self, registry: &RegistryPath) {
        self.local.registry_changed(registry).await;
        self.broadcast(&Event::Registry {
            registry: registry.to_string(),
        })
        .await;
    }
}

/// Where a node is in another node's broadcast sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Heard {
    epoch: String,
    seq: u64,
}

/// The background side: applies other nodes' events here, answers command requests
/// for devices held here, announces arrivals, and re-checks the devices here when a
/// broadcast may have been missed.
#[derive(Clone)]
struct Relay {
    local: Arc<Connections>,
    nats: Client,
    config: ClusterConfig,
    clock: Arc<dyn Clock>,
    link: Arc<Link>,
    store: Arc<dyn Store>,
    /// When each device here was registered (Unix ms).
    since: Arc<Mutex<HashMap<DeviceAddress, u64>>>,
    /// The newest arrival another node announced for a device not held here when the
    /// announcement came (its own arrival here may still be on its way to this relay).
    remote: Arc<Mutex<HashMap<DeviceAddress, (u64, String)>>>,
    /// The last broadcast heard from each other node.
    senders: Arc<Mutex<HashMap<String, Heard>>>,
    serving: Serving,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a broadcast's number says about the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sequence {
    /// The next one, or the first heard from this node.
    InOrder,
    /// Some were missed (or the node restarted, and may have sent some before).
    Gap,
    /// Already heard (a heartbeat with nothing new, or a repeat).
    Old,
}

/// Where `heard` stands after a broadcast (`epoch`, `seq`) that is an event
/// (`heartbeat`: false) or a heartbeat.
fn follow(heard: Option<&Heard>, epoch: &str, seq: u64, heartbeat: bool) -> Sequence {
    match heard {
        None => Sequence::InOrder,
        Some(h) if h.epoch != epoch => Sequence::Gap,
        Some(h) if heartbeat && seq > h.seq => Sequence::Gap,
        Some(h) if !heartbeat && seq == h.seq + 1 => Sequence::InOrder,
        Some(h) if seq > h.seq => Sequence::Gap,
        Some(_) => Sequence::Old,
    }
}

impl Relay {
    async fn apply_events(self, mut events: Subscriber) {
        while let Some(message) = events.next().await {
            let header = |name: &str| {
                message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_owned())
            };
            let from = header(NODE_HEADER);
            if from.as_deref() == Some(self.config.node.as_str()) {
                continue;
            }
            let event = match serde_json::from_slice::<Event>(&message.payload) {
                Ok(event) => event,
                Err(e) => {
                    tracing::warn!(error = %e, "ignored a cluster event that is not understood");
                    continue;
                }
            };
            let seq = header(SEQ_HEADER).and_then(|s| s.parse::<u64>().ok());
            if let (Some(node), Some(epoch), Some(seq)) = (from, header(EPOCH_HEADER), seq) {
                self.heard(node, epoch, seq, matches!(event, Event::Heartbeat));
            }
            self.apply(event).await;
        }
    }

    /// Follows another node's sequence; a gap means broadcasts were missed: re-check
    /// every device here, as if each had been heard.
    fn heard(&self, node: String, epoch: String, seq: u64, heartbeat: bool) {
        let verdict = {
            let mut senders = locked(&self.senders);
            let verdict = follow(senders.get(&node), &epoch, seq, heartbeat);
            if verdict != Sequence::Old {
                senders.insert(node.clone(), Heard { epoch, seq });
            }
            verdict
        };
        if verdict == Sequence::Gap {
            tracing::warn!(
                from = %node,
                "broadcasts from another node may have been missed; re-checking the devices here"
            );
            tokio::spawn(self.clone().recheck_all());
        }
    }

    async fn apply(&self, event: Event) {
        let address = |registry: &str, num_id: u64| {
            parse_registry(registry)
                .ok()
                .map(|registry| DeviceAddress { registry, num_id })
        };
        match event {
            Event::Config { registry, num_id } => {
                let Some(device) = address(&registry, num_id) else {
                    return;
                };
                if self.local.contains(&device) {
                    self.push_latest_config(&device).await;
                }
            }
            Event::Changed { registry, num_id } => {
                if let Some(device) = address(&registry, num_id) {
                    self.local.device_changed(&device).await;
                }
            }
            Event::Registry { registry } => {
                if let Ok(path) = parse_registry(&registry) {
                    self.local.registry_changed(&path).await;
                }
            }
            Event::Connected {
                registry,
                num_id,
                at_ms,
                node,
            } => {
                let Some(device) = address(&registry, num_id) else {
                    return;
                };
                let here = locked(&self.since).get(&device).copied();
                match here {
                    Some(here) if older(here, &self.config.node, at_ms, &node) => {
                        self.local.close(&device, another_connection());
                    }
                    Some(_) => {}
                    None => self.remember_remote(device, at_ms, node),
                }
            }
            Event::Heartbeat => {}
        }
    }

    /// Reads the device's latest config and hands it to its connection (which sends
    /// it only if it is newer than what the device has).
    async fn push_latest_config(&self, device: &DeviceAddress) {
        match self
            .store
            .get_device(&device.registry, &DeviceRef::NumId(device.num_id))
            .await
        {
            Ok(d) => self.local.config_updated(device, &d.config).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not read a config another node stored")
            }
        }
    }

    /// Checks every device here against the store, as if every broadcast had been
    /// heard: blocked, deleted or changed keys close or detach it, registry changes
    /// apply, and a newer config is pushed.
    async fn recheck_all(self) {
        let devices: Vec<DeviceAddress> = locked(&self.since).keys().cloned().collect();
        let registries: std::collections::BTreeSet<RegistryPath> =
            devices.iter().map(|d| d.registry.clone()).collect();
        for registry in &registries {
            self.local.registry_changed(registry).await;
        }
        let count = devices.len();
        futures_util::stream::iter(devices)
            .for_each_concurrent(RECHECK_CONCURRENCY, |device| {
                let relay = &self;
                async move {
                    relay.local.device_changed(&device).await;
                    relay.push_latest_config(&device).await;
                }
            })
            .await;
        tracing::info!(
            devices = count,
            registries = registries.len(),
            "devices re-checked against the store"
        );
    }

    fn remember_remote(&self, device: DeviceAddress, at_ms: u64, node: String) {
        let mut remote = locked(&self.remote);
        if remote.len() >= REMOTE_KEPT {
            // Only a lagging local arrival needs these: a minute covers it.
            let horizon = at_ms.saturating_sub(60_000);
            remote.retain(|_, (at, _)| *at >= horizon);
        }
        let newer = remote
            .get(&device)
            .is_none_or(|(at, n)| older(*at, n, at_ms, &node));
        if newer {
            remote.insert(device, (at_ms, node));
        }
    }

    async fn track_presence(self, mut presence: mpsc::UnboundedReceiver<Presence>) {
        while let Some(p) = presence.recv().await {
            match p {
                Presence::Up { device, at_ms } => self.arrived(device, at_ms).await,
                Presence::Down(device) => {
                    locked(&self.since).remove(&device);
                    if let Some(task) = locked(&self.serving).remove(&device) {
                        // Ending the task drops the subscriber, which unsubscribes.
                        task.abort();
                    }
                }
            }
        }
    }

    async fn arrived(&self, device: DeviceAddress, at_ms: u64) {
        locked(&self.since).insert(device.clone(), at_ms);
        // Another node announced a newer connection before this arrival got here.
        let remote = locked(&self.remote).remove(&device);
        if let Some((there, node)) = remote
            && older(at_ms, &self.config.node, there, &node)
        {
            self.local.close(&device, another_connection());
        }
        let subject = command_subject(&self.config.prefix, device.num_id);
        match self.nats.subscribe(subject).await {
            Ok(requests) => {
                let task = tokio::spawn(self.clone().answer(requests));
                if let Some(old) = locked(&self.serving).insert(device.clone(), task) {
                    old.abort();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "commands from other nodes cannot reach a device here")
            }
        }
        self.announce(&device, at_ms).await;
    }

    async fn announce(&self, device: &DeviceAddress, at_ms: u64) {
        let event = Event::Connected {
            registry: device.registry.to_string(),
            num_id: device.num_id,
            at_ms,
            node: self.config.node.clone(),
        };
        broadcast(&self.nats, &self.config, &self.link, &event).await;
    }

    /// After NATS reconnects: announces the devices here again (an announcement lost
    /// in the outage would leave two connections of one device open), tells the others
    /// where this node's sequence is, and re-checks the devices here (this node may
    /// have missed their broadcasts).
    async fn after_reconnects(self, mut reconnected: mpsc::UnboundedReceiver<()>) {
        // The first signal is the initial connect.
        let mut first = true;
        while reconnected.recv().await.is_some() {
            if std::mem::take(&mut first) {
                continue;
            }
            let here: Vec<(DeviceAddress, u64)> = locked(&self.since)
                .iter()
                .map(|(d, at)| (d.clone(), *at))
                .collect();
            for (device, at_ms) in here {
                self.announce(&device, at_ms).await;
            }
            broadcast(&self.nats, &self.config, &self.link, &Event::Heartbeat).await;
            self.clone().recheck_all().await;
        }
    }

    /// Says where this node's sequence is, every [`HEARTBEAT_EVERY`].
    async fn heartbeat(self) {
        let mut every = tokio::time::interval(HEARTBEAT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            broadcast(&self.nats, &self.config, &self.link, &Event::Heartbeat).await;
        }
    }

    /// Answers command requests for one device held here.
    async fn answer(self, mut requests: Subscriber) {
        while let Some(message) = requests.next().await {
            let Some(reply_to) = message.reply.clone() else {
                continue;
            };
            let Some(reply) = self.deliver(&message.subject, &message.payload).await else {
                continue;
            };
            let Ok(body) = serde_json::to_vec(&reply) else {
                continue;
            };
            if let Err(e) = self.nats.publish(reply_to, body.into()).await {
                tracing::warn!(error = %e, "could not answer another node's command");
            }
        }
    }

    /// Delivers a command for a device here, if its deadline allows. `None` (stay
    /// silent) when the device is not here after all: the holder, if any, answers.
    async fn deliver(&self, subject: &str, payload: &[u8]) -> Option<CommandReply> {
        let malformed = || CommandReply::Unavailable {
            message: "a malformed command request between nodes".into(),
        };
        let num_id = subject
            .rsplit('.')
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok());
        let request = serde_json::from_slice::<CommandRequest>(payload);
        let (Some(num_id), Ok(request)) = (num_id, request) else {
            return Some(malformed());
        };
        let (Ok(registry), Ok(data)) = (
            parse_registry(&request.registry),
            STANDARD.decode(&request.payload),
        ) else {
            return Some(malformed());
        };
        let device = DeviceAddress { registry, num_id };
        if !self.local.contains(&device) {
            return None;
        }
        if request.probe {
            return Some(CommandReply::Present);
        }
        // The requester's deadline, on this node's clocks: past it the command is
        // dropped, here or in the connection, so it is never delivered after the
        // requester has answered with an error.
        let left = request.deadline_ms.saturating_sub(self.clock.unix_millis());
        if left == 0 {
            return Some(CommandReply::Expired);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(left);
        match self
            .local
            .send_command_by(
                &device,
                &request.device_id,
                &request.subfolder,
                data,
                deadline,
            )
            .await
        {
            Ok(()) => Some(CommandReply::Delivered),
            Err(HubError::NotConnected) => None,
            Err(HubError::NotSubscribed(device_id)) => {
                Some(CommandReply::NotSubscribed { device_id })
            }
            Err(HubError::Unavailable(message) | HubError::LinkDown(message)) => {
                Some(CommandReply::Unavailable { message })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Heard, Sequence, follow, older};

    #[test]
    fn missed_broadcasts_are_noticed_by_their_numbers() {
        let at = |seq| Heard {
            epoch: "1".into(),
            seq,
        };
        assert_eq!(
            follow(None, "1", 7, false),
            Sequence::InOrder,
            "first heard"
        );
        assert_eq!(follow(Some(&at(7)), "1", 8, false), Sequence::InOrder);
        assert_eq!(
            follow(Some(&at(7)), "1", 10, false),
            Sequence::Gap,
            "8 and 9 lost"
        );
        assert_eq!(
            follow(Some(&at(7)), "1", 7, true),
            Sequence::Old,
            "a quiet heartbeat"
        );
        assert_eq!(
            follow(Some(&at(7)), "1", 9, true),
            Sequence::Gap,
            "the heartbeat says 8, 9 were sent"
        );
        assert_eq!(
            follow(Some(&at(7)), "1", 5, false),
            Sequence::Old,
            "a repeat"
        );
        assert_eq!(
            follow(Some(&at(7)), "2", 1, false),
            Sequence::Gap,
            "a restarted node"
        );
    }

    #[test]
    fn the_later_connection_stays_and_a_tie_goes_to_the_greater_node_name() {
        assert!(older(100, "a", 200, "b"));
        assert!(!older(200, "a", 100, "b"));
        assert!(older(100, "a", 100, "b"), "tie: node a gives way to b");
        assert!(
            !older(100, "b", 100, "a"),
            "tie: node b keeps its connection"
        );
    }
}
