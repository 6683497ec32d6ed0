//! A connect flood against `tether serve` while devices publish (issue 11): many
//! source addresses (127.0.0.x), bad and good tokens mixed, and one address that
//! connects faster than `--connect-rate-per-ip`. The connected devices keep every
//! message; the bad tokens are refused with their reason, the good ones connect, and
//! the hot address is cut before any TLS work. How much the flood costs the devices'
//! latency is measured in BENCHMARKS.md (not asserted here: timing is for benchmarks).

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common;

/// `tether simulate` against the server, as a child (so that several run at once).
fn simulate(served: &common::Served, data: &Path, registry: &str, args: &[&str]) -> Child {
    common::tether_bare()
        .arg("simulate")
        .args(["--server", &served.url, "--mqtt", &served.mqtt])
        .arg("--token-file")
        .arg(data.join("admin-token"))
        .arg("--ca")
        .arg(&served.ca)
        .args(["--registry", registry, "--shared-key", "--json", "--quiet"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tether simulate starts")
}

fn report(child: Child) -> Value {
    common::simulate_report(&child.wait_with_output().expect("tether simulate runs"))
}

/// The sum of a counter's samples in `/metrics` whose labels contain `labels`.
fn metric(url: &str, name: &str, labels: &str) -> f64 {
    let text = common::http_get(&format!("{url}/metrics"));
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn devices_keep_publishing_through_a_connect_flood() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let served = common::serve_with(
        common::tether_bare(),
        &data,
        &["--connect-rate-per-ip", "40"],
    );

    // 100 devices publish QoS 1, 5 msg/s each, for 10 s (connecting from 4 addresses,
    // each within its burst).
    let steady = simulate(
        &served,
        &data,
        "steady",
        &[
            "-n",
            "100",
            "--rate",
            "5",
            "--duration",
            "10",
            "--source-ips",
            "127.0.0.50-127.0.0.53",
        ],
    );
    std::thread::sleep(Duration::from_secs(3));
    // Meanwhile: 400 devices with tokens from unregistered keys and 200 with good ones,
    // from 32 addresses at 100 connects/s each run (about 3/s per address, under the
    // per-address limit), and one address connecting as fast as it can.
    let spread = "127.0.0.2-127.0.0.33";
    let bad = simulate(
        &served,
        &data,
        "flood-bad",
        &[
            "-n",
            "400",
            "--ramp",
            "100",
            "--rate",
            "0",
            "--duration",
            "0",
            "--wrong-key",
            "--source-ips",
            spread,
        ],
    );
    let good = simulate(
        &served,
        &data,
        "flood-good",
        &[
            "-n",
            "200",
            "--ramp",
            "100",
            "--rate",
            "0",
            "--duration",
            "0",
            "--source-ips",
            spread,
        ],
    );
    let hot = simulate(
        &served,
        &data,
        "flood-hot",
        &[
            "-n",
            "300",
            "--rate",
            "0",
            "--duration",
            "0",
            "--wrong-key",
            "--source-ips",
            "127.0.0.40",
            "--concurrency",
            "64",
        ],
    );
    let (steady, bad, good, hot) = (report(steady), report(bad), report(good), report(hot));

    assert_eq!(common::count(&steady, "connected"), 100, "{steady:#}");
    // Every message sent is acknowledged (counting the acks that came after the
    // measured window) and stored.
    assert!(common::count(&steady, "sent_total") > 0, "{steady:#}");
    assert_eq!(
        common::count(&steady, "acked_total"),
        common::count(&steady, "sent_total"),
        "every message acknowledged: {steady:#}"
    );
    assert!(
        common::count(&steady, "stored") >= common::count(&steady, "acked_total"),
        "{steady:#}"
    );
    assert_eq!(common::count(&steady, "dropped"), 0, "{steady:#}");

    assert_eq!(common::count(&bad, "connected"), 0, "{bad:#}");
    assert_eq!(
        common::count(&bad, "refused"),
        400,
        "every bad token refused: {bad:#}"
    );
    assert_eq!(
        common::count(&good, "connected"),
        200,
        "every good token connects: {good:#}"
    );

    // The hot address got its burst, then was cut before TLS.
    assert_eq!(common::count(&hot, "connected"), 0, "{hot:#}");
    assert!(
        common::count(&hot, "refused") < 300,
        "the limiter let every attempt through: {hot:#}"
    );
    // Those cut say why, and how a simulated fleet stays under the limit.
    let errors = hot["errors"].to_string();
    assert!(
        errors.contains("closed the connection before the handshake")
            && errors.contains("--connect-rate-per-ip"),
        "the cut connects name the limit: {hot:#}"
    );
    let limited = metric(&served.url, "tether_listener_rate_limited_total", "mqtt");
    assert!(limited > 0.0, "no connection was rate-limited");
    let refused = metric(&served.url, "tether_mqtt_refusals_total", "");
    assert!(
        refused >= 400.0,
        "refusals are counted by reason in /metrics ({refused})"
    );

    // The flood's lookups ran on SQLite threads at the admission threads' priority,
    // while the devices' store kept all of its threads at normal priority.
    #[cfg(target_os = "linux")]
    {
        let nices: Vec<i64> =
            tether_testkit::threads::thread_nices(Some(served.child.id()), "sqlx-sqlite")
                .into_iter()
                .map(|(_, nice)| nice)
                .collect();
        let normal = nices.iter().filter(|n| **n == 0).count();
        let low = nices.iter().filter(|n| **n == 19).count();
        // Eight connections each; other users of the file (the Pub/Sub catalog) have
        // their own, at normal priority.
        assert!(
            low == 8 && normal >= 8 && low + normal == nices.len(),
            "SQLite threads' nice values: {nices:?}"
        );
    }
}
