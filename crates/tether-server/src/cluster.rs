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
//! nowhere fails at once with NOT_CONNECTED instead of waiting for a timeout. When a
//! device connects to node B while a connection on node A is older, node A closes its
//! own ("another active connection"), as a single node does.

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

use crate::hub::{DeviceAddress, DeviceHub, HubError};
use crate::mqtt::reason::{Reason, RpcCode};
use crate::mqtt::{Clock, Connections, Presence};

/// How long a command waits for the node that holds the device.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
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
    /// The device connected on the sending node at `at_ms` (Unix ms).
    Connected {
        registry: String,
        num_id: u64,
        at_ms: u64,
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
}

/// The holding node's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum CommandReply {
    Delivered,
    NotConnected,
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
    tasks: Vec<JoinHandle<()>>,
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
        let nats = async_nats::connect(&config.url)
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
        local.observe(tx);
        let since = Arc::new(Mutex::new(HashMap::new()));
        let relay = Relay {
            local: Arc::clone(&local),
            nats: nats.clone(),
            config: config.clone(),
            since,
        };
        let tasks = vec![
            tokio::spawn(relay.clone().apply_events(events, store)),
            tokio::spawn(relay.track_presence(presence, clock)),
        ];
        Ok(Arc::new(ClusterHub {
            local,
            nats,
            config,
            tasks,
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
    if let Err(e) = nats
        .publish_with_headers(subject, headers, body.into())
        .await
    {
        tracing::warn!(error = %e, "could not tell the other nodes");
    }
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
        let request = CommandRequest {
            registry: device.registry.to_string(),
            device_id: device_id.to_owned(),
            subfolder: subfolder.to_owned(),
            payload: STANDARD.encode(&payload),
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
            Ok(CommandReply::NotConnected) => Err(HubError::NotConnected),
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
    /// When each device here connected (Unix ms), to tell which of two connections
    /// on two nodes is the newer.
    since: Arc<Mutex<HashMap<DeviceAddress, u64>>>,
}

impl Relay {
    fn since(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceAddress, u64>> {
        self.since.lock().unwrap_or_else(PoisonError::into_inner)
    }

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
            } => {
                let Some(device) = address(&registry, num_id) else {
                    return;
                };
                let older_here = self.since().get(&device).is_some_and(|&here| here <= at_ms);
                if older_here {
                    self.local.close(&device, another_connection_elsewhere());
                }
            }
        }
    }

    async fn track_presence(
        self,
        mut presence: mpsc::UnboundedReceiver<Presence>,
        clock: Arc<dyn Clock>,
    ) {
        let mut serving: HashMap<DeviceAddress, JoinHandle<()>> = HashMap::new();
        while let Some(p) = presence.recv().await {
            match p {
                Presence::Up(device) => {
                    let at_ms = clock.unix_millis();
                    self.since().insert(device.clone(), at_ms);
                    if let Some(old) = serving.remove(&device) {
                        old.abort();
                    }
                    let subject = command_subject(&self.config.prefix, device.num_id);
                    match self.nats.subscribe(subject).await {
                        Ok(requests) => {
                            let task = tokio::spawn(self.clone().answer(requests));
                            serving.insert(device.clone(), task);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "commands from other nodes cannot reach a device here")
                        }
                    }
                    broadcast(
                        &self.nats,
                        &self.config,
                        &Event::Connected {
                            registry: device.registry.to_string(),
                            num_id: device.num_id,
                            at_ms,
                        },
                    )
                    .await;
                }
                Presence::Down(device) => {
                    self.since().remove(&device);
                    if let Some(task) = serving.remove(&device) {
                        // Dropping the subscriber unsubscribes.
                        task.abort();
                    }
                }
            }
        }
    }

    /// Answers command requests for one device held here.
    async fn answer(self, mut requests: Subscriber) {
        while let Some(message) = requests.next().await {
            let Some(reply_to) = message.reply.clone() else {
                continue;
            };
            let reply = self.deliver(&message.subject, &message.payload).await;
            let body = serde_json::to_vec(&reply).unwrap_or_default();
            if let Err(e) = self.nats.publish(reply_to, body.into()).await {
                tracing::warn!(error = %e, "could not answer another node's command");
            }
        }
    }

    async fn deliver(&self, subject: &str, payload: &[u8]) -> CommandReply {
        let num_id = subject
            .rsplit('.')
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok());
        let request = serde_json::from_slice::<CommandRequest>(payload);
        let (Some(num_id), Ok(request)) = (num_id, request) else {
            return CommandReply::Unavailable {
                message: "a malformed command request between nodes".into(),
            };
        };
        let (Ok(registry), Ok(data)) = (
            parse_registry(&request.registry),
            STANDARD.decode(&request.payload),
        ) else {
            return CommandReply::Unavailable {
                message: "a malformed command request between nodes".into(),
            };
        };
        let device = DeviceAddress { registry, num_id };
        match self
            .local
            .send_command(&device, &request.device_id, &request.subfolder, data)
            .await
        {
            Ok(()) => CommandReply::Delivered,
            Err(HubError::NotConnected) => CommandReply::NotConnected,
            Err(HubError::NotSubscribed(device_id)) => CommandReply::NotSubscribed { device_id },
            Err(HubError::Unavailable(message)) => CommandReply::Unavailable { message },
        }
    }
}

fn another_connection_elsewhere() -> Reason {
    Reason::new(
        RpcCode::Cancelled,
        "superseded",
        "The connection was closed because there is another active connection with the \
         same device ID.",
    )
}
