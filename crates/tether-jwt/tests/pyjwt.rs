//! Tokens cross between tether and PyJWT, the library Google's Python device samples used.
//! Needs python3 with PyJWT and cryptography (`.ci/requirements.txt`); in CI their
//! absence fails the test, elsewhere it is skipped with a notice.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use tether_jwt::{Credential, Rules, verify};

fn python_has_pyjwt() -> bool {
    tether_testkit::require_ok(
        "python3 with PyJWT and cryptography (pip install -r .ci/requirements.txt)",
        tether_testkit::needs::python_modules(&["jwt", "cryptography"]),
    )
    .is_some()
}

fn pem(label: &str, der: &[u8]) -> String {
    let std = tether_jwt::b64::encode(der)
        .replace('-', "+")
        .replace('_', "/");
    let std = format!("{std}{}", "=".repeat((4 - std.len() % 4) % 4));
    let body: Vec<String> = std
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tether-pyjwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write key");
    path
}

fn python(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyjwt_interop.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[test]
fn tokens_cross_between_tether_and_pyjwt() {
    if !python_has_pyjwt() {
        return;
    }
    let (ec_pkcs8, ec) = es256();
    let rsa = rs256();
    for (alg, signer, private, public) in [
        (
            "ES256",
            &ec as &dyn tether_jwt::Signer,
            ec_pkcs8.as_slice(),
            ec.public_key(),
        ),
        (
            "RS256",
            &rsa as &dyn tether_jwt::Signer,
            RSA_PKCS8,
            rsa.public_key(),
        ),
    ] {
        let pub_path = write(
            &format!("{alg}-pub.pem"),
            &pem("PUBLIC KEY", public.spki_der()),
        );
        let priv_path = write(&format!("{alg}-priv.pem"), &pem("PRIVATE KEY", private));
        // tether → PyJWT
        let t = token(signer, "acme", NOW, 1200);
        let claims = python(&[
            "verify",
            alg,
            pub_path.to_str().unwrap_or_default(),
            &t,
            "acme",
        ]);
        assert_eq!(
            claims,
            format!(r#"{{"aud": "acme", "exp": {}, "iat": {NOW}}}"#, NOW + 1200)
        );
        // PyJWT → tether
        let t = python(&[
            "mint",
            alg,
            priv_path.to_str().unwrap_or_default(),
            "acme",
            &NOW.to_string(),
        ]);
        let v = verify(
            &t,
            &Rules::new("acme", NOW + 60),
            &[Credential::new(public.clone())],
        )
        .unwrap_or_else(|e| panic!("{alg} token from PyJWT refused: {e}"));
        assert_eq!((v.iat, v.exp), (NOW, NOW + 1200));
        assert!(v.warnings.is_empty(), "PyJWT writes canonical base64url");
    }
}
