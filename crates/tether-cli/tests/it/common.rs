//! Shared by the CLI tests that run `tether serve` as a child process: starting (and
//! killing and restarting) it, creating devices, and devices as rumqttc clients.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::time::Instant;

/// A running `tether serve` and what its start-up banner said. Killed on drop.
#[derive(Debug)]
pub struct Served {
    pub child: Child,
    /// `http://127.0.0.1:PORT` of the admin API.
    pub url: String,
    /// `127.0.0.1:PORT` of the MQTT-over-TLS listener.
    pub mqtt: String,
    /// `127.0.0.1:PORT` of the HTTPS device bridge.
    pub https: String,
    /// The CA devices must trust.
    pub ca: String,
    /// `127.0.0.1:PORT` of the Pub/Sub API (gRPC).
    pub pubsub: String,
    /// `127.0.0.1:PORT` of the gRPC listener (Device Manager over TLS).
    pub grpc: String,
    /// Every banner line.
    pub banner: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.split(marker)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
}

/// Starts `tether serve` with every listener on a free loopback port and `data` as its
/// data directory, reads the banner (it ends with the HTTPS bridge line) and keeps
/// draining stdout so the server never blocks on a full pipe.
pub fn serve(tether: Command, data: &Path) -> Served {
    serve_with(tether, data, &[])
}

/// [`serve`] with more flags.
pub fn serve_with(tether: Command, data: &Path, extra: &[&str]) -> Served {
    serve_logged(tether, data, extra, None)
}

/// [`serve_with`], writing the server's log (its stderr) to `log` when given.
pub fn serve_logged(tether: Command, data: &Path, extra: &[&str], log: Option<&Path>) -> Served {
    let any = Listen {
        http: "127.0.0.1:0",
        mqtt: "127.0.0.1:0",
        https: "127.0.0.1:0",
        pubsub: "127.0.0.1:0",
        grpc: "127.0.0.1:0",
    };
    start(tether, data, &any, extra, log).unwrap_or_else(|banner| panic!("{banner}"))
}

/// The addresses `tether serve` listens on.
#[derive(Debug, Clone, Copy)]
struct Listen<'a> {
    http: &'a str,
    mqtt: &'a str,
    https: &'a str,
    pubsub: &'a str,
    grpc: &'a str,
}

