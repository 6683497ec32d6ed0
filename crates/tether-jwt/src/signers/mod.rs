//! Software signers: ring (std, fast) and RustCrypto P-256 (no_std, no allocator).
//! Anything else that holds a key (PKCS#11, a secure element) implements
//! [`crate::Signer`] itself.

use core::fmt;

#[cfg(feature = "p256")]
mod p256;
#[cfg(feature = "p256-table")]
mod p256_fixed_base;
#[cfg(feature = "ring")]
mod ring;

#[cfg(feature = "p256")]
pub use self::p256::P256Signer;
#[cfg(feature = "ring")]
pub use self::ring::{RingEs256Signer, RingRs256Signer};

/// Why a private key cannot become a signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRejected(pub &'static str);

impl fmt::Display for KeyRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "private key rejected: {}", self.0)
    }
}

impl core::error::Error for KeyRejected {}
