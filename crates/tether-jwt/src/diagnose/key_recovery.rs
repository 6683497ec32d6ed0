//! What a signature reveals about the key that made it, without that key: an RSA
//! signature opened with a public key (s^e mod n) shows whether that key made it and
//! over which hash; an ES256 signature yields the two public keys it can come from.

use alloc::vec;

use super::finding::Report;
use crate::{PublicKey, Segment};

/// An RSA signature opened with a public key: the PKCS#1 v1.5 block it holds.
pub(super) enum Opened {
    /// A SHA-256 digest (RS256).
    Sha256([u8; 32]),
    /// Another hash function, by name.
    OtherHash(&'static str),
}

/// Applies an RSA public key to a signature (s^e mod n) and reads the PKCS#1 v1.5
/// block. `None` when the block is not valid padding: the key did not make it.
pub(super) fn open_rsa_signature(key: &PublicKey, signature: &[u8]) -> Option<Opened> {
    use num_bigint::BigUint;
    let (n, e) = key.rsa_components()?;
    let n = BigUint::from_bytes_be(n);
    let s = BigUint::from_bytes_be(signature);
    if s >= n {
        return None;
    }
    let m = s.modpow(&BigUint::from_bytes_be(e), &n).to_bytes_be();
    let k = signature.len();
    let mut em = vec![0u8; k.saturating_sub(m.len())];
    em.extend_from_slice(&m);
    if em.len() != k || em[0] != 0 || em[1] != 1 {
        return None;
    }
    let ff = em[2..].iter().take_while(|&&b| b == 0xff).count();
    if ff < 8 || em.get(2 + ff) != Some(&0) {
        return None;
    }
    let t = &em[3 + ff..];
    if let Some(h) = t.strip_prefix(&crate::digest_info::SHA256[..]) {
        return h.try_into().ok().map(Opened::Sha256);
    }
    crate::digest_info::OTHERS
        .iter()
        .find(|(p, _)| t.starts_with(p))
        .map(|(_, name)| Opened::OtherHash(name))
}

/// The fingerprints of the public keys an ES256 signature (raw `r‖s`) over
/// `signing_input` can come from (ECDSA public key recovery): two candidates, one of
/// which made it if the token is intact. Empty when the signature is not one.
#[cfg(feature = "p256")]
pub fn es256_signers(
    signing_input: &[u8],
    signature: &[u8],
) -> alloc::vec::Vec<crate::Fingerprint> {
    use p256::ecdsa::{RecoveryId, Signature, VerifyingKey};
    use sha2::{Digest, Sha256};

    let Ok(sig) = Signature::from_slice(signature) else {
        return alloc::vec::Vec::new();
    };
    let prehash = Sha256::digest(signing_input);
    [false, true]
        .into_iter()
        .filter_map(|odd| {
            VerifyingKey::recover_from_prehash(&prehash, &sig, RecoveryId::new(odd, false)).ok()
        })
        .filter_map(|vk| PublicKey::from_p256_point(vk.to_sec1_point(false).as_bytes()).ok())
        .map(|k| k.fingerprint())
        .collect()
}

/// [`es256_signers`] of a compact token `header.claims.signature` (the signature in
/// base64url, padded or not). Empty when the token has no such signature.
#[cfg(feature = "p256")]
pub fn token_es256_signers(token: &str) -> alloc::vec::Vec<crate::Fingerprint> {
    let token = token.trim();
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return alloc::vec::Vec::new();
    };
    match crate::b64::decode(signature.as_bytes()) {
        Ok((signature, _)) => es256_signers(signing_input.as_bytes(), &signature),
        Err(_) => alloc::vec::Vec::new(),
    }
}

/// Reports the fingerprints of the public keys an ES256 signature over `message`
/// can come from (ECDSA public key recovery).
#[cfg(feature = "p256")]
pub(super) fn recovered_signers(
    message: &[u8],
    signature: &[u8],
    r: &mut Report,
    at: Option<(Segment, usize)>,
) {
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    use super::finding::{FindingCode, Severity};

    let fps: Vec<String> = es256_signers(message, signature)
        .iter()
        .map(ToString::to_string)
        .collect();
    if fps.is_empty() {
        return;
    }
    r.add(
        FindingCode::RecoveredSigner,
        Severity::Info,
        at,
        alloc::format!(
            "if the token is intact, it was signed by the private key of one of these public \
             keys: {}",
            fps.join(" or ")
        ),
        Some("run `tether keys inspect` on the device's key: if its fingerprint is listed, the server has a different key registered"),
    );
}

#[cfg(not(feature = "p256"))]
pub(super) fn recovered_signers(_: &[u8], _: &[u8], _: &mut Report, _: Option<(Segment, usize)>) {}
