//! QoS 1 durability: no PUBACK unless the sink accepted the message; the connection
//! stays up and later messages are acknowledged. State is stored and acknowledged
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
async fn no_puback_without_a_durable_append() -> TestResult {
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

    client
        .publish(
            "/devices/dev-1/events",
            QoS::AtLeastOnce,
            false,
            b"lost".to_vec(),
        )
        .await?;
    // State is stored and acknowledged although its notification fails.
    client
        .publish(
            "/devices/dev-1/state",
            QoS::AtLeastOnce,
            false,
            b"s".to_vec(),
        )
        .await?;
    let mut acked = Vec::new();
    let waited = tokio::time::timeout(Duration::from_millis(700), async {
        loop {
            if let Ok(rumqttc::Event::Incoming(Packet::PubAck(ack))) = events.poll().await {
                acked.push(ack.pkid);
            }
        }
    })
    .await;
    assert!(waited.is_err());
    assert_eq!(acked, vec![2], "only the state (pkid 2) is acknowledged");
    let states = gw
        .store
        .list_states(&registry_path(), &DeviceRef::Id("dev-1".into()), 0)
        .await?;
    assert_eq!(states.len(), 1);

    // The sink recovers: the connection is still up and the next event is acked.
    failing.store(false, Ordering::SeqCst);
    client
        .publish(
            "/devices/dev-1/events",
            QoS::AtLeastOnce,
            false,
            b"kept".to_vec(),
        )
        .await?;
    until_incoming(&mut events, |p| match p {
        Packet::PubAck(ack) if ack.pkid == 3 => Some(()),
        _ => None,
    })
    .await;
    let records = gw.wait_records(TELEMETRY_TOPIC, 1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].message.data, b"kept");
    gw.shutdown().await;
    Ok(())
}
