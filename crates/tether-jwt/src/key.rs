//! Device public keys as IoT Core registered them: EC P-256 or RSA, kept as their
//! DER SubjectPublicKeyInfo.
//!
//! [`PublicKey`] is built from an SPKI, a raw P-256 point (`04‖x‖y` or `x‖y`, as
//! secure engines return it) or a PKCS#1 RSA key, and is checked once there: other
//! curves and algorithms are refused by name ([`KeyError`]), and with the `p256`
//! feature an EC point must lie on the curve. Verification then never meets a
//! malformed key. A key is named by its [`Fingerprint`], the SHA-256 of the SPKI,
//! which is the same for a private key, its public key, certificate and CSR.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha256};

use crate::der::{self, OID_EC, OID_P256, OID_RSA, Reader};
use crate::{Algorithm, KeyType};

const OTHER_CURVES: &[(&[u8], &str)] = &[
    (&[0x2b, 0x81, 0x04, 0x00, 0x22], "P-384 (secp384r1)"),
    (&[0x2b, 0x81, 0x04, 0x00, 0x23], "P-521 (secp521r1)"),
    (&[0x2b, 0x81, 0x04, 0x00, 0x0a], "secp256k1"),
    (
        &[0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07],
        "brainpoolP256r1",
    ),
];
const OTHER_ALGORITHMS: &[(&[u8], &str)] = &[
    (&[0x2b, 0x65, 0x70], "Ed25519"),
    (&[0x2b, 0x65, 0x71], "Ed448"),
    (&[0x2b, 0x65, 0x6e], "X25519"),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a],
        "RSASSA-PSS",
    ),
    (&[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01], "DSA"),
];

/// Why bytes are not a public key this crate can use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The DER structure is broken.
    Malformed(&'static str),
    /// An elliptic curve other than P-256 (ES256 is P-256 only).
    UnsupportedCurve(String),
    /// A key algorithm IoT Core never accepted.
    UnsupportedAlgorithm(String),
    /// The EC point is not a valid uncompressed P-256 point.
    InvalidPoint(&'static str),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Malformed(why) => write!(f, "malformed public key: {why}"),
            KeyError::UnsupportedCurve(c) => write!(
                f,
                "EC key on {c}: ES256 needs a P-256 (prime256v1) key; generate one with \
                 `tether keys gen --alg es256`"
            ),
            KeyError::UnsupportedAlgorithm(a) => write!(
                f,
                "{a} key: IoT Core devices sign with RS256 (RSA) or ES256 (EC P-256) only"
            ),
            KeyError::InvalidPoint(why) => write!(f, "invalid P-256 public key: {why}"),
        }
    }
}

impl core::error::Error for KeyError {}

fn oid_text(oid: &[u8]) -> String {
    use core::fmt::Write;
    let mut s = String::new();
    if let Some(&first) = oid.first() {
        let _ = write!(s, "{}.{}", first / 40, first % 40);
        let mut v: u64 = 0;
        for &b in &oid[1..] {
            v = (v << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                let _ = write!(s, ".{v}");
                v = 0;
            }
        }
    }
    s
}

/// SHA-256 of a key's DER SubjectPublicKeyInfo: the same for a private key, its public
/// key, its certificate and its CSR, and what `openssl pkey -pubout -outform DER |
/// sha256sum` prints.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The first 8 hex digits, for lists: `sha256:ab12cd34…`.
    pub fn short(&self) -> ShortFingerprint<'_> {
        ShortFingerprint(self)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Display helper of [`Fingerprint::short`].
#[derive(Debug)]
pub struct ShortFingerprint<'a>(&'a Fingerprint);

impl fmt::Display for ShortFingerprint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.0.0[..4]
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))?;
        f.write_str("…")
    }
}

