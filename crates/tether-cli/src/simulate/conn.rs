//! One simulated device: TCP (from a chosen source address), TLS, CONNECT with its
//! JWT, then publish at its rate while the run is in the publish phase, answering
//! keep-alives and (optionally) taking config and commands, until told to close.
//!
//! ```text
//!  connect ─▶ TCP ─▶ TLS ─▶ CONNECT ─▶ CONNACK 0 ─┬─ Ramp/Hold: idle, keep-alive
//!              │failed        refused ◀─CONNACK≠0  ├─ Publish: PUBLISH every gap, PUBACK → histogram
//!              ▼                                   └─ Close: DISCONNECT
//! ```
//! The session is the sans-io `tether_mqtt` client session; this is its driver.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use serde_json::Value;
use tether_mqtt::codec::v5::{Connect5, PROTOCOL_LEVEL_5, Properties};
use tether_mqtt::session::Timestamp;
use tether_mqtt::session::client::{ClientConfig, ClientEvent, ClientSession, CloseReason};
use tether_mqtt::{Connect, QoS, TopicFilter, TopicName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;

use super::stats::{ConnResult, Counters, Histogram};
use crate::clock::unix_micros;

/// The stream to the server (TLS or plain).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where the run is; every connection follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connections are being opened; the connected ones wait.
    Ramp,
    /// Everyone publishes; the instant is the common start.
    Publish(Instant),
    /// No more sends; outstanding PUBACKs are awaited; connections stay open.
    Hold,
    /// (MQTT 5) Re-authenticate once, then stay idle.
    Reauth,
    /// Disconnect.
    Close,
}

/// What every connection shares.
pub struct Shared {
    /// Where to connect.
    pub addr: SocketAddr,
    /// TLS settings (`None` = plain MQTT).
    pub tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// Gap between one device's messages.
    pub publish_gap: Option<Duration>,
    /// QoS 1?
    pub qos1: bool,
    /// Payload size.
    pub payload: usize,
    /// PUBACK window.
    pub inflight: usize,
    /// Subscribe to config and commands.
    pub subscribe: bool,
    /// Devices in the run (spreads the first sends over one gap).
    pub devices: usize,
    /// Live counters.
    pub counters: Counters,
    /// The run's phase.
    pub phase: watch::Receiver<Phase>,
    /// Time base of the sans-io session.
    pub epoch: Instant,
    /// MQTT 5 with the token as Authentication Data.
    pub mqtt5: bool,
    /// PUBACK latency split by send time (from, to after the publish start).
    pub latency_window: Option<(Duration, Duration)>,
}

/// What one connection is.
#[derive(Debug)]
pub struct Device {
    /// Position in the run.
    pub index: usize,
    /// Device id (topics).
    pub id: String,
    /// MQTT client id.
    pub client_id: String,
    /// CONNECT password (the JWT).
    pub password: Vec<u8>,
    /// The token a re-authentication sends (empty: the CONNECT's).
    pub reauth: Vec<u8>,
    /// Local address to bind, if any.
    pub source: Option<IpAddr>,
    /// The e2e consumer rather than a device.
    pub consumer: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

fn ms(shared: &Shared, at: Instant) -> Timestamp {
    Timestamp::from_millis(u64::try_from(at.duration_since(shared.epoch).as_millis()).unwrap_or(0))
}

fn instant(shared: &Shared, t: Timestamp) -> Instant {
    shared.epoch + Duration::from_millis(t.as_millis())
}

async fn open(shared: &Shared, source: Option<IpAddr>) -> Result<Box<dyn Io>, String> {
    let tcp = connect_tcp(shared.addr, source)
        .await
        .map_err(|e| format!("TCP: {e}"))?;
    let _ = tcp.set_nodelay(true);
    Ok(match &shared.tls {
        Some((connector, name)) => Box::new(
            connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| tls_failure(&e))?,
        ),
        None => Box::new(tcp),
    })
}

async fn connect_tcp(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = if ip.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(addr).await
}

