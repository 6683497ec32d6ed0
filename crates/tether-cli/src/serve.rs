//! `tether serve`: runs the gateway (admin API, MQTT bridge over TLS, telemetry log)
//! until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use tether_server::serve::{ServeOptions, serve};

use crate::exit;

/// Options of `tether serve`; with none it runs the embedded default in ./tether-data.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML config file (keys: data_dir, http_addr, database); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory: SQLite database, admin token [default: ./tether-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the admin API [default: 127.0.0.1:8080].
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// The admin token to accept instead of the generated one (at least 16 characters).
    #[arg(long, env = "TETHER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Database URL: postgres://USER@HOST/DB or sqlite://PATH [default: SQLite in the data directory].
    #[arg(long, env = "TETHER_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// MQTT-over-TLS listener; repeat for a second one, e.g. 0.0.0.0:443 [default: 0.0.0.0:8883].
    #[arg(long = "mqtt-addr", value_name = "ADDR")]
    mqtt_addrs: Vec<SocketAddr>,
    /// Plain-TCP MQTT listener, for development only (devices send tokens in clear text).
    #[arg(long = "mqtt-plain-addr", value_name = "ADDR")]
    mqtt_plain_addrs: Vec<SocketAddr>,
    /// HTTPS listener of the HTTP device bridge (publishEvent, setState, config), with the
    /// gateway's certificate; repeatable [default: 0.0.0.0:8443]. The bridge also answers on
    /// --http-addr.
    #[arg(long = "https-addr", value_name = "ADDR")]
    https_addrs: Vec<SocketAddr>,
    /// A name for the generated server certificate; repeat for more
    /// [default: localhost, this host's name, 127.0.0.1, ::1].
    #[arg(long = "tls-hostname", value_name = "NAME")]
    tls_hostnames: Vec<String>,
    /// Your own server certificate chain (PEM) instead of the embedded CA's.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// JWT base64 policy: lenient (IoT Core: padding and +/ accepted, with a warning) or strict.
    #[arg(long, value_name = "POLICY", value_parser = ["lenient", "strict"])]
    jwt_encoding: Option<String>,
    /// Send telemetry to NATS JetStream at this URL instead of the embedded log.
    #[arg(long, env = "TETHER_NATS", value_name = "URL")]
    nats: Option<String>,
    /// Join a cluster: nodes on one PostgreSQL store relay commands, configs and
    /// takeovers to each other over core NATS at this URL.
    #[arg(long, env = "TETHER_CLUSTER_NATS", value_name = "URL")]
    cluster_nats: Option<String>,
    /// This node's name in the cluster [default: host name and process id].
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
    /// Most device connections at once [default: 10000].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Delete telemetry older than this many hours from the embedded log [default: keep].
    #[arg(long, value_name = "HOURS")]
    telemetry_retention_hours: Option<u64>,
    /// Keep at most this many bytes per telemetry topic in the embedded log [default: no limit].
    #[arg(long, value_name = "BYTES")]
    telemetry_max_bytes: Option<u64>,
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called (not when the
/// future is first polled), so a signal during start-up is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (int, term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(int) => {}
                () = wait(term) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        eprintln!("tether: shutting down");
    }
}

/// Runs `tether serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let options = ServeOptions {
        config: args.config,
        data_dir: args.data_dir,
        http_addr: args.http_addr,
        admin_token: args.admin_token,
        database: args.database,
        mqtt_addrs: args.mqtt_addrs,
        mqtt_plain_addrs: args.mqtt_plain_addrs,
        https_addrs: args.https_addrs,
        tls_hostnames: args.tls_hostnames,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        jwt_encoding: args.jwt_encoding,
        nats: args.nats,
        cluster_nats: args.cluster_nats,
        node_name: args.node_name,
        max_connections: args.max_connections,
        telemetry_retention_hours: args.telemetry_retention_hours,
        telemetry_max_bytes: args.telemetry_max_bytes,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let shutdown = {
        let _in_runtime = runtime.enter();
        shutdown_signal()
    };
    match runtime.block_on(serve(options, shutdown)) {
        Ok(()) => Ok(exit::OK),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(exit::USAGE)
        }
    }
}
