//! Key helpers: the public key between PEM, DER and raw, its fingerprint, and the
//! exact text to register, so a device can print the key the cloud must hold.

#![allow(unsafe_code, reason = "exported C functions over raw pointers")]

use core::ffi::c_char;
use core::fmt::Write as _;

use sha2::{Digest as _, Sha256};
use tether_jwt::KeyType;
use tether_jwt::keyfile::KeyFile;

use crate::ffi;
use crate::keys::{self, DerBuf};
use crate::sizes::{
    TETHER_KEY_DER, TETHER_KEY_DER_MAX_LEN, TETHER_KEY_PEM, TETHER_KEY_RAW,
    TETHER_KEY_RAW_UNCOMPRESSED, TETHER_PUBLIC_KEY_DER_MAX_LEN,
};
use crate::status::tether_status::{self, *};
use crate::text::Text;

/// Reads any key and runs `f` on its SubjectPublicKeyInfo.
fn with_spki<R>(
    key: &[u8],
    f: impl FnOnce(&KeyFile<'_>, &[u8]) -> Result<R, tether_status>,
) -> Result<R, tether_status> {
    let mut buf: DerBuf = [0u8; TETHER_KEY_DER_MAX_LEN];
    let parsed = keys::read(key, &mut buf)?;
    let mut spki = [0u8; TETHER_PUBLIC_KEY_DER_MAX_LEN];
    let n = keys::spki(&parsed, &mut spki)?;
    f(&parsed, &spki[..n])
}

/// Copies `bytes` to `out` (and a NUL if `nul`), or reports the size needed.
fn emit(bytes: &[u8], nul: bool, out: &mut [u8], out_len: &mut usize) -> Result<(), tether_status> {
    let needed = bytes.len() + usize::from(nul);
    let Some(dst) = out.get_mut(..needed) else {
        *out_len = needed;
        return Err(TETHER_ERR_BUFFER_TOO_SMALL);
    };
    dst[..bytes.len()].copy_from_slice(bytes);
    if nul {
        dst[bytes.len()] = 0;
    }
    *out_len = bytes.len();
    Ok(())
}

fn pem_into(spki: &[u8], out: &mut [u8], out_len: &mut usize) -> Result<(), tether_status> {
    let needed = tether_jwt::pem::encoded_len(10, spki.len()) + 1;
    let written = out
        .get_mut(..needed)
        .and_then(|dst| tether_jwt::pem::encode("PUBLIC KEY", spki, dst));
    let Some(n) = written else {
        *out_len = needed;
        return Err(TETHER_ERR_BUFFER_TOO_SMALL);
    };
    out[n] = 0;
    *out_len = n;
    Ok(())
}

/// Runs an exported key helper: NULL checks, then `f`, then `*out_len`.
///
/// # Safety
/// As for the exported functions: `key` readable for `key_len`, `out` writable for
/// `out_cap`, `out_len` writable or NULL.
unsafe fn run(
    key: *const u8,
    key_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
    f: impl FnOnce(&[u8], &mut [u8], &mut usize) -> Result<(), tether_status>,
) -> tether_status {
    // SAFETY: the caller's contract.
    let (Some(key), Some(out)) = (unsafe { ffi::bytes(key, key_len) }, unsafe {
        ffi::bytes_mut(out, out_cap)
    }) else {
        return TETHER_ERR_NULL_POINTER;
    };
    let mut len = 0;
    let status = match f(key, out, &mut len) {
        Ok(()) => TETHER_OK,
        Err(status) => status,
    };
    if status != TETHER_OK && status != TETHER_ERR_BUFFER_TOO_SMALL {
        len = 0;
    }
    // SAFETY: the caller's contract.
    unsafe { ffi::put(out_len, len) };
    status
}

/// Converts a key to its public key in the form `to` asks for:
/// `TETHER_KEY_PEM` (`BEGIN PUBLIC KEY`, NUL-terminated), `TETHER_KEY_DER`
/// (SubjectPublicKeyInfo), `TETHER_KEY_RAW` (P-256 `x||y`, 64 bytes) or
/// `TETHER_KEY_RAW_UNCOMPRESSED` (`04||x||y`). The input may be a private or public
/// key as PEM, DER or raw bytes. `*out_len` gets the length written (without a NUL),
/// or the size needed with `TETHER_ERR_BUFFER_TOO_SMALL`; it may be NULL.
///
/// # Safety
/// `key` must point to `key_len` readable bytes, `out` to `out_cap` writable bytes,
/// `out_len` to a writable `size_t` or be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_public_key_convert(
    key: *const u8,
    key_len: usize,
    to: u32,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> tether_status {
    let convert = |key: &[u8], out: &mut [u8], len: &mut usize| {
        with_spki(key, |parsed, spki| match to {
            TETHER_KEY_PEM => pem_into(spki, out, len),
            TETHER_KEY_DER => emit(spki, false, out, len),
            TETHER_KEY_RAW | TETHER_KEY_RAW_UNCOMPRESSED => {
                let point = keys::p256_point(parsed)?;
                let skip = usize::from(to == TETHER_KEY_RAW);
                emit(&point[skip..], false, out, len)
            }
            _ => Err(TETHER_ERR_BAD_ARGUMENT),
        })
    };
    // SAFETY: the caller's contract, passed on.
    unsafe { run(key, key_len, out, out_cap, out_len, convert) }
}

/// The exact text to register for this device in IoT Core (`credentials[].publicKey.key`)
/// as a NUL-terminated PEM, and its format in `*format` (`"ES256_PEM"` or `"RSA_PEM"`,
/// static strings; `format` may be NULL). The input may be the device's private key,
/// so the key the cloud must hold can be printed from the device itself. RSA keys
/// under 2048 bits are `TETHER_ERR_KEY_UNSUPPORTED`, as IoT Core refused them.
///
/// # Safety
/// `key` must point to `key_len` readable bytes, `text` to `text_cap` writable bytes;
/// `text_len` and `format` must be writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_key_registration(
    key: *const u8,
    key_len: usize,
    text: *mut c_char,
    text_cap: usize,
    text_len: *mut usize,
    format: *mut *const c_char,
) -> tether_status {
    let mut name: Option<&'static core::ffi::CStr> = None;
    let register = |key: &[u8], out: &mut [u8], len: &mut usize| {
        with_spki(key, |parsed, spki| {
            name = Some(match parsed.key_type() {
                KeyType::EcP256 => c"ES256_PEM",
                KeyType::Rsa if parsed.rsa_bits() < 2048 => return Err(TETHER_ERR_KEY_UNSUPPORTED),
                KeyType::Rsa => c"RSA_PEM",
            });
            pem_into(spki, out, len)
        })
    };
    // SAFETY: the caller's contract, passed on.
    let status = unsafe {
        run(
            key,
            key_len,
            text.cast::<u8>(),
            text_cap,
            text_len,
            register,
        )
    };
    let name = if status == TETHER_OK { name } else { None };
    // SAFETY: the caller's contract.
    unsafe { ffi::put(format, name.map_or(core::ptr::null(), |n| n.as_ptr())) };
    status
}

/// The key's fingerprint, `sha256:` and 64 hex digits (SHA-256 of the public key's
/// DER SubjectPublicKeyInfo), NUL-terminated: what `tether keys inspect` and the
/// server's refusals print, so a device log can be matched to a registered key.
/// `out_cap` must be at least `TETHER_FINGERPRINT_LEN`.
///
/// # Safety
/// `key` must point to `key_len` readable bytes and `out` to `out_cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_key_fingerprint(
    key: *const u8,
    key_len: usize,
    out: *mut c_char,
    out_cap: usize,
) -> tether_status {
    let fingerprint = |key: &[u8], out: &mut [u8], len: &mut usize| {
        with_spki(key, |_, spki| {
            let mut text = Text::new(out);
            let _ = write!(text, "sha256:");
            for b in Sha256::digest(spki) {
                let _ = write!(text, "{b:02x}");
            }
            text.finish(len)
        })
    };
    // SAFETY: the caller's contract, passed on.
    unsafe {
        run(
            key,
            key_len,
            out.cast::<u8>(),
            out_cap,
            core::ptr::null_mut(),
            fingerprint,
        )
    }
}
