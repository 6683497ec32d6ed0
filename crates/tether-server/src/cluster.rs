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

/// How long a command waits for the node that holds the device: longer than that
/// node's own hand-off to the connection (10 s), so a "retry" is never answered for a
/// command that is still delivered.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(12);
/// How long an API call waits to tell the other nodes (NATS may be reconnecting).
const BROADCAST_TIMEOUT: Duration = Duration::from_secs(2);
/// Arrivals announced by other nodes, kept for devices not (yet) seen here.
const REMOTE_KEPT: usize = 100_000;
/// The header naming the node a broadcast came from (a node skips its own).
const NODE_HEADER: &str = "Tether-Node";

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
}

/// The holding node's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum CommandReply {
    Delivered,
    NotSubscribed { device_id: String },
    Unavailable { message: String },
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
    tasks: Vec<JoinHandle<()>>,
    serving: Serving,
}

/// The task answering command requests for each device held here.
type Serving = Arc<Mutex<HashMap<DeviceAddress, JoinHandle<()>>>>;

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

/// Why the cluster hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS did not accept the connection.
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
    /// `store` is where a node reads a config another node stored.
    pub async fn start(
        config: ClusterConfig,
        local: Arc<Connections>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, ClusterError> {
        // Every (re)connect is signalled, so arrivals lost during an outage are
        // announced again.
        let (reconnected_tx, reconnected) = mpsc::unbounded_channel();
        let nats = async_nats::ConnectOptions::new()
            .event_callback(move |event| {
                let tx = reconnected_tx.clone();
                async move {
                    if event == async_nats::Event::Connected {
                        let _ = tx.send(());
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
            since: Arc::default(),
            remote: Arc::default(),
            serving: Arc::clone(&serving),
        };
        let tasks = vec![
            tokio::spawn(relay.clone().apply_events(events, store)),
            tokio::spawn(relay.clone().track_presence(presence)),
            tokio::spawn(relay.reannounce(reconnected)),
        ];
        // Devices that connected before this point are reported first.
        local.observe(tx, Arc::clone(&clock));
        Ok(Arc::new(ClusterHub {
            local,
            nats,
            config,
            clock,
            tasks,
            serving,
        }))
    }

    async fn broadcast(&self, event: &Event) {
        broadcast(&self.nats, &self.config, event).await;
    }
}

async fn broadcast(nats: &Client, config: &ClusterConfig, event: &Event) {
    let Ok(body) = serde_json::to_vec(event) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(NODE_HEADER, config.node.as_str());
    let subject = format!("{}.events", config.prefix);
    let sent = nats.publish_with_headers(subject, headers, body.into());
    match tokio::time::timeout(BROADCAST_TIMEOUT, sent).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not tell the other nodes"),
        Err(_) => tracing::warn!("could not tell the other nodes: NATS is not accepting messages"),
    }
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
        let timeout_ms = u64::try_from(COMMAND_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        let request = CommandRequest {
            registry: device.registry.to_string(),
            device_id: device_id.to_owned(),
            subfolder: subfolder.to_owned(),
            payload: STANDARD.encode(&payload),
            deadline_ms: self.clock.unix_millis().saturating_add(timeout_ms),
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| HubError::Unavailable(format!("cannot encode the command: {e}")))?;
        let subject = command_subject(&self.config.prefix, device.num_id);
        let asked = self.nats.request(subject, body.into());
        let reply = match tokio::time::timeout(COMMAND_TIMEOUT, asked).await {
            Err(_) => {
                return Err(HubError::Unavailable(
                    "the node the device is connected to did not answer in time; retry".into(),
                ));
            }
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Err(HubError::NotConnected);
            }
            Ok(Err(e)) => {
                return Err(HubError::Unavailable(format!(
                    "the cluster's NATS did not carry the command: {e}"
                )));
            }
            Ok(Ok(message)) => message,
        };
        match serde_json::from_slice::<CommandReply>(&reply.payload) {
            Ok(CommandReply::Delivered) => Ok(()),
            Ok(CommandReply::NotSubscribed { device_id }) => {
                Err(HubError::NotSubscribed(device_id))
            }
            Ok(CommandReply::Unavailable { message }) => Err(HubError::Unavailable(message)),
            Err(e) => Err(HubError::Unavailable(format!(
                "the other node's answer is not understood: {e}"
            ))),
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

    async fn registry_changed(&self, registry: &RegistryPath) {
        self.local.registry_changed(registry).await;
        self.broadcast(&Event::Registry {
            registry: registry.to_string(),
        })
        .await;
    }
}

/// The background side: applies other nodes' events here, answers command requests
/// for devices held here, and announces arrivals.
#[derive(Clone)]
struct Relay {
    local: Arc<Connections>,
    nats: Client,
    config: ClusterConfig,
    clock: Arc<dyn Clock>,
    /// When each device here was registered (Unix ms).
    since: Arc<Mutex<HashMap<DeviceAddress, u64>>>,
    /// The newest arrival another node announced for a device not held here when the
    /// announcement came (its own arrival here may still be on its way to this relay).
    remote: Arc<Mutex<HashMap<DeviceAddress, (u64, String)>>>,
    serving: Serving,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Relay {
    async fn apply_events(self, mut events: Subscriber, store: Arc<dyn Store>) {
        while let Some(message) = events.next().await {
            let from = message
                .headers
                .as_ref()
                .and_then(|h| h.get(NODE_HEADER))
                .map(|v| v.as_str().to_owned());
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
            self.apply(event, &*store).await;
        }
    }

    async fn apply(&self, event: Event, store: &dyn Store) {
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
                if !self.local.contains(&device) {
                    return;
                }
                match store
                    .get_device(&device.registry, &DeviceRef::NumId(num_id))
                    .await
                {
                    Ok(d) => self.local.config_updated(&device, &d.config).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read a config another node stored")
                    }
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
        }
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
        broadcast(&self.nats, &self.config, &event).await;
    }

    /// After NATS reconnects, announces the devices here again: an announcement lost
    /// in the outage would leave two connections of one device open.
    async fn reannounce(self, mut reconnected: mpsc::UnboundedReceiver<()>) {
        while reconnected.recv().await.is_some() {
            let here: Vec<(DeviceAddress, u64)> = locked(&self.since)
                .iter()
                .map(|(d, at)| (d.clone(), *at))
                .collect();
            for (device, at_ms) in here {
                self.announce(&device, at_ms).await;
            }
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

    /// Delivers a command for a device here. `None` (stay silent) when the device is
    /// not here after all, or the caller has given up: the holder, if any, answers.
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
        if self.clock.unix_millis() > request.deadline_ms {
            return None;
        }
        let (Ok(registry), Ok(data)) = (
            parse_registry(&request.registry),
            STANDARD.decode(&request.payload),
        ) else {
            return Some(malformed());
        };
        let device = DeviceAddress { registry, num_id };
        match self
            .local
            .send_command(&device, &request.device_id, &request.subfolder, data)
            .await
        {
            Ok(()) => Some(CommandReply::Delivered),
            Err(HubError::NotConnected) => None,
            Err(HubError::NotSubscribed(device_id)) => {
                Some(CommandReply::NotSubscribed { device_id })
            }
            Err(HubError::Unavailable(message)) => Some(CommandReply::Unavailable { message }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::older;

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