/// A failed TLS handshake as the report lists it. A hang-up before TLS is what
/// `tether serve` does past its per-address connect limit, which a simulated fleet on
/// one address reaches first: the line says so, and how to stay under it, in one
/// wording (the report keeps distinct errors only).
fn tls_failure(e: &std::io::Error) -> String {
    match tether_device::tls::classify_io(e) {
        (tether_device::TlsCause::Closed, _) => "TLS: the server closed the connection before \
            the handshake ended; Tether does so when one source address connects faster than \
            its --connect-rate-per-ip (100/s by default, bursts of 200): spread the devices \
            over addresses (--source-ips 127.0.0.2-127.0.0.9), pace them (--ramp 90), or \
            start the server with --connect-rate-per-ip 0"
            .to_string(),
        (cause, detail) => format!("TLS: {detail} ({})", cause.hint()),
    }
}

/// A connection after CONNACK.
struct Live {
    io: Box<dyn Io>,
    session: ClientSession,
    buf: Vec<u8>,
}

impl Live {
    async fn flush(&mut self, counters: &Counters) -> std::io::Result<()> {
        let mut wrote = false;
        while let Some(bytes) = self.session.poll_transmit() {
            Counters::add(&counters.bytes_out, bytes.len() as u64);
            self.io.write_all(&bytes).await?;
            wrote = true;
        }
        if wrote {
            self.io.flush().await?;
        }
        Ok(())
    }
}

enum Handshake {
    Up(Box<Live>),
    Refused(String),
    Failed(String),
}

async fn handshake(shared: &Shared, device: &Device) -> Handshake {
    let io = match open(shared, device.source).await {
        Ok(io) => io,
        Err(why) => return Handshake::Failed(why),
    };
    let mut cfg = ClientConfig::default();
    cfg.connack_timeout = Duration::from_secs(30);
    cfg.max_inflight = shared.inflight;
    let mut session = ClientSession::new(cfg);
    let mut connect = Connect::new(device.client_id.as_str());
    connect.keep_alive = 120;
    let now = ms(shared, Instant::now());
    let sent = if shared.mqtt5 {
        connect.protocol_level = PROTOCOL_LEVEL_5;
        let connect = Connect5 {
            connect,
            properties: Properties {
                auth_method: Some("jwt".into()),
                auth_data: Some(device.password.clone()),
                ..Properties::default()
            },
            will_properties: Properties::default(),
        };
        session.connect_v5(&connect, now)
    } else {
        connect.username = Some("unused".into());
        connect.password = Some(device.password.clone());
        session.connect(&connect, now)
    };
    if let Err(e) = sent {
        return Handshake::Failed(format!("CONNECT: {e}"));
    }
    let mut live = Live {
        io,
        session,
        buf: vec![0u8; 4096],
    };
    loop {
        if let Err(e) = live.flush(&shared.counters).await {
            return Handshake::Failed(format!("write: {e}"));
        }
        while let Some(event) = live.session.poll_event() {
            match event {
                ClientEvent::Connected { .. } => return Handshake::Up(Box::new(live)),
                ClientEvent::Closed(CloseReason::Refused(code)) => {
                    return Handshake::Refused(format!("CONNACK {}", code.as_u8()));
                }
                ClientEvent::Closed(CloseReason::RefusedV5 { code, reason }) => {
                    let why = reason.unwrap_or_default();
                    return Handshake::Refused(format!("CONNACK {code}: {why}"));
                }
                ClientEvent::Closed(reason) => return Handshake::Failed(reason.to_string()),
                _ => {}
            }
        }
        let n = match live.io.read(&mut live.buf).await {
            Ok(0) => return Handshake::Failed("closed before CONNACK".into()),
            Ok(n) => n,
            Err(e) => return Handshake::Failed(format!("read: {e}")),
        };
        Counters::add(&shared.counters.bytes_in, n as u64);
        let now = ms(shared, Instant::now());
        let (session, buf) = (&mut live.session, &live.buf);
        session.handle_input(&buf[..n], now);
    }
}

