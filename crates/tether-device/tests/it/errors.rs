//! The reason a connection fails reaches the application typed.

use std::sync::Arc;

use tether_device::{ConnectError, Device, Endpoint, SystemClock, TlsCause};
use tether_mqtt::ConnectReturnCode;
use tether_testkit::{FakeServer, FakeServerOptions, TestPki};

use crate::common;

fn code(e: &ConnectError) -> Option<ConnectReturnCode> {
    match e {
        ConnectError::Refused { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn refusals_keep_their_connack_code() {
    let key = common::key();
    let (server, clock) = common::server_with(&key).await;

    let wrong = common::key();
    let err = Device::connect(common::options(&wrong, server.addr().port(), clock.clone()))
        .await
        .expect_err("wrong key");
    assert_eq!(code(&err), Some(ConnectReturnCode::NotAuthorized), "{err}");
    let why = server.last_error(&common::path().client_id()).unwrap();
    assert!(why.contains("signature"), "{why}");

    let mut opts = common::options(&key, server.addr().port(), clock);
    opts.device.device = "dev-unknown".into();
    let err = Device::connect(opts).await.expect_err("unknown device");
    assert_eq!(
        code(&err),
        Some(ConnectReturnCode::IdentifierRejected),
        "{err}"
    );
    assert!(!err.is_endpoint_failure());
}

#[tokio::test]
async fn network_failures_are_typed_and_all_endpoints_are_reported() {
    let key = common::key();
    let mut opts = common::options(&key, common::dead_port(), Arc::new(SystemClock));
    let err = Device::connect(opts.clone()).await.expect_err("refused");
    assert!(matches!(err, ConnectError::Tcp { .. }), "{err:?}");

    opts.endpoints
        .push(Endpoint::new("no-such-host.invalid", 8883));
    let err = Device::connect(opts).await.expect_err("both dead");
    let ConnectError::AllEndpoints(list) = err else {
        panic!("{err:?}")
    };
    assert!(matches!(list[0].1, ConnectError::Tcp { .. }));
    assert!(
        matches!(list[1].1, ConnectError::Dns { .. }),
        "{:?}",
        list[1]
    );
}

async fn tls_server(pki: &TestPki, key: &tether_keys::PrivateKey) -> FakeServer {
    let server = FakeServer::start(FakeServerOptions {
        tls: Some(pki.server.clone()),
        ..FakeServerOptions::default()
    })
    .await
    .unwrap();
    server.register(&common::path().client_id(), key.public_key().clone());
    server
}

#[tokio::test]
async fn tls_failures_are_classified() {
    let key = common::key();
    let pki = TestPki::new("Tether test CA", &["localhost"], common::now()).unwrap();
    let server = tls_server(&pki, &key).await;
    let port = server.addr().port();
    let base = common::options(&key, port, Arc::new(SystemClock));

    let mut ok = base.clone().ca_pem(pki.ca_pem.as_bytes()).unwrap();
    ok.endpoints = vec![Endpoint::new("localhost", port)];
    Device::connect(ok)
        .await
        .expect("TLS with the right CA and name")
        .disconnect()
        .await;

    let other = TestPki::new("Some other CA", &["localhost"], common::now()).unwrap();
    let mut wrong_ca = base.clone().ca_pem(other.ca_pem.as_bytes()).unwrap();
    wrong_ca.endpoints = vec![Endpoint::new("localhost", port)];
    let err = Device::connect(wrong_ca).await.expect_err("wrong CA");
    assert!(
        matches!(
            err,
            ConnectError::Tls {
                cause: TlsCause::UnknownIssuer,
                ..
            }
        ),
        "{err:?}"
    );

    // The certificate names only "localhost".
    let wrong_name = base.ca_pem(pki.ca_pem.as_bytes()).unwrap();
    let err = Device::connect(wrong_name)
        .await
        .expect_err("wrong host name");
    assert!(
        matches!(
            err,
            ConnectError::Tls {
                cause: TlsCause::HostnameMismatch,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A server that accepts and hangs up before TLS (as `tether serve` does past its
/// per-address connect limit) is named as such, not as "not a TLS port".
#[tokio::test]
async fn a_server_that_hangs_up_before_tls_is_named() {
    let key = common::key();
    let pki = TestPki::new("Tether test CA", &["localhost"], common::now()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hang_up = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            drop(socket);
        }
    });
    let mut opts = common::options(&key, port, Arc::new(SystemClock))
        .ca_pem(pki.ca_pem.as_bytes())
        .unwrap();
    opts.endpoints = vec![Endpoint::new("localhost", port)];
    let err = Device::connect(opts).await.expect_err("hung up");
    hang_up.abort();
    assert!(
        matches!(
            err,
            ConnectError::Tls {
                cause: TlsCause::Closed,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("closed the connection"), "{text}");
    assert!(text.contains("--connect-rate-per-ip"), "{text}");
    // The endpoint's failure, not the device's: the SDK tries the next one and backs off.
    assert!(err.is_endpoint_failure(), "{err:?}");
}

/// A server that takes the TCP connection and never answers TLS is a timeout at the
/// TLS stage, and the error says what that usually means.
#[tokio::test]
async fn a_silent_server_is_a_tls_timeout_that_says_why() {
    let key = common::key();
    let pki = TestPki::new("Tether test CA", &["localhost"], common::now()).unwrap();
    // A backlog that nobody accepts from: the kernel completes the TCP handshake.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut opts = common::options(&key, port, Arc::new(SystemClock))
        .ca_pem(pki.ca_pem.as_bytes())
        .unwrap();
    opts.endpoints = vec![Endpoint::new("localhost", port)];
    opts.connect_timeout = std::time::Duration::from_millis(500);
    let err = Device::connect(opts).await.expect_err("no TLS answer");
    drop(silent);
    assert!(
        matches!(
            err,
            ConnectError::Timeout {
                stage: tether_device::Stage::Tls
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("did not answer the TLS handshake"), "{text}");
    assert!(text.contains("--max-connections"), "{text}");
}
