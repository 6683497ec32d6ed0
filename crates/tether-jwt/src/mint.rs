//! Minting a device token into the caller's buffer, with no allocator: what a device
//! sends as its MQTT password.
//!
//! [`mint`] writes `b64url(header).b64url(claims)` straight into `out`, has the
//! [`Signer`] sign those bytes in place, and appends the signature. The claims JSON
//! is assembled in a fixed stack buffer sized for the longest audience accepted
//! ([`MAX_AUD_LEN`]), and [`max_token_len`] gives a buffer size that always suffices,
//! so firmware can size its buffer at compile time. Inputs a server would refuse
//! (an empty audience, `exp` not after `iat`, a signature of the wrong size) are
//! refused here, before the token leaves the device.

use core::fmt;

use crate::{Algorithm, SignError, Signer, b64};

/// The claims IoT Core reads: issued-at and expiry (seconds since the Unix epoch) and
/// the audience, which must be the project id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims<'a> {
    /// The project id (not its number or name).
    pub aud: &'a str,
    /// Issued at, seconds since 1970-01-01T00:00:00Z.
    pub iat: u64,
    /// Expires at, seconds since 1970-01-01T00:00:00Z; at most 24 h after `iat`.
    pub exp: u64,
}

/// Why a token could not be minted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MintError {
    /// The output buffer is too small; `needed` is a safe size.
    BufferTooSmall {
        /// Bytes that suffice for this signer and these claims.
        needed: usize,
    },
    /// `exp` is not after `iat`.
    ExpiryNotAfterIssue,
    /// The audience is empty or longer than [`MAX_AUD_LEN`] bytes.
    InvalidAudience,
    /// The subject is empty or longer than [`MAX_SUB_LEN`] bytes.
    InvalidSubject,
    /// The signer failed.
    Sign(SignError),
    /// The signer returned a signature of the wrong size for its algorithm.
    BadSignatureLength {
        /// The algorithm the signer claimed.
        alg: Algorithm,
        /// The length it returned.
        len: usize,
    },
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MintError::BufferTooSmall { needed } => {
                write!(f, "token buffer too small: {needed} bytes needed")
            }
            MintError::ExpiryNotAfterIssue => f.write_str("exp must be after iat"),
            MintError::InvalidAudience => write!(
                f,
                "aud must be the project id: not empty and at most {MAX_AUD_LEN} bytes"
            ),
            MintError::InvalidSubject => write!(
                f,
                "sub must be the device id: not empty and at most {MAX_SUB_LEN} bytes"
            ),
            MintError::Sign(e) => e.fmt(f),
            MintError::BadSignatureLength { alg, len } => write!(
                f,
                "the signer returned {len} bytes, which is not a valid {alg} signature \
                 (ES256 needs 64 bytes r||s; convert DER with ecdsa_der::der_to_raw)"
            ),
        }
    }
}

impl core::error::Error for MintError {}

impl From<SignError> for MintError {
    fn from(e: SignError) -> Self {
        MintError::Sign(e)
    }
}

/// Longest audience [`mint`] accepts (GCP project ids are at most 30 characters).
pub const MAX_AUD_LEN: usize = 256;
/// Longest subject [`mint_proof`] accepts (device ids are at most 128 characters).
pub const MAX_SUB_LEN: usize = 256;
/// Longest signature [`mint`] handles: RSA 4096.
const MAX_SIG_LEN: usize = 512;
/// The claims JSON of [`mint`]: every `aud` byte may be escaped six-fold.
const CLAIMS_BUF: usize = MAX_AUD_LEN * 6 + 64;
/// The same with a `sub` ([`mint_proof`]); only a proof pays for the larger stack.
const PROOF_CLAIMS_BUF: usize = (MAX_AUD_LEN + MAX_SUB_LEN) * 6 + 80;

