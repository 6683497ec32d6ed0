//! `tether serve`: settings, the data directory, the admin token, the store, and the
//! HTTP listener.
//!
//! ```text
//!  ServeOptions (flags) + config file ─▶ Settings ─▶ bind(): data dir, admin token,
//!  open_store, TcpListener ─▶ Server ─▶ run(hub, shutdown): admin API (+ MQTT later)
//! ```
//!
//! [`bind`] does everything that can fail on start-up and reports the bound address,
//! so `--http-addr 127.0.0.1:0` works in tests. [`Server::run`] takes the
//! [`DeviceHub`]: the MQTT bridge passes its own and runs its listener beside the API.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tether_registry::model::Timestamp;
use tether_registry::{Store, StoreError};
use tokio::net::TcpListener;

use tether_jwt::EncodingPolicy;
use tether_log::RetentionPolicy;

use crate::api::auth::{AdminAuth, DIGEST_LEN, token_digest};
use crate::api::{self, ApiState, Clock};
use crate::device_http::{self, DeviceBridge};
use crate::hub::{DeviceHub, Disconnected};
use crate::mqtt::{self, Clock as _, MqttDeps, MqttOptions, SystemClock};
use crate::tls::{self, TlsSource};

/// Default data directory of the embedded default.
pub const DEFAULT_DATA_DIR: &str = "./tether-data";
/// Default address of the admin API.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// The plaintext admin token file (mode 0600), written on first start.
pub const TOKEN_FILE: &str = "admin-token";
/// The token's SHA-256 (hex): what the server checks against.
pub const TOKEN_DIGEST_FILE: &str = "admin-token.sha256";
/// Shortest admin token accepted from `--admin-token`.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The config file or an option is invalid.
    #[error("{0}")]
    Config(String),
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("cannot open the registry store: {0}")]
    Store(#[from] StoreError),
    /// The telemetry sink could not be opened.
    #[error("cannot open the telemetry sink: {0}")]
    Sink(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// Options of `tether serve`; `None` falls back to the config file, then the default.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// A TOML config file.
    pub config: Option<PathBuf>,
    /// Data directory (SQLite file, admin token).
    pub data_dir: Option<PathBuf>,
    /// Admin API address.
    pub http_addr: Option<SocketAddr>,
    /// The admin token to accept (instead of the generated one).
    pub admin_token: Option<String>,
    /// A database URL (`postgres://…`, `sqlite://PATH`); default: SQLite in the data dir.
    pub database: Option<String>,
    /// MQTT-over-TLS listeners (default `0.0.0.0:8883`).
    pub mqtt_addrs: Vec<SocketAddr>,
    /// Plain-TCP MQTT listeners: development only, none by default.
    pub mqtt_plain_addrs: Vec<SocketAddr>,
    /// HTTPS listeners of the HTTP device bridge (default `0.0.0.0:8443`).
    pub https_addrs: Vec<SocketAddr>,
    /// Names for the embedded CA's server certificate (default: localhost, this host,
    /// 127.0.0.1, ::1).
    pub tls_hostnames: Vec<String>,
    /// The operator's own certificate chain (PEM) instead of the embedded CA.
    pub tls_cert: Option<PathBuf>,
    /// The key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `lenient` (IoT Core: padding and `+/` accepted with a warning) or `strict`.
    pub jwt_encoding: Option<String>,
    /// Send telemetry to NATS JetStream at this URL instead of the embedded log.
    pub nats: Option<String>,
    /// Join a cluster of nodes on one PostgreSQL store: the delivery hub crosses nodes
    /// over core NATS at this URL.
    pub cluster_nats: Option<String>,
    /// This node's name in the cluster (default: host name and process id).
    pub node_name: Option<String>,
    /// Most device connections at once (default 10,000).
    pub max_connections: Option<usize>,
    /// Delete embedded-log segments older than this many hours (default: keep).
    pub telemetry_retention_hours: Option<u64>,
    /// Keep at most this many bytes per telemetry topic (default: no limit).
    pub telemetry_max_bytes: Option<u64>,
}

/// The config file (every key optional; unknown keys are errors).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    data_dir: Option<PathBuf>,
    http_addr: Option<String>,
    database: Option<String>,
    mqtt_addrs: Option<Vec<String>>,
    mqtt_plain_addrs: Option<Vec<String>>,
    https_addrs: Option<Vec<String>>,
    tls_hostnames: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    jwt_encoding: Option<String>,
    nats: Option<String>,
    cluster_nats: Option<String>,
    node_name: Option<String>,
    telemetry_retention_hours: Option<u64>,
    telemetry_max_bytes: Option<u64>,
    max_connections: Option<usize>,
}

