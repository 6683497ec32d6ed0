//! `tether serve`: the composition root. Everything the server runs is opened and
//! wired here, and nowhere else.
//!
//! ```text
//!  ServeOptions (flags + tether.toml) ─resolve─▶ Settings
//!  bind(): data dir, admin token, store, admin listener ─▶ Server
//!  serve(): sink ─▶ TLS ─▶ BridgeDeps ─▶ MQTT bridge, HTTPS device bridge
//!           hub (this node's connections, or the cluster's) ─▶ admin API + /metrics
//!           until shutdown; then devices are closed (recording why), drained, flushed
//! ```
//!
//! [`bind`] does everything that can fail on start-up and reports the bound address,
//! so `--http-addr 127.0.0.1:0` works in tests. Every failure is a [`ServeError`] that
//! says whose fault it is, with its own exit code.

mod admin_token;
pub mod descriptors;
mod grpc;
mod grpc_incoming;
mod pubsub;
mod settings;
mod sink;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tether_registry::{Store, StoreError};
use tokio::net::TcpListener;

pub use admin_token::{TOKEN_DIGEST_FILE, TOKEN_FILE, TokenOrigin};
pub use grpc::GrpcApi;
pub use pubsub::{CATALOG_FILE, PubSubApi};
pub use settings::{
    DEFAULT_DATA_DIR, DEFAULT_HTTP_ADDR, DEFAULT_HTTPS_ADDR, DEFAULT_MQTT_ADDR,
    DEFAULT_PUBSUB_ADDR, MIN_TOKEN_LEN, ServeOptions, Settings,
};
pub use sink::{TelemetrySink, open_sink, spawn_retention};

use crate::api::auth::AdminAuth;
use crate::api::{self, ApiState};
use crate::bridge::hub::DeviceHub;
use crate::bridge::{BridgeDeps, Clock, JwtPolicy, SystemClock};
use crate::cluster::{ClusterError, ClusterHub};
use crate::device_http::{self, DeviceBridge};
use crate::listen::admission::Admission;
use crate::listen::http::HttpPolicy;
use crate::listen::rate::ConnectRate;
use crate::listen::{self, Cap, DeviceGate, ListenPolicy};
use crate::mqtt::{self, MqttError, MqttHandle, MqttOptions};
use crate::tls::{self, TlsError, TlsSetup};

