//! A software private key (EC P-256 or RSA), held in the form each algorithm is
//! natively stored in (the 32-byte scalar, or the PKCS#1 `RSAPrivateKey`), and
//! re-encoded on demand as PKCS#8, PKCS#1, SEC1 or raw.

use der::asn1::{AnyRef, OctetStringRef};
use der::{Decode, Encode};
use tether_jwt::signers::{KeyRejected, P256Signer, RingEs256Signer, RingRs256Signer};
use tether_jwt::{KeyType, PublicKey, Signer};
use zeroize::Zeroizing;

use crate::names;
use crate::parse::ParseError;

/// A signer that can be shared between threads (what [`crate::open_signer`] returns).
pub type BoxSigner = Box<dyn Signer + Send + Sync>;

#[derive(Clone)]
enum Secret {
    /// Big-endian private scalar.
    EcP256(Zeroizing<[u8; 32]>),
    /// DER PKCS#1 `RSAPrivateKey`.
    Rsa(Zeroizing<Vec<u8>>),
}

/// A private key held in memory: EC P-256 (ES256) or RSA (RS256).
#[derive(Clone)]
pub struct PrivateKey {
    secret: Secret,
    public: PublicKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// From the 32-byte big-endian P-256 scalar; the public point is computed.
    pub fn from_p256_scalar(scalar: &[u8]) -> Result<Self, ParseError> {
        Self::from_p256_parts(scalar, None)
    }

    /// From a scalar and, when the file carried one, the public point stored next to it;
    /// a stored point that does not belong to the scalar is refused.
    pub(crate) fn from_p256_parts(
        scalar: &[u8],
        stored_point: Option<&[u8]>,
    ) -> Result<Self, ParseError> {
        let mut fixed = Zeroizing::new([0u8; 32]);
        // SEC1 says the scalar has the curve's size, but some writers drop leading zeros.
        if scalar.is_empty() || scalar.len() > 32 {
            return Err(ParseError::InvalidKey(format!(
                "a P-256 private scalar is 32 bytes, this one is {}",
                scalar.len()
            )));
        }
        fixed[32 - scalar.len()..].copy_from_slice(scalar);
        let signer = P256Signer::from_scalar(&fixed[..])
            .map_err(|e| ParseError::InvalidKey(e.0.to_string()))?;
        let point = signer.public_point();
        if let Some(stored) = stored_point {
            let stored_full = match stored.len() {
                64 => [&[4u8][..], stored].concat(),
                _ => stored.to_vec(),
            };
            if stored_full != point {
                return Err(ParseError::InvalidKey(
                    "the public key stored in the file does not belong to its private key".into(),
                ));
            }
        }
        let public = PublicKey::from_p256_point(&point)
            .map_err(|e| ParseError::InvalidKey(e.to_string()))?;
        Ok(PrivateKey {
            secret: Secret::EcP256(fixed),
            public,
        })
    }

