//! Two gateway nodes on one store, their hubs joined over NATS (`ClusterHub`): a command
//! and a config sent through node A reach a device connected to node B; a device
//! connected nowhere is NOT_CONNECTED at once; a device that reconnects to node A has
//! its older connection on node B closed.
//!
//! NATS comes from `TETHER_TEST_NATS_URL`; without it the test fails under
//! `TETHER_TEST_REQUIRE_ALL=1` and is skipped with a notice otherwise.

mod mqtt_support;

use std::sync::Arc;
use std::time::Duration;

use mqtt_support::*;
use rumqttc::{AsyncClient, Packet, QoS};
use tether_registry::Store as _;
use tether_registry::names::DeviceRef;
use tether_server::bridge::SystemClock;
use tether_server::bridge::hub::{DeviceHub, HubError};
use tether_server::cluster::{ClusterConfig, ClusterHub};
use tether_server::mqtt::MqttHandle;

fn nats_url() -> Option<String> {
    let url = tether_testkit::needs::env("TETHER_TEST_NATS_URL");
    tether_testkit::require("NATS JetStream (TETHER_TEST_NATS_URL)", url)
}

async fn hub(
    url: &str,
    prefix: &str,
    node: &str,
    handle: &MqttHandle,
    gw: &Gateway,
) -> Arc<ClusterHub> {
    ClusterHub::start(
        ClusterConfig {
            url: url.to_owned(),
            prefix: prefix.to_owned(),
            node: node.to_owned(),
        },
        handle.connections(),
        gw.store.clone(),
        Arc::new(SystemClock),
    )
    .await
    .expect("cluster hub on NATS")
}

#[tokio::test]
async fn commands_configs_and_takeovers_cross_nodes() -> TestResult {
    let Some(url) = nats_url() else {
        return Ok(());
    };
    let prefix = format!("tether-test-{}.hub", std::process::id());
    let gw = Gateway::start(|_| {}).await?;
    let node_b = gw.second_node().await?;
    let port_b = node_b.tls_addrs().first().ok_or("no TLS listener")?.port();
    let hub_a = hub(&url, &prefix, "a", gw.handle(), &gw).await;
    let _hub_b = hub(&url, &prefix, "b", &node_b, &gw).await;
    let dev = gw.device("dev-1").await?;
    let idle = gw.device("idle-1").await?;

    // Connected nowhere: no node answers, at once.
    let started = tokio::time::Instant::now();
    let nowhere = hub_a
        .send_command(&idle.address(), "idle-1", "", b"x".to_vec())
        .await;
    assert_eq!(nowhere, Err(HubError::NotConnected));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // The device on node B, subscribed to commands and config.
    let (client, mut events) = AsyncClient::new(
        rumqttc_options_on(&gw, port_b, &dev.client_id(), Some(&dev.jwt())),
        8,
    );
    connack(&mut events).await.expect("accepted by node B");
    client
        .subscribe("/devices/dev-1/commands/#", QoS::AtLeastOnce)
        .await?;
    client
        .subscribe("/devices/dev-1/config", QoS::AtLeastOnce)
        .await?;
    let poll = tokio::spawn(async move {
        let mut got = vec![];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(Packet::Publish(p)))) => {
                    got.push((p.topic.clone(), p.payload.to_vec()));
                    if got.iter().any(|(t, _)| t.ends_with("/commands"))
                        && got.iter().any(|(_, b)| b == b"fan=2")
                    {
                        return (got, events);
                    }
                }
                Ok(Ok(_)) => {}
                other => panic!("device connection ended: {other:?} after {got:?}"),
            }
        }
    });

    // Garbage on the cluster's subjects is refused or ignored, and changes nothing.
    let raw = async_nats::connect(&url).await?;
    raw.publish(format!("{prefix}.events"), "not json".into())
        .await?;
    raw.publish(
        format!("{prefix}.events"),
        r#"{"kind":"connected","registry":"nope","num_id":1,"at_ms":18446744073709551615,"node":"z"}"#.into(),
    )
    .await?;

    // A command through node A: retried while node B is still subscribing.
    let mut sent = Err(HubError::NotConnected);
    for _ in 0..100 {
        sent = hub_a
            .send_command(&dev.address(), "dev-1", "", b"reboot".to_vec())
            .await;
        if sent.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent, Ok(()), "command delivered across nodes");
    // The console's online state: node A finds the device on node B, and nowhere the
    // device that is not connected.
    assert_eq!(hub_a.is_connected(&dev.address()).await, Ok(true));
    assert_eq!(hub_a.is_connected(&idle.address()).await, Ok(false));
    let malformed = raw
        .request(
            format!("{prefix}.dev.{}.command", dev.address().num_id),
            "{".into(),
        )
        .await?;
    assert_eq!(
        std::str::from_utf8(&malformed.payload)?,
        r#"{"result":"unavailable","message":"a malformed command request between nodes"}"#
    );

    // A config stored through node A's API is pushed by node B.
    let config = gw
        .store
        .modify_config(
            &registry_path(),
            &DeviceRef::Id("dev-1".into()),
            0,
            b"fan=2",
            tether_registry::model::Timestamp::from_secs(now_secs()),
        )
        .await?;
    hub_a.config_updated(&dev.address(), &config).await;
    let (got, mut events) = poll.await?;
    assert!(
        got.contains(&("/devices/dev-1/commands".to_string(), b"reboot".to_vec())),
        "{got:?}"
    );

    // The device reconnects through node A: node B closes its older connection.
    let (_again, mut events_a) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 8);
    connack(&mut events_a).await.expect("accepted by node A");
    until_closed(&mut events).await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("another active connection"))
        .await;
    assert_eq!(status.code, 1);
    drop(client);
    node_b.shutdown(Duration::from_secs(5)).await;
    gw.shutdown().await;
    Ok(())
}
