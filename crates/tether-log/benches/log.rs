//! Embedded-log publish throughput: 1, 16 and 256 concurrent publishers, each
//! awaiting durability (fsync) for every single-message publish, 200-byte
//! payloads with IoT Core's six attributes. Group commit is what lets
//! throughput grow with concurrency.
//!
//! Run with: cargo bench -p tether-log --bench log

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tether_log::{DeviceCoordinates, EmbeddedLog, LogConfig, Message};

const TOPIC: &str = "projects/bench/topics/telemetry";

fn message(i: usize) -> Message {
    let device = DeviceCoordinates {
        project_id: "bench".into(),
        location: "europe-west1".into(),
        registry_id: "fleet".into(),
        device_id: format!("dev-{}", i % 1000),
        device_num_id: 2_800_000_000_000 + (i % 1000) as u64,
    };
    Message::event(TOPIC, &device, "", vec![0x5a; 200], i as i64)
}

/// `publishers` tasks share `total` single-message publishes.
async fn publish(log: &Arc<EmbeddedLog>, publishers: usize, total: usize) {
    let each = total / publishers;
    let tasks: Vec<_> = (0..publishers)
        .map(|p| {
            let log = Arc::clone(log);
            tokio::spawn(async move {
                for i in 0..each {
                    log.append(vec![message(p * each + i)])
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("publisher");
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        rt.block_on(EmbeddedLog::open(LogConfig::new(dir.path())))
            .expect("open log"),
    );
    let mut group = c.benchmark_group("embedded_log_publish");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (publishers, total) in [(1, 256), (16, 2048), (256, 8192)] {
        group.throughput(Throughput::Elements(total as u64));
        group.bench_function(format!("{publishers}_publishers"), |b| {
            b.iter(|| rt.block_on(publish(&log, publishers, total)));
        });
    }
    group.finish();
    eprintln!(
        "fsyncs during the whole run: {} (one per group commit)",
        log.sync_count()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
