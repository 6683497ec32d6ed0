//! `tether keys gen --pkcs11`, `keys csr --key pkcs11:` and `jwt mint --key pkcs11:`
//! against SoftHSMv2, with the PIN from `TETHER_PKCS11_PIN`. Skipped with a notice
//! when softhsm2 is missing, except under `TETHER_TEST_REQUIRE_ALL=1`, where that is
//! a failure.

use std::path::Path;
use std::process::Command;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn run(dir: &Path, conf: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .env("SOFTHSM2_CONF", conf)
        .env("TETHER_PKCS11_PIN", "1234")
        .current_dir(dir)
        .output()
        .expect("run tether");
    assert!(
        out.status.success(),
        "tether {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn token_key_generates_signs_a_csr_and_mints_a_jwt() {
    let module = tether_testkit::needs::file(MODULE);
    if tether_testkit::require(&format!("{MODULE} (apt-get install softhsm2)"), module).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    std::fs::create_dir(d.join("tokens")).expect("tokens");
    let conf = d.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            d.join("tokens").display()
        ),
    )
    .expect("conf");
    let init = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "cli",
            "--so-pin",
            "0000",
            "--pin",
            "1234",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util");
    assert!(init.status.success());

    let uri = format!("pkcs11:token=cli;object=dev-key?module-path={MODULE}");
    let out = run(d, &conf, &["keys", "gen", "--pkcs11", &uri, "--out", "dev"]);
    assert!(out.contains("it cannot leave the token"), "{out}");
    let inspect = run(d, &conf, &["keys", "inspect", &uri]);
    let fp = run(d, &conf, &["keys", "inspect", "dev.pub.pem"]);
    let fp_line = fp
        .lines()
        .find(|l| l.starts_with("fingerprint:"))
        .expect("fingerprint line");
    assert!(inspect.contains(fp_line), "{inspect} vs {fp}");

    run(
        d,
        &conf,
        &[
            "keys",
            "csr",
            "--key",
            &uri,
            "--subject",
            "CN=secure-1",
            "--out",
            "dev.csr",
        ],
    );
    let verify = Command::new("openssl")
        .args(["req", "-in", "dev.csr", "-verify", "-noout"])
        .current_dir(d)
        .output()
        .expect("openssl");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    let token = run(
        d,
        &conf,
        &["jwt", "mint", "--key", &uri, "--project", "my-project"],
    );
    let token = token.trim();
    let (signed, sig) = token.rsplit_once('.').expect("three parts");
    let mut raw = [0u8; 64];
    let (n, _) = tether_jwt::b64::decode_into(sig.as_bytes(), &mut raw).expect("b64");
    let pem = std::fs::read(d.join("dev.pub.pem")).expect("pub");
    let public = tether_keys::parse(&pem)
        .expect("pub parses")
        .public_key()
        .expect("public");
    tether_jwt::verify_signature(
        tether_jwt::Algorithm::Es256,
        &public,
        signed.as_bytes(),
        &raw[..n],
    )
    .expect("the token minted in the token verifies with the exported key");
}
