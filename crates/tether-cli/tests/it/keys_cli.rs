//! `tether keys` and `tether ca` end to end, with OpenSSL and gcc on the other side.

use std::path::Path;
use std::process::{Command, Output};

fn tether(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tether")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tether(dir, args);
    assert!(
        out.status.success(),
        "tether {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn gen_writes_a_key_and_a_registrable_public_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let out = ok(
        d,
        &[
            "keys", "gen", "--alg", "rs256", "--format", "pkcs1", "--out", "dev",
        ],
    );
    assert!(out.contains("register as RSA_PEM"), "{out}");
    let inspect = ok(d, &["keys", "inspect", "dev.key.pem"]);
    assert!(
        inspect.contains("PKCS#1 RSA private key, 2048 bits"),
        "{inspect}"
    );
    assert!(
        inspect.contains("tether keys convert dev.key.pem --to spki"),
        "{inspect}"
    );
    let inspect = ok(d, &["keys", "inspect", "dev.pub.pem"]);
    assert!(
        inspect.contains("register as RSA_PEM (this file, as is)"),
        "{inspect}"
    );
    // OpenSSL agrees on the public key.
    let theirs = openssl(d, &["pkey", "-in", "dev.key.pem", "-pubout"]);
    assert_eq!(
        theirs,
        std::fs::read_to_string(d.join("dev.pub.pem")).expect("pub")
    );
    // No silent overwrite.
    let again = tether(d, &["keys", "gen", "--out", "dev"]);
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn raw_engine_key_to_registrable_pem_and_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    ok(d, &["keys", "gen", "--out", "dev"]);
    let raw = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args([
            "keys",
            "convert",
            "dev.pub.pem",
            "--to",
            "raw",
            "--out",
            "engine.bin",
        ])
        .current_dir(d)
        .status()
        .expect("run");
    assert!(raw.success());
    assert_eq!(
        std::fs::metadata(d.join("engine.bin")).expect("raw").len(),
        64
    );
    let pem = ok(d, &["keys", "convert", "engine.bin", "--to", "spki"]);
    assert_eq!(
        pem,
        std::fs::read_to_string(d.join("dev.pub.pem")).expect("pub")
    );
    // Hex text, as copied out of a debugger, works too.
    let hex: String = std::fs::read(d.join("engine.bin"))
        .expect("raw")
        .iter()
        .map(|b| format!("{b:02X} "))
        .collect();
    std::fs::write(d.join("engine.hex"), hex).expect("hex");
    let inspect = ok(d, &["keys", "inspect", "engine.hex"]);
    assert!(
        inspect.contains("raw P-256 public key")
            && inspect.contains("fits ES256_PEM after conversion"),
        "{inspect}"
    );
}

#[test]
fn exported_c_header_compiles_and_holds_the_der() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    ok(d, &["keys", "gen", "--out", "dev"]);
    ok(
        d,
        &[
            "keys",
            "export",
            "dev.pub.pem",
            "--c",
            "device_pub",
            "--out",
            "device_pub.h",
        ],
    );
    ok(
        d,
        &[
            "keys",
            "convert",
            "dev.pub.pem",
            "--to",
            "der",
            "--out",
            "dev.pub.der",
        ],
    );
    std::fs::write(
        d.join("main.c"),
        "#include <stdio.h>\n#include \"device_pub.h\"\nint main(void){fwrite(device_pub,1,device_pub_len,stdout);return 0;}\n",
    )
    .expect("c");
    let gcc = Command::new("gcc")
        .args(["-Wall", "-Werror", "-o", "dump", "main.c"])
        .current_dir(d)
        .status()
        .expect("gcc");
    assert!(gcc.success());
    let out = Command::new(d.join("dump")).output().expect("run");
    assert_eq!(
        out.stdout,
        std::fs::read(d.join("dev.pub.der")).expect("der")
    );
    let rust = ok(
        d,
        &["keys", "export", "dev.pub.pem", "--rust", "DEVICE_PUB"],
    );
    assert!(
        rust.contains("pub const DEVICE_PUB: [u8; 91] = ["),
        "{rust}"
    );
}

