//! The MQTT bridge: IoT Core's device protocol over TLS.
//!
//! ```text
//!  listener (TLS 8883 / 443, plain TCP for development)
//!     │ semaphore cap, TLS handshake
//!     ▼
//!  driver (one task per connection) ── tether_mqtt::ServerSession (sans-io MQTT)
//!     │ CONNECT ──▶ auth: client id → registry/device → JWT (tether-jwt)
//!     │ PUBLISH ──▶ topics (who may publish where) ─▶ limits ─▶ sink / store ─▶ PUBACK
//!     │ SUBSCRIBE ─▶ config_push (latest, updates, QoS 1 redelivery) / commands
//!     ▼
//!  connections::Connections (the DeviceHub): API → connected devices, one per device
//!     (attached devices are reached through their gateway's connection)
//!  driver/gateway: attach / detach / errors topic for gateways (rules in bridge)
//!  activity: batched last*-times and lastErrorStatus
//! ```
//!
//! Wire it with [`start`]; stop it with [`MqttHandle::shutdown`].

pub mod activity;
pub mod auth;
pub mod config_push;
pub mod connections;
pub mod device_cache;
mod driver;
mod listener;
pub mod mailbox;
mod read_buffer;
pub mod reason_codes;
mod registries;
pub mod topics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tether_registry::Store;
use tether_route::Sink;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use connections::{Connections, Presence};

use crate::bridge::hub::DeviceHub;
use crate::bridge::{BridgeDeps, Clock, CredentialSource, JwtPolicy, Limits};
use crate::listen::admission::Admission;
use crate::listen::{Cap, ListenPolicy};
use activity::{ActivitySender, ActivityWriter};

/// Settings of the MQTT bridge. Start from [`MqttOptions::default`] and set fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MqttOptions {
    /// TLS listeners (IoT Core: 8883, and 443 as the fallback).
    pub tls_addrs: Vec<SocketAddr>,
    /// Plain-TCP listeners: development only, never on by default.
    pub plain_addrs: Vec<SocketAddr>,
    /// The TLS configuration (see [`crate::tls::setup`]); required with `tls_addrs`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Time allowed for the TLS handshake, and again for the CONNECT and its
    /// authentication.
    pub connect_timeout: Duration,
    /// IoT Core closed connections with no message and no PINGREQ for 20 minutes.
    pub idle_timeout: Duration,
    /// JWT skew and encoding policy.
    pub jwt: JwtPolicy,
    /// Most open device sockets at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Connects a second allowed from one source address, checked before TLS (`None`:
    /// no limit).
    pub connect_rate_per_ip: Option<Arc<crate::listen::rate::ConnectRate>>,
    /// Where TLS handshakes and CONNECT authentication run (see
    /// [`crate::listen::admission`]).
    pub admission: Admission,
    /// What CONNECT authentication reads (registry, device, claims) from; `None`: the
    /// devices' store. `tether serve` on SQLite opens the file again on the admission
    /// threads, so that a flood's lookups run on SQLite threads at their priority and
    /// not on the ones connected devices use.
    pub admission_store: Option<Arc<dyn Store>>,
    /// Keep what CONNECT read for a device, so that its reconnect skips the store
    /// ([`device_cache`]); off on a cluster node, which may miss another node's change.
    pub device_cache: bool,
    /// Rates and sizes.
    pub limits: Limits,
    /// Re-send an unacknowledged QoS 1 config after this long.
    pub config_resend_interval: Duration,
    /// How often batched activity (last*-times, errors) is written.
    pub activity_interval: Duration,
    /// How long a connection uses its cached registry (routing) before re-reading it.
    pub registry_refresh: Duration,
    /// How long a sink may take to accept a message before it counts as failed.
    pub sink_timeout: Duration,
    /// How long a write to a device may block (a stalled reader is cut).
    pub write_timeout: Duration,
}

