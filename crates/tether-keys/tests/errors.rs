//! Wrong input gets a precise message and never a panic.

mod common;

use common::{ec_key, openssl, tempdir, write};
use tether_keys::{ParseError, parse};

fn message(bytes: &[u8]) -> String {
    match parse(bytes) {
        Ok(p) => panic!("unexpectedly parsed as {}", p.describe()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_and_whitespace_files() {
    assert_eq!(message(b""), "empty file");
    assert_eq!(message(b"  \n\t"), "empty file");
}

#[test]
fn password_protected_pem_says_so_and_names_the_file() {
    let dir = tempdir();
    let d = dir.path();
    ec_key(d, "P-256", "k.pem");
    openssl(
        d,
        &[
            "pkey", "-in", "k.pem", "-aes256", "-passout", "pass:x", "-out", "enc8.pem",
        ],
    );
    openssl(
        d,
        &[
            "ec",
            "-in",
            "k.pem",
            "-aes256",
            "-passout",
            "pass:x",
            "-out",
            "encsec1.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8", "-topk8", "-in", "k.pem", "-passout", "pass:x", "-outform", "DER", "-out",
            "enc.der",
        ],
    );
    for name in ["enc8.pem", "encsec1.pem", "enc.der"] {
        let path = d.join(name);
        let err = tether_keys::load(&path).expect_err("encrypted");
        let text = err.to_string();
        assert!(text.contains("password-protected"), "{name}: {text}");
        assert!(
            text.contains(&format!("openssl pkey -in {}", path.display())),
            "{text}"
        );
    }
}

#[test]
fn unsupported_curves_are_named() {
    let dir = tempdir();
    let d = dir.path();
    for (curve, name) in [
        ("secp384r1", "P-384 (secp384r1)"),
        ("secp256k1", "secp256k1"),
    ] {
        ec_key(d, curve, "k.pem");
        openssl(d, &["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"]);
        openssl(d, &["ec", "-in", "k.pem", "-out", "sec1.pem"]);
        for file in ["k.pem", "pub.pem", "sec1.pem"] {
            let text = message(&std::fs::read(d.join(file)).expect("read"));
            assert!(
                text.contains(&format!("EC key on {name}")) && text.contains("needs P-256"),
                "{file}: {text}"
            );
        }
    }
    openssl(d, &["genpkey", "-algorithm", "ED25519", "-out", "ed.pem"]);
    let text = message(&std::fs::read(d.join("ed.pem")).expect("read"));
    assert!(text.starts_with("Ed25519 key"), "{text}");
}

#[test]
fn certificate_chains_are_refused_with_their_length() {
    let dir = tempdir();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k.pem",
            "-subj",
            "/CN=x",
            "-days",
            "1",
            "-out",
            "c.pem",
        ],
    );
    let one = std::fs::read(d.join("c.pem")).expect("read");
    let chain = [one.clone(), one.clone(), one].concat();
    assert!(message(&chain).starts_with("a chain of 3 certificates; give one certificate"));
    let key = std::fs::read(d.join("k.pem")).expect("read");
    let both = [key, chain[..chain.len() / 3].to_vec()].concat();
    assert!(
        message(&both).contains("2 PEM objects (PRIVATE KEY, CERTIFICATE)"),
        "{}",
        message(&both)
    );
}

#[test]
fn truncated_der_reports_sizes() {
    let dir = tempdir();
    let d = dir.path();
    ec_key(d, "P-256", "k.der");
    let der = std::fs::read(d.join("k.der")).expect("read");
    let text = message(&der[..70]);
    assert!(
        text.starts_with("truncated DER:") && text.contains("70 bytes"),
        "{text}"
    );
}

#[test]
fn other_inputs_say_what_they_look_like() {
    assert!(message(b"hello world\n").starts_with("looks like text but not PEM"));
    assert!(message(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]).contains("starting deadbeef"));
    let bad_pem = b"-----BEGIN FOO BAR-----\nAAAA\n-----END FOO BAR-----\n";
    assert!(message(bad_pem).contains("PEM 'FOO BAR'"));
    let ssh = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    assert!(message(ssh).contains("ssh-keygen -p -m PKCS8"));
    // 64 bytes that are not a point on P-256.
    assert!(message(&[0x11; 64]).starts_with("invalid key"));
    // A 32-byte scalar of zero is not a key.
    assert!(message(&[0u8; 32]).starts_with("invalid key"));
    let missing =
        tether_keys::load(std::path::Path::new("/nonexistent/k.pem")).expect_err("missing");
    assert!(matches!(missing, ParseError::Io { .. }));
}

#[test]
fn damaged_inputs_never_panic() {
    let dir = tempdir();
    let d = dir.path();
    openssl(
        d,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-subj", "/CN=x",
            "-days", "1", "-outform", "DER", "-out", "c.der",
        ],
    );
    openssl(
        d,
        &["pkey", "-in", "k.pem", "-outform", "DER", "-out", "k.der"],
    );
    let key_pem = std::fs::read(d.join("k.pem")).expect("read");
    for file in ["c.der", "k.der"] {
        let der = std::fs::read(d.join(file)).expect("read");
        for cut in 0..der.len() {
            let _ = parse(&der[..cut]);
        }
        for i in (0..der.len()).step_by(7) {
            let mut bent = der.clone();
            bent[i] ^= 0x5a;
            let _ = parse(&bent);
        }
    }
    for cut in (0..key_pem.len()).step_by(13) {
        let _ = parse(&key_pem[..cut]);
    }
    write(d, "x", b"");
}