/// The cluster settings when a cluster NATS URL is given.
fn cluster_config(
    url: Option<String>,
    node: Option<String>,
) -> Option<crate::cluster::ClusterConfig> {
    let url = url.filter(|u| !u.is_empty())?;
    let node = node.filter(|n| !n.is_empty()).unwrap_or_else(|| {
        let host = crate::tls::this_host().unwrap_or_else(|| "node".into());
        format!("{host}-{}", std::process::id())
    });
    Some(crate::cluster::ClusterConfig {
        url,
        prefix: "tether.hub".into(),
        node,
    })
}

/// Default MQTT-over-TLS address (IoT Core's port).
pub const DEFAULT_MQTT_ADDR: &str = "0.0.0.0:8883";
/// Default HTTPS address of the HTTP device bridge.
pub const DEFAULT_HTTPS_ADDR: &str = "0.0.0.0:8443";

fn parse_addrs(key: &str, list: Vec<String>) -> Result<Vec<SocketAddr>, ServeError> {
    list.into_iter()
        .map(|text| {
            text.parse().map_err(|_| {
                ServeError::Config(format!(
                    "config key {key}: '{text}' is not an address like 0.0.0.0:8883"
                ))
            })
        })
        .collect()
}

/// The settings in force after flags, file and defaults are merged.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Admin API address to bind.
    pub http_addr: SocketAddr,
    /// Database URL, if not the embedded SQLite.
    pub database: Option<String>,
    /// Admin token given on the command line or in the environment.
    pub admin_token: Option<String>,
    /// MQTT-over-TLS listeners (empty: none).
    pub mqtt_addrs: Vec<SocketAddr>,
    /// Plain-TCP MQTT listeners (development).
    pub mqtt_plain_addrs: Vec<SocketAddr>,
    /// HTTPS listeners of the HTTP device bridge (empty: none).
    pub https_addrs: Vec<SocketAddr>,
    /// Where the server certificate comes from.
    pub tls: TlsSource,
    /// JWT base64 strictness.
    pub jwt_encoding: EncodingPolicy,
    /// NATS URL for telemetry, if not the embedded log.
    pub nats: Option<String>,
    /// The cluster's NATS and this node's name, when clustered.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// Embedded log retention.
    pub retention: RetentionPolicy,
    /// Most device connections at once.
    pub max_connections: usize,
}

