//! Connection life: one connection per device, the JWT expiry cut, the idle and
//! keep-alive cuts, CONNECT and TLS timeouts for silent clients, garbage input, rate
//! back-pressure, config redelivery, API-driven closes, graceful shutdown, and no
//! leaked connections after any of it.

mod mqtt_support;

use std::time::Duration;

use tokio::time::Instant;

use mqtt_support::*;
use rumqttc::{AsyncClient, Packet, QoS};
use tether_mqtt::{Packet as Raw, PacketId, Subscribe, Subscription, TopicFilter};
use tether_registry::Store as _;
use tether_registry::model::Timestamp;
use tether_registry::names::DeviceRef;

fn with_plain(o: &mut tether_server::mqtt::MqttOptions) {
    o.plain_addrs = vec!["127.0.0.1:0".parse().expect("an address")];
}

#[tokio::test]
async fn a_second_connection_closes_the_first() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let (_first, mut first_events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 4);
    connack(&mut first_events).await.expect("first accepted");
    let (second, mut second_events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 4);
    connack(&mut second_events).await.expect("second accepted");
    until_closed(&mut first_events).await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("another active connection"))
        .await;
    assert_eq!(
        status.message,
        "mqtt: SERVER: The connection was closed because there is another active connection \
         with the same device ID."
    );
    // The new connection still works.
    second
        .publish(
            "/devices/dev-1/events",
            QoS::AtLeastOnce,
            false,
            b"x".to_vec(),
        )
        .await?;
    until_incoming(&mut second_events, |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;
    assert_eq!(gw.handle().connected_devices(), 1);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_connection_ends_when_the_token_expires() -> TestResult {
    let gw = Gateway::start(|o| o.jwt.skew_secs = 1).await?;
    let dev = gw.device("dev-1").await?;
    let now = now_secs();
    let token = dev.jwt_with(PROJECT, now, now + 1);
    let started = Instant::now();
    let (_c, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&token)), 4);
    connack(&mut events).await.expect("accepted");
    until_closed(&mut events).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "cut too early: {elapsed:?}"
    );
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("token expired"))
        .await;
    assert_eq!(
        status.message,
        "mqtt: SERVER: The authorization token expired."
    );
    assert_eq!(status.code, 16);
    gw.wait_no_connections().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn idle_and_keepalive_cuts() -> TestResult {
    let gw = Gateway::start(|o| {
        with_plain(o);
        o.idle_timeout = Duration::from_millis(300);
    })
    .await?;
    let addr = gw.plain_addr.ok_or("plain")?;
    let dev = gw.device("dev-1").await?;
    // keep-alive 0 disables MQTT's check, but the idle cut applies regardless.
    let mut idle = RawClient::connect_device(addr, &dev, 0).await;
    idle.expect_closed(Duration::from_secs(5)).await;
    let status = gw.wait_error("dev-1", |s| s.message.contains("idle")).await;
    assert_eq!(status.code, 4);

    // A second gateway with the default 20-minute idle cut for the keep-alive case.
    let gw2 = Gateway::start(with_plain).await?;
    let dev2 = gw2.device("dev-2").await?;
    // A half-open client: keep-alive 1 s, then silence without closing the socket.
    let mut silent = RawClient::connect_device(gw2.plain_addr.ok_or("plain")?, &dev2, 1).await;
    let started = Instant::now();
    silent.expect_closed(Duration::from_secs(5)).await;
    assert!(started.elapsed() >= Duration::from_millis(1400));
    let status = gw2
        .wait_error("dev-2", |s| s.message.contains("keep-alive"))
        .await;
    assert_eq!(
        status.message,
        "mqtt: SERVER: The connection was closed because MQTT keep-alive check failed."
    );
    gw.wait_no_connections().await;
    gw2.wait_no_connections().await;
    gw.shutdown().await;
    gw2.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn silent_clients_are_closed_after_the_connect_timeout() -> TestResult {
    let gw = Gateway::start(|o| {
        with_plain(o);
        o.connect_timeout = Duration::from_millis(300);
    })
    .await?;
    // Plain TCP: connected, never sends CONNECT.
    let mut plain = RawClient::connect(gw.plain_addr.ok_or("plain")?).await;
    // TLS port: connected, never starts the handshake.
    let mut tls = RawClient::connect(gw.tls_addr).await;
    for _ in 0..100 {
        if gw.handle().open_connections() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gw.handle().open_connections(), 2);
    plain.expect_closed(Duration::from_secs(3)).await;
    tls.expect_closed(Duration::from_secs(3)).await;
    gw.wait_no_connections().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn garbage_is_closed_without_panic() -> TestResult {
    let gw = Gateway::start(with_plain).await?;
    let plain = gw.plain_addr.ok_or("plain")?;
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // Not MQTT at all, on both listeners.
    for addr in [plain, gw.tls_addr] {
        let mut c = RawClient::connect(addr).await;
        c.send_bytes(&garbage).await;
        let mut rest = [0u8; 1];
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            use tokio::io::AsyncReadExt as _;
            while c.stream.read(&mut rest).await.is_ok_and(|n| n > 0) {}
        })
        .await;
    }
    // A CONNECT whose remaining length claims 256 MB: refused from the header alone.
    let mut huge = RawClient::connect(plain).await;
    huge.send_bytes(&[0x10, 0xff, 0xff, 0xff, 0x7f]).await;
    huge.expect_closed(Duration::from_secs(3)).await;
    // Garbage after a successful CONNECT: recorded as a protocol error.
    let dev = gw.device("dev-1").await?;
    let mut c = RawClient::connect_device(plain, &dev, 60).await;
    c.send_bytes(&[0x30, 0x05, 0x00, 0x09, b'a', b'b', b'c'])
        .await; // topic longer than the packet
    c.expect_closed(Duration::from_secs(3)).await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("protocol error"))
        .await;
    assert_eq!(status.code, 3);
    // A client that vanishes mid-packet.
    let mut partial = RawClient::connect(plain).await;
    partial.send_bytes(&[0x10, 0x20, 0x00]).await;
    drop(partial);
    gw.wait_no_connections().await;
    assert_eq!(gw.handle().connected_devices(), 0);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn qos1_config_is_redelivered_until_acked_and_a_late_ack_still_counts() -> TestResult {
    let gw = Gateway::start(|o| {
        with_plain(o);
        o.config_resend_interval = Duration::from_millis(200);
    })
    .await?;
    let dev = gw.device("dev-1").await?;
    let mut c = RawClient::connect_device(gw.plain_addr.ok_or("plain")?, &dev, 60).await;
    c.send(Raw::Subscribe(Subscribe {
        packet_id: PacketId::new(1).ok_or("id")?,
        subscriptions: vec![Subscription {
            filter: TopicFilter::new("/devices/dev-1/config")?,
            qos: tether_mqtt::QoS::AtLeastOnce,
        }],
    }))
    .await;
    assert!(matches!(
        c.recv(Duration::from_secs(5)).await,
        Some(Raw::SubAck(_))
    ));
    let Some(Raw::Publish(first)) = c.recv(Duration::from_secs(5)).await else {
        panic!("expected the config");
    };
    assert!(!first.dup);
    // No PUBACK: the same id comes again with DUP.
    let Some(Raw::Publish(again)) = c.recv(Duration::from_secs(5)).await else {
        panic!("expected a redelivery");
    };
    assert!(again.dup);
    assert_eq!(again.delivery, first.delivery);
    // A newer version supersedes the unacknowledged one.
    let v2 = gw
        .store
        .modify_config(
            &registry_path(),
            &DeviceRef::Id("dev-1".into()),
            0,
            b"v2",
            Timestamp::from_secs(now_secs()),
        )
        .await?;
    gw.handle().hub().config_updated(&dev.address(), &v2).await;
    let v2_publish = loop {
        match c.recv(Duration::from_secs(5)).await {
            Some(Raw::Publish(p)) if p.payload == b"v2" => break p,
            Some(_) => {}
            None => panic!("closed"),
        }
    };
    let id = v2_publish.delivery.packet_id().ok_or("QoS 1")?;
    c.send(Raw::PubAck(id)).await;
    // The device got version 1 too, and says so late: that still counts.
    let first_id = first.delivery.packet_id().ok_or("QoS 1")?;
    c.send(Raw::PubAck(first_id)).await;
    let mut acked = Vec::new();
    for _ in 0..100 {
        acked = gw
            .store
            .list_config_versions(&registry_path(), &DeviceRef::Id("dev-1".into()), 2)
            .await?
            .iter()
            .filter(|v| v.device_ack_time.is_some())
            .map(|v| v.version)
            .collect();
        if acked.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(acked, [2, 1], "deviceAckTime of versions 2 and 1 (late)");
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn message_rate_is_enforced_by_back_pressure() -> TestResult {
    let gw = Gateway::start(|o| o.limits.messages_per_sec = 5).await?;
    let dev = gw.device("dev-1").await?;
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 32);
    connack(&mut events).await.expect("accepted");
    let started = Instant::now();
    for i in 0..10u8 {
        client
            .publish("/devices/dev-1/events", QoS::AtLeastOnce, false, vec![i])
            .await?;
    }
    let mut acks = 0;
    until_incoming(&mut events, |p| {
        if matches!(p, Packet::PubAck(_)) {
            acks += 1;
        }
        (acks == 10).then_some(())
    })
    .await;
    // 5 from the full bucket, 5 more at 5/s: about one second, nothing dropped.
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(gw.wait_records(TELEMETRY_TOPIC, 10).await.len(), 10);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn blocking_a_connected_device_closes_it() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let (_c, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 4);
    connack(&mut events).await.expect("accepted");
    let mut device = gw.get_device("dev-1").await;
    device.blocked = true;
    gw.update_device(&device).await?;
    until_closed(&mut events).await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("was blocked"))
        .await;
    assert_eq!(status.code, 7);
    gw.shutdown().await;
    Ok(())
}

