//! The node's cache of recently connected devices (docs/architecture.md, "CONNECT:
//! the device cache") never outlives a change: a device that connected a moment ago
//! is refused right after the API blocks it, removes its key, turns its registry's
//! MQTT off or deletes it, and accepted again when that is undone. `tether serve`
//! with its embedded store, the changes through the `tether` CLI, the device over
//! TLS with rumqttc.

use std::process::Command;
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, Packet};

use crate::common::{self, Served, run};

const TOKEN: &str = "device-cache-admin-token-0123456789";

fn tether() -> Command {
    common::tether_as(TOKEN)
}

/// One CONNECT of `dev-0` with `jwt`: the CONNACK's code, then a clean disconnect.
async fn connect(served: &Served, jwt: &str) -> ConnectReturnCode {
    let options = common::mqtt_options(&served.mqtt, &served.ca, "dev-0", jwt);
    let (client, mut events) = AsyncClient::new(options, 10);
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return ack.code,
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => return code,
                Err(e) => panic!("no CONNACK: {e}"),
            }
        }
    })
    .await
    .expect("a CONNACK within 10 s");
    if code == ConnectReturnCode::Success {
        let _ = client.disconnect().await;
        // Until the DISCONNECT is written and the server closes.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while events.poll().await.is_ok() {}
        })
        .await;
    }
    code
}

/// The `tether_mqtt_device_cache_total` sample for `result` in `/metrics`.
fn cache_count(served: &Served, result: &str) -> u64 {
    let metrics = common::http_get(&format!("{}/metrics", served.url));
    let prefix = format!("tether_mqtt_device_cache_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_device_is_refused_right_after_each_change_that_refuses_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let served = common::serve(tether(), &dir.path().join("data"));
    let api = ["--server", served.url.as_str(), "--registry", "fleet"];
    let jwt = common::fleet(tether, &served.url, dir.path(), &["dev-0".into()], &[]);
    let ok = ConnectReturnCode::Success;
    let refused = ConnectReturnCode::NotAuthorized;

    // The first CONNECT reads the store; the next ones are served from the cache.
    assert_eq!(connect(&served, &jwt).await, ok);
    let misses = cache_count(&served, "miss");
    assert_eq!(connect(&served, &jwt).await, ok);
    assert_eq!(connect(&served, &jwt).await, ok);
    assert!(
        cache_count(&served, "hit") >= 2,
        "reconnects were not served from the cache"
    );
    assert_eq!(
        cache_count(&served, "miss"),
        misses,
        "a reconnect read the store"
    );

    // Blocked, then unblocked.
    run(tether().args(["devices", "block", "dev-0"]).args(api));
    assert_eq!(connect(&served, &jwt).await, refused, "blocked");
    run(tether().args(["devices", "unblock", "dev-0"]).args(api));
    assert_eq!(connect(&served, &jwt).await, ok, "unblocked");

    // A new key added and the one the token is signed with removed.
    let key = dir.path().join("second");
    run(tether()
        .args(["keys", "gen", "--alg", "es256", "--out"])
        .arg(&key));
    let second = common::mint_jwt(tether, &dir.path().join("second.key.pem"));
    run(tether()
        .args([
            "devices",
            "credentials",
            "add",
            "--device",
            "dev-0",
            "--path",
        ])
        .arg(dir.path().join("second.pub.pem"))
        .args(api));
    assert_eq!(connect(&served, &second).await, ok, "the added key");
    assert_eq!(
        connect(&served, &jwt).await,
        ok,
        "the first key, still there"
    );
    run(tether()
        .args(["devices", "credentials", "remove", "--device", "dev-0", "0"])
        .args(api));
    assert_eq!(connect(&served, &jwt).await, refused, "the removed key");
    assert_eq!(connect(&served, &second).await, ok, "the key left");

    // The registry's MQTT off, then on again.
    let registry = ["--server", served.url.as_str()];
    run(tether()
        .args(["registries", "update", "fleet", "--no-enable-mqtt-config"])
        .args(registry));
    assert_eq!(connect(&served, &second).await, refused, "MQTT off");
    run(tether()
        .args(["registries", "update", "fleet", "--enable-mqtt-config"])
        .args(registry));
    assert_eq!(connect(&served, &second).await, ok, "MQTT on");

    // Deleted.
    run(tether().args(["devices", "delete", "dev-0"]).args(api));
    assert_eq!(
        connect(&served, &second).await,
        ConnectReturnCode::BadClientId,
        "deleted"
    );
}
