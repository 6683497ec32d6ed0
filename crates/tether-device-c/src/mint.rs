//! `tether_jwt_mint`: an IoT Core token into the caller's buffer. No heap, no clock:
//! the caller passes `iat`, and the signer callback holds the key.

#![allow(unsafe_code, reason = "exported C function over raw pointers")]

use core::ffi::c_char;

use tether_jwt::{Algorithm, Claims, MintError, Signer as _, mint};

use crate::ffi;
use crate::signer::{CallbackSigner, tether_signer};
use crate::sizes::{TETHER_MAX_LIFETIME_SECS, TETHER_MAX_PROJECT_ID_LEN, digits, token_len};
use crate::status::tether_status::{self, *};

/// A project id as the library accepts it: 1 to `TETHER_MAX_PROJECT_ID_LEN` bytes of
/// printable ASCII other than `"` and `\`, so it goes into JSON unescaped and the
/// token's size is known before signing.
pub(crate) fn valid_project_id(bytes: &[u8]) -> Option<&str> {
    let ok = (1..=TETHER_MAX_PROJECT_ID_LEN).contains(&bytes.len())
        && bytes
            .iter()
            .all(|&c| c.is_ascii_graphic() && c != b'"' && c != b'\\');
    ok.then(|| core::str::from_utf8(bytes).ok()).flatten()
}

/// Writes a signed IoT Core JWT, `{"alg":..,"typ":"JWT"}.{"iat":..,"exp":..,"aud":..}.sig`,
/// into `token` as a NUL-terminated string and its length (without the NUL) into
/// `*token_len`.
///
/// `iat` is the current time in seconds since 1970 (from SNTP or the RTC: the
/// library has no clock); `exp` is `iat + lifetime_secs`, at most 24 h. The header's
/// `alg` comes from `signer->alg`. `token_cap` is the buffer size:
/// `TETHER_JWT_ES256_MAX_LEN` or `TETHER_JWT_RS256_MAX_LEN` always suffice. If it is
/// too small the result is `TETHER_ERR_BUFFER_TOO_SMALL` and `*token_len` is the size
/// needed (NUL included); for ES256 this is known before the signer is called, so
/// no signature is wasted. `token_len` may be NULL. On any error `token` holds "".
///
/// # Safety
/// `signer` must point to a valid `tether_signer`, `project_id` to a NUL-terminated
/// string, `token` to `token_cap` writable bytes, and `token_len` (if not NULL) to
/// a writable `size_t`. NULL pointers are reported, not dereferenced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_jwt_mint(
    signer: *const tether_signer,
    project_id: *const c_char,
    iat: u64,
    lifetime_secs: u32,
    token: *mut c_char,
    token_cap: usize,
    token_len: *mut usize,
) -> tether_status {
    // SAFETY: the caller's contract for `token`.
    let Some(out) = (unsafe { ffi::bytes_mut(token.cast::<u8>(), token_cap) }) else {
        return TETHER_ERR_NULL_POINTER;
    };
    if let Some(first) = out.first_mut() {
        *first = 0;
    }
    let mut needed = 0;
    // SAFETY: the caller's contract for `signer` and `project_id`.
    let status = unsafe { mint_into(signer, project_id, iat, lifetime_secs, out, &mut needed) };
    match status {
        Ok(n) => {
            // SAFETY: the caller's contract for `token_len`.
            unsafe { ffi::put(token_len, n) };
            TETHER_OK
        }
        Err(status) => {
            if let Some(first) = out.first_mut() {
                *first = 0;
            }
            let report = if status == TETHER_ERR_BUFFER_TOO_SMALL {
                needed
            } else {
                0
            };
            // SAFETY: the caller's contract for `token_len`.
            unsafe { ffi::put(token_len, report) };
            status
        }
    }
}

/// # Safety
/// As [`tether_jwt_mint`] for `signer` and `project_id`.
unsafe fn mint_into(
    signer: *const tether_signer,
    project_id: *const c_char,
    iat: u64,
    lifetime_secs: u32,
    out: &mut [u8],
    needed: &mut usize,
) -> Result<usize, tether_status> {
    // SAFETY: the caller's contract.
    let signer = unsafe { ffi::get(signer) }.ok_or(TETHER_ERR_NULL_POINTER)?;
    // SAFETY: the caller's contract.
    let aud = unsafe { ffi::project_id(project_id) }?;
    if lifetime_secs == 0 || lifetime_secs > TETHER_MAX_LIFETIME_SECS {
        return Err(TETHER_ERR_LIFETIME);
    }
    let exp = iat
        .checked_add(u64::from(lifetime_secs))
        .ok_or(TETHER_ERR_LIFETIME)?;
    let room = out.len().saturating_sub(1);
    let cb = CallbackSigner::new(signer, room)?;
    let exact = |sig_len| token_len(aud.len(), digits(iat), digits(exp), sig_len) + 1;
    // The shortest RS256 signature is 256 bytes (RSA 2048).
    let smallest = match cb.algorithm() {
        Algorithm::Es256 => exact(64),
        Algorithm::Rs256 => exact(256),
    };
    if out.len() < smallest {
        *needed = smallest;
        return Err(TETHER_ERR_BUFFER_TOO_SMALL);
    }
    let claims = Claims { aud, iat, exp };
    match mint(&cb, &claims, &mut out[..room]) {
        Ok(n) => {
            out[n] = 0;
            Ok(n)
        }
        Err(MintError::BufferTooSmall { .. }) => {
            *needed = exact(cb.sig_len());
            Err(TETHER_ERR_BUFFER_TOO_SMALL)
        }
        Err(MintError::Sign(_)) => {
            let status = cb.failure().unwrap_or(TETHER_ERR_SIGNER_FAILED);
            if status == TETHER_ERR_BUFFER_TOO_SMALL {
                *needed = exact(cb.sig_len());
            }
            Err(status)
        }
        Err(MintError::BadSignatureLength { .. }) => Err(TETHER_ERR_SIGNATURE_LENGTH),
        Err(MintError::InvalidAudience) => Err(TETHER_ERR_PROJECT_ID),
        Err(_) => Err(TETHER_ERR_LIFETIME),
    }
}
