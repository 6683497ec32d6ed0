use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};

use super::KeyRejected;
use crate::{Algorithm, PublicKey, SignError, Signer};

/// ES256 with ring (std). Randomised ECDSA; ~20 µs per signature.
#[derive(Debug)]
pub struct RingEs256Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl RingEs256Signer {
    /// From a DER PKCS#8 `PrivateKeyInfo` that includes the public key (what
    /// `openssl genpkey` and `tether keys gen` write).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyRejected> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|_| KeyRejected("not a P-256 PKCS#8 key with its public key included"))?;
        Ok(RingEs256Signer { key, rng })
    }

    /// From the 32-byte private scalar and the 65-byte uncompressed public point.
    pub fn from_scalar_and_point(scalar: &[u8], point: &[u8]) -> Result<Self, KeyRejected> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            scalar,
            point,
            &rng,
        )
        .map_err(|_| KeyRejected("P-256 private scalar and public point do not form a key pair"))?;
        Ok(RingEs256Signer { key, rng })
    }

    /// From the 32-byte private scalar alone (the public point is computed).
    #[cfg(feature = "p256")]
    pub fn from_scalar(scalar: &[u8]) -> Result<Self, KeyRejected> {
        let point = crate::signers::P256Signer::from_scalar(scalar)?.public_point();
        Self::from_scalar_and_point(scalar, &point)
    }

    /// The public key that verifies this signer's tokens.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_p256_point(self.key.public_key().as_ref())
            .unwrap_or_else(|_| unreachable!("ring returns a valid uncompressed P-256 point"))
    }
}

impl Signer for RingEs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Es256
    }

    fn sign(&self, message: &[u8], out: &mut [u8]) -> Result<usize, SignError> {
        let sig = self
            .key
            .sign(&self.rng, message)
            .map_err(|_| SignError::Failed("ring ECDSA signing failed"))?;
        let sig = sig.as_ref();
        let out = out
            .get_mut(..sig.len())
            .ok_or(SignError::BufferTooSmall { needed: sig.len() })?;
        out.copy_from_slice(sig);
        Ok(sig.len())
    }
}

/// RS256 with ring (std): RSASSA-PKCS1-v1_5 with SHA-256, 2048–8192-bit keys.
#[derive(Debug)]
pub struct RingRs256Signer {
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl RingRs256Signer {
    /// From a DER PKCS#8 `PrivateKeyInfo` (`BEGIN PRIVATE KEY`).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyRejected> {
        let key = RsaKeyPair::from_pkcs8(der)
            .map_err(|_| KeyRejected("not an RSA PKCS#8 key of 2048 to 8192 bits"))?;
        Ok(RingRs256Signer {
            key,
            rng: SystemRandom::new(),
        })
    }

    /// From a DER PKCS#1 `RSAPrivateKey` (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyRejected> {
        let key = RsaKeyPair::from_der(der)
            .map_err(|_| KeyRejected("not an RSA PKCS#1 key of 2048 to 8192 bits"))?;
        Ok(RingRs256Signer {
            key,
            rng: SystemRandom::new(),
        })
    }

    /// The public key that verifies this signer's tokens.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_rsa_pkcs1_der(self.key.public().as_ref())
            .unwrap_or_else(|_| unreachable!("ring returns a valid DER RSAPublicKey"))
    }
}

impl Signer for RingRs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Rs256
    }

    fn sign(&self, message: &[u8], out: &mut [u8]) -> Result<usize, SignError> {
        let len = self.key.public().modulus_len();
        let out = out
            .get_mut(..len)
            .ok_or(SignError::BufferTooSmall { needed: len })?;
        self.key
            .sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, out)
            .map_err(|_| SignError::Failed("ring RSA signing failed"))?;
        Ok(len)
    }
}
