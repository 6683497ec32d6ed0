//! Gateways over MQTT (spec §1.4, §1.7): attach under each auth method with good and
//! bad device tokens (errors-topic messages checked), telemetry, state, config and
//! commands for attached devices through the gateway's connection, detach, and
//! refusals for devices that are not attached or not gateways.

mod mqtt_support;

use std::time::Duration;

use mqtt_support::*;
use rumqttc::{AsyncClient, EventLoop, Packet, QoS};
use serde_json::Value;
use tether_registry::Store as _;
use tether_registry::model::{GatewayAuthMethod, GatewayConfig, GatewayType, Timestamp};
use tether_registry::names::DeviceRef;
use tether_server::bridge::hub::HubError;

/// A gateway's MQTT client.
struct GwClient {
    client: AsyncClient,
    events: EventLoop,
    id: String,
}

/// What answered a QoS 1 publish: its PUBACK, or a message on the errors topic.
#[derive(Debug)]
enum Answer {
    Acked,
    Error(Value),
}

impl GwClient {
    async fn connect(gw: &Gateway, dev: &TestDevice) -> Self {
        let (client, mut events) =
            AsyncClient::new(rumqttc_options(gw, &dev.client_id(), Some(&dev.jwt())), 16);
        connack(&mut events).await.expect("gateway accepted");
        let mut c = Self {
            client,
            events,
            id: dev.id.clone(),
        };
        let errors = format!("/devices/{}/errors", c.id);
        c.client
            .subscribe(errors, QoS::AtMostOnce)
            .await
            .expect("subscribe");
        until_incoming(&mut c.events, |p| {
            matches!(p, Packet::SubAck(_)).then_some(())
        })
        .await;
        c
    }

    /// Publishes at QoS 1 and waits for the PUBACK or an errors-topic message.
    async fn publish(&mut self, topic: &str, payload: Vec<u8>) -> Answer {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish");
        let errors = format!("/devices/{}/errors", self.id);
        until_incoming(&mut self.events, |p| match p {
            Packet::PubAck(_) => Some(Answer::Acked),
            Packet::Publish(m) if m.topic == errors => Some(Answer::Error(
                serde_json::from_slice(&m.payload).expect("errors payload is JSON"),
            )),
            _ => None,
        })
        .await
    }

    async fn attach(&mut self, device: &str, token: Option<&str>) -> Answer {
        let payload = match token {
            Some(t) => serde_json::json!({ "authorization": t }).to_string(),
            None => "{}".to_owned(),
        };
        self.publish(&format!("/devices/{device}/attach"), payload.into_bytes())
            .await
    }

    async fn subscribe(&mut self, filter: &str) -> rumqttc::SubscribeReasonCode {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        until_incoming(&mut self.events, |p| match p {
            Packet::SubAck(ack) => ack.return_codes.first().copied(),
            _ => None,
        })
        .await
    }

    /// The next message on `topic`.
    async fn message_on(&mut self, topic: &str) -> Vec<u8> {
        until_incoming(&mut self.events, |p| match p {
            Packet::Publish(m) if m.topic == topic => Some(m.payload.to_vec()),
            _ => None,
        })
        .await
    }
}

fn acked(answer: &Answer) -> bool {
    matches!(answer, Answer::Acked)
}

fn error_of(answer: Answer) -> Value {
    match answer {
        Answer::Error(v) => v,
        Answer::Acked => panic!("expected an errors-topic message, got a PUBACK"),
    }
}

async fn gateway_device(gw: &Gateway, id: &str, method: GatewayAuthMethod) -> TestDevice {
    gw.device_with(id, |d| {
        d.gateway_config = GatewayConfig {
            gateway_type: GatewayType::Gateway,
            gateway_auth_method: method,
            ..GatewayConfig::default()
        };
    })
    .await
    .expect("gateway created")
}

async fn bind(gw: &Gateway, gateway: &str, device: &str) {
    gw.store
        .bind(
            &registry_path(),
            &DeviceRef::Id(gateway.into()),
            &DeviceRef::Id(device.into()),
        )
        .await
        .expect("bound");
}

