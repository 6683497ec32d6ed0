//! Every conversion round-trips byte for byte, including raw P-256 keys in both
//! directions (binary and hex), and the JWT signer of any form verifies.

mod common;

use tether_keys::convert::{Converted, Options, Target, convert};
use tether_keys::generate::{KeySpec, generate};
use tether_keys::register::{PublicKeyFormat, registration};
use tether_keys::{Encoding, Kind, Parsed, parse};

fn conv(p: &Parsed, t: Target, der: bool) -> Converted {
    convert(
        p,
        t,
        Options {
            der,
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("{t:?}: {e}"))
}

fn reparse(c: &Converted) -> Parsed {
    parse(&c.bytes).expect("Tether reads its own output")
}

#[test]
fn private_key_forms_round_trip_byte_equal() {
    for spec in [KeySpec::Es256, KeySpec::Rs256 { bits: 2048 }] {
        let key = generate(spec).expect("keygen");
        let start = parse(&key.pkcs8_der()).expect("parse");
        let fp = start.fingerprint();
        let forms: &[Target] = match spec {
            KeySpec::Es256 => &[Target::Pkcs8, Target::Sec1, Target::Raw],
            KeySpec::Rs256 { .. } => &[Target::Pkcs8, Target::Pkcs1],
        };
        for &form in forms {
            for der in [false, true] {
                let first = conv(&start, form, der);
                let parsed = reparse(&first);
                assert_eq!(parsed.fingerprint(), fp, "{form:?}");
                assert!(parsed.is_private());
                // Same form again: identical bytes; through PEM⇄DER and back: identical.
                assert_eq!(conv(&parsed, form, der), first, "{form:?} der={der}");
                if form != Target::Raw {
                    let pem = reparse(&conv(&parsed, Target::Pem, false));
                    let der_again = reparse(&conv(&pem, Target::Der, false));
                    assert_eq!(conv(&der_again, form, der), first, "{form:?} via PEM/DER");
                }
                // And back to PKCS#8, where we started.
                assert_eq!(
                    conv(&parsed, Target::Pkcs8, true).bytes,
                    key.pkcs8_der().to_vec()
                );
            }
        }
    }
}

#[test]
fn public_key_forms_round_trip_byte_equal() {
    for spec in [KeySpec::Es256, KeySpec::Rs256 { bits: 3072 }] {
        let key = generate(spec).expect("keygen");
        let spki_der = key.public_key().spki_der().to_vec();
        let start = parse(&spki_der).expect("parse SPKI");
        assert_eq!(start.kind(), Kind::SpkiPublicKey);
        let pem = conv(&start, Target::Spki, false);
        assert!(pem.is_text);
        assert_eq!(conv(&reparse(&pem), Target::Spki, true).bytes, spki_der);
        if matches!(spec, KeySpec::Rs256 { .. }) {
            let pkcs1 = reparse(&conv(&start, Target::Pkcs1, false));
            assert_eq!(pkcs1.kind(), Kind::Pkcs1PublicKey);
            assert_eq!(conv(&pkcs1, Target::Spki, true).bytes, spki_der);
            assert!(
                pkcs1
                    .describe()
                    .starts_with("PKCS#1 RSA public key, 3072 bits")
            );
        }
    }
}

#[test]
fn raw_p256_public_keys_become_registrable_pem_and_back() {
    let key = generate(KeySpec::Es256).expect("keygen");
    let point = key.public_key().key_bytes().to_vec(); // 04‖x‖y
    let xy = &point[1..];
    for (input, encoding) in [
        (xy.to_vec(), Encoding::Raw),
        (point.clone(), Encoding::Raw),
        (
            xy.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
            Encoding::Hex,
        ),
        (
            xy.iter()
                .map(|b| format!("0x{b:02X}, "))
                .collect::<String>()
                .into_bytes(),
            Encoding::Hex,
        ),
    ] {
        let raw = parse(&input).expect("raw point parses");
        assert_eq!((raw.kind(), raw.encoding()), (Kind::RawPublicKey, encoding));
        assert_eq!(raw.fingerprint(), key.public_key().fingerprint());
        let reg = registration(&raw, 0).expect("a public key registers");
        assert_eq!(reg.format, PublicKeyFormat::Es256Pem);
        assert!(reg.converted);
        let pem = parse(reg.key.as_bytes()).expect("registered text parses");
        assert_eq!(pem.kind(), Kind::SpkiPublicKey);
        // And back to the engine's bytes.
        assert_eq!(conv(&pem, Target::Raw, false).bytes, xy);
        let with_prefix = convert(
            &pem,
            Target::Raw,
            Options {
                uncompressed_prefix: true,
                der: false,
            },
        )
        .expect("raw65");
        assert_eq!(with_prefix.bytes, point);
    }
}

#[test]
fn raw_scalar_becomes_a_signing_key_with_the_same_public_key() {
    let key = generate(KeySpec::Es256).expect("keygen");
    let scalar = key.p256_scalar().expect("EC key").to_vec();
    let raw = parse(&scalar).expect("scalar parses");
    assert_eq!(raw.kind(), Kind::RawPrivateKey);
    assert_eq!(raw.fingerprint(), key.public_key().fingerprint());
    let pkcs8 = reparse(&conv(&raw, Target::Pkcs8, false));
    assert_eq!(conv(&pkcs8, Target::Raw, false).bytes, scalar);

    // The JWT signer made from it verifies with the public key.
    let signer = raw
        .private_key()
        .expect("private")
        .signer()
        .expect("signer");
    let claims = tether_jwt::Claims {
        aud: "proj",
        iat: 1_700_000_000,
        exp: 1_700_003_600,
    };
    let mut buf = [0u8; 512];
    let n = tether_jwt::mint(&signer, &claims, &mut buf).expect("mint");
    let token = &buf[..n];
    let dot = token.iter().rposition(|&b| b == b'.').expect("three parts");
    let mut sig = [0u8; 64];
    let (len, _) = tether_jwt::b64::decode_into(&token[dot + 1..], &mut sig).expect("b64");
    tether_jwt::verify_signature(
        tether_jwt::Algorithm::Es256,
        key.public_key(),
        &token[..dot],
        &sig[..len],
    )
    .expect("signature verifies");
}

#[test]
fn certificates_and_csrs_round_trip_between_pem_and_der() {
    let key = tether_keys::KeyHandle::Software(generate(KeySpec::Es256).expect("keygen"));
    let cert = tether_keys::cert::self_signed(
        &key,
        "CN=dev-1",
        &[],
        tether_keys::cert::Validity {
            not_before: 1_790_000_000,
            days: 1,
        },
    )
    .expect("cert");
    let csr = tether_keys::cert::make_csr(&key, "CN=dev-1", &[]).expect("csr");
    for der in [cert, csr] {
        let parsed = parse(&der).expect("parse");
        let pem = reparse(&conv(&parsed, Target::Pem, false));
        assert_eq!(conv(&pem, Target::Der, false).bytes, der);
        assert_eq!(pem.fingerprint(), key.public_key().fingerprint());
    }
}
