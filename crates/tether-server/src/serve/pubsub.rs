//! The Pub/Sub-compatible gRPC API (`tether-pubsub`) as `tether serve` runs it: its
//! catalog beside the telemetry log, reading and appending through the same sink
//! the devices publish to, and the registries' notification topics as its topics.

use std::net::SocketAddr;
use std::sync::Arc;

use tether_pubsub::{Catalog, GrpcLimits, PubSub, PushOptions, RegistryTopics, WallClock};
use tether_registry::Store;
use tokio::net::TcpListener;

use super::sink::TelemetrySink;
use super::{ServeError, Settings, listen};
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

/// A bound, opened Pub/Sub API.
#[derive(Debug)]
pub struct PubSubApi {
    listener: TcpListener,
    pubsub: Arc<PubSub>,
    limits: GrpcLimits,
    push: PushOptions,
    addr: SocketAddr,
}

impl PubSubApi {
    /// Opens the catalog and binds the address, when the API is on.
    ///
    /// # Errors
    /// [`ServeError::Bind`] for the address, [`ServeError::Sink`] for the catalog.
    pub async fn open(
        settings: &Settings,
        sink: &TelemetrySink,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>, ServeError> {
        let Some(addr) = settings.pubsub_addr else {
            return Ok(None);
        };
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
        let listener = listen(addr, "Pub/Sub API").await?;
        let addr = listener.local_addr().unwrap_or(addr);
        Ok(Some(Self {
            listener,
            pubsub: Arc::new(pubsub),
            limits: GrpcLimits {
                max_streams: settings.pubsub_max_streams,
            },
            push: settings.pubsub_push.clone(),
            addr,
        }))
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves, and pushes to push subscriptions, until `shutdown`.
    pub fn spawn(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let push = tether_pubsub::push::spawn(Arc::clone(&self.pubsub), self.push);
        let pubsub = Arc::clone(&self.pubsub);
        let gauge = tokio::spawn(async move {
            loop {
                metrics::gauge!("tether_pubsub_outstanding").set(pubsub.outstanding() as f64);
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        });
        tokio::spawn(async move {
            if let Err(e) =
                tether_pubsub::grpc::serve(self.listener, self.pubsub, self.limits, shutdown).await
            {
                tracing::error!(error = %e, "the Pub/Sub API listener failed");
            }
            push.abort();
            gauge.abort();
        })
    }
}
