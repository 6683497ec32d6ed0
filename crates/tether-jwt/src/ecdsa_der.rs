//! ECDSA signature encodings: the DER `ECDSA-Sig-Value` (X9.62, RFC 3279) that
//! mbedTLS, OpenSSL, PKCS#11 wrappers and many secure elements return, and the raw
//! fixed-size `r‖s` that JWS ES256 requires (RFC 7518 §3.4). Sending DER in a JWT
//! is the most common ES256 device bug.

use core::fmt;

/// Why bytes are not a DER P-256 ECDSA signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerSignatureError {
    /// Not `SEQUENCE { INTEGER r, INTEGER s }` with correct lengths.
    Malformed(&'static str),
    /// `r` or `s` is longer than 32 bytes: not a P-256 signature.
    IntegerTooLarge,
}

impl fmt::Display for DerSignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerSignatureError::Malformed(why) => write!(f, "not a DER ECDSA signature: {why}"),
            DerSignatureError::IntegerTooLarge => {
                f.write_str("r or s is longer than 32 bytes: not a P-256 signature")
            }
        }
    }
}

impl core::error::Error for DerSignatureError {}

fn read_len(input: &[u8]) -> Result<(usize, usize), DerSignatureError> {
    match input.first() {
        Some(&l) if l < 0x80 => Ok((usize::from(l), 1)),
        Some(0x81) => match input.get(1) {
            Some(&l) if l >= 0x80 => Ok((usize::from(l), 2)),
            _ => Err(DerSignatureError::Malformed("bad long-form length")),
        },
        _ => Err(DerSignatureError::Malformed("bad length")),
    }
}

fn read_integer<'a>(input: &'a [u8], out: &mut [u8]) -> Result<&'a [u8], DerSignatureError> {
    if input.first() != Some(&0x02) {
        return Err(DerSignatureError::Malformed("expected INTEGER"));
    }
    let (len, l) = read_len(&input[1..])?;
    let body = input
        .get(1 + l..1 + l + len)
        .ok_or(DerSignatureError::Malformed("INTEGER runs past the end"))?;
    if body.is_empty() {
        return Err(DerSignatureError::Malformed("empty INTEGER"));
    }
    if body[0] & 0x80 != 0 {
        return Err(DerSignatureError::Malformed("negative INTEGER"));
    }
    let mut digits = body;
    while digits.len() > 1 && digits[0] == 0 {
        digits = &digits[1..];
    }
    if digits.len() > out.len() {
        return Err(DerSignatureError::IntegerTooLarge);
    }
    let pad = out.len() - digits.len();
    out[..pad].fill(0);
    out[pad..].copy_from_slice(digits);
    Ok(&input[1 + l + len..])
}

/// Converts a DER ECDSA P-256 signature into the 64-byte `r‖s` JWS wants.
pub fn der_to_raw(der: &[u8], out: &mut [u8; 64]) -> Result<(), DerSignatureError> {
    if der.first() != Some(&0x30) {
        return Err(DerSignatureError::Malformed("expected SEQUENCE"));
    }
    let (len, l) = read_len(&der[1..])?;
    if der.len() != 1 + l + len {
        return Err(DerSignatureError::Malformed(
            "SEQUENCE length does not match the input",
        ));
    }
    let (r, s) = out.split_at_mut(32);
    let rest = read_integer(&der[1 + l..], r)?;
    let rest = read_integer(rest, s)?;
    if !rest.is_empty() {
        return Err(DerSignatureError::Malformed("trailing bytes after s"));
    }
    Ok(())
}

/// Whether `sig` parses as a DER ECDSA P-256 signature.
pub fn is_der_signature(sig: &[u8]) -> bool {
    der_to_raw(sig, &mut [0u8; 64]).is_ok()
}

/// Largest DER encoding of a P-256 signature.
pub const MAX_DER_LEN: usize = 72;

/// Converts a raw `r‖s` signature into DER (for X.509, CSRs and APIs that want it).
/// Returns the length written into `out`.
pub fn raw_to_der(raw: &[u8; 64], out: &mut [u8; MAX_DER_LEN]) -> usize {
    fn integer(v: &[u8], out: &mut [u8]) -> usize {
        let mut v = v;
        while v.len() > 1 && v[0] == 0 {
            v = &v[1..];
        }
        let pad = usize::from(v[0] & 0x80 != 0);
        out[0] = 0x02;
        out[1] = (v.len() + pad) as u8;
        out[2] = 0;
        out[2 + pad..2 + pad + v.len()].copy_from_slice(v);
        2 + pad + v.len()
    }
    let mut body = [0u8; MAX_DER_LEN];
    let n = integer(&raw[..32], &mut body);
    let m = integer(&raw[32..], &mut body[n..]);
    out[0] = 0x30;
    out[1] = (n + m) as u8;
    out[2..2 + n + m].copy_from_slice(&body[..n + m]);
    2 + n + m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_high_bits_and_leading_zeros() {
        let mut raw = [0u8; 64];
        raw[0] = 0x80; // r needs a 0x00 sign byte
        raw[31] = 1;
        raw[32..34].copy_from_slice(&[0, 0]); // s has leading zeros
        raw[63] = 7;
        let mut der = [0u8; MAX_DER_LEN];
        let n = raw_to_der(&raw, &mut der);
        assert_eq!(&der[..4], &[0x30, (n - 2) as u8, 0x02, 33]);
        let mut back = [0u8; 64];
        der_to_raw(&der[..n], &mut back).expect("parses");
        assert_eq!(back, raw);
        assert!(is_der_signature(&der[..n]));
    }

    #[test]
    fn rejects_what_is_not_der() {
        let mut out = [0u8; 64];
        let malformed = |why| Err(DerSignatureError::Malformed(why));
        assert_eq!(
            der_to_raw(&[0u8; 64], &mut out),
            malformed("expected SEQUENCE")
        );
        assert_eq!(
            der_to_raw(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01], &mut out),
            malformed("SEQUENCE length does not match the input")
        );
        assert_eq!(
            der_to_raw(&[0x30, 0x03, 0x02, 0x01, 0x01], &mut out),
            malformed("expected INTEGER"),
            "s is missing"
        );
        let mut big = [0u8; 40];
        big[..4].copy_from_slice(&[0x30, 38, 0x02, 33]);
        big[4] = 0x01;
        big[37..40].copy_from_slice(&[0x02, 0x01, 0x01]);
        assert_eq!(
            der_to_raw(&big, &mut out),
            Err(DerSignatureError::IntegerTooLarge)
        );
    }
}