/// A buffer size that always holds a token for `alg` with an audience of `aud_len`
/// bytes (RSA sized for 4096-bit keys).
pub const fn max_token_len(alg: Algorithm, aud_len: usize) -> usize {
    let sig = match alg {
        Algorithm::Es256 => 64,
        Algorithm::Rs256 => MAX_SIG_LEN,
    };
    // {"iat":20 digits,"exp":20 digits,"aud":"..."} with every aud byte escaped as \u00XX
    let claims = 32 + 40 + aud_len * 6;
    alg.encoded_header().len() + 1 + b64::encoded_len(claims) + 1 + b64::encoded_len(sig)
}

/// A buffer size that always holds a [`mint_proof`] token: [`max_token_len`] plus a
/// `sub` of `sub_len` bytes.
pub const fn max_proof_len(alg: Algorithm, aud_len: usize, sub_len: usize) -> usize {
    // ,"sub":"..." with every byte escaped, rounded up for base64's 4/3.
    max_token_len(alg, aud_len) + (9 + sub_len * 6).div_ceil(3) * 4 + 4
}

/// Writes a signed token `b64url(header).b64url(claims).b64url(signature)` into
/// `out` and returns its length. The header is `{"alg":..,"typ":"JWT"}` with the
/// signer's algorithm; the claims are `{"iat":..,"exp":..,"aud":".."}`. Needs no
/// allocator.
pub fn mint<S: Signer + ?Sized>(
    signer: &S,
    claims: &Claims<'_>,
    out: &mut [u8],
) -> Result<usize, MintError> {
    mint_with::<S, CLAIMS_BUF>(signer, claims, None, out)
}

/// [`mint`] with a `sub` claim: the proof of possession a device sends when it
/// registers a key it generated (provisioning), with `sub` = its device id. The claims
/// are `{"iat":..,"exp":..,"aud":"..","sub":".."}`.
pub fn mint_proof<S: Signer + ?Sized>(
    signer: &S,
    claims: &Claims<'_>,
    sub: &str,
    out: &mut [u8],
) -> Result<usize, MintError> {
    if sub.is_empty() || sub.len() > MAX_SUB_LEN {
        return Err(MintError::InvalidSubject);
    }
    mint_with::<S, PROOF_CLAIMS_BUF>(signer, claims, Some(sub), out)
}

fn mint_with<S: Signer + ?Sized, const N: usize>(
    signer: &S,
    claims: &Claims<'_>,
    sub: Option<&str>,
    out: &mut [u8],
) -> Result<usize, MintError> {
    if claims.aud.is_empty() || claims.aud.len() > MAX_AUD_LEN {
        return Err(MintError::InvalidAudience);
    }
    if claims.exp <= claims.iat {
        return Err(MintError::ExpiryNotAfterIssue);
    }
    let alg = signer.algorithm();
    let mut json = Cursor {
        buf: [0u8; N],
        len: 0,
    };
    json.put(b"{\"iat\":");
    json.put_u64(claims.iat);
    json.put(b",\"exp\":");
    json.put_u64(claims.exp);
    json.put(b",\"aud\":\"");
    json.put_json_str(claims.aud);
    if let Some(sub) = sub {
        json.put(b"\",\"sub\":\"");
        json.put_json_str(sub);
    }
    json.put(b"\"}");
    let json = &json.buf[..json.len];

    let header = alg.encoded_header().as_bytes();
    let too_small = MintError::BufferTooSmall {
        needed: match sub {
            Some(sub) => max_proof_len(alg, claims.aud.len(), sub.len()),
            None => max_token_len(alg, claims.aud.len()),
        },
    };
    let claims_len = b64::encoded_len(json.len());
    let input_len = header.len() + 1 + claims_len;
    if out.len() < input_len + 1 {
        return Err(too_small);
    }
    out[..header.len()].copy_from_slice(header);
    out[header.len()] = b'.';
    b64::encode_into(json, &mut out[header.len() + 1..]).ok_or(too_small.clone())?;

    let mut sig = [0u8; MAX_SIG_LEN];
    let sig_len = signer.sign(&out[..input_len], &mut sig)?;
    let valid = match alg {
        Algorithm::Es256 => sig_len == 64,
        Algorithm::Rs256 => (256..=MAX_SIG_LEN).contains(&sig_len),
    };
    if !valid {
        return Err(MintError::BadSignatureLength { alg, len: sig_len });
    }
    out[input_len] = b'.';
    let n = b64::encode_into(&sig[..sig_len], &mut out[input_len + 1..]).ok_or(too_small)?;
    Ok(input_len + 1 + n)
}

