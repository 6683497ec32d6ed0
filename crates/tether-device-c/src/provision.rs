//! `tether_provision_request`: the body a device publishes to `/devices/D/provision`
//! on first boot (docs/provisioning.md), from the raw public key its engine returns
//! and a signer callback for the same key. No heap, no clock.
//!
//! ```text
//!  {"publicKey":{"format":"ES256_RAW","key":"<base64 of x‖y>"},"proof":"<JWT>"}
//!                                              proof = mint_proof(signer, aud, sub = D)
//! ```
//!
//! The key is standard base64 with padding (88 characters), as the Rust SDK sends
//! it; the proof is an ordinary device JWT (base64url) with `sub` = the device id.
//! Every part has an exact length known before signing, so a buffer that is too
//! small is reported with the exact size and the engine is not asked to sign.

#![allow(unsafe_code, reason = "exported C function over raw pointers")]

use core::ffi::c_char;

use tether_jwt::{Algorithm, Claims, MintError, Signer as _, b64, mint_proof};

use crate::ffi;
use crate::signer::{CallbackSigner, tether_signer};
use crate::sizes::{
    TETHER_MAX_DEVICE_ID_LEN, TETHER_MAX_LIFETIME_SECS, TETHER_MAX_PROJECT_ID_LEN, digits,
    proof_len,
};
use crate::status::tether_status::{self, *};

const HEAD: &[u8] = br#"{"publicKey":{"format":"ES256_RAW","key":""#;
const MID: &[u8] = br#""},"proof":""#;
const TAIL: &[u8] = br#""}"#;

/// A P-256 point without its `04` prefix: `x‖y`.
const POINT_LEN: usize = 64;
/// Standard base64 of [`POINT_LEN`] bytes, with its padding.
const KEY_TEXT_LEN: usize = POINT_LEN.div_ceil(3) * 4;

/// A device id as IoT Core accepts it: 3 to 255 characters of `[a-zA-Z0-9-._+~%]`,
/// starting with a letter (so it goes into JSON unescaped).
pub(crate) fn valid_device_id(bytes: &[u8]) -> Option<&str> {
    let ok = (3..=TETHER_MAX_DEVICE_ID_LEN).contains(&bytes.len())
        && bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes.iter().all(|&c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'+' | b'~' | b'%')
        });
    ok.then(|| core::str::from_utf8(bytes).ok()).flatten()
}

/// Writes `input` as standard base64 (RFC 4648 §4: `+/`, `=` padding) into `out`;
/// returns its length, or `None` if `out` is too small.
fn base64_standard(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let chars = b64::encode_into(input, out)?;
    for c in &mut out[..chars] {
        // base64url → the standard alphabet.
        *c = match *c {
            b'-' => b'+',
            b'_' => b'/',
            c => c,
        };
    }
    let len = input.len().div_ceil(3) * 4;
    out.get_mut(chars..len)?.fill(b'=');
    Some(len)
}

/// Exact length (without NUL) of the request for these claims.
const fn request_len(
    aud_len: usize,
    sub_len: usize,
    iat_digits: usize,
    exp_digits: usize,
) -> usize {
    HEAD.len()
        + KEY_TEXT_LEN
        + MID.len()
        + proof_len(aud_len, sub_len, iat_digits, exp_digits)
        + TAIL.len()
}

