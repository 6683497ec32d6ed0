//! Two `tether serve` processes on one database, joined with `--cluster-nats`
//! (`TETHER_CLUSTER_NATS`): a device on node B (Mosquitto's own client) receives the
//! command and the config an operator sends through node A's API.
//!
//! NATS comes from `TETHER_TEST_NATS_URL` (CI sets it). The two nodes share a SQLite
//! file here; in production they share PostgreSQL.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

const TOKEN: &str = "cluster-e2e-admin-token-0123456789";

fn nats_url() -> Option<String> {
    match std::env::var("TETHER_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("TETHER_TEST_NATS_URL is not set, but CI is: the cluster must be tested")
        }
        _ => {
            eprintln!("NOTICE: cluster e2e skipped; set TETHER_TEST_NATS_URL to run it");
            None
        }
    }
}

fn tether() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.env("TETHER_ADMIN_TOKEN", TOKEN)
        .env("TETHER_PROJECT", "acme")
        .env_remove("TETHER_CLUSTER_NATS")
        .env_remove("TETHER_DATABASE");
    c
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn node(data: &Path, database: &str, nats: &str) -> common::Served {
    let mut c = tether();
    c.env("TETHER_DATABASE", database)
        .env("TETHER_CLUSTER_NATS", nats);
    common::serve(c, data)
}

#[test]
fn a_command_and_a_config_sent_to_node_a_reach_a_device_on_node_b() {
    let Some(nats) = nats_url() else {
        return;
    };
    if Command::new("mosquitto_sub")
        .arg("--help")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install mosquitto-clients"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("shared.db").display());
    let a = node(&dir.path().join("a"), &database, &nats);
    let b = node(&dir.path().join("b"), &database, &nats);
    assert!(b.banner.contains("tether: cluster node '"), "{}", b.banner);
    let server_a = ["--server", a.url.as_str()];
    run(tether()
        .args(["registries", "create", "fleet"])
        .args(server_a));
    let key = dir.path().join("dev-1");
    run(tether().args(["keys", "gen", "--out"]).arg(&key));
    let public = format!("path={}.pub.pem", key.display());
    run(tether()
        .args(["devices", "create", "dev-1", "--registry", "fleet"])
        .args(["--public-key", &public])
        .args(server_a));
    let private = format!("{}.key.pem", key.display());
    let jwt = run(tether().args(["jwt", "mint", "--key", &private, "--project", "acme"])).stdout;
    let jwt = String::from_utf8_lossy(&jwt).trim().to_owned();

    // The device connects to node B (each node has its own embedded CA here).
    let client_id = "projects/acme/locations/us-central1/registries/fleet/devices/dev-1";
    let listener = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            b.mqtt.rsplit(':').next().unwrap_or_default(),
        ])
        .args([
            "--cafile", &b.ca, "-i", client_id, "-u", "unused", "-P", &jwt,
        ])
        .args(["-q", "1", "-v", "-C", "3", "-W", "30"])
        .args([
            "-t",
            "/devices/dev-1/config",
            "-t",
            "/devices/dev-1/commands/#",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs");

    // Through node A: FAILED_PRECONDITION until node B holds the device's subscription.
    let registry = ["--device", "dev-1", "--registry", "fleet"];
    common::retry_until_ok(
        || {
            let mut c = tether();
            c.args(["devices", "commands", "send", "--command-data", "reboot"])
                .args(registry)
                .args(server_a);
            c
        },
        "the command never crossed to node B",
    );
    run(tether()
        .args(["devices", "configs", "update", "--config-data", "fan=7"])
        .args(registry)
        .args(server_a));
    let got = listener.wait_with_output().expect("mosquitto_sub exits");
    let got = String::from_utf8_lossy(&got.stdout);
    assert!(got.contains("/devices/dev-1/commands reboot"), "{got}");
    assert!(got.contains("/devices/dev-1/config fan=7"), "{got}");
}
