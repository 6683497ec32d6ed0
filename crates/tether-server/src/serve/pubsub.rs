//! The Pub/Sub-compatible gRPC API (`tether-pubsub`) as `tether serve` runs it: its
//! catalog beside the telemetry log, reading and appending through the same sink
//! the devices publish to, and the registries' notification topics as its topics.

use std::net::SocketAddr;
use std::sync::Arc;

use tether_pubsub::grpc::Authorize;
use tether_pubsub::{Catalog, GrpcLimits, PubSub, PushOptions, RegistryTopics, WallClock};
use tether_registry::Store;
use tether_route::NatsSink;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::sink::TelemetrySink;
use super::{ServeError, Settings, grpc_incoming, listen};
use crate::api::auth::AdminAuth;
use crate::bridge::Clock;

/// The catalog's file in the data directory.
pub const CATALOG_FILE: &str = "pubsub.db";

/// Topics named in the registries' notification configs.
#[derive(Debug)]
struct StoreTopics(Arc<dyn Store>);

#[async_trait::async_trait]
impl RegistryTopics for StoreTopics {
    async fn topics(&self) -> Vec<String> {
        match self.0.notification_topics().await {
            Ok(topics) => topics,
            Err(e) => {
                tracing::warn!(error = %e, "Pub/Sub API: cannot read the registries' notification topics");
                Vec::new()
            }
        }
    }
}

/// The server's clock, for `publishTime`.
#[derive(Debug)]
struct ServerClock(Arc<dyn Clock>);

impl WallClock for ServerClock {
    fn unix_micros(&self) -> i64 {
        self.0.unix_micros()
    }
}

/// A bound, opened Pub/Sub API: the plaintext listener (the emulator's contract)
/// and/or the TLS one that asks for the admin token.
#[derive(Debug)]
pub struct PubSubApi {
    plain: Option<(TcpListener, SocketAddr)>,
    tls: Option<(TcpListener, SocketAddr)>,
    pubsub: Arc<PubSub>,
    limits: GrpcLimits,
    push: PushOptions,
}

/// Most connections at once on each listener (a client multiplexes its calls
/// over one; 10,000 streaming pulls are bounded by `--pubsub-max-streams`).
const CONNECTIONS: usize = 1024;

async fn bind(
    addr: Option<SocketAddr>,
    what: &'static str,
) -> Result<Option<(TcpListener, SocketAddr)>, ServeError> {
    let Some(addr) = addr else { return Ok(None) };
    let listener = listen(addr, what).await?;
    let bound = listener.local_addr().unwrap_or(addr);
    Ok(Some((listener, bound)))
}

impl PubSubApi {
    /// Opens the catalog and binds the addresses, when the API is on.
    ///
    /// # Errors
    /// [`ServeError::Bind`] for an address, [`ServeError::Sink`] for the catalog.
    pub async fn open(
        settings: &Settings,
        sink: &TelemetrySink,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>, ServeError> {
        if settings.pubsub_addr.is_none() && settings.pubsub_tls_addr.is_none() {
            return Ok(None);
        }
        let path = settings.data_dir.join(CATALOG_FILE);
        let catalog = Catalog::open(&path)
            .await
            .map_err(|e| ServeError::Sink(format!("{}: {e}", path.display())))?;
        let pubsub = PubSub::open(
            catalog,
            sink.reader(),
            sink.measured(),
            Arc::new(StoreTopics(store)),
            Arc::new(ServerClock(clock)),
        )
        .await
        .map_err(|e| ServeError::Sink(format!("the Pub/Sub catalog {}: {e}", path.display())))?;
        // With NATS, a subscription is a durable consumer that every node serves.
        let pubsub = match sink {
            TelemetrySink::Nats(nats) => pubsub
                .use_jetstream(NatsSink::clone(nats))
                .await
                .map_err(|e| {
                    ServeError::Sink(format!("Pub/Sub subscriptions on JetStream: {e}"))
                })?,
            TelemetrySink::Embedded(_) => pubsub,
        };
        Ok(Some(Self {
            plain: bind(settings.pubsub_addr, "Pub/Sub API").await?,
            tls: bind(settings.pubsub_tls_addr, "Pub/Sub API over TLS").await?,
            pubsub: Arc::new(pubsub),
            limits: GrpcLimits {
                max_streams: settings.pubsub_max_streams,
            },
            push: settings.pubsub_push.clone(),
        }))
    }

    /// The plaintext listener's address.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.plain.as_ref().map(|(_, a)| *a)
    }

    /// The TLS listener's address.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|(_, a)| *a)
    }

    /// Adds Publisher and Subscriber to another gRPC listener's `routes` (the
    /// Device Manager's), every call checked with `authorize`; streaming pulls end
    /// when `stop` turns true.
    pub fn add_routes(
        &self,
        routes: tonic::service::Routes,
        stop: watch::Receiver<bool>,
        authorize: Authorize,
    ) -> tonic::service::Routes {
        tether_pubsub::grpc::add_routes(
            routes,
            Arc::clone(&self.pubsub),
            self.limits,
            stop,
            Some(authorize),
        )
    }

    /// Serves, and pushes to push subscriptions, until `shutdown` turns true. The
    /// TLS listener (when bound) uses `tls` and asks every call for the admin token.
    pub fn spawn(
        self,
        tls: Option<Arc<rustls::ServerConfig>>,
        admin: AdminAuth,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let stopped = || {
            let mut rx = shutdown.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let push = tether_pubsub::push::spawn(Arc::clone(&self.pubsub), self.push);
        let pubsub = Arc::clone(&self.pubsub);
        let gauge = tokio::spawn(async move {
            loop {
                metrics::gauge!("tether_pubsub_outstanding").set(pubsub.outstanding() as f64);
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        });
        let mut servers = tokio::task::JoinSet::new();
        if let Some((listener, _)) = self.plain {
            let (incoming, accept) = grpc_incoming::incoming(
                "pubsub_plain",
                listener,
                None,
                CONNECTIONS,
                shutdown.clone(),
            );
            let (pubsub, limits, stop) = (Arc::clone(&self.pubsub), self.limits, stopped());
            servers.spawn(async move {
                if let Err(e) =
                    tether_pubsub::grpc::serve_incoming(incoming, pubsub, limits, None, stop).await
                {
                    tracing::error!(error = %e, "the Pub/Sub API listener failed");
                }
                accept.abort();
            });
        }
        if let (Some((listener, _)), Some(tls)) = (self.tls, tls) {
            let (incoming, accept) = grpc_incoming::incoming(
                "pubsub",
                listener,
                Some(&tls),
                CONNECTIONS,
                shutdown.clone(),
            );
            let authorize = crate::api::grpc::authorize(admin);
            let (pubsub, limits, stop) = (Arc::clone(&self.pubsub), self.limits, stopped());
            servers.spawn(async move {
                if let Err(e) = tether_pubsub::grpc::serve_incoming(
                    incoming,
                    pubsub,
                    limits,
                    Some(authorize),
                    stop,
                )
                .await
                {
                    tracing::error!(error = %e, "the Pub/Sub API TLS listener failed");
                }
                accept.abort();
            });
        }
        tokio::spawn(async move {
            while servers.join_next().await.is_some() {}
            push.abort();
            gauge.abort();
        })
    }
}
