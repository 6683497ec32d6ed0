//! `tether serve`: runs the gateway (admin API, MQTT bridge over TLS, telemetry log)
//! until Ctrl-C or SIGTERM.

use tether_server::serve::{ServeOptions, serve};

use crate::exit;

/// The exit codes of `tether serve`, for its `--help`.
pub const EXIT_CODES: &str = "Exit codes: 0 stopped by Ctrl-C or SIGTERM; 2 a bad flag, config file \
or data directory; 3 an address is in use or not allowed; 4 the TLS certificate or key; 5 the \
registry database; 6 the telemetry sink (NATS or the log); 7 the cluster's NATS; 8 a listener \
failed while serving.";

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
pub fn run(options: ServeOptions) -> anyhow::Result<u8> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    // The device threads report when they sleep and wake: the telemetry log's group
    // commit waits for them while they are busy (`--telemetry-busy-wait-us`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_unpark(tether_log::appenders::unparked)
        .on_thread_park(tether_log::appenders::parking)
        .on_thread_stop(tether_log::appenders::parking)
        .build()?;
    let shutdown = {
        let _in_runtime = runtime.enter();
        shutdown_signal()
    };
    match runtime.block_on(serve(options, shutdown)) {
        Ok(()) => Ok(exit::OK),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(e.exit_code())
        }
    }
}
