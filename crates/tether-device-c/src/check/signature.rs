//! The signature: its encoding (DER where JWS wants `r||s`), its length, whether it
//! verifies with the key given, and if not, whether the key or the token is wrong.

use core::fmt;

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest as _, Sha256};
use tether_jwt::Algorithm;
use tether_jwt::b64;
use tether_jwt::ecdsa_der::der_to_raw;

use super::report::{Report, Severity};
use super::rsa::{self, Opened};
use crate::check::finding::tether_finding::*;
use crate::sizes::{TETHER_CHECK_MAX_TOKEN_LEN, TETHER_SIGNATURE_MAX_LEN};

/// The public key a token is checked with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key<'a> {
    /// A P-256 point `04||x||y`, checked to be on the curve.
    P256([u8; 65]),
    /// An RSA modulus and exponent.
    Rsa {
        modulus: &'a [u8],
        exponent: &'a [u8],
    },
}

/// A key with its fingerprint, as findings name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked<'a> {
    pub(crate) key: Key<'a>,
    pub(crate) fingerprint: [u8; 32],
}

impl fmt::Display for Checked<'_> {
    /// `sha256:ab12cd34…`, as `tether keys inspect` and the server list keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.fingerprint[..4]
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))?;
        f.write_str("…")
    }
}

impl Checked<'_> {
    fn rsa_bits(&self) -> usize {
        match self.key {
            Key::Rsa { modulus, .. } => match modulus.first() {
                Some(&top) => (modulus.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
                None => 0,
            },
            Key::P256(_) => 0,
        }
    }
}

/// What the signature is checked over.
pub(crate) struct Evidence<'a> {
    pub(crate) alg: Algorithm,
    /// `header.claims` exactly as sent.
    pub(crate) signing_input: &'a [u8],
    /// The decoded signature.
    pub(crate) signature: &'a [u8],
    /// The decoded header and claims.
    pub(crate) decoded: [&'a [u8]; 2],
    /// Offset of the signature part in the token.
    pub(crate) offset: usize,
    /// Whether the base64 or JSON was already found broken.
    pub(crate) damaged: bool,
}

/// Why a signature does not verify with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    KeyTypeMismatch,
    WrongLength { expected: usize },
    Unsupported(&'static str),
    Mismatch,
}

/// Checks the signature and explains a mismatch.
pub(crate) fn check(e: &Evidence<'_>, key: Option<&Checked<'_>>, r: &mut Report<'_>) {
    let at = Some(e.offset);
    let mut raw = [0u8; 64];
    let mut signature = e.signature;
    let mut converted = false;
    if e.alg == Algorithm::Es256 && signature.len() != 64 {
        if der_to_raw(signature, &mut raw).is_ok() {
            r.add(
                TETHER_FINDING_DER_SIGNATURE,
                Severity::Error,
                at,
                format_args!(
                    "the ES256 signature is a {}-byte DER ECDSA-Sig-Value; JWS needs the raw 64-byte r||s (tether_jwt_mint converts it)",
                    signature.len()
                ),
            );
            signature = &raw;
            converted = true;
        } else {
            r.add(
                TETHER_FINDING_SIGNATURE_LENGTH,
                Severity::Error,
                at,
                format_args!(
                    "the ES256 signature is {} bytes; it must be 64 (r||s): truncated or mangled",
                    signature.len()
                ),
            );
        }
    }
    let Some(key) = key else {
        r.add(
            TETHER_FINDING_SIGNATURE_NOT_CHECKED,
            Severity::Info,
            at,
            format_args!("no public key given, so the signature was not checked"),
        );
        return;
    };
    let mut opened = None;
    let failure = match verify(e.alg, key, e.signing_input, signature, &mut opened) {
        Ok(()) => {
            let how = if converted {
                " after DER to r||s conversion"
            } else {
                ""
            };
            r.add(
                TETHER_FINDING_SIGNATURE_VERIFIED,
                Severity::Info,
                at,
                format_args!("the signature verifies{how} with key {key}"),
            );
            return;
        }
        Err(f) => f,
    };
    match failure {
        Failure::KeyTypeMismatch => {
            let (has, needs) = match e.alg {
                Algorithm::Es256 => ("an RSA", "RS256"),
                Algorithm::Rs256 => ("a P-256", "ES256"),
            };
            r.add(
                TETHER_FINDING_KEY_TYPE_MISMATCH,
                Severity::Error,
                Some(0),
                format_args!(
                    "the token says alg {} but key {key} is {has} key: use {needs}",
                    e.alg
                ),
            );
            return;
        }
        Failure::WrongLength { expected } => r.add(
            TETHER_FINDING_SIGNATURE_LENGTH,
            Severity::Error,
            at,
            format_args!(
                "the signature is {} bytes but key {key} makes {expected}-byte signatures",
                signature.len()
            ),
        ),
        Failure::Unsupported(why) => {
            r.add(
                TETHER_FINDING_SIGNATURE_MISMATCH,
                Severity::Error,
                at,
                format_args!("key {key} cannot be used: {why}"),
            );
            return;
        }
        Failure::Mismatch => r.add(
            TETHER_FINDING_SIGNATURE_MISMATCH,
            Severity::Error,
            at,
            format_args!("the signature does not verify with key {key}"),
        ),
    }
    explain(e, key, signature, opened, r);
}