impl ServeOptions {
    /// Merges flags over the config file over the defaults.
    pub fn resolve(self) -> Result<Settings, ServeError> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(io(format!(
                    "cannot read the config file {}",
                    path.display()
                )))?;
                toml::from_str::<ConfigFile>(&text).map_err(|e| {
                    ServeError::Config(format!("config file {}: {e}", path.display()))
                })?
            }
            None => ConfigFile::default(),
        };
        let http_addr = match (self.http_addr, file.http_addr) {
            (Some(a), _) => a,
            (None, Some(text)) => text.parse().map_err(|_| {
                ServeError::Config(format!(
                    "config key http_addr = '{text}' is not an address like 127.0.0.1:8080"
                ))
            })?,
            (None, None) => DEFAULT_HTTP_ADDR
                .parse()
                .map_err(|_| ServeError::Config("bad built-in address".into()))?,
        };
        let admin_token = self.admin_token.filter(|t| !t.is_empty());
        if let Some(t) = &admin_token
            && t.len() < MIN_TOKEN_LEN
        {
            return Err(ServeError::Config(format!(
                "--admin-token / TETHER_ADMIN_TOKEN is {} characters; use at least {MIN_TOKEN_LEN} (or leave it out to have one generated)",
                t.len()
            )));
        }
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let mqtt_addrs = match (self.mqtt_addrs.is_empty(), file.mqtt_addrs) {
            (false, _) => self.mqtt_addrs,
            (true, Some(list)) => parse_addrs("mqtt_addrs", list)?,
            (true, None) => parse_addrs("mqtt_addrs", vec![DEFAULT_MQTT_ADDR.to_owned()])?,
        };
        let mqtt_plain_addrs = match (self.mqtt_plain_addrs.is_empty(), file.mqtt_plain_addrs) {
            (false, _) => self.mqtt_plain_addrs,
            (true, Some(list)) => parse_addrs("mqtt_plain_addrs", list)?,
            (true, None) => Vec::new(),
        };
        let https_addrs = match (self.https_addrs.is_empty(), file.https_addrs) {
            (false, _) => self.https_addrs,
            (true, Some(list)) => parse_addrs("https_addrs", list)?,
            (true, None) => parse_addrs("https_addrs", vec![DEFAULT_HTTPS_ADDR.to_owned()])?,
        };
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => TlsSource::Files { cert, key },
            (None, None) => {
                let mut names = self.tls_hostnames;
                if names.is_empty() {
                    names = file.tls_hostnames.unwrap_or_else(tls::default_host_names);
                }
                TlsSource::Embedded {
                    data_dir: data_dir.clone(),
                    host_names: names,
                }
            }
            _ => {
                return Err(ServeError::Config(
                    "--tls-cert and --tls-key (tls_cert, tls_key) go together: give both or neither"
                        .into(),
                ));
            }
        };
        let jwt_encoding = match self.jwt_encoding.or(file.jwt_encoding).as_deref() {
            None | Some("lenient") => EncodingPolicy::Lenient,
            Some("strict") => EncodingPolicy::Strict,
            Some(other) => {
                return Err(ServeError::Config(format!(
                    "jwt_encoding '{other}' is not 'lenient' or 'strict'"
                )));
            }
        };
        let retention = RetentionPolicy {
            max_age_micros: self
                .telemetry_retention_hours
                .or(file.telemetry_retention_hours)
                .map(|h| i64::try_from(h.saturating_mul(3_600_000_000)).unwrap_or(i64::MAX)),
            max_bytes: self.telemetry_max_bytes.or(file.telemetry_max_bytes),
        };
        Ok(Settings {
            data_dir,
            http_addr,
            database: self.database.or(file.database).filter(|d| !d.is_empty()),
            admin_token,
            mqtt_addrs,
            mqtt_plain_addrs,
            https_addrs,
            tls,
            jwt_encoding,
            nats: self.nats.or(file.nats).filter(|n| !n.is_empty()),
            cluster: cluster_config(
                self.cluster_nats.or(file.cluster_nats),
                // An empty flag or variable falls back to the file's name.
                self.node_name.filter(|n| !n.is_empty()).or(file.node_name),
            ),
            retention,
            max_connections: self
                .max_connections
                .or(file.max_connections)
                .unwrap_or(10_000),
        })
    }
}

/// Where the admin token came from, for the start-up banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `--admin-token` or `TETHER_ADMIN_TOKEN`.
    Given,
    /// Generated now; the plaintext is shown once.
    Generated {
        /// The token.
        token: String,
        /// Where it was saved (mode 0600).
        file: PathBuf,
    },
    /// Generated on an earlier start.
    Stored {
        /// The plaintext file, if it is still there.
        file: Option<PathBuf>,
        /// The digest file.
        digest_file: PathBuf,
    },
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