#[test]
fn csr_cert_and_ca_interoperate_with_openssl() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    ok(d, &["keys", "gen", "--out", "dev"]);
    ok(
        d,
        &[
            "keys",
            "csr",
            "--key",
            "dev.key.pem",
            "--subject",
            "CN=dev-1",
            "--out",
            "dev.csr",
        ],
    );
    openssl(d, &["req", "-in", "dev.csr", "-verify", "-noout"]);
    ok(
        d,
        &[
            "keys",
            "cert",
            "--key",
            "dev.key.pem",
            "--subject",
            "CN=dev-1",
            "--days",
            "30",
            "--out",
            "self.crt",
        ],
    );
    openssl(d, &["x509", "-in", "self.crt", "-noout", "-subject"]);
    let inspect = ok(d, &["keys", "inspect", "self.crt"]);
    assert!(
        inspect.contains("X.509 certificate, ES256, expires")
            && inspect.contains("subject CN=dev-1"),
        "{inspect}"
    );
    assert!(inspect.contains("register as ES256_X509_PEM"), "{inspect}");

    ok(
        d,
        &["ca", "init", "--dir", "ca", "--subject", "CN=Fleet CA"],
    );
    let cert = ok(d, &["ca", "sign", "dev.csr", "--dir", "ca", "--days", "90"]);
    std::fs::write(d.join("dev.crt"), cert).expect("cert");
    let verify = openssl(d, &["verify", "-CAfile", "ca/ca.pem", "dev.crt"]);
    assert!(verify.contains("dev.crt: OK"), "{verify}");
    // A CSR from OpenSSL is signed as well.
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "dev.key.pem",
            "-subj",
            "/CN=dev-2",
            "-out",
            "ossl.csr",
        ],
    );
    ok(
        d,
        &["ca", "sign", "ossl.csr", "--dir", "ca", "--out", "dev2.crt"],
    );
    openssl(d, &["verify", "-CAfile", "ca/ca.pem", "dev2.crt"]);
    // Signing something that is not a CSR is refused with exit code 1.
    let refused = tether(d, &["ca", "sign", "dev.key.pem", "--dir", "ca"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a CSR"));
}

#[test]
fn inspect_exit_codes_and_messages() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    std::fs::write(d.join("empty"), "").expect("empty");
    let out = tether(d, &["keys", "inspect", "empty"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty: empty file"));
    let out = tether(d, &["keys", "inspect", "missing.pem"]);
    assert_eq!(out.status.code(), Some(2));
    let out = tether(d, &["keys", "convert", "empty", "--to", "spki"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn inspect_json_for_scripts() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    ok(d, &["keys", "gen", "--out", "dev"]);
    ok(
        d,
        &[
            "keys",
            "cert",
            "--key",
            "dev.key.pem",
            "--subject",
            "CN=dev-1",
            "--out",
            "dev.crt",
        ],
    );
    let parse = |text: String| -> serde_json::Value {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };

    let cert = parse(ok(d, &["keys", "inspect", "dev.crt", "--json"]));
    assert_eq!(cert["file"], "dev.crt");
    assert_eq!(cert["certificate"]["subject"], "CN=dev-1");
    assert_eq!(cert["certificate"]["selfSigned"], true);
    assert_eq!(cert["iotCore"]["format"], "ES256_X509_PEM");
    assert_eq!(cert["iotCore"]["asIs"], true);
    assert_eq!(
        cert["iotCore"]["key"],
        std::fs::read_to_string(d.join("dev.crt")).expect("cert"),
        "the exact text to register"
    );
    let key = parse(ok(d, &["keys", "inspect", "dev.key.pem", "--json"]));
    assert_eq!(
        key["fingerprint"], cert["fingerprint"],
        "one fingerprint for the key and its certificate"
    );
    assert_eq!(key["iotCore"]["registrable"], false);
    assert!(
        key["iotCore"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("--to spki")),
        "{key}"
    );

    std::fs::write(d.join("empty"), "").expect("empty");
    let out = tether(d, &["keys", "inspect", "empty", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let error = parse(String::from_utf8_lossy(&out.stdout).into_owned());
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("empty file")),
        "{error}"
    );
}
