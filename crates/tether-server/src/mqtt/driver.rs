//! The per-connection driver: a thin async loop around the sans-io
//! [`ServerSession`]. It owns the socket and the timers; every protocol decision is
//! the session's (MQTT) or a pure module's (auth, topics, limits, config push).
//!
//! ```text
//!        ┌──────────────── select! ────────────────┐
//!  socket│read → session.handle_input(bytes, now)  │ events → on_connect / on_publish /
//!  timers│deadline → handle_timeout, expiry, idle  │          on_subscribe / …
//!  hub   │control, config, close                   │ poll_transmit → socket
//!  sinks │pipeline front done → PUBACK in order    │
//!        └─────────────────────────────────────────┘
//! ```
//!
//! Device messages go into an ordered pipeline of appends (queued to the sink, or a
//! task of their own; see `append_task`): the socket keeps being read while the sink
//! commits, and PUBACKs leave in arrival order ([MQTT-4.6.0-2]) once each message is
//! durably accepted; a message that cannot be stored closes the connection so the
//! device resends it.
//!
//! Layout: this file has the loop, timers and close handling; `connect` the CONNECT
//! decision; `inbound` telemetry and state; `pipeline` the sans-io ack pipeline;
//! `outbound` subscriptions, config and commands; `gateway` attach, detach and errors
//! for gateways.

mod append_task;
mod connect;
mod gateway;
mod inbound;
mod outbound;
mod pipeline;
mod provisioning;
mod reauth;
mod rotation;

use std::future::pending;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use tether_log::{DeviceCoordinates, EventAttributes};
use tether_mqtt::session::{CloseReason, Event};
use tether_mqtt::{Publish, QoS, ServerConfig, ServerSession, Timestamp};
use tether_registry::model::Timestamp as RegistryTime;
use tether_registry::{Activity, ActivityKind};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::sync::watch;
use tracing::Instrument as _;

use self::append_task::AppendTask;
use self::pipeline::{AckPipeline, AppendError};
use super::Shared;
use super::auth::Principal;
use super::config_push::ConfigPush;
use super::mailbox::{Delivery, Inbox};
use super::read_buffer::ReadBuffer;
use crate::bridge::hub::DeviceAddress;
use crate::bridge::limits::TokenBucket;
use crate::bridge::uplink::Routing;
use crate::bridge::{Code, Reason, Transport};
use crate::listen::Conn;

/// How long a connection stays where admission runs after its CONNECT was accepted.
/// A device's first moments (SUBSCRIBE, its config, the activity it causes, and for a
/// flood's devices the DISCONNECT that follows) are part of connecting: at low connect
/// priority they must not take the device threads from devices already connected.
const SETTLE: Duration = Duration::from_secs(2);

/// How long the TLS close (close_notify) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs one connection to its end.
///
/// Not an `async fn`: the driver is boxed before the future exists, so the task holds
/// a pointer to it instead of the driver itself (an async fn would also keep a second
/// copy of its by-value arguments). Most of an idle connection's memory is this state.
pub(crate) fn serve<S>(stream: S, peer: SocketAddr, shared: Arc<Shared>) -> impl Future<Output = ()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (conn_id, span) = conn_span(&shared, peer);
    let driver = Box::new(Driver::new(stream, shared, conn_id, peer.ip()));
    async move {
        let _ = driver.run(Until::Closed).await;
    }
    .instrument(span)
}

/// A connection whose CONNECT was accepted on the admission threads, to serve on.
pub(crate) struct Admitted {
    driver: Box<Driver<Conn>>,
    span: tracing::Span,
}

