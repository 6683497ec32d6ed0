//! A Python device written like Google's `cloudiot_mqtt_example.py` (paho-mqtt 1.x and
//! PyJWT, TLS 1.2, `unused` user name): connect, config at QoS 1, commands, telemetry
//! and state at QoS 1; and the CONNACK 5 it saw for a wrong `aud`. `.ci/run` installs
//! the Python packages from `.ci/requirements.txt`.

mod mqtt_support;

use std::time::Duration;

use mqtt_support::*;
use serde_json::Value;
use tether_registry::Store as _;
use tether_registry::names::DeviceRef;

fn python_ready() -> bool {
    let modules = ["paho.mqtt.client", "jwt", "cryptography"];
    let ready = tether_testkit::needs::python_modules(&modules);
    tether_testkit::require_ok("python3 with paho-mqtt, PyJWT and cryptography", ready).is_some()
}

fn script_args(gw: &Gateway, dev: &TestDevice, key_file: &std::path::Path) -> Vec<String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/cloudiot_device.py"
    );
    [
        script,
        "--project_id",
        PROJECT,
        "--cloud_region",
        LOCATION,
        "--registry_id",
        REGISTRY,
        "--device_id",
        &dev.id,
        "--private_key_file",
        &key_file.to_string_lossy(),
        "--algorithm",
        "ES256",
        "--ca_certs",
        &gw.ca_path.to_string_lossy(),
        "--mqtt_bridge_hostname",
        "localhost",
        "--mqtt_bridge_port",
        &gw.port().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_style_python_device() -> TestResult {
    if !python_ready() {
        return Ok(());
    }
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("py-device").await?;
    let key_file = gw.dir.path().join("py-device.pem");
    std::fs::write(&key_file, dev.private_key_pem())?;
    let mut args = script_args(&gw, &dev, &key_file);
    args.push("--wait_command".into());
    let device = tokio::spawn(run_tool("python3", args));

    // Once the device subscribed to commands/#, send it one.
    let hub = gw.handle().hub();
    let mut sent = false;
    for _ in 0..500 {
        if hub
            .send_command(&dev.address(), &dev.id, "", b"blink".to_vec())
            .await
            .is_ok()
        {
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(sent, "the Python device never subscribed to its commands");
    let (code, stdout, stderr) = device.await?;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let out = lines(&stdout);
    assert!(
        out.iter().any(|v| v["event"] == "connect" && v["rc"] == 0),
        "{stdout}"
    );
    assert!(
        out.iter().any(|v| v["event"] == "message"
            && v["topic"] == "/devices/py-device/config"
            && v["qos"] == 1),
        "{stdout}"
    );
    assert!(
        out.iter().any(|v| v["event"] == "message"
            && v["topic"] == "/devices/py-device/commands"
            && v["payload"] == "blink"),
        "{stdout}"
    );
    let events = gw.wait_records(TELEMETRY_TOPIC, 3).await;
    let payloads: Vec<String> = events
        .iter()
        .map(|r| String::from_utf8_lossy(&r.message.data).into_owned())
        .collect();
    assert_eq!(
        payloads,
        [
            "fleet/py-device-payload-1",
            "fleet/py-device-payload-2",
            "fleet/py-device-payload-3"
        ]
    );
    let states = gw
        .store
        .list_states(&registry_path(), &DeviceRef::Id("py-device".into()), 0)
        .await?;
    assert_eq!(states[0].binary_data, b"state-ok");
    gw.wait_no_connections().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_device_with_the_wrong_audience_sees_connack_5() -> TestResult {
    if !python_ready() {
        return Ok(());
    }
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("py-device").await?;
    let key_file = gw.dir.path().join("py-device.pem");
    std::fs::write(&key_file, dev.private_key_pem())?;
    let mut args = script_args(&gw, &dev, &key_file);
    args.extend(["--audience".into(), "my-project-number".into()]);
    let (code, stdout, _) = run_tool("python3", args).await;
    assert_eq!(code, Some(1), "{stdout}");
    let out = lines(&stdout);
    assert!(
        out.iter().any(|v| v["event"] == "connect"
            && v["rc"] == 5
            && v["text"] == "Connection Refused: not authorised."),
        "{stdout}"
    );
    let status = gw
        .wait_error("py-device", |s| s.message.contains("my-project-number"))
        .await;
    assert_eq!(status.code, 16);
    gw.shutdown().await;
    Ok(())
}