/// Runs one device (or the e2e consumer) for the whole run.
pub async fn run(shared: Arc<Shared>, device: Device, permit: OwnedSemaphorePermit) -> ConnResult {
    let counters = &shared.counters;
    Counters::add(&counters.attempts, 1);
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(60), handshake(&shared, &device)).await;
    drop(permit);
    let mut live = match outcome {
        Ok(Handshake::Up(live)) => *live,
        Ok(Handshake::Refused(why)) => {
            Counters::add(&counters.refused, 1);
            return ConnResult {
                error: Some(why),
                ..ConnResult::default()
            };
        }
        Ok(Handshake::Failed(why)) => {
            Counters::add(&counters.failed, 1);
            return ConnResult {
                error: Some(why),
                ..ConnResult::default()
            };
        }
        Err(_) => {
            Counters::add(&counters.failed, 1);
            return ConnResult {
                error: Some("no CONNACK within 60 s".into()),
                ..ConnResult::default()
            };
        }
    };
    Counters::add(&counters.connected, 1);
    let mut result = ConnResult {
        connect: Some(started.elapsed()),
        ..ConnResult::default()
    };
    if let Err(e) = drive(&shared, &device, &mut live, &mut result).await {
        Counters::add(&counters.dropped, 1);
        result.error = Some(e);
    }
    result
}

/// Provisions `device` through a claim (its password is the claim's token): subscribes
/// to its result topic, publishes `request`, and answers the reply's JSON.
pub async fn provision(
    shared: &Shared,
    device: &Device,
    request: Vec<u8>,
) -> Result<Value, String> {
    let mut live = match handshake(shared, device).await {
        Handshake::Up(live) => *live,
        Handshake::Refused(why) | Handshake::Failed(why) => return Err(why),
    };
    let result = format!("/devices/{}/provision/result", device.id);
    let now = ms(shared, Instant::now());
    let filter = TopicFilter::new(result.clone()).map_err(|e| format!("filter: {e}"))?;
    live.session
        .subscribe(vec![(filter, QoS::AtLeastOnce)], now)
        .map_err(|e| format!("SUBSCRIBE: {e}"))?;
    let topic = TopicName::new(format!("/devices/{}/provision", device.id))
        .map_err(|e| format!("topic: {e}"))?;
    live.session
        .publish(topic, request, QoS::AtLeastOnce, now)
        .map_err(|e| format!("PUBLISH: {e}"))?;
    loop {
        live.flush(&shared.counters)
            .await
            .map_err(|e| format!("write: {e}"))?;
        while let Some(event) = live.session.poll_event() {
            match event {
                ClientEvent::Message {
                    topic,
                    payload,
                    ack,
                    ..
                } if topic.as_str() == result => {
                    if let Some(id) = ack {
                        live.session.ack(id, ms(shared, Instant::now()));
                    }
                    live.session.disconnect();
                    let _ = live.flush(&shared.counters).await;
                    return serde_json::from_slice(&payload)
                        .map_err(|e| format!("the reply is not JSON: {e}"));
                }
                ClientEvent::Closed(reason) => return Err(format!("closed: {reason}")),
                _ => {}
            }
        }
        let n = match live.io.read(&mut live.buf).await {
            Ok(0) => return Err("closed before the reply".into()),
            Ok(n) => n,
            Err(e) => return Err(format!("read: {e}")),
        };
        Counters::add(&shared.counters.bytes_in, n as u64);
        let now = ms(shared, Instant::now());
        let (session, buf) = (&mut live.session, &live.buf);
        session.handle_input(&buf[..n], now);
    }
}

