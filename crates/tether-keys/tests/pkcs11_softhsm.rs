//! PKCS#11 against SoftHSMv2: a non-extractable key generated in the token signs a
//! JWT that verifies with the exported public key, and a CSR that OpenSSL verifies.
//!
//! Needs the Debian package `softhsm2` (and `opensc` for one check). Without it the
//! tests print a notice and pass, except under `TETHER_TEST_REQUIRE_ALL=1`: then a
//! missing module is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{openssl, tempdir, write};
use tether_keys::cert::make_csr;
use tether_keys::convert::pem_text;
use tether_keys::pkcs11::{Pkcs11Key, Pkcs11Uri};
use tether_keys::{KeyHandle, open_signer};
use tether_testkit::{needs, require};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "tether-test";
const PIN: &str = "1234";

/// One token per test process (set up before the module is first initialised, since
/// SoftHSM reads SOFTHSM2_CONF then); tests use distinct object labels.
fn token() -> Option<&'static Path> {
    static SETUP: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let module = needs::file(MODULE);
            require(&format!("{MODULE} (apt-get install softhsm2)"), module)?;
            let dir = tempfile::tempdir().expect("temp dir");
            let tokens = dir.path().join("tokens");
            std::fs::create_dir(&tokens).expect("token dir");
            let conf = dir.path().join("softhsm2.conf");
            let text = format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            );
            std::fs::write(&conf, text).expect("write conf");
            unsafe_set_env(&conf);
            let status = Command::new("softhsm2-util")
                .args([
                    "--init-token",
                    "--free",
                    "--label",
                    TOKEN,
                    "--so-pin",
                    "0000",
                    "--pin",
                    PIN,
                ])
                .env("SOFTHSM2_CONF", &conf)
                .stdout(std::process::Stdio::null())
                .status()
                .expect("softhsm2-util");
            assert!(status.success(), "softhsm2-util --init-token failed");
            Some(dir)
        })
        .as_ref()
        .map(tempfile::TempDir::path)
}

#[allow(unsafe_code)]
fn unsafe_set_env(conf: &Path) {
    // SAFETY: called once inside OnceLock initialisation before the PKCS#11 module
    // (the only reader) is loaded; no other thread of the test reads the environment
    // concurrently.
    unsafe { std::env::set_var("SOFTHSM2_CONF", conf) };
}

fn uri(object: &str) -> String {
    format!("pkcs11:token={TOKEN};object={object}?module-path={MODULE}&pin-value={PIN}")
}

#[test]
fn token_key_signs_jwts_that_verify_with_its_exported_public_key() {
    let Some(_) = token() else { return };
    let key = Pkcs11Key::generate_p256(&Pkcs11Uri::parse(&uri("jwt-key")).expect("uri"))
        .expect("generate");
    let exported = pem_text("PUBLIC KEY", key.public_key().spki_der());

    // Reopen through the generic entry point the `jwt mint` command uses.
    let signer = open_signer(&uri("jwt-key")).expect("open signer");
    let claims = tether_jwt::Claims {
        aud: "my-project",
        iat: 1_790_000_000,
        exp: 1_790_003_600,
    };
    let mut buf = [0u8; 512];
    let n = tether_jwt::mint(&signer, &claims, &mut buf).expect("mint in the token");
    let token = &buf[..n];
    let dot = token.iter().rposition(|&b| b == b'.').expect("three parts");
    let mut sig = [0u8; 64];
    let (len, _) = tether_jwt::b64::decode_into(&token[dot + 1..], &mut sig).expect("b64");
    let public = tether_keys::parse(exported.as_bytes()).expect("exported key parses");
    let public = public.public_key().expect("public key");
    tether_jwt::verify_signature(
        tether_jwt::Algorithm::Es256,
        &public,
        &token[..dot],
        &sig[..len],
    )
    .expect("the token's signature verifies with the exported public key");
}

#[test]
fn token_key_is_not_extractable_and_labels_are_unique() {
    let Some(_) = token() else { return };
    let u = Pkcs11Uri::parse(&uri("unique-key")).expect("uri");
    Pkcs11Key::generate_p256(&u).expect("generate");
    let again = Pkcs11Key::generate_p256(&u).expect_err("same label twice");
    assert!(
        again
            .to_string()
            .contains("already has a key labelled 'unique-key'"),
        "{again}"
    );
    let missing = KeyHandle::open(&uri("no-such-key")).expect_err("missing");
    assert!(
        missing.to_string().contains("no private key matching"),
        "{missing}"
    );
    // The token reports the key as never extractable, as pkcs11-tool sees it.
    let tool = needs::tool("pkcs11-tool");
    if let Some(tool) = require("pkcs11-tool (apt-get install opensc)", tool) {
        let out = Command::new(tool)
            .args([
                "--module",
                MODULE,
                "--token-label",
                TOKEN,
                "--login",
                "--pin",
                PIN,
                "--list-objects",
                "--type",
                "privkey",
            ])
            .output()
            .expect("pkcs11-tool runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("unique-key"), "{text}");
        assert!(text.contains("never extractable"), "{text}");
    }
}

#[test]
fn token_key_makes_csrs_openssl_verifies_with_pin_from_a_file() {
    let Some(base) = token() else { return };
    let key = Pkcs11Key::generate_p256(&Pkcs11Uri::parse(&uri("csr-key")).expect("uri"))
        .expect("generate");
    let fp = key.public_key().fingerprint();

    let pin_file: PathBuf = base.join("pin.txt");
    std::fs::write(&pin_file, format!("{PIN}\n")).expect("pin file");
    let by_file = format!(
        "pkcs11:token={TOKEN};object=csr-key?module-path={MODULE}&pin-source=file:{}",
        pin_file.display()
    );
    let handle = KeyHandle::open(&by_file).expect("open with pin-source");
    assert_eq!(handle.public_key().fingerprint(), fp);

    let dir = tempdir();
    let csr = make_csr(&handle, "CN=secure-dev", &[]).expect("CSR signed in the token");
    write(
        dir.path(),
        "dev.csr",
        pem_text("CERTIFICATE REQUEST", &csr).as_bytes(),
    );
    let out = openssl(
        dir.path(),
        &["req", "-in", "dev.csr", "-verify", "-noout", "-subject"],
    );
    assert!(String::from_utf8_lossy(&out).contains("secure-dev"));
    assert_eq!(tether_keys::parse(&csr).expect("csr").fingerprint(), fp);
    // (The PIN from TETHER_PKCS11_PIN is tested through the CLI, in a child process:
    // login state is per process, so it cannot be tested here.)
}
