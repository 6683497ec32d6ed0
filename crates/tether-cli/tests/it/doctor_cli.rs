//! `tether doctor` names the right step, with cause and fix, against an in-process
//! IoT Core-like server (TLS with a test CA) and a tiny fake admin API, and against a
//! real `tether serve` whose admin API supplies the server's own reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use tether_device::{Clock, SystemClock};
use tether_jwt::{Claims, mint};
use tether_keys::PrivateKey;
use tether_keys::generate::{KeySpec, generate};
use tether_testkit::{FakeServer, FakeServerOptions, TestPki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;

const CLIENT_ID: &str = "projects/my-project/locations/us-central1/registries/reg-1/devices/dev-1";

fn now() -> i64 {
    i64::try_from(SystemClock.unix_now()).unwrap()
}

struct Setup {
    server: Arc<FakeServer>,
    dir: tempfile::TempDir,
    key: PrivateKey,
}

impl Setup {
    async fn new() -> Setup {
        let pki = TestPki::new("Tether test CA", &["localhost"], now()).unwrap();
        let server = FakeServer::start(FakeServerOptions {
            tls: Some(pki.server.clone()),
            ..FakeServerOptions::default()
        })
        .await
        .unwrap();
        let key = generate(KeySpec::Es256).unwrap();
        server.register(CLIENT_ID, key.public_key().clone());
        server.set_config("dev-1", b"{\"led\":\"on\"}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
        write_key(&dir.path().join("device.pem"), &key);
        Setup {
            server: Arc::new(server),
            dir,
            key,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The device's own settings, as a firmware engineer would pass them.
    fn args(&self) -> Vec<String> {
        [
            "doctor",
            "--host",
            "localhost",
            "--port",
            &self.server.addr().port().to_string(),
            "--ca",
            &self.path("ca.pem"),
            "--project",
            "my-project",
            "--registry",
            "reg-1",
            "--device",
            "dev-1",
            "--wait-config",
            "3",
            "--timeout",
            "5",
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn token(&self, aud: &str, iat: i64, exp: i64) -> String {
        let signer = self.key.signer().unwrap();
        let mut buf = vec![0u8; 1024];
        let claims = Claims {
            aud,
            iat: u64::try_from(iat).unwrap(),
            exp: u64::try_from(exp).unwrap(),
        };
        let n = mint(&*signer, &claims, &mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }
}

fn write_key(path: &Path, key: &PrivateKey) {
    std::fs::write(
        path,
        tether_keys::convert::pem_text("PRIVATE KEY", &key.pkcs8_der()),
    )
    .unwrap();
}

fn set(args: &mut [String], flag: &str, value: &str) {
    let i = args.iter().position(|a| a == flag).unwrap();
    args[i + 1] = value.to_string();
}

/// Runs the binary off the runtime (the fake server keeps serving meanwhile).
async fn doctor(args: Vec<String>) -> (i32, Value) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(
        |_| json!({ "stdout": stdout, "stderr": String::from_utf8_lossy(&out.stderr) }),
    );
    (code, report)
}

fn failure(report: &Value) -> (&str, String, String) {
    let name = report["first_failure"].as_str().unwrap_or("none");
    let step = report["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name));
    let get = |k: &str| {
        step.and_then(|s| s[k].as_str())
            .unwrap_or_default()
            .to_string()
    };
    (
        name,
        format!("{} | {}", get("summary"), get("cause")),
        get("fix"),
    )
}

fn key_arg(s: &Setup) -> Vec<String> {
    vec!["--key".into(), s.path("device.pem")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_every_step_for_a_good_device() {
    let s = Setup::new().await;
    let mut args = s.args();
    args.extend(key_arg(&s));
    let (code, report) = doctor(args).await;
    assert_eq!(code, 0, "{report:#}");
    let statuses: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pass"; 7], "{report:#}");
    let tls = &report["steps"][2]["details"];
    assert!(tls.to_string().contains("SNI: sent 'localhost'"), "{tls}");
    assert!(s.server.config_acks() >= 1);
    assert!(
        s.server
            .received()
            .iter()
            .any(|r| r.topic == "/devices/dev-1/events/tether-doctor")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_wrong_ca() {
    let s = Setup::new().await;
    let other = TestPki::new("GTS Root R1", &["localhost"], now()).unwrap();
    std::fs::write(s.dir.path().join("other.pem"), &other.ca_pem).unwrap();
    let mut args = s.args();
    set(&mut args, "--ca", &s.path("other.pem"));
    args.extend(key_arg(&s));
    let (code, report) = doctor(args).await;
    assert_eq!(code, 1);
    let (step, cause, fix) = failure(&report);
    assert_eq!(step, "tls", "{report:#}");
    assert!(cause.contains("unknown issuer"), "{cause}");
    assert!(
        cause.contains("CN=Tether test CA"),
        "names the server's CA: {cause}"
    );
    assert!(
        cause.contains("CN=GTS Root R1"),
        "names what --ca holds: {cause}"
    );
    assert!(fix.contains("ca.pem"), "{fix}");
    assert!(
        s.server.connections().is_empty(),
        "no token sent over untrusted TLS"
    );
    assert_eq!(report["steps"][3]["status"], "skip");
}

/// A server that hangs up right after accept (as `tether serve` does past its
/// per-address connect limit) is named as such, with the limit in the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_server_that_hangs_up_before_tls() {
    let s = Setup::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hang_up = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let mut args = s.args();
    set(&mut args, "--port", &port.to_string());
    args.extend(key_arg(&s));
    let (code, report) = doctor(args).await;
    hang_up.abort();
    assert_eq!(code, 1);
    let (step, cause, fix) = failure(&report);
    assert_eq!(step, "tls", "{report:#}");
    assert!(cause.contains("closed the connection"), "{cause}");
    assert!(fix.contains("--connect-rate-per-ip"), "{fix}");
    assert_eq!(
        report["steps"][2]["summary"], "the server hung up before TLS",
        "{report:#}"
    );
}

/// A port that takes MQTT without TLS (Mosquitto's 1883) also hangs up on a
/// ClientHello; the doctor's plain CONNECT gets a CONNACK there, and the step says
/// which port to use instead of blaming a connect limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_port_that_speaks_mqtt_without_tls() {
    let s = Setup::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // A plain MQTT listener in miniature: a CONNECT (0x10) gets a CONNACK that refuses
    // it (not authorized, as Mosquitto without anonymous access); anything else, such
    // as a TLS ClientHello (0x16), is a malformed packet and the connection is closed.
    // It ends once it has answered a CONNECT and the prober has hung up.
    let plain = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut first = [0u8; 1];
            if socket.read_exact(&mut first).await.is_ok() && first[0] == 0x10 {
                let _ = socket.write_all(&[0x20, 0x02, 0x00, 0x05]).await;
                let mut rest = Vec::new();
                let _ = socket.read_to_end(&mut rest).await;
                return true;
            }
        }
        false
    });
    let mut args = s.args();
    set(&mut args, "--port", &port.to_string());
    args.extend(key_arg(&s));
    let (code, report) = doctor(args).await;
    assert_eq!(code, 1);
    let (step, cause, fix) = failure(&report);
    assert_eq!(step, "tls", "{report:#}");
    assert_eq!(
        report["steps"][2]["summary"], "the port speaks MQTT without TLS",
        "{report:#}"
    );
    assert!(cause.contains("got a CONNACK"), "{cause}");
    assert!(fix.contains("8883") && fix.contains("--port"), "{fix}");
    assert!(
        plain.await.unwrap(),
        "a probe that was answered and disconnected"
    );
}

/// A server that takes the TCP connection and never answers TLS (one at its
/// connection cap, whose new connections wait in the kernel's backlog) fails the step
/// within --timeout, instead of holding the doctor forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_server_that_never_answers_tls() {
    let s = Setup::new().await;
    // A backlog that nobody accepts from: the kernel completes the TCP handshake.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut args = s.args();
    set(&mut args, "--port", &port.to_string());
    set(&mut args, "--timeout", "1");
    args.extend(key_arg(&s));
    // Before the fix the doctor waited forever here: give it 30 s, then stop it.
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        for _ in 0..300 {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    drop(silent);
    assert_eq!(out.status.code(), Some(1), "the doctor ends with a finding");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (step, cause, fix) = failure(&report);
    assert_eq!(step, "tls", "{report:#}");
    assert!(cause.contains("no answer to the TLS handshake"), "{cause}");
    assert!(fix.contains("--max-connections"), "{fix}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_wrong_host_name() {
    let s = Setup::new().await;
    let mut args = s.args();
    set(&mut args, "--host", "127.0.0.1");
    args.extend(key_arg(&s));
    let (code, report) = doctor(args).await;
    assert_eq!(code, 1);
    let (step, cause, fix) = failure(&report);
    assert_eq!(step, "tls", "{report:#}");
    assert!(cause.contains("host name mismatch"), "{cause}");
    assert!(cause.contains("[localhost]"), "{cause}");
    assert!(fix.contains("--host localhost"), "{fix}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_an_expired_token() {
    let s = Setup::new().await;
    let token = s.token("my-project", now() - 7200, now() - 3600);
    let mut args = s.args();
    args.extend(["--token".to_string(), token]);
    let (code, report) = doctor(args).await;
    assert_eq!(code, 1);
    let (step, cause, _) = failure(&report);
    assert_eq!(step, "token", "{report:#}");
    assert!(cause.contains("expired"), "{cause}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_wrong_audience() {
    let s = Setup::new().await;
    let token = s.token("my-project-number-123", now(), now() + 600);
    let mut args = s.args();
    args.extend(["--token".to_string(), token]);
    args.extend(key_arg(&s));
    let (code, report) = doctor(args).await;
    assert_eq!(code, 1);
    let (step, cause, fix) = failure(&report);
    assert_eq!(step, "token", "{report:#}");
    assert!(cause.contains("my-project-number-123"), "{cause}");
    assert!(!fix.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_wrong_registered_key_and_shows_the_servers_reason() {
    let s = Setup::new().await;
    // The device signs with a key the server does not have.
    write_key(
        &s.dir.path().join("other-device.pem"),
        &generate(KeySpec::Es256).unwrap(),
    );
    let admin = fake_admin(s.server.clone()).await;
    let mut args = s.args();
    args.extend([
        "--key".to_string(),
        s.path("other-device.pem"),
        "--admin-url".to_string(),
        admin,
    ]);
    let (code, report) = doctor(args).await;
    assert_eq!(code, 1);
    let (step, cause, fix) = failure(&report);
    assert_eq!(step, "mqtt", "{report:#}");
    assert!(cause.contains("CONNACK 5"), "{cause}");
    assert!(cause.contains("another public key registered"), "{cause}");
    assert!(cause.contains("the server recorded"), "{cause}");
    assert!(
        cause.to_lowercase().contains("signature"),
        "server's reason: {cause}"
    );
    assert!(fix.contains("register"), "{fix}");
    assert!(
        report["server"]["lastErrorStatus"]["message"].is_string(),
        "{report:#}"
    );
    let token = &report["steps"][3];
    assert!(
        token["details"]
            .to_string()
            .contains("from the server's Date"),
        "{token}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_an_unknown_device() {
    let s = Setup::new().await;
    let mut args = s.args();
    set(&mut args, "--device", "dev-9");
    args.extend(key_arg(&s));
    let (code, report) = doctor(args).await;
    assert_eq!(code, 1);
    let (step, cause, fix) = failure(&report);
    assert_eq!(step, "mqtt", "{report:#}");
    assert!(cause.contains("CONNACK 2"), "{cause}");
    assert!(cause.contains("'dev-9'"), "{cause}");
    assert!(fix.contains("create the device"), "{fix}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_server_that_is_down() {
    let s = Setup::new().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = s.args();
    set(&mut args, "--port", &dead.to_string());
    args.extend(key_arg(&s));
    let (code, report) = doctor(args).await;
    assert_eq!(code, 1);
    let (step, cause, _) = failure(&report);
    assert_eq!(step, "tcp", "{report:#}");
    assert!(cause.contains("connection refused"), "{cause}");
    let skipped = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "skip")
        .count();
    assert_eq!(skipped, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_usage_errors_exit_2() {
    let s = Setup::new().await;
    let mut args: Vec<String> = s.args();
    let i = args.iter().position(|a| a == "--ca").unwrap();
    args.drain(i..i + 2);
    args.extend(key_arg(&s));
    let (code, _) = doctor(args).await;
    assert_eq!(code, 2, "--ca is required with TLS");
}

/// A minimal admin API: `/healthz` with a `Date`, and the device with the fake
/// server's last error as Google's `lastErrorStatus`.
async fn fake_admin(server: Arc<FakeServer>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&got);
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body = if path == "/healthz" {
                    json!({"status": "ok"})
                } else if path == format!("/v1/{CLIENT_ID}") {
                    let message = server.last_error(CLIENT_ID).unwrap_or_default();
                    // The fake records a refusal the moment it sends the CONNACK.
                    let at = tether_jwt::time::Utc(now()).to_string();
                    json!({
                        "id": "dev-1",
                        "lastErrorStatus": {"code": 16, "message": message},
                        "lastErrorTime": if message.is_empty() { Value::Null } else { json!(at) },
                        "credentials": [{}],
                    })
                } else {
                    json!({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
                }
                .to_string();
                let date = httpdate::fmt_http_date(
                    UNIX_EPOCH + Duration::from_secs(SystemClock.unix_now()),
                );
                let status = if body.contains("NOT_FOUND") {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nDate: {date}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    url
}

/// `tether` with the admin token and project a real server run needs.
fn tether_cmd(token: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.env("TETHER_ADMIN_TOKEN", token)
        .env("TETHER_PROJECT", "acme");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_against_tether_serve_passes_then_quotes_the_servers_reason() {
    const TOKEN: &str = "doctor-e2e-admin-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let gw = common::serve(tether_cmd(TOKEN), &dir.path().join("data"));
    let tether = || tether_cmd(TOKEN);
    let good = common::create_device(
        tether,
        &gw.url,
        dir.path(),
        &[
            "--event-notification-config",
            "topic=projects/acme/topics/telemetry",
        ],
    );
    common::run(
        tether()
            .args(["devices", "configs", "update", "--config-data", "fan=1"])
            .args([
                "--registry",
                "fleet",
                "--device",
                "dev-1",
                "--server",
                &gw.url,
            ]),
    );
    let port = gw.mqtt.rsplit(':').next().unwrap().to_string();
    let args = |key: &Path| -> Vec<String> {
        let mut a: Vec<String> = [
            "doctor",
            "--host",
            "localhost",
            "--port",
            &port,
            "--ca",
            &gw.ca,
            "--project",
            "acme",
            "--registry",
            "fleet",
            "--device",
            "dev-1",
            "--admin-url",
            &gw.url,
            "--admin-token",
            TOKEN,
            "--wait-config",
            "5",
            "--timeout",
            "10",
            "--json",
            "--key",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(key.display().to_string());
        a
    };

    let (code, report) = doctor(args(&good)).await;
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["first_failure"], Value::Null, "{report:#}");

    // The device flashed with the wrong key: CONNACK 5, and the server's own record
    // (read through the admin API) says which keys it tried.
    let wrong = dir.path().join("wrong.pem");
    write_key(&wrong, &generate(KeySpec::Es256).unwrap());
    let (code, report) = doctor(args(&wrong)).await;
    assert_eq!(code, 1, "{report:#}");
    let (step, cause, fix) = failure(&report);
    assert_eq!(step, "mqtt", "{report:#}");
    assert!(cause.contains("CONNACK 5"), "{cause}");
    let recorded = report["server"]["lastErrorStatus"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        recorded.contains("signature does not verify with the registered key"),
        "the gateway's own reason: {report:#}"
    );
    assert!(cause.contains(recorded), "the cause quotes it: {cause}");
    assert!(fix.contains("register"), "{fix}");

    // With --mqtt5 the refusal itself carries the reason, no admin API needed.
    let mut v5 = args(&wrong);
    let admin = v5.iter().position(|a| a == "--admin-url").unwrap();
    v5.drain(admin..admin + 4);
    v5.push("--mqtt5".into());
    let (code, report) = doctor(v5).await;
    assert_eq!(code, 1, "{report:#}");
    let (step, cause, _) = failure(&report);
    assert_eq!(step, "mqtt", "{report:#}");
    let headline = report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == "mqtt"))
        .map(|s| s["summary"].to_string())
        .unwrap_or_default();
    assert!(headline.contains("0x87"), "{report:#}");
    assert!(
        cause.contains("the server says: ")
            && cause.contains("signature does not verify with the registered key"),
        "{cause}"
    );
}
