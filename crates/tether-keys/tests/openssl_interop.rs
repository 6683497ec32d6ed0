//! OpenSSL reads what Tether writes, and Tether reads what OpenSSL writes: keys,
//! certificates and CSRs, with fingerprints equal to the SHA-256 of OpenSSL's SPKI.

mod common;

use common::{ec_key, load, openssl, read, tempdir, write};
use tether_keys::cert::{Validity, make_csr, self_signed};
use tether_keys::convert::{Options, Target, convert, pem_text};
use tether_keys::generate::{KeySpec, generate};
use tether_keys::{KeyHandle, Kind};

const NOW: i64 = 1_790_000_000; // 2026-09-21

fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn tether_reads_every_openssl_format_with_the_same_fingerprint() {
    let dir = tempdir();
    let d = dir.path();
    ec_key(d, "P-256", "ec.p8.pem");
    openssl(d, &["ec", "-in", "ec.p8.pem", "-out", "ec.sec1.pem"]);
    openssl(
        d,
        &[
            "ec",
            "-in",
            "ec.p8.pem",
            "-outform",
            "DER",
            "-out",
            "ec.sec1.der",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "ec.p8.pem",
            "-outform",
            "DER",
            "-out",
            "ec.p8.der",
        ],
    );
    openssl(
        d,
        &["pkey", "-in", "ec.p8.pem", "-pubout", "-out", "ec.pub.pem"],
    );
    openssl(
        d,
        &[
            "pkey",
            "-in",
            "ec.p8.pem",
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "ec.pub.der",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "ec.p8.pem",
            "-subj",
            "/CN=dev-1",
            "-days",
            "30",
            "-out",
            "ec.crt",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "ec.p8.pem",
            "-subj",
            "/CN=dev-1",
            "-out",
            "ec.csr",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-in",
            "ec.crt",
            "-outform",
            "DER",
            "-out",
            "ec.crt.der",
        ],
    );
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-out",
            "ecparam.pem",
        ],
    );

    let ec_fp = format!("sha256:{}", sha256_hex(&read(d, "ec.pub.der")));
    for (file, kind) in [
        ("ec.p8.pem", Kind::Pkcs8PrivateKey),
        ("ec.p8.der", Kind::Pkcs8PrivateKey),
        ("ec.sec1.pem", Kind::Sec1PrivateKey),
        ("ec.sec1.der", Kind::Sec1PrivateKey),
        ("ec.pub.pem", Kind::SpkiPublicKey),
        ("ec.pub.der", Kind::SpkiPublicKey),
        ("ec.crt", Kind::Certificate),
        ("ec.crt.der", Kind::Certificate),
        ("ec.csr", Kind::Csr),
    ] {
        let parsed = load(d, file);
        assert_eq!(parsed.kind(), kind, "{file}");
        assert_eq!(parsed.fingerprint().to_string(), ec_fp, "{file}");
    }
    // `openssl ecparam -genkey` puts an EC PARAMETERS block before the key.
    assert_eq!(load(d, "ecparam.pem").kind(), Kind::Sec1PrivateKey);
    assert!(load(d, "ec.crt").describe().contains("subject CN=dev-1"));
    assert!(load(d, "ec.csr").csr().is_some_and(|c| c.signature_ok()));

    openssl(d, &["genrsa", "-traditional", "-out", "rsa.p1.pem", "2048"]);
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "rsa.p1.pem",
            "-out",
            "rsa.p8.pem",
        ],
    );
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "rsa.p1.pem",
            "-RSAPublicKey_out",
            "-out",
            "rsa.p1pub.pem",
        ],
    );
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "rsa.p1.pem",
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "rsa.pub.der",
        ],
    );
    let rsa_fp = format!("sha256:{}", sha256_hex(&read(d, "rsa.pub.der")));
    for (file, kind) in [
        ("rsa.p1.pem", Kind::Pkcs1PrivateKey),
        ("rsa.p8.pem", Kind::Pkcs8PrivateKey),
        ("rsa.p1pub.pem", Kind::Pkcs1PublicKey),
        ("rsa.pub.der", Kind::SpkiPublicKey),
    ] {
        let parsed = load(d, file);
        assert_eq!(parsed.kind(), kind, "{file}");
        assert_eq!(parsed.fingerprint().to_string(), rsa_fp, "{file}");
    }
    assert_eq!(
        load(d, "rsa.p1.pem").describe(),
        "PKCS#1 RSA private key, 2048 bits"
    );
}

