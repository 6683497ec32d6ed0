//! The HTTP device bridge over real sockets with real clients: `curl` on the admin
//! listener (plain HTTP) and on the device HTTPS listener, and a Python `requests`
//! script written the way Google's `cloudiot_http_example.py` was (PyJWT, snake_case
//! `binary_data`, `local_version`). Without `curl` or `python3` + `requests` the
//! tests skip with a notice, or fail under `TETHER_TEST_REQUIRE_ALL=1`.

mod http_support;
mod mqtt_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_support::*;
use mqtt_support::*;
use tether_registry::Store as _;
use tether_registry::names::DeviceRef;
use tether_server::device_http::{bridge_router, serve_https};
use tether_server::listen::http::{self, HttpPolicy};
use tether_server::listen::{Cap, ListenPolicy};
use tether_server::tls::{TlsSource, setup};
use tokio::sync::oneshot;

/// A router served on 127.0.0.1:0 (TLS with `tls`), stopped on drop of the sender.
async fn serve(
    router: Router,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("test set-up");
    let addr = listener.local_addr().expect("test set-up");
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    tokio::spawn(async move {
        let served = match tls {
            Some(tls) => {
                serve_https(
                    listener,
                    tls,
                    router,
                    Cap::new(64),
                    tether_server::listen::DeviceGate::default(),
                    HttpPolicy::default(),
                    shutdown,
                )
                .await
            }
            None => {
                let plain = ListenPolicy {
                    name: "admin",
                    cap: Cap::new(64),
                    tls: None,
                    handshake_timeout: std::time::Duration::from_secs(10),
                    per_ip: None,
                    admission: tether_server::listen::admission::Admission::inline(),
                };
                http::serve(listener, plain, HttpPolicy::default(), router, shutdown).await
            }
        };
        served.expect("test set-up");
    });
    (addr, stop)
}

fn https_config(gw: &Gateway) -> (std::sync::Arc<rustls::ServerConfig>, PathBuf) {
    let tls = setup(
        &TlsSource::Embedded {
            data_dir: gw.dir.path().to_path_buf(),
            host_names: vec!["localhost".into(), "127.0.0.1".into()],
        },
        now_secs(),
    )
    .expect("test set-up");
    (tls.config, tls.ca_path.expect("test set-up"))
}

/// curl: (HTTP status, body).
async fn curl(args: Vec<String>) -> (u16, String) {
    let mut all = vec!["-sS".to_owned(), "-w".into(), "\n%{http_code}".into()];
    all.extend(args);
    let (code, stdout, stderr) = run_tool("curl", all).await;
    assert_eq!(code, Some(0), "curl failed: {stderr}");
    let (body, status) = stdout.rsplit_once('\n').expect("test set-up");
    (status.trim().parse().expect("test set-up"), body.to_owned())
}

