//! Helpers shared by the integration tests: running real tools in a temp dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tether_keys::Parsed;

/// Runs `openssl ARGS` in `dir`, panicking with its stderr on failure.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed for the interop tests");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Has OpenSSL generate an EC key on `curve` (an OpenSSL name: `P-256`, `secp384r1`)
/// into `dir/out`: PKCS#8 PEM, or PKCS#8 DER when `out` ends in `.der`.
pub fn ec_key(dir: &Path, curve: &str, out: &str) {
    let curve = format!("ec_paramgen_curve:{curve}");
    let mut args = vec![
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        &curve,
        "-out",
        out,
    ];
    if out.ends_with(".der") {
        args.extend(["-outform", "DER"]);
    }
    openssl(dir, &args);
}

/// Writes a file in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

pub fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).expect("read temp file")
}

pub fn load(dir: &Path, name: &str) -> Parsed {
    tether_keys::load(&dir.join(name)).unwrap_or_else(|e| panic!("tether cannot read {name}: {e}"))
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}
