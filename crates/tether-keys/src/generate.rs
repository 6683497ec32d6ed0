//! Key generation: P-256 with ring, RSA with RustCrypto `rsa` (ring cannot generate
//! RSA keys). Both come back as a [`PrivateKey`].

use ring::rand::{SecureRandom, SystemRandom};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::rand_core::{TryCryptoRng, TryRng};
use tether_jwt::Algorithm;

use crate::PrivateKey;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// EC P-256, for ES256.
    Es256,
    /// RSA with 2048, 3072 or 4096 bits, for RS256.
    Rs256 {
        /// Modulus size.
        bits: u32,
    },
}

impl KeySpec {
    /// From an algorithm and optional RSA size (2048 by default).
    pub fn new(alg: Algorithm, bits: Option<u32>) -> Result<Self, GenError> {
        match (alg, bits) {
            (Algorithm::Es256, None | Some(256)) => Ok(KeySpec::Es256),
            (Algorithm::Es256, Some(b)) => Err(GenError::Size(format!(
                "ES256 keys are P-256 (256 bits); --bits {b} applies to RS256"
            ))),
            (Algorithm::Rs256, None) => Ok(KeySpec::Rs256 { bits: 2048 }),
            (Algorithm::Rs256, Some(bits @ (2048 | 3072 | 4096))) => Ok(KeySpec::Rs256 { bits }),
            (Algorithm::Rs256, Some(b)) => Err(GenError::Size(format!(
                "RSA keys of {b} bits: use 2048, 3072 or 4096"
            ))),
        }
    }
}

/// Why a key could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenError {
    /// An unsupported size.
    #[error("{0}")]
    Size(String),
    /// The generator failed (no randomness, or an internal error).
    #[error("key generation failed: {0}")]
    Failed(String),
}

/// The system random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
struct RngFailed;

/// ring's system RNG as a `rand_core` RNG for the `rsa` crate.
struct SystemRng(SystemRandom);

impl TryRng for SystemRng {
    type Error = RngFailed;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b).map_err(|_| RngFailed)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b).map_err(|_| RngFailed)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst).map_err(|_| RngFailed)
    }
}

impl TryCryptoRng for SystemRng {}

/// Generates a new private key.
pub fn generate(spec: KeySpec) -> Result<PrivateKey, GenError> {
    let failed = |e: &dyn std::fmt::Display| GenError::Failed(e.to_string());
    match spec {
        KeySpec::Es256 => {
            let rng = SystemRandom::new();
            let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rng,
            )
            .map_err(|e| failed(&e))?;
            PrivateKey::from_pkcs8_der(doc.as_ref()).map_err(|e| failed(&e))
        }
        KeySpec::Rs256 { bits } => {
            let key = rsa::PrivateKey::new(&mut SystemRng(SystemRandom::new()), bits as usize)
                .map_err(|e| failed(&e))?;
            let der = key.to_pkcs1_der().map_err(|e| failed(&e))?;
            PrivateKey::from_pkcs1_der(der.as_bytes()).map_err(|e| failed(&e))
        }
    }
}