    /// From a DER PKCS#1 `RSAPrivateKey` (`-----BEGIN RSA PRIVATE KEY-----`).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, ParseError> {
        let key = pkcs1::RsaPrivateKeyRef::from_der(der)
            .map_err(|e| ParseError::malformed("PKCS#1 RSA private key", e))?;
        let public_der = key
            .public_key()
            .to_der()
            .map_err(|e| ParseError::malformed("PKCS#1 RSA private key", e))?;
        let public = PublicKey::from_rsa_pkcs1_der(&public_der)
            .map_err(|e| ParseError::InvalidKey(e.to_string()))?;
        Ok(PrivateKey {
            secret: Secret::Rsa(Zeroizing::new(der.to_vec())),
            public,
        })
    }

    /// From a DER SEC1 `ECPrivateKey` (`-----BEGIN EC PRIVATE KEY-----`).
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, ParseError> {
        let key = sec1::EcPrivateKey::from_der(der)
            .map_err(|e| ParseError::malformed("SEC1 EC private key", e))?;
        if let Some(curve) = key.parameters.and_then(|p| p.named_curve())
            && curve != names::P256
        {
            return Err(ParseError::UnsupportedCurve(names::curve_name(&curve)));
        }
        Self::from_p256_parts(key.private_key, key.public_key)
    }

    /// From a DER PKCS#8 `PrivateKeyInfo` (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, ParseError> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(der)
            .map_err(|e| ParseError::malformed("PKCS#8 private key", e))?;
        let inner = info.private_key.as_bytes();
        let oid = info.algorithm.oid;
        if oid == names::RSA_ENCRYPTION {
            return Self::from_pkcs1_der(inner);
        }
        if oid != names::EC_PUBLIC_KEY {
            return Err(ParseError::UnsupportedAlgorithm(names::algorithm_name(
                &oid,
            )));
        }
        let curve = info
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
            .ok_or_else(|| {
                ParseError::InvalidKey(
                    "EC key without a named curve (explicit curve parameters are not supported)"
                        .into(),
                )
            })?;
        if curve != names::P256 {
            return Err(ParseError::UnsupportedCurve(names::curve_name(&curve)));
        }
        let key = sec1::EcPrivateKey::from_der(inner)
            .map_err(|e| ParseError::malformed("EC key inside PKCS#8", e))?;
        let stored_point = key
            .public_key
            .or(info.public_key.and_then(|b| b.as_bytes()));
        Self::from_p256_parts(key.private_key, stored_point)
    }

    /// EC P-256 or RSA.
    pub fn key_type(&self) -> KeyType {
        self.public.key_type()
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// RSA modulus size in bits (0 for EC keys).
    pub fn rsa_bits(&self) -> u32 {
        self.public.rsa_bits()
    }

    /// The 32-byte P-256 scalar, for EC keys.
    pub fn p256_scalar(&self) -> Option<&[u8; 32]> {
        match &self.secret {
            Secret::EcP256(s) => Some(s),
            Secret::Rsa(_) => None,
        }
    }

    /// The DER PKCS#1 `RSAPrivateKey`, for RSA keys.
    pub fn pkcs1_der(&self) -> Option<&[u8]> {
        match &self.secret {
            Secret::Rsa(d) => Some(d),
            Secret::EcP256(_) => None,
        }
    }

    /// The DER SEC1 `ECPrivateKey` with curve and public key (what `openssl ec` writes),
    /// for EC keys.
    pub fn sec1_der(&self) -> Option<Zeroizing<Vec<u8>>> {
        let scalar = self.p256_scalar()?;
        ec_private_key(scalar, self.public.key_bytes(), true).ok()
    }

    /// The DER PKCS#8 `PrivateKeyInfo` (what `openssl genpkey` writes).
    pub fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let encoded = match &self.secret {
            Secret::EcP256(scalar) => ec_private_key(scalar, self.public.key_bytes(), false)
                .and_then(|inner| {
                    wrap_pkcs8(
                        names::EC_PUBLIC_KEY,
                        Some(AnyRef::from(&names::P256)),
                        &inner,
                    )
                }),
            Secret::Rsa(pkcs1) => wrap_pkcs8(names::RSA_ENCRYPTION, Some(AnyRef::NULL), pkcs1),
        };
        // Encoding fixed-size, already-validated structures cannot fail.
        encoded.unwrap_or_default()
    }

    /// A JWT signer on ring.
    pub fn signer(&self) -> Result<BoxSigner, KeyRejected> {
        Ok(match &self.secret {
            Secret::EcP256(scalar) => Box::new(RingEs256Signer::from_scalar_and_point(
                &scalar[..],
                self.public.key_bytes(),
            )?),
            Secret::Rsa(pkcs1) => Box::new(RingRs256Signer::from_pkcs1_der(pkcs1)?),
        })
    }
}

fn ec_private_key(
    scalar: &[u8; 32],
    point: &[u8],
    with_curve: bool,
) -> Result<Zeroizing<Vec<u8>>, der::Error> {
    let key = sec1::EcPrivateKey {
        private_key: scalar,
        parameters: with_curve.then_some(sec1::EcParameters::NamedCurve(names::P256)),
        public_key: Some(point),
    };
    key.to_der().map(Zeroizing::new)
}

fn wrap_pkcs8(
    oid: der::asn1::ObjectIdentifier,
    parameters: Option<AnyRef<'_>>,
    inner: &[u8],
) -> Result<Zeroizing<Vec<u8>>, der::Error> {
    let algorithm = spki::AlgorithmIdentifierRef { oid, parameters };
    let info = pkcs8::PrivateKeyInfoRef::new(algorithm, OctetStringRef::new(inner)?);
    info.to_der().map(Zeroizing::new)
}
