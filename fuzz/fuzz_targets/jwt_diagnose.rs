//! `diagnose` on arbitrary text, with an ES256 and an RS256 key to check the
//! signature against.
//!
//! Checked: every finding has a message and an offset inside the input; a key
//! the diagnosis says verified is one of the context's keys; and the diagnosis
//! agrees with the verifier: a token `verify` accepts is diagnosed valid, with
//! the same key (alone: with several keys, diagnosis also reports each one
//! that does not fit, as an error).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_jwt::signers::{RingEs256Signer, RingRs256Signer};
use tether_jwt::{Context, Credential, PublicKey, Rules, diagnose, verify};

const NOW: i64 = 1_790_000_000;

fn keys() -> &'static [PublicKey] {
    static KEYS: std::sync::OnceLock<Vec<PublicKey>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let es = RingEs256Signer::from_scalar(&[7; 32]).expect("a valid scalar");
        let rsa = include_bytes!("../../crates/tether-jwt/tests/data/rsa2048-pkcs8.der");
        let rs = RingRs256Signer::from_pkcs8(rsa).expect("the test RSA key loads");
        vec![es.public_key(), rs.public_key()]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let keys = keys();
    let ctx = Context {
        project: Some("acme"),
        now: Some(NOW),
        keys,
        ..Context::default()
    };
    let d = diagnose(token, &ctx);
    for f in &d.findings {
        assert!(!f.message.is_empty(), "{f:?}");
        if let Some(offset) = f.offset {
            assert!(offset <= token.len(), "{f:?}");
        }
    }
    if let Some(i) = d.verified_with {
        assert!(i < keys.len());
    }
    let credentials: Vec<Credential> = keys.iter().cloned().map(Credential::new).collect();
    if let Ok(v) = verify(token, &Rules::new("acme", NOW), &credentials) {
        assert_eq!(d.verified_with, Some(v.credential));
        // Diagnosis reports every other key that does not fit as an error (the
        // doctor's "registered key vs the device's own" case), so validity is
        // compared with the verifying key alone.
        let alone = Context {
            keys: &keys[v.credential..=v.credential],
            ..ctx
        };
        let d = diagnose(token, &alone);
        assert!(
            d.is_valid(),
            "verify accepts, diagnose refuses: {:?}",
            d.findings
        );
        assert_eq!(d.verified_with, Some(0));
    }
});
