//! Gateway helpers: attach, publishing for an attached device, the errors topic.

use tether_device::{Device, PublishError, QoS};

use crate::common;

#[tokio::test]
async fn attach_publish_for_and_errors() {
    let key = common::key();
    let (server, clock) = common::server_with(&key).await;
    let child = common::key();
    server.register(
        "projects/my-project/locations/us-central1/registries/reg-1/devices/sensor-1",
        child.public_key().clone(),
    );
    let mut opts = common::options(&key, server.addr().port(), clock);
    opts.gateway = true;
    let mut gw = Device::connect(opts).await.expect("gateway connects");
    let mut errors = gw.take_errors().unwrap();
    let mut commands = gw.take_commands().unwrap();

    gw.attach("sensor-1", None)
        .await
        .expect("attached (PUBACK)");
    gw.publish_event_for("sensor-1", Some("t"), "21.5", QoS::AtLeastOnce)
        .await
        .unwrap();
    gw.set_state_for("sensor-1", "ok").await.unwrap();
    let topics: Vec<String> = server.received().into_iter().map(|r| r.topic).collect();
    assert!(topics.contains(&"/devices/sensor-1/attach".to_string()));
    assert!(topics.contains(&"/devices/sensor-1/events/t".to_string()));
    assert!(topics.contains(&"/devices/sensor-1/state".to_string()));

    // The attached device's commands arrive on the gateway's connection.
    server.send_command("sensor-1", Some("blink"), b"3");
    let cmd = commands.recv().await.unwrap();
    assert_eq!(
        (cmd.device_id.as_str(), cmd.subfolder.as_deref()),
        ("sensor-1", Some("blink"))
    );

    let err = gw
        .attach("ghost-7", None)
        .await
        .expect_err("unknown device");
    let PublishError::Attach(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.error_type, "GATEWAY_ATTACHMENT_ERROR");
    let seen = errors.recv().await.unwrap();
    assert_eq!(seen.device_id, "ghost-7");

    gw.detach("sensor-1").await.expect("detached");
    gw.disconnect().await;
}