/// Writes the provisioning request for device `device_id` of `project_id` into `out`
/// as a NUL-terminated JSON string, and its length (without the NUL) into `*out_len`:
///
/// `{"publicKey":{"format":"ES256_RAW","key":"<base64 of x||y>"},"proof":"<JWT>"}`
///
/// `public_key` is the device's new P-256 public key as its engine returns it: 64
/// bytes `x||y` or 65 bytes `04||x||y` (sent as the 64 bytes `x||y`, standard base64
/// with padding). `signer` signs with the matching private key (ES256; the same
/// callback `tether_jwt_mint` takes): it signs the proof, a JWT with `aud` = the
/// project, `sub` = the device id, and `iat` and `exp` as given (seconds since 1970;
/// `exp` after `iat`, at most 24 h later). Publish the result to
/// `/devices/{device_id}/provision` on a connection authenticated with the
/// provisioning claim's token.
///
/// `TETHER_PROVISION_REQUEST_MAX_LEN` always suffices for `out_cap`. If `out_cap` is
/// too small the result is `TETHER_ERR_BUFFER_TOO_SMALL` and `*out_len` is the size
/// needed (NUL included), known before the signer is called. `out_len` may be NULL.
/// A device id IoT Core would refuse is `TETHER_ERR_DEVICE_ID`; a key that is not 64
/// or 65 (`0x04`-prefixed) bytes is `TETHER_ERR_KEY_FORMAT` (whether it is a point on
/// P-256 is the server's check); an RS256 signer is `TETHER_ERR_KEY_UNSUPPORTED`
/// (raw keys are P-256). On any error `out` holds "".
///
/// # Safety
/// `signer` must point to a valid `tether_signer`, `project_id` and `device_id` to
/// NUL-terminated strings, `public_key` to `public_key_len` readable bytes, `out` to
/// `out_cap` writable bytes, and `out_len` (if not NULL) to a writable `size_t`. NULL
/// pointers are reported, not dereferenced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_provision_request(
    signer: *const tether_signer,
    project_id: *const c_char,
    device_id: *const c_char,
    public_key: *const u8,
    public_key_len: usize,
    iat: u64,
    exp: u64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> tether_status {
    // SAFETY: the caller's contract for `out`.
    let Some(buf) = (unsafe { ffi::bytes_mut(out.cast::<u8>(), out_cap) }) else {
        return TETHER_ERR_NULL_POINTER;
    };
    if let Some(first) = buf.first_mut() {
        *first = 0;
    }
    let mut needed = 0;
    let args = Args {
        signer,
        project_id,
        device_id,
        public_key,
        public_key_len,
        iat,
        exp,
    };
    // SAFETY: the caller's contract for the other pointers.
    let result = unsafe { write_request(&args, buf, &mut needed) };
    match result {
        Ok(n) => {
            // SAFETY: the caller's contract for `out_len`.
            unsafe { ffi::put(out_len, n) };
            TETHER_OK
        }
        Err(status) => {
            if let Some(first) = buf.first_mut() {
                *first = 0;
            }
            let report = if status == TETHER_ERR_BUFFER_TOO_SMALL {
                needed
            } else {
                0
            };
            // SAFETY: the caller's contract for `out_len`.
            unsafe { ffi::put(out_len, report) };
            status
        }
    }
}

/// The inputs of [`tether_provision_request`] other than its output buffer.
struct Args {
    signer: *const tether_signer,
    project_id: *const c_char,
    device_id: *const c_char,
    public_key: *const u8,
    public_key_len: usize,
    iat: u64,
    exp: u64,
}

