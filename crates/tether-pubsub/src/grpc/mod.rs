//! Pub/Sub's `Publisher` and `Subscriber` gRPC services over [`PubSub`], plaintext
//! as the Pub/Sub emulator is, so `PUBSUB_EMULATOR_HOST=host:port` points any
//! Google client library here.
//!
//! The services' shapes are described in `build.rs` (tonic's manual builder); the
//! message types are Google's, from `googleapis-tonic-google-pubsub-v1`.

mod convert;
mod publisher;
mod refuse;
mod streaming;
mod subscriber;

use std::future::Future;
use std::sync::Arc;

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::engine::{MAX_PUBLISH_BYTES, PubSub};

#[allow(
    missing_docs,
    missing_debug_implementations,
    unused_qualifications,
    clippy::all,
    clippy::pedantic
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/google.pubsub.v1.Publisher.rs"));
    include!(concat!(env!("OUT_DIR"), "/google.pubsub.v1.Subscriber.rs"));
}

pub use generated::publisher_client::PublisherClient;
pub use generated::publisher_server::PublisherServer;
pub use generated::subscriber_client::SubscriberClient;
pub use generated::subscriber_server::SubscriberServer;
/// Google's message types, as the clients take them.
pub use googleapis_tonic_google_pubsub_v1::google::pubsub::v1 as types;

/// `google.protobuf.Empty`, as prost maps it.
pub type Empty = ();

/// Bounds of the gRPC front.
#[derive(Debug, Clone, Copy)]
pub struct GrpcLimits {
    /// Streaming pulls open at once, server-wide; more are refused with
    /// `RESOURCE_EXHAUSTED`.
    pub max_streams: usize,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        Self { max_streams: 1000 }
    }
}

/// The largest request accepted: a full publish plus its framing.
const MAX_REQUEST_BYTES: usize = MAX_PUBLISH_BYTES + 1024 * 1024;

/// How long open streams get to end after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Checks a call's `authorization` metadata (e.g. `Bearer <admin token>`); `Err`
/// is the status the call is answered with.
pub type Authorize = Arc<dyn Fn(Option<&str>) -> Result<(), tonic::Status> + Send + Sync>;

/// The interceptor that checks each call's `authorization` metadata with `authorize`
/// (with none, every call passes): shared by every gRPC service Tether serves.
pub fn interceptor(
    authorize: Option<Authorize>,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |request: tonic::Request<()>| {
        if let Some(authorize) = &authorize {
            let header = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            authorize(header)?;
        }
        Ok(request)
    }
}

/// Both services, ready to serve. Streaming pulls end (`UNAVAILABLE`) once `stop`
/// turns true. With `authorize`, every call is checked first.
pub fn routes(
    pubsub: Arc<PubSub>,
    limits: GrpcLimits,
    stop: watch::Receiver<bool>,
    authorize: Option<Authorize>,
) -> tonic::service::Routes {
    add_routes(
        tonic::service::Routes::builder().routes(),
        pubsub,
        limits,
        stop,
        authorize,
    )
}

/// [`routes`], added to `routes` (another API's services on the same listener).
pub fn add_routes(
    routes: tonic::service::Routes,
    pubsub: Arc<PubSub>,
    limits: GrpcLimits,
    stop: watch::Receiver<bool>,
    authorize: Option<Authorize>,
) -> tonic::service::Routes {
    let check = interceptor(authorize);
    let publisher = PublisherServer::new(publisher::Publisher {
        pubsub: Arc::clone(&pubsub),
    })
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    let subscriber = SubscriberServer::new(subscriber::Subscriber {
        pubsub,
        streams: Arc::new(Semaphore::new(limits.max_streams)),
        max_streams: limits.max_streams,
        stop,
    })
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    routes
        .add_service(tonic::service::interceptor::InterceptedService::new(
            publisher,
            check.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            subscriber, check,
        ))
}

/// Serves both services on `listener` (plaintext, no credentials: the emulator's
/// contract) until `shutdown`, with `TCP_NODELAY` on every connection (Nagle's
/// algorithm would hold a streaming pull's next response until the client
/// acknowledged the last one). `tether serve` uses [`serve_incoming`] with its own
/// accept loop, which also caps the connections.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: TcpListener,
    pubsub: Arc<PubSub>,
    limits: GrpcLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    use tokio_stream::StreamExt as _;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|tcp| {
        tcp.inspect(|tcp| {
            let _ = tcp.set_nodelay(true);
        })
    });
    serve_incoming(incoming, pubsub, limits, None, shutdown).await
}

/// Serves both services on the connections `incoming` yields (e.g. TLS streams),
/// checking each call with `authorize` when given, until `shutdown`.
///
/// # Errors
/// When the connection stream fails.
pub async fn serve_incoming<S, IO>(
    incoming: S,
    pubsub: Arc<PubSub>,
    limits: GrpcLimits,
    authorize: Option<Authorize>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error>
where
    S: futures_util::Stream<Item = Result<IO, std::io::Error>> + Send + 'static,
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
{
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tonic::transport::Server::builder()
        .add_routes(routes(pubsub, limits, stop.clone(), authorize))
        .serve_with_incoming_shutdown(incoming, stopped(stop.clone()));
    // A client that keeps its request stream open would hold a graceful shutdown
    // forever: after the grace period the server stops regardless.
    tokio::select! {
        result = server => result,
        () = async {
            stopped(stop).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}
