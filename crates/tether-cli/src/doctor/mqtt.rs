//! Steps 5–7 over the tested connection: CONNECT (CONNACK code and meaning),
//! subscribe to config (first config received), publish a test event (PUBACK).

use std::time::Duration;

use tether_device::connack_meaning;
use tether_mqtt::codec::v5::{Connect5, PROTOCOL_LEVEL_5, Properties};
use tether_mqtt::session::Timestamp;
use tether_mqtt::session::client::{ClientConfig, ClientEvent, ClientSession, CloseReason};
use tether_mqtt::{Connect, ConnectReturnCode, QoS, SubAckCode, TopicFilter, TopicName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::report::{Status, Step};

/// The stream to the server (TLS or plain).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An MQTT client session over the stream, driven step by step.
pub struct Client {
    io: Box<dyn Io>,
    session: ClientSession,
    epoch: Instant,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// What happened while waiting.
enum Wait {
    Event(ClientEvent),
    TimedOut,
    Eof,
}

impl Client {
    /// Wraps a connected stream.
    pub fn new(io: Box<dyn Io>, limit: Duration) -> Self {
        let mut cfg = ClientConfig::default();
        cfg.connack_timeout = limit;
        Client {
            io,
            session: ClientSession::new(cfg),
            epoch: Instant::now(),
            buf: vec![0u8; 16 * 1024],
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(0))
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        while let Some(bytes) = self.session.poll_transmit() {
            self.io.write_all(&bytes).await?;
        }
        self.io.flush().await
    }

    /// The next event, or a timeout / EOF.
    async fn next(&mut self, until: Instant) -> Wait {
        loop {
            if let Some(event) = self.session.poll_event() {
                return Wait::Event(event);
            }
            if self.flush().await.is_err() {
                return Wait::Eof;
            }
            let read = tokio::time::timeout_at(until, self.io.read(&mut self.buf)).await;
            match read {
                Err(_) => return Wait::TimedOut,
                Ok(Ok(0)) | Ok(Err(_)) => return Wait::Eof,
                Ok(Ok(n)) => {
                    let now = self.now();
                    let (session, buf) = (&mut self.session, &self.buf);
                    session.handle_input(&buf[..n], now);
                }
            }
        }
    }

    /// Sends DISCONNECT.
    pub async fn disconnect(mut self) {
        self.session.disconnect();
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }
}

/// Who connects, and how.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    /// The MQTT client id.
    pub client_id: &'a str,
    /// The JWT.
    pub token: &'a str,
    /// MQTT 5 with the JWT as Authentication Data, instead of 3.1.1 with it as password.
    pub v5: bool,
}

/// What the CONNECT step reports, and the client if accepted.
pub async fn connect(
    mut client: Client,
    login: &Login<'_>,
    limit: Duration,
    refusal_context: impl FnOnce(ConnectReturnCode) -> (String, String),
) -> (Step, Option<Client>) {
    let mut c = Connect::new(login.client_id);
    let now = client.now();
    let sent = if login.v5 {
        c.protocol_level = PROTOCOL_LEVEL_5;
        let c = Connect5 {
            connect: c,
            properties: Properties {
                auth_method: Some("jwt".into()),
                auth_data: Some(login.token.as_bytes().to_vec()),
                ..Properties::default()
            },
            will_properties: Properties::default(),
        };
        client.session.connect_v5(&c, now)
    } else {
        c.username = Some("unused".into());
        c.password = Some(login.token.as_bytes().to_vec());
        client.session.connect(&c, now)
    };
    if let Err(e) = sent {
        return (
            Step::fail("mqtt", "cannot encode CONNECT", e.to_string(), "-"),
            None,
        );
    }
    let started = Instant::now();
    loop {
        match client.next(started + limit).await {
            Wait::Event(ClientEvent::Connected { .. }) => {
                let ms = started.elapsed().as_millis();
                return (
                    Step::pass(
                        "mqtt",
                        format!("CONNACK 0 (connection accepted) in {ms} ms"),
                    ),
                    Some(client),
                );
            }
            Wait::Event(ClientEvent::Closed(CloseReason::Refused(code))) => {
                let (meaning, _) = connack_meaning(code);
                let (cause, fix) = refusal_context(code);
                return (
                    Step::fail(
                        "mqtt",
                        format!("CONNACK {} ({meaning})", code.as_u8()),
                        cause,
                        fix,
                    ),
                    None,
                );
            }
            Wait::Event(ClientEvent::Closed(CloseReason::RefusedV5 { code, reason })) => {
                let closest = match tether_device::ConnectError::refused_v5(code, None) {
                    tether_device::ConnectError::Refused { code, .. } => code,
                    _ => ConnectReturnCode::NotAuthorized,
                };
                let (cause, fix) = refusal_context(closest);
                let cause = match reason {
                    Some(reason) => format!("the server says: {reason}; {cause}"),
                    None => cause,
                };
                return (
                    Step::fail("mqtt", format!("CONNACK {code} (MQTT 5)"), cause, fix),
                    None,
                );
            }
            Wait::Event(ClientEvent::Closed(reason)) => {
                return (
                    Step::fail(
                        "mqtt",
                        "no CONNACK",
                        reason.to_string(),
                        "check that the port speaks MQTT 3.1.1",
                    ),
                    None,
                );
            }
            Wait::Event(_) => {}
            Wait::TimedOut => {
                return (
                    Step::fail(
                        "mqtt",
                        "no CONNACK",
                        format!("the server did not answer CONNECT within {limit:?}"),
                        "check that the port speaks MQTT (not HTTP), and the server's logs",
                    ),
                    None,
                );
            }
            Wait::Eof => {
                return (
                    Step::fail(
                        "mqtt",
                        "connection closed without CONNACK",
                        "the server closed the connection after CONNECT without answering \
                         (IoT Core-style servers do this for a CONNECT they refuse to parse)",
                        "check the client id and that the password is the JWT",
                    ),
                    None,
                );
            }
        }
    }
}

/// Subscribes to config and commands; reports the first config within `wait`.
pub async fn config(client: &mut Client, device: &str, wait: Duration) -> Step {
    let filters: Vec<(TopicFilter, QoS)> = [
        format!("/devices/{device}/config"),
        format!("/devices/{device}/commands/#"),
    ]
    .into_iter()
    .filter_map(|f| TopicFilter::new(f).ok())
    .map(|f| (f, QoS::AtLeastOnce))
    .collect();
    let now = client.now();
    if let Err(e) = client.session.subscribe(filters, now) {
        return Step::fail("config", "cannot subscribe", e.to_string(), "-");
    }
    let until = Instant::now() + wait;
    let mut subscribed = false;
    loop {
        match client.next(until).await {
            Wait::Event(ClientEvent::Subscribed { codes, .. }) => {
                if let Some(i) = codes.iter().position(|c| *c == SubAckCode::Failure) {
                    let what = if i == 0 { "config" } else { "commands/#" };
                    return Step::fail(
                        "config",
                        format!("SUBACK refused the {what} subscription (0x80)"),
                        format!("the server does not let this device subscribe to {what}"),
                        "subscribe only to /devices/{this device}/config and \
                         /devices/{this device}/commands/#",
                    );
                }
                subscribed = true;
            }
            Wait::Event(ClientEvent::Message {
                topic,
                payload,
                ack,
                ..
            }) if topic.as_str().ends_with("/config") => {
                if let Some(id) = ack {
                    let now = client.now();
                    client.session.ack(id, now);
                }
                return Step::pass(
                    "config",
                    format!("subscribed; first config received: {} bytes", payload.len()),
                )
                .with_details(vec![preview(&payload)]);
            }
            Wait::Event(ClientEvent::Closed(reason)) => {
                return closed("config", &reason.to_string());
            }
            Wait::Event(_) => {}
            Wait::TimedOut if subscribed => {
                let mut step =
                    Step::pass("config", format!("subscribed; no config within {wait:?}"))
                        .with_details(vec![
                    "a server sends the latest config right after the subscription; none may be \
                     set for this device"
                        .into(),
                ]);
                step.status = Status::Warn;
                return step;
            }
            Wait::TimedOut => {
                return Step::fail(
                    "config",
                    "no SUBACK",
                    format!("the server did not answer SUBSCRIBE within {wait:?}"),
                    "check the server's logs",
                );
            }
            Wait::Eof => return closed("config", "the server closed the connection"),
        }
    }
}

/// Publishes a QoS 1 test event and waits for the PUBACK.
pub async fn event(client: &mut Client, device: &str, subfolder: &str, limit: Duration) -> Step {
    let topic = format!("/devices/{device}/events/{subfolder}");
    let Ok(name) = TopicName::new(topic.clone()) else {
        return Step::fail("event", "bad topic", topic, "use a plain subfolder name");
    };
    let payload = br#"{"tether_doctor":"test event"}"#.to_vec();
    let now = client.now();
    if let Err(e) = client.session.publish(name, payload, QoS::AtLeastOnce, now) {
        return Step::fail("event", "cannot publish", e.to_string(), "-");
    }
    let started = Instant::now();
    loop {
        match client.next(started + limit).await {
            Wait::Event(ClientEvent::Published(_)) => {
                let ms = started.elapsed().as_millis();
                return Step::pass("event", format!("PUBACK for {topic} in {ms} ms"));
            }
            Wait::Event(ClientEvent::Closed(reason)) => {
                return closed("event", &reason.to_string());
            }
            Wait::Event(_) => {}
            Wait::TimedOut => {
                return Step::fail(
                    "event",
                    "no PUBACK",
                    format!(
                        "no PUBACK within {limit:?}: the server could not hand the event to its sink"
                    ),
                    "check the registry's telemetry (event notification) configuration and the \
                     server's logs",
                );
            }
            Wait::Eof => {
                return closed(
                    "event",
                    "the server closed the connection on the test event",
                );
            }
        }
    }
}

/// The provisioning exchange of a claim's session: SUBSCRIBE to the result topic,
/// PUBLISH `request`, read the reply.
pub async fn provision(
    client: &mut Client,
    device: &str,
    request: Vec<u8>,
    limit: Duration,
) -> Step {
    let result = format!("/devices/{device}/provision/result");
    let (Ok(filter), Ok(topic)) = (
        TopicFilter::new(result.clone()),
        TopicName::new(format!("/devices/{device}/provision")),
    ) else {
        return Step::fail("provision", "bad topic", result, "check the device id");
    };
    let now = client.now();
    if let Err(e) = client
        .session
        .subscribe(vec![(filter, QoS::AtLeastOnce)], now)
        .and_then(|_| {
            client
                .session
                .publish(topic, request, QoS::AtLeastOnce, now)
        })
    {
        return Step::fail("provision", "cannot send the request", e.to_string(), "-");
    }
    let started = Instant::now();
    loop {
        match client.next(started + limit).await {
            Wait::Event(ClientEvent::Message {
                topic,
                payload,
                ack,
                ..
            }) if topic.as_str() == result => {
                if let Some(id) = ack {
                    let now = client.now();
                    client.session.ack(id, now);
                }
                return provision_step(&payload);
            }
            Wait::Event(ClientEvent::Subscribed { codes, .. })
                if codes.contains(&SubAckCode::Failure) =>
            {
                return Step::fail(
                    "provision",
                    "result topic refused",
                    format!("SUBACK refused '{result}'"),
                    "the server is not a provisioning session for this device (is it Tether?)",
                );
            }
            Wait::Event(ClientEvent::Closed(reason)) => {
                return Step::fail(
                    "provision",
                    "connection closed",
                    format!("the server closed the provisioning session: {reason}"),
                    "a provisioning session may only use /devices/D/provision and \
                     /devices/D/provision/result; see the server's log",
                );
            }
            Wait::Event(_) => {}
            Wait::TimedOut => {
                return Step::fail(
                    "provision",
                    "no reply",
                    format!("no reply on {result} within {limit:?}"),
                    "check the server's log; --timeout waits longer",
                );
            }
            Wait::Eof => {
                return Step::fail(
                    "provision",
                    "connection closed",
                    "the server closed the connection before replying",
                    "see the server's log",
                );
            }
        }
    }
}

fn provision_step(payload: &[u8]) -> Step {
    use tether_device::ProvisionError;
    match tether_device::provision::reply(payload) {
        Ok(p) => Step::pass(
            "provision",
            format!(
                "registered {} (numId {}) with {} key {}",
                p.device_id, p.num_id, p.format, p.fingerprint
            ),
        ),
        Err(ProvisionError::Refused { code, message }) => {
            let fix = match code.as_str() {
                "PERMISSION_DENIED" if message.contains("not signed by the submitted") => {
                    "sign the proof with the private key of the public key you send: --new-key \
                     must be the device's new key pair"
                }
                "PERMISSION_DENIED" => "fix the proof as the reason says, or the claim",
                "ALREADY_EXISTS" => {
                    "the device exists with another key; connect with its own key, or ask an \
                     operator (a claim never changes an existing device)"
                }
                "RESOURCE_EXHAUSTED" => "the claim is full: raise its maximum or use another claim",
                _ => "fix what the reason names",
            };
            Step::fail("provision", "refused", format!("{code}: {message}"), fix)
        }
        Err(e) => Step::fail(
            "provision",
            "bad reply",
            e.to_string(),
            "see the server's log",
        ),
    }
}

fn closed(step: &'static str, why: &str) -> Step {
    Step::fail(
        step,
        "connection closed",
        format!(
            "{why}: IoT Core-style servers close the connection when the registry has no \
             telemetry topic, or for a topic the device may not use"
        ),
        "check the registry's event notification config; see the device's lastErrorStatus \
         (--admin-url)",
    )
}

fn preview(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(&payload[..payload.len().min(80)]).into_owned();
    let more = if payload.len() > 80 { "…" } else { "" };
    format!("payload: {text:?}{more}")
}
