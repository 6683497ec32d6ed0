//! The web console in a real headless Chromium, driven by Playwright
//! (tests/console/e2e.mjs) against a running `tether serve`: log in, create a registry
//! and devices, see a device go online, telemetry arrive live, a config acknowledged, a
//! wrong-key refusal and the debugger's padding warning; `<script>` in metadata and
//! payloads stays text. Needs node, Debian's `chromium`, `npm ci` in tests/console and
//! Mosquitto's clients (`.ci/run` installs them).
//!
//! `TETHER_CONSOLE_SHOTS=docs/console` refreshes the screenshots in docs/console.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

const TOKEN: &str = "console-e2e-admin-token";

fn tether() -> Command {
    common::tether_as(TOKEN)
}

fn chromium() -> Option<PathBuf> {
    std::env::var_os("TETHER_TEST_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| tether_testkit::needs::tool("chromium"))
}

#[test]
fn the_console_in_a_real_browser() {
    let dir_js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let ready = if tether_testkit::needs::tool("node").is_none() {
        Err("node is not installed".to_string())
    } else if chromium().is_none() {
        Err("chromium is not installed (apt-get install chromium)".to_string())
    } else if !dir_js.join("node_modules/playwright-core").is_dir() {
        Err(format!(
            "playwright-core is not installed: run `npm ci` in {}",
            dir_js.display()
        ))
    } else {
        Ok(())
    };
    let Some(()) = tether_testkit::require_ok("the console's browser test", ready) else {
        return;
    };
    if !common::mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let served = common::serve(tether(), &dir.path().join("data"));
    // The devices' key, and another one for the wrong-key device.
    for name in ["device", "other"] {
        common::run(
            tether()
                .args(["keys", "gen", "--alg", "es256", "--out"])
                .arg(dir.path().join(name)),
        );
    }
    let public_key =
        std::fs::read_to_string(dir.path().join("device.pub.pem")).expect("public key");
    let jwt = common::mint_jwt(tether, &dir.path().join("device.key.pem"));
    let other = common::mint_jwt(tether, &dir.path().join("other.key.pem"));
    let shots = std::env::var_os("TETHER_CONSOLE_SHOTS")
        .map(|d| {
            // Relative to the workspace, where the docs are.
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(d)
        })
        .unwrap_or_else(|| dir.path().join("shots"));
    let out = Command::new("node")
        .arg("e2e.mjs")
        .current_dir(&dir_js)
        .env("TETHER_URL", &served.url)
        .env("TETHER_TOKEN", TOKEN)
        .env("TETHER_MQTT", &served.mqtt)
        .env("TETHER_CA", &served.ca)
        .env("TETHER_PUBLIC_KEY", public_key)
        .env(
            "TETHER_OTHER_PUBLIC_KEY",
            std::fs::read_to_string(dir.path().join("other.pub.pem")).expect("public key"),
        )
        .env("TETHER_JWT", &jwt)
        .env("TETHER_JWT_OTHER", &other)
        .env("TETHER_SHOTS", &shots)
        .env("TETHER_CHROMIUM", chromium().unwrap_or_default())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the console's browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("console e2e: all passed"), "{stdout}");
    for page in ["registry", "device", "telemetry", "fleet", "debugger"] {
        assert!(
            shots.join(format!("{page}.png")).is_file(),
            "no screenshot of {page}"
        );
    }
}
