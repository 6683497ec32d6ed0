//! Reconnect delays with full jitter, on paused time with a fixed random sequence.

use std::sync::Arc;
use std::time::Duration;

use tether_device::{ConnectError, Device, FixedJitter, Status};
use tether_testkit::{FakeServer, FakeServerOptions};
use tokio::time::Instant;

use crate::common;

#[tokio::test(start_paused = true)]
async fn waits_grow_with_full_jitter_up_to_the_cap_then_reset() {
    let key = common::key();
    let (server, clock) = common::server_with(&key).await;
    let addr = server.addr();
    let mut opts = common::options(&key, addr.port(), clock.clone());
    opts.jitter = Arc::new(FixedJitter::new(vec![0.5]));
    opts.refresh =
        tether_device::RefreshPlan::new(Duration::from_secs(24 * 3600), Duration::from_secs(60))
            .unwrap();
    let device = Device::connect(opts).await.expect("connects");
    tokio::time::sleep(Duration::from_secs(60)).await; // a stable connection
    server.stop();

    // Record each backoff and when it started.
    let mut rx = device.status();
    let mut seen: Vec<(u32, Duration, Instant)> = Vec::new();
    while seen.len() < 13 {
        rx.changed().await.unwrap();
        let status = rx.borrow_and_update().clone();
        if let Status::Backoff {
            attempt,
            wait,
            last_error,
        } = status
        {
            assert!(
                matches!(*last_error, ConnectError::Tcp { .. }),
                "{last_error:?}"
            );
            seen.push((attempt, wait, Instant::now()));
        }
    }
    let waits: Vec<f64> = seen.iter().map(|s| s.1.as_secs_f64()).collect();
    // Half of min(900 s, 1 s · 2^n).
    assert_eq!(
        waits,
        [
            0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 450.0, 450.0, 450.0
        ]
    );
    let attempts: Vec<u32> = seen.iter().map(|s| s.0).collect();
    assert_eq!(attempts, (1..=13).collect::<Vec<_>>());
    for pair in seen.windows(2) {
        let gap = pair[1].2 - pair[0].2;
        assert!(
            gap >= pair[0].1 && gap < pair[0].1 + Duration::from_millis(50),
            "the next round starts when the wait is over: {gap:?} after {:?}",
            pair[0].1
        );
    }

    // The server returns: the device reconnects after the current wait.
    let back = FakeServer::start_on(
        addr,
        FakeServerOptions {
            clock,
            ..FakeServerOptions::default()
        },
    )
    .await
    .unwrap();
    back.register(&common::path().client_id(), key.public_key().clone());
    common::wait_for(&device, |s| matches!(s, Status::Connected { .. })).await;
    assert_eq!(back.connections().len(), 1);
    device.disconnect().await;
}
