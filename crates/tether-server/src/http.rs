//! Serves a router on a bound listener until the shutdown future resolves, then lets
//! requests in flight finish.

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

/// Runs `router` on `listener` with graceful shutdown.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
