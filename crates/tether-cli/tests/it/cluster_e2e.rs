//! Two `tether serve` processes on one database, joined with `--cluster-nats`
//! (`TETHER_CLUSTER_NATS`): a device on node B (Mosquitto's own client) receives the
//! command and the config an operator sends through node A's API.
//!
//! NATS comes from `TETHER_TEST_NATS_URL` (CI sets it); without it the test skips, or
//! fails under `TETHER_TEST_REQUIRE_ALL=1`. The two nodes share a SQLite file here; in
//! production they share PostgreSQL.

use std::path::Path;
use std::process::Command;

use crate::common;

const TOKEN: &str = "cluster-e2e-admin-token-0123456789";

fn nats_url() -> Option<String> {
    let url = tether_testkit::needs::env("TETHER_TEST_NATS_URL");
    tether_testkit::require("NATS JetStream (TETHER_TEST_NATS_URL)", url)
}

fn tether() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.env("TETHER_ADMIN_TOKEN", TOKEN)
        .env("TETHER_PROJECT", "acme")
        .env_remove("TETHER_CLUSTER_NATS")
        .env_remove("TETHER_DATABASE");
    c
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
    if !common::mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("shared.db").display());
    let a = node(&dir.path().join("a"), &database, &nats);
    let b = node(&dir.path().join("b"), &database, &nats);
    assert!(b.banner.contains("tether: cluster node '"), "{}", b.banner);
    let private = common::create_device(tether, &a.url, dir.path(), &[]);
    let jwt = common::mint_jwt(tether, &private);

    // The device is on node B (each node has its own embedded CA here); the operator
    // talks to node A.
    let got = common::command_and_config_reach_device(tether, &b, &a.url, &jwt, "fan=7");
    assert!(got.contains("/devices/dev-1/commands reboot"), "{got}");
    assert!(got.contains("/devices/dev-1/config fan=7"), "{got}");
}

#[test]
fn an_unreachable_cluster_nats_stops_the_start_with_its_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = tether()
        .args([
            "serve",
            "--cluster-nats",
            "nats://127.0.0.1:1",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .args(["--http-addr", "127.0.0.1:0", "--mqtt-addr", "127.0.0.1:0"])
        .args(["--https-addr", "127.0.0.1:0", "--pubsub-addr", "off"])
        .args(["--grpc-addr", "off"])
        .output()
        .expect("tether runs");
    assert_eq!(out.status.code(), Some(7), "7: the cluster's NATS");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to the cluster's NATS at nats://127.0.0.1:1"),
        "{stderr}"
    );
}
