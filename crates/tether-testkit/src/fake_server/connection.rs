//! One connection of the fake server: a thin loop around the sans-io
//! [`ServerSession`], which does the MQTT; this file plays the gateway (accept or
//! refuse, subscriptions, config and commands, attach) and owns the socket and timers.
//!
//! ```text
//!  socket ──read──▶ session.handle_input ──events──▶ on_event ──▶ accept/refuse,
//!  timers ───────▶ session.handle_timeout              suback, puback, publish
//!  handle ──Ctl──▶ deliver / close                        │
//!  socket ◀─write── session.poll_transmit ◀───────────────┘
//! ```

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tether_device::clock::instant_at;
use tether_iot::{ClientId, IotTopic};
use tether_mqtt::session::{CloseReason, Event};
use tether_mqtt::{
    Connect, Delivery, PacketId, Publish, QoS, ServerConfig, ServerSession, SubAck, SubAckCode,
    Subscribe, Timestamp, TopicFilter, TopicName,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::auth::authenticate;
use super::{BoxIo, ConnRecord, Ctl, Ended, FakeServerOptions, Received, State, lock};

/// The largest packet accepted from a device.
const MAX_PACKET: usize = 1 << 20;

/// Serves one accepted socket until the connection ends, then records how.
pub(super) async fn serve(
    mut io: BoxIo,
    peer: SocketAddr,
    options: &FakeServerOptions,
    state: &Mutex<State>,
) {
    let epoch = Instant::now();
    // The fake does not limit what it sends; the SDK's own window is what tests probe.
    let config = ServerConfig::new(MAX_PACKET)
        .max_inflight(u16::MAX)
        .mqtt5(options.mqtt5);
    let mut conn = Connection {
        session: ServerSession::new(config, Timestamp::from_millis(0)),
        epoch,
        peer,
        options,
        state,
        live: None,
        subs: Vec::new(),
        config_ids: Vec::new(),
        ended: None,
    };
    let ended = conn.run(&mut io).await;
    conn.finish(ended);
}

/// What an accepted connection has that a pending one does not.
struct Live {
    client_id: String,
    /// Its index in `State::connections`.
    index: usize,
    control: mpsc::UnboundedReceiver<Ctl>,
    /// `exp + skew` of its token.
    cut_at: Instant,
}

struct Connection<'a> {
    session: ServerSession,
    epoch: Instant,
    peer: SocketAddr,
    options: &'a FakeServerOptions,
    state: &'a Mutex<State>,
    live: Option<Live>,
    subs: Vec<(TopicFilter, QoS)>,
    /// Packet ids of config messages awaiting PUBACK.
    config_ids: Vec<PacketId>,
    /// Set when the server itself ends the connection (kick, token expiry).
    ended: Option<Ended>,
}