/// Starts `tether serve` on `listen`; `Err` carries the banner when it lacks an
/// address (the server exited, e.g. because a port was taken).
fn start(
    mut tether: Command,
    data: &Path,
    listen: &Listen<'_>,
    extra: &[&str],
    log: Option<&Path>,
) -> Result<Served, String> {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
        None => Stdio::null(),
    };
    let mut child = tether
        .args(["serve", "--http-addr", listen.http])
        .args(["--mqtt-addr", listen.mqtt])
        .args(["--pubsub-addr", listen.pubsub])
        .args(["--grpc-addr", listen.grpc])
        .args(["--https-addr", listen.https, "--data-dir"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("tether serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut url, mut mqtt, mut https, mut ca, mut pubsub) = (None, None, None, None, None);
    let mut grpc = None;
    let mut banner = String::new();
    for line in lines.by_ref().take(30) {
        let line = line.expect("banner line");
        banner.push_str(&line);
        banner.push('\n');
        url = url.or_else(|| after(&line, "admin API on ").map(str::to_owned));
        mqtt = mqtt.or_else(|| after(&line, "MQTT over TLS on ").map(str::to_owned));
        ca = ca.or_else(|| {
            line.split("devices must trust the CA in ")
                .nth(1)
                .map(str::to_owned)
        });
        pubsub = pubsub.or_else(|| {
            after(&line, "Pub/Sub API (gRPC, plaintext) on ")
                .map(|a| a.trim_end_matches(':').to_owned())
        });
        if line.contains("Device Manager API over gRPC") {
            grpc = grpc.or_else(|| after(&line, " on ").map(str::to_owned));
        }
        https =
            https.or_else(|| after(&line, "HTTP device bridge over TLS on ").map(str::to_owned));
        if https.is_some() {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let (Some(url), Some(mqtt), Some(https), Some(ca)) = (url, mqtt, https, ca) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("an address is missing from the banner:\n{banner}"));
    };
    Ok(Served {
        url,
        mqtt,
        https,
        ca,
        pubsub: pubsub.unwrap_or_default(),
        grpc: grpc.unwrap_or_default(),
        banner,
        child,
    })
}

impl Served {
    /// Kills the server with SIGKILL (nothing is flushed or shut down) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts `tether serve` again on `data` and on this server's ports (on free ones
    /// when one was taken meanwhile), after [`Served::kill9`].
    pub fn restart(&self, tether: impl Fn() -> Command, data: &Path) -> Served {
        let same = Listen {
            http: self.url.trim_start_matches("http://"),
            mqtt: &self.mqtt,
            https: &self.https,
            pubsub: if self.pubsub.is_empty() {
                "127.0.0.1:0"
            } else {
                &self.pubsub
            },
            grpc: if self.grpc.is_empty() {
                "127.0.0.1:0"
            } else {
                &self.grpc
            },
        };
        start(tether(), data, &same, &[], None).unwrap_or_else(|_| serve(tether(), data))
    }
}

/// A `tether` command for project `acme` with the admin token `token`, blind to the
/// NATS and database settings of the environment it runs in.
pub fn tether_as(token: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.env("TETHER_ADMIN_TOKEN", token)
        .env("TETHER_PROJECT", "acme")
        .env_remove("TETHER_CLUSTER_NATS")
        .env_remove("TETHER_NATS")
        .env_remove("TETHER_DATABASE");
    c
}

/// Runs the command `make` builds until it succeeds (e.g. `devices commands send`,
/// FAILED_PRECONDITION until the device's subscription is in place); panics with
/// `what` after 10 s.
pub fn retry_until_ok(mut make: impl FnMut() -> Command, what: &str) {
    for _ in 0..100 {
        if make().output().is_ok_and(|out| out.status.success()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{what}");
}

/// Runs `cmd` and expects success; the output.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether Mosquitto's clients are installed; without them the test skips, or fails
/// under `TETHER_TEST_REQUIRE_ALL=1` (CI).
pub fn mosquitto_available() -> bool {
    let found = tether_testkit::needs::tool("mosquitto_sub");
    tether_testkit::require("mosquitto_sub (apt-get install mosquitto-clients)", found).is_some()
}

/// The client id of device `dev-1` in registry `fleet` of project `acme`.
pub const DEV_1: &str = "projects/acme/locations/us-central1/registries/fleet/devices/dev-1";

/// Through the admin API at `server`: registry `fleet` (created with
/// `registry_args`) and device `dev-1` with a fresh ES256 key written to `dir`.
/// `tether` makes a command carrying the admin token and project `acme`. Returns the
/// private key's path.
pub fn create_device(
    tether: impl Fn() -> Command,
    server: &str,
    dir: &Path,
    registry_args: &[&str],
) -> PathBuf {
    let server = ["--server", server];
    run(tether()
        .args(["registries", "create", "fleet"])
        .args(registry_args)
        .args(server));
    let key = dir.join("dev-1");
    run(tether()
        .args(["keys", "gen", "--alg", "es256", "--out"])
        .arg(&key));
    let public = format!("path={}.pub.pem", key.display());
    run(tether()
        .args(["devices", "create", "dev-1", "--registry", "fleet"])
        .args(["--public-key", &public])
        .args(server));
    dir.join("dev-1.key.pem")
}

/// A device JWT for project `acme`, signed with `key`.
pub fn mint_jwt(tether: impl Fn() -> Command, key: &Path) -> String {
    let out = run(tether()
        .args(["jwt", "mint", "--project", "acme", "--key"])
        .arg(key));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Device `dev-1` subscribes to its config and commands on `device_node` with
/// Mosquitto's own client; a command (`reboot`) and then the config `config` are sent
/// through the admin API at `api`. Returns what the device printed (`topic payload`
/// lines): the first config, the command and the new config.
pub fn command_and_config_reach_device(
    tether: impl Fn() -> Command,
    device_node: &Served,
    api: &str,
    jwt: &str,
    config: &str,
) -> String {
    let port = device_node.mqtt.rsplit(':').next().unwrap_or_default();
    let listener = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", port, "--cafile", &device_node.ca])
        .args(["-i", DEV_1, "-u", "unused", "-P", jwt])
        .args(["-q", "1", "-v", "-C", "3", "-W", "30"])
        .args([
            "-t",
            "/devices/dev-1/config",
            "-t",
            "/devices/dev-1/commands/#",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs");
    let device = ["--device", "dev-1", "--registry", "fleet", "--server", api];
    // FAILED_PRECONDITION until the subscription is in place.
    retry_until_ok(
        || {
            let mut c = tether();
            c.args(["devices", "commands", "send", "--command-data", "reboot"])
                .args(device);
            c
        },
        "the command never reached the device",
    );
    run(tether()
        .args(["devices", "configs", "update", "--config-data", config])
        .args(device));
    let got = listener.wait_with_output().expect("mosquitto_sub exits");
    String::from_utf8_lossy(&got.stdout).into_owned()
}

/// The client id of `device` in registry `fleet` of project `acme`.
pub fn client_id(device: &str) -> String {
    format!("projects/acme/locations/us-central1/registries/fleet/devices/{device}")
}

/// Through the admin API at `server`: registry `fleet` (created with `registry_args`)
/// and devices `ids` sharing one ES256 key written to `dir`. `tether` makes a command
/// carrying the admin token and project `acme`. Returns a JWT for them.
pub fn fleet(
    tether: impl Fn() -> Command,
    server: &str,
    dir: &Path,
    ids: &[String],
    registry_args: &[&str],
) -> String {
    let api = ["--server", server];
    run(tether()
        .args(["registries", "create", "fleet"])
        .args(registry_args)
        .args(api));
    let key = dir.join("fleet-key");
    run(tether()
        .args(["keys", "gen", "--alg", "es256", "--out"])
        .arg(&key));
    let public = format!("path={}.pub.pem", key.display());
    for id in ids {
        run(tether()
            .args(["devices", "create", id, "--registry", "fleet"])
            .args(["--public-key", &public])
            .args(api));
    }
    mint_jwt(tether, &dir.join("fleet-key.key.pem"))
}

/// A rustls client configuration (ring) trusting the CA in the PEM file `ca`.
pub fn tls(ca: &str) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA certificate")).expect("CA added");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// rumqttc options for `device` of registry `fleet` on the MQTT-over-TLS listener
/// `mqtt` (`127.0.0.1:PORT`) whose CA is in `ca`.
pub fn mqtt_options(mqtt: &str, ca: &str, device: &str, jwt: &str) -> MqttOptions {
    let port = mqtt
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("MQTT port");
    let mut o = MqttOptions::new(client_id(device), "localhost", port);
    o.set_credentials("unused", jwt);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(tls(ca)),
    ));
    o
}

/// Polls until CONNACK (true) or failure; gives up after 5 s.
pub async fn connected(events: &mut EventLoop) -> bool {
    let wait = async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    return ack.code == rumqttc::ConnectReturnCode::Success;
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or(false)
}

/// What one simulated device saw of its own QoS 1 messages.
#[derive(Debug, Default)]
pub struct Acked {
    /// The payloads acknowledged, in order.
    pub payloads: Vec<String>,
    /// When each was acknowledged.
    pub times: Vec<Instant>,
    /// The payload sent (perhaps more than once) and not acknowledged yet.
    pub waiting: Option<String>,
}

/// Locks `m`, ignoring poisoning (a failed assertion elsewhere already reports).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a simulated device publishes: `{id}:{n}` on `topic` with QoS 1, one message at
/// a time, pausing `pace` after each PUBACK.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// The device id.
    pub id: String,
    /// `/devices/{id}/events` or `/devices/{id}/state`.
    pub topic: String,
    /// The pause after each PUBACK.
    pub pace: Duration,
}

/// Runs `publisher` until `stop`, connecting with the options `connect` gives: asked
/// again for each connection (the server may move), `None` while the device must not
/// connect. It waits up to 7 s for each PUBACK; on any failure it reconnects and sends
/// the same message again, as firmware does.
pub async fn publish_loop(
    publisher: Publisher,
    connect: impl Fn() -> Option<MqttOptions>,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        let Some(options) = connect() else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (client, mut events) = AsyncClient::new(options, 10);
        if !connected(&mut events).await {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        loop {
            if stop.load(Ordering::Acquire) {
                return;
            }
            let payload = format!("{}:{n}", publisher.id);
            lock(&acked).waiting = Some(payload.clone());
            if client
                .publish(&publisher.topic, QoS::AtLeastOnce, false, payload.clone())
                .await
                .is_err()
            {
                break;
            }
            let acked_now = tokio::time::timeout(Duration::from_secs(7), async {
                loop {
                    match events.poll().await {
                        Ok(Event::Incoming(Packet::PubAck(_))) => return true,
                        Ok(_) => {}
                        Err(_) => return false,
                    }
                }
            })
            .await
            .unwrap_or(false);
            if !acked_now {
                break;
            }
            {
                let mut a = lock(&acked);
                a.waiting = None;
                a.payloads.push(payload);
                a.times.push(Instant::now());
            }
            n += 1;
            tokio::time::sleep(publisher.pace).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Polls `check` every 200 ms; panics naming `what` when it is still false after
/// `within`.
pub async fn eventually(what: &str, within: Duration, check: impl Fn() -> bool) {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen within {within:?}");
}

/// GET with std only (the test needs no HTTP client dependency for one call).
pub fn http_get(url: &str) -> String {
    use std::io::{Read as _, Write as _};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read");
    body
}

/// A `tether` command blind to the admin token and server settings of the
/// environment it runs in (`tether simulate` is given them as flags).
pub fn tether_bare() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    for var in ["TETHER_ADMIN_TOKEN", "TETHER_SERVER", "TETHER_TOKEN_FILE"] {
        c.env_remove(var);
    }
    c
}

/// The JSON report of a `tether simulate --json` run; panics with its output when
/// it is not JSON.
pub fn simulate_report(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{text}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A count in a simulate report; panics naming the key when it is missing.
pub fn count(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v:#}"))
}
