//! Two independent MQTT 5 clients against the gateway, over TLS: Mosquitto's
//! command-line clients with `-V 5` and paho-mqtt 2.x (Python) in MQTTv5 mode. Each
//! connects, publishes at QoS 1, gets config and commands (Mosquitto's in
//! `mqtt_mosquitto.rs`, beside 3.1.1), and sees a refused CONNECT's reason. `.ci/run` installs both; a missing one fails under
//! `TETHER_TEST_REQUIRE_ALL=1`.

mod mqtt_support;

use std::path::PathBuf;
use std::time::Duration;

use mqtt_support::*;
use serde_json::Value;
use tether_registry::Store as _;
use tether_registry::model::Timestamp;
use tether_registry::names::DeviceRef;
use tether_server::bridge::hub::HubError;

async fn set_config(gw: &Gateway, data: &[u8]) -> TestResult {
    gw.store
        .modify_config(
            &registry_path(),
            &DeviceRef::Id("dev-1".into()),
            0,
            data,
            Timestamp::from_secs(now_secs()),
        )
        .await?;
    Ok(())
}

/// Sends a command until the device's subscription is in place.
async fn command_when_subscribed(gw: &Gateway, dev: &TestDevice, payload: &[u8]) {
    let hub = gw.handle().hub();
    let mut delivered = Err(HubError::NotConnected);
    for _ in 0..500 {
        delivered = hub
            .send_command(&dev.address(), "dev-1", "lights", payload.to_vec())
            .await;
        if delivered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(delivered, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_v5_sees_the_refusal() -> TestResult {
    if !tool_available("mosquitto_pub") {
        return Ok(());
    }
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let now = now_secs();
    let mut args = mosquitto_args(
        &gw,
        "5",
        &dev.client_id(),
        &dev.jwt_with("other", now, now + 600),
    );
    args.extend(["-t", "/devices/dev-1/events", "-m", "x", "-d"].map(String::from));
    let (code, stdout, stderr) = run_tool("mosquitto_pub", args).await;
    assert_ne!(code, Some(0));
    // Mosquitto's clients print the reason code's name; they do not print a
    // CONNACK's Reason String (paho does, below).
    let said = format!("{stdout}{stderr}");
    assert!(said.contains("Not authorized"), "{said}");
    assert!(said.contains("CONNACK (135)"), "{said}");
    gw.shutdown().await;
    Ok(())
}

/// paho-mqtt 2.x, kept apart from the 1.x Google's sample needs: `TETHER_TEST_PAHO2`
/// names the directory `.ci/run` installs it to (default: target/python-paho2).
fn paho2_path() -> Option<PathBuf> {
    let dir = std::env::var_os("TETHER_TEST_PAHO2").map_or_else(
        || {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")),
                PathBuf::from,
            );
            target.join("python-paho2")
        },
        PathBuf::from,
    );
    let check = std::process::Command::new("python3")
        .env("PYTHONPATH", &dir)
        .args([
            "-c",
            "import paho.mqtt, sys; sys.exit(0 if paho.mqtt.__version__.startswith('2') else 1)",
        ])
        .output();
    let found = check.is_ok_and(|o| o.status.success());
    let ready = if found {
        Ok(dir)
    } else {
        Err(format!(
            "paho-mqtt 2.x in {} (pip install --target {} paho-mqtt==2.1.0)",
            dir.display(),
            dir.display()
        ))
    };
    tether_testkit::require_ok("python3 with paho-mqtt 2.x", ready)
}

async fn run_paho(dir: PathBuf, args: Vec<String>) -> (Option<i32>, Vec<Value>, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("python3")
            .env("PYTHONPATH", &dir)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/mqtt5_device.py"
            ))
            .args(&args)
            .output()
            .expect("python3 runs");
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (
            out.status.code(),
            lines,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("joined")
}

fn paho_args(gw: &Gateway, dev: &TestDevice, token: &str) -> Vec<String> {
    [
        "--port",
        &gw.port().to_string(),
        "--ca",
        &gw.ca_path.to_string_lossy(),
        "--client-id",
        &dev.client_id(),
        "--device-id",
        "dev-1",
        "--token",
        token,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn event<'a>(lines: &'a [Value], name: &str) -> Option<&'a Value> {
    lines.iter().find(|l| l["event"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_v5_with_the_jwt_as_authentication_data() -> TestResult {
    let Some(dir) = paho2_path() else {
        return Ok(());
    };
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    set_config(&gw, b"config-for-paho").await?;
    let run = tokio::spawn(run_paho(dir, paho_args(&gw, &dev, &dev.jwt())));
    command_when_subscribed(&gw, &dev, b"reboot").await;
    let (code, lines, stderr) = run.await?;
    assert_eq!(code, Some(0), "{lines:?} {stderr}");
    let connack = event(&lines, "connack").ok_or("connack")?;
    assert_eq!(connack["code"], 0);
    assert_eq!(connack["auth_method"], "jwt");
    assert_eq!(
        event(&lines, "suback").ok_or("suback")?["codes"],
        serde_json::json!([1, 1])
    );
    assert_eq!(event(&lines, "puback").ok_or("puback")?["code"], 0);
    let config = event(&lines, "config").ok_or("config")?;
    assert_eq!(config["payload"], "config-for-paho");
    assert_eq!(config["qos"], 1);
    let command = event(&lines, "command").ok_or("command")?;
    assert_eq!(command["topic"], "/devices/dev-1/commands/lights");
    assert_eq!(command["payload"], "reboot");
    assert_eq!(
        gw.wait_records(TELEMETRY_TOPIC, 1).await[0].message.data,
        b"hello from paho v5"
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_v5_reads_the_refusal_reason_string() -> TestResult {
    let Some(dir) = paho2_path() else {
        return Ok(());
    };
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let now = now_secs();
    let wrong = dev.jwt_with("other", now, now + 600);
    let (_, lines, stderr) = run_paho(dir, paho_args(&gw, &dev, &wrong)).await;
    let connack = event(&lines, "connack").ok_or_else(|| format!("{lines:?} {stderr}"))?;
    assert_eq!(connack["code"], 0x87);
    let text = connack["reason_string"].as_str().unwrap_or_default();
    assert!(text.contains("aud"), "{text}");
    let status = gw.wait_error("dev-1", |s| s.message.contains("aud")).await;
    assert!(
        status.message.ends_with(text),
        "{} vs {text}",
        status.message
    );
    gw.shutdown().await;
    Ok(())
}
