//! MQTT 5 on the gateway's listeners, from a bare client built on the shared codec:
//! reason codes and reason strings on refusals and closes, the JWT as Authentication
//! Data, AUTH re-authentication that outlives the first token, Topic Aliases, and
//! malformed MQTT 5 input refused with a reason code while the server stays up.

mod mqtt_support;

use std::net::SocketAddr;
use std::time::Duration;

use mqtt_support::*;
use tether_mqtt::codec::v5::{
    self, Connect5, Packet5, Properties, Publish5, ReasonCode, ReasonPacket, Subscribe5,
};
use tether_mqtt::{
    Connect, Delivery, PacketId, QoS, Subscribe, Subscription, TopicFilter, TopicName,
};
use tether_server::bridge::hub::HubError;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const WAIT: Duration = Duration::from_secs(5);

fn with_plain(o: &mut tether_server::mqtt::MqttOptions) {
    o.plain_addrs = vec!["127.0.0.1:0".parse().expect("an address")];
}

/// A gateway with a plain listener and the device `dev-1`; with `no_skew` a connection
/// ends at its token's `exp` itself.
async fn gateway(
    no_skew: bool,
) -> Result<(Gateway, SocketAddr, TestDevice), Box<dyn std::error::Error + Send + Sync>> {
    let gw = Gateway::start(|o| {
        with_plain(o);
        if no_skew {
            o.jwt.skew_secs = 0;
        }
    })
    .await?;
    let addr = gw.plain_addr.ok_or("plain")?;
    let dev = gw.device("dev-1").await?;
    Ok((gw, addr, dev))
}

struct Client5 {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Client5 {
    async fn open(addr: SocketAddr) -> Self {
        Self {
            stream: tokio::net::TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        // The server may already have closed: the test reads what it said.
        let _ = self.stream.write_all(bytes).await;
    }

    async fn send(&mut self, packet: Packet5) {
        let bytes = packet.to_vec().expect("encodable");
        self.send_bytes(&bytes).await;
    }

    /// The next packet, or `None` once the server closed the connection.
    async fn recv(&mut self) -> Option<Packet5> {
        let options = tether_mqtt::DecodeOptions::new(1 << 20);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match v5::decode(&self.buf, &options) {
                Ok(Some((packet, used))) => {
                    self.buf.drain(..used);
                    return Some(packet);
                }
                Ok(None) => {}
                Err(e) => panic!("server sent invalid MQTT 5: {e}"),
            }
            let mut chunk = [0u8; 4096];
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Ok(Ok(0) | Err(_)) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => panic!("nothing from the server within {WAIT:?}"),
            }
        }
    }

    /// The next packet that is not a PUBLISH (config arrives unasked).
    async fn recv_skipping_publish(&mut self) -> Option<Packet5> {
        loop {
            match self.recv().await? {
                Packet5::Publish(_) => {}
                other => return Some(other),
            }
        }
    }

    /// DISCONNECT from the server (after whatever came before it), then the close.
    async fn expect_disconnect(&mut self) -> ReasonPacket {
        loop {
            match self.recv().await {
                Some(Packet5::Disconnect(d)) => {
                    assert!(self.recv().await.is_none(), "closed after DISCONNECT");
                    return d;
                }
                Some(_) => {}
                None => panic!("closed without DISCONNECT"),
            }
        }
    }
}

fn connect5(client_id: String, properties: Properties) -> Packet5 {
    Packet5::Connect(Box::new(Connect5 {
        connect: Connect {
            protocol_level: v5::PROTOCOL_LEVEL_5,
            ..Connect::new(client_id)
        },
        properties,
        will_properties: Properties::default(),
    }))
}

fn jwt_auth(token: &str) -> Properties {
    Properties {
        auth_method: Some("jwt".into()),
        auth_data: Some(token.as_bytes().to_vec()),
        ..Properties::default()
    }
}

