//! An HTTP-only device's failures say what went wrong: the causes under reqwest's
//! "error sending request", the TLS fix, and a bound on a server that never answers.

use std::sync::Arc;
use std::time::Duration;

use tether_device::{HttpDevice, HttpError, SystemClock};
use tether_testkit::{FakeServer, FakeServerOptions, TestPki};

use crate::common;

#[tokio::test]
async fn a_wrong_ca_is_named_with_its_fix() {
    let key = common::key();
    let pki = TestPki::new("Tether test CA", &["localhost"], common::now()).unwrap();
    let server = FakeServer::start(FakeServerOptions {
        tls: Some(pki.server.clone()),
        ..FakeServerOptions::default()
    })
    .await
    .unwrap();
    let other = TestPki::new("Some other CA", &["localhost"], common::now()).unwrap();
    let opts = common::options(&key, server.addr().port(), Arc::new(SystemClock))
        .ca_pem(other.ca_pem.as_bytes())
        .unwrap();
    let base = format!("https://localhost:{}", server.addr().port());
    let device = HttpDevice::new(&base, &opts).unwrap();
    let err = device.publish_event("", b"x").await.expect_err("wrong CA");
    assert!(matches!(err, HttpError::Transport(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("UnknownIssuer"),
        "the cause under reqwest's: {text}"
    );
    assert!(text.contains("root CA"), "the fix: {text}");
}

#[tokio::test]
async fn a_server_that_never_answers_ends_at_the_request_timeout() {
    let key = common::key();
    // A backlog that nobody accepts from: the request is sent and never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut opts = common::options(&key, port, Arc::new(SystemClock));
    opts.request_timeout = Duration::from_millis(500);
    let device = HttpDevice::new(&format!("http://127.0.0.1:{port}"), &opts).unwrap();
    // Before the bound, this call waited forever: the test gives it 30 s.
    let outcome = tokio::time::timeout(Duration::from_secs(30), device.publish_event("", b"x"))
        .await
        .expect("the call ends by itself");
    let err = outcome.expect_err("no answer");
    drop(silent);
    let text = err.to_string();
    assert!(text.contains("request_timeout"), "{text}");
}
