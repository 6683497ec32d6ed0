//! Topic violations (spec §1.4): another device's topic and unknown topics disconnect
//! with the reason stored; wildcard and foreign subscriptions get SUBACK 0x80; QoS 2
//! PUBLISH disconnects; telemetry without a matching notification config disconnects.

mod mqtt_support;

use mqtt_support::*;
use rumqttc::{AsyncClient, Packet, QoS, SubscribeReasonCode};
use tether_registry::Store as _;

async fn connected(gw: &Gateway, dev: &TestDevice) -> (AsyncClient, rumqttc::EventLoop) {
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(gw, &dev.client_id(), Some(&dev.jwt())), 8);
    connack(&mut events).await.expect("accepted");
    (client, events)
}

#[tokio::test]
async fn publishing_to_another_devices_topic_disconnects() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    gw.device("dev-2").await?;
    let (client, mut events) = connected(&gw, &dev).await;
    client
        .publish(
            "/devices/dev-2/events",
            QoS::AtLeastOnce,
            false,
            b"x".to_vec(),
        )
        .await?;
    until_closed(&mut events).await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("dev-2"))
        .await;
    assert_eq!(status.code, 7);
    assert_eq!(
        status.message,
        "mqtt: SERVER: device 'dev-1' tried to publish to '/devices/dev-2/events', a topic of \
         device 'dev-2'; a device may only use its own topics"
    );
    assert_eq!(
        gw.log
            .read(TELEMETRY_TOPIC, 0, 10)
            .await
            .map(|r| r.len())
            .unwrap_or(0),
        0
    );
    gw.wait_no_connections().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unknown_topic_disconnects() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let (client, mut events) = connected(&gw, &dev).await;
    client
        .publish(
            "projects/acme/topics/telemetry",
            QoS::AtMostOnce,
            false,
            b"x".to_vec(),
        )
        .await?;
    until_closed(&mut events).await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("Pub/Sub topic name"))
        .await;
    assert_eq!(status.code, 3);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn wildcard_and_foreign_subscriptions_get_0x80() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let (client, mut events) = connected(&gw, &dev).await;
    client
        .subscribe_many([
            rumqttc::SubscribeFilter::new("#".into(), QoS::AtLeastOnce),
            rumqttc::SubscribeFilter::new("/devices/dev-2/config".into(), QoS::AtLeastOnce),
            rumqttc::SubscribeFilter::new("/devices/dev-1/commands/#".into(), QoS::ExactlyOnce),
        ])
        .await?;
    let codes = until_incoming(&mut events, |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        codes,
        vec![
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Failure,
            // QoS 2 on a device topic is granted as QoS 1.
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
        ]
    );
    // Still connected: a refused subscription does not disconnect.
    client
        .publish(
            "/devices/dev-1/events",
            QoS::AtLeastOnce,
            false,
            b"ok".to_vec(),
        )
        .await?;
    until_incoming(&mut events, |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("dev-2"))
        .await;
    assert_eq!(status.code, 7);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn qos2_publish_disconnects() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let (client, mut events) = connected(&gw, &dev).await;
    client
        .publish(
            "/devices/dev-1/events",
            QoS::ExactlyOnce,
            false,
            b"x".to_vec(),
        )
        .await?;
    until_closed(&mut events).await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("QoS 2"))
        .await;
    assert_eq!(status.code, 3);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn telemetry_without_a_topic_disconnects_but_state_works() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let mut registry = gw.store.get_registry(&registry_path()).await?;
    registry
        .event_notification_configs
        .retain(|c| !c.subfolder_matches.is_empty());
    gw.store.update_registry(&registry).await?;
    let (client, mut events) = connected(&gw, &dev).await;
    client
        .publish(
            "/devices/dev-1/state",
            QoS::AtLeastOnce,
            false,
            b"s".to_vec(),
        )
        .await?;
    until_incoming(&mut events, |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;
    client
        .publish(
            "/devices/dev-1/events/other",
            QoS::AtLeastOnce,
            false,
            b"x".to_vec(),
        )
        .await?;
    until_closed(&mut events).await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("subfolder 'other'"))
        .await;
    assert_eq!(status.code, 9);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn oversized_state_disconnects() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let (client, mut events) = connected(&gw, &dev).await;
    client
        .publish(
            "/devices/dev-1/state",
            QoS::AtLeastOnce,
            false,
            vec![0u8; 64 * 1024 + 1],
        )
        .await?;
    until_closed(&mut events).await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("65537 bytes"))
        .await;
    assert_eq!(status.code, 3);
    gw.shutdown().await;
    Ok(())
}