/// Disables MQTT on the registry of a connected device, announcing it to the hub (as
/// the API does) or not (another server on the same database did it), and checks the
/// connection is closed with the reason stored.
async fn closed_when_mqtt_is_disabled(announced: bool) -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 4);
    connack(&mut events).await.expect("accepted");
    let mut registry = gw.store.get_registry(&registry_path()).await?;
    registry.mqtt_state = tether_registry::model::MqttState::Disabled;
    gw.store.update_registry(&registry).await?;
    if announced {
        gw.handle().hub().registry_changed(&registry_path()).await;
        until_closed(&mut events).await;
    } else {
        // Unannounced, the periodic re-read catches it: an event starts the shared
        // re-read in the background (the tests' refresh interval is 0), and a later
        // one finds MQTT disabled.
        let publisher = client.clone();
        let publishing = tokio::spawn(async move {
            loop {
                let sent = publisher
                    .publish(
                        "/devices/dev-1/events",
                        QoS::AtLeastOnce,
                        false,
                        b"x".to_vec(),
                    )
                    .await;
                if sent.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        until_closed(&mut events).await;
        publishing.abort();
    }
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("MQTT was disabled"))
        .await;
    assert_eq!(status.code, 9, "FAILED_PRECONDITION: {}", status.message);
    assert!(
        status
            .message
            .contains("mqttConfig.mqttEnabledState is MQTT_DISABLED"),
        "{}",
        status.message
    );
    if announced {
        assert!(gw.log.read(TELEMETRY_TOPIC, 0, 10).await?.is_empty());
    }
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn disabling_mqtt_on_the_registry_closes_its_connections() -> TestResult {
    closed_when_mqtt_is_disabled(true).await
}

#[tokio::test]
async fn mqtt_disabled_behind_the_api_s_back_closes_at_the_next_event() -> TestResult {
    closed_when_mqtt_is_disabled(false).await
}

#[tokio::test]
async fn a_routing_change_applies_to_the_next_message_of_a_connected_device() -> TestResult {
    const REROUTED: &str = "projects/acme/topics/rerouted";
    // Without the hub's nudge this connection would keep its copy for an hour.
    let gw = Gateway::start(|o| o.registry_refresh = Duration::from_secs(3600)).await?;
    let dev = gw.device("dev-1").await?;
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 4);
    connack(&mut events).await.expect("accepted");
    let publish = |payload: &'static [u8]| {
        let client = client.clone();
        async move {
            client
                .publish("/devices/dev-1/events", QoS::AtLeastOnce, false, payload)
                .await
        }
    };
    publish(b"before").await?;
    until_incoming(&mut events, |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;
    let mut registry = gw.store.get_registry(&registry_path()).await?;
    for config in &mut registry.event_notification_configs {
        if config.subfolder_matches.is_empty() {
            config.pubsub_topic_name = REROUTED.into();
        }
    }
    gw.store.update_registry(&registry).await?;
    gw.handle().hub().registry_changed(&registry_path()).await;
    publish(b"after").await?;
    until_incoming(&mut events, |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;
    let before = gw.wait_records(TELEMETRY_TOPIC, 1).await;
    let after = gw.wait_records(REROUTED, 1).await;
    let data = |records: &[tether_log::Record]| {
        records
            .iter()
            .map(|r| r.message.data.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(data(&before), vec![b"before".to_vec()]);
    assert_eq!(data(&after), vec![b"after".to_vec()]);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn shutdown_closes_devices_and_records_why() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 4);
    connack(&mut events).await.expect("accepted");
    client
        .publish(
            "/devices/dev-1/events",
            QoS::AtLeastOnce,
            false,
            b"last".to_vec(),
        )
        .await?;
    until_incoming(&mut events, |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;
    let store = gw.store.clone();
    let tls_addr = gw.tls_addr;
    let closed = tokio::spawn(async move { until_closed(&mut events).await });
    gw.shutdown().await;
    closed.await?;
    // Activity was flushed before shutdown returned.
    let device = store
        .get_device(&registry_path(), &DeviceRef::Id("dev-1".into()))
        .await?;
    let status = device.last_error_status.ok_or("no status")?;
    assert_eq!(
        status.message,
        "mqtt: SERVER: The connection is closed because the server is shutting down."
    );
    assert!(device.last_event_time.is_some());
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(tls_addr).await.is_err());
    Ok(())
}

#[tokio::test]
async fn the_connection_cap_holds_back_extra_sockets() -> TestResult {
    let gw = Gateway::start(|o| {
        with_plain(o);
        o.max_connections = 1;
        o.connect_timeout = Duration::from_millis(400);
    })
    .await?;
    let addr = gw.plain_addr.ok_or("plain")?;
    let mut first = RawClient::connect(addr).await;
    // The second socket completes the TCP handshake in the backlog but is not served.
    let mut second = RawClient::connect(addr).await;
    for _ in 0..100 {
        if gw.handle().open_connections() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(gw.handle().open_connections(), 1);
    // Once the first is closed by the CONNECT timeout, the second is served (and
    // closed by its own timeout in turn).
    first.expect_closed(Duration::from_secs(3)).await;
    second.expect_closed(Duration::from_secs(3)).await;
    gw.wait_no_connections().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn pingreq_sets_last_heartbeat_time() -> TestResult {
    let gw = Gateway::start(with_plain).await?;
    let dev = gw.device("dev-1").await?;
    let mut c = RawClient::connect_device(gw.plain_addr.ok_or("plain")?, &dev, 60).await;
    assert_eq!(gw.get_device("dev-1").await.last_heartbeat_time, None);
    c.send(Raw::PingReq).await;
    assert_eq!(c.recv(Duration::from_secs(5)).await, Some(Raw::PingResp));
    let mut beat = None;
    for _ in 0..100 {
        beat = gw.get_device("dev-1").await.last_heartbeat_time;
        if beat.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(beat.is_some(), "lastHeartbeatTime after PINGREQ");
    c.send(Raw::Disconnect).await;
    c.expect_closed(Duration::from_secs(3)).await;
    gw.wait_no_connections().await;
    assert_eq!(gw.get_device("dev-1").await.last_error_status, None);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn protocol_level_and_password_quirk() -> TestResult {
    let gw = Gateway::start(with_plain).await?;
    let addr = gw.plain_addr.ok_or("plain")?;
    let dev = gw.device("dev-1").await?;
    // Levels other than 4 and 5 (MQTT 5 is tests/mqtt5.rs) are answered with CONNACK 1.
    let mut level6 = RawClient::connect(addr).await;
    level6
        .send(Raw::Connect(tether_mqtt::Connect {
            protocol_level: 6,
            username: Some("unused".into()),
            password: Some(dev.jwt().into_bytes()),
            ..tether_mqtt::Connect::new(dev.client_id())
        }))
        .await;
    match level6.recv(Duration::from_secs(5)).await {
        Some(Raw::ConnAck(ack)) => assert_eq!(ack.code.as_u8(), 1),
        other => panic!("expected CONNACK 1, got {other:?}"),
    }
    level6.expect_closed(Duration::from_secs(3)).await;
    // A password without the User Name flag, as some device libraries send it, and a
    // Last Will (ignored): accepted.
    let mut quirky = RawClient::connect(addr).await;
    quirky
        .send(Raw::Connect(tether_mqtt::Connect {
            username: None,
            password: Some(dev.jwt().into_bytes()),
            will: Some(tether_mqtt::Will {
                topic: tether_mqtt::TopicName::new("/devices/dev-1/events")?,
                message: b"gone".to_vec(),
                qos: tether_mqtt::QoS::AtMostOnce,
                retain: false,
            }),
            ..tether_mqtt::Connect::new(dev.client_id())
        }))
        .await;
    match quirky.recv(Duration::from_secs(5)).await {
        Some(Raw::ConnAck(ack)) => assert_eq!(ack.code.as_u8(), 0),
        other => panic!("expected CONNACK 0, got {other:?}"),
    }
    drop(quirky);
    gw.wait_no_connections().await;
    // The Will was not published.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        gw.log
            .read(TELEMETRY_TOPIC, 0, 10)
            .await
            .map(|r| r.is_empty())
            .unwrap_or(true)
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn removing_the_connected_key_closes_the_connection() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let other = gw.device("dev-2").await?;
    let (_c, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 4);
    connack(&mut events).await.expect("accepted");
    // Replace dev-1's key with dev-2's.
    let mut device = gw.get_device("dev-1").await;
    device.credentials = gw.get_device(&other.id).await.credentials;
    gw.update_device(&device).await?;
    until_closed(&mut events).await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("key that authenticated"))
        .await;
    assert_eq!(status.code, 16);
    // And the old token no longer connects.
    let (_c, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 4);
    assert_eq!(
        connack(&mut events).await,
        Err(rumqttc::ConnectReturnCode::NotAuthorized)
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_second_tls_listener_serves_the_same_devices() -> TestResult {
    let gw =
        Gateway::start(|o| o.tls_addrs.push("127.0.0.1:0".parse().expect("an address"))).await?;
    let dev = gw.device("dev-1").await?;
    let second = *gw.handle().tls_addrs().get(1).ok_or("no second listener")?;
    assert_ne!(second.port(), gw.port());
    let mut options = rumqttc::MqttOptions::new(dev.client_id(), "localhost", second.port());
    options.set_credentials("unused", dev.jwt());
    options.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(client_tls(&gw.ca_path)),
    ));
    let (_c, mut events) = AsyncClient::new(options, 4);
    assert_eq!(connack(&mut events).await, Ok(()));
    gw.shutdown().await;
    Ok(())
}

/// With admission threads (`--connect-priority low`), a device that connects and then
/// stays silent leaves them once it has settled (2 s), not at its next packet: it must
/// not wait there, at the flood's priority, in admission's larger task.
#[tokio::test]
async fn a_silent_device_leaves_the_admission_threads_once_settled() -> TestResult {
    let gw = Gateway::start(|o| {
        with_plain(o);
        o.admission =
            tether_server::listen::admission::Admission::start(1).expect("admission threads");
    })
    .await?;
    let dev = gw.device("quiet").await?;
    let mut client = RawClient::connect_device(gw.plain_addr.ok_or("plain")?, &dev, 600).await;
    assert_eq!(
        gw.handle().admitting_connections(),
        1,
        "just connected: still where admission runs"
    );
    let mut waited = Duration::ZERO;
    while gw.handle().admitting_connections() != 0 && waited < Duration::from_secs(6) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    assert_eq!(
        gw.handle().admitting_connections(),
        0,
        "a silent device settles after 2 s"
    );
    assert!(
        waited >= Duration::from_millis(1500),
        "not before it settled: {waited:?}"
    );
    assert_eq!(gw.handle().connected_devices(), 1, "still connected");
    client.send(tether_mqtt::Packet::PingReq).await;
    assert!(
        matches!(
            client.recv(Duration::from_secs(5)).await,
            Some(tether_mqtt::Packet::PingResp)
        ),
        "served on the device threads"
    );
    Ok(())
}
