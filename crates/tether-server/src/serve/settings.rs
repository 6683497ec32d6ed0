//! The settings of `tether serve`, declared once.
//!
//! ```text
//!  ServeOptions (flags, env) ─┐ overlay: a value given on the command line wins,
//!  ServeOptions (tether.toml) ┘ an empty one counts as not given
//!        └──▶ resolve(): defaults, checks ──▶ Settings (what the server runs with)
//! ```
//!
//! [`ServeOptions`] is both the clap arguments of `tether serve` and the config file's
//! schema: a new setting is one field here (doc comment = `--help` text, field name =
//! flag and config key) plus the line in [`ServeOptions::resolve`] that gives it its
//! default. The sample `tether.toml` documents every key; a test holds it to that.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tether_jwt::EncodingPolicy;
use tether_log::{RetentionPolicy, TotalCap};

use super::ServeError;
use crate::cluster::ClusterConfig;
use crate::tls::{self, TlsSource};

/// Default data directory of the embedded default.
pub const DEFAULT_DATA_DIR: &str = "./tether-data";
/// Default address of the admin API.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// Default MQTT-over-TLS address (IoT Core's port).
pub const DEFAULT_MQTT_ADDR: &str = "0.0.0.0:8883";
/// Default HTTPS address of the HTTP device bridge.
pub const DEFAULT_HTTPS_ADDR: &str = "0.0.0.0:8443";
/// Default address of the Pub/Sub-compatible gRPC API (the Pub/Sub emulator's port).
pub const DEFAULT_PUBSUB_ADDR: &str = "127.0.0.1:8085";
/// Default address of the Device Manager API over gRPC (TLS, the admin token).
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:8081";
/// Shortest admin token accepted from `--admin-token`.
pub const MIN_TOKEN_LEN: usize = 16;
/// Least microseconds between two fsyncs of the embedded log, unless configured:
/// none. An fsync's own time already groups what arrives during it; an interval
/// only pays once it is several times longer (BENCHMARKS.md, "The embedded log's
/// fsync"), at that much more PUBACK latency, which is the operator's call.
pub const DEFAULT_TELEMETRY_COMMIT_INTERVAL_US: u64 = 0;
/// Longest microseconds a group commit waits for busy device threads, unless
/// configured. Under load it makes one fsync cover tens of messages instead of a few;
/// a server with nothing left to do commits at once (BENCHMARKS.md).
pub const DEFAULT_TELEMETRY_BUSY_WAIT_US: u64 = 1000;

