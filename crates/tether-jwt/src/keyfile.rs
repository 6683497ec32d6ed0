//! What a device's key bytes hold, read without an allocator: P-256 private keys
//! (PKCS#8, SEC1, the raw 32-byte scalar), P-256 and RSA public keys (SPKI, the raw
//! 64/65-byte point) and RSA private keys (PKCS#1, PKCS#8, for their public half).
//! Anything else is named (encrypted, a certificate, another curve) so the caller
//! can say what to do. PEM is [`crate::pem`]'s job; this reads DER and raw bytes.

use core::fmt;

use crate::KeyType;
use crate::der::{
    self, OID_EC, OID_P256, OID_RSA, Reader, TAG_BIT_STRING, TAG_INTEGER, TAG_OCTET_STRING,
    TAG_OID, TAG_SEQUENCE,
};

/// The DER that precedes the 65-byte point in a P-256 SubjectPublicKeyInfo.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Length of a P-256 SubjectPublicKeyInfo in DER.
pub const P256_SPKI_LEN: usize = P256_SPKI_PREFIX.len() + 65;

/// The DER SubjectPublicKeyInfo of a P-256 point `04‖x‖y`.
pub fn p256_spki(point: &[u8; 65]) -> [u8; P256_SPKI_LEN] {
    let mut out = [0u8; P256_SPKI_LEN];
    out[..P256_SPKI_PREFIX.len()].copy_from_slice(&P256_SPKI_PREFIX);
    out[P256_SPKI_PREFIX.len()..].copy_from_slice(point);
    out
}

/// The structure a private key came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateFormat {
    /// PKCS#8 `PrivateKeyInfo` (`BEGIN PRIVATE KEY`).
    Pkcs8,
    /// SEC1 `ECPrivateKey` (`BEGIN EC PRIVATE KEY`).
    Sec1,
    /// PKCS#1 `RSAPrivateKey` (`BEGIN RSA PRIVATE KEY`).
    Pkcs1,
    /// The bare 32-byte P-256 scalar.
    RawScalar,
}

/// A key read from DER or raw bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyFile<'a> {
    /// A P-256 private key.
    P256Private {
        /// The private scalar, big-endian, left-padded to 32 bytes.
        scalar: [u8; 32],
        /// The public point `04‖x‖y` if the file carries it.
        public: Option<&'a [u8]>,
        /// How it was stored.
        format: PrivateFormat,
    },
    /// A P-256 public key.
    P256Public {
        /// The uncompressed point `04‖x‖y`.
        point: [u8; 65],
    },
    /// An RSA public key.
    RsaPublic {
        /// The DER SubjectPublicKeyInfo, if that is what was given.
        spki: Option<&'a [u8]>,
        /// The modulus, big-endian, without a sign byte.
        modulus: &'a [u8],
        /// The public exponent, big-endian.
        exponent: &'a [u8],
    },
    /// An RSA private key (only its public half is read).
    RsaPrivate {
        /// The modulus, big-endian, without a sign byte.
        modulus: &'a [u8],
        /// The public exponent, big-endian.
        exponent: &'a [u8],
        /// How it was stored.
        format: PrivateFormat,
    },
}

impl fmt::Debug for KeyFile<'_> {
    // Never prints the private scalar.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFile::P256Private { format, .. } => write!(f, "P256Private({format:?})"),
            KeyFile::P256Public { .. } => f.write_str("P256Public"),
            KeyFile::RsaPublic { modulus, .. } => write!(f, "RsaPublic({} bits)", bits(modulus)),
            KeyFile::RsaPrivate {
                modulus, format, ..
            } => write!(f, "RsaPrivate({} bits, {format:?})", bits(modulus)),
        }
    }
}

impl KeyFile<'_> {
    /// EC P-256 or RSA.
    pub fn key_type(&self) -> KeyType {
        match self {
            KeyFile::P256Private { .. } | KeyFile::P256Public { .. } => KeyType::EcP256,
            KeyFile::RsaPublic { .. } | KeyFile::RsaPrivate { .. } => KeyType::Rsa,
        }
    }

    /// Whether this is a private key.
    pub fn is_private(&self) -> bool {
        matches!(
            self,
            KeyFile::P256Private { .. } | KeyFile::RsaPrivate { .. }
        )
    }

    /// The RSA modulus size in bits (0 for P-256).
    pub fn rsa_bits(&self) -> u32 {
        match self {
            KeyFile::RsaPublic { modulus, .. } | KeyFile::RsaPrivate { modulus, .. } => {
                bits(modulus)
            }
            _ => 0,
        }
    }
}