/// Runs a connection from its first byte until its device has been connected for
/// [`SETTLE`] (the part of a connection that runs where admission runs): [`Admitted`]
/// then, `None` when the connection ended first (refused, or gone).
pub(crate) fn admit(
    stream: Conn,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> impl Future<Output = Option<Admitted>> {
    let (conn_id, span) = conn_span(&shared, peer);
    let driver = Box::new(Driver::new(stream, shared, conn_id, peer.ip()));
    let instrumented = span.clone();
    async move {
        let driver = driver.run(Until::Settled).await?;
        Some(Admitted { driver, span })
    }
    .instrument(instrumented)
}

impl Admitted {
    /// Moves the socket to the current runtime (after [`admit`] ran elsewhere) and
    /// runs the connection to its end. A socket that cannot move fails its next read,
    /// and the connection ends as any broken one does.
    pub(crate) async fn serve(self) {
        let Admitted { mut driver, span } = self;
        async move {
            if let Err(e) = driver.stream.rehome() {
                tracing::debug!(error = %e, "could not move the connection to the device threads");
            }
            let _ = driver.run(Until::Closed).await;
        }
        .instrument(span)
        .await;
    }
}

fn conn_span(shared: &Shared, peer: SocketAddr) -> (u64, tracing::Span) {
    let conn_id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("mqtt", conn = conn_id, %peer, device = tracing::field::Empty);
    (conn_id, span)
}

/// How long [`Driver::run`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Until the device has been connected for [`SETTLE`]: the driver is handed back.
    Settled,
    /// Until the connection ends.
    Closed,
}

/// One reading of the clock, in the units the session (ms) and the registry (µs) use:
/// a message is handled at one instant.
#[derive(Debug, Clone, Copy)]
pub(super) struct Now {
    micros: i64,
}

impl Now {
    fn micros(self) -> i64 {
        self.micros
    }

    fn mqtt(self) -> Timestamp {
        Timestamp::from_millis(u64::try_from(self.micros.div_euclid(1000)).unwrap_or(0))
    }

    fn registry(self) -> RegistryTime {
        RegistryTime(self.micros)
    }
}

/// State that exists once the CONNECT was accepted.
#[derive(Debug)]
struct Live {
    principal: Principal,
    address: DeviceAddress,
    coords: DeviceCoordinates,
    /// The attribute set its events share.
    events: EventAttributes,
    /// API messages, newer config versions and the close.
    inbox: Inbox,
    registry_read_at: Timestamp,
    /// When the read behind `principal.registry` started (or, for the CONNECT's own
    /// read, a moment after): only later shared copies replace it.
    registry_copy_at: tokio::time::Instant,
    expires_at: Timestamp,
    /// When the CONNECT was accepted.
    connected_at: Timestamp,
    config: ConfigPush,
    commands_qos: Option<QoS>,
    /// The QoS `/devices/{id}/provision/result` was subscribed at (key rotations).
    rotation_result: Option<QoS>,
    /// Key rotations asked on this connection.
    rotations: u8,
    messages: TokenBucket,
    states: TokenBucket,
    /// The registry's notification configs, converted when the registry is read.
    routing: Arc<Routing>,
    /// When message activity was last recorded (µs).
    activity_at: Option<i64>,
    pipeline: AckPipeline<AppendTask>,
    /// Set when the device is a gateway.
    gateway: Option<gateway::GatewayLive>,
}

impl Live {
    fn device_id(&self) -> &str {
        &self.principal.device.id
    }

    /// Takes the node's fresher copy of the registry and its routing (shared by every
    /// connection of the registry).
    fn set_registry(&mut self, copy: &super::registries::Copy) {
        self.routing = Arc::clone(&copy.routing);
        self.principal.registry = Arc::clone(&copy.registry);
    }
}

/// MQTT 5 User Properties of a PUBLISH (name, value), in order; empty for 3.1.1.
type UserProperties = Vec<(String, String)>;

/// A packet over the device's message rate, waiting for a token: the socket is not
/// read meanwhile, so TCP slows the device down.
#[derive(Debug)]
enum Held {
    Publish(Publish, UserProperties),
    Subscribe(tether_mqtt::Subscribe),
}