/// Options of `tether serve`, from flags or from the config file; with none it runs the
/// embedded default in ./tether-data.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeOptions {
    /// A TOML config file with the same settings as the flags (see the sample
    /// tether.toml); flags override it.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Data directory: SQLite database, admin token, embedded CA, telemetry log
    /// [default: ./tether-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the admin API [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// The admin token to accept instead of the generated one (at least 16 characters).
    /// Not read from the config file.
    #[arg(long, env = "TETHER_ADMIN_TOKEN", hide_env_values = true)]
    #[serde(skip)]
    pub admin_token: Option<String>,
    /// Database URL: postgres://USER@HOST/DB or sqlite://PATH [default: SQLite in the data
    /// directory].
    #[arg(
        long,
        env = "TETHER_DATABASE",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database: Option<String>,
    /// MQTT-over-TLS listener; repeat for a second one, e.g. 0.0.0.0:443
    /// [default: 0.0.0.0:8883].
    #[arg(long = "mqtt-addr", value_name = "ADDR")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mqtt_addrs: Vec<SocketAddr>,
    /// Plain-TCP MQTT listener, for development only (devices send tokens in clear text).
    #[arg(long = "mqtt-plain-addr", value_name = "ADDR")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mqtt_plain_addrs: Vec<SocketAddr>,
    /// HTTPS listener of the HTTP device bridge (publishEvent, setState, config), with the
    /// gateway's certificate; repeatable [default: 0.0.0.0:8443]. The bridge also answers
    /// on --http-addr.
    #[arg(long = "https-addr", value_name = "ADDR")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub https_addrs: Vec<SocketAddr>,
    /// A name added to the generated server certificate, beside localhost, this host's
    /// name, 127.0.0.1 and ::1; repeat for more.
    #[arg(long = "tls-hostname", value_name = "NAME")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_hostnames: Vec<String>,
    /// Your own server certificate chain (PEM) instead of the embedded CA's.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// JWT base64 policy: lenient (IoT Core: padding and +/ accepted, with a warning) or
    /// strict [default: lenient].
    #[arg(long, value_name = "POLICY", value_parser = ["lenient", "strict"])]
    pub jwt_encoding: Option<String>,
    /// Send telemetry to NATS JetStream at this URL instead of the embedded log.
    #[arg(long, env = "TETHER_NATS", value_name = "URL")]
    pub nats: Option<String>,
    /// Join a cluster: nodes on one PostgreSQL store relay commands, configs and
    /// takeovers to each other over core NATS at this URL.
    #[arg(long, env = "TETHER_CLUSTER_NATS", value_name = "URL")]
    pub cluster_nats: Option<String>,
    /// This node's name in the cluster [default: host name and process id].
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Most device connections at once [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Seconds a device has for the TLS handshake, and again for its CONNECT and
    /// authentication [default: 10].
    #[arg(long, value_name = "SECS")]
    pub connect_timeout_secs: Option<u64>,
    /// Seconds without a message or PINGREQ before a device connection is closed, as
    /// IoT Core did [default: 1200].
    #[arg(long, value_name = "SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds a write to a device may block before the connection is cut (a stalled
    /// reader) [default: 30].
    #[arg(long, value_name = "SECS")]
    pub write_timeout_secs: Option<u64>,
    /// Seconds the telemetry sink may take to make a message durable; past it the message
    /// counts as failed: no PUBACK, and the connection closes so the device sends it
    /// again after reconnecting [default: 5].
    #[arg(long, value_name = "SECS")]
    pub sink_timeout_secs: Option<u64>,
    /// Connects a second allowed from one source address on the device listeners (MQTT,
    /// HTTPS), in bursts of up to twice that; more are closed before any TLS work.
    /// 0: no limit [default: 100].
    #[arg(long, value_name = "N")]
    pub connect_rate_per_ip: Option<u32>,
    /// Where device TLS handshakes and CONNECT authentication run: `low` on threads
    /// below the connected devices' traffic, so that a flood of connects cannot delay
    /// their PUBACKs, or `normal` on the same threads [default: low].
    #[arg(long, value_name = "PRIORITY", value_parser = ["low", "normal"])]
    pub connect_priority: Option<String>,
    /// The Device Manager API over gRPC (google.cloud.iot.v1, the default transport of
    /// Google's admin clients), over TLS with the gateway's certificate; every call needs
    /// the admin token as a bearer token. It also serves the Pub/Sub API when that is on.
    /// `off` for none [default: 127.0.0.1:8081].
    #[arg(long, value_name = "ADDR|off")]
    pub grpc_addr: Option<String>,
    /// The Pub/Sub-compatible gRPC API, plaintext like Google's emulator (point
    /// PUBSUB_EMULATOR_HOST here); `off` for none [default: 127.0.0.1:8085].
    #[arg(long, value_name = "ADDR|off")]
    pub pubsub_addr: Option<String>,
    /// The Pub/Sub API over TLS (the gateway's certificate), for backends on other
    /// hosts: every call needs the admin token as a bearer token [default: off].
    #[arg(long, value_name = "ADDR")]
    pub pubsub_tls_addr: Option<SocketAddr>,
    /// Most streaming pulls open at once on the Pub/Sub API [default: 1000].
    #[arg(long, value_name = "N")]
    pub pubsub_max_streams: Option<usize>,
    /// Messages in flight per push subscription (POSTed, not yet answered)
    /// [default: 100].
    #[arg(long, value_name = "N")]
    pub pubsub_push_max_in_flight: Option<usize>,
    /// Sent as the Authorization header of every push POST, e.g. "Bearer <token>".
    #[arg(
        long,
        env = "TETHER_PUBSUB_PUSH_AUTHORIZATION",
        hide_env_values = true,
        value_name = "VALUE"
    )]
    pub pubsub_push_authorization: Option<String>,
    /// Signs every push POST: X-Tether-Signature: t=<unix secs>,v1=<hex HMAC-SHA256 of
    /// "<t>.<body>"> with this secret (at least 16 characters).
    #[arg(
        long,
        env = "TETHER_PUBSUB_PUSH_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub pubsub_push_secret: Option<String>,
    /// Most connections at once on the HTTPS device bridge's listeners [default: 4096].
    #[arg(long, value_name = "N")]
    pub https_max_connections: Option<usize>,
    /// Most connections at once on the admin API's listener [default: 256].
    #[arg(long, value_name = "N")]
    pub admin_max_connections: Option<usize>,
    /// Seconds an HTTP client (admin API, device bridge) has to send a complete request
    /// head, from connecting and again after each response: it also closes idle
    /// keep-alive connections [default: 10].
    #[arg(long, value_name = "SECS")]
    pub http_header_timeout_secs: Option<u64>,
    /// Seconds an HTTP request may take in all, body included, before it is answered
    /// 504 DEADLINE_EXCEEDED [default: 60].
    #[arg(long, value_name = "SECS")]
    pub http_request_timeout_secs: Option<u64>,
    /// A bearer token Prometheus must send to read /metrics (at least 16 characters)
    /// [default: /metrics is open to whoever reaches the admin address].
    #[arg(
        long,
        env = "TETHER_METRICS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub metrics_token: Option<String>,
    /// Delete telemetry older than this many hours from the embedded log; 0 keeps it
    /// whatever its age [default: 168, Pub/Sub's 7 days].
    #[arg(long, value_name = "HOURS")]
    pub telemetry_retention_hours: Option<u64>,
    /// Keep at most this many bytes of telemetry in the embedded log, across all
    /// topics (the oldest goes first, checked as the log grows); 0 for no cap
    /// [default: 10 GiB, or half of the data directory's free space at start if less].
    #[arg(long, value_name = "BYTES")]
    pub telemetry_max_total_bytes: Option<u64>,
    /// Keep at most this many bytes per telemetry topic in the embedded log, as well
    /// as the total cap; 0 for none [default: none].
    #[arg(long, value_name = "BYTES")]
    pub telemetry_max_bytes: Option<u64>,
    /// Least time between two fsyncs of the embedded log, in microseconds: QoS 1
    /// telemetry arriving meanwhile waits (at most this long) and shares the next
    /// fsync, whose CPU a steady stream then pays once per interval instead of once
    /// per message or two. 0 syncs as soon as the previous fsync is done; at most
    /// 100000 [default: 0].
    #[arg(long, value_name = "MICROS")]
    pub telemetry_commit_interval_us: Option<u64>,
    /// Longest time, in microseconds, a group commit of the embedded log waits for
    /// the server's device threads while they are busy, so that one fsync covers
    /// what they are about to append; a server with nothing more to do commits at
    /// once. 0 never waits; at most 100000 [default: 1000].
    #[arg(long, value_name = "MICROS")]
    pub telemetry_busy_wait_us: Option<u64>,
}