fn subscribe(shared: &Shared, device: &Device, live: &mut Live) -> Result<(), String> {
    let filters: Vec<(String, QoS)> = if device.consumer {
        vec![("/devices/+/events".into(), QoS::AtMostOnce)]
    } else if shared.subscribe {
        vec![
            (format!("/devices/{}/config", device.id), QoS::AtLeastOnce),
            (
                format!("/devices/{}/commands/#", device.id),
                QoS::AtLeastOnce,
            ),
        ]
    } else {
        return Ok(());
    };
    let mut list = Vec::with_capacity(filters.len());
    for (f, qos) in filters {
        let filter = TopicFilter::new(f.clone()).map_err(|e| format!("filter {f}: {e}"))?;
        list.push((filter, qos));
    }
    live.session
        .subscribe(list, ms(shared, Instant::now()))
        .map(|_| ())
        .map_err(|e| format!("SUBSCRIBE: {e}"))
}

/// The connected loop; `Err` when the connection ended before `Close`.
async fn drive(
    shared: &Shared,
    device: &Device,
    live: &mut Live,
    result: &mut ConnResult,
) -> Result<(), String> {
    let counters = &shared.counters;
    let mut phase_rx = shared.phase.clone();
    let topic = TopicName::new(format!("/devices/{}/events", device.id))
        .map_err(|e| format!("topic: {e}"))?;
    subscribe(shared, device, live)?;
    let qos = if shared.qos1 {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    };
    let mut sent_at: HashMap<u16, Instant> = HashMap::new();
    // Allocated on first use: idle connections stay small.
    let mut puback: Option<Box<Histogram>> = None;
    let mut e2e: Option<Box<Histogram>> = None;
    let mut split = LatencySplit::new(shared.latency_window);
    let mut next_send: Option<Instant> = None;
    let mut payload = vec![0u8; shared.payload];
    let mut reauth_sent = false;
    loop {
        let phase = *phase_rx.borrow_and_update();
        if phase == Phase::Reauth && !reauth_sent && !device.consumer {
            reauth_sent = true;
            let token = if device.reauth.is_empty() {
                &device.password
            } else {
                &device.reauth
            };
            live.session
                .reauthenticate(token.clone(), ms(shared, Instant::now()))
                .map_err(|e| format!("AUTH: {e}"))?;
        }
        if phase == Phase::Close {
            live.session.disconnect();
            let _ = live.flush(counters).await;
            let _ = live.io.shutdown().await;
            break;
        }
        let publishing = matches!(phase, Phase::Publish(_)) && !device.consumer;
        match (phase, shared.publish_gap, next_send) {
            (Phase::Publish(start), Some(gap), None) if publishing => {
                split.started(start);
                // Spread the devices' first sends evenly over one gap.
                let offset = gap.mul_f64(device.index as f64 / shared.devices.max(1) as f64);
                next_send = Some(start + offset);
            }
            (_, _, Some(_)) if !publishing => next_send = None,
            _ => {}
        }
        let now = Instant::now();
        if let (Some(at), Some(gap)) = (next_send, shared.publish_gap)
            && now >= at
        {
            payload[..8].copy_from_slice(&unix_micros().to_be_bytes());
            match live
                .session
                .publish(topic.clone(), payload.clone(), qos, ms(shared, now))
            {
                Ok(id) => {
                    Counters::add(&counters.sent, 1);
                    if let Some(id) = id {
                        sent_at.insert(id.get(), now);
                    }
                }
                Err(tether_mqtt::session::client::ClientError::InflightFull) => {
                    Counters::add(&counters.backlogged, 1);
                }
                Err(e) => return Err(format!("PUBLISH: {e}")),
            }
            // Keep the rate; if far behind, start again from now rather than burst.
            let mut next = at + gap;
            if next + gap < now {
                next = now + gap;
            }
            next_send = Some(next);
        }
        live.flush(counters)
            .await
            .map_err(|e| format!("write: {e}"))?;
        while let Some(event) = live.session.poll_event() {
            match event {
                ClientEvent::Published(id) => {
                    Counters::add(&counters.acked, 1);
                    if let Some(at) = sent_at.remove(&id.get()) {
                        let took = at.elapsed();
                        puback.get_or_insert_default().record(took);
                        split.record(at, took);
                    }
                }
                ClientEvent::Message { payload, ack, .. } => {
                    Counters::add(&counters.received, 1);
                    if device.consumer && payload.len() >= 8 {
                        let mut ts = [0u8; 8];
                        ts.copy_from_slice(&payload[..8]);
                        let sent = u64::from_be_bytes(ts);
                        let age = Duration::from_micros(unix_micros().saturating_sub(sent));
                        e2e.get_or_insert_default().record(age);
                    }
                    if let Some(id) = ack {
                        live.session.ack(id, ms(shared, Instant::now()));
                    }
                }
                ClientEvent::Reauthenticated => Counters::add(&counters.reauthed, 1),
                ClientEvent::Closed(reason) => {
                    return Err(format!("closed by the session: {reason}"));
                }
                _ => {}
            }
        }
        live.flush(counters)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut wake = live
            .session
            .poll_timeout()
            .map(|t| instant(shared, t))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        if let Some(at) = next_send {
            wake = wake.min(at);
        }
        tokio::select! {
            read = live.io.read(&mut live.buf) => {
                let n = match read {
                    Ok(0) => return Err("the server closed the connection".into()),
                    Ok(n) => n,
                    Err(e) => return Err(format!("read: {e}")),
                };
                Counters::add(&counters.bytes_in, n as u64);
                let now = ms(shared, Instant::now());
                let (session, buf) = (&mut live.session, &live.buf);
                session.handle_input(&buf[..n], now);
            }
            () = tokio::time::sleep_until(wake) => {
                live.session.handle_timeout(ms(shared, Instant::now()));
            }
            changed = phase_rx.changed() => {
                if changed.is_err() {
                    return Err("the run ended".into());
                }
            }
        }
    }
    result.puback = puback;
    (result.puback_in_window, result.puback_outside_window) = (split.inside, split.outside);
    result.e2e = e2e;
    Ok(())
}