#[test]
fn pkcs1_to_pkcs8_is_byte_identical_to_openssl() {
    let dir = tempdir();
    let d = dir.path();
    openssl(d, &["genrsa", "-traditional", "-out", "rsa.pem", "2048"]);
    openssl(
        d,
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "rsa.pem", "-outform", "DER", "-out", "want.der",
        ],
    );
    let ours = convert(
        &load(d, "rsa.pem"),
        Target::Pkcs8,
        Options {
            der: true,
            ..Options::default()
        },
    )
    .expect("PKCS#1 converts to PKCS#8");
    assert_eq!(ours.bytes, read(d, "want.der"));
}

#[test]
fn openssl_reads_every_key_format_tether_writes() {
    let dir = tempdir();
    let d = dir.path();
    for spec in [KeySpec::Es256, KeySpec::Rs256 { bits: 2048 }] {
        let key = generate(spec).expect("keygen");
        let parsed = tether_keys::parse(&key.pkcs8_der()).expect("own PKCS#8 parses");
        let spki = key.public_key().spki_der().to_vec();
        let targets: &[Target] = match spec {
            KeySpec::Es256 => &[Target::Pkcs8, Target::Sec1],
            KeySpec::Rs256 { .. } => &[Target::Pkcs8, Target::Pkcs1],
        };
        for &target in targets {
            for der in [false, true] {
                let out = convert(
                    &parsed,
                    target,
                    Options {
                        der,
                        ..Options::default()
                    },
                )
                .expect("convert");
                let name = format!("k-{target:?}-{der}");
                write(d, &name, &out.bytes);
                let form = if der { "DER" } else { "PEM" };
                let pubkey = openssl(
                    d,
                    &[
                        "pkey", "-inform", form, "-in", &name, "-pubout", "-outform", "DER",
                    ],
                );
                assert_eq!(pubkey, spki, "openssl's public key of {name} differs");
            }
        }
        let pub_pem = convert(&parsed, Target::Spki, Options::default()).expect("spki");
        write(d, "pub.pem", &pub_pem.bytes);
        let back = openssl(d, &["pkey", "-pubin", "-in", "pub.pem", "-outform", "DER"]);
        assert_eq!(back, spki);
    }
}

#[test]
fn openssl_verifies_tether_csrs_and_certificates() {
    let dir = tempdir();
    let d = dir.path();
    for spec in [KeySpec::Es256, KeySpec::Rs256 { bits: 2048 }] {
        let key = KeyHandle::Software(generate(spec).expect("keygen"));
        let csr = make_csr(&key, "CN=dev-1,O=Acme", &[]).expect("csr");
        write(
            d,
            "dev.csr",
            pem_text("CERTIFICATE REQUEST", &csr).as_bytes(),
        );
        let text = openssl(
            d,
            &["req", "-in", "dev.csr", "-verify", "-noout", "-subject"],
        );
        assert!(
            String::from_utf8_lossy(&text).contains("CN = dev-1"),
            "{text:?}"
        );

        let cert = self_signed(
            &key,
            "CN=dev-1",
            &[],
            Validity {
                not_before: NOW,
                days: 30,
            },
        )
        .expect("cert");
        write(d, "dev.crt", pem_text("CERTIFICATE", &cert).as_bytes());
        let pubkey = openssl(d, &["x509", "-in", "dev.crt", "-noout", "-pubkey"]);
        assert_eq!(
            pubkey,
            pem_text("PUBLIC KEY", key.public_key().spki_der()).into_bytes()
        );
        let enddate = openssl(d, &["x509", "-in", "dev.crt", "-noout", "-enddate"]);
        assert!(
            String::from_utf8_lossy(&enddate).contains("Oct 21"),
            "{enddate:?}"
        );
        // The same fingerprint for key, CSR and certificate.
        let fp = key.public_key().fingerprint();
        assert_eq!(load(d, "dev.csr").fingerprint(), fp);
        assert_eq!(load(d, "dev.crt").fingerprint(), fp);
    }
}