impl Default for MqttOptions {
    /// No listeners; IoT Core's timings and limits.
    fn default() -> Self {
        Self {
            tls_addrs: Vec::new(),
            plain_addrs: Vec::new(),
            tls: None,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(20 * 60),
            jwt: JwtPolicy::default(),
            max_connections: 10_000,
            connect_rate_per_ip: None,
            admission: Admission::inline(),
            admission_store: None,
            device_cache: true,
            limits: Limits::default(),
            config_resend_interval: Duration::from_secs(20),
            activity_interval: Duration::from_secs(5),
            registry_refresh: Duration::from_secs(10),
            sink_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MqttError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// TLS listeners without a TLS configuration.
    #[error("TLS listeners are configured but no TLS certificate is set up")]
    NoTlsConfig,
}

/// The counters every message touches, looked up once: a `counter!` with labels
/// hashes its key on every call.
#[derive(Debug)]
pub(crate) struct HotCounters {
    pub(crate) bytes_in: metrics::Counter,
    pub(crate) bytes_out: metrics::Counter,
    pub(crate) events_in: metrics::Counter,
    pub(crate) event_bytes_in: metrics::Counter,
    pub(crate) states_in: metrics::Counter,
    pub(crate) state_bytes_in: metrics::Counter,
}

impl HotCounters {
    fn new() -> Self {
        Self {
            bytes_in: metrics::counter!("tether_mqtt_bytes_in_total"),
            bytes_out: metrics::counter!("tether_mqtt_bytes_out_total"),
            events_in: metrics::counter!("tether_mqtt_messages_in_total", "kind" => "event"),
            event_bytes_in: metrics::counter!("tether_mqtt_payload_bytes_in_total", "kind" => "event"),
            states_in: metrics::counter!("tether_mqtt_messages_in_total", "kind" => "state"),
            state_bytes_in: metrics::counter!("tether_mqtt_payload_bytes_in_total", "kind" => "state"),
        }
    }
}

/// Everything connection tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: MqttOptions,
    pub(crate) store: Arc<dyn Store>,
    /// Read by CONNECT authentication ([`MqttOptions::admission_store`]).
    pub(crate) admission_store: Arc<dyn Store>,
    pub(crate) sink: Arc<dyn Sink>,
    pub(crate) credentials: Arc<dyn CredentialSource>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) log_budget: Arc<crate::bridge::LogBudget>,
    pub(crate) counters: HotCounters,
    pub(crate) connections: Arc<Connections>,
    pub(crate) registries: Arc<registries::Registries>,
    /// The registries' provisioning claims, for tokens a device's keys did not sign.
    pub(crate) claims: crate::bridge::provision::claim::ClaimLists,
    pub(crate) activity: ActivitySender,
    pub(crate) open: AtomicUsize,
    /// Sockets on the admission threads: handshaking, authenticating, or in their
    /// device's first seconds.
    pub(crate) admitting: AtomicUsize,
    pub(crate) closed: Notify,
    pub(crate) next_conn_id: AtomicU64,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// A running bridge.
#[derive(Debug)]
pub struct MqttHandle {
    tls_addrs: Vec<SocketAddr>,
    plain_addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    writer: ActivityWriter,
}

/// Binds the listeners and starts accepting devices.
///
/// # Errors
/// [`MqttError`] when a listener cannot be bound or TLS is missing.
pub async fn start(options: MqttOptions, deps: BridgeDeps) -> Result<MqttHandle, MqttError> {
    let acceptor = match (&options.tls, options.tls_addrs.is_empty()) {
        (Some(config), _) => Some(Arc::clone(config)),
        (None, true) => None,
        (None, false) => return Err(MqttError::NoTlsConfig),
    };
    // One cap for every MQTT listener (8883 and 443 share it).
    let cap = Cap::new(options.max_connections);
    let mut bound = Vec::new();
    for (addr, tls) in options
        .tls_addrs
        .iter()
        .map(|a| (*a, true))
        .chain(options.plain_addrs.iter().map(|a| (*a, false)))
    {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MqttError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| MqttError::Bind { addr, source })?;
        bound.push((listener, local, tls));
    }
    let (writer, activity) =
        ActivityWriter::start(Arc::clone(&deps.store), options.activity_interval);
    let (stop, shutdown) = watch::channel(false);
    // A claim list is trusted as long as a registry copy (10 s by default): a refused
    // token flood costs one query per registry per period; a new claim works on every
    // node within it, and revocation, expiry and counts are re-checked in the store.
    let claims_ttl = options.registry_refresh;
    let admission_store = options
        .admission_store
        .clone()
        .unwrap_or_else(|| Arc::clone(&deps.store));
    let devices = if options.device_cache {
        device_cache::DeviceCache::enabled()
    } else {
        device_cache::DeviceCache::disabled()
    };
    let shared = Arc::new(Shared {
        claims: crate::bridge::provision::claim::ClaimLists::new(claims_ttl),
        options,
        store: deps.store,
        admission_store,
        sink: deps.sink,
        credentials: deps.credentials,
        clock: deps.clock,
        log_budget: deps.log_budget,
        counters: HotCounters::new(),
        connections: Arc::new(Connections::new(devices)),
        registries: Arc::default(),
        activity,
        open: AtomicUsize::new(0),
        admitting: AtomicUsize::new(0),
        closed: Notify::new(),
        next_conn_id: AtomicU64::new(1),
        shutdown,
    });
    let mut tls_addrs = Vec::new();
    let mut plain_addrs = Vec::new();
    let mut listeners = Vec::new();
    for (listener, local, tls) in bound {
        if tls {
            tls_addrs.push(local);
        } else {
            tracing::warn!(%local, "plain-TCP MQTT listener (development only: tokens travel unencrypted)");
            plain_addrs.push(local);
        }
        tracing::info!(%local, tls, "MQTT bridge listening");
        let policy = ListenPolicy {
            name: "mqtt",
            cap: cap.clone(),
            tls: if tls { acceptor.clone() } else { None },
            handshake_timeout: shared.options.connect_timeout,
            per_ip: shared.options.connect_rate_per_ip.clone(),
            admission: shared.options.admission.clone(),
        };
        listeners.push(
            listener::spawn(listener, policy, Arc::clone(&shared)).map_err(|source| {
                MqttError::Bind {
                    addr: local,
                    source,
                }
            })?,
        );
    }
    Ok(MqttHandle {
        tls_addrs,
        plain_addrs,
        shared,
        stop,
        listeners,
        writer,
    })
}