/// The settings in force after flags, file and defaults are merged.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    pub cluster: Option<ClusterConfig>,
    /// Embedded log limits: age, total size, size per topic.
    pub retention: RetentionPolicy,
    /// Least time between two fsyncs of the embedded log.
    pub telemetry_commit_interval: Duration,
    /// Longest wait of a group commit for busy device threads.
    pub telemetry_busy_wait: Duration,
    /// Most device connections at once.
    pub max_connections: usize,
    /// TLS handshake, and again CONNECT with authentication.
    pub connect_timeout: Duration,
    /// A device connection with no input for this long is closed.
    pub idle_timeout: Duration,
    /// A blocked write to a device cuts the connection after this long.
    pub write_timeout: Duration,
    /// A sink append not accepted within this long has failed.
    pub sink_timeout: Duration,
    /// Connects a second from one source address (`None`: no limit).
    pub connect_rate_per_ip: Option<u32>,
    /// Handshakes and CONNECT authentication on low-priority threads.
    pub connect_priority_low: bool,
    /// The gRPC listener's address (`None`: off).
    pub grpc_addr: Option<SocketAddr>,
    /// The Pub/Sub API's address (`None`: off).
    pub pubsub_addr: Option<SocketAddr>,
    /// The Pub/Sub API's TLS address, asking for the admin token (`None`: off).
    pub pubsub_tls_addr: Option<SocketAddr>,
    /// Most streaming pulls open at once.
    pub pubsub_max_streams: usize,
    /// Push delivery: in-flight bound, Authorization header, HMAC secret.
    pub pubsub_push: tether_pubsub::PushOptions,
    /// Most connections at once on the HTTPS device bridge.
    pub https_max_connections: usize,
    /// Most connections at once on the admin API.
    pub admin_max_connections: usize,
    /// Time to send a complete HTTP request head (also the keep-alive idle limit).
    pub http_header_timeout: Duration,
    /// Time an HTTP request may take in all.
    pub http_request_timeout: Duration,
    /// The token /metrics requires, if any.
    pub metrics_token: Option<String>,
}

