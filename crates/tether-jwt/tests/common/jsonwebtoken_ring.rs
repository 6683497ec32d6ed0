//! A ring `CryptoProvider` for the `jsonwebtoken` crate (it ships only aws-lc-rs and
//! RustCrypto backends), so the comparison uses the same crypto as tether.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as rs, EcdsaKeyPair, RsaKeyPair};

enum Key {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

struct RingSigner(Algorithm, Key);

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        match &self.1 {
            Key::Ec(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::new()),
            Key::Rsa(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(&rs::RSA_PKCS1_SHA256, &rng, msg, &mut out)
                    .map_err(|_| Error::new())?;
                Ok(out)
            }
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.0
    }
}

struct RingVerifier(Algorithm, Vec<u8>);

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), Error> {
        let alg: &dyn rs::VerificationAlgorithm = match self.0 {
            Algorithm::ES256 => &rs::ECDSA_P256_SHA256_FIXED,
            _ => &rs::RSA_PKCS1_2048_8192_SHA256,
        };
        rs::UnparsedPublicKey::new(alg, &self.1)
            .verify(msg, sig)
            .map_err(|_| Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.0
    }
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let key = match alg {
        Algorithm::ES256 => Key::Ec(
            EcdsaKeyPair::from_pkcs8(
                &rs::ECDSA_P256_SHA256_FIXED_SIGNING,
                key.as_bytes(),
                &SystemRandom::new(),
            )
            .map_err(|_| ErrorKind::InvalidEcdsaKey)?,
        ),
        Algorithm::RS256 => {
            let der = key.as_bytes();
            let pair = RsaKeyPair::from_der(der).or_else(|_| RsaKeyPair::from_pkcs8(der));
            Key::Rsa(pair.map_err(|_| ErrorKind::InvalidRsaKey("ring".into()))?)
        }
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(RingSigner(*alg, key)))
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match alg {
        Algorithm::ES256 | Algorithm::RS256 => Ok(Box::new(RingVerifier(
            *alg,
            key.try_get_as_bytes()?.to_vec(),
        ))),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: jsonwebtoken::crypto::KeyUtils::new_unimplemented(),
};

/// Installs the provider once per process.
pub fn install() {
    let _ = PROVIDER.install_default();
}
