//! `tether serve` and the admin commands end to end: a real server on a random port,
//! driven by the `tether registries|devices|gateways` commands.

use common::Served;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;

const KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENxuJLM8nEPdT/SC96SPSF74qVxnA\n1oY9t0KduDT1ohy3Ig/5G1Nj3dCnmklowwSfFMJxUA02ZE4rYHkbZSxYag==\n-----END PUBLIC KEY-----\n";
const KEY2: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3z1P6fAVok0gakXvcul2zUNA7l/j\n1ZYD7vJ+bImn7LI6FXVsxuwE+kH2Y+AMpIn0/1IxZ4msDW80kjWSUErBGg==\n-----END PUBLIC KEY-----\n";

fn tether() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    for var in [
        "TETHER_ADMIN_TOKEN",
        "TETHER_SERVER",
        "TETHER_PROJECT",
        "TETHER_REGION",
        "TETHER_TOKEN_FILE",
        "TETHER_DATABASE",
    ] {
        c.env_remove(var);
    }
    c
}

fn start(data: &Path) -> Served {
    common::serve(tether(), data)
}

struct Cli {
    url: String,
    token_file: PathBuf,
    dir: PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        tether()
            .args(args)
            .args(["--server", &self.url, "--project", "acme", "--token-file"])
            .arg(&self.token_file)
            .current_dir(&self.dir)
            .output()
            .expect("tether runs")
    }

    /// Runs and expects `code`; returns stdout.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(
            out.status.code(),
            Some(code),
            "tether {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        if code != 0 {
            return stderr;
        }
        stdout
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        serde_json::from_str(&self.expect(0, &all)).expect("JSON output")
    }
}