impl ServeOptions {
    /// Merges flags over the config file (`self.config`) over the defaults, and checks
    /// the result.
    ///
    /// # Errors
    /// [`ServeError::Config`] naming the flag or key at fault, or [`ServeError::Io`] for
    /// an unreadable config file.
    pub fn resolve(self) -> Result<Settings, ServeError> {
        let options = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ServeError::Io {
                    what: format!("cannot read the config file {}", path.display()),
                    source,
                })?;
                let file = toml::from_str::<ServeOptions>(&text).map_err(|e| {
                    ServeError::Config(format!("config file {}: {e}", path.display()))
                })?;
                overlay(&file, &self)?
            }
            None => overlay(&ServeOptions::default(), &self)?,
        };
        ServeOptions {
            // Never read from the file; an empty value means none.
            admin_token: self.admin_token.filter(|t| !t.is_empty()),
            ..options
        }
        .into_settings()
    }

    fn into_settings(self) -> Result<Settings, ServeError> {
        let admin_token = self.admin_token;
        if let Some(t) = &admin_token
            && t.len() < MIN_TOKEN_LEN
        {
            return Err(ServeError::Config(format!(
                "--admin-token / TETHER_ADMIN_TOKEN is {} characters; use at least {MIN_TOKEN_LEN} (or leave it out to have one generated)",
                t.len()
            )));
        }
        if let Some(t) = &self.metrics_token
            && t.len() < MIN_TOKEN_LEN
        {
            return Err(ServeError::Config(format!(
                "metrics_token (--metrics-token / TETHER_METRICS_TOKEN) is {} characters; use at least {MIN_TOKEN_LEN}",
                t.len()
            )));
        }
        let data_dir = self
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => TlsSource::Files { cert, key },
            (None, None) => TlsSource::Embedded {
                data_dir: data_dir.clone(),
                host_names: host_names(self.tls_hostnames),
            },
            _ => {
                return Err(ServeError::Config(
                    "--tls-cert and --tls-key (tls_cert, tls_key) go together: give both or neither"
                        .into(),
                ));
            }
        };
        let jwt_encoding = match self.jwt_encoding.as_deref() {
            None | Some("lenient") => EncodingPolicy::Lenient,
            Some("strict") => EncodingPolicy::Strict,
            Some(other) => {
                return Err(ServeError::Config(format!(
                    "jwt_encoding '{other}' is not 'lenient' or 'strict'"
                )));
            }
        };
        // 0 turns a limit off; a limit not given keeps its default.
        let retention = RetentionPolicy {
            max_age_micros: match self.telemetry_retention_hours {
                None => Some(RetentionPolicy::DEFAULT_MAX_AGE_MICROS),
                Some(0) => None,
                Some(h) => Some(i64::try_from(h.saturating_mul(3_600_000_000)).unwrap_or(i64::MAX)),
            },
            max_bytes: self.telemetry_max_bytes.filter(|&n| n > 0),
            max_total_bytes: match self.telemetry_max_total_bytes {
                None => TotalCap::Auto,
                Some(0) => TotalCap::Unlimited,
                Some(n) => TotalCap::Bytes(n),
            },
        };
        let secs = |given: Option<u64>, key: &str, default: u64| match given {
            Some(0) => Err(ServeError::Config(format!(
                "{key} = 0: give a number of seconds of at least 1"
            ))),
            given => Ok(Duration::from_secs(given.unwrap_or(default))),
        };
        // A pause of the telemetry log's writer: every QoS 1 PUBACK may wait that long.
        let pause_micros = |given: Option<u64>, key: &str, default: u64| match given {
            Some(us) if us > 100_000 => Err(ServeError::Config(format!(
                "{key} = {us}: at most 100000 (100 ms), since every QoS 1 PUBACK may wait \
                 that long"
            ))),
            given => Ok(Duration::from_micros(given.unwrap_or(default))),
        };
        Ok(Settings {
            http_addr: self.http_addr.unwrap_or_else(default_http_addr),
            database: self.database,
            admin_token,
            mqtt_addrs: or_default(self.mqtt_addrs, DEFAULT_MQTT_ADDR),
            mqtt_plain_addrs: self.mqtt_plain_addrs,
            https_addrs: or_default(self.https_addrs, DEFAULT_HTTPS_ADDR),
            tls,
            jwt_encoding,
            nats: self.nats,
            cluster: cluster_config(self.cluster_nats, self.node_name),
            retention,
            telemetry_commit_interval: pause_micros(
                self.telemetry_commit_interval_us,
                "telemetry_commit_interval_us",
                DEFAULT_TELEMETRY_COMMIT_INTERVAL_US,
            )?,
            telemetry_busy_wait: pause_micros(
                self.telemetry_busy_wait_us,
                "telemetry_busy_wait_us",
                DEFAULT_TELEMETRY_BUSY_WAIT_US,
            )?,
            max_connections: self.max_connections.unwrap_or(10_000),
            connect_timeout: secs(self.connect_timeout_secs, "connect_timeout_secs", 10)?,
            idle_timeout: secs(self.idle_timeout_secs, "idle_timeout_secs", 20 * 60)?,
            write_timeout: secs(self.write_timeout_secs, "write_timeout_secs", 30)?,
            sink_timeout: secs(self.sink_timeout_secs, "sink_timeout_secs", 5)?,
            connect_priority_low: match self.connect_priority.as_deref() {
                None | Some("low") => true,
                Some("normal") => false,
                Some(other) => {
                    return Err(ServeError::Config(format!(
                        "connect_priority '{other}' is not 'low' or 'normal'"
                    )));
                }
            },
            connect_rate_per_ip: match self.connect_rate_per_ip {
                Some(0) => None,
                rate => Some(rate.unwrap_or(100)),
            },
            grpc_addr: addr_or_off("grpc_addr", self.grpc_addr.as_deref(), DEFAULT_GRPC_ADDR)?,
            pubsub_addr: addr_or_off(
                "pubsub_addr",
                self.pubsub_addr.as_deref(),
                DEFAULT_PUBSUB_ADDR,
            )?,
            pubsub_tls_addr: self.pubsub_tls_addr,
            pubsub_max_streams: match self.pubsub_max_streams {
                Some(0) => {
                    return Err(ServeError::Config(
                        "pubsub_max_streams = 0: allow at least 1 (or turn the API off with \
                         pubsub_addr = \"off\")"
                            .into(),
                    ));
                }
                n => n.unwrap_or(1000),
            },
            pubsub_push: tether_pubsub::PushOptions {
                max_in_flight: match self.pubsub_push_max_in_flight {
                    Some(0) => {
                        return Err(ServeError::Config(
                            "pubsub_push_max_in_flight = 0: allow at least 1".into(),
                        ));
                    }
                    n => n.unwrap_or(100),
                },
                authorization: self.pubsub_push_authorization.filter(|a| !a.is_empty()),
                hmac_secret: match self.pubsub_push_secret.filter(|s| !s.is_empty()) {
                    Some(s) if s.len() < MIN_TOKEN_LEN => {
                        return Err(ServeError::Config(format!(
                            "pubsub_push_secret is {} characters; use at least {MIN_TOKEN_LEN}",
                            s.len()
                        )));
                    }
                    s => s.map(String::into_bytes),
                },
            },
            https_max_connections: self.https_max_connections.unwrap_or(4096),
            admin_max_connections: self.admin_max_connections.unwrap_or(256),
            http_header_timeout: secs(
                self.http_header_timeout_secs,
                "http_header_timeout_secs",
                10,
            )?,
            http_request_timeout: secs(
                self.http_request_timeout_secs,
                "http_request_timeout_secs",
                60,
            )?,
            metrics_token: self.metrics_token,
            data_dir,
        })
    }
}

