//! `tether_provision_request`: the body a device publishes to `/devices/D/provision`
//! on first boot (docs/provisioning.md), from the raw public key its engine returns
//! and a signer callback for the same key. No heap, no clock.
//!
//! ```text
//!  {"publicKey":{"format":"ES256_RAW","key":"<base64url of x‖y>"},"proof":"<JWT>"}
//!                                                 proof = mint_proof(signer, aud, sub = D)
//! ```

#![allow(unsafe_code, reason = "exported C function over raw pointers")]

use core::ffi::c_char;

use tether_jwt::{Algorithm, Claims, MintError, Signer as _, b64, max_proof_len, mint_proof};

use crate::ffi;
use crate::signer::{CallbackSigner, tether_signer};
use crate::status::tether_status::{self, *};

/// How long the proof is valid: it is sent at once.
const PROOF_LIFETIME_SECS: u64 = 600;
/// Longest device id (IoT Core's rule).
const MAX_DEVICE_ID_LEN: usize = 255;

const HEAD: &[u8] = br#"{"publicKey":{"format":"ES256_RAW","key":""#;
const MID: &[u8] = br#""},"proof":""#;
const TAIL: &[u8] = br#""}"#;

/// A device id as IoT Core accepts it: 3 to 255 characters of `[a-zA-Z0-9-._+~%]`,
/// starting with a letter (so it goes into JSON unescaped).
fn valid_device_id(bytes: &[u8]) -> Option<&str> {
    let ok = (3..=MAX_DEVICE_ID_LEN).contains(&bytes.len())
        && bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes.iter().all(|&c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'+' | b'~' | b'%')
        });
    ok.then(|| core::str::from_utf8(bytes).ok()).flatten()
}

/// Writes the provisioning request for device `device_id` of `project_id` into `out`
/// as a NUL-terminated JSON string, and its length (without the NUL) into `*out_len`.
///
/// `public_key` is the device's new P-256 public key as its engine returns it: 64
/// bytes `x‖y` or 65 bytes `04‖x‖y`. `signer` signs with the matching private key
/// (ES256; the same callback `tether_jwt_mint` takes): it signs the proof, a JWT with
/// `aud` = the project, `sub` = the device id, `iat` as given (seconds since 1970) and
/// `exp` 10 minutes later. Publish the result to `/devices/{device_id}/provision` on
/// a connection authenticated with the provisioning claim's token.
///
/// `TETHER_PROVISION_REQUEST_MAX_LEN` always suffices for `out_cap`; if `out_cap` is
/// too small the result is `TETHER_ERR_BUFFER_TOO_SMALL` and `*out_len` is a size that
/// suffices (NUL included), known before the signer is called. `out_len` may be NULL.
/// A device id that IoT Core would refuse is `TETHER_ERR_BAD_ARGUMENT`; a key that is
/// not 64 or 65 (`0x04`-prefixed) bytes is `TETHER_ERR_KEY_FORMAT`; an RS256 signer is
/// `TETHER_ERR_KEY_UNSUPPORTED` (raw keys are P-256). On any error `out` holds "".
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
    // SAFETY: the caller's contract for the other pointers.
    let result = unsafe {
        write_request(
            signer,
            project_id,
            device_id,
            public_key,
            public_key_len,
            iat,
            buf,
            &mut needed,
        )
    };
    let (status, len) = match result {
        Ok(n) => (TETHER_OK, n),
        Err(status) => {
            if let Some(first) = buf.first_mut() {
                *first = 0;
            }
            let report = if status == TETHER_ERR_BUFFER_TOO_SMALL {
                needed
            } else {
                0
            };
            (status, report)
        }
    };
    // SAFETY: the caller's contract for `out_len`.
    unsafe { ffi::put(out_len, len) };
    status
}

