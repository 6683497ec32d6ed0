//! Shared by the integration tests: keys, signers and token crafting.
#![allow(dead_code)]

pub mod jsonwebtoken_ring;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use tether_jwt::signers::{RingEs256Signer, RingRs256Signer};
use tether_jwt::{Claims, PublicKey, Signer, b64, mint};

pub const RSA_PKCS8: &[u8] = include_bytes!("../data/rsa2048-pkcs8.der");
pub const RSA_OTHER_PKCS8: &[u8] = include_bytes!("../data/rsa2048-other-pkcs8.der");
pub const NOW: i64 = 1_790_000_000; // 2026-09-21T14:13:20Z

/// A fresh P-256 key: its PKCS#8 and a signer.
pub fn es256() -> (Vec<u8>, RingEs256Signer) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("ring generates a P-256 key");
    let signer = RingEs256Signer::from_pkcs8(pkcs8.as_ref()).expect("ring reads its own PKCS#8");
    (pkcs8.as_ref().to_vec(), signer)
}

pub fn rs256() -> RingRs256Signer {
    RingRs256Signer::from_pkcs8(RSA_PKCS8).expect("test RSA key loads")
}

pub fn rs256_other() -> RingRs256Signer {
    RingRs256Signer::from_pkcs8(RSA_OTHER_PKCS8).expect("second test RSA key loads")
}

/// A token minted by tether for `aud`, valid from `iat` for `life` seconds.
pub fn token(signer: &dyn Signer, aud: &str, iat: i64, life: i64) -> String {
    let mut buf = [0u8; 2048];
    let claims = Claims {
        aud,
        iat: iat as u64,
        exp: (iat + life) as u64,
    };
    let n = mint(signer, &claims, &mut buf).expect("mint succeeds");
    String::from_utf8(buf[..n].to_vec()).expect("tokens are ASCII")
}

/// Signs arbitrary header and claims text, to craft tokens with mistakes in them.
pub fn craft(signer: &dyn Signer, header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(claims.as_bytes())
    );
    let sig = sign(signer, input.as_bytes());
    format!("{input}.{}", b64::encode(&sig))
}

pub fn sign(signer: &dyn Signer, input: &[u8]) -> Vec<u8> {
    let mut sig = [0u8; 512];
    let n = signer.sign(input, &mut sig).expect("signs");
    sig[..n].to_vec()
}

pub fn claims(aud: &str, iat: i64, exp: i64) -> String {
    format!(r#"{{"iat":{iat},"exp":{exp},"aud":"{aud}"}}"#)
}

pub const ES256_HEADER: &str = r#"{"alg":"ES256","typ":"JWT"}"#;
pub const RS256_HEADER: &str = r#"{"alg":"RS256","typ":"JWT"}"#;

pub fn public(signer: &RingEs256Signer) -> PublicKey {
    signer.public_key()
}
