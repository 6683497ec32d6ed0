//! Property tests: parsing, verification and diagnosis never panic on any input, and
//! tampering with a valid token never yields a silent success.

mod common;

use common::*;
use proptest::prelude::*;
use tether_jwt::{Context, Credential, PublicKey, Rules, b64, diagnose, verify};

fn keys() -> &'static (tether_jwt::signers::RingEs256Signer, Vec<PublicKey>) {
    static KEYS: std::sync::OnceLock<(tether_jwt::signers::RingEs256Signer, Vec<PublicKey>)> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let (_, k) = es256();
        let public = vec![k.public_key(), rs256().public_key()];
        (k, public)
    })
}

fn token_like() -> impl Strategy<Value = String> {
    let seg = "[A-Za-z0-9_+/=-]{0,40}";
    prop_oneof![
        any::<String>(),
        (seg, seg, seg).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        (any::<Vec<u8>>(), any::<Vec<u8>>(), any::<Vec<u8>>()).prop_map(|(a, b, c)| format!(
            "{}.{}.{}",
            b64::encode(&a),
            b64::encode(&b),
            b64::encode(&c)
        )),
        ("\\PC{0,60}", "\\PC{0,60}").prop_map(|(h, c)| format!(
            "{}.{}.{}",
            b64::encode(h.as_bytes()),
            b64::encode(c.as_bytes()),
            b64::encode(&[0u8; 64])
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn nothing_panics_on_arbitrary_tokens(t in token_like(), now in any::<i64>()) {
        let (_, public) = keys();
        let creds: Vec<Credential> = public.iter().cloned().map(Credential::new).collect();
        let _ = verify(&t, &Rules::new("acme", now), &creds);
        let d = diagnose(&t, &Context { project: Some("acme"), now: Some(now), keys: public, ..Default::default() });
        for f in &d.findings {
            prop_assert!(!f.message.is_empty());
            if let Some(o) = f.offset { prop_assert!(o <= t.len()); }
        }
    }

    #[test]
    fn base64_round_trips(data in any::<Vec<u8>>()) {
        let text = b64::encode(&data);
        let (back, quirks) = b64::decode(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, data);
        prop_assert!(quirks.is_canonical());
    }

    #[test]
    fn minted_tokens_verify(aud in "[a-z][a-z0-9-]{2,29}", iat in 1_600_000_000i64..4_000_000_000, life in 1i64..=86_400) {
        let (k, public) = keys();
        let t = token(k, &aud, iat, life);
        let v = verify(&t, &Rules::new(&aud, iat), &[Credential::new(public[0].clone())]);
        prop_assert!(v.is_ok(), "{:?}", v);
    }

    #[test]
    fn tampering_never_passes_silently(pos in any::<prop::sample::Index>(), byte in 0x21u8..0x7f) {
        let (k, public) = keys();
        let t = token(k, "acme", NOW, 600);
        let i = pos.index(t.len());
        prop_assume!(t.as_bytes()[i] != byte);
        let mut bytes = t.clone().into_bytes();
        bytes[i] = byte;
        let tampered = String::from_utf8(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match verify(&tampered, &Rules::new("acme", NOW), &[Credential::new(public[0].clone())]) {
            Err(_) => {}
            // Only a different spelling of the same signature bytes (non-canonical last
            // character) can pass, and then with a warning.
            Ok(v) => prop_assert!(!v.warnings.is_empty(), "tampered token accepted silently: {tampered}"),
        }
    }
}

proptest! {
    /// Any r‖s survives DER and back; and the DER reader never panics or writes a
    /// wrong length on arbitrary bytes, or on a valid encoding with a changed length.
    #[test]
    fn der_signature_round_trip_and_garbage(
        raw in any::<[u8; 64]>(),
        junk in proptest::collection::vec(any::<u8>(), 0..100),
        cut in 0usize..72,
        bump in 1u8..4,
    ) {
        use tether_jwt::ecdsa_der::{MAX_DER_LEN, der_to_raw, raw_to_der};
        let mut der = [0u8; MAX_DER_LEN];
        let n = raw_to_der(&raw, &mut der);
        let mut back = [0u8; 64];
        prop_assert_eq!(der_to_raw(&der[..n], &mut back), Ok(()));
        prop_assert_eq!(back, raw);
        let _ = der_to_raw(&junk, &mut back);
        prop_assert!(der_to_raw(&der[..cut.min(n - 1)], &mut back).is_err());
        let mut longer = der;
        longer[1] = longer[1].wrapping_add(bump);
        prop_assert!(der_to_raw(&longer[..n], &mut back).is_err());
    }

    /// PEM: whatever DER goes in comes back out, with any line endings; arbitrary text
    /// never panics and never claims more bytes than the buffer holds.
    #[test]
    fn pem_round_trip_and_garbage(
        der in proptest::collection::vec(any::<u8>(), 0..400),
        crlf in any::<bool>(),
        text in "\\PC{0,300}",
        junk in proptest::collection::vec(any::<u8>(), 0..300),
        cap in 0usize..400,
    ) {
        use tether_jwt::pem;
        let mut out = vec![0u8; pem::encoded_len(11, der.len())];
        let n = pem::encode("PRIVATE KEY", &der, &mut out).expect("sized by encoded_len");
        let mut written = String::from_utf8(out[..n].to_vec()).expect("ascii");
        if crlf {
            written = written.replace('\n', "\r\n");
        }
        let mut back = vec![0u8; der.len()];
        let block = pem::decode(written.as_bytes(), &mut back).expect("decodes");
        prop_assert_eq!(block.label, "PRIVATE KEY");
        prop_assert_eq!(&back[..block.len], &der[..]);
        let mut small = vec![0u8; cap];
        match pem::decode(written.as_bytes(), &mut small) {
            Ok(b) => prop_assert!(b.len <= cap && b.len == der.len()),
            Err(pem::PemError::BufferTooSmall { needed }) => prop_assert_eq!(needed, der.len()),
            Err(e) => prop_assert!(false, "{e}"),
        }
        for input in [text.as_bytes(), &junk[..]] {
            let wrapped = [b"-----BEGIN X-----\n", input, b"\n-----END X-----\n"].concat();
            for candidate in [input, &wrapped[..]] {
                if let Ok(b) = pem::decode(candidate, &mut small) {
                    prop_assert!(b.len <= cap);
                }
            }
        }
    }
}

/// Valid key DER for the readers below to damage: RSA PKCS#8 and PKCS#1, and
/// the SPKI of an RSA and a P-256 key.
fn key_ders() -> &'static [Vec<u8>] {
    static DERS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    DERS.get_or_init(|| {
        let (_, public) = keys();
        vec![
            RSA_PKCS8.to_vec(),
            include_bytes!("data/rfc7515-a2-rsa-private-pkcs1.der").to_vec(),
            public[0].spki_der().to_vec(),
            public[1].spki_der().to_vec(),
        ]
    })
}

/// The key readers on `der`: never a panic, and the verifier's SPKI reader and
/// the device-side key file reader agree on what they both read.
fn check_key_readers(der: &[u8]) -> Result<(), TestCaseError> {
    use tether_jwt::keyfile::{self, KeyFile};
    let file = keyfile::read(der);
    if let Ok(KeyFile::P256Public { point }) = &file {
        prop_assert_eq!(point[0], 4);
    }
    if let Ok(key) = PublicKey::from_spki_der(der) {
        prop_assert_eq!(key.spki_der(), der);
        let file = file.map_err(|e| TestCaseError::fail(format!("keyfile refuses: {e}")))?;
        prop_assert_eq!(file.key_type(), key.key_type());
        prop_assert!(!file.is_private());
        if key.key_type() == tether_jwt::KeyType::Rsa {
            prop_assert_eq!(file.rsa_bits(), key.rsa_bits());
        }
    }
    Ok(())
}

proptest! {
    /// The fallback for the `pem_der` fuzz target's key checks: arbitrary bytes
    /// and valid key DER with a few bytes changed or cut off.
    #[test]
    fn key_readers_on_garbage_and_damaged_der(
        junk in proptest::collection::vec(any::<u8>(), 0..120),
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        check_key_readers(&junk)?;
        let mut der = which.get(key_ders()).clone();
        check_key_readers(&der)?;
        for (at, byte) in edits {
            let i = at.index(der.len());
            der[i] = byte;
        }
        check_key_readers(&der)?;
        der.truncate(cut.index(der.len() + 1));
        check_key_readers(&der)?;
    }
}