/// Attached devices of one gateway: events, state, config and commands on their own
/// topics through the gateway's connection, then detach.
async fn exercise_attached(gw: &Gateway, c: &mut GwClient, dev: &TestDevice) {
    // Telemetry is routed as the device's own, with its attributes.
    let topic = format!("/devices/{}/events/alerts", dev.id);
    assert!(acked(&c.publish(&topic, b"smoke".to_vec()).await));
    let records = gw.log.read(ALERTS_TOPIC, 0, 1000).await.expect("log");
    let record = records
        .iter()
        .find(|r| r.message.attributes.get("deviceId") == Some(&dev.id))
        .expect("the event is in the log under the attached device's id");
    assert_eq!(record.message.data, b"smoke");
    assert_eq!(record.message.attributes["subFolder"], "alerts");
    assert_eq!(
        record.message.attributes["deviceNumId"],
        dev.num_id.to_string()
    );

    // State is stored on the attached device.
    let topic = format!("/devices/{}/state", dev.id);
    assert!(acked(&c.publish(&topic, b"ok".to_vec()).await));
    let states = gw
        .store
        .list_states(&registry_path(), &DeviceRef::Id(dev.id.clone()), 10)
        .await
        .expect("states");
    assert_eq!(
        states.first().map(|s| s.binary_data.as_slice()),
        Some(&b"ok"[..])
    );

    // Config: the latest on subscribe, then updates through the hub.
    let config_topic = format!("/devices/{}/config", dev.id);
    assert_eq!(
        c.subscribe(&config_topic).await,
        rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    assert_eq!(c.message_on(&config_topic).await, b"");
    let config = gw
        .store
        .modify_config(
            &registry_path(),
            &DeviceRef::Id(dev.id.clone()),
            0,
            b"v2",
            Timestamp::from_secs(now_secs()),
        )
        .await
        .expect("config stored");
    gw.handle()
        .hub()
        .config_updated(&dev.address(), &config)
        .await;
    assert_eq!(c.message_on(&config_topic).await, b"v2");
    // The gateway's PUBACK acknowledges the attached device's config.
    let mut acked_at = None;
    for _ in 0..100 {
        acked_at = gw.get_device(&dev.id).await.config.device_ack_time;
        if acked_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(acked_at.is_some(), "deviceAckTime of {} never set", dev.id);

    // Commands reach the attached device through the gateway.
    let hub = gw.handle().hub();
    assert_eq!(
        hub.send_command(&dev.address(), &dev.id, "", b"x".to_vec())
            .await,
        Err(HubError::NotSubscribed(dev.id.clone())),
        "not subscribed to commands yet"
    );
    let commands = format!("/devices/{}/commands/#", dev.id);
    assert!(matches!(
        c.subscribe(&commands).await,
        rumqttc::SubscribeReasonCode::Success(_)
    ));
    let sent = tokio::spawn({
        let hub = hub.clone();
        let address = dev.address();
        let id = dev.id.clone();
        async move {
            hub.send_command(&address, &id, "reboot", b"now".to_vec())
                .await
        }
    });
    let command_topic = format!("/devices/{}/commands/reboot", dev.id);
    assert_eq!(c.message_on(&command_topic).await, b"now");
    assert_eq!(sent.await.expect("joined"), Ok(()));

    // lastAccessedGatewayId is recorded (batched).
    let mut seen = String::new();
    for _ in 0..100 {
        seen = gw
            .get_device(&dev.id)
            .await
            .gateway_config
            .last_accessed_gateway_id;
        if seen == c.id {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, c.id);

    // Detach: acknowledged; afterwards the device is not reachable.
    let detach = format!("/devices/{}/detach", dev.id);
    assert!(acked(&c.publish(&detach, b"{}".to_vec()).await));
    let topic = format!("/devices/{}/events", dev.id);
    let error = error_of(c.publish(&topic, b"late".to_vec()).await);
    assert_eq!(error["error_type"], "GATEWAY_DEVICE_NOT_FOUND");
    assert_eq!(error["device_id"], dev.id.as_str());
    assert_eq!(error["mqtt_message_info"]["message_type"], "PUBLISH");
    assert_eq!(error["mqtt_message_info"]["topic"], topic.as_str());
    assert!(
        hub.send_command(&dev.address(), &dev.id, "", b"x".to_vec())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn three_bound_devices_under_each_auth_method() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let methods = [
        GatewayAuthMethod::AssociationOnly,
        GatewayAuthMethod::DeviceAuthTokenOnly,
        GatewayAuthMethod::AssociationAndDeviceAuthToken,
    ];
    for (n, method) in methods.into_iter().enumerate() {
        let gw_id = format!("gw-{n}");
        let gateway = gateway_device(&gw, &gw_id, method).await;
        let mut devices = Vec::new();
        for i in 0..3 {
            let dev = gw.device(&format!("dev-{n}-{i}")).await?;
            bind(&gw, &gw_id, &dev.id).await;
            devices.push(dev);
        }
        let stranger = gw.device(&format!("stranger-{n}")).await?;
        let mut c = GwClient::connect(&gw, &gateway).await;
        let needs_token = method != GatewayAuthMethod::AssociationOnly;

        for dev in &devices {
            let token = needs_token.then(|| dev.jwt());
            let answer = c.attach(&dev.id, token.as_deref()).await;
            assert!(acked(&answer), "{method:?}: attach {} → {answer:?}", dev.id);
        }

        if needs_token {
            // A token signed by another key: refused, reported, and recorded.
            let bad = stranger.jwt();
            let dev = &devices[0];
            let error = error_of(c.attach(&dev.id, Some(&bad)).await);
            assert_eq!(
                error["error_type"], "GATEWAY_ATTACHMENT_ERROR",
                "{method:?}"
            );
            assert_eq!(error["device_id"], dev.id.as_str());
            assert_eq!(error["mqtt_message_info"]["message_type"], "PUBLISH");
            let description = error["description"].as_str().unwrap_or_default();
            assert!(!description.is_empty());
            let status = gw.wait_error(&dev.id, |s| s.code == 16).await;
            assert!(status.message.starts_with("mqtt: SERVER: "), "{status:?}");
            // No token at all.
            let error = error_of(c.attach(&dev.id, None).await);
            assert_eq!(error["error_type"], "GATEWAY_ATTACHMENT_ERROR");
            assert!(
                error["description"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("requires the device's own JWT")
            );
        }
        if method == GatewayAuthMethod::DeviceAuthTokenOnly {
            // No binding needed: the stranger attaches with its own token.
            assert!(acked(&c.attach(&stranger.id, Some(&stranger.jwt())).await));
        } else {
            let token = needs_token.then(|| stranger.jwt());
            let error = error_of(c.attach(&stranger.id, token.as_deref()).await);
            assert_eq!(error["error_type"], "GATEWAY_ATTACHMENT_ERROR");
            assert!(
                error["description"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("not bound"),
                "{error}"
            );
            // A device that is not attached cannot publish through the gateway.
            let topic = format!("/devices/{}/state", stranger.id);
            let error = error_of(c.publish(&topic, b"x".to_vec()).await);
            assert_eq!(error["error_type"], "GATEWAY_DEVICE_NOT_FOUND");
            assert!(
                gw.store
                    .list_states(&registry_path(), &DeviceRef::Id(stranger.id.clone()), 10)
                    .await?
                    .is_empty()
            );
        }

        exercise_attached(&gw, &mut c, &devices[0]).await;
        // The others are still attached and reachable.
        let topic = format!("/devices/{}/events", devices[1].id);
        assert!(acked(&c.publish(&topic, b"still".to_vec()).await));
        let _ = c.client.disconnect().await;
    }
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unknown_device_and_unspecified_auth_method_are_refused() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let open = gateway_device(&gw, "gw-open", GatewayAuthMethod::AssociationOnly).await;
    let closed = gateway_device(&gw, "gw-closed", GatewayAuthMethod::Unspecified).await;
    let dev = gw.device("dev-1").await?;
    bind(&gw, "gw-closed", &dev.id).await;

    let mut c = GwClient::connect(&gw, &open).await;
    let error = error_of(c.attach("nobody", None).await);
    assert_eq!(error["error_type"], "GATEWAY_ATTACHMENT_ERROR");
    assert!(
        error["description"]
            .as_str()
            .unwrap_or_default()
            .contains("does not exist")
    );
    // Subscribing for a device that is not attached: SUBACK 0x80 and an error.
    c.client
        .subscribe("/devices/dev-1/config", QoS::AtLeastOnce)
        .await?;
    let (mut code, mut error) = (None, None);
    until_incoming(&mut c.events, |p| {
        match p {
            Packet::SubAck(ack) => code = ack.return_codes.first().copied(),
            Packet::Publish(m) if m.topic == "/devices/gw-open/errors" => {
                error = serde_json::from_slice::<Value>(&m.payload).ok();
            }
            _ => {}
        }
        (code.is_some() && error.is_some()).then_some(())
    })
    .await;
    assert_eq!(code, Some(rumqttc::SubscribeReasonCode::Failure));
    let error = error.unwrap_or_default();
    assert_eq!(error["error_type"], "GATEWAY_DEVICE_NOT_FOUND");
    assert_eq!(error["mqtt_message_info"]["message_type"], "SUBSCRIBE");

    let mut c = GwClient::connect(&gw, &closed).await;
    let error = error_of(c.attach(&dev.id, None).await);
    assert!(
        error["description"]
            .as_str()
            .unwrap_or_default()
            .contains("gatewayAuthMethod is unspecified")
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_non_gateway_publishing_to_attach_is_disconnected() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("plain").await?;
    let other = gw.device("other").await?;
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 8);
    connack(&mut events).await.expect("accepted");
    client
        .publish(
            format!("/devices/{}/attach", other.id),
            QoS::AtLeastOnce,
            false,
            b"{}".to_vec(),
        )
        .await?;
    until_closed(&mut events).await;
    let status = gw
        .wait_error("plain", |s| s.message.contains("not a gateway"))
        .await;
    assert_eq!(status.code, 7);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn attached_devices_are_detached_when_the_gateway_disconnects() -> TestResult {
    let gw = Gateway::start(|o| o.limits.attached_per_gateway = 1).await?;
    let gateway = gateway_device(&gw, "gw-main", GatewayAuthMethod::AssociationOnly).await;
    let a = gw.device("dev-a").await?;
    let b = gw.device("dev-b").await?;
    bind(&gw, "gw-main", &a.id).await;
    bind(&gw, "gw-main", &b.id).await;
    let mut c = GwClient::connect(&gw, &gateway).await;
    assert!(acked(&c.attach(&a.id, None).await));
    // The attached-device limit.
    let error = error_of(c.attach(&b.id, None).await);
    assert!(
        error["description"]
            .as_str()
            .unwrap_or_default()
            .contains("already has 1 devices attached")
    );
    assert!(matches!(
        c.subscribe("/devices/dev-a/commands/#").await,
        rumqttc::SubscribeReasonCode::Success(_)
    ));
    let hub = gw.handle().hub();
    assert_eq!(gw.handle().connected_devices(), 2, "the gateway and dev-a");
    c.client.disconnect().await?;
    let _ = until_closed(&mut c.events).await;
    gw.wait_no_connections().await;
    assert_eq!(
        hub.send_command(&a.address(), &a.id, "", b"x".to_vec())
            .await,
        Err(HubError::NotConnected)
    );
    assert_eq!(gw.handle().connected_devices(), 0);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_blocked_or_unbound_device_is_detached_with_an_error() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let gateway = gateway_device(&gw, "gw-main", GatewayAuthMethod::AssociationOnly).await;
    let dev = gw.device("dev-1").await?;
    bind(&gw, "gw-main", &dev.id).await;
    let mut c = GwClient::connect(&gw, &gateway).await;
    assert!(acked(&c.attach(&dev.id, None).await));
    gw.store
        .unbind(
            &registry_path(),
            &DeviceRef::Id("gw-main".into()),
            &DeviceRef::Id(dev.id.clone()),
        )
        .await?;
    gw.handle().hub().device_changed(&dev.address()).await;
    let error: Value = serde_json::from_slice(&c.message_on("/devices/gw-main/errors").await)?;
    assert_eq!(error["error_type"], "GATEWAY_DETACHMENT_DEVICE_ERROR");
    assert_eq!(error["device_id"], "dev-1");
    gw.shutdown().await;
    Ok(())
}
