//! Issue 10: a backend written for IoT Core's Pub/Sub works unchanged. Google's own
//! Python client (`google-cloud-pubsub`, `PUBSUB_EMULATOR_HOST`) against `tether
//! serve`, a device publishing with `mosquitto_pub`, and a `kill -9` with a restart
//! in the middle (tests/python/pubsub_backend.py says what each phase checks). The
//! same suite runs on the embedded log and on NATS JetStream.
//!
//! Needs python3 with `.ci/requirements.txt`, Mosquitto's clients and, for the
//! JetStream run, `TETHER_TEST_NATS_URL`; under `TETHER_TEST_REQUIRE_ALL=1` a missing
//! one fails the test.

use std::hash::BuildHasher as _;
use std::path::Path;
use std::process::Command;

use crate::common::{self, Served};

const TOKEN: &str = "pubsub-e2e-admin-token-0123456789";
/// What push POSTs carry in `Authorization`; the endpoint checks it.
const PUSH_AUTHORIZATION: &str = "Bearer push-token-0123456789";

fn tether() -> Command {
    common::tether_as(TOKEN)
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/pubsub_backend.py")
}

fn ready() -> bool {
    let python = tether_testkit::needs::python_modules(&["google.cloud.pubsub_v1"]);
    tether_testkit::require_ok(
        "python3 with google-cloud-pubsub (.ci/requirements.txt)",
        python,
    )
    .is_some()
        && common::mosquitto_available()
}

/// Runs one phase of the Python backend against `gw`; panics with its output on failure.
fn phase(name: &str, gw: &Served, env: &[(&str, String)]) {
    let out = Command::new("python3")
        .arg(script())
        .arg(name)
        .env("PUBSUB_EMULATOR_HOST", &gw.pubsub)
        .env("MQTT_PORT", gw.mqtt.rsplit(':').next().unwrap_or_default())
        .env("MQTT_CA", &gw.ca)
        .env("MQTT_CLIENT_ID", common::DEV_1)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "phase {name} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn suite(extra: &[&str]) {
    let jetstream = if extra.contains(&"--nats") { "1" } else { "0" };
    let extra = [extra, &["--pubsub-push-authorization", PUSH_AUTHORIZATION]].concat();
    let extra = extra.as_slice();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut gw = common::serve_with(tether(), &data, extra);
    assert!(!gw.pubsub.is_empty(), "no Pub/Sub line in:\n{}", gw.banner);
    // A topic of its own: on a shared JetStream, other tests publish too.
    let topic = format!(
        "projects/acme/topics/pubsub-{:x}",
        std::collections::hash_map::RandomState::new().hash_one(0u8)
    );
    let private = common::create_device(
        tether,
        &gw.url,
        dir.path(),
        &["--event-notification-config", &format!("topic={topic}")],
    );
    let env = [
        ("PUBSUB_TEST_TOPIC", topic),
        (
            "PUBSUB_TEST_STATE",
            dir.path().join("state.json").display().to_string(),
        ),
        ("MQTT_JWT", common::mint_jwt(tether, &private)),
        ("PUSH_AUTHORIZATION", PUSH_AUTHORIZATION.to_owned()),
        ("PUBSUB_TEST_JETSTREAM", jetstream.to_owned()),
    ];
    phase("before", &gw, &env);
    gw.kill9();
    let gw = common::serve_with(tether(), &data, extra);
    phase("after", &gw, &env);
}

#[test]
fn google_pubsub_client_on_the_embedded_log() {
    if ready() {
        suite(&[]);
    }
}

#[test]
fn google_pubsub_client_on_jetstream() {
    let url = tether_testkit::needs::env("TETHER_TEST_NATS_URL");
    let Some(nats) = tether_testkit::require("NATS JetStream (TETHER_TEST_NATS_URL)", url) else {
        return;
    };
    if ready() {
        suite(&["--nats", &nats]);
    }
}

/// `tether pubsub` for operators: topics, subscriptions, publish, pull with ack, and
/// exit codes (1: the server refused, 2: no server).
#[test]
fn the_pubsub_commands_manage_and_read_subscriptions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gw = common::serve(tether(), &dir.path().join("data"));
    common::create_device(
        tether,
        &gw.url,
        dir.path(),
        &[
            "--event-notification-config",
            "topic=projects/acme/topics/telemetry",
        ],
    );
    let pubsub = |args: &[&str]| {
        let mut c = tether();
        c.arg("pubsub")
            .args(args)
            .env("PUBSUB_EMULATOR_HOST", &gw.pubsub);
        c.output().expect("tether runs")
    };
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let out = pubsub(&["topics", "list"]);
    assert!(out.status.success());
    assert_eq!(text(&out).trim(), "projects/acme/topics/telemetry");
    let out = pubsub(&["subscriptions", "create", "ops", "--topic", "telemetry"]);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out).contains(
        "projects/acme/subscriptions/ops  topic projects/acme/topics/telemetry  ack deadline 10 s"
    ));
    let out = pubsub(&[
        "publish",
        "telemetry",
        "--message",
        "hi",
        "--attribute",
        "k=v",
    ]);
    assert_eq!(text(&out).trim(), "messageIds: 0");
    let out = pubsub(&["pull", "ops", "--ack"]);
    assert!(text(&out).contains("  k=v  hi"), "{}", text(&out));
    let out = pubsub(&["pull", "ops"]);
    assert!(out.status.success());
    assert!(text(&out).is_empty(), "acked with --ack: {}", text(&out));

    let out = pubsub(&["pull", "nope"]);
    assert_eq!(out.status.code(), Some(1), "refused by the server");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let out = pubsub(&["topics", "list", "--pubsub", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2), "no server");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the Pub/Sub API"));
}

/// A backend on another host: Google's client over TLS to `--pubsub-tls-addr`, the
/// CA trusted through `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`, the admin token as its
/// bearer token; a wrong or missing token is refused by name.
#[test]
fn google_pubsub_client_over_tls_with_the_admin_token() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let gw = common::serve_with(
        tether(),
        &dir.path().join("data"),
        &["--pubsub-tls-addr", "127.0.0.1:0"],
    );
    let tls = gw
        .banner
        .lines()
        .find_map(|l| l.split("Pub/Sub API over TLS on ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no TLS line in:\n{}", gw.banner))
        .replace("127.0.0.1", "localhost");
    common::create_device(
        tether,
        &gw.url,
        dir.path(),
        &[
            "--event-notification-config",
            "topic=projects/acme/topics/telemetry",
        ],
    );
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/pubsub_tls.py"))
        .env_remove("PUBSUB_EMULATOR_HOST")
        .env("PUBSUB_TLS_ENDPOINT", &tls)
        .env("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", &gw.ca)
        .env("ADMIN_TOKEN", TOKEN)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
