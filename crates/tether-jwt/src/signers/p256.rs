use p256::ecdsa::SigningKey;

use super::KeyRejected;
use crate::{Algorithm, SignError, Signer};

/// ES256 with the RustCrypto `p256` crate: deterministic (RFC 6979) signatures, no
/// `std`, no allocator; right for devices, not servers. With the `p256-table` feature
/// the generator multiplication reads a 33 KB precomputed table (read-only data) and
/// signing is about seven times faster; the signatures are the same bytes either way.
#[derive(Clone)]
pub struct P256Signer {
    key: SigningKey,
}

impl core::fmt::Debug for P256Signer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("P256Signer(..)")
    }
}

impl P256Signer {
    /// From the 32-byte private scalar (big-endian), as secure engines and SEC1 hold it.
    pub fn from_scalar(scalar: &[u8]) -> Result<Self, KeyRejected> {
        let key = SigningKey::from_slice(scalar)
            .map_err(|_| KeyRejected("not a valid P-256 private scalar (32 bytes, 0 < d < n)"))?;
        Ok(P256Signer { key })
    }

    /// The public key as an uncompressed point `04‖x‖y`.
    pub fn public_point(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        let point = self.key.verifying_key().to_sec1_point(false);
        out.copy_from_slice(point.as_bytes());
        out
    }
}

impl P256Signer {
    /// `r‖s`: through the precomputed table when the `p256-table` feature is on.
    #[cfg(feature = "p256-table")]
    fn sign_raw(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        super::p256_fixed_base::sign(self.key.as_nonzero_scalar(), message)
            .ok_or(SignError::Failed("P-256 signing failed"))
    }

    #[cfg(not(feature = "p256-table"))]
    fn sign_raw(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        use p256::ecdsa::Signature;
        use p256::ecdsa::signature::Signer as _;
        let sig: Signature = self
            .key
            .try_sign(message)
            .map_err(|_| SignError::Failed("P-256 signing failed"))?;
        Ok(sig.to_bytes().into())
    }
}

impl Signer for P256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Es256
    }

    fn sign(&self, message: &[u8], out: &mut [u8]) -> Result<usize, SignError> {
        let out = out
            .get_mut(..64)
            .ok_or(SignError::BufferTooSmall { needed: 64 })?;
        out.copy_from_slice(&self.sign_raw(message)?);
        Ok(64)
    }
}