/// What woke the loop.
#[derive(Debug)]
enum Wake {
    Read(std::io::Result<usize>),
    Timer,
    Shutdown,
    /// From the connections table: a close, a newer config or an API message.
    Delivered(Delivery),
    Settled(Result<(), AppendError>),
}

struct Driver<S> {
    stream: S,
    shared: Arc<Shared>,
    conn_id: u64,
    /// The client's address: refusals are rate-limited per source address.
    peer: std::net::IpAddr,
    session: ServerSession,
    live: Option<Live>,
    /// Set instead of `live` for a provisioning session.
    provisioning: Option<Box<provisioning::ProvisionLive>>,
    /// A packet held back by the rate limit, with when it may go.
    held: Option<(Held, Timestamp)>,
    last_input: Timestamp,
    close_reason: Option<Reason>,
    shutdown: watch::Receiver<bool>,
    read_buf: ReadBuffer,
}

impl<S> std::fmt::Debug for Driver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("conn_id", &self.conn_id)
            .field("live", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn new(stream: S, shared: Arc<Shared>, conn_id: u64, peer: std::net::IpAddr) -> Self {
        let now = Timestamp::from_millis(shared.clock.unix_millis());
        let config = ServerConfig::new(shared.options.limits.max_packet_size())
            .connect_timeout(shared.options.connect_timeout)
            .receive_maximum(u16::try_from(pipeline::DEFAULT_CAP).unwrap_or(u16::MAX));
        Self {
            stream,
            shutdown: shared.shutdown.clone(),
            conn_id,
            peer,
            session: ServerSession::new(config, now),
            live: None,
            provisioning: None,
            held: None,
            last_input: now,
            close_reason: None,
            read_buf: ReadBuffer::default(),
            shared,
        }
    }

    fn now(&self) -> Timestamp {
        self.instant().mqtt()
    }

    fn registry_now(&self) -> RegistryTime {
        self.instant().registry()
    }

    /// The one clock reading an event is handled with.
    fn instant(&self) -> Now {
        Now {
            micros: self.shared.clock.unix_micros(),
        }
    }

    /// Runs the connection until `until`; the driver comes back when that is
    /// [`Until::Settled`] and the device settled.
    async fn run(mut self: Box<Self>, until: Until) -> Option<Box<Self>> {
        loop {
            self.process_events().await;
            if !self.flush().await {
                self.finish_abruptly("write_failed");
                break;
            }
            if self.session.is_closed() {
                break;
            }
            // When a device that is admitted settles; it is woken for it even if it
            // sends nothing (an idle device would stay where admission runs, at its
            // priority and in its larger task, until its next packet).
            let settles_at = match (until, &self.live) {
                (Until::Settled, Some(l)) => Some(l.connected_at.saturating_add(SETTLE)),
                _ => None,
            };
            if settles_at.is_some_and(|at| self.now() >= at) {
                return Some(self);
            }
            match self.wait(settles_at).await {
                Wake::Read(Ok(0)) => {
                    self.finish_abruptly("eof");
                    break;
                }
                Wake::Read(Err(e)) => {
                    tracing::debug!(error = %e, "read failed");
                    self.finish_abruptly("read_failed");
                    break;
                }
                Wake::Read(Ok(n)) => {
                    let now = self.now();
                    self.last_input = now;
                    self.shared.counters.bytes_in.increment(n as u64);
                    let bytes = self.read_buf.filled(n);
                    self.session.handle_input(bytes, now);
                }
                Wake::Timer => self.on_timer().await,
                Wake::Shutdown => {
                    self.drain_pipeline().await;
                    self.close(Reason::new(
                        Code::Cancelled,
                        "shutdown",
                        "The connection is closed because the server is shutting down.",
                    ));
                }
                Wake::Delivered(Delivery::Close(reason)) => {
                    self.close(reason.unwrap_or_else(|| {
                        Reason::new(
                            Code::Cancelled,
                            "closed",
                            "The server closed the connection.",
                        )
                    }))
                }
                // Boxed, as the other rare handlers: the loop's future is as large as
                // its largest await, and it is most of an idle connection's memory.
                Wake::Delivered(Delivery::Control(control)) => {
                    Box::pin(self.on_control(*control)).await;
                }
                Wake::Delivered(Delivery::Config) => self.on_config_changed(),
                Wake::Settled(result) => self.on_appended(result),
            }
        }
        self.cleanup().await;
        None
    }

    /// Waits for the next thing to do.
    async fn wait(&mut self, settles_at: Option<Timestamp>) -> Wake {
        let now = self.now();
        let deadline = self.deadline().into_iter().chain(settles_at).min();
        let can_read =
            self.held.is_none() && self.live.as_ref().is_none_or(|l| l.pipeline.can_accept());
        let Self {
            stream,
            read_buf,
            session,
            live,
            shutdown,
            ..
        } = self;
        let sleep = async {
            match deadline {
                Some(at) => {
                    let wait = at.as_millis().saturating_sub(now.as_millis());
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                None => pending::<()>().await,
            }
        };
        let (inbox, pipeline) = match live {
            Some(l) => (Some(&l.inbox), Some(&mut l.pipeline)),
            None => (None, None),
        };
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => Wake::Shutdown,
            delivery = delivered(inbox) => Wake::Delivered(delivery),
            // Timers before input, so a client that keeps sending cannot starve the
            // expiry, keep-alive and redelivery timers.
            () = sleep => Wake::Timer,
            result = oldest(pipeline) => Wake::Settled(result),
            read = read_or_release(stream, read_buf, session), if can_read => Wake::Read(read),
        }
    }

    /// The earliest timer: the session's (CONNECT, keep-alive), token expiry, idle
    /// cut, config push, held message, the oldest queued append's sink timeout.
    fn deadline(&self) -> Option<Timestamp> {
        let mut deadline = self.session.poll_timeout();
        let mut consider = |t: Option<Timestamp>| {
            if let Some(t) = t {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
        };
        if let Some(provisioning) = &self.provisioning {
            consider(Some(provisioning.expires_at));
            consider(Some(
                self.last_input
                    .saturating_add(self.shared.options.idle_timeout),
            ));
        }
        if let Some(live) = &self.live {
            consider(Some(live.expires_at));
            consider(Some(
                self.last_input
                    .saturating_add(self.shared.options.idle_timeout),
            ));
            consider(live.config.deadline());
            consider(live.pipeline.oldest().and_then(AppendTask::deadline));
            for attached in live.gateway.iter().flat_map(|g| g.attached.values()) {
                consider(attached.config.deadline());
            }
        }
        consider(self.held.as_ref().map(|(_, at)| *at));
        deadline
    }

    /// Writes what the session queued. False when the peer is gone.
    async fn flush(&mut self) -> bool {
        let mut wrote = false;
        while let Some(bytes) = self.session.poll_transmit() {
            let write = self.stream.write_all(&bytes);
            match tokio::time::timeout(self.shared.options.write_timeout, write).await {
                Ok(Ok(())) => {
                    wrote = true;
                    self.shared.counters.bytes_out.increment(bytes.len() as u64);
                }
                _ => return false,
            }
        }
        if wrote {
            let flush = self.stream.flush();
            return matches!(
                tokio::time::timeout(self.shared.options.write_timeout, flush).await,
                Ok(Ok(()))
            );
        }
        true
    }

    async fn process_events(&mut self) {
        loop {
            if self.session.is_closed() {
                self.held = None;
            } else {
                // A packet held by the rate limit goes first, when its time comes.
                if let Some((held, at)) = self.held.take() {
                    let now = self.instant();
                    if now.mqtt() < at {
                        self.held = Some((held, at));
                        return;
                    }
                    match held {
                        Held::Publish(publish, properties) => {
                            self.on_publish(publish, properties, now).await;
                        }
                        Held::Subscribe(subscribe) => self.on_subscribe(subscribe).await,
                    }
                    continue;
                }
                if self.live.as_ref().is_some_and(|l| !l.pipeline.can_accept()) {
                    return;
                }
            }
            let Some(event) = self.session.poll_event() else {
                return;
            };
            match event {
                Event::Connect(connect) => Box::pin(self.on_connect(connect)).await,
                Event::Publish(publish) => {
                    let now = self.instant();
                    self.on_publish(publish, Vec::new(), now).await;
                }
                Event::PublishWithProperties(publish, properties) => {
                    let now = self.instant();
                    self.on_publish(publish, properties, now).await;
                }
                Event::Subscribe(subscribe) => self.on_subscribe(subscribe).await,
                Event::Unsubscribe(unsubscribe) => self.on_unsubscribe(&unsubscribe),
                Event::Delivered(id) => self.on_delivered(id),
                Event::Heartbeat => {
                    if let Some(live) = &self.live {
                        self.record_on(&live.address, ActivityKind::Heartbeat, self.instant());
                    }
                }
                Event::Reauthenticate(token) => Box::pin(self.on_reauthenticate(token)).await,
                Event::Closed(reason) => self.on_closed(reason),
            }
        }
    }

    /// Ends the session from the server side; the reason is recorded when the
    /// session reports the close.
    fn close(&mut self, reason: Reason) {
        self.session
            .close_with_reason(super::reason_codes::disconnect(&reason), &reason.message);
        if self.close_reason.is_none() {
            self.close_reason = Some(reason);
        }
    }

    fn record_on(&self, device: &DeviceAddress, kind: ActivityKind, now: Now) {
        self.shared.activity.record(Activity {
            registry: device.registry.clone(),
            num_id: device.num_id,
            kind,
            at: now.registry(),
        });
    }

    fn record_error(&self, device: &DeviceAddress, reason: &Reason) {
        self.shared.activity.record(Activity {
            registry: device.registry.clone(),
            num_id: device.num_id,
            kind: ActivityKind::Error(reason.status(Transport::Mqtt)),
            at: self.registry_now(),
        });
    }

    async fn on_timer(&mut self) {
        let now = self.now();
        self.session.handle_timeout(now);
        self.expire_append(now);
        let idle = self.shared.options.idle_timeout;
        // A provisioning session ends on its token's expiry and idleness too.
        let expires_at = match (&self.live, &self.provisioning) {
            (Some(live), _) => live.expires_at,
            (None, Some(provisioning)) => provisioning.expires_at,
            (None, None) => return,
        };
        if now >= expires_at {
            return self.close(Reason::new(
                Code::Unauthenticated,
                "jwt_expired",
                "The authorization token expired.",
            ));
        }
        if now >= self.last_input.saturating_add(idle) {
            return self.close(Reason::new(
                Code::DeadlineExceeded,
                "idle",
                format!(
                    "The connection was closed because it was idle for {} s (no message and \
                     no PINGREQ).",
                    idle.as_secs()
                ),
            ));
        }
        if self.live.is_none() {
            return;
        }
        self.refresh_attached_configs();
        self.pump_config(now);
    }

    /// The session ended: count it, and record why on the device when it says
    /// something the device's owner should know.
    fn on_closed(&mut self, reason: CloseReason) {
        let recorded = match reason {
            CloseReason::ClientDisconnected => None,
            CloseReason::Refused(_) => {
                return;
            }
            CloseReason::ClosedByServer => self.close_reason.take(),
            CloseReason::KeepAliveTimeout => Some(Reason::new(
                Code::DeadlineExceeded,
                "keepalive",
                "The connection was closed because MQTT keep-alive check failed.",
            )),
            CloseReason::ConnectTimeout => Some(Reason::new(
                Code::DeadlineExceeded,
                "connect_timeout",
                "no CONNECT received in time",
            )),
            other => Some(Reason::new(
                Code::InvalidArgument,
                "protocol_error",
                format!("The connection was closed because of a protocol error: {other}."),
            )),
        };
        let label = recorded.as_ref().map_or("client_disconnect", |r| r.label);
        metrics::counter!("tether_mqtt_disconnects_total", "reason" => label).increment(1);
        if self.live.is_some() {
            self.shared.log_budget.disconnected();
        }
        match (&self.live, recorded) {
            (Some(live), Some(reason)) => {
                if self.shared.log_budget.allow(&device_key(&live.address)) {
                    tracing::info!(
                        reason = reason.label,
                        "connection closed: {}",
                        reason.message
                    );
                }
                self.record_error(&live.address, &reason);
            }
            (None, Some(reason)) => {
                tracing::debug!(
                    reason = reason.label,
                    "connection closed before CONNECT: {}",
                    reason.message
                );
            }
            (_, None) => tracing::debug!("device disconnected"),
        }
    }

    /// The socket failed or the peer closed it without DISCONNECT.
    fn finish_abruptly(&mut self, label: &'static str) {
        metrics::counter!("tether_mqtt_disconnects_total", "reason" => label).increment(1);
        if self.live.is_some() {
            self.shared.log_budget.disconnected();
        }
        tracing::debug!(reason = label, "connection lost");
    }

    /// Whether a line about this connection's device (or, before CONNECT, its source
    /// address) may go to the log now.
    fn may_log(&self) -> bool {
        match &self.live {
            Some(live) => self.shared.log_budget.allow(&device_key(&live.address)),
            None => self.shared.log_budget.allow(&format!("ip:{}", self.peer)),
        }
    }

    async fn cleanup(&mut self) {
        self.detach_all();
        if let Some(live) = self.live.take() {
            self.shared
                .connections
                .deregister(&live.address, self.conn_id);
            // Appends still running finish on their own; their messages are durable
            // but unacknowledged, so the device resends (at least once).
            let mut pipeline = live.pipeline;
            pipeline.clear();
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.stream.shutdown()).await;
    }
}

/// What the connections table delivered: a close first, then a newer config, then
/// an API message.
async fn delivered(inbox: Option<&Inbox>) -> Delivery {
    match inbox {
        Some(inbox) => inbox.delivery().await,
        None => pending().await,
    }
}

/// Why a device's work was refused after its connection ended under it.
fn not_connected() -> Reason {
    Reason::new(Code::Unavailable, "internal", "not connected")
}

/// The log budget's key for a device.
fn device_key(device: &DeviceAddress) -> String {
    format!("device:{}/{}", device.registry, device.num_id)
}

/// The oldest append of the pipeline, while it runs.
async fn oldest(pipeline: Option<&mut AckPipeline<AppendTask>>) -> Result<(), AppendError> {
    match pipeline.and_then(AckPipeline::oldest_running) {
        Some(task) => task.await,
        None => pending().await,
    }
}

/// Reads into `buf`; while nothing can be read the buffer goes back to the allocator
/// (and comes back, the same size, with the next poll), and so does the session's
/// empty event queue: most connections are idle devices, and a read buffer held
/// across the wait was a tenth of one.
async fn read_or_release<S>(
    stream: &mut S,
    buf: &mut ReadBuffer,
    session: &mut ServerSession,
) -> std::io::Result<usize>
where
    S: AsyncRead + Unpin,
{
    std::future::poll_fn(|cx| {
        let mut space = ReadBuf::new(buf.space());
        match Pin::new(&mut *stream).poll_read(cx, &mut space) {
            Poll::Ready(read) => Poll::Ready(read.map(|()| space.filled().len())),
            // Pending put nothing into the buffer (TLS keeps what it has read).
            Poll::Pending => {
                buf.release();
                session.release_idle_memory();
                Poll::Pending
            }
        }
    })
    .await
}

#[cfg(test)]
mod future_sizes {
    use super::*;

    type Tls = crate::listen::Conn;

    fn output_size<A, B, R>(_: impl FnOnce(A, B) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// An idle connection is mostly its task's future: it must hold a pointer to the
    /// driver, not the driver (2.8 KB with its TLS stream), and not a second copy of
    /// it (what `async fn run(mut self)` did: 7.6 KB).
    #[test]
    fn an_idle_connection_s_future_stays_small() {
        let driver = std::mem::size_of::<Driver<Tls>>();
        let run = output_size(Driver::<Tls>::run);
        assert!(driver > 2000, "the driver holds the TLS stream: {driver}");
        assert!(
            run < driver,
            "run() holds the boxed driver: {run} vs {driver}"
        );
        // 2.6 KB while the rare handlers (CONNECT, control, attach, provisioning,
        // key rotation, re-authentication) were awaited inline: a future is as large
        // as its largest await.
        assert!(run <= 1536, "run() future is {run} bytes");
    }
}

#[cfg(test)]
mod idle_reads {
    use std::future::Future as _;
    use std::task::Context;

    use tokio::io::AsyncWriteExt as _;

    use super::*;
    use crate::listen::tls::testing::tcp_pair;

    /// Polls a read once: it must wait, as nothing was sent.
    fn poll_once<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut ReadBuffer) {
        let mut session = session();
        let read = std::pin::pin!(read_or_release(stream, buf, &mut session));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(read.poll(&mut cx).is_pending(), "nothing was sent");
    }

    fn session() -> ServerSession {
        ServerSession::new(ServerConfig::new(64 * 1024), Timestamp::from_millis(0))
    }

    #[tokio::test]
    async fn a_waiting_read_holds_no_buffer_and_a_ready_one_gets_the_bytes() {
        let (mut client, mut server) = tcp_pair().await;
        let mut buf = ReadBuffer::default();
        poll_once(&mut server, &mut buf);
        assert_eq!(buf.capacity(), 0, "released while waiting");
        client.write_all(b"ping").await.expect("write");
        let n = read_or_release(&mut server, &mut buf, &mut session())
            .await
            .expect("read");
        assert_eq!(buf.filled(n), b"ping");
        poll_once(&mut server, &mut buf);
        assert_eq!(buf.capacity(), 0, "released again once read");
    }

    /// Over TLS a read that waits may have taken part of a record into rustls: the
    /// buffer goes back all the same, and the record's bytes arrive whole.
    #[tokio::test]
    async fn over_tls_releasing_between_partial_records_loses_nothing() {
        let (client, server) = tcp_pair().await;
        let crate::listen::tls::testing::Peers {
            mut client,
            mut server,
            _dir,
        } = crate::listen::tls::testing::handshake(client, server, &[]).await;

        let mut buf = ReadBuffer::default();
        poll_once(&mut server, &mut buf);
        assert_eq!(buf.capacity(), 0);
        let sent: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
        let writer = tokio::spawn(async move {
            // One record of 6,000 bytes: TLS reads a socket 4 KiB at a time, so the
            // first read finds part of it.
            client.write_all(&sent).await.expect("write");
            client.flush().await.expect("flush");
            (client, sent)
        });
        let mut got = Vec::new();
        while got.len() < 6000 {
            let n = tokio::time::timeout(
                Duration::from_secs(5),
                read_or_release(&mut server, &mut buf, &mut session()),
            )
            .await
            .expect("bytes within 5 s")
            .expect("read");
            assert!(n > 0, "no end before all bytes");
            got.extend_from_slice(buf.filled(n));
        }
        let (_client, sent) = writer.await.expect("writer");
        assert_eq!(got, sent);
        poll_once(&mut server, &mut buf);
        assert_eq!(buf.capacity(), 0, "released once everything was read");
    }
}
