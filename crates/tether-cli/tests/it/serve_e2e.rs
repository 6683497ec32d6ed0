//! The whole gateway as a user runs it: `tether serve` with MQTT over TLS, a device made
//! with the CLI, telemetry from Mosquitto's own client, read back with `tether events`,
//! counted in `/metrics`, and a clean shutdown on SIGTERM.

use common::{DEV_1, Served, command_and_config_reach_device, create_device, mint_jwt, run};
use std::path::Path;
use std::process::Command;

use crate::common;

const TOKEN: &str = "e2e-admin-token-0123456789";

fn tether() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.env("TETHER_ADMIN_TOKEN", TOKEN)
        .env("TETHER_PROJECT", "acme");
    c
}

fn start(data: &Path) -> Served {
    common::serve(tether(), data)
}

#[test]
fn serve_mqtt_events_and_metrics_end_to_end() {
    if !common::mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let gw = start(&dir.path().join("data"));
    let server = ["--server", gw.url.as_str()];
    let private = create_device(
        tether,
        &gw.url,
        dir.path(),
        &[
            "--event-notification-config",
            "topic=projects/acme/topics/telemetry",
        ],
    );
    let jwt = mint_jwt(tether, &private);

    let client_id = DEV_1;
    let publish = |password: &str| {
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                gw.mqtt.rsplit(':').next().unwrap_or_default(),
                "--cafile",
                &gw.ca,
                "-i",
                client_id,
            ])
            .args([
                "-u",
                "unused",
                "-P",
                password,
                "-q",
                "1",
                "-t",
                "/devices/dev-1/events/alerts",
                "-m",
                "hello",
            ])
            .output()
            .expect("mosquitto_pub runs")
    };
    let out = publish(&jwt);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = publish("not-a-jwt");
    assert!(!out.status.success());

    // The same device over the HTTP bridge, the way Google's HTTP sample posted.
    let url = format!(
        "https://{}/v1/{client_id}:publishEvent",
        gw.https.replace("127.0.0.1", "localhost")
    );
    let auth = format!("authorization: Bearer {jwt}");
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail-with-body",
            "--cacert",
            &gw.ca,
            "-X",
            "POST",
            &url,
            "-H",
            &auth,
        ])
        .args([
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"binaryData":"aGk=","subFolder":"http"}"#,
        ])
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "{}");

    // Config and commands from the REST API reach a subscribed MQTT device.
    let got = command_and_config_reach_device(tether, &gw, &gw.url, &jwt, "fan=0");
    assert!(got.contains("/devices/dev-1/commands reboot"), "{got}");
    assert!(got.contains("/devices/dev-1/config fan=0"), "{got}");

    let tail = run(tether()
        .args([
            "events",
            "tail",
            "--topic",
            "projects/acme/topics/telemetry",
        ])
        .args(server));
    let text = String::from_utf8_lossy(&tail.stdout);
    assert!(text.contains("dev-1/alerts  hello"), "{text}");
    assert!(text.contains("dev-1/http  hi"), "{text}");

    // Activity is written in batches (every 5 s): poll for the recorded refusal.
    let mut device = serde_json::Value::Null;
    for _ in 0..40 {
        let described = run(tether()
            .args([
                "devices",
                "describe",
                "dev-1",
                "--registry",
                "fleet",
                "--format",
                "json",
            ])
            .args(server));
        device = serde_json::from_slice(&described.stdout).expect("json");
        if device["lastErrorStatus"]["message"].is_string() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let message = device["lastErrorStatus"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("JWT"),
        "the refusal is recorded on the device: {device:#}"
    );
    assert!(device["lastEventTime"].is_string(), "{device:#}");

    let metrics = common::http_get(&format!("{}/metrics", gw.url));
    assert!(metrics.contains("tether_mqtt_connects_total"), "{metrics}");
    assert!(metrics.contains("tether_mqtt_refusals_total"), "{metrics}");
    assert!(metrics.contains("tether_sink_publish_seconds"), "{metrics}");
    // The fixed-bucket histogram, once, with the sample of the message just sent.
    assert_eq!(
        metrics
            .matches("# TYPE tether_sink_publish_seconds histogram")
            .count(),
        1,
        "{metrics}"
    );
    assert!(
        metrics.lines().any(
            |l| l.starts_with("tether_sink_publish_seconds_bucket{sink=")
                && l.contains("le=\"+Inf\"}")
                && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut gw = start(&dir.path().join("data"));
    let pid = gw.child.id().to_string();
    run(Command::new("kill").args(["-TERM", &pid]));
    let status = gw.child.wait().expect("exits");
    assert_eq!(status.code(), Some(0));
}

/// Each start-up failure has its own exit code and names what is at fault: a port in
/// use is not a usage error.
#[test]
fn start_up_failures_exit_with_their_own_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let serve = |extra: &[&str]| {
        tether()
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--mqtt-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"])
            .args(if extra.contains(&"--grpc-addr") {
                &[][..]
            } else {
                &["--grpc-addr", "127.0.0.1:0"][..]
            })
            .args(extra)
            .output()
            .expect("tether runs")
    };
    let out = serve(&["--http-addr", &addr]);
    assert_eq!(out.status.code(), Some(3), "3: an address in use");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (admin API)")),
        "{stderr}"
    );
    let out = serve(&["--http-addr", "127.0.0.1:0", "--mqtt-addr", &addr]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(MQTT)"));
    let out = serve(&["--http-addr", "127.0.0.1:0", "--pubsub-addr", &addr]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(Pub/Sub API)"));
    let out = serve(&["--http-addr", "127.0.0.1:0", "--grpc-addr", &addr]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(Device Manager API over gRPC)"));
    let out = serve(&["--http-addr", "127.0.0.1:0", "--grpc-addr", "8081"]);
    assert_eq!(out.status.code(), Some(2), "2: not an address");
    assert!(String::from_utf8_lossy(&out.stderr).contains("grpc_addr '8081'"));
    let out = serve(&["--http-addr", "127.0.0.1:0", "--pubsub-addr", "8085"]);
    assert_eq!(out.status.code(), Some(2), "2: not an address");
    assert!(String::from_utf8_lossy(&out.stderr).contains("pubsub_addr '8085'"));

    let config = dir.path().join("tether.toml");
    std::fs::write(&config, "idle_timeout_secs = \"soon\"\n").expect("write");
    let out = serve(&[
        "--http-addr",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap_or(""),
    ]);
    assert_eq!(out.status.code(), Some(2), "2: a bad config file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("idle_timeout_secs"));

    let out = serve(&[
        "--http-addr",
        "127.0.0.1:0",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert_eq!(out.status.code(), Some(4), "4: the TLS certificate");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cert.pem"));
}
