//! The gRPC listener of `tether serve` (`--grpc-addr`): the Device Manager API
//! (`google.cloud.iot.v1.DeviceManager`) and, when the Pub/Sub API is on, its
//! Publisher and Subscriber, over TLS with the gateway's certificate. Every call needs
//! the admin token as a bearer token, as the REST API does. Google's clients use TLS
//! whenever they are given an endpoint, so there is no plaintext form.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{PubSubApi, ServeError, grpc_incoming, listen};
use crate::api::ApiState;

/// Most connections at once on the gRPC listener.
const CONNECTIONS: usize = 1024;

/// Calls open at once on one connection (HTTP/2 streams): Google's clients open a
/// handful; a client that opens thousands holds memory for each.
const STREAMS_PER_CONNECTION: u32 = 256;

/// How long open streams get to end after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A bound gRPC listener.
#[derive(Debug)]
pub struct GrpcApi {
    listener: TcpListener,
    addr: SocketAddr,
}

impl GrpcApi {
    /// Binds `addr`.
    ///
    /// # Errors
    /// [`ServeError::Bind`] when the address cannot be bound.
    pub async fn bind(addr: SocketAddr) -> Result<Self, ServeError> {
        let listener = listen(addr, "Device Manager API over gRPC").await?;
        let addr = listener.local_addr().unwrap_or(addr);
        Ok(Self { listener, addr })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves the Device Manager over `state`, and the Pub/Sub API's services
    /// beside it when given, with `tls`, until `shutdown` turns true.
    pub fn spawn(
        self,
        tls: &rustls::ServerConfig,
        state: ApiState,
        pubsub: Option<&PubSubApi>,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let authorize = crate::api::grpc::authorize(state.admin.clone());
        let mut routes = crate::api::grpc::routes(state, Arc::clone(&authorize));
        if let Some(pubsub) = pubsub {
            routes = pubsub.add_routes(routes, shutdown.clone(), authorize);
        }
        let (incoming, accept) = grpc_incoming::incoming(
            "grpc",
            self.listener,
            Some(tls),
            CONNECTIONS,
            shutdown.clone(),
        );
        let stopped = move |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        tokio::spawn(async move {
            let server = tonic::transport::Server::builder()
                .max_concurrent_streams(STREAMS_PER_CONNECTION)
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, stopped(shutdown.clone()));
            // A client that keeps a stream open would hold a graceful shutdown
            // forever: after the grace period the server stops regardless.
            tokio::select! {
                result = server => {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "the gRPC listener failed");
                    }
                }
                () = async {
                    stopped(shutdown).await;
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                } => {}
            }
            accept.abort();
        })
    }
}
