//! Bytes on disk per 100-byte event, format 1 against format 2, in one run:
//! the figures BENCHMARKS.md quotes. Run with
//! `cargo test -p tether-log --lib bytes_per_event -- --nocapture`.

use crate::{DeviceCoordinates, EmbeddedLog, LogConfig, Message};

use super::v1;

const TOPIC: &str = "projects/bench/topics/telemetry";

/// `n` telemetry events as the gateway stores them, shaped as in the log
/// bench (where format 1 took the 316 bytes issue 21 quotes): IoT Core's six
/// attributes, no subfolder, 100-byte payloads, 2,000 messages a second, from
/// `devices` devices taking turns (the worst order for the dictionary).
fn events(devices: u64, n: u64) -> Vec<Message> {
    (0..n)
        .map(|i| {
            let device = DeviceCoordinates {
                project_id: "bench".into(),
                location: "europe-west1".into(),
                registry_id: "fleet".into(),
                device_id: format!("dev-{}", i % devices),
                device_num_id: 2_800_000_000_000 + i % devices,
            };
            let time = 1_764_000_000_000_000 + i as i64 * 500;
            Message::event(TOPIC, &device, "", vec![0x5a; 100], time)
        })
        .collect()
}

fn log_files_size(root: &std::path::Path) -> u64 {
    let mut total = 0;
    for topic in std::fs::read_dir(root).expect("log dir").flatten() {
        if topic.path().is_dir() {
            for file in std::fs::read_dir(topic.path())
                .expect("topic dir")
                .flatten()
            {
                total += file.metadata().expect("metadata").len();
            }
        }
    }
    total
}

#[tokio::test]
async fn bytes_per_event_old_and_new() {
    const N: u64 = 20_000;
    for devices in [1, 200, 1_000, 10_000] {
        let messages = events(devices, N);
        let mut old = Vec::new();
        for (offset, m) in messages.iter().enumerate() {
            v1::encode(offset as u64, m, &mut old);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        // The bytes of the records: no zeros written ahead of them.
        let config = LogConfig {
            write_ahead_bytes: 0,
            ..LogConfig::new(dir.path())
        };
        let log = EmbeddedLog::open(config).await.expect("open");
        for chunk in messages.chunks(500) {
            log.append(chunk.to_vec()).await.expect("append");
        }
        let new = log_files_size(log.root());
        assert_eq!(new, log.usage().bytes);
        let back = log.read(TOPIC, N - 3, 3).await.expect("read");
        assert_eq!(back.last().map(|r| &r.message), messages.last());
        log.close().await;

        let (old, new) = (old.len() as f64 / N as f64, new as f64 / N as f64);
        eprintln!(
            "{devices:>6} devices taking turns: format 1 {old:.1} B/event, format 2 {new:.1} B/event \
             ({:.2}x the 100-byte payload, {:.2}x less than format 1)",
            new / 100.0,
            old / new
        );
        assert!(new <= 150.0, "{new} bytes per 100-byte event");
    }
}
