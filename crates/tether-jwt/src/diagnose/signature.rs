//! The signature, checked with every supplied key rather than stopping at the first,
//! and the evidence for why it fails: a DER or truncated ES256 signature, another key
//! that verifies (a wrongly registered key), a signature that verifies over the
//! canonical re-encoding (a re-encoded token), and what [`super::key_recovery`] can
//! read out of the signature itself.

use alloc::format;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use super::finding::{FindingCode, Report, Severity};
use super::key_recovery::{Opened, open_rsa_signature, recovered_signers};
use crate::b64;
use crate::ecdsa_der::{der_to_raw, is_der_signature};
use crate::{Algorithm, PublicKey, Segment, SignatureError, verify_signature};

/// What the signature check works from.
pub(super) struct Evidence<'a> {
    pub(super) alg: Algorithm,
    /// `header.claims` exactly as sent.
    pub(super) signing_input: &'a [u8],
    /// The decoded signature.
    pub(super) signature: &'a [u8],
    /// The header and claims parts as sent (base64url text).
    pub(super) parts: [&'a str; 2],
    /// Offset of the signature part in the token as given.
    pub(super) sig_offset: usize,
    /// Earlier findings already show the token's base64 or JSON is broken.
    pub(super) damaged: bool,
}

pub(super) fn check_signature(
    e: &Evidence<'_>,
    keys: &[PublicKey],
    r: &mut Report,
) -> Option<usize> {
    let at = Some((Segment::Signature, e.sig_offset));
    let mut signature: Vec<u8> = e.signature.to_vec();
    let mut length_ok = true;
    if e.alg == Algorithm::Es256 && signature.len() != 64 {
        let mut raw = [0u8; 64];
        if is_der_signature(&signature) && der_to_raw(&signature, &mut raw).is_ok() {
            r.add(
                FindingCode::DerSignature,
                Severity::Error,
                at,
                format!(
                    "the ES256 signature is a {}-byte DER ECDSA-Sig-Value (starts 0x30); JWS \
                     needs the raw 64-byte r||s",
                    signature.len()
                ),
                Some("convert the signature from DER to r||s before base64url-encoding it (mbedtls_ecdsa_write_signature, OpenSSL and most secure elements return DER); tether_jwt::ecdsa_der::der_to_raw does it"),
            );
            signature = raw.to_vec();
        } else {
            r.add(
                FindingCode::SignatureLength,
                Severity::Error,
                at,
                format!("the ES256 signature is {} bytes; it must be 64 (r||s)", signature.len()),
                Some("the signature was truncated or mangled (e.g. treated as a C string with a 0 byte); encode all 64 bytes"),
            );
            length_ok = false;
        }
    }
    if keys.is_empty() {
        r.add(
            FindingCode::SignatureNotChecked,
            Severity::Info,
            at,
            "no public key given, so the signature was not checked".into(),
            Some("pass the registered public key or certificate (--key) to check it"),
        );
        if e.alg == Algorithm::Es256 && length_ok {
            recovered_signers(e.signing_input, &signature, r, at);
        }
        return None;
    }
    let mut verified = None;
    let mut failed = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match verify_signature(e.alg, key, e.signing_input, &signature) {
            Ok(()) => {
                if verified.is_none() {
                    verified = Some(i);
                }
                let how = if signature.len() == e.signature.len() { "" } else { " after DER→r||s conversion" };
                r.add(
                    FindingCode::SignatureVerified,
                    Severity::Info,
                    at,
                    format!("the signature verifies{how} with key #{} ({})", i + 1, key.fingerprint()),
                    None,
                );
            }
            Err(SignatureError::KeyTypeMismatch { alg, key: kt }) => r.add(
                FindingCode::KeyTypeMismatch,
                Severity::Error,
                Some((Segment::Header, 0)),
                format!(
                    "the token says alg {alg} but key #{} is an {kt} key ({}): {alg} needs an {} key",
                    i + 1,
                    key.fingerprint(),
                    alg.key_type()
                ),
                Some(&format!(
                    "make the header's alg match the device's key: {} for this key",
                    kt.algorithm()
                )),
            ),
            Err(SignatureError::WrongLength { expected, found }) => {
                r.add(
                    FindingCode::SignatureLength,
                    Severity::Error,
                    at,
                    format!(
                        "the signature is {found} bytes but key #{} (RSA {} bits) makes {expected}-byte signatures",
                        i + 1,
                        key.rsa_bits()
                    ),
                    Some("the token was truncated, or it was signed with a different RSA key size"),
                );
                failed.push(i);
            }
            Err(SignatureError::Unsupported(why)) => r.add(
                FindingCode::SignatureMismatch,
                Severity::Error,
                at,
                format!("key #{} ({}) cannot be used: {why}", i + 1, key.fingerprint()),
                Some("register an RSA key of at least 2048 bits or a P-256 key"),
            ),
            Err(SignatureError::Mismatch) => {
                r.add(
                    FindingCode::SignatureMismatch,
                    Severity::Error,
                    at,
                    format!(
                        "the signature does not verify with key #{} ({})",
                        i + 1,
                        key.fingerprint()
                    ),
                    None,
                );
                failed.push(i);
            }
        }
    }
    if let Some(good) = verified {
        for &i in &failed {
            r.add(
                FindingCode::WrongKey,
                Severity::Error,
                at,
                format!(
                    "the token was signed with the private key of key #{} ({}), not of key #{} ({})",
                    good + 1,
                    keys[good].fingerprint(),
                    i + 1,
                    keys[i].fingerprint()
                ),
                Some(&format!(
                    "if key #{} is what the server has registered, register key #{} instead (or give the device the private key of #{})",
                    i + 1,
                    good + 1,
                    i + 1
                )),
            );
        }
        return verified;
    }
    if failed.is_empty() {
        return None;
    }
    explain_mismatch(e, keys, &failed, &signature, r, at);
    None
}

