//! Token refresh before expiry against a server that cuts connections at `exp`.

use std::time::Duration;

use tether_device::{ConnectError, Device, QoS, Status};
use tether_mqtt::ConnectReturnCode;
use tether_testkit::Ended;

use crate::common;

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

#[tokio::test(start_paused = true)]
async fn a_refused_refresh_is_reported_while_the_old_connection_lives_on() {
    let key = common::key();
    let (server, clock) = common::server_with(&key).await;
    let device = Device::connect(common::options(&key, server.addr().port(), clock))
        .await
        .expect("connects");
    let first_exp = match &*device.status().borrow() {
        Status::Connected {
            token_expires,
            refresh_error,
            ..
        } => {
            assert!(refresh_error.is_none());
            *token_expires
        }
        other => panic!("not connected: {other:?}"),
    };
    // The operator removes the device's key: the planned refresh (30 s before exp) is
    // refused, but the connection made with the old token still works until exp.
    server.remove_keys(&common::path().client_id());
    let status = common::wait_for(&device, |s| {
        matches!(
            s,
            Status::Connected {
                refresh_error: Some(_),
                ..
            }
        )
    })
    .await;
    let Status::Connected {
        token_expires,
        refresh_error: Some(error),
        ..
    } = status
    else {
        panic!("not a failed refresh: {status:?}");
    };
    assert_eq!(token_expires, first_exp, "still the first connection");
    assert!(
        matches!(
            &*error,
            ConnectError::Refused {
                code: ConnectReturnCode::NotAuthorized,
                ..
            }
        ),
        "{error}"
    );
    device
        .publish_event(None, "still connected", QoS::AtLeastOnce)
        .await
        .expect("the old connection still carries messages");

    // At exp the server cuts; reconnecting is refused the same way, now as a backoff.
    let status = common::wait_for(&device, |s| matches!(s, Status::Backoff { .. })).await;
    let Status::Backoff { last_error, .. } = status else {
        unreachable!()
    };
    assert!(
        matches!(
            &*last_error,
            ConnectError::Refused {
                code: ConnectReturnCode::NotAuthorized,
                ..
            }
        ),
        "{last_error}"
    );
    assert_eq!(server.expiry_cuts(), 1);
    device.disconnect().await;
}