impl Connection<'_> {
    async fn run(&mut self, io: &mut BoxIo) -> Ended {
        let mut chunk = vec![0u8; 4096];
        loop {
            let mut closed = None;
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Closed(reason) => closed = Some(reason),
                    event => self.on_event(event),
                }
            }
            if let Some(bytes) = self.session.poll_transmit()
                && !(io.write_all(&bytes).await.is_ok() && io.flush().await.is_ok())
            {
                return Ended::ClientClosed;
            }
            if let Some(reason) = closed {
                return self.ended.unwrap_or(match reason {
                    CloseReason::KeepAliveTimeout => Ended::KeepAliveTimeout,
                    _ => Ended::ClientClosed,
                });
            }
            let timer = self.session.poll_timeout().map(|t| self.instant(t));
            let cut_at = self.live.as_ref().map(|l| l.cut_at);
            tokio::select! {
                read = io.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return Ended::ClientClosed,
                    Ok(n) => self.session.handle_input(&chunk[..n], self.now()),
                },
                ctl = next_control(&mut self.live) => match ctl {
                    Some(Ctl::Deliver { topic, payload }) => self.deliver(&topic, payload),
                    Some(Ctl::Kick) | None => self.close(Ended::Kicked),
                },
                () = sleep_until_some(cut_at) => {
                    self.close(Ended::TokenExpired);
                }
                () = sleep_until_some(timer) => self.session.handle_timeout(self.now()),
            }
        }
    }

    /// Records how the connection ended and frees the device's slot if it still holds it.
    fn finish(self, ended: Ended) {
        let Some(live) = self.live else { return };
        let mut s = lock(self.state);
        if let Some(record) = s.connections.get_mut(live.index) {
            record.ended = Some(ended);
        }
        if s.live
            .get(&live.client_id)
            .is_some_and(|(i, _)| *i == live.index)
        {
            s.live.remove(&live.client_id);
        }
    }

    fn now(&self) -> Timestamp {
        let millis = self.epoch.elapsed().as_millis();
        Timestamp::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    fn instant(&self, at: Timestamp) -> Instant {
        self.epoch + Duration::from_millis(at.as_millis())
    }

    fn close(&mut self, why: Ended) {
        use tether_mqtt::codec::v5::ReasonCode;
        self.ended = Some(why);
        // What the gateway tells an MQTT 5 device (3.1.1 gets no packet).
        let (code, text) = match why {
            Ended::Kicked => (
                ReasonCode::SESSION_TAKEN_OVER,
                "another connection with the same device ID took over",
            ),
            Ended::TokenExpired => (
                ReasonCode::MAXIMUM_CONNECT_TIME,
                "The authorization token expired.",
            ),
            Ended::KeepAliveTimeout | Ended::ClientClosed => (ReasonCode::UNSPECIFIED_ERROR, ""),
        };
        self.session.close_with_reason(code, text);
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connect(connect) => self.on_connect(&connect),
            Event::Publish(publish) | Event::PublishWithProperties(publish, _) => {
                self.on_publish(publish);
            }
            Event::Subscribe(subscribe) => self.on_subscribe(subscribe),
            Event::Unsubscribe(u) => self.subs.retain(|(f, _)| !u.filters.contains(f)),
            Event::Delivered(id) => {
                if let Some(i) = self.config_ids.iter().position(|c| *c == id) {
                    self.config_ids.remove(i);
                    lock(self.state).config_acks += 1;
                }
            }
            Event::Reauthenticate(token) => self.on_reauthenticate(token),
            Event::Heartbeat | Event::Closed(_) => {}
        }
    }

    /// MQTT 5 AUTH: the new token must pass as at CONNECT; the cut moves to its `exp`.
    fn on_reauthenticate(&mut self, token: Vec<u8>) {
        let Some(live) = &mut self.live else {
            return;
        };
        let mut connect = Connect::new(live.client_id.clone());
        connect.password = Some(token);
        match authenticate(&connect, self.options, self.state) {
            Ok(exp) => {
                let cut = u64::try_from(exp + self.options.skew_secs).unwrap_or(0);
                live.cut_at = instant_at(&*self.options.clock, cut);
                lock(self.state).reauths += 1;
                let _ = self.session.reauthenticated();
            }
            Err(_) => {
                let why = lock(self.state).last_error.get(&live.client_id).cloned();
                self.session.close_with_reason(
                    tether_mqtt::codec::v5::ReasonCode::NOT_AUTHORIZED,
                    why.as_deref().unwrap_or("re-authentication refused"),
                );
            }
        }
    }

    fn on_connect(&mut self, connect: &Connect) {
        // MQTT 5 with Authentication Method `jwt`: the token is the Authentication Data.
        let mut connect = connect.clone();
        if let Some(data) = self
            .session
            .connect_properties()
            .filter(|p| p.auth_method.as_deref() == Some("jwt"))
            .and_then(|p| p.auth_data.clone())
        {
            connect.password = Some(data);
        }
        let connect = &connect;
        let exp = match authenticate(connect, self.options, self.state) {
            Ok(exp) => exp,
            Err(code) => {
                let why = lock(self.state).last_error.get(&connect.client_id).cloned();
                if self
                    .session
                    .refuse_with(code, None, why.as_deref().unwrap_or_default())
                    .is_err()
                {
                    self.session.close();
                }
                return;
            }
        };
        let client_id = connect.client_id.clone();
        let (tx, control) = mpsc::unbounded_channel();
        let index = {
            let mut s = lock(self.state);
            let index = s.connections.len();
            s.connections.push(ConnRecord {
                client_id: client_id.clone(),
                peer: self.peer,
                opened_at: self.options.clock.unix_now(),
                token_exp: exp,
                ended: None,
            });
            if let Some((_, old)) = s.live.insert(client_id.clone(), (index, tx)) {
                let _ = old.send(Ctl::Kick);
            }
            index
        };
        let cut = u64::try_from(exp + self.options.skew_secs).unwrap_or(0);
        self.live = Some(Live {
            client_id,
            index,
            control,
            cut_at: instant_at(&*self.options.clock, cut),
        });
        if self.session.accept(false, self.now()).is_err() {
            self.session.close();
        }
    }

    fn on_subscribe(&mut self, subscribe: Subscribe) {
        let mut codes = Vec::new();
        let mut configs = Vec::new();
        for s in subscribe.subscriptions {
            let qos = s.qos.min(QoS::AtLeastOnce);
            codes.push(SubAckCode::Granted(qos));
            if let IotTopic::Config { device } = IotTopic::parse(s.filter.as_str())
                && let Some(config) = lock(self.state).configs.get(device).cloned()
            {
                configs.push((s.filter.as_str().to_string(), config));
            }
            self.subs.push((s.filter, qos));
        }
        let ack = SubAck {
            packet_id: subscribe.packet_id,
            codes,
        };
        if self.session.suback(ack).is_err() {
            return;
        }
        for (topic, config) in configs {
            self.deliver(&topic, config);
        }
    }

    fn on_publish(&mut self, p: Publish) {
        let client_id = self.live.as_ref().map(|l| l.client_id.clone());
        let client_id = client_id.unwrap_or_default();
        let topic = p.topic.as_str().to_string();
        lock(self.state).received.push(Received {
            client_id: client_id.clone(),
            topic: topic.clone(),
            payload: p.payload,
            qos: p.delivery.qos(),
        });
        let IotTopic::Attach { device } = IotTopic::parse(&topic) else {
            self.puback(p.delivery);
            return;
        };
        // An attach succeeds only for a registered device; otherwise the gateway
        // hears about it on its errors topic and gets no PUBACK.
        let known = lock(self.state)
            .keys
            .keys()
            .any(|k| k.ends_with(&format!("/devices/{device}")));
        if known {
            self.puback(p.delivery);
            return;
        }
        let gateway = ClientId::parse(&client_id)
            .map(|c| c.device.to_string())
            .unwrap_or_default();
        let error = serde_json::json!({
            "error_type": "GATEWAY_ATTACHMENT_ERROR",
            "description": format!("Device '{device}' does not exist."),
            "device_id": device,
        });
        self.deliver(
            &format!("/devices/{gateway}/errors"),
            error.to_string().into_bytes(),
        );
    }

    /// PUBACK for QoS 1; QoS 0 needs none, and QoS 2 is recorded but never answered.
    fn puback(&mut self, delivery: Delivery) {
        if let Delivery::AtLeastOnce(id) = delivery {
            let _ = self.session.puback(id);
        }
    }

    /// Publishes to this connection if it subscribed to `topic`, at the highest QoS
    /// granted for it.
    fn deliver(&mut self, topic: &str, payload: Vec<u8>) {
        let Ok(name) = TopicName::new(topic) else {
            return;
        };
        let Some(qos) = self
            .subs
            .iter()
            .filter(|(f, _)| f.matches(&name))
            .map(|(_, q)| *q)
            .max()
        else {
            return;
        };
        if let Ok(Some(id)) = self.session.publish(name, payload, qos)
            && topic.ends_with("/config")
        {
            self.config_ids.push(id);
        }
    }
}

/// The next control message of a live connection; never for a pending one.
async fn next_control(live: &mut Option<Live>) -> Option<Ctl> {
    match live {
        Some(live) => live.control.recv().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
