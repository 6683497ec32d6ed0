//! MQTT 5: the SDK refreshes its token with AUTH on the live connection when the
//! server speaks MQTT 5, falls back to 3.1.1 (and reconnect-to-refresh) when it does
//! not, and reports the server's reason string on a refusal.

use std::sync::Arc;
use std::time::Duration;

use tether_device::{ConnectError, Device, MqttVersion, QoS, Status, TokioClock};
use tether_keys::PrivateKey;
use tether_mqtt::ConnectReturnCode;
use tether_testkit::{FakeServer, FakeServerOptions};

use crate::common;

async fn mqtt5_server(key: &PrivateKey) -> (FakeServer, Arc<TokioClock>) {
    let clock = Arc::new(TokioClock::from_system());
    let server = FakeServer::start(FakeServerOptions {
        clock: clock.clone(),
        mqtt5: true,
        ..FakeServerOptions::default()
    })
    .await
    .expect("fake server");
    server.register(&common::path().client_id(), key.public_key().clone());
    (server, clock)
}

#[tokio::test(start_paused = true)]
async fn refreshes_with_auth_on_one_connection() {
    let key = common::key();
    let (server, clock) = mqtt5_server(&key).await;
    // Tokens live 2 min; the device re-authenticates 30 s before exp.
    let device = Device::connect(common::options(&key, server.addr().port(), clock))
        .await
        .expect("connects");
    server.set_config("dev-1", b"v1");
    for i in 0..42 {
        device
            .publish_event(Some("ticks"), format!("{i}"), QoS::AtLeastOnce)
            .await
            .expect("acknowledged");
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    let conns = server.connections();
    assert_eq!(conns.len(), 1, "one connection for 7 minutes: {conns:#?}");
    assert!(
        server.reauths() >= 4,
        "re-authenticated every 90 s: {}",
        server.reauths()
    );
    assert_eq!(server.expiry_cuts(), 0, "the server never had to cut");
    let Status::Connected { token_expires, .. } = *device.status().borrow() else {
        panic!("connected");
    };
    assert!(
        token_expires > u64::try_from(conns[0].token_exp).unwrap(),
        "the status shows the newest token's exp"
    );
    let events = server
        .received()
        .into_iter()
        .filter(|r| r.topic == "/devices/dev-1/events/ticks")
        .count();
    assert_eq!(events, 42, "every message once, on the one connection");
    assert_eq!(
        device.config().borrow().as_ref().map(|c| c.payload.clone()),
        Some(b"v1".to_vec())
    );
    device.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn auto_falls_back_to_3_1_1_and_v5_only_reports_the_refusal() {
    let key = common::key();
    let (server, clock) = common::server_with(&key).await;
    let device = Device::connect(common::options(&key, server.addr().port(), clock.clone()))
        .await
        .expect("Auto connects to a 3.1.1 server");
    device
        .publish_event(None, "x", QoS::AtLeastOnce)
        .await
        .expect("acknowledged");
    device.disconnect().await;
    assert_eq!(server.connections().len(), 1);

    let mut only_v5 = common::options(&key, server.addr().port(), clock);
    only_v5.mqtt_version = MqttVersion::V5;
    let err = Device::connect(only_v5).await.expect_err("3.1.1 server");
    assert!(
        matches!(
            err,
            ConnectError::Refused {
                code: ConnectReturnCode::UnacceptableProtocolVersion,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refusal_carries_the_server_s_reason() {
    let key = common::key();
    let (server, clock) = mqtt5_server(&key).await;
    // Another key than the registered one.
    let other = common::key();
    let err = Device::connect(common::options(&other, server.addr().port(), clock))
        .await
        .expect_err("wrong key");
    let ConnectError::Refused {
        code,
        server_reason: Some(reason),
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*code, ConnectReturnCode::NotAuthorized);
    let recorded = server
        .last_error(&common::path().client_id())
        .expect("recorded");
    assert!(reason.contains(&recorded), "{reason} vs {recorded}");
    assert!(err.to_string().contains("the server says"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_server_s_disconnect_reason_reaches_the_status() {
    let key = common::key();
    let (server, clock) = mqtt5_server(&key).await;
    let first = Device::connect(common::options(&key, server.addr().port(), clock.clone()))
        .await
        .expect("connects");
    // The same device id connects again: the server takes the first connection over
    // with DISCONNECT 0x8E and says so.
    let second = Device::connect(common::options(&key, server.addr().port(), clock))
        .await
        .expect("connects");
    let status = common::wait_for(&first, |s| matches!(s, Status::Backoff { .. })).await;
    let Status::Backoff { last_error, .. } = status else {
        unreachable!()
    };
    let said = last_error.to_string();
    assert!(said.contains("Session taken over"), "{said}");
    assert!(said.contains("another connection"), "{said}");
    first.disconnect().await;
    second.disconnect().await;
}
