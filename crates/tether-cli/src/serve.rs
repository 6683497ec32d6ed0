//! `tether serve`: runs the gateway (for now the admin API; the MQTT listener joins
//! in its own module) until Ctrl-C or SIGTERM.

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
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    eprintln!("tether: shutting down");
}

/// Runs `tether serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let options = ServeOptions {
        config: args.config,
        data_dir: args.data_dir,
        http_addr: args.http_addr,
        admin_token: args.admin_token,
        database: args.database,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(serve(options, shutdown_signal())) {
        Ok(()) => Ok(exit::OK),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(exit::USAGE)
        }
    }
}
