//! `tether simulate` end to end: a `tether serve` child on random ports, and a private
//! Mosquitto broker on a free port (skipped when `mosquitto` is not installed, a
//! failure under `TETHER_TEST_REQUIRE_ALL=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use common::Served;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{self, count as n};

/// A child process (the private Mosquitto broker) killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tether() -> Command {
    common::tether_bare()
}

/// `tether serve` on random ports; returns it, the admin URL and the MQTT address.
fn serve(data: &Path) -> (Served, String, String) {
    let served = common::serve(tether(), data);
    let (url, mqtt) = (served.url.clone(), served.mqtt.clone());
    (served, url, mqtt)
}

fn simulate(args: &[&str]) -> Value {
    let out = tether()
        .arg("simulate")
        .args(args)
        .args(["--json", "--quiet"])
        .output()
        .expect("tether simulate runs");
    common::simulate_report(&out)
}

fn tether_args<'a>(url: &'a str, mqtt: &'a str, token: &'a str, ca: &'a str) -> Vec<&'a str> {
    vec![
        "--server",
        url,
        "--token-file",
        token,
        "--mqtt",
        mqtt,
        "--ca",
        ca,
        "-n",
        "20",
        "--duration",
        "2",
        "--rate",
        "5",
    ]
}

#[test]
fn simulate_against_tether_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url, mqtt) = serve(dir.path());
    let token = dir.path().join("admin-token");
    let ca = dir.path().join("ca.pem");
    let (token, ca) = (token.to_str().unwrap(), ca.to_str().unwrap());
    let pid = server.child.id().to_string();

    let mut args = tether_args(&url, &mqtt, token, ca);
    args.extend(["--server-pid", pid.as_str()]);
    let report = simulate(&args);
    assert_eq!(n(&report, "connected"), 20, "{report:#}");
    assert_eq!(n(&report, "refused"), 0, "{report:#}");
    assert!(n(&report, "acked") > 0, "{report:#}");
    assert!(report["messages_per_sec"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(report["puback_latency"]["p99_us"].as_u64().is_some());
    assert!(n(&report, "server_rss_idle") > 0, "{report:#}");
    // Every acknowledged message is in the log, and its latency was read back.
    assert!(n(&report, "stored") >= n(&report, "acked"), "{report:#}");
    assert!(
        report["e2e_latency"]["count"].as_u64().unwrap_or(0) > 0,
        "{report:#}"
    );

    // Reusing the registry and devices works; tokens from unregistered keys are refused.
    let mut args = tether_args(&url, &mqtt, token, ca);
    args.extend(["--wrong-key", "--shared-key"]);
    let report = simulate(&args);
    assert_eq!(n(&report, "connected"), 0, "{report:#}");
    assert_eq!(n(&report, "refused"), 20, "{report:#}");

    // The fleet on MQTT 5: every device re-authenticates once with AUTH, and the
    // server's CPU for it is reported beside a connect's.
    let mut args = tether_args(&url, &mqtt, token, ca);
    args.extend(["--mqtt5", "--reauth", "--server-pid", pid.as_str()]);
    let report = simulate(&args);
    assert_eq!(n(&report, "connected"), 20, "{report:#}");
    assert!(n(&report, "acked") > 0, "{report:#}");
    assert_eq!(n(&report["reauth"], "done"), 20, "{report:#}");
    assert!(
        report["reauth"]["server_cpu_per_reauth_us"]
            .as_f64()
            .is_some(),
        "{report:#}"
    );
}

/// `--key-file` keeps one key across runs, and `--existing` then connects to the
/// devices an earlier run made without touching the admin API: a run with a wrong
/// admin token still connects every device. A registry that does not exist is
/// refused by the server, not created.
#[test]
fn simulate_reuses_a_fleet_with_its_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url, mqtt) = serve(dir.path());
    let token = dir.path().join("admin-token");
    let ca = dir.path().join("ca.pem");
    let key = dir.path().join("fleet.key");
    let (token, ca, key) = (
        token.to_str().unwrap(),
        ca.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    let mut args = tether_args(&url, &mqtt, token, ca);
    args.extend(["--key-file", key]);
    let report = simulate(&args);
    assert_eq!(n(&report, "connected"), 20, "{report:#}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the owner's only");
    }

    let wrong_token = dir.path().join("not-the-admin-token");
    std::fs::write(&wrong_token, "not-the-admin-token-at-all").unwrap();
    let mut args = tether_args(&url, &mqtt, wrong_token.to_str().unwrap(), ca);
    args.extend(["--key-file", key, "--existing"]);
    let report = simulate(&args);
    assert_eq!(n(&report, "connected"), 20, "{report:#}");
    assert!(n(&report, "acked") > 0, "{report:#}");

    let mut args = tether_args(&url, &mqtt, token, ca);
    args.extend(["--key-file", key, "--existing", "--registry", "never-made"]);
    let report = simulate(&args);
    assert_eq!(n(&report, "connected"), 0, "{report:#}");
    assert_eq!(n(&report, "refused"), 20, "{report:#}");

    // A key file that holds no key is refused by name, before any connection; so is
    // one that holds only a public key.
    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "not a key").unwrap();
    let public = dir.path().join("public.pem");
    let private = tether_keys::generate::generate(tether_keys::generate::KeySpec::Es256).unwrap();
    let spki = private.public_key().spki_der();
    std::fs::write(&public, tether_keys::convert::pem_text("PUBLIC KEY", spki)).unwrap();
    for (file, expected) in [
        (&garbage, "cannot read the key in"),
        (&public, "holds no private key"),
    ] {
        let mut args = tether_args(&url, &mqtt, token, ca);
        args.extend(["--key-file", file.to_str().unwrap(), "--existing"]);
        let out = tether().arg("simulate").args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    }
}

