//! One JWS signature checked against one public key, with the reason when it fails.
//!
//! [`verify_signature`] does the checks that need no cryptography first (the key type
//! fits `alg`, the signature length fits the key, RSA keys have at least 2048 bits),
//! so [`SignatureError`] can say which of them failed. The cryptography is one of
//! two backends chosen at build time: ring (`ring` feature; servers and tools) or
//! RustCrypto P-256 (`p256` feature; ES256 only, works without `std`).

use core::fmt;

use crate::{Algorithm, KeyType, PublicKey};

/// Why a signature did not verify with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The token's algorithm needs a different type of key.
    KeyTypeMismatch {
        /// The token's `alg`.
        alg: Algorithm,
        /// The key's type.
        key: KeyType,
    },
    /// The signature has the wrong size for the algorithm and key.
    WrongLength {
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// The signature does not match the signed bytes under this key.
    Mismatch,
    /// This build or this key cannot be used to verify.
    Unsupported(&'static str),
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::KeyTypeMismatch { alg, key } => {
                write!(f, "a {alg} token cannot be verified with an {key} key")
            }
            SignatureError::WrongLength { expected, found } => {
                write!(f, "the signature is {found} bytes; {expected} expected")
            }
            SignatureError::Mismatch => f.write_str("the signature does not match"),
            SignatureError::Unsupported(why) => f.write_str(why),
        }
    }
}

impl core::error::Error for SignatureError {}

/// Verifies a JWS signature over `message` (the signing input exactly as sent).
pub fn verify_signature(
    alg: Algorithm,
    key: &PublicKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    if alg.key_type() != key.key_type() {
        return Err(SignatureError::KeyTypeMismatch {
            alg,
            key: key.key_type(),
        });
    }
    let expected = match alg {
        Algorithm::Es256 => 64,
        Algorithm::Rs256 => key.rsa_bits().div_ceil(8) as usize,
    };
    if signature.len() != expected {
        return Err(SignatureError::WrongLength {
            expected,
            found: signature.len(),
        });
    }
    if alg == Algorithm::Rs256 && key.rsa_bits() < 2048 {
        return Err(SignatureError::Unsupported(
            "RSA keys under 2048 bits are not accepted",
        ));
    }
    backend(alg, key, message, signature)
}

#[cfg(feature = "ring")]
fn backend(
    alg: Algorithm,
    key: &PublicKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    use ring::signature as rs;
    let params: &dyn rs::VerificationAlgorithm = match alg {
        Algorithm::Es256 => &rs::ECDSA_P256_SHA256_FIXED,
        Algorithm::Rs256 => &rs::RSA_PKCS1_2048_8192_SHA256,
    };
    rs::UnparsedPublicKey::new(params, key.key_bytes())
        .verify(message, signature)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(all(not(feature = "ring"), feature = "p256"))]
fn backend(
    alg: Algorithm,
    key: &PublicKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    use p256::ecdsa::signature::Verifier as _;
    if alg != Algorithm::Es256 {
        return Err(SignatureError::Unsupported(
            "RS256 verification needs the `ring` feature",
        ));
    }
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(key.key_bytes())
        .map_err(|_| SignatureError::Unsupported("invalid P-256 key"))?;
    let sig =
        p256::ecdsa::Signature::from_slice(signature).map_err(|_| SignatureError::Mismatch)?;
    vk.verify(message, &sig)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(not(any(feature = "ring", feature = "p256")))]
fn backend(_: Algorithm, _: &PublicKey, _: &[u8], _: &[u8]) -> Result<(), SignatureError> {
    Err(SignatureError::Unsupported(
        "no verification backend: enable `ring` or `p256`",
    ))
}
