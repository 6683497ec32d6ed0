//! The SDK against a real broker: our own Mosquitto process on free ports (plain and
//! TLS with a test CA), never the machine's shared broker.

use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tether_device::{Clock, Device, Endpoint, QoS, RefreshPlan, Status, SystemClock};
use tether_testkit::TestPki;

use crate::common;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

struct Broker {
    child: Child,
    plain: u16,
    tls: u16,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_broker() -> Broker {
    assert!(
        Path::new(MOSQUITTO).exists(),
        "these tests need Mosquitto: apt-get install mosquitto mosquitto-clients"
    );
    let dir = tempfile::tempdir().unwrap();
    let now = i64::try_from(SystemClock.unix_now()).unwrap();
    let pki = TestPki::new("Tether test CA", &["localhost"], now).unwrap();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, &pki.server_chain_pem).unwrap();
    std::fs::write(&key, &pki.server_key_pem).unwrap();
    let (plain, tls) = (free_port(), free_port());
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings false\nallow_anonymous true\npersistence false\n\
             listener {plain} 127.0.0.1\n\
             listener {tls} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let child = Process::new(MOSQUITTO)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto starts");
    // Ready when both ports accept.
    for port in [plain, tls] {
        let mut ok = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ok, "mosquitto listens on {port}");
    }
    Broker {
        child,
        plain,
        tls,
        ca_pem: pki.ca_pem,
        _dir: dir,
    }
}

fn mosquitto_pub(port: u16, topic: &str, message: &str, retain: bool) {
    let mut cmd = Process::new("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", topic, "-m", message]);
    if retain {
        cmd.arg("-r");
    }
    let status = cmd.status().expect("mosquitto_pub runs");
    assert!(status.success());
}

#[tokio::test]
async fn life_cycle_against_mosquitto_over_tls_and_plain() {
    let broker = start_broker().await;
    let key = common::key();

    // A retained config is what the device gets on subscribe, as from IoT Core.
    mosquitto_pub(broker.plain, "/devices/dev-1/config", "config-v1", true);

    // Listen for the device's events with a second client.
    let sub = Process::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.plain.to_string()])
        .args(["-t", "/devices/dev-1/events/#", "-C", "1", "-v", "-W", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut opts = common::options(&key, broker.tls, Arc::new(SystemClock))
        .ca_pem(broker.ca_pem.as_bytes())
        .unwrap();
    opts.endpoints = vec![Endpoint::new("localhost", broker.tls)];
    let mut device = Device::connect(opts).await.expect("connects over TLS");
    let mut commands = device.take_commands().unwrap();
    let mut config = device.config();

    tokio::time::timeout(Duration::from_secs(10), config.wait_for(|c| c.is_some()))
        .await
        .expect("config in time")
        .expect("config watch open");
    assert_eq!(
        device.config().borrow().as_ref().map(|c| c.payload.clone()),
        Some(b"config-v1".to_vec())
    );

    device
        .publish_event(Some("alerts"), "hot", QoS::AtLeastOnce)
        .await
        .expect("PUBACK");
    let out = tokio::task::spawn_blocking(move || sub.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "/devices/dev-1/events/alerts hot"
    );

    mosquitto_pub(broker.plain, "/devices/dev-1/commands/x/y", "reboot", false);
    let command = tokio::time::timeout(Duration::from_secs(10), commands.recv())
        .await
        .expect("command in time")
        .expect("command");
    assert_eq!(command.subfolder.as_deref(), Some("x/y"));
    assert_eq!(command.payload, b"reboot");
    device.set_state("ok").await.expect("state acknowledged");
    device.disconnect().await;
}

#[tokio::test]
async fn planned_refresh_against_mosquitto_keeps_the_device_connected() {
    let broker = start_broker().await;
    let key = common::key();
    let mut opts = common::options(&key, broker.plain, Arc::new(SystemClock));
    // A refresh 3 s after connecting (60 s tokens, 57 s margin).
    opts.refresh = RefreshPlan::new(Duration::from_secs(60), Duration::from_secs(57)).unwrap();
    let device = Device::connect(opts).await.expect("connects");
    let first = match &*device.status().borrow() {
        Status::Connected { since, .. } => *since,
        other => panic!("{other:?}"),
    };
    let refreshed = tokio::time::timeout(
        Duration::from_secs(10),
        common::wait_for(
            &device,
            |s| matches!(s, Status::Connected { since, .. } if *since > first),
        ),
    )
    .await
    .expect("refreshed in time");
    assert!(matches!(refreshed, Status::Connected { .. }));
    // Mosquitto closed the old connection on the new CONNECT; the new one works.
    device
        .publish_event(None, "after refresh", QoS::AtLeastOnce)
        .await
        .expect("PUBACK on the new connection");
    assert!(matches!(
        *device.status().borrow(),
        Status::Connected { .. }
    ));
    device.disconnect().await;
}