/// A fixed buffer the claims JSON is written into; its size covers every accepted input.
struct Cursor<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Cursor<N> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn put_u64(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }

    fn put_json_str(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &b in s.as_bytes() {
            match b {
                b'"' => self.put(b"\\\""),
                b'\\' => self.put(b"\\\\"),
                0..=0x1f => {
                    self.put(b"\\u00");
                    self.put(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
                }
                _ => self.put(&[b]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signs with a fixed pattern, to test framing without crypto.
    struct Fixed(Algorithm, usize);

    impl Signer for Fixed {
        fn algorithm(&self) -> Algorithm {
            self.0
        }
        fn sign(&self, _: &[u8], out: &mut [u8]) -> Result<usize, SignError> {
            let out = out
                .get_mut(..self.1)
                .ok_or(SignError::BufferTooSmall { needed: self.1 })?;
            out.fill(0xab);
            Ok(self.1)
        }
    }

    #[test]
    fn token_layout_and_claims() {
        let mut buf = [0u8; 256];
        let claims = Claims {
            aud: "my-\"project",
            iat: 1_700_000_000,
            exp: 1_700_001_200,
        };
        let n = mint(&Fixed(Algorithm::Es256, 64), &claims, &mut buf).expect("mints");
        let token = core::str::from_utf8(&buf[..n]).expect("ascii");
        let mut parts = token.split('.');
        assert_eq!(parts.next(), Some(Algorithm::Es256.encoded_header()));
        let mut json = [0u8; 128];
        let (len, _) = b64::decode_into(parts.next().unwrap_or("").as_bytes(), &mut json)
            .expect("claims decode");
        assert_eq!(
            &json[..len],
            br#"{"iat":1700000000,"exp":1700001200,"aud":"my-\"project"}"#
        );
        assert_eq!(parts.next().map(str::len), Some(b64::encoded_len(64)));
        assert!(n <= max_token_len(Algorithm::Es256, claims.aud.len()));
    }

    #[test]
    fn refuses_bad_inputs() {
        let mut buf = [0u8; 1024];
        let s = Fixed(Algorithm::Es256, 64);
        let c = |aud, iat, exp| Claims { aud, iat, exp };
        assert_eq!(
            mint(&s, &c("p", 10, 10), &mut buf),
            Err(MintError::ExpiryNotAfterIssue)
        );
        assert_eq!(
            mint(&s, &c("", 1, 10), &mut buf),
            Err(MintError::InvalidAudience)
        );
        let der_sized = Fixed(Algorithm::Es256, 71);
        assert_eq!(
            mint(&der_sized, &c("p", 1, 10), &mut buf),
            Err(MintError::BadSignatureLength {
                alg: Algorithm::Es256,
                len: 71
            })
        );
        assert!(matches!(
            mint(&s, &c("p", 1, 10), &mut buf[..40]),
            Err(MintError::BufferTooSmall { .. })
        ));
        assert!(matches!(
            mint(&s, &c("p", 1, 10), &mut buf[..120]),
            Err(MintError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn max_len_covers_worst_case_audience() {
        let aud = "\u{1}".repeat(MAX_AUD_LEN);
        let mut buf = [0u8; 4096];
        let need = max_token_len(Algorithm::Rs256, aud.len());
        let n = mint(
            &Fixed(Algorithm::Rs256, 512),
            &Claims {
                aud: &aud,
                iat: u64::MAX - 1,
                exp: u64::MAX,
            },
            &mut buf[..need],
        )
        .expect("fits");
        assert!(n <= need);
    }
}