fn bits(magnitude: &[u8]) -> u32 {
    match magnitude.first() {
        Some(&top) => (magnitude.len() as u32 - 1) * 8 + (8 - top.leading_zeros()),
        None => 0,
    }
}

/// Why bytes are not a key this crate can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Not DER of a known key structure, nor a raw key length (32, 64 or 65 bytes).
    Malformed(&'static str),
    /// An encrypted PKCS#8 key: decrypt it first (`openssl pkcs8 -topk8 -nocrypt`).
    Encrypted,
    /// An X.509 certificate: the key it carries is a public key.
    Certificate,
    /// An EC key on a curve other than P-256.
    UnsupportedCurve,
    /// A key algorithm IoT Core never accepted (Ed25519, DSA, ...).
    UnsupportedAlgorithm,
    /// A compressed EC point; devices must give `04‖x‖y`.
    CompressedPoint,
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Malformed(why) => write!(f, "not a key: {why}"),
            KeyFileError::Encrypted => {
                f.write_str("the private key is encrypted: store it decrypted (PKCS#8 or SEC1)")
            }
            KeyFileError::Certificate => f.write_str("a certificate, not a key"),
            KeyFileError::UnsupportedCurve => {
                f.write_str("an EC key on another curve: ES256 needs P-256 (prime256v1)")
            }
            KeyFileError::UnsupportedAlgorithm => {
                f.write_str("a key type IoT Core never accepted: use RSA or EC P-256")
            }
            KeyFileError::CompressedPoint => {
                f.write_str("a compressed EC point: give the uncompressed 04||x||y form")
            }
        }
    }
}

impl core::error::Error for KeyFileError {}

/// Reads a key from DER, or from raw bytes: 32 (P-256 scalar), 64 (`x‖y`) or 65
/// (`04‖x‖y`). P-256 points are checked for shape, not for being on the curve.
pub fn read(bytes: &[u8]) -> Result<KeyFile<'_>, KeyFileError> {
    match bytes.len() {
        32 => {
            let mut scalar = [0u8; 32];
            scalar.copy_from_slice(bytes);
            return Ok(KeyFile::P256Private {
                scalar,
                public: None,
                format: PrivateFormat::RawScalar,
            });
        }
        64 => return point(bytes).map(|point| KeyFile::P256Public { point }),
        65 if bytes[0] == 4 => return point(bytes).map(|point| KeyFile::P256Public { point }),
        33 if matches!(bytes[0], 2 | 3) => return Err(KeyFileError::CompressedPoint),
        _ => {}
    }
    let mut outer = Reader::new(bytes);
    let body = outer.read(TAG_SEQUENCE).map_err(KeyFileError::Malformed)?;
    if !outer.is_empty() {
        return Err(KeyFileError::Malformed("trailing bytes after the key"));
    }
    let mut r = Reader::new(body);
    let (tag, first) = r.read_any().map_err(KeyFileError::Malformed)?;
    match tag {
        TAG_INTEGER => private_key(first, r),
        TAG_SEQUENCE => match r.read_any().map_err(KeyFileError::Malformed)? {
            (TAG_BIT_STRING, key) if r.is_empty() => spki(bytes, first, key),
            (TAG_OCTET_STRING, _) => Err(KeyFileError::Encrypted),
            (TAG_SEQUENCE, _) => Err(KeyFileError::Certificate),
            _ => Err(KeyFileError::Malformed("not a known key structure")),
        },
        _ => Err(KeyFileError::Malformed("not a known key structure")),
    }
}

