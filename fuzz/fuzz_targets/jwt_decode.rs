//! Token parsing and verification on arbitrary text, and base64url on arbitrary
//! bytes.
//!
//! Checked: `Token::parse` offsets and signing input point into the token; the
//! verifier never accepts what does not parse, and what it accepts has an allowed
//! algorithm; base64url that decodes without quirks re-encodes to the same text,
//! and any decoded bytes survive encode → decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_jwt::signers::RingEs256Signer;
use tether_jwt::{Credential, PublicKey, Rules, Token, b64, verify};

fn keys() -> &'static [Credential] {
    static KEYS: std::sync::OnceLock<Vec<Credential>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let public: PublicKey = RingEs256Signer::from_scalar(&[7; 32])
            .expect("a valid scalar")
            .public_key();
        vec![Credential::new(public)]
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok((bytes, quirks)) = b64::decode(data) {
        let text = b64::encode(&bytes);
        if quirks.is_canonical() {
            assert_eq!(text.as_bytes(), data);
        }
        let (again, q) = b64::decode(text.as_bytes()).expect("own encoding decodes");
        assert_eq!(again, bytes);
        assert!(q.is_canonical());
    }

    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Token::parse(token);
    if let Ok(t) = &parsed {
        assert!(token.starts_with(t.signing_input));
        assert!(t.offsets.windows(2).all(|w| w[0] < w[1]));
        assert!(t.offsets[2] < token.len());
        assert_eq!(&token[t.offsets[1] - 1..t.offsets[1]], ".");
        assert_eq!(&token[t.offsets[2] - 1..t.offsets[2]], ".");
    }
    let now = 1_790_000_000;
    if let Ok(v) = verify(token, &Rules::new("acme", now), keys()) {
        let t = parsed.expect("a verified token parses");
        assert_eq!(t.algorithm(), Some(v.algorithm), "{v:?}");
        assert!(v.iat <= v.exp && v.exp - v.iat <= 86_400, "{v:?}");
    }
});
