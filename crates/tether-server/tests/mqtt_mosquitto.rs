//! Mosquitto's command-line clients (Debian `mosquitto-clients`) against the gateway,
//! invoked the way IoT Core's docs showed: `--cafile`, `-i projects/...`, `-u unused`,
//! `-P <jwt>`, in MQTT 3.1.1 and, for telemetry, config and commands, MQTT 5 (`-V 5`).
//! Skipped with a notice when the tools are missing, unless `TETHER_TEST_REQUIRE_ALL=1`.

mod mqtt_support;

use std::time::Duration;

use mqtt_support::*;
use tether_registry::Store as _;
use tether_registry::model::Timestamp;
use tether_registry::names::DeviceRef;
use tether_server::bridge::hub::HubError;

fn common(gw: &Gateway, client_id: &str, password: &str) -> Vec<String> {
    mosquitto_args(gw, "mqttv311", client_id, password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_telemetry_and_state() -> TestResult {
    telemetry_and_state("mqttv311").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_v5_telemetry_and_state() -> TestResult {
    telemetry_and_state("5").await
}

async fn telemetry_and_state(version: &str) -> TestResult {
    if !tool_available("mosquitto_pub") {
        return Ok(());
    }
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    for (topic, qos, message) in [
        ("/devices/dev-1/events", "0", "m0"),
        ("/devices/dev-1/events/alerts", "1", "m1"),
        ("/devices/dev-1/state", "1", "s1"),
    ] {
        let mut args = mosquitto_args(&gw, version, &dev.client_id(), &dev.jwt());
        args.extend(["-t", topic, "-q", qos, "-m", message].map(String::from));
        let (code, _, stderr) = run_tool("mosquitto_pub", args).await;
        assert_eq!(code, Some(0), "mosquitto_pub {topic}: {stderr}");
    }
    assert_eq!(
        gw.wait_records(TELEMETRY_TOPIC, 1).await[0].message.data,
        b"m0"
    );
    let alerts = gw.wait_records(ALERTS_TOPIC, 1).await;
    assert_eq!(alerts[0].message.attributes["subFolder"], "alerts");
    let states = gw
        .store
        .list_states(&registry_path(), &DeviceRef::Id("dev-1".into()), 0)
        .await?;
    assert_eq!(states[0].binary_data, b"s1");
    gw.wait_no_connections().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_sees_connack_codes() -> TestResult {
    if !tool_available("mosquitto_pub") {
        return Ok(());
    }
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let now = now_secs();
    let publish = |client_id: String, password: String| {
        let mut args = common(&gw, &client_id, &password);
        args.extend(["-t", "/devices/dev-1/events", "-m", "x"].map(String::from));
        run_tool("mosquitto_pub", args)
    };
    // CONNACK 5: the token's aud is not the project.
    let (code, _, stderr) = publish(dev.client_id(), dev.jwt_with("other", now, now + 600)).await;
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("Connection Refused: not authorised."),
        "{stderr}"
    );
    let status = gw.wait_error("dev-1", |s| s.message.contains("aud")).await;
    assert_eq!(status.code, 16);
    // CONNACK 2: unknown device.
    let (code, _, stderr) = publish(client_id("ghost"), dev.jwt()).await;
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("Connection Refused: identifier rejected."),
        "{stderr}"
    );
    // CONNACK 4: a password that is not a JWT.
    let (code, _, stderr) = publish(dev.client_id(), "unused".into()).await;
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("Connection Refused: bad user name or password."),
        "{stderr}"
    );
    // A client that does not trust the gateway's CA fails the TLS handshake.
    let mut args = common(&gw, &dev.client_id(), &dev.jwt());
    let ca = args.iter().position(|a| a == "--cafile").ok_or("cafile")? + 1;
    args[ca] = "/etc/ssl/certs/ca-certificates.crt".into();
    args.extend(["-t", "/devices/dev-1/events", "-m", "x"].map(String::from));
    let (code, _, _) = run_tool("mosquitto_pub", args).await;
    assert_ne!(code, Some(0));
    gw.wait_no_connections().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_sub_gets_config_and_commands() -> TestResult {
    config_and_commands("mqttv311").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_sub_v5_gets_config_and_commands() -> TestResult {
    config_and_commands("5").await
}

async fn config_and_commands(version: &str) -> TestResult {
    if !tool_available("mosquitto_sub") {
        return Ok(());
    }
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    gw.store
        .modify_config(
            &registry_path(),
            &DeviceRef::Id("dev-1".into()),
            0,
            b"config-v2",
            Timestamp::from_secs(now_secs()),
        )
        .await?;
    // The latest config right after subscribing.
    let mut args = mosquitto_args(&gw, version, &dev.client_id(), &dev.jwt());
    args.extend(
        [
            "-t",
            "/devices/dev-1/config",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "10",
        ]
        .map(String::from),
    );
    let (code, stdout, stderr) = run_tool("mosquitto_sub", args).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim_end(), "config-v2");
    // mosquitto acknowledged it at QoS 1.
    let mut acked = false;
    for _ in 0..100 {
        let v = gw
            .store
            .list_config_versions(&registry_path(), &DeviceRef::Id("dev-1".into()), 1)
            .await?;
        if v.first().is_some_and(|c| c.device_ack_time.is_some()) {
            acked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(acked, "config ack from mosquitto_sub");

    // A command while subscribed to commands/#.
    let mut args = mosquitto_args(&gw, version, &dev.client_id(), &dev.jwt());
    args.extend(
        [
            "-t",
            "/devices/dev-1/commands/#",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "10",
            "-v",
        ]
        .map(String::from),
    );
    let sub = tokio::spawn(run_tool("mosquitto_sub", args));
    let hub = gw.handle().hub();
    let mut delivered = Err(HubError::NotConnected);
    for _ in 0..250 {
        delivered = hub
            .send_command(&dev.address(), "dev-1", "lights", b"off".to_vec())
            .await;
        if delivered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(delivered, Ok(()));
    let (code, stdout, stderr) = sub.await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim_end(), "/devices/dev-1/commands/lights off");
    gw.wait_no_connections().await;
    gw.shutdown().await;
    Ok(())
}