/// PKCS#8 (version, algorithm, key), SEC1 (1, scalar, ..) or PKCS#1 (0, n, e, ..).
fn private_key<'a>(version: &'a [u8], mut r: Reader<'a>) -> Result<KeyFile<'a>, KeyFileError> {
    let malformed = KeyFileError::Malformed;
    match r.read_any().map_err(malformed)? {
        (TAG_SEQUENCE, alg) => {
            let key = r.read(TAG_OCTET_STRING).map_err(malformed)?;
            let mut a = Reader::new(alg);
            let oid = a.read(TAG_OID).map_err(malformed)?;
            if oid == OID_RSA {
                let mut inner = Reader::new(key);
                let body = inner.read(TAG_SEQUENCE).map_err(malformed)?;
                let mut seq = Reader::new(body);
                let v = seq.read(TAG_INTEGER).map_err(malformed)?;
                return pkcs1(v, seq, PrivateFormat::Pkcs8);
            }
            if oid != OID_EC {
                return Err(KeyFileError::UnsupportedAlgorithm);
            }
            if a.read(TAG_OID).map_err(malformed)? != OID_P256 {
                return Err(KeyFileError::UnsupportedCurve);
            }
            let mut inner = Reader::new(key);
            let mut seq = Reader::new(inner.read(TAG_SEQUENCE).map_err(malformed)?);
            seq.read(TAG_INTEGER).map_err(malformed)?;
            let scalar = seq.read(TAG_OCTET_STRING).map_err(malformed)?;
            sec1_rest(scalar, seq, PrivateFormat::Pkcs8)
        }
        (TAG_OCTET_STRING, scalar) if version == [1] => sec1_rest(scalar, r, PrivateFormat::Sec1),
        (TAG_INTEGER, n) if version == [0] => pkcs1_from(n, r, PrivateFormat::Pkcs1),
        _ => Err(KeyFileError::Malformed("not a known private key structure")),
    }
}

/// The rest of an `RSAPrivateKey` after its version.
fn pkcs1<'a>(
    version: &[u8],
    mut seq: Reader<'a>,
    format: PrivateFormat,
) -> Result<KeyFile<'a>, KeyFileError> {
    if version != [0] {
        return Err(KeyFileError::Malformed("RSAPrivateKey version is not 0"));
    }
    let n = seq.read(TAG_INTEGER).map_err(KeyFileError::Malformed)?;
    pkcs1_from(n, seq, format)
}

fn pkcs1_from<'a>(
    n: &'a [u8],
    mut seq: Reader<'a>,
    format: PrivateFormat,
) -> Result<KeyFile<'a>, KeyFileError> {
    let e = seq.read(TAG_INTEGER).map_err(KeyFileError::Malformed)?;
    let (modulus, exponent) = rsa_numbers(n, e)?;
    Ok(KeyFile::RsaPrivate {
        modulus,
        exponent,
        format,
    })
}

fn rsa_numbers<'a>(n: &'a [u8], e: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), KeyFileError> {
    let (n, e) = (der::unsigned(n), der::unsigned(e));
    if n.first().is_none_or(|&b| b == 0) || e.first().is_none_or(|&b| b == 0) {
        return Err(KeyFileError::Malformed("RSA modulus or exponent is zero"));
    }
    Ok((n, e))
}

/// The scalar of an `ECPrivateKey` and its optional `[0] parameters` and `[1] publicKey`.
fn sec1_rest<'a>(
    scalar: &[u8],
    mut rest: Reader<'a>,
    format: PrivateFormat,
) -> Result<KeyFile<'a>, KeyFileError> {
    let scalar = der::unsigned(scalar);
    if scalar.len() > 32 {
        return Err(KeyFileError::UnsupportedCurve);
    }
    let mut padded = [0u8; 32];
    padded[32 - scalar.len()..].copy_from_slice(scalar);
    let mut public = None;
    while !rest.is_empty() {
        match rest.read_any().map_err(KeyFileError::Malformed)? {
            (0xa0, params) => {
                let curve = Reader::new(params).read(TAG_OID);
                if curve.map_err(KeyFileError::Malformed)? != OID_P256 {
                    return Err(KeyFileError::UnsupportedCurve);
                }
            }
            (0xa1, wrapped) => {
                let bits = Reader::new(wrapped)
                    .read(TAG_BIT_STRING)
                    .map_err(KeyFileError::Malformed)?;
                match bits.split_first() {
                    Some((0, point)) if point.len() == 65 && point[0] == 4 => public = Some(point),
                    _ => return Err(KeyFileError::Malformed("bad public key in ECPrivateKey")),
                }
            }
            _ => {}
        }
    }
    Ok(KeyFile::P256Private {
        scalar: padded,
        public,
        format,
    })
}

