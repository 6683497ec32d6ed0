//! Helpers shared by the integration tests.

use std::sync::Arc;
use std::time::Duration;

use tether_device::{
    Clock, Device, DeviceOptions, DevicePath, Endpoint, RefreshPlan, Status, TokioClock,
};
use tether_keys::PrivateKey;
use tether_keys::generate::{KeySpec, generate};
use tether_testkit::{FakeServer, FakeServerOptions};

pub fn path() -> DevicePath {
    DevicePath::new("my-project", "us-central1", "reg-1", "dev-1")
}

pub fn key() -> PrivateKey {
    generate(KeySpec::Es256).expect("P-256 key")
}

pub fn options(key: &PrivateKey, port: u16, clock: Arc<dyn Clock>) -> DeviceOptions {
    let signer = Arc::from(key.signer().expect("signer"));
    let mut o = DeviceOptions::new(path(), signer);
    o.endpoints = vec![Endpoint::new("127.0.0.1", port)];
    o.clock = clock;
    o.refresh = RefreshPlan::new(Duration::from_secs(120), Duration::from_secs(30)).unwrap();
    o
}

/// A fake server sharing a paused-time wall clock with the device, the device's key
/// registered.
pub async fn server_with(key: &PrivateKey) -> (FakeServer, Arc<TokioClock>) {
    let clock = Arc::new(TokioClock::from_system());
    let server = FakeServer::start(FakeServerOptions {
        clock: clock.clone(),
        ..FakeServerOptions::default()
    })
    .await
    .expect("fake server");
    server.register(&path().client_id(), key.public_key().clone());
    (server, clock)
}

/// The wall clock's Unix time, for certificates made in a test.
pub fn now() -> i64 {
    i64::try_from(tether_device::SystemClock.unix_now()).expect("a time after 1970")
}

/// A port nothing listens on (bound, then closed).
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Waits (in tokio time) until the status matches.
pub async fn wait_for(device: &Device, what: impl Fn(&Status) -> bool) -> Status {
    let mut rx = device.status();
    tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            {
                let s = rx.borrow_and_update();
                if what(&s) {
                    return s.clone();
                }
            }
            if rx.changed().await.is_err() {
                panic!("status channel closed");
            }
        }
    })
    .await
    .expect("status reached")
}