/// For a signature that does not verify: is the key wrong, or the token?
fn explain(
    e: &Evidence<'_>,
    key: &Checked<'_>,
    signature: &[u8],
    opened: Option<Opened>,
    r: &mut Report<'_>,
) {
    let at = Some(e.offset);
    if e.damaged {
        r.add(
            TETHER_FINDING_TOKEN_DAMAGED,
            Severity::Error,
            at,
            format_args!(
                "the token is damaged (see the findings above), so no signature can verify"
            ),
        );
        return;
    }
    if canonical_verifies(e, key, signature) {
        r.add(
            TETHER_FINDING_TOKEN_DAMAGED,
            Severity::Error,
            at,
            format_args!("the signature verifies over the canonical base64url of header and claims: the token was re-encoded after signing; sign exactly the bytes you send"),
        );
        return;
    }
    match e.alg {
        Algorithm::Rs256 if signature.len() * 8 >= key.rsa_bits() => {
            let hash: [u8; 32] = Sha256::digest(e.signing_input).into();
            match opened {
                Some(Opened::Sha256(h)) if h != hash => r.add(
                    TETHER_FINDING_TOKEN_DAMAGED,
                    Severity::Error,
                    at,
                    format_args!("key {key} made the signature, but over other bytes: the header or claims changed after signing"),
                ),
                Some(Opened::Sha256(_)) => {}
                Some(Opened::OtherHash(name)) => r.add(
                    TETHER_FINDING_TOKEN_DAMAGED,
                    Severity::Error,
                    at,
                    format_args!("key {key} made the signature, but with {name}, while RS256 is SHA-256"),
                ),
                Some(Opened::Garbage) | None => r.add(
                    TETHER_FINDING_WRONG_KEY,
                    Severity::Error,
                    at,
                    format_args!("key {key} did not make this signature: the device signs with another private key than the one registered"),
                ),
            }
        }
        Algorithm::Rs256 => {}
        Algorithm::Es256 => r.add(
            TETHER_FINDING_WRONG_KEY,
            Severity::Error,
            at,
            format_args!("the signature does not verify with key {key}: most often the device holds another private key than the one registered; compare fingerprints"),
        ),
    }
}

/// Whether the signature verifies over the canonical re-encoding of header and claims
/// (only tried when the token was not sent canonically).
fn canonical_verifies(e: &Evidence<'_>, key: &Checked<'_>, signature: &[u8]) -> bool {
    let mut canonical = [0u8; TETHER_CHECK_MAX_TOKEN_LEN];
    let Some(h) = b64::encode_into(e.decoded[0], &mut canonical) else {
        return false;
    };
    let Some(dot) = canonical.get_mut(h) else {
        return false;
    };
    *dot = b'.';
    let Some(c) = b64::encode_into(e.decoded[1], &mut canonical[h + 1..]) else {
        return false;
    };
    let canonical = &canonical[..h + 1 + c];
    canonical != e.signing_input && verify(e.alg, key, canonical, signature, &mut None).is_ok()
}

/// Verifies `signature` over `message`; for RSA, `opened` gets what it opened to.
fn verify(
    alg: Algorithm,
    key: &Checked<'_>,
    message: &[u8],
    signature: &[u8],
    opened: &mut Option<Opened>,
) -> Result<(), Failure> {
    match (alg, key.key) {
        (Algorithm::Es256, Key::P256(point)) => {
            if signature.len() != 64 {
                return Err(Failure::WrongLength { expected: 64 });
            }
            let vk = VerifyingKey::from_sec1_bytes(&point)
                .map_err(|_| Failure::Unsupported("invalid P-256 key"))?;
            let sig = Signature::from_slice(signature).map_err(|_| Failure::Mismatch)?;
            vk.verify(message, &sig).map_err(|_| Failure::Mismatch)
        }
        (Algorithm::Rs256, Key::Rsa { modulus, exponent }) => {
            let expected = key.rsa_bits().div_ceil(8);
            if signature.len() != expected {
                // The block is still opened when the signature is longer (it may be garbage).
                if signature.len() > expected {
                    *opened = rsa::open(modulus, exponent, signature);
                }
                return Err(Failure::WrongLength { expected });
            }
            if key.rsa_bits() < 2048 {
                return Err(Failure::Unsupported(
                    "RSA keys under 2048 bits are not accepted",
                ));
            }
            if expected > TETHER_SIGNATURE_MAX_LEN {
                return Err(Failure::Unsupported(
                    "RSA keys over 4096 bits are not checked here",
                ));
            }
            *opened = rsa::open(modulus, exponent, signature);
            let hash: [u8; 32] = Sha256::digest(message).into();
            match opened {
                Some(Opened::Sha256(h)) if *h == hash => Ok(()),
                _ => Err(Failure::Mismatch),
            }
        }
        _ => Err(Failure::KeyTypeMismatch),
    }
}
