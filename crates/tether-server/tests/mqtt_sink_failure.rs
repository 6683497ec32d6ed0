//! QoS 1 durability: no PUBACK unless the sink accepted the message, and a message
//! that cannot be stored closes the connection (with the reason recorded) so the
//! device resends it rather than waiting forever. State is stored and acknowledged
//! even when its notification cannot be delivered (best effort, as IoT Core).

mod mqtt_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mqtt_support::*;
use rumqttc::{AsyncClient, Packet, QoS};
use tether_log::{EmbeddedLog, LogError, Message};
use tether_registry::Store as _;
use tether_registry::names::DeviceRef;
use tether_route::{Sink, SinkError};

/// The embedded log behind a switch that makes every publish fail.
#[derive(Debug)]
struct Switchable {
    log: Arc<EmbeddedLog>,
    failing: Arc<AtomicBool>,
}

#[async_trait]
impl Sink for Switchable {
    async fn publish(&self, batch: Vec<Message>) -> Result<(), SinkError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(SinkError::Log(LogError::WriterStopped));
        }
        self.log.publish(batch).await
    }

    fn name(&self) -> &str {
        "switchable"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_be_stored_closes_the_connection_and_is_sent_again() -> TestResult {
    let failing = Arc::new(AtomicBool::new(true));
    let switch = Arc::clone(&failing);
    let gw = Gateway::start_with_sink(
        |_| {},
        move |log| {
            Arc::new(Switchable {
                log,
                failing: switch,
            })
        },
    )
    .await?;
    let dev = gw.device("dev-1").await?;
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 8);
    connack(&mut events).await.expect("accepted");

    // State is stored and acknowledged although its notification fails (best effort,
    // as IoT Core).
    client
        .publish(
            "/devices/dev-1/state",
            QoS::AtLeastOnce,
            false,
            b"s".to_vec(),
        )
        .await?;
    until_incoming(&mut events, |p| match p {
        Packet::PubAck(ack) if ack.pkid == 1 => Some(()),
        _ => None,
    })
    .await;
    let states = gw
        .store
        .list_states(&registry_path(), &DeviceRef::Id("dev-1".into()), 0)
        .await?;
    assert_eq!(states.len(), 1);

    // An event the sink refuses gets no PUBACK, and the device is not left waiting
    // for one: the connection closes with the reason, so it reconnects and resends.
    client
        .publish(
            "/devices/dev-1/events",
            QoS::AtLeastOnce,
            false,
            b"lost".to_vec(),
        )
        .await?;
    let mut acked = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::PubAck(ack))) => acked.push(ack.pkid),
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    })
    .await
    .expect("the connection is closed, not left waiting");
    assert!(
        acked.is_empty(),
        "no PUBACK for a message not stored: {acked:?}"
    );
    drop(closed);
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("could not be stored"))
        .await;
    assert_eq!(status.code, 14, "UNAVAILABLE: {status:?}");
    assert!(
        status.message.starts_with("mqtt: SERVER: ")
            && status.message.contains("event message")
            && status.message.contains("reconnect and send it again"),
        "{}",
        status.message
    );

    // The sink recovers: the device reconnects, sends again and is acknowledged.
    failing.store(false, Ordering::SeqCst);
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 8);
    connack(&mut events).await.expect("accepted again");
    client
        .publish(
            "/devices/dev-1/events",
            QoS::AtLeastOnce,
            false,
            b"kept".to_vec(),
        )
        .await?;
    until_incoming(&mut events, |p| match p {
        Packet::PubAck(ack) if ack.pkid == 1 => Some(()),
        _ => None,
    })
    .await;
    let records = gw.wait_records(TELEMETRY_TOPIC, 1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].message.data, b"kept");
    gw.shutdown().await;
    Ok(())
}
