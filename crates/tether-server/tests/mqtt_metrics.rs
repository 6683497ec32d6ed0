//! The bridge's metrics, read through a recorder installed for this test binary:
//! refusals counted by reason, messages by kind, and the open-connection gauge back
//! at zero.

mod mqtt_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use mqtt_support::*;
use rumqttc::{AsyncClient, Packet, QoS};

#[derive(Debug, Default)]
struct Registry {
    values: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl Registry {
    fn slot(&self, key: &Key) -> Arc<AtomicU64> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(values.entry(name).or_default())
    }

    fn counter(&self, name: &str) -> u64 {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values.get(name).map_or(0, |v| v.load(Ordering::Acquire))
    }

    fn gauge(&self, name: &str) -> f64 {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values
            .get(name)
            .map_or(0.0, |v| f64::from_bits(v.load(Ordering::Acquire)))
    }
}

struct Shared(&'static Registry);

impl Recorder for Shared {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.0.slot(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.0.slot(key))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let registry = REGISTRY.get_or_init(Registry::default);
    let _ = metrics::set_global_recorder(Shared(registry));
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_messages_and_connections_are_counted() -> TestResult {
    let metrics = registry();
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let now = now_secs();
    let bad = dev.jwt_with("wrong", now, now + 600);
    let (_c, mut events) = AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&bad)), 4);
    assert!(connack(&mut events).await.is_err());
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 4);
    connack(&mut events).await.expect("accepted");
    // The refused connection counts until the server has closed its socket, which
    // may be just after the second CONNACK.
    let settle = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while metrics.gauge("tether_mqtt_connections{}") > 1.0 && tokio::time::Instant::now() < settle {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(metrics.gauge("tether_mqtt_connections{}"), 1.0);
    client
        .publish(
            "/devices/dev-1/events",
            QoS::AtLeastOnce,
            false,
            b"12345".to_vec(),
        )
        .await?;
    until_incoming(&mut events, |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;
    client.disconnect().await?;
    // rumqttc sends the DISCONNECT from its event loop.
    for _ in 0..50 {
        match tokio::time::timeout(std::time::Duration::from_millis(100), events.poll()).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    gw.wait_no_connections().await;

    assert_eq!(
        metrics.counter("tether_mqtt_refusals_total{reason=jwt_audience}"),
        1
    );
    assert_eq!(metrics.counter("tether_mqtt_connects_total{}"), 1);
    assert_eq!(metrics.counter("tether_mqtt_connect_attempts_total{}"), 2);
    assert_eq!(
        metrics.counter("tether_mqtt_messages_in_total{kind=event}"),
        1
    );
    assert_eq!(
        metrics.counter("tether_mqtt_payload_bytes_in_total{kind=event}"),
        5
    );
    assert_eq!(
        metrics.counter("tether_mqtt_disconnects_total{reason=client_disconnect}"),
        1
    );
    assert!(metrics.counter("tether_mqtt_bytes_in_total{}") > 0);
    assert!(metrics.counter("tether_mqtt_bytes_out_total{}") > 0);
    assert_eq!(metrics.gauge("tether_mqtt_connections{}"), 0.0);
    gw.shutdown().await;
    Ok(())
}