/// The server's wall clock for the API: the MQTT bridge's [`SystemClock`], so the
/// process reads the time in one place.
pub fn system_clock() -> Clock {
    Arc::new(|| Timestamp(SystemClock.unix_micros()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; DIGEST_LEN]> {
    let text = text.trim();
    if text.len() != DIGEST_LEN * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; DIGEST_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Writes `contents` to a new file readable only by the owner.
fn write_private(path: &Path, contents: &str) -> Result<(), ServeError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(io(format!("cannot write {}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(io(format!("cannot write {}", path.display())))
}

fn new_token() -> Result<String, ServeError> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ServeError::Config("the system random generator failed".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Chooses the admin token: the given one, the stored digest, or a new one.
fn prepare_admin(settings: &Settings) -> Result<(AdminAuth, TokenOrigin), ServeError> {
    let dir = &settings.data_dir;
    let file = dir.join(TOKEN_FILE);
    let digest_file = dir.join(TOKEN_DIGEST_FILE);
    if let Some(token) = &settings.admin_token {
        let auth = AdminAuth::from_token(
            token,
            "the value of --admin-token / TETHER_ADMIN_TOKEN given to `tether serve`",
        );
        return Ok((auth, TokenOrigin::Given));
    }
    if digest_file.exists() {
        let text = std::fs::read_to_string(&digest_file)
            .map_err(io(format!("cannot read {}", digest_file.display())))?;
        let digest = unhex(&text).ok_or_else(|| {
            ServeError::Config(format!(
                "{} does not hold a SHA-256 hex digest; delete it (and {}) to generate a new admin token",
                digest_file.display(),
                file.display()
            ))
        })?;
        let plain = file.exists().then(|| file.clone());
        let hint = match &plain {
            Some(f) => format!("the file {}", f.display()),
            None => format!(
                "the token printed when {} was created (delete that file to generate a new one)",
                digest_file.display()
            ),
        };
        return Ok((
            AdminAuth::from_digest(digest, hint),
            TokenOrigin::Stored {
                file: plain,
                digest_file,
            },
        ));
    }
    let token = new_token()?;
    write_private(&file, &format!("{token}\n"))?;
    write_private(&digest_file, &format!("{}\n", hex(&token_digest(&token))))?;
    let auth = AdminAuth::from_token(&token, format!("the file {}", file.display()));
    Ok((auth, TokenOrigin::Generated { token, file }))
}

fn create_data_dir(dir: &Path) -> Result<(), ServeError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io(format!(
        "cannot create the data directory {}",
        dir.display()
    )))
}

/// Opens everything and binds the admin API's socket.
pub async fn bind(options: ServeOptions) -> Result<Server, ServeError> {
    let settings = options.resolve()?;
    create_data_dir(&settings.data_dir)?;
    let (admin, token) = prepare_admin(&settings)?;
    let store =
        tether_registry::open_store(settings.database.as_deref(), &settings.data_dir).await?;
    let listener = TcpListener::bind(settings.http_addr)
        .await
        .map_err(io(format!("cannot listen on {}", settings.http_addr)))?;
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

    /// The registry store (the MQTT bridge shares it).
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Where the admin token came from.
    pub fn token_origin(&self) -> &TokenOrigin {
        &self.token
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
            clock: system_clock(),
        }
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        hub: Arc<dyn DeviceHub>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        self.run_with(hub, axum::Router::new(), shutdown).await
    }

    /// Serves the admin API plus `extra` routes (telemetry, metrics) until `shutdown`.
    pub async fn run_with(
        self,
        hub: Arc<dyn DeviceHub>,
        extra: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let router = extra.merge(api::router(self.api_state(hub)));
        crate::http::serve_http(self.listener, router, shutdown)
            .await
            .map_err(io("the admin API listener failed"))
    }

    /// Serves the admin API, `extra` routes and the HTTP device bridge (answered before
    /// the admin routes, authorized by device JWTs) until `shutdown`.
    pub async fn run_gateway(
        self,
        hub: Arc<dyn DeviceHub>,
        extra: axum::Router,
        bridge: DeviceBridge,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let router =
            device_http::with_bridge(extra.merge(api::router(self.api_state(hub))), bridge);
        crate::http::serve_http(self.listener, router, shutdown)
            .await
            .map_err(io("the admin API listener failed"))
    }

    /// The admin credentials (shared by the telemetry endpoints).
    pub fn admin(&self) -> AdminAuth {
        self.admin.clone()
    }
}

/// Binds, prints the banner, and serves the admin API alone (no device listeners)
/// until `shutdown`.
pub async fn serve_api_only(
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let server = bind(options).await?;
    print!("{}", server.banner());
    server.run(Arc::new(Disconnected), shutdown).await
}

/// The whole gateway: admin API, MQTT bridge over TLS, telemetry sink, `/metrics`,
/// until `shutdown`; then closes devices (recording why), drains and flushes.
pub async fn serve(
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let server = bind(options).await?;
    let settings = server.settings().clone();
    let clock = system_clock();
    let sink = crate::gateway::open_sink(&settings).await?;
    let tls = if settings.mqtt_addrs.is_empty() && settings.https_addrs.is_empty() {
        None
    } else {
        Some(
            tls::setup(&settings.tls, clock().secs())
                .map_err(|e| ServeError::Config(e.to_string()))?,
        )
    };
    let defaults = MqttOptions::default();
    let mqtt_options = MqttOptions {
        tls_addrs: settings.mqtt_addrs.clone(),
        plain_addrs: settings.mqtt_plain_addrs.clone(),
        tls: tls.as_ref().map(|t| Arc::clone(&t.config)),
        jwt: mqtt::JwtPolicy {
            encoding: settings.jwt_encoding,
            ..defaults.jwt
        },
        max_connections: settings.max_connections,
        ..defaults
    };
    // One key cache and one policy for both device bridges.
    let deps = MqttDeps::new(server.store(), sink.sink());
    let bridge = DeviceBridge::new(&deps, mqtt_options.jwt, mqtt_options.limits);
    let mut https = Vec::new();
    for addr in &settings.https_addrs {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(io(format!("cannot listen on {addr} (HTTP device bridge)")))?;
        https.push(listener);
    }
    let mqtt = mqtt::start(mqtt_options, deps)
        .await
        .map_err(|e| ServeError::Config(e.to_string()))?;

    // One shutdown signal fans out to every listener.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    print!("{}", server.banner());
    print!("{}", crate::gateway::banner(&mqtt, tls.as_ref(), &sink));
    let hub: Arc<dyn DeviceHub> = match &settings.cluster {
        None => mqtt.hub(),
        Some(cluster) => {
            let hub = crate::cluster::ClusterHub::start(
                cluster.clone(),
                mqtt.connections(),
                server.store(),
                Arc::new(mqtt::SystemClock),
            )
            .await
            .map_err(|e| ServeError::Config(e.to_string()))?;
            println!(
                "tether: cluster node '{}': commands, configs and takeovers cross nodes over {}",
                cluster.node, cluster.url
            );
            hub
        }
    };
    let mut https_tasks = Vec::new();
    for listener in https {
        let Some(tls) = &tls else { break };
        if let Ok(addr) = listener.local_addr() {
            println!("tether: HTTP device bridge over TLS on {addr} (and on the admin address)");
        }
        https_tasks.push(tokio::spawn(device_http::serve_https(
            listener,
            Arc::clone(&tls.config),
            device_http::bridge_router(bridge.clone()),
            stopped(),
        )));
    }
    let extra = crate::gateway::extra_routes(server.admin(), &sink);
    let retention = crate::gateway::spawn_retention(&sink, clock);
    // Held until the MQTT connections are closed: a cluster hub relays their
    // departures (and stops answering for them) while they go.
    let hub_until_closed = Arc::clone(&hub);
    let result = server.run_gateway(hub, extra, bridge, stopped()).await;
    for task in https_tasks {
        let _ = task.await;
    }
    mqtt.shutdown(std::time::Duration::from_secs(10)).await;
    drop(hub_until_closed);
    retention.abort();
    sink.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let d = token_digest("abc");
        assert_eq!(unhex(&hex(&d)), Some(d));
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn token_is_generated_once_and_private() -> Result<(), ServeError> {
        let dir = tempfile::tempdir().map_err(io("tempdir"))?;
        let settings = ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            ..ServeOptions::default()
        }
        .resolve()?;
        let (auth, origin) = prepare_admin(&settings)?;
        let TokenOrigin::Generated { token, file } = origin else {
            panic!("expected a new token, got {origin:?}");
        };
        assert!(auth.check(Some(&format!("Bearer {token}"))).is_ok());
        let saved = std::fs::read_to_string(&file).map_err(io("read"))?;
        assert_eq!(saved.trim(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file)
                .map_err(io("stat"))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, origin) = prepare_admin(&settings)?;
        assert!(matches!(origin, TokenOrigin::Stored { file: Some(_), .. }));
        assert!(again.check(Some(&format!("Bearer {token}"))).is_ok());
        Ok(())
    }

    #[test]
    fn the_sample_config_parses() -> Result<(), ServeError> {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tether.toml");
        let s = ServeOptions {
            config: Some(sample),
            ..ServeOptions::default()
        }
        .resolve()?;
        assert_eq!(s.http_addr.to_string(), DEFAULT_HTTP_ADDR);
        Ok(())
    }

    #[test]
    fn config_file_keys_are_checked() -> Result<(), ServeError> {
        let dir = tempfile::tempdir().map_err(io("tempdir"))?;
        let path = dir.path().join("tether.toml");
        std::fs::write(&path, "http_addr = \"127.0.0.1:9\"\ncolour = 1\n").map_err(io("write"))?;
        let e = ServeOptions {
            config: Some(path.clone()),
            ..ServeOptions::default()
        }
        .resolve();
        assert!(
            matches!(&e, Err(ServeError::Config(m)) if m.contains("colour")),
            "{e:?}"
        );
        std::fs::write(&path, "http_addr = \"127.0.0.1:9\"\n").map_err(io("write"))?;
        let s = ServeOptions {
            config: Some(path),
            ..ServeOptions::default()
        }
        .resolve()?;
        assert_eq!(s.http_addr.port(), 9);
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(s.cluster.is_none(), "no cluster unless asked");
        Ok(())
    }

    #[test]
    fn cluster_settings_from_the_file_and_flags() -> Result<(), ServeError> {
        let dir = tempfile::tempdir().map_err(io("tempdir"))?;
        let path = dir.path().join("tether.toml");
        std::fs::write(
            &path,
            "cluster_nats = \"nats://n:4222\"\nnode_name = \"gw-1\"\n",
        )
        .map_err(io("write"))?;
        let s = ServeOptions {
            config: Some(path.clone()),
            ..ServeOptions::default()
        }
        .resolve()?;
        let cluster = s.cluster.ok_or(ServeError::Config("no cluster".into()))?;
        assert_eq!(
            (
                cluster.url.as_str(),
                cluster.node.as_str(),
                cluster.prefix.as_str()
            ),
            ("nats://n:4222", "gw-1", "tether.hub")
        );
        // A flag wins over the file; without a name the node gets a unique default.
        let s = ServeOptions {
            config: Some(path),
            cluster_nats: Some("nats://other:4222".into()),
            node_name: Some(String::new()),
            ..ServeOptions::default()
        }
        .resolve()?;
        let cluster = s.cluster.ok_or(ServeError::Config("no cluster".into()))?;
        assert_eq!(cluster.url, "nats://other:4222");
        assert_eq!(
            cluster.node, "gw-1",
            "an empty flag does not erase the file's name"
        );
        Ok(())
    }
}