#[test]
fn admin_commands_against_a_running_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let server = start(&data);
    assert!(
        server.banner.contains("new admin token (shown once"),
        "{}",
        server.banner
    );
    let key = tmp.path().join("device.pub.pem");
    std::fs::write(&key, KEY).expect("key");
    let key2 = tmp.path().join("second.pub.pem");
    std::fs::write(&key2, KEY2).expect("key");
    let cli = Cli {
        url: server.url.clone(),
        token_file: data.join("admin-token"),
        dir: tmp.path().to_path_buf(),
    };

    // Registries.
    cli.expect(
        0,
        &[
            "registries",
            "create",
            "fleet",
            "--event-notification-config",
            "topic=events",
            "--enable-mqtt-config",
        ],
    );
    let list = cli.expect(0, &["registries", "list"]);
    assert!(
        list.starts_with("ID ") && list.contains("fleet") && list.contains("MQTT_ENABLED"),
        "{list}"
    );
    let r = cli.json(&["registries", "describe", "fleet"]);
    assert_eq!(
        r["eventNotificationConfigs"][0]["pubsubTopicName"],
        "projects/acme/topics/events"
    );
    let r = cli.json(&[
        "registries",
        "update",
        "fleet",
        "--no-enable-http-config",
        "--log-level",
        "debug",
    ]);
    assert_eq!(
        (
            r["httpConfig"]["httpEnabledState"].as_str(),
            r["logLevel"].as_str()
        ),
        (Some("HTTP_DISABLED"), Some("DEBUG"))
    );
    let err = cli.expect(1, &["registries", "create", "fleet"]);
    assert!(err.contains("ALREADY_EXISTS"), "{err}");

    // Devices.
    let public_key = format!("path={},type=es256", key.display());
    let d = cli.json(&[
        "devices",
        "create",
        "dev-1",
        "--registry",
        "fleet",
        "--public-key",
        &public_key,
        "--metadata",
        "site=north",
    ]);
    assert_eq!(d["config"]["version"], "1");
    assert_eq!(d["credentials"][0]["publicKey"]["format"], "ES256_PEM");
    let wrong_type = format!("path={},type=rs256", key.display());
    let err = cli.expect(
        2,
        &[
            "devices",
            "create",
            "dev-2",
            "--registry",
            "fleet",
            "--public-key",
            &wrong_type,
        ],
    );
    assert!(err.contains("not as RSA_PEM"), "{err}");
    cli.expect(
        0,
        &[
            "devices",
            "create",
            "gw-1",
            "--registry",
            "fleet",
            "--device-type",
            "gateway",
            "--auth-method",
            "association-only",
        ],
    );
    let table = cli.expect(0, &["devices", "list", "--registry", "fleet"]);
    assert!(
        table.contains("dev-1") && table.contains("GATEWAY"),
        "{table}"
    );
    let list = cli.json(&[
        "devices",
        "list",
        "--registry",
        "fleet",
        "--device-type",
        "gateway",
    ]);
    assert_eq!(list.as_array().map(|a| a.len()), Some(1));
    let d = cli.json(&[
        "devices",
        "update",
        "dev-1",
        "--registry",
        "fleet",
        "--metadata",
        "site=south,floor=2",
    ]);
    assert_eq!(d["metadata"]["floor"], "2");
    assert_eq!(
        cli.json(&["devices", "block", "dev-1", "--registry", "fleet"])["blocked"],
        true
    );
    assert_eq!(
        cli.json(&["devices", "unblock", "dev-1", "--registry", "fleet"])
            .get("blocked"),
        None
    );
    let described = cli.expect(0, &["devices", "describe", "dev-1", "--registry", "fleet"]);
    assert!(
        described.contains("id: dev-1") && described.contains("BEGIN PUBLIC KEY"),
        "{described}"
    );

    // Credentials.
    cli.expect(
        0,
        &[
            "devices",
            "credentials",
            "add",
            "--device",
            "dev-1",
            "--registry",
            "fleet",
            "--path",
            key2.to_str().unwrap_or_default(),
            "--expiration-time",
            "2035-01-01T00:00:00Z",
        ],
    );
    let creds = cli.expect(
        0,
        &[
            "devices",
            "credentials",
            "list",
            "--device",
            "dev-1",
            "--registry",
            "fleet",
        ],
    );
    assert!(
        creds.contains("2035-01-01T00:00:00Z") && creds.lines().count() == 3,
        "{creds}"
    );
    cli.expect(
        0,
        &[
            "devices",
            "credentials",
            "remove",
            "0",
            "--device",
            "dev-1",
            "--registry",
            "fleet",
        ],
    );
    let creds = cli.json(&[
        "devices",
        "credentials",
        "list",
        "--device",
        "dev-1",
        "--registry",
        "fleet",
    ]);
    assert_eq!(creds.as_array().map(|a| a.len()), Some(1));
    let err = cli.expect(
        2,
        &[
            "devices",
            "credentials",
            "remove",
            "5",
            "--device",
            "dev-1",
            "--registry",
            "fleet",
        ],
    );
    assert!(err.contains("index 5 does not exist"), "{err}");

    // Configs, states, commands.
    cli.expect(
        0,
        &[
            "devices",
            "configs",
            "update",
            "--device",
            "dev-1",
            "--registry",
            "fleet",
            "--config-data",
            "{\"fan\":1}",
        ],
    );
    let err = cli.expect(
        1,
        &[
            "devices",
            "configs",
            "update",
            "--device",
            "dev-1",
            "--registry",
            "fleet",
            "--config-data",
            "x",
            "--version-to-update",
            "1",
        ],
    );
    assert!(err.contains("ABORTED"), "{err}");
    let configs = cli.expect(
        0,
        &[
            "devices",
            "configs",
            "list",
            "--device",
            "dev-1",
            "--registry",
            "fleet",
        ],
    );
    let first_row = configs.lines().nth(1).unwrap_or_default();
    assert!(
        first_row.starts_with("2 ") && first_row.ends_with("{\"fan\":1}"),
        "{configs}"
    );
    let states = cli.json(&[
        "devices",
        "states",
        "list",
        "--device",
        "dev-1",
        "--registry",
        "fleet",
    ]);
    assert_eq!(states, serde_json::json!([]));
    let err = cli.expect(
        1,
        &[
            "devices",
            "commands",
            "send",
            "--device",
            "dev-1",
            "--registry",
            "fleet",
            "--command-data",
            "reboot",
        ],
    );
    assert!(
        err.contains("not connected") && err.contains("FAILED_PRECONDITION"),
        "{err}"
    );

    // Gateways.
    cli.expect(
        0,
        &[
            "gateways",
            "bind",
            "--gateway",
            "gw-1",
            "--device",
            "dev-1",
            "--registry",
            "fleet",
        ],
    );
    let bound = cli.expect(
        0,
        &[
            "gateways",
            "list-bound-devices",
            "--gateway",
            "gw-1",
            "--registry",
            "fleet",
        ],
    );
    assert!(bound.contains("dev-1"), "{bound}");
    cli.expect(
        0,
        &[
            "gateways",
            "unbind",
            "--gateway",
            "gw-1",
            "--device",
            "dev-1",
            "--registry",
            "fleet",
        ],
    );
    let err = cli.expect(
        1,
        &[
            "gateways",
            "unbind",
            "--gateway",
            "gw-1",
            "--device",
            "dev-1",
            "--registry",
            "fleet",
        ],
    );
    assert!(err.contains("NOT_FOUND"), "{err}");

    // Refusals and connection problems.
    let err = cli.expect(1, &["devices", "describe", "nope", "--registry", "fleet"]);
    assert!(err.contains("404 NOT_FOUND"), "{err}");
    let wrong = tmp.path().join("wrong-token");
    std::fs::write(&wrong, "not-the-token\n").expect("write");
    let bad = Cli {
        token_file: wrong,
        ..Cli {
            url: cli.url.clone(),
            token_file: PathBuf::new(),
            dir: cli.dir.clone(),
        }
    };
    assert!(
        bad.expect(1, &["registries", "list"])
            .contains("PERMISSION_DENIED")
    );
    let missing = Cli {
        token_file: tmp.path().join("absent"),
        url: cli.url.clone(),
        dir: cli.dir.clone(),
    };
    assert!(
        missing
            .expect(2, &["registries", "list"])
            .contains("TETHER_ADMIN_TOKEN")
    );
    let down = Cli {
        url: "http://127.0.0.1:9".into(),
        token_file: cli.token_file.clone(),
        dir: cli.dir.clone(),
    };
    assert!(
        down.expect(2, &["registries", "list"])
            .contains("is `tether serve` running?")
    );
    let env_token = std::fs::read_to_string(&cli.token_file).expect("token");
    let out = tether()
        .args([
            "registries",
            "list",
            "--project",
            "acme",
            "--server",
            &cli.url,
            "--token-file",
            "/nonexistent",
        ])
        .env("TETHER_ADMIN_TOKEN", env_token.trim())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "TETHER_ADMIN_TOKEN is used");

    // A restart keeps the data and the token, and does not print it again.
    drop(server);
    let again = start(&data);
    assert!(
        again.banner.contains("admin token file:") && !again.banner.contains("shown once"),
        "{}",
        again.banner
    );
    let cli = Cli {
        url: again.url.clone(),
        ..cli
    };
    cli.expect(0, &["devices", "delete", "dev-1", "--registry", "fleet"]);
    cli.expect(0, &["devices", "delete", "gw-1", "--registry", "fleet"]);
    cli.expect(0, &["registries", "delete", "fleet"]);
    assert_eq!(cli.json(&["registries", "list"]), serde_json::json!([]));
}