/// PUBACK latency by whether the message was sent inside `--latency-window`.
#[derive(Debug)]
struct LatencySplit {
    window: Option<(Duration, Duration)>,
    start: Option<Instant>,
    inside: Option<Box<Histogram>>,
    outside: Option<Box<Histogram>>,
}

impl LatencySplit {
    fn new(window: Option<(Duration, Duration)>) -> Self {
        Self {
            window,
            start: None,
            inside: None,
            outside: None,
        }
    }

    /// The publish phase's common start, that the window counts from.
    fn started(&mut self, start: Instant) {
        self.start = Some(start);
    }

    fn record(&mut self, sent_at: Instant, took: Duration) {
        let (Some((from, to)), Some(start)) = (self.window, self.start) else {
            return;
        };
        let at = sent_at.saturating_duration_since(start);
        let side = if from <= at && at < to {
            &mut self.inside
        } else {
            &mut self.outside
        };
        side.get_or_insert_default().record(took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(h: Option<&Histogram>) -> u64 {
        h.map_or(0, Histogram::count)
    }

    #[test]
    fn latency_splits_by_send_time_from_the_publish_start() {
        let start = Instant::now();
        let secs = Duration::from_secs;
        let mut split = LatencySplit::new(Some((secs(9), secs(21))));
        // Nothing counts before the publish phase has started.
        split.record(start, Duration::from_millis(1));
        assert_eq!(count(split.inside.as_deref()), 0);
        assert_eq!(count(split.outside.as_deref()), 0);
        split.started(start);
        for at in [0, 8, 9, 20, 21, 29] {
            split.record(start + secs(at), Duration::from_millis(1));
        }
        assert_eq!(count(split.inside.as_deref()), 2, "9 and 20 s");
        assert_eq!(count(split.outside.as_deref()), 4, "0, 8, 21 and 29 s");

        let mut none = LatencySplit::new(None);
        none.started(start);
        none.record(start, Duration::from_millis(1));
        assert!(none.inside.is_none() && none.outside.is_none());
    }
}
