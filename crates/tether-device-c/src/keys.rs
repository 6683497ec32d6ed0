//! Reading a device's key from whatever the firmware holds (PEM, DER or raw bytes)
//! and deriving the one form the cloud needs: the DER SubjectPublicKeyInfo.

use p256::ecdsa::VerifyingKey;
use tether_jwt::keyfile::{self, KeyFile, KeyFileError, p256_spki};
use tether_jwt::pem::{self, PemError};
use tether_jwt::signers::P256Signer;

use crate::sizes::{TETHER_KEY_DER_MAX_LEN, TETHER_PUBLIC_KEY_DER_MAX_LEN};
use crate::status::tether_status::{self, *};

/// Where PEM input is decoded to.
pub(crate) type DerBuf = [u8; TETHER_KEY_DER_MAX_LEN];

/// Reads a key: PEM (any label), DER, or raw (32-byte scalar, 64/65-byte point).
pub(crate) fn read<'a>(bytes: &'a [u8], buf: &'a mut DerBuf) -> Result<KeyFile<'a>, tether_status> {
    let der: &'a [u8] = if pem::is_pem(bytes) {
        let block = pem::decode(bytes, buf).map_err(|e| match e {
            PemError::Headers => TETHER_ERR_KEY_ENCRYPTED,
            PemError::BufferTooSmall { .. } => TETHER_ERR_KEY_UNSUPPORTED,
            _ => TETHER_ERR_KEY_FORMAT,
        })?;
        match block.label {
            "ENCRYPTED PRIVATE KEY" => return Err(TETHER_ERR_KEY_ENCRYPTED),
            "CERTIFICATE" => return Err(TETHER_ERR_KEY_UNSUPPORTED),
            _ => {}
        }
        let buf: &'a [u8] = buf;
        &buf[..block.len]
    } else {
        bytes
    };
    keyfile::read(der).map_err(|e| match e {
        KeyFileError::Malformed(_) => TETHER_ERR_KEY_FORMAT,
        KeyFileError::Encrypted => TETHER_ERR_KEY_ENCRYPTED,
        _ => TETHER_ERR_KEY_UNSUPPORTED,
    })
}

/// The software signer of a P-256 private key.
pub(crate) fn p256_signer(scalar: &[u8; 32]) -> Result<P256Signer, tether_status> {
    P256Signer::from_scalar(scalar).map_err(|_| TETHER_ERR_KEY_INVALID)
}

/// A checked uncompressed P-256 point.
pub(crate) fn p256_point(key: &KeyFile<'_>) -> Result<[u8; 65], tether_status> {
    match key {
        KeyFile::P256Private { scalar, .. } => Ok(p256_signer(scalar)?.public_point()),
        KeyFile::P256Public { point } => {
            VerifyingKey::from_sec1_bytes(point).map_err(|_| TETHER_ERR_KEY_INVALID)?;
            Ok(*point)
        }
        _ => Err(TETHER_ERR_KEY_UNSUPPORTED),
    }
}

/// Writes the key's DER SubjectPublicKeyInfo into `out`; returns its length.
pub(crate) fn spki(
    key: &KeyFile<'_>,
    out: &mut [u8; TETHER_PUBLIC_KEY_DER_MAX_LEN],
) -> Result<usize, tether_status> {
    match key {
        KeyFile::P256Private { .. } | KeyFile::P256Public { .. } => {
            let der = p256_spki(&p256_point(key)?);
            out[..der.len()].copy_from_slice(&der);
            Ok(der.len())
        }
        KeyFile::RsaPublic {
            spki: Some(der), ..
        } if der.len() <= out.len() => {
            out[..der.len()].copy_from_slice(der);
            Ok(der.len())
        }
        KeyFile::RsaPublic {
            modulus, exponent, ..
        }
        | KeyFile::RsaPrivate {
            modulus, exponent, ..
        } => rsa_spki(modulus, exponent, out).ok_or(TETHER_ERR_KEY_UNSUPPORTED),
    }
}

/// SubjectPublicKeyInfo { rsaEncryption, NULL; BIT STRING { RSAPublicKey { n, e } } }.
fn rsa_spki(n: &[u8], e: &[u8], out: &mut [u8]) -> Option<usize> {
    const ALG: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let int_len = |v: &[u8]| v.len() + usize::from(v.first().is_some_and(|&b| b & 0x80 != 0));
    let (n_len, e_len) = (int_len(n), int_len(e));
    let rsa_body = tlv_len(n_len) + tlv_len(e_len);
    let bits_body = 1 + tlv_len(rsa_body);
    let outer_body = ALG.len() + tlv_len(bits_body);
    let mut w = Writer { out, at: 0 };
    w.header(0x30, outer_body)?;
    w.put(&ALG)?;
    w.header(0x03, bits_body)?;
    w.put(&[0])?;
    w.header(0x30, rsa_body)?;
    for (v, len) in [(n, n_len), (e, e_len)] {
        w.header(0x02, len)?;
        if len > v.len() {
            w.put(&[0])?;
        }
        w.put(v)?;
    }
    Some(w.at)
}

/// Bytes of a TLV whose contents are `len` bytes (definite lengths up to 64 KiB).
const fn tlv_len(len: usize) -> usize {
    1 + match len {
        0..0x80 => 1,
        0x80..0x100 => 2,
        _ => 3,
    } + len
}

struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        self.out
            .get_mut(self.at..self.at + bytes.len())?
            .copy_from_slice(bytes);
        self.at += bytes.len();
        Some(())
    }

    fn header(&mut self, tag: u8, len: usize) -> Option<()> {
        let [_, hi, lo] = (len as u32).to_be_bytes()[1..] else {
            return None;
        };
        match len {
            0..0x80 => self.put(&[tag, lo]),
            0x80..0x100 => self.put(&[tag, 0x81, lo]),
            0x100..0x1_0000 => self.put(&[tag, 0x82, hi, lo]),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_spki_matches_the_parsed_key() {
        // The RSA test key of tether-jwt: its SPKI rebuilt from n and e is the same DER.
        let der = include_bytes!("../../tether-jwt/tests/data/rsa2048-pkcs8.der");
        let key = tether_jwt::keyfile::read(der).expect("RSA PKCS#8");
        let mut out = [0u8; TETHER_PUBLIC_KEY_DER_MAX_LEN];
        let n = spki(&key, &mut out).expect("SPKI");
        let parsed = tether_jwt::PublicKey::from_spki_der(&out[..n]).expect("parses");
        assert_eq!(parsed.rsa_bits(), 2048);
        assert_eq!(key.rsa_bits(), 2048);
    }
}
