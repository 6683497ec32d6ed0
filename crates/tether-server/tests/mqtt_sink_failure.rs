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
use tether_route::{Receipt, Sink, SinkError};

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
    let status = refused_event(&gw, &client, &mut events, Duration::from_secs(5)).await?;
    assert!(
        status.message.starts_with("mqtt: SERVER: ")
            && status.message.contains("event message")
            && status.message.contains("reconnect and send it again"),
        "{}",
        status.message
    );

    // The sink recovers: the device reconnects, sends again and is acknowledged.
    failing.store(false, Ordering::SeqCst);
    resend_is_stored(gw, &dev).await
}

/// The embedded log behind a switch that queues batches and never settles them (a
/// writer stuck on a dead disk).
#[derive(Debug)]
struct Stalling {
    log: Arc<EmbeddedLog>,
    stalled: Arc<AtomicBool>,
    held: std::sync::Mutex<Vec<tokio::sync::oneshot::Sender<Result<(), SinkError>>>>,
}

#[async_trait]
impl Sink for Stalling {
    async fn publish(&self, batch: Vec<Message>) -> Result<(), SinkError> {
        self.log.publish(batch).await
    }

    fn submit(&self, batch: Vec<Message>) -> Result<Receipt, Vec<Message>> {
        if !self.stalled.load(Ordering::SeqCst) {
            return Sink::submit(&*self.log, batch);
        }
        let (answer, receipt) = Receipt::channel(batch.len());
        self.held.lock().expect("not poisoned").push(answer);
        Ok(receipt)
    }

    fn name(&self) -> &str {
        "stalling"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_append_that_never_settles_closes_the_connection_at_the_sink_timeout() -> TestResult
{
    let stalled = Arc::new(AtomicBool::new(true));
    let switch = Arc::clone(&stalled);
    let gw = Gateway::start_with_sink(
        |options| options.sink_timeout = Duration::from_secs(1),
        move |log| {
            Arc::new(Stalling {
                log,
                stalled: switch,
                held: std::sync::Mutex::default(),
            })
        },
    )
    .await?;
    let dev = gw.device("dev-1").await?;
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 8);
    connack(&mut events).await.expect("accepted");
    let status = refused_event(&gw, &client, &mut events, Duration::from_secs(10)).await?;
    assert!(
        status
            .message
            .contains("the telemetry sink did not accept it within 1 s"),
        "{}",
        status.message
    );

    // The writer is back: the resend is queued, stored and acknowledged.
    stalled.store(false, Ordering::SeqCst);
    resend_is_stored(gw, &dev).await
}

/// Publishes an event the sink will not store: no PUBACK, the connection closes, and
/// the device's last error (UNAVAILABLE) says why.
async fn refused_event(
    gw: &Gateway,
    client: &AsyncClient,
    events: &mut rumqttc::EventLoop,
    within: Duration,
) -> Result<tether_registry::model::Status, Box<dyn std::error::Error + Send + Sync>> {
    client
        .publish(
            "/devices/dev-1/events",
            QoS::AtLeastOnce,
            false,
            b"not stored".to_vec(),
        )
        .await?;
    closed_without_puback(events, within).await;
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("could not be stored"))
        .await;
    assert_eq!(status.code, 14, "UNAVAILABLE: {status:?}");
    Ok(status)
}

/// Polls until the connection closes, asserting that no PUBACK came first.
async fn closed_without_puback(events: &mut rumqttc::EventLoop, within: Duration) {
    let mut acked = Vec::new();
    let closed = tokio::time::timeout(within, async {
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
    drop(closed);
    assert!(
        acked.is_empty(),
        "no PUBACK for a message not stored: {acked:?}"
    );
}

/// The device reconnects and sends again: acknowledged, and the one record stored.
async fn resend_is_stored(gw: Gateway, dev: &TestDevice) -> TestResult {
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