impl MqttHandle {
    /// The bound TLS addresses (with the real port when 0 was asked for).
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// The bound plain-TCP addresses.
    pub fn plain_addrs(&self) -> &[SocketAddr] {
        &self.plain_addrs
    }

    /// Every bound address, TLS first.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tls_addrs
            .iter()
            .chain(&self.plain_addrs)
            .copied()
            .collect()
    }

    /// This node's connected devices (what a cluster hub wraps).
    pub fn connections(&self) -> Arc<Connections> {
        Arc::clone(&self.shared.connections)
    }

    /// The hub the API uses to reach connected devices.
    pub fn hub(&self) -> Arc<dyn DeviceHub> {
        Arc::clone(&self.shared.connections) as Arc<dyn DeviceHub>
    }

    /// Open device sockets, authenticated or not.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Sockets where admission runs (`--connect-priority low`): from accept through the
    /// handshake and CONNECT to the device's first 2 s.
    pub fn admitting_connections(&self) -> usize {
        self.shared.admitting.load(Ordering::Acquire)
    }

    /// Authenticated, connected devices.
    pub fn connected_devices(&self) -> usize {
        self.shared.connections.len()
    }

    /// Stops accepting, closes every connection (recording "the server is shutting
    /// down" on each device) after acknowledging appends in flight, waits up to
    /// `grace` for them to end, then writes the pending activity.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        for listener in self.listeners {
            let _ = listener.await;
        }
        let drained = tokio::time::timeout(grace, async {
            loop {
                let notified = self.shared.closed.notified();
                if self.shared.open.load(Ordering::Acquire) == 0 {
                    break;
                }
                notified.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                open = self.shared.open.load(Ordering::Acquire),
                "connections still open after the shutdown grace period"
            );
        }
        self.writer.shutdown().await;
    }
}