fn spki<'a>(whole: &'a [u8], alg: &'a [u8], bits: &'a [u8]) -> Result<KeyFile<'a>, KeyFileError> {
    let malformed = KeyFileError::Malformed;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(malformed("BIT STRING with unused bits")),
    };
    let mut a = Reader::new(alg);
    let oid = a.read(TAG_OID).map_err(malformed)?;
    if oid == OID_EC {
        if a.read(TAG_OID).map_err(malformed)? != OID_P256 {
            return Err(KeyFileError::UnsupportedCurve);
        }
        return point(key).map(|point| KeyFile::P256Public { point });
    }
    if oid != OID_RSA {
        return Err(KeyFileError::UnsupportedAlgorithm);
    }
    let mut r = Reader::new(key);
    let mut seq = Reader::new(r.read(TAG_SEQUENCE).map_err(malformed)?);
    let n = seq.read(TAG_INTEGER).map_err(malformed)?;
    let e = seq.read(TAG_INTEGER).map_err(malformed)?;
    if !seq.is_empty() || !r.is_empty() {
        return Err(malformed("trailing data in RSAPublicKey"));
    }
    let (modulus, exponent) = rsa_numbers(n, e)?;
    Ok(KeyFile::RsaPublic {
        spki: Some(whole),
        modulus,
        exponent,
    })
}

fn point(bytes: &[u8]) -> Result<[u8; 65], KeyFileError> {
    let mut full = [4u8; 65];
    match (bytes.len(), bytes.first()) {
        (65, Some(4)) => full.copy_from_slice(bytes),
        (64, _) => full[1..].copy_from_slice(bytes),
        (33, Some(2 | 3)) => return Err(KeyFileError::CompressedPoint),
        _ => return Err(KeyFileError::Malformed("not a 65-byte uncompressed point")),
    }
    Ok(full)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    fn hex(s: &str) -> std::vec::Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    // `openssl ecparam -name prime256v1 -genkey` with scalar 1, SEC1 with both optional parts.
    fn sec1(scalar: &[u8; 32], point: &[u8; 65]) -> std::vec::Vec<u8> {
        let mut v = hex("30770201010420");
        v.extend_from_slice(scalar);
        v.extend_from_slice(&hex("a00a06082a8648ce3d030107a144034200"));
        v.extend_from_slice(point);
        v
    }

    #[test]
    fn reads_p256_private_keys_in_each_format() {
        let scalar = [7u8; 32];
        let point = [4u8; 65];
        let der = sec1(&scalar, &point);
        let got = read(&der).expect("SEC1");
        assert_eq!(
            got,
            KeyFile::P256Private {
                scalar,
                public: Some(&point[..]),
                format: PrivateFormat::Sec1
            }
        );
        // PKCS#8 wraps the SEC1 structure after the algorithm.
        let mut p8 =
            hex("308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420");
        p8.extend_from_slice(&scalar);
        p8.extend_from_slice(&hex("a144034200"));
        p8.extend_from_slice(&point);
        assert!(matches!(
            read(&p8),
            Ok(KeyFile::P256Private {
                format: PrivateFormat::Pkcs8,
                public: Some(_),
                ..
            })
        ));
        assert!(matches!(
            read(&scalar),
            Ok(KeyFile::P256Private {
                format: PrivateFormat::RawScalar,
                public: None,
                ..
            })
        ));
    }

    #[test]
    fn public_points_and_spki_round_trip() {
        let mut point = [9u8; 65];
        point[0] = 4;
        let spki = p256_spki(&point);
        assert_eq!(read(&spki), Ok(KeyFile::P256Public { point }));
        assert_eq!(read(&point[1..]), Ok(KeyFile::P256Public { point }));
        assert_eq!(read(&[2u8; 33]), Err(KeyFileError::CompressedPoint));
    }

    #[test]
    fn names_what_it_cannot_use() {
        // EncryptedPrivateKeyInfo: SEQUENCE { SEQUENCE { OID .. }, OCTET STRING }
        let encrypted = hex("300e300706052b0e03021a0403010203");
        assert_eq!(read(&encrypted), Err(KeyFileError::Encrypted));
        // SEC1 on secp256k1.
        let mut k1 = hex("302e0201010420");
        k1.extend_from_slice(&[1u8; 32]);
        k1.extend_from_slice(&hex("a00706052b8104000a"));
        assert_eq!(read(&k1), Err(KeyFileError::UnsupportedCurve));
        // Ed25519 PKCS#8.
        let ed = hex("302e020100300506032b657004220420");
        let mut ed = ed;
        ed.extend_from_slice(&[5u8; 32]);
        assert_eq!(read(&ed), Err(KeyFileError::UnsupportedAlgorithm));
        assert!(matches!(read(b"hello"), Err(KeyFileError::Malformed(_))));
        let mut trailing = sec1(&[7; 32], &[4; 65]);
        trailing.push(0);
        assert!(matches!(read(&trailing), Err(KeyFileError::Malformed(_))));
    }
}