/// Why the server could not start (or, for [`ServeError::Listener`], stopped), split by
/// whose fault it is. [`ServeError::exit_code`] gives each its own exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A flag, the config file or a combination of settings is invalid. Exit 2.
    #[error("{0}")]
    Config(String),
    /// A file of the data directory could not be read or written. Exit 2.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An address could not be bound: in use, or not allowed. Exit 3.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server certificate could not be set up. Exit 4.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The registry store could not be opened. Exit 5.
    #[error("cannot open the registry store: {0}")]
    Store(#[from] StoreError),
    /// The telemetry sink could not be opened. Exit 6.
    #[error("cannot open the telemetry sink: {0}")]
    Sink(String),
    /// The cluster's NATS could not be joined. Exit 7.
    #[error("cannot join the cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// A listener failed while serving. Exit 8.
    #[error("{what}: {source}")]
    Listener {
        /// Which listener.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

impl ServeError {
    /// The process exit code `tether serve` ends with for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::Config(_) | ServeError::Io { .. } => 2,
            ServeError::Bind { .. } => 3,
            ServeError::Tls(_) => 4,
            ServeError::Store(_) => 5,
            ServeError::Sink(_) => 6,
            ServeError::Cluster(_) => 7,
            ServeError::Listener { .. } => 8,
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// Binds `addr` for `what`, or says which listener could not have it.
async fn listen(addr: SocketAddr, what: &'static str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { what, addr, source })
}

/// Raises the descriptor limit as far as the listeners' caps need, and shrinks the caps
/// that still do not fit (with a warning that names the numbers).
fn share_descriptors(settings: &mut Settings) {
    let asked =
        settings.max_connections + settings.https_max_connections + settings.admin_max_connections;
    let wanted = u64::try_from(asked)
        .unwrap_or(u64::MAX)
        .saturating_add(descriptors::RESERVE);
    let limit = descriptors::raise_limit(wanted);
    let plan = descriptors::plan(
        limit,
        settings.max_connections,
        settings.https_max_connections,
        settings.admin_max_connections,
    );
    if plan.shrunk {
        tracing::warn!(
            limit,
            mqtt = plan.mqtt,
            https = plan.https,
            admin = plan.admin,
            reserve = descriptors::RESERVE,
            "the open-file limit ({limit}) is below the connection caps asked for; caps cut to \
             MQTT {}, HTTPS {}, admin {} (raise `ulimit -n` to keep them)",
            plan.mqtt,
            plan.https,
            plan.admin
        );
    }
    settings.max_connections = plan.mqtt;
    settings.https_max_connections = plan.https;
    settings.admin_max_connections = plan.admin;
}

/// A started-up server, bound but not yet serving.
#[derive(Debug)]
pub struct Server {
    settings: Settings,
    store: Arc<dyn Store>,
    admin: AdminAuth,
    token: TokenOrigin,
    listener: TcpListener,
    local_addr: SocketAddr,
}

/// Opens everything and binds the admin API's socket.
///
/// # Errors
/// A [`ServeError`] naming the setting, file, address or store at fault.
pub async fn bind(options: ServeOptions) -> Result<Server, ServeError> {
    let mut settings = options.resolve()?;
    share_descriptors(&mut settings);
    admin_token::create_data_dir(&settings.data_dir)?;
    let (admin, token) = admin_token::prepare_admin(&settings)?;
    let store =
        tether_registry::open_store(settings.database.as_deref(), &settings.data_dir).await?;
    let listener = listen(settings.http_addr, "admin API").await?;
    let local_addr = listener
        .local_addr()
        .map_err(io("cannot read the bound address"))?;
    Ok(Server {
        settings,
        store,
        admin,
        token,
        listener,
        local_addr,
    })
}

impl Server {
    /// The admin API's bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The registry store (the bridges share it).
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Where the admin token came from.
    pub fn token_origin(&self) -> &TokenOrigin {
        &self.token
    }

    /// The admin credentials (shared by the telemetry endpoints).
    pub fn admin(&self) -> AdminAuth {
        self.admin.clone()
    }

    /// What `tether serve` prints on start: the URL, the store, and the admin token
    /// (in full only when it was just generated).
    pub fn banner(&self) -> String {
        let mut out = format!(
            "tether: admin API on http://{} (store: {}, data directory: {})\n",
            self.local_addr,
            self.store.backend(),
            self.settings.data_dir.display()
        );
        match &self.token {
            TokenOrigin::Given => {
                out.push_str(
                    "tether: admin token: the one given with --admin-token / TETHER_ADMIN_TOKEN\n",
                );
            }
            TokenOrigin::Generated { token, file } => {
                out.push_str(&format!(
                    "tether: new admin token (shown once; saved to {} with mode 0600):\n\n    {token}\n\n",
                    file.display()
                ));
            }
            TokenOrigin::Stored { file: Some(f), .. } => {
                out.push_str(&format!("tether: admin token file: {}\n", f.display()));
            }
            TokenOrigin::Stored {
                file: None,
                digest_file,
            } => {
                out.push_str(&format!(
                    "tether: admin token: the one printed on first start ({} holds its digest)\n",
                    digest_file.display()
                ));
            }
        }
        out
    }

    /// The admin API's state with `hub`.
    pub fn api_state(&self, hub: Arc<dyn DeviceHub>) -> ApiState {
        ApiState {
            store: self.store.clone(),
            hub,
            admin: self.admin.clone(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Serves the admin API, `routes` beside it (telemetry, metrics) and, when given,
    /// the HTTP device bridge (answered before the admin routes, authorized by device
    /// JWTs) until `shutdown`.
    ///
    /// # Errors
    /// [`ServeError::Listener`] when the admin listener fails.
    pub async fn run(
        self,
        hub: Arc<dyn DeviceHub>,
        routes: Router,
        bridge: Option<DeviceBridge>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let mut router = routes.merge(api::router(self.api_state(hub)));
        if let Some(bridge) = bridge {
            router = device_http::with_bridge(router, bridge);
        }
        let router = api::request::with_deadline(router, self.settings.http_request_timeout);
        let listen = ListenPolicy {
            name: "admin",
            cap: Cap::new(self.settings.admin_max_connections),
            tls: None,
            handshake_timeout: self.settings.connect_timeout,
            per_ip: None,
            admission: Admission::inline(),
        };
        listen::http::serve(
            self.listener,
            listen,
            http_policy(&self.settings),
            router,
            shutdown,
        )
        .await
        .map_err(|source| ServeError::Listener {
            what: "the admin API listener failed",
            source,
        })
    }
}

/// The time bounds of the HTTP listeners.
fn http_policy(settings: &Settings) -> HttpPolicy {
    HttpPolicy {
        header_timeout: settings.http_header_timeout,
        ..HttpPolicy::default()
    }
}

/// The MQTT bridge's options from the settings.
fn mqtt_options(
    settings: &Settings,
    tls: Option<&TlsSetup>,
    per_ip: Option<Arc<ConnectRate>>,
) -> MqttOptions {
    let mut options = MqttOptions::default();
    options.tls_addrs = settings.mqtt_addrs.clone();
    options.plain_addrs = settings.mqtt_plain_addrs.clone();
    options.tls = tls.map(|t| Arc::clone(&t.config));
    options.jwt = JwtPolicy {
        encoding: settings.jwt_encoding,
        ..options.jwt
    };
    options.max_connections = settings.max_connections;
    options.connect_rate_per_ip = per_ip;
    options.connect_timeout = settings.connect_timeout;
    options.idle_timeout = settings.idle_timeout;
    options.write_timeout = settings.write_timeout;
    options.sink_timeout = settings.sink_timeout;
    // A cluster node can miss another node's change (a NATS outage): it reads the
    // store at every CONNECT.
    options.device_cache = settings.cluster.is_none();
    options
}

/// The lines `tether serve` prints about the device side.
fn device_banner(mqtt: &MqttHandle, tls: Option<&TlsSetup>, sink: &TelemetrySink) -> String {
    let mut out = String::new();
    for a in mqtt.tls_addrs() {
        out.push_str(&format!("tether: MQTT over TLS on {a}\n"));
    }
    for a in mqtt.plain_addrs() {
        out.push_str(&format!(
            "tether: MQTT without TLS on {a} (development only)\n"
        ));
    }
    if let Some(ca) = tls.and_then(|t| t.ca_path.as_ref()) {
        out.push_str(&format!(
            "tether: devices must trust the CA in {}\n",
            ca.display()
        ));
    }
    match sink {
        TelemetrySink::Embedded(log) => {
            out.push_str(&format!(
                "tether: telemetry log in {}: {}\n",
                log.root().display(),
                log.limits()
            ));
        }
        TelemetrySink::Nats(_) => out.push_str("tether: telemetry to NATS JetStream\n"),
    }
    out
}

/// The whole gateway: admin API, MQTT bridge over TLS, HTTP device bridge, telemetry
/// sink, `/metrics`, until `shutdown`; then closes devices (recording why), drains and
/// flushes.
///
/// # Errors
/// With admission threads and a SQLite file, the file opened again from those threads:
/// sqlx gives each SQLite connection a thread, which inherits the priority of the
/// thread that opens it, so a connect flood's lookups then yield to connected devices
/// as its handshakes do. PostgreSQL connections have no thread: `None`, the devices'
/// store serves.
async fn admission_store(
    settings: &Settings,
    admission: &Admission,
) -> Result<Option<Arc<dyn Store>>, ServeError> {
    let Some(path) = tether_registry::sqlite_path(settings.database.as_deref(), &settings.data_dir)
    else {
        return Ok(None);
    };
    if !admission.is_pooled() {
        return Ok(None);
    }
    let opened = admission
        .run(async move { tether_registry::SqlStore::open(&path).await })
        .await
        .map_err(|_| ServeError::Config("the admission threads stopped".into()))??;
    Ok(Some(Arc::new(opened)))
}

/// A [`ServeError`] naming what could not start, or the listener that failed.
pub async fn serve(
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Before any listener exists, so that no event goes uncounted.
    api::telemetry::install_recorder();
    let server = bind(options).await?;
    let settings = server.settings().clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sink = open_sink(&settings).await?;
    let tls = if settings.mqtt_addrs.is_empty()
        && settings.https_addrs.is_empty()
        && settings.pubsub_tls_addr.is_none()
        && settings.grpc_addr.is_none()
    {
        None
    } else {
        Some(tls::setup(&settings.tls, clock.unix_secs())?)
    };
    // One connect-rate table for every device listener: a flood on 8883 and 8443 from
    // one address counts once.
    let per_ip = settings
        .connect_rate_per_ip
        .map(|rate| Arc::new(ConnectRate::new(rate)));
    // One pool of admission threads for every device listener.
    let admission = if settings.connect_priority_low {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Admission::start(threads).map_err(|source| ServeError::Io {
            what: "cannot start the admission threads".into(),
            source,
        })?
    } else {
        Admission::inline()
    };
    let mut mqtt_options = mqtt_options(&settings, tls.as_ref(), per_ip.clone());
    mqtt_options.admission_store = admission_store(&settings, &admission).await?;
    mqtt_options.admission = admission.clone();
    // One key cache, one clock and one policy for both device bridges.
    let deps = BridgeDeps::new(server.store(), sink.measured()).with_clock(Arc::clone(&clock));
    let log_budget = Arc::clone(&deps.log_budget);
    let bridge = DeviceBridge::new(
        &deps,
        mqtt_options.jwt,
        mqtt_options.limits,
        mqtt_options.sink_timeout,
    );
    let mut https = Vec::new();
    for addr in &settings.https_addrs {
        https.push(listen(*addr, "HTTP device bridge").await?);
    }
    let mqtt = mqtt::start(mqtt_options, deps).await.map_err(|e| match e {
        MqttError::Bind { addr, source } => ServeError::Bind {
            what: "MQTT",
            addr,
            source,
        },
        other => ServeError::Config(other.to_string()),
    })?;

    // One shutdown signal fans out to every listener.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let pubsub_stop = stop_rx.clone();
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let pubsub = PubSubApi::open(&settings, &sink, server.store(), Arc::clone(&clock)).await?;
    let grpc = match settings.grpc_addr {
        Some(addr) => Some(GrpcApi::bind(addr).await?),
        None => None,
    };
    print!("{}", server.banner());
    print!("{}", device_banner(&mqtt, tls.as_ref(), &sink));
    let hub: Arc<dyn DeviceHub> = match &settings.cluster {
        None => mqtt.hub(),
        Some(cluster) => {
            let hub = ClusterHub::start(
                cluster.clone(),
                mqtt.connections(),
                server.store(),
                Arc::clone(&clock),
            )
            .await?;
            println!(
                "tether: cluster node '{}': commands, configs and takeovers cross nodes over {}",
                cluster.node, cluster.url
            );
            hub
        }
    };
    // The Pub/Sub API's services ride on the gRPC listener too.
    let grpc_task = match (grpc, &tls) {
        (Some(grpc), Some(tls)) => {
            let with = if pubsub.is_some() {
                " and the Pub/Sub API"
            } else {
                ""
            };
            println!(
                "tether: Device Manager API over gRPC{with} on {} (TLS; the admin token as a bearer token)",
                grpc.addr()
            );
            Some(grpc.spawn(
                &tls.config,
                server.api_state(Arc::clone(&hub)),
                pubsub.as_ref(),
                pubsub_stop.clone(),
            ))
        }
        _ => None,
    };
    let pubsub_task = pubsub.map(|api| {
        if let Some(addr) = api.addr() {
            println!(
                "tether: Pub/Sub API (gRPC, plaintext) on {addr}: PUBSUB_EMULATOR_HOST={addr}"
            );
        }
        if let Some(addr) = api.tls_addr() {
            println!("tether: Pub/Sub API over TLS on {addr} (the admin token as a bearer token)");
        }
        api.spawn(
            tls.as_ref().map(|t| Arc::clone(&t.config)),
            server.admin(),
            pubsub_stop,
        )
    });
    let mut https_tasks = Vec::new();
    // One cap for every HTTPS listener of the bridge.
    let https_cap = Cap::new(settings.https_max_connections);
    let https_router = api::request::with_deadline(
        device_http::bridge_router(bridge.clone()),
        settings.http_request_timeout,
    );
    for listener in https {
        let Some(tls) = &tls else { break };
        if let Ok(addr) = listener.local_addr() {
            println!("tether: HTTP device bridge over TLS on {addr} (and on the admin address)");
        }
        https_tasks.push(tokio::spawn(device_http::serve_https(
            listener,
            Arc::clone(&tls.config),
            https_router.clone(),
            https_cap.clone(),
            DeviceGate {
                per_ip: per_ip.clone(),
                admission: admission.clone(),
            },
            http_policy(&settings),
            stopped(),
        )));
    }
    let metrics_token = settings
        .metrics_token
        .as_deref()
        .map(|t| AdminAuth::from_token(t, "the --metrics-token given to `tether serve`"));
    let routes = api::telemetry::routes(server.admin(), metrics_token, Some(sink.reader())).merge(
        api::console::routes(
            server.api_state(Arc::clone(&hub)),
            Some(sink.reader()),
            JwtPolicy {
                encoding: settings.jwt_encoding,
                ..JwtPolicy::default()
            },
        ),
    );
    let retention = spawn_retention(&sink, clock);
    let upkeep = api::telemetry::spawn_metrics_upkeep();
    let log_summary = log_budget.spawn_summary();
    // Held until the MQTT connections are closed: a cluster hub relays their
    // departures (and stops answering for them) while they go.
    let hub_until_closed = Arc::clone(&hub);
    let result = server.run(hub, routes, Some(bridge), stopped()).await;
    for task in https_tasks {
        let _ = task.await;
    }
    if let Some(task) = pubsub_task {
        let _ = task.await;
    }
    if let Some(task) = grpc_task {
        let _ = task.await;
    }
    mqtt.shutdown(Duration::from_secs(10)).await;
    drop(hub_until_closed);
    retention.abort();
    upkeep.abort();
    log_summary.abort();
    sink.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_node_reads_the_store_at_every_connect() -> Result<(), ServeError> {
        let single = ServeOptions::default().resolve()?;
        assert!(mqtt_options(&single, None, None).device_cache);
        let node = ServeOptions {
            cluster_nats: Some("nats://127.0.0.1:4222".into()),
            ..ServeOptions::default()
        }
        .resolve()?;
        assert!(
            !mqtt_options(&node, None, None).device_cache,
            "a cluster node can miss another node's change"
        );
        Ok(())
    }
}
