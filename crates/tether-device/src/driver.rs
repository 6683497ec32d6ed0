//! The task that owns the connection: a thin async loop around the sans-io
//! [`ClientSession`], plus the policies (refresh, backoff, endpoints).
//!
//! ```text
//!  first_connect ──▶ serve ──refresh due──▶ connect a new one (fresh JWT) ─ok─▶ adopt in-flight, serve
//!                      │                      └─failed: keep the old one, retry after a backoff delay
//!                      └─lost──▶ round over endpoints ─failed─▶ Backoff(wait) ─▶ round …
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tether_iot::IotTopic;
use tether_mqtt::codec::v5::{Connect5, PROTOCOL_LEVEL_5, Properties, ReasonCode};
use tether_mqtt::session::Timestamp;
use tether_mqtt::session::client::{ClientConfig, ClientEvent, ClientSession, CloseReason};
use tether_mqtt::{Connect, ConnectReturnCode, PacketId, QoS, SubAckCode, TopicFilter, TopicName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::endpoints::{Endpoint, Endpoints};
use crate::error::{ConnectError, GatewayError, PublishError, Stage};
use crate::messages::{Command, Config, Status, Streams};
use crate::options::{DeviceOptions, MqttVersion};
use crate::transport::{self, BoxIo};

/// The Authentication Method under which the JWT travels in MQTT 5.
const JWT_AUTH_METHOD: &str = "jwt";

/// A connection that lasted this long counts as stable: losing it starts the backoff
/// from the beginning; losing a shorter one keeps backing off (no tight loops when a
/// server accepts and drops at once).
const STABLE: Duration = Duration::from_secs(30);

type Done = oneshot::Sender<Result<(), PublishError>>;

/// What the [`crate::Device`] handle asks of the driver.
#[derive(Debug)]
pub(crate) enum Request {
    Publish {
        topic: TopicName,
        payload: Vec<u8>,
        qos: QoS,
        done: Done,
    },
    Attach {
        device: String,
        payload: Vec<u8>,
        done: Done,
    },
    Detach {
        device: String,
        done: Done,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// What a QoS 1 packet id is waiting for.
#[derive(Debug)]
enum Pending {
    Publish(Done),
    Attach {
        device: String,
        payload: Vec<u8>,
        done: Option<Done>,
    },
    Detach {
        device: String,
        done: Done,
    },
}

/// The receiving ends for the handle.
#[derive(Debug)]
pub(crate) struct Outputs {
    pub status: watch::Receiver<Status>,
    pub config: watch::Receiver<Option<Config>>,
    pub streams: Streams,
}

/// One live connection.
pub(crate) struct Conn {
    io: BoxIo,
    session: ClientSession,
    endpoint: Endpoint,
    since: Instant,
    refresh_at: Instant,
    exp: u64,
    /// MQTT 5 with the JWT as Authentication Data: refreshed with AUTH.
    reauth: bool,
    /// A re-authentication sent and not yet answered: the new token's `exp` and when
    /// it was minted.
    reauth_pending: Option<(u64, Instant)>,
}

enum Exit {
    Refresh,
    Lost(String),
    Shutdown,
}

pub(crate) struct Driver {
    opts: DeviceOptions,
    endpoints: Endpoints,
    backoff: Backoff,
    epoch: Instant,
    requests: mpsc::Receiver<Request>,
    stash: VecDeque<Request>,
    status: watch::Sender<Status>,
    config: watch::Sender<Option<Config>>,
    configs: mpsc::Sender<Config>,
    commands: mpsc::Sender<Command>,
    errors: mpsc::Sender<GatewayError>,
    pending: HashMap<u16, Pending>,
    /// Attached devices and their attach payloads, re-sent after each reconnect.
    attached: BTreeMap<String, Vec<u8>>,
    /// Whether the next CONNECT is MQTT 5 ([`MqttVersion::Auto`] turns it off for good
    /// once a server refuses MQTT 5).
    v5: bool,
}

impl Driver {
    pub(crate) fn new(
        opts: DeviceOptions,
        requests: mpsc::Receiver<Request>,
    ) -> Result<(Driver, Outputs), ConnectError> {
        let endpoints = Endpoints::new(opts.endpoints.clone(), opts.return_after)
            .ok_or_else(|| ConnectError::Options("no endpoint given".into()))?;
        let first = endpoints.current().clone();
        let (status, status_rx) = watch::channel(Status::Connecting { endpoint: first });
        let (config, config_rx) = watch::channel(None);
        let (configs, configs_rx) = mpsc::channel(64);
        let (commands, commands_rx) = mpsc::channel(64);
        let (errors, errors_rx) = mpsc::channel(64);
        let v5 = opts.mqtt_version != MqttVersion::V3_1_1;
        let driver = Driver {
            backoff: opts.backoff.clone(),
            opts,
            endpoints,
            epoch: Instant::now(),
            requests,
            stash: VecDeque::new(),
            status,
            config,
            configs,
            commands,
            errors,
            pending: HashMap::new(),
            attached: BTreeMap::new(),
            v5,
        };
        let outputs = Outputs {
            status: status_rx,
            config: config_rx,
            streams: Streams {
                configs: configs_rx,
                commands: commands_rx,
                errors: errors_rx,
            },
        };
        Ok((driver, outputs))
    }

    /// One round over the endpoints; on success the connection is subscribed.
    pub(crate) async fn first_connect(mut self) -> Result<(Driver, Conn), ConnectError> {
        let mut conn = self.round(true).await?;
        self.after_connect(&mut conn);
        Ok((self, conn))
    }

    /// Serves until shut down.
    pub(crate) async fn run(mut self, mut conn: Conn) {
        loop {
            match self.serve(&mut conn).await {
                Exit::Shutdown => return,
                Exit::Refresh if conn.reauth && conn.reauth_pending.is_none() => {
                    self.reauthenticate(&mut conn);
                }
                Exit::Refresh => self.refresh(&mut conn).await,
                Exit::Lost(why) => {
                    info!(endpoint = %conn.endpoint.host, port = conn.endpoint.port, %why, "connection lost");
                    if conn.since.elapsed() >= STABLE {
                        self.backoff.reset();
                    } else {
                        // Why it dropped (an MQTT 5 server says why) is the status's.
                        let why = ConnectError::Protocol(format!(
                            "the connection dropped right after it was made: {why}"
                        ));
                        if self.wait_backoff(Some(Arc::new(why))).await {
                            return self.finish(conn.session);
                        }
                    }
                    match self.reconnect().await {
                        Some(mut new) => {
                            new.session.adopt(conn.session, self.now());
                            self.after_connect(&mut new);
                            conn = new;
                        }
                        None => return self.finish(conn.session),
                    }
                }
            }
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn instant(&self, t: Timestamp) -> Instant {
        self.epoch + Duration::from_millis(t.as_millis())
    }

    /// Tries each endpoint once, from the current one.
    async fn round(&mut self, report: bool) -> Result<Conn, ConnectError> {
        let mut errors = Vec::new();
        loop {
            let endpoint = self.endpoints.current().clone();
            if report {
                self.status.send_replace(Status::Connecting {
                    endpoint: endpoint.clone(),
                });
            }
            let mut attempt = self.attempt(&endpoint).await;
            if self.v5
                && self.opts.mqtt_version == MqttVersion::Auto
                && matches!(&attempt, Err(e) if refuses_mqtt5(e))
            {
                // The server knows no MQTT 5 (or not our method): 3.1.1 from now on.
                info!(host = %endpoint.host, "the server refused MQTT 5; using MQTT 3.1.1");
                self.v5 = false;
                attempt = self.attempt(&endpoint).await;
            }
            match attempt {
                Ok(conn) => {
                    self.endpoints.connected(Instant::now().into_std());
                    self.status.send_replace(Status::Connected {
                        endpoint,
                        since: conn.since,
                        token_expires: conn.exp,
                        refresh_error: None,
                    });
                    info!(host = %conn.endpoint.host, port = conn.endpoint.port, "connected");
                    return Ok(conn);
                }
                Err(e) if e.is_endpoint_failure() => {
                    warn!(host = %endpoint.host, port = endpoint.port, error = %e, "endpoint failed");
                    errors.push((endpoint, e));
                    if self.endpoints.failed() {
                        return Err(if errors.len() == 1 {
                            errors.remove(0).1
                        } else {
                            ConnectError::AllEndpoints(errors)
                        });
                    }
                }
                // A refusal or a token problem: every endpoint would say the same.
                Err(e) => return Err(e),
            }
        }
    }

    fn mint(&self) -> Result<(String, u64), ConnectError> {
        crate::token::mint_token(
            &*self.opts.signer,
            &self.opts.device.project,
            self.opts.clock.unix_now(),
            self.opts.refresh.lifetime().as_secs(),
        )
        .map_err(ConnectError::Token)
    }

    async fn attempt(&self, endpoint: &Endpoint) -> Result<Conn, ConnectError> {
        let started = Instant::now();
        let (token, exp) = self.mint()?;
        let limit = self.opts.connect_timeout;
        let (mut io, _peer) = transport::open(endpoint, &self.opts.security, limit).await?;
        let mut cfg = ClientConfig::default();
        cfg.connack_timeout = limit;
        let mut session = ClientSession::new(cfg);
        let mut connect = Connect::new(self.opts.device.client_id());
        connect.keep_alive = self.opts.keep_alive;
        let sent = if self.v5 {
            connect.protocol_level = PROTOCOL_LEVEL_5;
            let connect = Connect5 {
                connect,
                properties: Properties {
                    auth_method: Some(JWT_AUTH_METHOD.into()),
                    auth_data: Some(token.into_bytes()),
                    ..Properties::default()
                },
                will_properties: Properties::default(),
            };
            session.connect_v5(&connect, self.now())
        } else {
            // IoT Core ignores the user name; some servers need one to read the password.
            connect.username = Some("unused".into());
            connect.password = Some(token.into_bytes());
            session.connect(&connect, self.now())
        };
        sent.map_err(|e| ConnectError::Protocol(e.to_string()))?;
        self.handshake(&mut io, &mut session).await?;
        Ok(Conn {
            io,
            session,
            endpoint: endpoint.clone(),
            since: Instant::now(),
            refresh_at: started + self.opts.refresh.reconnect_after(),
            exp,
            reauth: self.v5,
            reauth_pending: None,
        })
    }

    async fn handshake(
        &self,
        io: &mut BoxIo,
        session: &mut ClientSession,
    ) -> Result<(), ConnectError> {
        let mut buf = vec![0u8; 8192];
        let closed = |e: std::io::Error| {
            ConnectError::Protocol(format!("the connection failed before CONNACK: {e}"))
        };
        loop {
            while let Some(bytes) = session.poll_transmit() {
                io.write_all(&bytes).await.map_err(closed)?;
            }
            io.flush().await.map_err(closed)?;
            while let Some(event) = session.poll_event() {
                match event {
                    ClientEvent::Connected { .. } => return Ok(()),
                    ClientEvent::Closed(CloseReason::Refused(code)) => {
                        return Err(ConnectError::refused(code));
                    }
                    ClientEvent::Closed(CloseReason::RefusedV5 { code, reason }) => {
                        return Err(ConnectError::refused_v5(code, reason.as_deref()));
                    }
                    ClientEvent::Closed(CloseReason::ConnAckTimeout) => {
                        return Err(ConnectError::Timeout {
                            stage: Stage::ConnAck,
                        });
                    }
                    ClientEvent::Closed(other) => {
                        return Err(ConnectError::Protocol(other.to_string()));
                    }
                    _ => {}
                }
            }
            let deadline = session.poll_timeout().map_or_else(
                || Instant::now() + self.opts.connect_timeout,
                |t| self.instant(t),
            );
            tokio::select! {
                read = io.read(&mut buf) => match read {
                    Ok(0) => return Err(ConnectError::Protocol(
                        "the server closed the connection before CONNACK".into(),
                    )),
                    Ok(n) => session.handle_input(&buf[..n], self.now()),
                    Err(e) => return Err(closed(e)),
                },
                () = sleep_until(deadline) => session.handle_timeout(self.now()),
            }
        }
    }

    /// Subscribes (config, commands, errors) and re-attaches devices.
    fn after_connect(&mut self, conn: &mut Conn) {
        let now = self.now();
        let mut filters = device_filters(&self.opts.device.device);
        if self.opts.gateway
            && let Ok(f) = TopicFilter::new(format!("/devices/{}/errors", self.opts.device.device))
        {
            // IoT Core accepts only QoS 0 on the errors topic.
            filters.push((f, QoS::AtMostOnce));
        }
        if let Err(e) = conn.session.subscribe(filters, now) {
            warn!(error = %e, "cannot subscribe");
        }
        let attached = std::mem::take(&mut self.attached);
        for (device, payload) in attached {
            self.send_attach(conn, device, payload, None);
        }
    }

    fn send_attach(
        &mut self,
        conn: &mut Conn,
        device: String,
        payload: Vec<u8>,
        done: Option<Done>,
    ) {
        let Ok(topic) = TopicName::new(format!("/devices/{device}/attach")) else {
            return;
        };
        match conn
            .session
            .publish(topic, payload.clone(), QoS::AtLeastOnce, self.now())
        {
            Ok(Some(id)) => {
                self.pending.insert(
                    id.get(),
                    Pending::Attach {
                        device,
                        payload,
                        done,
                    },
                );
            }
            Ok(None) => {}
            Err(e) => {
                if let Some(done) = done {
                    let _ = done.send(Err(PublishError::Session(e.to_string())));
                }
            }
        }
    }

    async fn serve(&mut self, conn: &mut Conn) -> Exit {
        let mut buf = vec![0u8; 16 * 1024];
        while let Some(request) = self.stash.pop_front() {
            if let Some(exit) = self.handle_request(conn, request).await {
                return exit;
            }
        }
        loop {
            while let Some(event) = conn.session.poll_event() {
                if let Some(exit) = self.on_event(conn, event) {
                    return exit;
                }
            }
            if let Err(e) = flush(conn).await {
                return Exit::Lost(format!("write failed: {e}"));
            }
            let timer = conn.session.poll_timeout().map(|t| self.instant(t));
            let timer = timer.unwrap_or(conn.refresh_at).min(conn.refresh_at);
            tokio::select! {
                read = conn.io.read(&mut buf) => match read {
                    Ok(0) => conn.session.transport_closed(),
                    Ok(n) => conn.session.handle_input(&buf[..n], self.now()),
                    Err(e) => return Exit::Lost(format!("read failed: {e}")),
                },
                request = self.requests.recv() => {
                    let request = match request {
                        Some(r) => r,
                        None => {
                            // Every handle is gone: disconnect cleanly.
                            conn.session.disconnect();
                            let _ = flush(conn).await;
                            self.fail_pending();
                            self.status.send_replace(Status::Closed);
                            return Exit::Shutdown;
                        }
                    };
                    if let Some(exit) = self.handle_request(conn, request).await {
                        return exit;
                    }
                }
                () = sleep_until(timer) => {
                    if Instant::now() >= conn.refresh_at {
                        return Exit::Refresh;
                    }
                    conn.session.handle_timeout(self.now());
                }
            }
        }
    }

    async fn handle_request(&mut self, conn: &mut Conn, request: Request) -> Option<Exit> {
        let now = self.now();
        match request {
            Request::Publish {
                topic,
                payload,
                qos,
                done,
            } => match conn.session.publish(topic, payload, qos, now) {
                Ok(Some(id)) => {
                    self.pending.insert(id.get(), Pending::Publish(done));
                }
                Ok(None) => {
                    let _ = done.send(Ok(()));
                }
                Err(tether_mqtt::session::ClientError::NotConnected) => {
                    let _ = done.send(Err(PublishError::NotConnected));
                }
                Err(e) => {
                    let _ = done.send(Err(PublishError::Session(e.to_string())));
                }
            },
            Request::Attach {
                device,
                payload,
                done,
            } => self.send_attach(conn, device, payload, Some(done)),
            Request::Detach { device, done } => {
                let topic = TopicName::new(format!("/devices/{device}/detach"));
                match topic.map(|t| {
                    conn.session
                        .publish(t, b"{}".to_vec(), QoS::AtLeastOnce, now)
                }) {
                    Ok(Ok(Some(id))) => {
                        self.pending
                            .insert(id.get(), Pending::Detach { device, done });
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => {
                        let _ = done.send(Err(PublishError::Session(e.to_string())));
                    }
                    Err(e) => {
                        let _ = done.send(Err(PublishError::Topic(e.to_string())));
                    }
                }
            }
            Request::Shutdown { done } => {
                conn.session.disconnect();
                let _ = flush(conn).await;
                let _ = conn.io.shutdown().await;
                self.fail_pending();
                self.status.send_replace(Status::Closed);
                let _ = done.send(());
                return Some(Exit::Shutdown);
            }
        }
        None
    }

    fn on_event(&mut self, conn: &mut Conn, event: ClientEvent) -> Option<Exit> {
        let now = self.now();
        match event {
            ClientEvent::Message {
                topic,
                payload,
                ack,
                ..
            } => {
                self.route(&topic, payload);
                // Acknowledged once handed to the application's watch and channel.
                if let Some(id) = ack {
                    conn.session.ack(id, now);
                }
            }
            ClientEvent::Published(id) => self.published(conn, id),
            ClientEvent::Subscribed { codes, .. } if codes.contains(&SubAckCode::Failure) => {
                warn!(?codes, "the server refused a subscription");
            }
            ClientEvent::Reauthenticated => self.reauthenticated(conn),
            ClientEvent::Closed(reason) => return Some(Exit::Lost(reason.to_string())),
            _ => {}
        }
        None
    }

    fn published(&mut self, conn: &mut Conn, id: PacketId) {
        match self.pending.remove(&id.get()) {
            Some(Pending::Publish(done)) => {
                let _ = done.send(Ok(()));
            }
            Some(Pending::Attach {
                device,
                payload,
                done,
            }) => {
                if let Err(e) = conn.session.subscribe(device_filters(&device), self.now()) {
                    warn!(%device, error = %e, "cannot subscribe for the attached device");
                }
                self.attached.insert(device, payload);
                if let Some(done) = done {
                    let _ = done.send(Ok(()));
                }
            }
            Some(Pending::Detach { device, done }) => {
                self.attached.remove(&device);
                let filters = device_filters(&device).into_iter().map(|f| f.0).collect();
                let _ = conn.session.unsubscribe(filters, self.now());
                let _ = done.send(Ok(()));
            }
            None => {}
        }
    }

    fn route(&mut self, topic: &TopicName, payload: Vec<u8>) {
        match IotTopic::parse(topic.as_str()) {
            IotTopic::Config { device } => {
                let config = Config {
                    device_id: device.to_string(),
                    payload,
                };
                if device == self.opts.device.device {
                    self.config.send_replace(Some(config.clone()));
                }
                if self.configs.try_send(config).is_err() {
                    debug!("config stream full or not taken; the latest is in the watch");
                }
            }
            IotTopic::Commands { device, subfolder } => {
                let command = Command {
                    device_id: device.to_string(),
                    subfolder: subfolder.map(str::to_string),
                    payload,
                };
                if self.commands.try_send(command).is_err() {
                    warn!(
                        device,
                        "command dropped: the command stream is full or not taken"
                    );
                }
            }
            IotTopic::Errors { .. } => {
                let error = crate::error::parse_gateway_error(&payload);
                self.fail_attach(&error);
                if self.errors.try_send(error).is_err() {
                    warn!("gateway error dropped: the errors stream is full or not taken");
                }
            }
            _ => debug!(
                topic = topic.as_str(),
                "message on an unexpected topic ignored"
            ),
        }
    }

    /// The server reports a failed attach on the errors topic instead of a PUBACK.
    fn fail_attach(&mut self, error: &GatewayError) {
        if error.error_type != "GATEWAY_ATTACHMENT_ERROR" {
            return;
        }
        let id = self.pending.iter().find_map(|(id, p)| match p {
            Pending::Attach { device, .. } if *device == error.device_id => Some(*id),
            _ => None,
        });
        if let Some(Pending::Attach {
            done: Some(done), ..
        }) = id.and_then(|id| self.pending.remove(&id))
        {
            let _ = done.send(Err(PublishError::Attach(Arc::new(error.clone()))));
        }
    }

    fn fail_pending(&mut self) {
        for (_, pending) in self.pending.drain() {
            let done = match pending {
                Pending::Publish(done) | Pending::Detach { done, .. } => Some(done),
                Pending::Attach { done, .. } => done,
            };
            if let Some(done) = done {
                let _ = done.send(Err(PublishError::Closed));
            }
        }
    }

    fn finish(&mut self, _session: ClientSession) {
        self.fail_pending();
        self.status.send_replace(Status::Closed);
    }

    /// The planned refresh on an MQTT 5 connection: AUTH with a fresh token. If the
    /// answer does not come within the connect timeout, the next refresh reconnects.
    fn reauthenticate(&mut self, conn: &mut Conn) {
        let minted = self.mint();
        let sent = minted.and_then(|(token, exp)| {
            conn.session
                .reauthenticate(token.into_bytes(), self.now())
                .map(|()| exp)
                .map_err(|e| ConnectError::Protocol(e.to_string()))
        });
        match sent {
            Ok(exp) => {
                conn.reauth_pending = Some((exp, Instant::now()));
                conn.refresh_at = Instant::now() + self.opts.connect_timeout;
            }
            Err(e) => {
                warn!(error = %e, "cannot re-authenticate; reconnecting to refresh instead");
                conn.reauth = false;
                conn.refresh_at = Instant::now();
            }
        }
    }

    /// AUTH Success: the connection lives on to the new token's `exp`.
    fn reauthenticated(&mut self, conn: &mut Conn) {
        let Some((exp, minted)) = conn.reauth_pending.take() else {
            return;
        };
        conn.exp = exp;
        conn.refresh_at = minted + self.opts.refresh.reconnect_after();
        self.backoff.reset();
        info!("re-authenticated with a fresh token (MQTT 5 AUTH)");
        self.status.send_replace(Status::Connected {
            endpoint: conn.endpoint.clone(),
            since: conn.since,
            token_expires: exp,
            refresh_error: None,
        });
    }

    /// The planned reconnect with a fresh token, while the old connection still works.
    async fn refresh(&mut self, conn: &mut Conn) {
        self.endpoints.before_refresh(Instant::now().into_std());
        match self.round(false).await {
            Ok(mut new) => {
                info!("reconnected with a fresh token before expiry");
                self.backoff.reset();
                std::mem::swap(conn, &mut new);
                // `new` is now the old connection: the server closes it on the new
                // CONNECT; its unacknowledged messages move to the new session.
                let old = std::mem::replace(
                    &mut new.session,
                    ClientSession::new(ClientConfig::default()),
                );
                conn.session.adopt(old, self.now());
                self.after_connect(conn);
            }
            Err(e) => {
                // The old connection is still good until `exp`: keep it and try again.
                let wait = self.backoff.next_delay(self.opts.jitter.uniform());
                warn!(error = %e, ?wait, "token refresh failed; keeping the current connection");
                self.status.send_replace(Status::Connected {
                    endpoint: conn.endpoint.clone(),
                    since: conn.since,
                    token_expires: conn.exp,
                    refresh_error: Some(Arc::new(e)),
                });
                conn.refresh_at = Instant::now() + wait.max(Duration::from_secs(1));
            }
        }
    }

    /// Rounds with backoff between them until connected; `None` on shutdown.
    async fn reconnect(&mut self) -> Option<Conn> {
        loop {
            match self.round(true).await {
                Ok(conn) => return Some(conn),
                Err(e) => {
                    warn!(error = %e, "reconnect failed");
                    if self.wait_backoff(Some(Arc::new(e))).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Sleeps one backoff delay while taking requests; true on shutdown.
    async fn wait_backoff(&mut self, last_error: Option<Arc<ConnectError>>) -> bool {
        let wait = self.backoff.next_delay(self.opts.jitter.uniform());
        let last_error = last_error.unwrap_or_else(|| {
            Arc::new(ConnectError::Protocol(
                "the connection dropped right after it was made".into(),
            ))
        });
        self.status.send_replace(Status::Backoff {
            attempt: self.backoff.attempts(),
            wait,
            last_error,
        });
        let until = Instant::now() + wait;
        loop {
            tokio::select! {
                () = sleep_until(until) => return false,
                request = self.requests.recv() => match request {
                    None => return true,
                    Some(Request::Shutdown { done }) => {
                        let _ = done.send(());
                        return true;
                    }
                    Some(Request::Publish { qos: QoS::AtMostOnce, done, .. }) => {
                        let _ = done.send(Err(PublishError::NotConnected));
                    }
                    Some(other) => self.stash.push_back(other),
                },
            }
        }
    }
}

/// Whether a refusal says the server does not take MQTT 5 with the JWT as
/// Authentication Data: 3.1.1's CONNACK 0x01, or MQTT 5's 0x84 or 0x8C.
fn refuses_mqtt5(error: &ConnectError) -> bool {
    match error {
        ConnectError::Refused {
            code: ConnectReturnCode::UnacceptableProtocolVersion,
            ..
        } => true,
        ConnectError::Refused {
            reason_code: Some(code),
            ..
        } => matches!(
            *code,
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION | ReasonCode::BAD_AUTHENTICATION_METHOD
        ),
        _ => false,
    }
}

fn device_filters(device: &str) -> Vec<(TopicFilter, QoS)> {
    [
        format!("/devices/{device}/config"),
        format!("/devices/{device}/commands/#"),
    ]
    .into_iter()
    .filter_map(|f| TopicFilter::new(f).ok())
    .map(|f| (f, QoS::AtLeastOnce))
    .collect()
}

async fn flush(conn: &mut Conn) -> std::io::Result<()> {
    let mut wrote = false;
    while let Some(bytes) = conn.session.poll_transmit() {
        conn.io.write_all(&bytes).await?;
        wrote = true;
    }
    if wrote {
        conn.io.flush().await?;
    }
    Ok(())
}
