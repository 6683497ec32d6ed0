//! Google's own Python client (`google-cloud-iot` 2.9.2, REST transport) drives a real
//! server on a random port: create/get/list/patch/delete of registries and devices,
//! config update and list, states list (tests/python/test_google_client.py).
//!
//! Needs `python3` with the packages of `.ci/requirements.txt`. Under
//! `TETHER_TEST_REQUIRE_ALL=1` a missing package fails the test; elsewhere the test is
//! skipped with a notice.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tether_registry::model::{Device, DeviceRegistry, Timestamp};
use tether_registry::names::{RegistryPath, parse_registry};
use tether_server::bridge::hub::Disconnected;
use tether_server::serve::{ServeOptions, bind};

const TOKEN: &str = "google-client-test-token";

fn python_ready() -> Result<(), String> {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import google.cloud.iot_v1, google.oauth2.credentials",
        ])
        .output()
        .map_err(|e| format!("python3 cannot be run: {e}"))?;
    if probe.status.success() {
        Ok(())
    } else {
        Err(format!(
            "python3 lacks google-cloud-iot (pip install -r .ci/requirements.txt): {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ))
    }
}

async fn seed(store: &Arc<dyn tether_registry::Store>) -> RegistryPath {
    let path =
        parse_registry("projects/acme/locations/us-central1/registries/seeded").expect("name");
    store
        .create_registry(&DeviceRegistry {
            path: path.clone(),
            ..DeviceRegistry::default()
        })
        .await
        .expect("registry");
    let device = Device {
        id: "dev-state".into(),
        ..Device::default()
    };
    let created = store
        .create_device(&path, &device, Timestamp::from_secs(1_750_000_000))
        .await
        .expect("device");
    for (i, payload) in [&b"state-1"[..], b"state-2"].into_iter().enumerate() {
        store
            .record_state(
                &path,
                created.num_id,
                payload,
                Timestamp::from_secs(1_750_000_100 + i as i64),
            )
            .await
            .expect("state");
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_python_client_works_against_tether() {
    if tether_testkit::require_ok("Google's Python client", python_ready()).is_none() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let server = bind(ServeOptions {
        data_dir: Some(data.path().to_path_buf()),
        http_addr: Some("127.0.0.1:0".parse().expect("addr")),
        admin_token: Some(TOKEN.into()),
        ..ServeOptions::default()
    })
    .await
    .expect("server starts");
    seed(&server.store()).await;
    let endpoint = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running =
        tokio::spawn(
            server.run(Arc::new(Disconnected), axum::Router::new(), None, async {
                let _ = stopped.await;
            }),
        );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_google_client.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("TETHER_ENDPOINT", endpoint)
            .env("TETHER_TOKEN", TOKEN)
            .output()
    })
    .await
    .expect("join")
    .expect("python3 runs");
    let _ = stop.send(());
    running.await.expect("join").expect("server stops cleanly");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Google's client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
