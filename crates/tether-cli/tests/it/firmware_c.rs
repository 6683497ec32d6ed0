//! The C library as firmware uses it: both C examples (`examples/c`), built with gcc
//! at `-Wall -Wextra -Werror` against `libtether_device.a`, connect to a real
//! `tether serve` with libmosquitto, publish telemetry and receive their config:
//! one signs with the library's built-in key, one through a callback that returns
//! DER like a hardware engine.
//!
//! `.ci/run` builds the library first and passes it in `TETHER_DEVICE_C_LIB` (no
//! cargo inside a test); without it the test is skipped locally and fails in CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, create_device, run};

const TOKEN: &str = "firmware-c-admin-token-0123456789";

fn tether() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.env("TETHER_ADMIN_TOKEN", TOKEN)
        .env("TETHER_PROJECT", "acme");
    c
}

/// The static library: the test skips without it, or fails under
/// `TETHER_TEST_REQUIRE_ALL=1` (CI, which builds it first).
fn library() -> Option<PathBuf> {
    let lib = std::env::var_os("TETHER_DEVICE_C_LIB")
        .map(PathBuf::from)
        .filter(|lib| lib.exists());
    let lib = tether_testkit::require(
        "libtether_device.a in $TETHER_DEVICE_C_LIB (.ci/run builds it)",
        lib,
    )?;
    let headers = tether_testkit::needs::file("/usr/include/mosquitto.h");
    tether_testkit::require(
        "libmosquitto's headers (apt-get install libmosquitto-dev)",
        headers,
    )?;
    common::mosquitto_available().then_some(lib)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds one example with the flags the issue asks for; returns the binary.
fn build(lib: &Path, out: &Path, main: &str, parts: &[&str]) -> PathBuf {
    let examples = repo().join("examples/c");
    let bin = out.join(main.trim_end_matches(".c"));
    let mut gcc = Command::new("gcc");
    gcc.args([
        "-std=c99",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
    ])
    .arg("-I")
    .arg(repo().join("crates/tether-device-c/include"))
    .arg("-o")
    .arg(&bin)
    .arg(examples.join(main));
    for p in parts {
        gcc.arg(examples.join(p));
    }
    run(gcc.arg(lib).arg("-lmosquitto"));
    bin
}

#[test]
fn c_examples_connect_publish_and_receive_config() {
    let Some(lib) = library() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let minimal = build(
        &lib,
        dir.path(),
        "minimal_device.c",
        &["device_token.c", "mqtt_device.c"],
    );
    let der = build(
        &lib,
        dir.path(),
        "der_signer_device.c",
        &["der_engine.c", "mqtt_device.c"],
    );

    let gw = common::serve(tether(), &dir.path().join("data"));
    let private = create_device(
        tether,
        &gw.url,
        dir.path(),
        &[
            "--event-notification-config",
            "topic=projects/acme/topics/telemetry",
        ],
    );
    let device = [
        "--device",
        "dev-1",
        "--registry",
        "fleet",
        "--server",
        gw.url.as_str(),
    ];
    let port = gw.mqtt.rsplit(':').next().unwrap_or_default().to_owned();
    let device_run = |bin: &Path| {
        let out = Command::new(bin)
            .args([
                "127.0.0.1",
                &port,
                &gw.ca,
                "acme",
                "us-central1",
                "fleet",
                "dev-1",
            ])
            .arg(&private)
            .output()
            .expect("example runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{}: {text}{}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };

    run(tether()
        .args(["devices", "configs", "update", "--config-data", "fan=1"])
        .args(device));
    let text = device_run(&minimal);
    assert!(
        text.contains("connected") && text.contains("telemetry published"),
        "{text}"
    );
    assert!(text.contains("config: fan=1"), "{text}");
    assert!(text.contains("self-check: TETHER_OK, 0 error(s)"), "{text}");
    // The key printed by the device is exactly the one registered.
    let registered = std::fs::read_to_string(dir.path().join("dev-1.pub.pem")).expect("public key");
    assert!(text.contains("register as ES256_PEM (sha256:"), "{text}");
    assert!(text.contains(&registered), "{text}\n---\n{registered}");

    run(tether()
        .args(["devices", "configs", "update", "--config-data", "fan=2"])
        .args(device));
    let text = device_run(&der);
    assert!(
        text.contains("minted with the DER engine (1 signature)"),
        "{text}"
    );
    assert!(text.contains("config: fan=2"), "{text}");

    let tail = run(tether()
        .args([
            "events",
            "tail",
            "--topic",
            "projects/acme/topics/telemetry",
        ])
        .args(["--server", gw.url.as_str()]));
    let events = String::from_utf8_lossy(&tail.stdout);
    assert_eq!(
        events.matches("dev-1/c  temperature=21.5").count(),
        2,
        "{events}"
    );
}