fn publish(topic: &str, id: u16, properties: Properties, payload: &[u8]) -> Packet5 {
    Packet5::Publish(Publish5 {
        dup: false,
        delivery: Delivery::AtLeastOnce(PacketId::new(id).expect("non-zero")),
        retain: false,
        topic: (!topic.is_empty()).then(|| TopicName::new(topic).expect("topic")),
        properties,
        payload: payload.to_vec(),
    })
}

fn subscribe(filter: &str, id: u16) -> Packet5 {
    Packet5::Subscribe(Subscribe5 {
        subscribe: Subscribe {
            packet_id: PacketId::new(id).expect("non-zero"),
            subscriptions: vec![Subscription {
                filter: TopicFilter::new(filter).expect("filter"),
                qos: QoS::AtLeastOnce,
            }],
        },
        options: Vec::new(),
        properties: Properties::default(),
    })
}

async fn connected(addr: SocketAddr, dev: &TestDevice, token: &str) -> Client5 {
    let mut c = Client5::open(addr).await;
    c.send(connect5(dev.client_id(), jwt_auth(token))).await;
    match c.recv().await {
        Some(Packet5::ConnAck(ack)) if ack.reason == ReasonCode::SUCCESS => {
            assert_eq!(ack.properties.auth_method.as_deref(), Some("jwt"));
        }
        other => panic!("expected CONNACK Success, got {other:?}"),
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connack_announces_limits_and_refusals_say_why() -> TestResult {
    let (gw, addr, dev) = gateway(false).await?;

    // Accepted with the token as password, 3.1.1 style: the limits are announced.
    let mut c = Client5::open(addr).await;
    let mut connect = connect5(dev.client_id(), Properties::default());
    if let Packet5::Connect(c5) = &mut connect {
        c5.connect.username = Some("unused".into());
        c5.connect.password = Some(dev.jwt().into_bytes());
    }
    c.send(connect).await;
    let Some(Packet5::ConnAck(ack)) = c.recv().await else {
        panic!("CONNACK");
    };
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert_eq!(ack.properties.maximum_qos, Some(1));
    assert_eq!(ack.properties.retain_available, Some(0));
    assert_eq!(ack.properties.shared_subscription_available, Some(0));
    assert!(ack.properties.topic_alias_maximum.is_some_and(|m| m > 0));
    assert!(ack.properties.receive_maximum.is_some());
    assert!(ack.properties.maximum_packet_size.is_some());
    c.send(Packet5::Disconnect(ReasonPacket::new(
        ReasonCode::SUCCESS,
        None,
    )))
    .await;

    // The wrong audience: 0x87 with the same words lastErrorStatus gets.
    let now = now_secs();
    let mut c = Client5::open(addr).await;
    c.send(connect5(
        dev.client_id(),
        jwt_auth(&dev.jwt_with("other", now, now + 600)),
    ))
    .await;
    let Some(Packet5::ConnAck(ack)) = c.recv().await else {
        panic!("CONNACK");
    };
    assert_eq!(ack.reason, ReasonCode::NOT_AUTHORIZED);
    let text = ack.properties.reason_string.unwrap_or_default();
    assert!(text.contains("aud"), "{text}");
    assert!(
        !text.contains(&dev.jwt_with("other", now, now + 600)),
        "no token in {text}"
    );
    let status = gw.wait_error("dev-1", |s| s.message.contains("aud")).await;
    assert!(
        status.message.ends_with(&text),
        "{} vs {text}",
        status.message
    );
    assert!(c.recv().await.is_none());

    // An unknown device: Client Identifier not valid.
    let mut c = Client5::open(addr).await;
    c.send(connect5(client_id("ghost"), jwt_auth(&dev.jwt())))
        .await;
    let Some(Packet5::ConnAck(ack)) = c.recv().await else {
        panic!("CONNACK");
    };
    assert_eq!(ack.reason, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert!(
        ack.properties
            .reason_string
            .is_some_and(|t| t.contains("ghost"))
    );

    // Another authentication method.
    let mut c = Client5::open(addr).await;
    let properties = Properties {
        auth_method: Some("SCRAM-SHA-1".into()),
        ..Properties::default()
    };
    c.send(connect5(dev.client_id(), properties)).await;
    let Some(Packet5::ConnAck(ack)) = c.recv().await else {
        panic!("CONNACK");
    };
    assert_eq!(ack.reason, ReasonCode::BAD_AUTHENTICATION_METHOD);
    assert!(
        ack.properties
            .reason_string
            .is_some_and(|t| t.contains("'jwt'"))
    );

    // A duplicated property: Protocol Error, named.
    let mut c = Client5::open(addr).await;
    let mut bytes = connect5(
        dev.client_id(),
        Properties {
            receive_maximum: Some(10),
            ..Properties::default()
        },
    )
    .to_vec()?;
    // Fixed header (2) + "MQTT" (6) + level, flags, keep-alive (4) = property length.
    assert_eq!(bytes[12], 3);
    bytes.splice(13..13, [0x21, 0x00, 0x0a]);
    bytes[12] = 6;
    bytes[1] += 3;
    c.send_bytes(&bytes).await;
    let Some(Packet5::ConnAck(ack)) = c.recv().await else {
        panic!("CONNACK");
    };
    assert_eq!(ack.reason, ReasonCode::PROTOCOL_ERROR);
    let text = ack.properties.reason_string.unwrap_or_default();
    assert!(
        text.contains("Receive Maximum is included more than once"),
        "{text}"
    );
    assert!(c.recv().await.is_none());

    // The server is still up for 3.1.1 and 5 alike.
    let _ = connected(addr, &dev, &dev.jwt()).await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_re_authentication_outlives_the_first_token() -> TestResult {
    let (gw, addr, dev) = gateway(true).await?;
    let now = now_secs();
    let first = dev.jwt_with(PROJECT, now, now + 3);
    let mut c = connected(addr, &dev, &first).await;
    c.send(subscribe("/devices/dev-1/commands/#", 1)).await;
    assert!(matches!(
        c.recv_skipping_publish().await,
        Some(Packet5::SubAck(a)) if a.reasons == [ReasonCode::GRANTED_QOS_1]
    ));

    // A fresh token before the first one's exp.
    let second = dev.jwt_with(PROJECT, now, now + 600);
    let auth = Packet5::Auth(ReasonPacket {
        reason: ReasonCode::REAUTHENTICATE,
        properties: jwt_auth(&second),
    });
    c.send(auth).await;
    match c.recv_skipping_publish().await {
        Some(Packet5::Auth(ok)) => {
            assert_eq!(ok.reason, ReasonCode::SUCCESS);
            assert_eq!(ok.properties.auth_method.as_deref(), Some("jwt"));
        }
        other => panic!("expected AUTH Success, got {other:?}"),
    }

    // Past the first token's exp, the connection and its subscription are alive.
    tokio::time::sleep(Duration::from_secs(4)).await;
    c.send(publish(
        "/devices/dev-1/events",
        7,
        Properties::default(),
        b"after",
    ))
    .await;
    assert!(matches!(
        c.recv_skipping_publish().await,
        Some(Packet5::PubAck(a)) if a.packet_id.get() == 7 && a.reason == ReasonCode::SUCCESS
    ));
    let hub = gw.handle().hub();
    hub.send_command(&dev.address(), "dev-1", "lights", b"off".to_vec())
        .await
        .map_err(|e| format!("{e:?}"))?;
    let command = loop {
        match c.recv().await {
            Some(Packet5::Publish(p))
                if p.topic
                    .as_ref()
                    .is_some_and(|t| t.as_str().contains("commands")) =>
            {
                break p;
            }
            Some(_) => {}
            None => panic!("closed"),
        }
    };
    assert_eq!(command.payload, b"off");
    assert_eq!(
        gw.wait_records(TELEMETRY_TOPIC, 1).await[0].message.data,
        b"after"
    );

    // A refused re-authentication (another project's token) ends the connection with
    // 0x87 and the reason.
    let wrong = dev.jwt_with("other", now, now + 600);
    c.send(Packet5::Auth(ReasonPacket {
        reason: ReasonCode::REAUTHENTICATE,
        properties: jwt_auth(&wrong),
    }))
    .await;
    let d = c.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::NOT_AUTHORIZED);
    let text = d.properties.reason_string.unwrap_or_default();
    assert!(text.starts_with("re-authentication refused"), "{text}");
    assert!(text.contains("aud"), "{text}");
    gw.wait_error("dev-1", |s| s.message.contains("re-authentication refused"))
        .await;
    assert!(matches!(
        hub.send_command(&dev.address(), "dev-1", "", b"x".to_vec())
            .await,
        Err(HubError::NotConnected | HubError::NotSubscribed(_))
    ));
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_closes_carry_their_reason() -> TestResult {
    let (gw, addr, dev) = gateway(true).await?;

    // The token expires: Maximum connect time, and why.
    let now = now_secs();
    let mut c = connected(addr, &dev, &dev.jwt_with(PROJECT, now, now + 2)).await;
    let d = c.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::MAXIMUM_CONNECT_TIME);
    assert!(
        d.properties
            .reason_string
            .is_some_and(|t| t.contains("token expired")),
    );

    // Another connection takes over.
    let mut first = connected(addr, &dev, &dev.jwt()).await;
    let _second = connected(addr, &dev, &dev.jwt()).await;
    let d = first.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::SESSION_TAKEN_OVER);
    assert!(
        d.properties
            .reason_string
            .is_some_and(|t| t.contains("another active connection"))
    );

    // The device is blocked through the API: Administrative action.
    let mut c = connected(addr, &dev, &dev.jwt()).await;
    let mut device = gw.get_device("dev-1").await;
    device.blocked = true;
    gw.update_device(&device).await?;
    let d = c.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::ADMINISTRATIVE_ACTION);
    assert!(
        d.properties
            .reason_string
            .is_some_and(|t| t.contains("blocked"))
    );
    // And a blocked device's CONNECT: Banned, with the fix.
    let mut c = Client5::open(addr).await;
    c.send(connect5(dev.client_id(), jwt_auth(&dev.jwt())))
        .await;
    let Some(Packet5::ConnAck(ack)) = c.recv().await else {
        panic!("CONNACK");
    };
    assert_eq!(ack.reason, ReasonCode::BANNED);
    assert!(
        ack.properties
            .reason_string
            .is_some_and(|t| t.contains("set blocked to false"))
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_aliases_work_and_bad_ones_are_refused() -> TestResult {
    let (gw, addr, dev) = gateway(false).await?;
    let mut c = connected(addr, &dev, &dev.jwt()).await;
    let alias = |n| Properties {
        topic_alias: Some(n),
        ..Properties::default()
    };
    // Set alias 1, then use it alone.
    c.send(publish("/devices/dev-1/events", 1, alias(1), b"one"))
        .await;
    c.send(publish("", 2, alias(1), b"two")).await;
    for id in [1, 2] {
        assert!(matches!(
            c.recv_skipping_publish().await,
            Some(Packet5::PubAck(a)) if a.packet_id.get() == id
        ));
    }
    let records = gw.wait_records(TELEMETRY_TOPIC, 2).await;
    assert_eq!(records[1].message.data, b"two");

    // Alias 0: Topic Alias invalid.
    c.send(publish("/devices/dev-1/events", 3, alias(0), b"x"))
        .await;
    let d = c.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::TOPIC_ALIAS_INVALID);
    // Above the maximum announced.
    let mut c = connected(addr, &dev, &dev.jwt()).await;
    c.send(publish("/devices/dev-1/events", 3, alias(u16::MAX), b"x"))
        .await;
    let d = c.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::TOPIC_ALIAS_INVALID);
    assert!(
        d.properties
            .reason_string
            .is_some_and(|t| t.contains("65535"))
    );
    // An alias never set.
    let mut c = connected(addr, &dev, &dev.jwt()).await;
    c.send(publish("", 3, alias(2), b"x")).await;
    let d = c.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mqtt5_gets_a_reason_code_and_the_server_stays_up() -> TestResult {
    let (gw, addr, dev) = gateway(false).await?;
    let cases: Vec<(&str, Vec<u8>, ReasonCode)> = vec![
        // PUBLISH "/a" QoS 0 with a property length that runs past the packet.
        (
            "property length past the end",
            vec![0x30, 0x05, 0x00, 0x02, b'/', b'a', 0x09],
            ReasonCode::MALFORMED_PACKET,
        ),
        // PUBLISH with an unknown property identifier 0x7f.
        (
            "unknown property",
            vec![0x30, 0x07, 0x00, 0x02, b'/', b'a', 0x02, 0x7f, 0x00],
            ReasonCode::PROTOCOL_ERROR,
        ),
        // PUBLISH with Session Expiry Interval, which only CONNECT, CONNACK and
        // DISCONNECT may carry.
        (
            "misplaced property",
            vec![0x30, 0x0a, 0x00, 0x02, b'/', b'a', 0x05, 0x11, 0, 0, 0, 1],
            ReasonCode::PROTOCOL_ERROR,
        ),
        // PUBLISH with two Payload Format Indicators.
        (
            "duplicate property",
            vec![
                0x30, 0x09, 0x00, 0x02, b'/', b'a', 0x04, 0x01, 0x00, 0x01, 0x01,
            ],
            ReasonCode::PROTOCOL_ERROR,
        ),
        // AUTH on a connection without an Authentication Method (sent below on a
        // connection that used a password).
        (
            "AUTH without a method",
            vec![0xf0, 0x01, 0x19],
            ReasonCode::PROTOCOL_ERROR,
        ),
        // A QoS 2 PUBLISH (Maximum QoS is 1, as IoT Core's).
        (
            "QoS 2",
            Packet5::Publish(Publish5 {
                dup: false,
                delivery: Delivery::ExactlyOnce(PacketId::new(1).ok_or("id")?),
                retain: false,
                topic: Some(TopicName::new("/devices/dev-1/events")?),
                properties: Properties::default(),
                payload: b"x".to_vec(),
            })
            .to_vec()?,
            ReasonCode::QOS_NOT_SUPPORTED,
        ),
        // A SUBSCRIBE with Retain Handling 3.
        (
            "subscription options",
            vec![0x82, 0x08, 0x00, 0x01, 0x00, 0x00, 0x02, b'/', b'a', 0x31],
            ReasonCode::PROTOCOL_ERROR,
        ),
    ];
    for (what, bytes, expected) in cases {
        let mut c = Client5::open(addr).await;
        let mut connect = connect5(dev.client_id(), Properties::default());
        if let Packet5::Connect(c5) = &mut connect {
            c5.connect.password = Some(dev.jwt().into_bytes());
        }
        c.send(connect).await;
        assert!(
            matches!(c.recv().await, Some(Packet5::ConnAck(a)) if a.reason == ReasonCode::SUCCESS),
            "{what}: CONNACK"
        );
        c.send_bytes(&bytes).await;
        let d = c.expect_disconnect().await;
        assert_eq!(
            d.reason, expected,
            "{what}: {:?}",
            d.properties.reason_string
        );
        assert!(
            d.properties.reason_string.is_some(),
            "{what}: a reason string"
        );
    }
    // Still serving.
    let _ = connected(addr, &dev, &dev.jwt()).await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_re_authenticates_against_the_gateway() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let key = gw.dir.path().join("dev-1.pem");
    std::fs::write(&key, dev.private_key_pem())?;
    let signer = tether_device::open_signer(&key.display().to_string())?;
    let ca = std::fs::read(&gw.ca_path)?;
    let mut options = tether_device::DeviceOptions::new(
        tether_device::DevicePath::new(PROJECT, LOCATION, REGISTRY, "dev-1"),
        signer,
    )
    .endpoint(tether_device::Endpoint::new("localhost", gw.port()))
    .ca_pem(&ca)?;
    // One-minute tokens refreshed 58 s early: the first AUTH after about 2 s.
    options.refresh =
        tether_device::RefreshPlan::new(Duration::from_secs(60), Duration::from_secs(58))?;
    let device = tether_device::Device::connect(options).await?;
    let tether_device::Status::Connected {
        since,
        token_expires,
        ..
    } = device.status().borrow().clone()
    else {
        return Err("not connected".into());
    };
    let mut status = device.status();
    let refreshed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let tether_device::Status::Connected {
                since: now_since,
                token_expires: now_exp,
                ..
            } = status.borrow_and_update().clone()
                && now_exp > token_expires
            {
                return now_since;
            }
            if status.changed().await.is_err() {
                return since;
            }
        }
    })
    .await?;
    assert_eq!(
        refreshed, since,
        "the same connection: refreshed with AUTH, not a reconnect"
    );
    device
        .publish_event(None, "after re-auth", tether_device::QoS::AtLeastOnce)
        .await?;
    assert_eq!(
        gw.wait_records(TELEMETRY_TOPIC, 1).await[0].message.data,
        b"after re-auth"
    );
    // Activity is written in batches: give it a moment.
    let mut heard = false;
    for _ in 0..100 {
        if gw.get_device("dev-1").await.last_heartbeat_time.is_some() {
            heard = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        heard,
        "the refresh is recorded as activity (lastHeartbeatTime)"
    );
    device.disconnect().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_re_authentications_are_refused_with_a_reason() -> TestResult {
    let (gw, addr, dev) = gateway(false).await?;
    let other = gw.device("dev-2").await?;
    let reauth = |method: &str, token: &str| {
        Packet5::Auth(ReasonPacket {
            reason: ReasonCode::REAUTHENTICATE,
            properties: Properties {
                auth_method: Some(method.into()),
                auth_data: Some(token.as_bytes().to_vec()),
                ..Properties::default()
            },
        })
    };

    // Another device's token (signed by its key): Not authorized, and why.
    let mut c = connected(addr, &dev, &dev.jwt()).await;
    c.send(reauth("jwt", &other.jwt())).await;
    let d = c.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::NOT_AUTHORIZED);
    let text = d.properties.reason_string.unwrap_or_default();
    assert!(text.starts_with("re-authentication refused"), "{text}");

    // Another method than the CONNECT's.
    let mut c = connected(addr, &dev, &dev.jwt()).await;
    c.send(reauth("SCRAM-SHA-256", &dev.jwt())).await;
    let d = c.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::BAD_AUTHENTICATION_METHOD);

    // AUTH sent right behind the CONNECT, before the CONNACK.
    let mut c = Client5::open(addr).await;
    let mut bytes = connect5(dev.client_id(), jwt_auth(&dev.jwt())).to_vec()?;
    bytes.extend(reauth("jwt", &dev.jwt()).to_vec()?);
    c.send_bytes(&bytes).await;
    assert!(matches!(
        c.recv().await,
        Some(Packet5::ConnAck(a)) if a.reason == ReasonCode::SUCCESS
    ));
    let d = c.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR);
    assert!(
        d.properties
            .reason_string
            .is_some_and(|t| t.contains("before the CONNACK"))
    );

    // Oversized user properties: Packet too large, before anything is allocated.
    let mut c = connected(addr, &dev, &dev.jwt()).await;
    let huge = Properties {
        user_properties: (0..8)
            .map(|i| (format!("k{i}"), "v".repeat(60_000)))
            .collect(),
        ..Properties::default()
    };
    c.send(publish("/devices/dev-1/events", 9, huge, b"x"))
        .await;
    let d = c.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::PACKET_TOO_LARGE);
    let mut c = Client5::open(addr).await;
    let mut connect = connect5(dev.client_id(), jwt_auth(&dev.jwt()));
    if let Packet5::Connect(c5) = &mut connect {
        c5.properties.user_properties = vec![("k".into(), "v".repeat(65_000)); 6];
    }
    c.send(connect).await;
    assert!(matches!(
        c.recv().await,
        Some(Packet5::ConnAck(a)) if a.reason == ReasonCode::PACKET_TOO_LARGE
    ));

    // The server is still up.
    let _ = connected(addr, &dev, &dev.jwt()).await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_authentication_accepts_a_key_added_since_the_connect() -> TestResult {
    let (gw, addr, dev) = gateway(false).await?;
    let other = gw.device("dev-2").await?;
    let mut c = connected(addr, &dev, &dev.jwt()).await;
    // A second key for dev-1 (dev-2's), added through the store and announced as the
    // API does: the connection's copy of the device follows.
    let mut device = gw.get_device("dev-1").await;
    device
        .credentials
        .extend(gw.get_device(&other.id).await.credentials);
    gw.update_device(&device).await?;
    // A token signed by the new key (dev-2's tokens are, and carry no device id).
    let mut accepted = false;
    for _ in 0..50 {
        c.send(Packet5::Auth(ReasonPacket {
            reason: ReasonCode::REAUTHENTICATE,
            properties: jwt_auth(&other.jwt()),
        }))
        .await;
        match c.recv_skipping_publish().await {
            Some(Packet5::Auth(ok)) if ok.reason == ReasonCode::SUCCESS => {
                accepted = true;
                break;
            }
            Some(Packet5::Disconnect(d)) => {
                // The change had not reached the connection yet: connect again.
                assert_eq!(d.reason, ReasonCode::NOT_AUTHORIZED, "{d:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                c = connected(addr, &dev, &dev.jwt()).await;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(accepted, "the new key re-authenticates");
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_properties_become_telemetry_attributes() -> TestResult {
    let (gw, addr, dev) = gateway(false).await?;
    let mut c = connected(addr, &dev, &dev.jwt()).await;
    let user = |pairs: &[(&str, &str)]| Properties {
        user_properties: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Properties::default()
    };
    c.send(publish(
        "/devices/dev-1/events/alerts",
        1,
        user(&[("firmware", "2.4.1"), ("unit", "°C")]),
        b"21.5",
    ))
    .await;
    assert!(matches!(
        c.recv_skipping_publish().await,
        Some(Packet5::PubAck(a)) if a.packet_id.get() == 1
    ));
    let record = &gw.wait_records(ALERTS_TOPIC, 1).await[0];
    let attributes = &record.message.attributes;
    assert_eq!(attributes["firmware"], "2.4.1");
    assert_eq!(attributes["unit"], "°C");
    assert_eq!(attributes["deviceId"], "dev-1", "IoT Core's own stay");
    assert_eq!(attributes["subFolder"], "alerts");
    // On state too: the state notification carries them.
    c.send(publish(
        "/devices/dev-1/state",
        4,
        user(&[("firmware", "2.4.1")]),
        b"ok",
    ))
    .await;
    assert!(matches!(
        c.recv_skipping_publish().await,
        Some(Packet5::PubAck(a)) if a.packet_id.get() == 4
    ));
    let state = &gw.wait_records(STATE_TOPIC, 1).await[0];
    assert_eq!(state.message.attributes["firmware"], "2.4.1");
    assert_eq!(state.message.data, b"ok");

    // A User Property that would replace IoT Core's attribute: refused, and why.
    c.send(publish(
        "/devices/dev-1/events",
        2,
        user(&[("deviceId", "someone-else")]),
        b"x",
    ))
    .await;
    let d = c.expect_disconnect().await;
    assert_eq!(d.reason, ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR);
    let text = d.properties.reason_string.unwrap_or_default();
    assert!(
        text.contains("'deviceId'") && text.contains("IoT Core"),
        "{text}"
    );
    gw.wait_error("dev-1", |s| s.message.contains("User Property 'deviceId'"))
        .await;
    // Pub/Sub's reserved prefix and a repeated name, likewise.
    for pairs in [[("googFoo", "x"), ("a", "b")], [("k", "1"), ("k", "2")]] {
        let mut c = connected(addr, &dev, &dev.jwt()).await;
        c.send(publish("/devices/dev-1/events", 3, user(&pairs), b"x"))
            .await;
        let d = c.expect_disconnect().await;
        assert_eq!(
            d.reason,
            ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR,
            "{pairs:?}"
        );
    }
    gw.shutdown().await;
    Ok(())
}