/// Works out, for signatures that verify with no key, whether the key or the token
/// is wrong.
fn explain_mismatch(
    e: &Evidence<'_>,
    keys: &[PublicKey],
    failed: &[usize],
    signature: &[u8],
    r: &mut Report,
    at: Option<(Segment, usize)>,
) {
    if e.damaged {
        r.add(
            FindingCode::TokenDamaged,
            Severity::Error,
            at,
            "the token is damaged (see the base64/JSON findings above), so no signature can verify"
                .into(),
            Some("pass the token through unchanged: no re-encoding, truncation or line wrapping"),
        );
        return;
    }
    if let Some(key) = canonical_reencoding_verifies(e, keys, failed, signature) {
        r.add(
            FindingCode::TokenDamaged,
            Severity::Error,
            at,
            format!(
                "the signature verifies with key #{} ({}) over the canonical base64url of the \
                 header and claims, but the token was sent with a different encoding: it was \
                 re-encoded after signing",
                key + 1,
                keys[key].fingerprint()
            ),
            Some("sign exactly the bytes you send: encode header and claims as unpadded base64url first, then sign `header.claims`"),
        );
        return;
    }
    let hash: [u8; 32] = Sha256::digest(e.signing_input).into();
    for &i in failed {
        let key = &keys[i];
        if e.alg != Algorithm::Rs256 || signature.len() * 8 < key.rsa_bits() as usize {
            continue;
        }
        match open_rsa_signature(key, signature) {
            Some(Opened::Sha256(h)) if h != hash => r.add(
                FindingCode::TokenDamaged,
                Severity::Error,
                at,
                format!(
                    "the signature was made with key #{} ({}) but over different bytes: the \
                     header or claims were changed after signing",
                    i + 1,
                    key.fingerprint()
                ),
                Some("sign the exact `header.claims` string that is sent, and do not edit or re-serialise the token afterwards"),
            ),
            Some(Opened::Sha256(_)) => {}
            Some(Opened::OtherHash(name)) => r.add(
                FindingCode::TokenDamaged,
                Severity::Error,
                at,
                format!(
                    "the signature was made with key #{} ({}) but with {name}, while alg says \
                     RS256 (SHA-256)",
                    i + 1,
                    key.fingerprint()
                ),
                Some("sign with RSASSA-PKCS1-v1_5 and SHA-256 (RS256)"),
            ),
            None => r.add(
                FindingCode::WrongKey,
                Severity::Error,
                at,
                format!(
                    "the signature was not made with key #{} ({}): it opens to garbage under \
                     that public key, so the device signs with a different private key",
                    i + 1,
                    key.fingerprint()
                ),
                Some("register the public key that matches the device's private key (`tether keys inspect` shows both fingerprints), or give the device the private key of the registered one"),
            ),
        }
    }
    if e.alg == Algorithm::Es256 {
        r.add(
            FindingCode::WrongKey,
            Severity::Error,
            at,
            "the ES256 signature verifies with none of the given keys: most often the device \
             holds a different private key than the one registered; less often the token \
             was altered after signing"
                .into(),
            Some("compare fingerprints: `tether keys inspect <device private key>` must show one of the keys above; the recovered signer fingerprints below tell which key made this signature"),
        );
        recovered_signers(e.signing_input, signature, r, at);
    }
}

fn canonical_reencoding_verifies(
    e: &Evidence<'_>,
    keys: &[PublicKey],
    failed: &[usize],
    signature: &[u8],
) -> Option<usize> {
    let (h, hq) = b64::decode(e.parts[0].as_bytes()).ok()?;
    let (c, cq) = b64::decode(e.parts[1].as_bytes()).ok()?;
    if hq.is_canonical() && cq.is_canonical() {
        return None;
    }
    let canonical = format!("{}.{}", b64::encode(&h), b64::encode(&c));
    failed
        .iter()
        .copied()
        .find(|&i| verify_signature(e.alg, &keys[i], canonical.as_bytes(), signature).is_ok())
}
