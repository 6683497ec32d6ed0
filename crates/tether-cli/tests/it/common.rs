//! Shared by the CLI tests that run `tether serve` as a child process.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

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
pub fn serve_logged(
    mut tether: Command,
    data: &Path,
    extra: &[&str],
    log: Option<&Path>,
) -> Served {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
        None => Stdio::null(),
    };
    let mut child = tether
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--mqtt-addr",
            "127.0.0.1:0",
        ])
        .args(["--https-addr", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("tether serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut url, mut mqtt, mut https, mut ca) = (None, None, None, None);
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
        https =
            https.or_else(|| after(&line, "HTTP device bridge over TLS on ").map(str::to_owned));
        if https.is_some() {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let missing = |what: &str| -> String { panic!("no {what} in the banner:\n{banner}") };
    Served {
        url: url.unwrap_or_else(|| missing("admin URL")),
        mqtt: mqtt.unwrap_or_else(|| missing("MQTT address")),
        https: https.unwrap_or_else(|| missing("HTTPS address")),
        ca: ca.unwrap_or_else(|| missing("CA path")),
        banner: banner.clone(),
        child,
    }
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
