//! The fake server's own rules, seen from a bare MQTT client on a socket: the IoT
//! Core refusals with their recorded reasons, config on subscribe, and the real
//! session's keep-alive (on paused time).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tether_device::{Clock, TokioClock};
use tether_jwt::{Claims, mint};
use tether_keys::PrivateKey;
use tether_keys::generate::{KeySpec, generate};
use tether_mqtt::{
    ConnAck, Connect, ConnectReturnCode, Packet, QoS, SubAck, SubAckCode, Subscribe, Subscription,
    TopicFilter, decode,
};
use tether_testkit::{Ended, FakeServer, FakeServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENT_ID: &str = "projects/my-project/locations/us-central1/registries/reg-1/devices/dev-1";

/// A server on paused time with `dev-1` registered.
async fn server() -> (FakeServer, PrivateKey, Arc<TokioClock>) {
    let clock = Arc::new(TokioClock::from_system());
    let server = FakeServer::start(FakeServerOptions {
        clock: clock.clone(),
        ..FakeServerOptions::default()
    })
    .await
    .unwrap();
    let key = generate(KeySpec::Es256).unwrap();
    server.register(CLIENT_ID, key.public_key().clone());
    (server, key, clock)
}

fn jwt(key: &PrivateKey, clock: &TokioClock) -> Vec<u8> {
    let now = clock.unix_now();
    let claims = Claims {
        aud: "my-project",
        iat: now,
        exp: now + 3600,
    };
    let mut buf = vec![0u8; 1024];
    let n = mint(&*key.signer().unwrap(), &claims, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn connect(keep_alive: u16, password: Option<Vec<u8>>) -> Packet {
    Packet::Connect(Connect {
        keep_alive,
        username: Some("unused".into()),
        password,
        ..Connect::new(CLIENT_ID)
    })
}

struct Client {
    socket: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn open(server: &FakeServer) -> Client {
        let socket = TcpStream::connect(server.addr()).await.unwrap();
        Client {
            socket,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, packet: Packet) {
        self.socket
            .write_all(&packet.to_vec().unwrap())
            .await
            .unwrap();
    }

    /// The next packet, or `None` once the server closed the socket.
    async fn recv(&mut self) -> Option<Packet> {
        loop {
            if let Some((packet, used)) = decode(&self.buf, 1 << 20).unwrap() {
                self.buf.drain(..used);
                return Some(packet);
            }
            let mut chunk = [0u8; 4096];
            match self.socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

fn connack(code: ConnectReturnCode) -> Option<Packet> {
    Some(Packet::ConnAck(ConnAck {
        session_present: false,
        code,
    }))
}

#[tokio::test(start_paused = true)]
async fn refusals_carry_iot_cores_codes_and_reasons() {
    let (server, _, _) = server().await;

    let mut no_password = Client::open(&server).await;
    no_password.send(connect(60, None)).await;
    assert_eq!(
        no_password.recv().await,
        connack(ConnectReturnCode::BadUserNameOrPassword)
    );
    assert_eq!(no_password.recv().await, None, "closed after the refusal");

    let mut wrong_key = Client::open(&server).await;
    let stranger = generate(KeySpec::Es256).unwrap();
    let token = jwt(&stranger, &TokioClock::from_system());
    wrong_key.send(connect(60, Some(token))).await;
    assert_eq!(
        wrong_key.recv().await,
        connack(ConnectReturnCode::NotAuthorized)
    );
    let why = server.last_error(CLIENT_ID).unwrap();
    assert!(why.starts_with("mqtt: SERVER: "), "{why}");
    assert_eq!(
        server.refusals(),
        [
            (
                CLIENT_ID.to_string(),
                ConnectReturnCode::BadUserNameOrPassword
            ),
            (CLIENT_ID.to_string(), ConnectReturnCode::NotAuthorized),
        ]
    );
    assert!(server.connections().is_empty());
}

#[tokio::test(start_paused = true)]
async fn config_follows_the_suback_and_a_silent_client_is_cut_at_one_and_a_half_keep_alives() {
    let (server, key, clock) = server().await;
    server.set_config("dev-1", b"v1");
    let mut client = Client::open(&server).await;
    client.send(connect(10, Some(jwt(&key, &clock)))).await;
    assert_eq!(client.recv().await, connack(ConnectReturnCode::Accepted));

    let filter = TopicFilter::new("/devices/dev-1/config").unwrap();
    let id = tether_mqtt::PacketId::new(7).unwrap();
    client
        .send(Packet::Subscribe(Subscribe {
            packet_id: id,
            subscriptions: vec![Subscription {
                filter,
                qos: QoS::AtLeastOnce,
            }],
        }))
        .await;
    assert_eq!(
        client.recv().await,
        Some(Packet::SubAck(SubAck {
            packet_id: id,
            codes: vec![SubAckCode::Granted(QoS::AtLeastOnce)],
        }))
    );
    let Some(Packet::Publish(config)) = client.recv().await else {
        panic!("the config after the SUBACK");
    };
    assert_eq!(config.payload, b"v1");
    let config_id = config.delivery.packet_id().expect("QoS 1");
    client.send(Packet::PubAck(config_id)).await;

    // Then silence: the session closes 15 s after the last packet, not before.
    let start = tokio::time::Instant::now();
    assert_eq!(client.recv().await, None);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(15) && waited < Duration::from_secs(16),
        "{waited:?}"
    );
    assert_eq!(server.config_acks(), 1);
    let ended = server.connections()[0].ended;
    assert_eq!(ended, Some(Ended::KeepAliveTimeout));
}
