use core::fmt;

use crate::Algorithm;

/// Produces the JWS signature of a token.
///
/// Implement it for whatever holds the device's private key: a software key
/// ([`crate::signers`]), a PKCS#11 token, or a secure element behind a firmware API.
/// Engines that hash internally or return DER ECDSA signatures can adapt with
/// [`crate::ecdsa_der::der_to_raw`].
pub trait Signer {
    /// The algorithm this key signs with; it becomes the token's `alg`.
    fn algorithm(&self) -> Algorithm;

    /// Signs `message` (the JWS signing input, `b64url(header).b64url(claims)`) and
    /// writes the JWS signature into `out`: the raw 64-byte `r‖s` for ES256, the
    /// PKCS#1 v1.5 signature (modulus length) for RS256. Returns its length.
    fn sign(&self, message: &[u8], out: &mut [u8]) -> Result<usize, SignError>;
}

impl<S: Signer + ?Sized> Signer for &S {
    fn algorithm(&self) -> Algorithm {
        (**self).algorithm()
    }
    fn sign(&self, message: &[u8], out: &mut [u8]) -> Result<usize, SignError> {
        (**self).sign(message, out)
    }
}

#[cfg(feature = "alloc")]
impl<S: Signer + ?Sized> Signer for alloc::boxed::Box<S> {
    fn algorithm(&self) -> Algorithm {
        (**self).algorithm()
    }
    fn sign(&self, message: &[u8], out: &mut [u8]) -> Result<usize, SignError> {
        (**self).sign(message, out)
    }
}

/// Why a [`Signer`] could not sign.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// The output buffer cannot hold the signature.
    BufferTooSmall {
        /// Bytes the signature needs.
        needed: usize,
    },
    /// The key or device refused or failed; the text says why.
    Failed(&'static str),
    /// A backend error with details (PKCS#11 return codes and the like).
    #[cfg(feature = "alloc")]
    Backend(alloc::string::String),
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::BufferTooSmall { needed } => {
                write!(f, "signature buffer too small: {needed} bytes needed")
            }
            SignError::Failed(why) => write!(f, "signing failed: {why}"),
            #[cfg(feature = "alloc")]
            SignError::Backend(why) => write!(f, "signing failed: {why}"),
        }
    }
}

impl core::error::Error for SignError {}
