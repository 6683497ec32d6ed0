//! Property tests for `parse`: the fallback for the `keys_parse` fuzz target
//! (fuzz/, nightly only) in the normal test run, with the same checks, on
//! arbitrary bytes and on keys, certificates and CSRs with a few bytes changed
//! or cut off.

use proptest::collection::vec;
use proptest::prelude::*;
use tether_keys::cert::{Validity, make_csr, self_signed};
use tether_keys::convert::{Options, Target, convert, pem_text, structure_der};
use tether_keys::generate::{KeySpec, generate};
use tether_keys::register::registration;
use tether_keys::{KeyHandle, parse};

/// Valid inputs of every kind, made once.
fn inputs() -> &'static [Vec<u8>] {
    static INPUTS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    INPUTS.get_or_init(|| {
        let key = generate(KeySpec::Es256).expect("keygen");
        let parsed = parse(&key.pkcs8_der()).expect("own PKCS#8");
        let pem = |t| {
            convert(&parsed, t, Options::default())
                .expect("converts")
                .bytes
        };
        let der = |t| {
            let options = Options {
                der: true,
                ..Options::default()
            };
            convert(&parsed, t, options).expect("converts").bytes
        };
        let handle = KeyHandle::Software(key);
        let validity = Validity {
            not_before: 1_790_000_000,
            days: 1,
        };
        let cert = self_signed(&handle, "CN=dev-1", &[], validity).expect("cert");
        let csr = make_csr(&handle, "CN=dev-1", &[]).expect("csr");
        vec![
            pem(Target::Pkcs8),
            der(Target::Sec1),
            pem(Target::Spki),
            der(Target::Spki),
            convert(&parsed, Target::Raw, Options::default())
                .expect("raw")
                .bytes,
            pem_text("CERTIFICATE", &cert).into_bytes(),
            cert,
            csr,
            include_bytes!("../../tether-jwt/tests/data/rsa2048-pkcs8.der").to_vec(),
        ]
    })
}

/// What parses reads back, as the same thing with the same fingerprint, from
/// its own PEM and DER, its SPKI and (keys) its PKCS#8.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(parsed) = parse(bytes) else {
        return Ok(());
    };
    prop_assert!(!parsed.describe().is_empty());
    let fingerprint = parsed.fingerprint();
    let (label, der) = structure_der(&parsed);
    for again in [pem_text(label, &der).into_bytes(), der] {
        let again = parse(&again).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again.fingerprint(), fingerprint);
        if parsed.original_der().is_some() {
            prop_assert_eq!(again.kind(), parsed.kind());
        }
    }
    let spki = convert(&parsed, Target::Spki, Options::default())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let public = parse(&spki.bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(public.fingerprint(), fingerprint);
    if parsed.is_private() {
        let pkcs8 = convert(&parsed, Target::Pkcs8, Options::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = parse(&pkcs8.bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again.fingerprint(), fingerprint);
    }
    let _ = registration(&parsed, 1_790_000_000);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes(bytes in vec(any::<u8>(), 0..200), pem in any::<bool>()) {
        check(&bytes)?;
        if pem {
            let wrapped = [b"-----BEGIN PRIVATE KEY-----\n", &bytes[..], b"\n-----END PRIVATE KEY-----\n"].concat();
            check(&wrapped)?;
        }
    }

    #[test]
    fn damaged_inputs(
        which in any::<prop::sample::Index>(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = which.get(inputs()).clone();
        check(&bytes)?;
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        check(&bytes)?;
        bytes.truncate(cut.index(bytes.len() + 1));
        check(&bytes)?;
    }
}
