//! Failover between endpoints, local address binding, and the way back.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tether_device::{Device, Endpoint, Status};
use tether_testkit::{FakeServer, FakeServerOptions};

use crate::common;

#[tokio::test(start_paused = true)]
async fn fails_over_to_the_live_endpoint_then_returns_to_the_preferred_at_a_refresh() {
    let key = common::key();
    let (live, clock) = common::server_with(&key).await;
    let dead = common::dead_port();
    let mut opts = common::options(&key, dead, clock.clone());
    opts.endpoints
        .push(Endpoint::new("127.0.0.1", live.addr().port()));
    opts.return_after = Duration::from_secs(60);

    let device = Device::connect(opts)
        .await
        .expect("connects through the fallback");
    match &*device.status().borrow() {
        Status::Connected { endpoint, .. } => assert_eq!(endpoint.port, live.addr().port()),
        other => panic!("not connected: {other:?}"),
    }
    assert_eq!(live.connections().len(), 1);

    // The preferred endpoint comes back; the device stays on the fallback (no flapping)
    // until its planned refresh (after 90 s), which is past `return_after`.
    let preferred = FakeServer::start_on(
        SocketAddr::from(([127, 0, 0, 1], dead)),
        FakeServerOptions {
            clock: clock.clone(),
            ..FakeServerOptions::default()
        },
    )
    .await
    .expect("preferred endpoint up again");
    preferred.register(&common::path().client_id(), key.public_key().clone());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        preferred.connections().len(),
        0,
        "no extra reconnect to fail back"
    );

    let status = common::wait_for(
        &device,
        |s| matches!(s, Status::Connected { endpoint, .. } if endpoint.port == dead),
    )
    .await;
    assert!(matches!(status, Status::Connected { .. }));
    assert_eq!(preferred.connections().len(), 1);
    assert_eq!(live.expiry_cuts(), 0);
    device.disconnect().await;
}

#[tokio::test]
async fn binds_the_chosen_local_address() {
    let key = common::key();
    let (server, clock) = common::server_with(&key).await;
    let mut opts = common::options(&key, server.addr().port(), clock);
    let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    opts.endpoints[0].bind = Some(local);
    let device = Device::connect(opts).await.expect("connects");
    assert_eq!(server.connections()[0].peer.ip(), local);
    device.disconnect().await;
}
