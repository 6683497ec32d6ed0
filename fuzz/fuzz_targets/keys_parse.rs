//! tether-keys' `parse` (PEM, DER, hex and raw keys, certificates, CSRs) on
//! arbitrary bytes.
//!
//! Checked: whatever parses is described, keeps the DER it was read from, and
//! reads back as the same kind of thing with the same key fingerprint from its
//! own PEM and DER re-encodings, its SPKI and (keys) its PKCS#8; registration never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_keys::convert::{Options, Target, convert, pem_text, structure_der};
use tether_keys::register::registration;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = tether_keys::parse(data) else {
        return;
    };
    assert!(!parsed.describe().is_empty());
    let fingerprint = parsed.fingerprint();

    let (label, der) = structure_der(&parsed);
    if let Some(original) = parsed.original_der() {
        assert_eq!(original, &der[..]);
    }
    for bytes in [pem_text(label, &der).into_bytes(), der] {
        let again = tether_keys::parse(&bytes).expect("own encoding parses");
        assert_eq!(again.fingerprint(), fingerprint);
        if parsed.original_der().is_some() {
            assert_eq!(again.kind(), parsed.kind());
        }
    }

    let spki = convert(&parsed, Target::Spki, Options::default()).expect("every key has an SPKI");
    let public = tether_keys::parse(&spki.bytes).expect("own SPKI parses");
    assert_eq!(public.fingerprint(), fingerprint);

    if parsed.is_private() {
        let pkcs8 = convert(&parsed, Target::Pkcs8, Options::default()).expect("a private key");
        let again = tether_keys::parse(&pkcs8.bytes).expect("own PKCS#8 parses");
        assert_eq!(again.fingerprint(), fingerprint);
        assert!(again.is_private());
    }

    let _ = registration(&parsed, 1_790_000_000);
});