/// With `--nats` the end-to-end latency is read back from JetStream through the same
/// API, and `tether events tail --last K` shows K messages although the stream's
/// offsets have gaps. The registry (so the topic) is new each run: the server's
/// stream is shared with earlier runs and other tests.
#[test]
fn simulate_and_events_against_tether_on_nats() {
    let Some(nats) = tether_testkit::require(
        "NATS JetStream (TETHER_TEST_NATS_URL)",
        tether_testkit::needs::env("TETHER_TEST_NATS_URL"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let served = common::serve_with(tether(), &dir.path().join("data"), &["--nats", &nats]);
    let token = dir.path().join("data").join("admin-token");
    let (token, ca) = (token.to_str().unwrap(), served.ca.as_str());
    let registry = format!("nats{}", std::process::id());
    let mut args = tether_args(&served.url, &served.mqtt, token, ca);
    args.extend(["--registry", registry.as_str()]);
    let report = simulate(&args);
    assert_eq!(n(&report, "connected"), 20, "{report:#}");
    assert!(n(&report, "acked") > 0, "{report:#}");
    assert!(n(&report, "stored") >= n(&report, "acked"), "{report:#}");
    assert!(
        report["e2e_latency"]["count"].as_u64().unwrap_or(0) > 0,
        "{report:#}"
    );

    let topic = format!("projects/tether-sim/topics/{registry}-telemetry");
    let out = tether()
        .args(["events", "tail", "--topic", &topic, "--last", "7"])
        .args(["--server", &served.url, "--token-file", token])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.lines().count(), 7, "{text}");
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn mosquitto() -> Option<PathBuf> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn simulate_against_mosquitto() {
    let Some(bin) = tether_testkit::require(
        "the Mosquitto broker (apt-get install mosquitto)",
        mosquitto(),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Reuse tether's embedded CA and server certificate for the broker's TLS listener.
    let data = dir.path().join("data");
    let (server, _, _) = serve(&data);
    drop(server);
    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\nuser root\n\
             certfile {0}/server.pem\nkeyfile {0}/server.key\n",
            data.display()
        ),
    )
    .unwrap();
    let _broker = Proc(
        Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let target = format!("mqtts://127.0.0.1:{port}");
    let ca = data.join("ca.pem");
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "mosquitto did not start");
    let report = simulate(&[
        "--target",
        &target,
        "--ca",
        ca.to_str().unwrap(),
        "-n",
        "20",
        "--duration",
        "2",
        "--rate",
        "5",
        "--e2e",
    ]);
    assert_eq!(n(&report, "connected"), 20, "{report:#}");
    assert_eq!(n(&report, "refused"), 0, "{report:#}");
    assert!(n(&report, "acked") > 0, "{report:#}");
    assert!(
        report["e2e_latency"]["count"].as_u64().unwrap_or(0) > 0,
        "{report:#}"
    );
}
