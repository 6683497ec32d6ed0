//! Token refresh before expiry against a server that cuts connections at `exp`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use tether_device::fake_server::Ended;
use tether_device::{Device, QoS, Status};

#[tokio::test(start_paused = true)]
async fn reconnects_with_a_fresh_token_before_exp_so_the_server_never_cuts() {
    let key = common::key();
    let (server, clock) = common::server_with(&key).await;
    // Tokens live 2 min; the device reconnects 30 s before exp.
    let device = Device::connect(common::options(&key, server.addr().port(), clock))
        .await
        .expect("connects");
    server.set_config("dev-1", b"v1");

    // 7 simulated minutes, publishing every 10 s: every QoS 1 message is acknowledged.
    for i in 0..42 {
        device
            .publish_event(Some("ticks"), format!("{i}"), QoS::AtLeastOnce)
            .await
            .expect("acknowledged");
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    assert!(matches!(
        *device.status().borrow(),
        Status::Connected { .. }
    ));

    let conns = server.connections();
    assert!(conns.len() >= 4, "refreshed every 90 s: {conns:#?}");
    assert_eq!(
        server.expiry_cuts(),
        0,
        "the server never had to cut: {conns:#?}"
    );
    for pair in conns.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        assert!(
            new.opened_at + 25 <= u64::try_from(old.token_exp).unwrap(),
            "new connection made a margin before the old token's exp: {old:?} {new:?}"
        );
        assert!(new.token_exp > old.token_exp, "a fresh token each time");
        assert_eq!(
            old.ended,
            Some(Ended::Kicked),
            "taken over by the new connection"
        );
    }
    let events = server
        .received()
        .into_iter()
        .filter(|r| r.topic == "/devices/dev-1/events/ticks")
        .count();
    assert!(events >= 42, "no message lost across refreshes ({events})");
    assert!(server.config_acks() >= 1, "config acknowledged (QoS 1)");
    assert_eq!(
        device.config().borrow().as_ref().map(|c| c.payload.clone()),
        Some(b"v1".to_vec())
    );
    device.disconnect().await;
}