/// `--pubsub-addr`, `--grpc-addr`: an address, or `off`.
fn addr_or_off(
    key: &str,
    given: Option<&str>,
    default: &str,
) -> Result<Option<SocketAddr>, ServeError> {
    match given {
        Some("off") => Ok(None),
        given => given.unwrap_or(default).parse().map(Some).map_err(|_| {
            ServeError::Config(format!(
                "{key} '{}' is not an address (HOST:PORT, e.g. {default}) or 'off'",
                given.unwrap_or_default()
            ))
        }),
    }
}

/// The names of the generated certificate: the defaults (localhost, this host, the
/// loopback addresses) and then every name given, each once.
fn host_names(given: Vec<String>) -> Vec<String> {
    let mut names = tls::default_host_names();
    for name in given {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn default_http_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// `list`, or the one default address when it is empty.
fn or_default(list: Vec<SocketAddr>, default: &str) -> Vec<SocketAddr> {
    if !list.is_empty() {
        return list;
    }
    default.parse().map(|a| vec![a]).unwrap_or_default()
}

/// `top`'s values over `base`'s: a field `top` leaves unset (`None`, an empty list or
/// an empty string) keeps `base`'s value, and a value left empty by both is unset.
/// Generic over the fields, so a new setting needs no merge code. Fields marked
/// `serde(skip)` come back as their default.
fn overlay<T: Serialize + DeserializeOwned>(base: &T, top: &T) -> Result<T, ServeError> {
    let internal = |e: serde_json::Error| ServeError::Config(format!("settings: {e}"));
    let unset = |value: &Value| match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    let mut merged = serde_json::to_value(base).map_err(internal)?;
    let top = serde_json::to_value(top).map_err(internal)?;
    if let (Value::Object(merged), Value::Object(top)) = (&mut merged, top) {
        for (key, value) in top {
            if !unset(&value) {
                merged.insert(key, value);
            }
        }
        merged.retain(|_, value| !unset(value));
    }
    serde_json::from_value(merged).map_err(internal)
}

/// The cluster settings when a cluster NATS URL is given.
fn cluster_config(url: Option<String>, node: Option<String>) -> Option<ClusterConfig> {
    let url = url?;
    let node = node.unwrap_or_else(|| {
        let host = tls::this_host().unwrap_or_else(|| "node".into());
        format!("{host}-{}", std::process::id())
    });
    Some(ClusterConfig {
        url,
        prefix: "tether.hub".into(),
        node,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::serve::io;

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
    fn connect_priority_is_low_unless_asked_and_checked() -> Result<(), ServeError> {
        let with = |value: Option<&str>| {
            ServeOptions {
                connect_priority: value.map(str::to_owned),
                ..ServeOptions::default()
            }
            .resolve()
        };
        assert!(with(None)?.connect_priority_low);
        assert!(with(Some("low"))?.connect_priority_low);
        assert!(!with(Some("normal"))?.connect_priority_low);
        let e = with(Some("high"));
        assert!(
            matches!(&e, Err(ServeError::Config(m)) if m.contains("connect_priority 'high'")),
            "{e:?}"
        );
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

    #[test]
    fn the_sample_config_documents_every_key() -> Result<(), ServeError> {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tether.toml");
        let text = std::fs::read_to_string(&sample).map_err(io("read the sample"))?;
        // Every key the file may hold, read off the schema itself: a new setting
        // fails here until the sample documents it.
        let command = <ServeOptions as clap::Args>::augment_args(clap::Command::new("serve"));
        let keys: Vec<&str> = command
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .filter(|k| !matches!(*k, "config" | "admin_token"))
            .collect();
        assert!(keys.len() >= 20, "{keys:?}");
        for key in keys {
            assert!(
                text.lines().any(|l| l
                    .trim_start_matches('#')
                    .trim_start()
                    .starts_with(&format!("{key} = "))),
                "tether.toml does not document the key '{key}'"
            );
        }
        Ok(())
    }

    #[test]
    fn driver_timeouts_come_from_the_file_and_flags_win() -> Result<(), ServeError> {
        let dir = tempfile::tempdir().map_err(io("tempdir"))?;
        let path = dir.path().join("tether.toml");
        std::fs::write(
            &path,
            "idle_timeout_secs = 60\nwrite_timeout_secs = 5\ndatabase = \"\"\n",
        )
        .map_err(io("write"))?;
        let s = ServeOptions {
            config: Some(path.clone()),
            write_timeout_secs: Some(7),
            ..ServeOptions::default()
        }
        .resolve()?;
        assert_eq!(s.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.write_timeout, Duration::from_secs(7), "the flag wins");
        assert_eq!(s.connect_timeout, Duration::from_secs(10), "the default");
        assert_eq!(s.sink_timeout, Duration::from_secs(5));
        assert_eq!(s.database, None, "an empty value is no value");
        std::fs::write(&path, "connect_timeout_secs = 0\n").map_err(io("write"))?;
        let e = ServeOptions {
            config: Some(path),
            ..ServeOptions::default()
        }
        .resolve();
        assert!(
            matches!(&e, Err(ServeError::Config(m)) if m.contains("connect_timeout_secs = 0")),
            "{e:?}"
        );
        Ok(())
    }

    #[test]
    fn the_log_commit_interval_defaults_to_none_and_is_at_most_100_ms() -> Result<(), ServeError> {
        let s = ServeOptions::default().resolve()?;
        assert_eq!(s.telemetry_commit_interval, Duration::ZERO);
        let s = ServeOptions {
            telemetry_commit_interval_us: Some(3_000),
            ..ServeOptions::default()
        }
        .resolve()?;
        assert_eq!(s.telemetry_commit_interval, Duration::from_millis(3));
        let e = ServeOptions {
            telemetry_commit_interval_us: Some(100_001),
            ..ServeOptions::default()
        }
        .resolve()
        .expect_err("refused");
        assert!(
            e.to_string()
                .contains("telemetry_commit_interval_us = 100001: at most 100000"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn the_log_busy_wait_defaults_to_1_ms_and_is_at_most_100_ms() -> Result<(), ServeError> {
        let s = ServeOptions::default().resolve()?;
        assert_eq!(s.telemetry_busy_wait, Duration::from_millis(1));
        let s = ServeOptions {
            telemetry_busy_wait_us: Some(0),
            ..ServeOptions::default()
        }
        .resolve()?;
        assert_eq!(s.telemetry_busy_wait, Duration::ZERO);
        let e = ServeOptions {
            telemetry_busy_wait_us: Some(100_001),
            ..ServeOptions::default()
        }
        .resolve()
        .expect_err("refused");
        assert!(
            e.to_string()
                .contains("telemetry_busy_wait_us = 100001: at most 100000"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn telemetry_limits_default_to_7_days_and_a_total_cap_and_0_turns_them_off()
    -> Result<(), ServeError> {
        let s = ServeOptions::default().resolve()?;
        assert_eq!(s.retention, RetentionPolicy::default());
        assert_eq!(s.retention.max_age_micros, Some(7 * 24 * 3_600_000_000));
        assert_eq!(s.retention.max_total_bytes, TotalCap::Auto);
        let s = ServeOptions {
            telemetry_retention_hours: Some(0),
            telemetry_max_total_bytes: Some(0),
            telemetry_max_bytes: Some(0),
            ..ServeOptions::default()
        }
        .resolve()?;
        assert_eq!(s.retention, RetentionPolicy::KEEP_ALL);
        let s = ServeOptions {
            telemetry_retention_hours: Some(24),
            telemetry_max_total_bytes: Some(5 << 30),
            telemetry_max_bytes: Some(1 << 30),
            ..ServeOptions::default()
        }
        .resolve()?;
        assert_eq!(
            s.retention,
            RetentionPolicy {
                max_age_micros: Some(24 * 3_600_000_000),
                max_bytes: Some(1 << 30),
                max_total_bytes: TotalCap::Bytes(5 << 30),
            }
        );
        Ok(())
    }

    #[test]
    fn tls_hostnames_add_to_the_default_names() -> Result<(), ServeError> {
        let s = ServeOptions {
            tls_hostnames: vec!["mqtt.example.com".into(), "localhost".into()],
            ..ServeOptions::default()
        }
        .resolve()?;
        let TlsSource::Embedded { host_names, .. } = s.tls else {
            panic!("the embedded CA is the default: {:?}", s.tls);
        };
        for name in ["localhost", "127.0.0.1", "::1", "mqtt.example.com"] {
            assert!(
                host_names.iter().any(|n| n == name),
                "{name} in {host_names:?}"
            );
        }
        assert_eq!(
            host_names.iter().filter(|n| *n == "localhost").count(),
            1,
            "each name once"
        );
        Ok(())
    }

    #[test]
    fn a_bad_address_in_the_file_names_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tether.toml");
        std::fs::write(&path, "mqtt_addrs = [\"0.0.0.0\"]\n").expect("write");
        let e = ServeOptions {
            config: Some(path),
            ..ServeOptions::default()
        }
        .resolve();
        assert!(
            matches!(&e, Err(ServeError::Config(m)) if m.contains("mqtt_addrs")),
            "{e:?}"
        );
    }
}
