//! `tether jwt` end to end: keys made by OpenSSL, exit codes, stdin, JSON output.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn tether(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tether runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("tether exits")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("tether-jwt-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn openssl(args: &[&str]) {
    let s = Command::new("openssl")
        .args(args)
        .status()
        .expect("openssl is installed");
    assert!(s.success(), "openssl {args:?}");
}

/// An EC key in SEC1 PEM (what `openssl ecparam -genkey` writes) and its public key.
fn ec_key(d: &Path, name: &str) -> (String, String) {
    let private = d.join(format!("{name}.pem")).display().to_string();
    let public = d.join(format!("{name}.pub.pem")).display().to_string();
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &private,
    ]);
    openssl(&["pkey", "-in", &private, "-pubout", "-out", &public]);
    (private, public)
}

const AT: &str = "2026-11-26T10:00:00Z";

fn mint(key: &str, project: &str) -> String {
    let o = tether(
        &[
            "jwt",
            "mint",
            "--key",
            key,
            "--project",
            project,
            "--at",
            AT,
            "--lifetime",
            "20m",
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o).trim().to_string()
}

#[test]
fn mint_then_verify_with_openssl_keys() {
    let d = dir();
    let (private, public) = ec_key(&d, "ec");
    let t = mint(&private, "acme");
    let o = tether(
        &[
            "jwt",
            "verify",
            &t,
            "--key",
            &public,
            "--project",
            "acme",
            "--at",
            AT,
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("✓ valid ES256 token for project 'acme', signed by key #1"));
    assert!(
        stdout(&o).contains("expires 2026-11-26T10:20:00Z (in 20 min)"),
        "{}",
        stdout(&o)
    );
    // RSA in PKCS#1 (`-traditional`), verified against a self-signed certificate.
    let rsa = d.join("rsa.pem").display().to_string();
    let cert = d.join("rsa.crt").display().to_string();
    openssl(&["genrsa", "-traditional", "-out", &rsa, "2048"]);
    openssl(&[
        "req",
        "-x509",
        "-key",
        &rsa,
        "-out",
        &cert,
        "-days",
        "3650",
        "-subj",
        "/CN=dev-1",
    ]);
    let t = mint(&rsa, "acme");
    let o = tether(
        &[
            "jwt",
            "verify",
            &t,
            "--key",
            &cert,
            "--key",
            &public,
            "--project",
            "acme",
            "--at",
            AT,
            "--json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(
        (v["valid"].as_bool(), v["alg"].as_str(), v["key"].as_u64()),
        (Some(true), Some("RS256"), Some(1))
    );
}

#[test]
fn refusals_exit_1_with_the_reason() {
    let d = dir();
    let (private, _) = ec_key(&d, "dev");
    let (_, other_public) = ec_key(&d, "other");
    let t = mint(&private, "acme");
    let o = tether(
        &[
            "jwt",
            "verify",
            &t,
            "--key",
            &other_public,
            "--project",
            "acme",
            "--at",
            AT,
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("signature does not verify with the registered key"),
        "{}",
        stdout(&o)
    );
    let o = tether(
        &[
            "jwt",
            "verify",
            &t,
            "--key",
            &other_public,
            "--project",
            "acme",
            "--at",
            "2026-11-27T10:00:00Z",
            "--json",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["reason"], "jwt_expired");
}

#[test]
fn diagnose_reads_stdin_and_prints_json_findings() {
    let d = dir();
    let (private, _) = ec_key(&d, "diag");
    let (_, wrong) = ec_key(&d, "wrong");
    let t = mint(&private, "h4nh44-1");
    let o = tether(
        &[
            "jwt",
            "diagnose",
            "-",
            "--project",
            "acme",
            "--key",
            &wrong,
            "--at",
            AT,
            "--json",
        ],
        Some(&format!("{t}\n")),
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"audience")
            && codes.contains(&"wrong-key")
            && codes.contains(&"recovered-signer"),
        "{codes:?}"
    );
    assert!(
        !codes.contains(&"surrounding-whitespace"),
        "the pipe's newline is not part of the token"
    );
    let o = tether(
        &["jwt", "diagnose", &t, "--project", "h4nh44-1", "--at", AT],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("result: valid"));
}

#[test]
fn decode_shows_utc_times() {
    let d = dir();
    let (private, _) = ec_key(&d, "dec");
    let o = tether(&["jwt", "decode", &mint(&private, "acme")], None);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("(2026-11-26T10:00:00Z)"),
        "{}",
        stdout(&o)
    );
    let o = tether(&["jwt", "decode", "not-a-token"], None);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    let d = dir();
    let empty = d.join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    let o = tether(
        &[
            "jwt",
            "verify",
            "a.b.c",
            "--key",
            empty.to_str().unwrap_or_default(),
            "--project",
            "p",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("empty"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = tether(
        &[
            "jwt",
            "mint",
            "--key",
            "/nonexistent/key.pem",
            "--project",
            "p",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let o = tether(&["jwt", "mint", "--project", "p"], None);
    assert_eq!(o.status.code(), Some(2), "missing --key is a usage error");
    let (private, _) = ec_key(&d, "life");
    let o = tether(
        &[
            "jwt",
            "mint",
            "--key",
            &private,
            "--project",
            "p",
            "--lifetime",
            "2d",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 s to 24 h"));
    let o = tether(&["jwt", "--help"], None);
    assert_eq!(o.status.code(), Some(0));
    for sub in ["mint", "decode", "verify", "diagnose"] {
        assert!(stdout(&o).contains(sub));
    }
}