/// # Safety
/// As [`tether_provision_request`].
#[allow(clippy::too_many_arguments)]
unsafe fn write_request(
    signer: *const tether_signer,
    project_id: *const c_char,
    device_id: *const c_char,
    public_key: *const u8,
    public_key_len: usize,
    iat: u64,
    out: &mut [u8],
    needed: &mut usize,
) -> Result<usize, tether_status> {
    // SAFETY: the caller's contract.
    let signer = unsafe { ffi::get(signer) }.ok_or(TETHER_ERR_NULL_POINTER)?;
    // SAFETY: the caller's contract.
    let aud = unsafe { ffi::project_id(project_id) }?;
    // SAFETY: the caller's contract.
    let id_bytes = unsafe { ffi::c_str(device_id, MAX_DEVICE_ID_LEN) }?;
    let sub = valid_device_id(id_bytes).ok_or(TETHER_ERR_BAD_ARGUMENT)?;
    // SAFETY: the caller's contract.
    let key = unsafe { ffi::bytes(public_key, public_key_len) }.ok_or(TETHER_ERR_NULL_POINTER)?;
    let point = match key.len() {
        64 => key,
        65 if key[0] == 4 => &key[1..],
        _ => return Err(TETHER_ERR_KEY_FORMAT),
    };
    let exp = iat
        .checked_add(PROOF_LIFETIME_SECS)
        .ok_or(TETHER_ERR_LIFETIME)?;
    let key_len = b64::encoded_len(point.len());
    let proof_at = HEAD.len() + key_len + MID.len();
    let room = out.len().saturating_sub(proof_at + TAIL.len() + 1);
    let cb = CallbackSigner::new(signer, room)?;
    if cb.algorithm() != Algorithm::Es256 {
        return Err(TETHER_ERR_KEY_UNSUPPORTED);
    }
    let safe = proof_at + max_proof_len(Algorithm::Es256, aud.len(), sub.len()) + TAIL.len() + 1;
    if out.len() < safe {
        *needed = safe;
        return Err(TETHER_ERR_BUFFER_TOO_SMALL);
    }
    out[..HEAD.len()].copy_from_slice(HEAD);
    b64::encode_into(point, &mut out[HEAD.len()..]).ok_or(TETHER_ERR_BUFFER_TOO_SMALL)?;
    out[HEAD.len() + key_len..proof_at].copy_from_slice(MID);
    let claims = Claims { aud, iat, exp };
    let end = out.len() - TAIL.len() - 1;
    let n = match mint_proof(&cb, &claims, sub, &mut out[proof_at..end]) {
        Ok(n) => n,
        Err(MintError::BufferTooSmall { .. }) => {
            *needed = safe;
            return Err(TETHER_ERR_BUFFER_TOO_SMALL);
        }
        Err(MintError::Sign(_)) => return Err(cb.failure().unwrap_or(TETHER_ERR_SIGNER_FAILED)),
        Err(MintError::BadSignatureLength { .. }) => return Err(TETHER_ERR_SIGNATURE_LENGTH),
        Err(MintError::InvalidAudience) => return Err(TETHER_ERR_PROJECT_ID),
        Err(MintError::InvalidSubject) => return Err(TETHER_ERR_BAD_ARGUMENT),
        Err(_) => return Err(TETHER_ERR_LIFETIME),
    };
    let tail_at = proof_at + n;
    out[tail_at..tail_at + TAIL.len()].copy_from_slice(TAIL);
    out[tail_at + TAIL.len()] = 0;
    Ok(tail_at + TAIL.len())
}

// The header's constant is the size `write_request` asks for in the worst case.
const _: () = assert!(
    crate::sizes::TETHER_PROVISION_REQUEST_MAX_LEN
        == HEAD.len()
            + b64::encoded_len(64)
            + MID.len()
            + max_proof_len(
                Algorithm::Es256,
                crate::sizes::TETHER_MAX_PROJECT_ID_LEN,
                MAX_DEVICE_ID_LEN,
            )
            + TAIL.len()
            + 1
);
