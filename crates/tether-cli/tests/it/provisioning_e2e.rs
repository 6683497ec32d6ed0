//! Zero-touch provisioning end to end, with tools a user has: `tether provisioning
//! claims` makes a claim (and its key), `tether keys` and `tether jwt mint --sub` make
//! a device's raw key and proof, curl provisions it over the HTTPS device bridge,
//! Mosquitto's `mosquitto_pub` then publishes with the device's own key, and
//! `tether simulate --provision` lets a small fleet register itself over MQTT.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::Value;

use crate::common;

fn tether() -> Command {
    common::tether_bare()
}

/// `tether ARGS --server URL --token-file FILE --project acme`, expecting `code`.
fn admin(served: &common::Served, data: &Path, code: i32, args: &[&str]) -> Output {
    let out = tether()
        .args(args)
        .args(["--server", &served.url, "--project", "acme", "--token-file"])
        .arg(data.join("admin-token"))
        .output()
        .expect("tether runs");
    assert_eq!(
        out.status.code(),
        Some(code),
        "tether {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn mint(key: &Path, sub: Option<&str>) -> String {
    let mut cmd = tether();
    cmd.args(["jwt", "mint", "--project", "acme", "--key"])
        .arg(key);
    if let Some(sub) = sub {
        cmd.args(["--sub", sub]);
    }
    String::from_utf8_lossy(&common::run(&mut cmd).stdout)
        .trim()
        .to_owned()
}

/// curl's POST of `body` to the device's `:provision` over the HTTPS bridge: status
/// and JSON.
fn curl_provision(
    served: &common::Served,
    device: &str,
    bearer: &str,
    body: &Value,
) -> (u16, Value) {
    let url = format!(
        "https://{}/v1/projects/acme/locations/us-central1/registries/fleet/devices/{device}:provision",
        served.https
    );
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--cacert", &served.ca])
        .args(["-H", &format!("authorization: Bearer {bearer}")])
        .args([
            "-H",
            "content-type: application/json",
            "-d",
            &body.to_string(),
        ])
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (json, code) = text.rsplit_once('\n').expect("status line");
    (
        code.trim().parse().expect("HTTP status"),
        serde_json::from_str(json).unwrap_or(Value::Null),
    )
}

#[test]
fn a_device_registers_its_raw_key_with_curl_then_publishes_with_mosquitto() {
    if !common::mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = common::serve(tether(), &data);
    admin(
        &served,
        &data,
        0,
        &[
            "registries",
            "create",
            "fleet",
            "--event-notification-config",
            "topic=telemetry",
        ],
    );

    // The factory's claim, with its key generated (private half 0600).
    let prefix = dir.path().join("line-7");
    let out = admin(
        &served,
        &data,
        0,
        &[
            "provisioning",
            "claims",
            "create",
            "line-7",
            "--registry",
            "fleet",
            "--generate-key",
            "--key-out",
            prefix.to_str().unwrap(),
            "--device-id-pattern",
            "sensor-[0-9]+",
            "--max-devices",
            "10",
            "--metadata",
            "batch=7",
            "--format",
            "json",
        ],
    );
    let claim = json_of(&out);
    assert_eq!(claim["state"], "ACTIVE", "{claim:#}");
    assert_eq!(claim["devicesProvisioned"], "0");
    let claim_key = dir.path().join("line-7.key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&claim_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the claim's private key is owner-only");
    }

    // The device's engine makes a key; its public half as the raw 64 bytes x‖y.
    let device_key = dir.path().join("sensor-1");
    common::run(
        tether()
            .args(["keys", "gen", "--alg", "es256", "--out"])
            .arg(&device_key),
    );
    let raw = dir.path().join("sensor-1.raw");
    common::run(
        tether()
            .args(["keys", "convert"])
            .arg(dir.path().join("sensor-1.pub.pem"))
            .args(["--to", "raw", "--out"])
            .arg(&raw),
    );
    let raw = std::fs::read(&raw).unwrap();
    assert_eq!(raw.len(), 64);
    let private = dir.path().join("sensor-1.key.pem");
    let body = serde_json::json!({
        "publicKey": {"format": "ES256_RAW", "key": base64::engine::general_purpose::STANDARD.encode(&raw)},
        "proof": mint(&private, Some("sensor-1")),
    });
    let claim_token = mint(&claim_key, None);

    // The story's mistake first: a proof from another key is refused, nothing made.
    let other = dir.path().join("other");
    common::run(
        tether()
            .args(["keys", "gen", "--alg", "es256", "--out"])
            .arg(&other),
    );
    let mut wrong = body.clone();
    wrong["proof"] = Value::String(mint(&dir.path().join("other.key.pem"), Some("sensor-1")));
    let (status, reply) = curl_provision(&served, "sensor-1", &claim_token, &wrong);
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the proof is not signed by the submitted ES256 key (sha256:"),
        "{reply}"
    );
    admin(
        &served,
        &data,
        1,
        &["devices", "describe", "sensor-1", "--registry", "fleet"],
    );

    let (status, reply) = curl_provision(&served, "sensor-1", &claim_token, &body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["device"]["id"], "sensor-1");
    let inspect = common::run(
        tether()
            .args(["keys", "inspect"])
            .arg(dir.path().join("sensor-1.pub.pem")),
    );
    let fingerprint = reply["credential"]["fingerprint"].as_str().unwrap();
    assert!(
        String::from_utf8_lossy(&inspect.stdout).contains(fingerprint),
        "the reply names the key `tether keys inspect` shows: {fingerprint}"
    );
    let described = json_of(&admin(
        &served,
        &data,
        0,
        &[
            "devices",
            "describe",
            "sensor-1",
            "--registry",
            "fleet",
            "--format",
            "json",
        ],
    ));
    assert_eq!(
        described["metadata"]["tether.provisionedBy"], "line-7",
        "{described:#}"
    );
    assert_eq!(described["metadata"]["batch"], "7");

    // Then it is an ordinary device: Mosquitto's client publishes with its own key.
    let port = served.mqtt.rsplit_once(':').unwrap().1.to_string();
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port, "--cafile", &served.ca])
        .args([
            "-i",
            "projects/acme/locations/us-central1/registries/fleet/devices/sensor-1",
        ])
        .args(["-u", "unused", "-P", &mint(&private, None)])
        .args([
            "-t",
            "/devices/sensor-1/events",
            "-m",
            "first boot",
            "-q",
            "1",
        ])
        .output()
        .expect("mosquitto_pub runs");
    if !out.status.success() {
        let described = admin(
            &served,
            &data,
            0,
            &["devices", "describe", "sensor-1", "--registry", "fleet"],
        );
        panic!(
            "mosquitto_pub: {}; the device: {}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&described.stdout)
        );
    }

    // Revoked: the claim stays listed, and a new device is told why.
    admin(
        &served,
        &data,
        0,
        &[
            "provisioning",
            "claims",
            "revoke",
            "line-7",
            "--registry",
            "fleet",
        ],
    );
    let listed = admin(
        &served,
        &data,
        0,
        &["provisioning", "claims", "list", "--registry", "fleet"],
    );
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(
        table.contains("REVOKED") && table.contains("line-7"),
        "{table}"
    );
    let (status, reply) = curl_provision(&served, "sensor-2", &claim_token, &body);
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{reply}"
    );
}

