//! The CA signs CSRs from Tether and from OpenSSL; `openssl verify` accepts the
//! results, and a CSR whose signature was altered is refused.

mod common;

use common::{load, openssl, tempdir, write};
use tether_keys::KeyHandle;
use tether_keys::ca::Ca;
use tether_keys::cert::{Validity, make_csr};
use tether_keys::convert::pem_text;
use tether_keys::generate::{KeySpec, generate};

#[allow(clippy::disallowed_methods)] // openssl verify checks against the real clock
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .expect("clock after 1970")
}

fn new_ca() -> Ca {
    let key = KeyHandle::Software(generate(KeySpec::Es256).expect("keygen"));
    Ca::init(
        key,
        "CN=Test CA",
        Validity {
            not_before: now() - 60,
            days: 30,
        },
    )
    .expect("ca init")
}

#[test]
fn ca_signs_csrs_that_openssl_verifies() {
    let dir = tempdir();
    let d = dir.path();
    let ca = new_ca();
    write(
        d,
        "ca.pem",
        pem_text("CERTIFICATE", ca.certificate().der()).as_bytes(),
    );
    assert!(ca.certificate().is_ca() && ca.certificate().is_self_signed());

    // A CSR from Tether (RSA) and one from OpenSSL (EC).
    let device = KeyHandle::Software(generate(KeySpec::Rs256 { bits: 2048 }).expect("keygen"));
    let ours = make_csr(&device, "CN=dev-rsa", &[]).expect("csr");
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "dev.key",
            "-subj",
            "/CN=dev-ec",
            "-out",
            "dev.csr",
        ],
    );
    let theirs = load(d, "dev.csr").csr().expect("a CSR").der().to_vec();

    for (name, csr) in [("rsa", ours), ("ec", theirs)] {
        let cert = ca
            .sign_csr(
                &csr,
                Validity {
                    not_before: now() - 60,
                    days: 10,
                },
            )
            .expect("sign");
        let file = format!("{name}.crt");
        write(d, &file, pem_text("CERTIFICATE", &cert).as_bytes());
        let out = openssl(d, &["verify", "-CAfile", "ca.pem", &file]);
        assert!(String::from_utf8_lossy(&out).contains(": OK"), "{out:?}");
        let parsed = load(d, &file);
        let issued = parsed.certificate().expect("a certificate");
        assert!(issued.is_signed_by(ca.certificate()));
        assert!(issued.subject().contains(&format!("CN=dev-{name}")));
        assert_eq!(
            parsed.fingerprint(),
            tether_keys::parse(&csr).expect("csr").fingerprint()
        );
    }
}

#[test]
fn ca_refuses_a_csr_with_a_broken_signature_and_a_foreign_key() {
    let ca = new_ca();
    let device = KeyHandle::Software(generate(KeySpec::Es256).expect("keygen"));
    let mut csr = make_csr(&device, "CN=dev", &[]).expect("csr");
    let last = csr.len() - 1;
    csr[last] ^= 0x01;
    let err = ca
        .sign_csr(
            &csr,
            Validity {
                not_before: now(),
                days: 1,
            },
        )
        .expect_err("altered CSR");
    assert!(err.to_string().contains("signature"), "{err}");

    let other = KeyHandle::Software(generate(KeySpec::Es256).expect("keygen"));
    let err = Ca::new(ca.certificate().clone(), other).expect_err("wrong key");
    assert!(
        err.to_string().contains("is not the CA certificate's key"),
        "{err}"
    );
}

#[test]
fn ca_issues_server_certificates_with_names() {
    let dir = tempdir();
    let d = dir.path();
    let ca = new_ca();
    write(
        d,
        "ca.pem",
        pem_text("CERTIFICATE", ca.certificate().der()).as_bytes(),
    );
    let server = generate(KeySpec::Es256).expect("keygen");
    let names = ["mqtt.example.com".to_string(), "127.0.0.1".to_string()];
    let cert = ca
        .issue_server(
            server.public_key(),
            &names,
            Validity {
                not_before: now() - 60,
                days: 5,
            },
        )
        .expect("issue");
    write(d, "srv.crt", pem_text("CERTIFICATE", &cert).as_bytes());
    let out = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-verify_hostname",
            "mqtt.example.com",
            "srv.crt",
        ],
    );
    assert!(String::from_utf8_lossy(&out).contains(": OK"));
}