/// # Safety
/// As [`tether_provision_request`] for the pointers in `args`.
unsafe fn write_request(
    args: &Args,
    out: &mut [u8],
    needed: &mut usize,
) -> Result<usize, tether_status> {
    // SAFETY: the caller's contract.
    let signer = unsafe { ffi::get(args.signer) }.ok_or(TETHER_ERR_NULL_POINTER)?;
    // SAFETY: the caller's contract.
    let aud = unsafe { ffi::project_id(args.project_id) }?;
    // SAFETY: the caller's contract.
    let id = unsafe { ffi::c_str(args.device_id, TETHER_MAX_DEVICE_ID_LEN) }.map_err(|e| {
        if e == TETHER_ERR_NULL_POINTER {
            e
        } else {
            TETHER_ERR_DEVICE_ID
        }
    })?;
    let sub = valid_device_id(id).ok_or(TETHER_ERR_DEVICE_ID)?;
    // SAFETY: the caller's contract.
    let key = unsafe { ffi::bytes(args.public_key, args.public_key_len) }
        .ok_or(TETHER_ERR_NULL_POINTER)?;
    let point = match key {
        _ if key.len() == POINT_LEN => key,
        [4, point @ ..] if point.len() == POINT_LEN => point,
        _ => return Err(TETHER_ERR_KEY_FORMAT),
    };
    let (iat, exp) = (args.iat, args.exp);
    if exp <= iat || exp - iat > u64::from(TETHER_MAX_LIFETIME_SECS) {
        return Err(TETHER_ERR_LIFETIME);
    }
    let proof_at = HEAD.len() + KEY_TEXT_LEN + MID.len();
    let proof = proof_len(aud.len(), sub.len(), digits(iat), digits(exp));
    let cb = CallbackSigner::new(signer, proof)?;
    if cb.algorithm() != Algorithm::Es256 {
        return Err(TETHER_ERR_KEY_UNSUPPORTED);
    }
    let exact = request_len(aud.len(), sub.len(), digits(iat), digits(exp)) + 1;
    if out.len() < exact {
        *needed = exact;
        return Err(TETHER_ERR_BUFFER_TOO_SMALL);
    }
    out[..HEAD.len()].copy_from_slice(HEAD);
    base64_standard(point, &mut out[HEAD.len()..HEAD.len() + KEY_TEXT_LEN])
        .ok_or(TETHER_ERR_BUFFER_TOO_SMALL)?;
    out[HEAD.len() + KEY_TEXT_LEN..proof_at].copy_from_slice(MID);
    let claims = Claims { aud, iat, exp };
    let n = match mint_proof(&cb, &claims, sub, &mut out[proof_at..proof_at + proof]) {
        Ok(n) => n,
        Err(MintError::BufferTooSmall { .. }) => {
            *needed = exact;
            return Err(TETHER_ERR_BUFFER_TOO_SMALL);
        }
        Err(MintError::Sign(_)) => {
            let status = cb.failure().unwrap_or(TETHER_ERR_SIGNER_FAILED);
            if status == TETHER_ERR_BUFFER_TOO_SMALL {
                *needed = exact;
            }
            return Err(status);
        }
        Err(MintError::BadSignatureLength { .. }) => return Err(TETHER_ERR_SIGNATURE_LENGTH),
        Err(MintError::InvalidAudience) => return Err(TETHER_ERR_PROJECT_ID),
        Err(MintError::InvalidSubject) => return Err(TETHER_ERR_DEVICE_ID),
        Err(_) => return Err(TETHER_ERR_LIFETIME),
    };
    let tail_at = proof_at + n;
    out[tail_at..tail_at + TAIL.len()].copy_from_slice(TAIL);
    out[tail_at + TAIL.len()] = 0;
    Ok(tail_at + TAIL.len())
}

// The header's constant is the exact size of the longest request (NUL included).
const _: () = assert!(
    crate::sizes::TETHER_PROVISION_REQUEST_MAX_LEN
        == request_len(TETHER_MAX_PROJECT_ID_LEN, TETHER_MAX_DEVICE_ID_LEN, 20, 20) + 1
);
const _: () = assert!(KEY_TEXT_LEN == 88);

#[cfg(test)]
mod tests {
    use super::*;

    fn standard(input: &[u8]) -> std::string::String {
        let mut out = [0u8; 128];
        let n = base64_standard(input, &mut out).expect("fits");
        std::string::String::from_utf8(out[..n].to_vec()).expect("ASCII")
    }

    #[test]
    fn base64_is_the_standard_alphabet_with_padding() {
        // RFC 4648 §10.
        for (input, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(standard(input), text);
        }
        assert_eq!(standard(&[0xfb, 0xff, 0xbf]), "+/+/");
        assert_eq!(standard(&[0xff; 64]).len(), KEY_TEXT_LEN);
        assert!(standard(&[0xff; 64]).ends_with("/w=="));
        assert_eq!(base64_standard(b"foob", &mut [0u8; 7]), None);
    }

    #[test]
    fn device_ids_follow_iot_core() {
        for ok in ["abc", "sensor-0a1b2c3d", "A.b_c+d~e%f", &"d".repeat(255)] {
            assert_eq!(valid_device_id(ok.as_bytes()), Some(ok), "{ok}");
        }
        for bad in [
            "ab",
            "1sensor",
            "-sensor",
            "sensor one",
            "sensor\"1",
            "sensor/1",
        ] {
            assert_eq!(valid_device_id(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(valid_device_id("d".repeat(256).as_bytes()), None);
        assert_eq!(valid_device_id("sensé".as_bytes()), None);
    }
}