#[test]
fn simulate_provision_lets_a_fleet_register_itself_then_publish() {
    let dir = tempfile::tempdir().unwrap();
    let served = common::serve(tether(), dir.path());
    let token = dir.path().join("admin-token");
    let out = tether()
        .args([
            "simulate",
            "--provision",
            "--server",
            &served.url,
            "--token-file",
        ])
        .arg(&token)
        .args(["--mqtt", &served.mqtt, "--ca", &served.ca])
        .args([
            "-n",
            "20",
            "--duration",
            "1",
            "--rate",
            "2",
            "--json",
            "--quiet",
        ])
        .args(["--server-pid", &served.child.id().to_string()])
        .output()
        .expect("tether simulate runs");
    let report = common::simulate_report(&out);
    let provision = &report["provision"];
    assert_eq!(provision["provisioned"], 20, "{report:#}");
    assert_eq!(provision["refused"], 0, "{report:#}");
    assert!(provision["per_sec"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(
        provision["server_cpu_per_provision_us"].as_f64().is_some(),
        "{report:#}"
    );
    // The usual run then connects every device with the key it registered.
    assert_eq!(common::count(&report, "connected"), 20, "{report:#}");
    assert!(common::count(&report, "acked") > 0, "{report:#}");
}

/// `tether doctor --provision` for `device` with the claim key `claim` and the new key
/// `new`: its JSON report and exit code.
fn doctor_provision(
    served: &common::Served,
    device: &str,
    claim: &Path,
    new: &Path,
) -> (Value, i32) {
    let port = served.mqtt.rsplit_once(':').unwrap().1.to_string();
    let out = tether()
        .args([
            "doctor",
            "--host",
            "localhost",
            "--port",
            &port,
            "--ca",
            &served.ca,
        ])
        .args([
            "--project",
            "acme",
            "--registry",
            "fleet",
            "--device",
            device,
        ])
        .arg("--key")
        .arg(claim)
        .arg("--provision")
        .arg("--new-key")
        .arg(new)
        .arg("--json")
        .output()
        .expect("tether doctor runs");
    (
        serde_json::from_slice(&out.stdout).expect("doctor JSON"),
        out.status.code().unwrap_or(-1),
    )
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name}: {report:#}"))
}

#[test]
fn doctor_provision_runs_the_flow_and_names_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = common::serve(tether(), &data);
    admin(&served, &data, 0, &["registries", "create", "fleet"]);
    let prefix = dir.path().join("claim");
    admin(
        &served,
        &data,
        0,
        &[
            "provisioning",
            "claims",
            "create",
            "line-1",
            "--registry",
            "fleet",
            "--generate-key",
            "--key-out",
            prefix.to_str().unwrap(),
            "--device-id-pattern",
            "sensor-[0-9]+",
        ],
    );
    let claim = dir.path().join("claim.key.pem");
    for name in ["sensor-1", "stranger"] {
        common::run(
            tether()
                .args(["keys", "gen", "--alg", "es256", "--out"])
                .arg(dir.path().join(name)),
        );
    }
    let new = dir.path().join("sensor-1.key.pem");

    let (report, code) = doctor_provision(&served, "sensor-1", &claim, &new);
    assert_eq!(code, 0, "{report:#}");
    let provision = step(&report, "provision");
    assert_eq!(provision["status"], "pass", "{report:#}");
    assert!(
        provision["summary"]
            .as_str()
            .unwrap()
            .contains("registered sensor-1"),
        "{report:#}"
    );

    // An id outside the claim's pattern: the provision step shows the server's reason.
    let (report, code) = doctor_provision(&served, "thermostat-1", &claim, &new);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(step(&report, "mqtt")["status"], "pass", "{report:#}");
    let provision = step(&report, "provision");
    assert_eq!(provision["status"], "fail", "{report:#}");
    assert!(
        provision["cause"]
            .as_str()
            .unwrap()
            .contains("does not match the pattern"),
        "{report:#}"
    );

    // A key that is no claim's.
    let stranger = dir.path().join("stranger.key.pem");
    let (report, code) = doctor_provision(&served, "sensor-2", &stranger, &new);
    assert_eq!(code, 1, "{report:#}");
    assert!(
        step(&report, "mqtt")["cause"]
            .as_str()
            .unwrap()
            .contains("no provisioning claim"),
        "{report:#}"
    );
}
