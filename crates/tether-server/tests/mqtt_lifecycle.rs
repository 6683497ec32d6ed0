//! The full device life cycle with rumqttc over TLS: connect, telemetry (QoS 0/1,
//! subfolders), state, config on subscribe and on update with its ack, commands
//! through the hub, disconnect, and the last*-times it leaves behind.

mod mqtt_support;

use std::time::Duration;

use mqtt_support::*;
use rumqttc::{AsyncClient, Packet, QoS};
use tether_registry::Store as _;
use tether_registry::model::Timestamp;
use tether_registry::names::DeviceRef;
use tether_server::bridge::hub::HubError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_life_cycle_with_rumqttc() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let hub = gw.handle().hub();

    let (client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 16);
    connack(&mut events)
        .await
        .map_err(|c| format!("refused: {c:?}"))?;
    assert_eq!(gw.handle().connected_devices(), 1);

    // Commands before subscribing: FAILED_PRECONDITION-equivalent from the hub.
    let refused = hub
        .send_command(&dev.address(), &dev.id, "", b"early".to_vec())
        .await;
    assert_eq!(refused, Err(HubError::NotSubscribed("dev-1".into())));

    // Config: the latest version (1, empty) arrives right after SUBACK.
    client
        .subscribe(format!("/devices/{}/config", dev.id), QoS::AtLeastOnce)
        .await?;
    let granted = until_incoming(&mut events, |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        granted,
        vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let first = until_incoming(&mut events, |p| match p {
        Packet::Publish(p) if p.topic == "/devices/dev-1/config" => Some(p.clone()),
        _ => None,
    })
    .await;
    assert!(first.payload.is_empty(), "version 1 is the empty config");
    assert_eq!(first.qos, QoS::AtLeastOnce);

    client
        .subscribe(format!("/devices/{}/commands/#", dev.id), QoS::AtLeastOnce)
        .await?;
    until_incoming(&mut events, |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await;

    // Telemetry: QoS 0 to the default topic, QoS 1 with the `alerts` subfolder, QoS 1
    // with a nested subfolder (default topic again).
    client
        .publish(
            "/devices/dev-1/events",
            QoS::AtMostOnce,
            false,
            b"t0".to_vec(),
        )
        .await?;
    client
        .publish(
            "/devices/dev-1/events/alerts",
            QoS::AtLeastOnce,
            false,
            b"fire".to_vec(),
        )
        .await?;
    client
        .publish(
            "/devices/dev-1/events/a/b",
            QoS::AtLeastOnce,
            false,
            b"nested".to_vec(),
        )
        .await?;
    // PUBACKs come only after the log made the messages durable.
    let mut acks = 0;
    until_incoming(&mut events, |p| {
        if matches!(p, Packet::PubAck(_)) {
            acks += 1;
        }
        (acks == 2).then_some(())
    })
    .await;
    let alerts = gw.log.read(ALERTS_TOPIC, 0, 10).await?;
    assert_eq!(alerts.len(), 1, "the PUBACK came after the durable append");
    let alert = &alerts[0].message;
    assert_eq!(alert.data, b"fire");
    assert_eq!(alert.attributes["subFolder"], "alerts");
    assert_eq!(alert.attributes["deviceId"], "dev-1");
    assert_eq!(alert.attributes["deviceNumId"], dev.num_id.to_string());
    assert_eq!(alert.attributes["deviceRegistryId"], REGISTRY);
    assert_eq!(alert.attributes["deviceRegistryLocation"], LOCATION);
    assert_eq!(alert.attributes["projectId"], PROJECT);
    let telemetry = gw.wait_records(TELEMETRY_TOPIC, 2).await;
    let payloads: Vec<&[u8]> = telemetry
        .iter()
        .map(|r| r.message.data.as_slice())
        .collect();
    assert_eq!(payloads, [b"t0".as_slice(), b"nested".as_slice()]);
    assert_eq!(telemetry[0].message.attributes["subFolder"], "");
    assert_eq!(telemetry[1].message.attributes["subFolder"], "a/b");

    // State: stored (PUBACK after the store write) and notified.
    client
        .publish(
            "/devices/dev-1/state",
            QoS::AtLeastOnce,
            false,
            b"on".to_vec(),
        )
        .await?;
    until_incoming(&mut events, |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;
    let states = gw
        .store
        .list_states(&registry_path(), &DeviceRef::Id("dev-1".into()), 0)
        .await?;
    assert_eq!(
        states.first().map(|s| s.binary_data.as_slice()),
        Some(&b"on"[..])
    );
    let notified = gw.wait_records(STATE_TOPIC, 1).await;
    assert_eq!(notified[0].message.data, b"on");
    assert!(!notified[0].message.attributes.contains_key("subFolder"));

    // A new config version reaches the connected device; its PUBACK is recorded.
    let v2 = gw
        .store
        .modify_config(
            &registry_path(),
            &DeviceRef::Id("dev-1".into()),
            0,
            b"{\"fan\":1}",
            Timestamp::from_secs(now_secs()),
        )
        .await?;
    hub.config_updated(&dev.address(), &v2).await;
    let update = until_incoming(&mut events, |p| match p {
        Packet::Publish(p) if p.topic == "/devices/dev-1/config" => Some(p.payload.clone()),
        _ => None,
    })
    .await;
    assert_eq!(&update[..], b"{\"fan\":1}");
    let mut acked = false;
    for _ in 0..200 {
        // rumqttc acknowledges on the next poll.
        let _ = tokio::time::timeout(Duration::from_millis(10), events.poll()).await;
        let versions = gw
            .store
            .list_config_versions(&registry_path(), &DeviceRef::Id("dev-1".into()), 1)
            .await?;
        if versions
            .first()
            .is_some_and(|v| v.version == 2 && v.device_ack_time.is_some())
        {
            acked = true;
            break;
        }
    }
    assert!(acked, "deviceAckTime of version 2 was not recorded");

    // A command with a subfolder.
    let hub2 = hub.clone();
    let address = dev.address();
    let sent = tokio::spawn(async move {
        hub2.send_command(&address, "dev-1", "reboot/now", b"go".to_vec())
            .await
    });
    let command = until_incoming(&mut events, |p| match p {
        Packet::Publish(p) if p.topic.starts_with("/devices/dev-1/commands") => {
            Some((p.topic.clone(), p.payload.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!(command.0, "/devices/dev-1/commands/reboot/now");
    assert_eq!(&command.1[..], b"go");
    assert_eq!(sent.await?, Ok(()));

    // Clean disconnect: no error recorded, nothing leaks, last*-times are set.
    client.disconnect().await?;
    let _ = until_closed_or_done(&mut events).await;
    gw.wait_no_connections().await;
    assert_eq!(gw.handle().connected_devices(), 0);
    let mut device = gw.get_device("dev-1").await;
    for _ in 0..100 {
        if device.last_event_time.is_some() && device.last_config_send_time.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        device = gw.get_device("dev-1").await;
    }
    assert!(device.last_event_time.is_some(), "lastEventTime");
    assert!(device.last_state_time.is_some(), "lastStateTime");
    assert!(device.last_config_send_time.is_some(), "lastConfigSendTime");
    assert!(device.last_config_ack_time.is_some(), "lastConfigAckTime");
    assert_eq!(device.last_error_status, None);
    assert_eq!(
        hub.send_command(&dev.address(), "dev-1", "", vec![]).await,
        Err(HubError::NotConnected)
    );
    gw.shutdown().await;
    Ok(())
}

async fn until_closed_or_done(events: &mut rumqttc::EventLoop) -> Option<rumqttc::ConnectionError> {
    for _ in 0..50 {
        match tokio::time::timeout(Duration::from_millis(200), events.poll()).await {
            Ok(Err(e)) => return Some(e),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
    None
}
