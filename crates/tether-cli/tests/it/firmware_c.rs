//! The C library as firmware uses it: both C examples (`examples/c`), built with gcc
//! at `-Wall -Wextra -Werror` against `libtether_device.a`, connect to a real
//! `tether serve` with libmosquitto, publish telemetry and receive their config:
//! one signs with the library's built-in key, one through a callback that returns
//! DER like a hardware engine.
//!
//! A C program also writes a first-boot provisioning request with the library
//! (`tether_provision_request`), and the request is checked as the server reads it.
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

/// The static library alone: the test skips without it, or fails under
/// `TETHER_TEST_REQUIRE_ALL=1` (CI, which builds it first).
fn static_library() -> Option<PathBuf> {
    let lib = std::env::var_os("TETHER_DEVICE_C_LIB")
        .map(PathBuf::from)
        .filter(|lib| lib.exists());
    tether_testkit::require(
        "libtether_device.a in $TETHER_DEVICE_C_LIB (.ci/run builds it)",
        lib,
    )
}

/// The static library and libmosquitto, for the examples that connect.
fn library() -> Option<PathBuf> {
    let lib = static_library()?;
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

/// First boot as C firmware does it: the engine's key (here the library's software
/// signer, its public half as the 65 bytes `04‖x‖y` an engine returns), the size
/// asked for first, then the request written into a buffer of exactly that size.
const PROVISION_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include "tether_device.h"

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    static uint8_t pem[4096];
    FILE *f = fopen(argv[1], "rb");
    if (!f) return 2;
    size_t pem_len = fread(pem, 1, sizeof pem, f);
    fclose(f);
    uint64_t iat = strtoull(argv[3], NULL, 10);

    tether_p256_key key;
    tether_signer signer;
    uint8_t point[65];
    size_t point_len;
    tether_status st = tether_p256_key_init(&key, pem, pem_len);
    if (st == TETHER_OK) st = tether_p256_key_signer(&key, &signer);
    if (st == TETHER_OK)
        st = tether_public_key_convert(pem, pem_len, TETHER_KEY_RAW_UNCOMPRESSED, point,
                                       sizeof point, &point_len);
    if (st != TETHER_OK) {
        printf("key: %s\n", tether_status_name(st));
        return 1;
    }

    char small[16];
    size_t needed = 0;
    st = tether_provision_request(&signer, "acme", argv[2], point, point_len, iat,
                                  iat + 600, small, sizeof small, &needed);
    printf("small buffer: %s, needed %zu\n", tether_status_name(st), needed);
    if (st != TETHER_ERR_BUFFER_TOO_SMALL || needed > TETHER_PROVISION_REQUEST_MAX_LEN)
        return 1;

    static char request[TETHER_PROVISION_REQUEST_MAX_LEN];
    size_t len = 0;
    st = tether_provision_request(&signer, "acme", argv[2], point, point_len, iat,
                                  iat + 600, request, needed, &len);
    printf("exact buffer: %s, length %zu\n", tether_status_name(st), len);
    if (st != TETHER_OK) return 1;
    printf("request: %s\n", request);

    st = tether_provision_request(&signer, "acme", "1-starts-with-a-digit", point,
                                  point_len, iat, iat + 600, request, sizeof request, &len);
    printf("bad device id: %s\n", tether_status_name(st));
    st = tether_provision_request(&signer, "acme", argv[2], point, 63, iat, iat + 600,
                                  request, sizeof request, &len);
    printf("63-byte key: %s\n", tether_status_name(st));
    st = tether_provision_request(&signer, "acme", argv[2], point, point_len, iat, iat,
                                  request, sizeof request, &len);
    printf("exp = iat: %s\n", tether_status_name(st));
    return 0;
}
"#;

#[test]
fn c_provision_request_carries_the_raw_key_and_a_proof_by_it() {
    use base64::Engine as _;

    let Some(lib) = static_library() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("provision.c");
    std::fs::write(&source, PROVISION_C).expect("C source");
    let bin = dir.path().join("provision");
    run(Command::new("gcc")
        .args([
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
        .arg(&source)
        .arg(&lib));

    // The device's new key, as `tether keys gen` makes it.
    let stem = dir.path().join("sensor-0a1b2c3d");
    run(tether()
        .args(["keys", "gen", "--alg", "es256", "--out"])
        .arg(&stem));
    let private = dir.path().join("sensor-0a1b2c3d.key.pem");
    let public = tether_keys::parse(&std::fs::read(&private).expect("key"))
        .expect("parses")
        .public_key()
        .expect("has a public key");
    let spki = public.spki_der();
    let x_y = &spki[spki.len() - 64..];

    let iat: u64 = 1_790_000_000;
    let out = run(Command::new(&bin)
        .arg(&private)
        .arg("sensor-0a1b2c3d")
        .arg(iat.to_string()));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' in:\n{text}"))
            .to_owned()
    };
    let request = line("request: ");
    assert_eq!(
        line("small buffer: "),
        format!("TETHER_ERR_BUFFER_TOO_SMALL, needed {}", request.len() + 1),
        "the size asked for is exact"
    );
    assert_eq!(
        line("exact buffer: "),
        format!("TETHER_OK, length {}", request.len())
    );
    assert_eq!(line("bad device id: "), "TETHER_ERR_DEVICE_ID");
    assert_eq!(line("63-byte key: "), "TETHER_ERR_KEY_FORMAT");
    assert_eq!(line("exp = iat: "), "TETHER_ERR_LIFETIME");

    // The body the server reads: the key as standard base64 of x‖y, and a proof by it.
    let body: serde_json::Value = serde_json::from_str(&request).expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({
            "publicKey": {
                "format": "ES256_RAW",
                "key": base64::engine::general_purpose::STANDARD.encode(x_y),
            },
            "proof": body["proof"],
        })
    );
    let proof = body["proof"].as_str().expect("proof");
    let submitted = tether_jwt::PublicKey::from_p256_point(x_y).expect("a P-256 point");
    let rules = tether_jwt::Rules::new("acme", iat as i64);
    if let Err(e) = tether_jwt::verify(proof, &rules, &[tether_jwt::Credential::new(submitted)]) {
        panic!("the proof does not verify against the submitted key: {e}\n{proof}");
    }
    let token = tether_jwt::Token::parse(proof).expect("parses");
    assert_eq!(token.claims["sub"], "sensor-0a1b2c3d");
    assert_eq!(token.claims["aud"], "acme");
    assert_eq!(token.claims["exp"], iat + 600);
}