/// A device's public key: EC P-256 or RSA, kept as its DER SubjectPublicKeyInfo.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key_type: KeyType,
    spki: Vec<u8>,
    /// Offset of the BIT STRING contents (EC point or PKCS#1 RSAPublicKey) in `spki`.
    key_start: usize,
    rsa_bits: u32,
    fingerprint: Fingerprint,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("type", &self.key_type)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----` after base64).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let mut outer = Reader::new(der);
        let spki = outer.read(der::TAG_SEQUENCE).map_err(KeyError::Malformed)?;
        if !outer.is_empty() {
            return Err(KeyError::Malformed(
                "trailing data after SubjectPublicKeyInfo",
            ));
        }
        let mut r = Reader::new(spki);
        let alg = r.read(der::TAG_SEQUENCE).map_err(KeyError::Malformed)?;
        let bits = r.read(der::TAG_BIT_STRING).map_err(KeyError::Malformed)?;
        let (&unused, key) = bits
            .split_first()
            .ok_or(KeyError::Malformed("empty BIT STRING"))?;
        if unused != 0 {
            return Err(KeyError::Malformed("BIT STRING with unused bits"));
        }
        if !r.is_empty() {
            return Err(KeyError::Malformed(
                "trailing data inside SubjectPublicKeyInfo",
            ));
        }
        // The key is the last thing in the structure.
        let key_start = der.len() - key.len();
        let mut a = Reader::new(alg);
        let oid = a.read(der::TAG_OID).map_err(KeyError::Malformed)?;
        let (key_type, rsa_bits) = if oid == OID_EC {
            let curve = a.read(der::TAG_OID).map_err(|_| {
                KeyError::Malformed("EC key without a named curve (explicit parameters)")
            })?;
            if curve != OID_P256 {
                let name = OTHER_CURVES.iter().find(|(o, _)| *o == curve).map_or_else(
                    || alloc::format!("curve {}", oid_text(curve)),
                    |(_, n)| (*n).into(),
                );
                return Err(KeyError::UnsupportedCurve(name));
            }
            check_point(key)?;
            (KeyType::EcP256, 0)
        } else if oid == OID_RSA {
            (KeyType::Rsa, rsa_modulus_bits(key)?)
        } else {
            let name = OTHER_ALGORITHMS
                .iter()
                .find(|(o, _)| *o == oid)
                .map_or_else(
                    || alloc::format!("OID {}", oid_text(oid)),
                    |(_, n)| (*n).into(),
                );
            return Err(KeyError::UnsupportedAlgorithm(name));
        };
        Ok(PublicKey {
            key_type,
            spki: der.to_vec(),
            key_start,
            rsa_bits,
            fingerprint: Fingerprint(Sha256::digest(der).into()),
        })
    }

    /// Builds a P-256 key from an uncompressed point: `0x04‖x‖y` (65 bytes) or `x‖y`
    /// (64 bytes, what many secure engines return).
    pub fn from_p256_point(point: &[u8]) -> Result<Self, KeyError> {
        let mut full = [4u8; 65];
        match point.len() {
            65 => full.copy_from_slice(point),
            64 => full[1..].copy_from_slice(point),
            33 if matches!(point[0], 2 | 3) => {
                return Err(KeyError::InvalidPoint(
                    "compressed point; give the uncompressed 04||x||y form",
                ));
            }
            _ => {
                return Err(KeyError::InvalidPoint(
                    "expected 64 (x||y) or 65 (04||x||y) bytes",
                ));
            }
        }
        let mut alg = Vec::new();
        der::write_tlv(&mut alg, der::TAG_OID, OID_EC);
        der::write_tlv(&mut alg, der::TAG_OID, OID_P256);
        Self::from_spki_der(&spki(&alg, &full))
    }

    /// Builds an RSA key from a DER PKCS#1 `RSAPublicKey` (`BEGIN RSA PUBLIC KEY`).
    pub fn from_rsa_pkcs1_der(pkcs1: &[u8]) -> Result<Self, KeyError> {
        let mut alg = Vec::new();
        der::write_tlv(&mut alg, der::TAG_OID, OID_RSA);
        der::write_tlv(&mut alg, der::TAG_NULL, &[]);
        Self::from_spki_der(&spki(&alg, pkcs1))
    }

    /// EC P-256 or RSA.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The JWS algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.key_type.algorithm()
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The uncompressed point `04‖x‖y` of an EC key, or the DER PKCS#1
    /// `RSAPublicKey` of an RSA key.
    pub fn key_bytes(&self) -> &[u8] {
        &self.spki[self.key_start..]
    }

    /// The RSA modulus size in bits (0 for EC keys).
    pub fn rsa_bits(&self) -> u32 {
        self.rsa_bits
    }

    /// RSA modulus and public exponent, big-endian, without sign bytes.
    pub fn rsa_components(&self) -> Option<(&[u8], &[u8])> {
        if self.key_type != KeyType::Rsa {
            return None;
        }
        let mut r = Reader::new(self.key_bytes());
        let mut seq = Reader::new(r.read(der::TAG_SEQUENCE).ok()?);
        let n = seq.read(der::TAG_INTEGER).ok()?;
        let e = seq.read(der::TAG_INTEGER).ok()?;
        Some((der::unsigned(n), der::unsigned(e)))
    }

    /// SHA-256 of the SubjectPublicKeyInfo.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// "ES256 sha256:ab12cd34…" or "RS256 (RSA 2048) sha256:…": how keys are listed
    /// in refusals.
    pub fn label(&self) -> String {
        match self.key_type {
            KeyType::EcP256 => alloc::format!("ES256 {}", self.fingerprint.short()),
            KeyType::Rsa => {
                alloc::format!("RS256 (RSA {}) {}", self.rsa_bits, self.fingerprint.short())
            }
        }
    }
}

fn spki(alg: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0);
    bits.extend_from_slice(key);
    let mut body = Vec::new();
    der::write_tlv(&mut body, der::TAG_SEQUENCE, alg);
    der::write_tlv(&mut body, der::TAG_BIT_STRING, &bits);
    let mut out = Vec::new();
    der::write_tlv(&mut out, der::TAG_SEQUENCE, &body);
    out
}

fn check_point(point: &[u8]) -> Result<(), KeyError> {
    match point.first() {
        Some(4) if point.len() == 65 => {}
        Some(2 | 3) if point.len() == 33 => {
            return Err(KeyError::InvalidPoint(
                "compressed points are not supported",
            ));
        }
        _ => {
            return Err(KeyError::InvalidPoint(
                "expected a 65-byte uncompressed point",
            ));
        }
    }
    #[cfg(feature = "p256")]
    if p256::ecdsa::VerifyingKey::from_sec1_bytes(point).is_err() {
        return Err(KeyError::InvalidPoint(
            "the point is not on the P-256 curve",
        ));
    }
    Ok(())
}

fn rsa_modulus_bits(pkcs1: &[u8]) -> Result<u32, KeyError> {
    let mut r = Reader::new(pkcs1);
    let mut seq = Reader::new(r.read(der::TAG_SEQUENCE).map_err(KeyError::Malformed)?);
    let n = der::unsigned(seq.read(der::TAG_INTEGER).map_err(KeyError::Malformed)?);
    let e = der::unsigned(seq.read(der::TAG_INTEGER).map_err(KeyError::Malformed)?);
    if !seq.is_empty() || !r.is_empty() {
        return Err(KeyError::Malformed("trailing data in RSAPublicKey"));
    }
    if n.first().is_none_or(|&b| b == 0) || e.first().is_none_or(|&b| b == 0) {
        return Err(KeyError::Malformed("RSA modulus or exponent is zero"));
    }
    Ok((n.len() as u32 - 1) * 8 + (8 - n[0].leading_zeros()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_text_renders_dotted() {
        assert_eq!(oid_text(OID_P256), "1.2.840.10045.3.1.7");
    }

    #[test]
    fn refuses_other_curves_by_name() {
        let mut alg = Vec::new();
        der::write_tlv(&mut alg, der::TAG_OID, OID_EC);
        der::write_tlv(&mut alg, der::TAG_OID, OTHER_CURVES[0].0);
        let err = PublicKey::from_spki_der(&spki(&alg, &[4; 97])).err();
        assert_eq!(
            err,
            Some(KeyError::UnsupportedCurve("P-384 (secp384r1)".into()))
        );
    }

    #[test]
    fn refuses_points_off_the_curve_and_wrong_sizes() {
        assert!(matches!(
            PublicKey::from_p256_point(&[1; 64]),
            Err(KeyError::InvalidPoint(_))
        ));
        assert!(matches!(
            PublicKey::from_p256_point(&[4; 10]),
            Err(KeyError::InvalidPoint(_))
        ));
        assert!(matches!(
            PublicKey::from_spki_der(&[0x30, 0x05]),
            Err(KeyError::Malformed(_))
        ));
    }
}