fn post_args(url: &str, token: &str, body: &str) -> Vec<String> {
    vec![
        "-X".into(),
        "POST".into(),
        "-H".into(),
        format!("authorization: Bearer {token}"),
        "-H".into(),
        "content-type: application/json".into(),
        "-H".into(),
        "cache-control: no-cache".into(),
        "--data".into(),
        body.into(),
        url.into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_on_the_admin_listener_and_over_https() -> TestResult {
    if !tool_available("curl") {
        return Ok(());
    }
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("curl-1").await?;
    let other = gw.device("curl-2").await?;
    let (http, _stop_http) = serve(app(&gw), None).await;
    let (tls, ca) = https_config(&gw);
    let (https, _stop_https) = serve(bridge_router(bridge(&gw)), Some(tls)).await;

    let body = format!(r#"{{"binaryData":"{}"}}"#, STANDARD.encode(b"from-curl"));
    let publish = |base: &str| format!("{base}/v1/{}:publishEvent", device_name("curl-1"));
    let http_base = format!("http://{http}");
    let https_base = format!("https://localhost:{}", https.port());

    let (status, text) = curl(post_args(&publish(&http_base), &dev.jwt(), &body)).await;
    assert_eq!((status, text.trim()), (200, "{}"));
    let (status, text) = curl(post_args(&publish(&http_base), &other.jwt(), &body)).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("UNAUTHENTICATED"), "{text}");

    let mut args = vec!["--cacert".to_owned(), ca.display().to_string()];
    args.extend(post_args(&publish(&https_base), &dev.jwt(), &body));
    let (status, text) = curl(args).await;
    assert_eq!((status, text.trim()), (200, "{}"));
    gw.wait_records(TELEMETRY_TOPIC, 2).await;

    // The device listener serves only the bridge, never the admin API.
    let admin = format!("{https_base}/v1/{}", device_name("curl-1"));
    let (status, _) = curl(vec![
        "--cacert".into(),
        ca.display().to_string(),
        "-H".into(),
        format!("authorization: Bearer {ADMIN_TOKEN}"),
        admin,
    ])
    .await;
    assert_eq!(status, 404);

    let config = format!(
        "{https_base}/v1/{}/config?local_version=0",
        device_name("curl-1")
    );
    let (status, text) = curl(vec![
        "--cacert".into(),
        ca.display().to_string(),
        "-H".into(),
        format!("authorization: Bearer {}", dev.jwt()),
        config,
    ])
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""version":"1""#), "{text}");
    gw.shutdown().await;
    Ok(())
}

fn python_ready() -> bool {
    let modules = ["requests", "jwt", "cryptography"];
    let ready = tether_testkit::needs::python_modules(&modules);
    tether_testkit::require_ok("python3 with requests, PyJWT and cryptography", ready).is_some()
}

async fn run_python(
    base_url: &str,
    dev: &TestDevice,
    bad: &TestDevice,
    ca: Option<&Path>,
    dir: &Path,
) {
    let key = dir.join(format!("{}.pem", dev.id));
    let bad_key = dir.join(format!("{}-bad.pem", dev.id));
    std::fs::write(&key, dev.private_key_pem()).expect("test set-up");
    std::fs::write(&bad_key, bad.private_key_pem()).expect("test set-up");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/cloudiot_http_example.py");
    let mut command = std::process::Command::new("python3");
    command
        .arg(script)
        .env("TETHER_BASE_URL", base_url)
        .env("TETHER_DEVICE", device_name(&dev.id))
        .env("TETHER_PROJECT", PROJECT)
        .env("TETHER_KEY", &key)
        .env("TETHER_BAD_KEY", &bad_key);
    if let Some(ca) = ca {
        command.env("TETHER_CA", ca);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("test set-up")
        .expect("test set-up");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_like_googles_http_sample() -> TestResult {
    if !python_ready() {
        return Ok(());
    }
    let gw = Gateway::start(|_| {}).await?;
    let a = gw.device("py-http-1").await?;
    let b = gw.device("py-http-2").await?;
    let stranger = gw.device("py-stranger").await?;
    for id in ["py-http-1", "py-http-2"] {
        gw.store
            .modify_config(
                &registry_path(),
                &DeviceRef::Id(id.into()),
                0,
                b"py-config",
                tether_registry::model::Timestamp::from_secs(now_secs()),
            )
            .await?;
    }
    let (http, _stop_http) = serve(app(&gw), None).await;
    let (tls, ca) = https_config(&gw);
    let (https, _stop_https) = serve(bridge_router(bridge(&gw)), Some(tls)).await;

    run_python(
        &format!("http://{http}/v1"),
        &a,
        &stranger,
        None,
        gw.dir.path(),
    )
    .await;
    run_python(
        &format!("https://localhost:{}/v1", https.port()),
        &b,
        &stranger,
        Some(&ca),
        gw.dir.path(),
    )
    .await;
    let records = gw.wait_records(TELEMETRY_TOPIC, 2).await;
    assert!(
        records
            .iter()
            .any(|r| r.message.data == format!("{}/1-payload", device_name("py-http-2")).as_bytes())
    );
    let states = gw
        .store
        .list_states(&registry_path(), &DeviceRef::Id("py-http-1".into()), 10)
        .await?;
    assert_eq!(states[0].binary_data, b"state-from-python");
    gw.shutdown().await;
    Ok(())
}
