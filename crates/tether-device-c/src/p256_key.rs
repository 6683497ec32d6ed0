//! The built-in software signer: a P-256 private key in RAM, read from PKCS#8, SEC1
//! or the raw 32-byte scalar (PEM or DER), signing with RFC 6979 deterministic ECDSA.

#![allow(unsafe_code, reason = "exported C functions over raw pointers")]

use core::ffi::c_void;

use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use p256::ecdsa::{Signature, SigningKey};
use tether_jwt::Signer as _;
use tether_jwt::keyfile::KeyFile;

use crate::ffi;
use crate::keys::{self, DerBuf};
use crate::signer::tether_signer;
use crate::sizes::{
    TETHER_ALG_ES256, TETHER_ES256_SIGNATURE_LEN, TETHER_KEY_DER_MAX_LEN, TETHER_SIG_RAW,
    TETHER_SIGN_INPUT_MESSAGE,
};
use crate::status::tether_status::{self, *};

/// A P-256 private key for the built-in signer. Treat it as opaque; it holds the
/// secret scalar, so wipe it when done.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone)]
pub struct tether_p256_key {
    secret: [u8; 32],
}

impl core::fmt::Debug for tether_p256_key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("tether_p256_key(..)")
    }
}

/// Loads a P-256 private key: PKCS#8 (`BEGIN PRIVATE KEY`), SEC1 (`BEGIN EC
/// PRIVATE KEY`), as PEM text or DER bytes, or the raw 32-byte big-endian scalar.
///
/// Errors: `TETHER_ERR_KEY_FORMAT` (none of those), `TETHER_ERR_KEY_ENCRYPTED`,
/// `TETHER_ERR_KEY_NOT_PRIVATE` (a public key), `TETHER_ERR_KEY_UNSUPPORTED` (RSA:
/// sign with a callback; other curves), `TETHER_ERR_KEY_INVALID` (scalar 0 or >= n).
///
/// # Safety
/// `key` must point to a writable `tether_p256_key`, `bytes` to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_p256_key_init(
    key: *mut tether_p256_key,
    bytes: *const u8,
    len: usize,
) -> tether_status {
    // SAFETY: the caller's contract.
    let (Some(key), Some(bytes)) = (unsafe { ffi::get_mut(key) }, unsafe {
        ffi::bytes(bytes, len)
    }) else {
        return TETHER_ERR_NULL_POINTER;
    };
    let mut buf: DerBuf = [0u8; TETHER_KEY_DER_MAX_LEN];
    let scalar = match keys::read(bytes, &mut buf) {
        Ok(KeyFile::P256Private { scalar, .. }) => scalar,
        Ok(KeyFile::RsaPrivate { .. }) => return TETHER_ERR_KEY_UNSUPPORTED,
        Ok(_) => return TETHER_ERR_KEY_NOT_PRIVATE,
        Err(status) => return status,
    };
    if let Err(status) = keys::p256_signer(&scalar) {
        return status;
    }
    key.secret = scalar;
    TETHER_OK
}

/// Fills `signer` so that `tether_jwt_mint` signs with `key` (ES256). `key` must
/// stay valid while the signer is used.
///
/// # Safety
/// `key` must point to a `tether_p256_key` loaded by `tether_p256_key_init`, and
/// `signer` to a writable `tether_signer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_p256_key_signer(
    key: *const tether_p256_key,
    signer: *mut tether_signer,
) -> tether_status {
    // SAFETY: the caller's contract.
    let Some(out) = (unsafe { ffi::get_mut(signer) }) else {
        return TETHER_ERR_NULL_POINTER;
    };
    if key.is_null() {
        return TETHER_ERR_NULL_POINTER;
    }
    *out = tether_signer {
        alg: TETHER_ALG_ES256,
        input: TETHER_SIGN_INPUT_MESSAGE,
        sig_format: TETHER_SIG_RAW,
        sign: Some(sign_with_key),
        ctx: key.cast_mut().cast::<c_void>(),
    };
    TETHER_OK
}

/// The callback `tether_p256_key_signer` installs.
unsafe extern "C" fn sign_with_key(
    ctx: *mut c_void,
    input: *const u8,
    input_len: usize,
    sig: *mut u8,
    sig_cap: usize,
    sig_len: *mut usize,
) -> i32 {
    // SAFETY: `ctx` is the key given to `tether_p256_key_signer`; the library passes
    // live buffers of the lengths given.
    let (key, input, sig) = unsafe {
        (
            ffi::get(ctx.cast_const().cast::<tether_p256_key>()),
            ffi::bytes(input, input_len),
            ffi::bytes_mut(sig, sig_cap),
        )
    };
    let (Some(key), Some(input), Some(sig)) = (key, input, sig) else {
        return -1;
    };
    let Ok(signer) = keys::p256_signer(&key.secret) else {
        return -1;
    };
    match signer.sign(input, sig) {
        Ok(n) => {
            // SAFETY: the library passes a valid `sig_len`.
            unsafe { ffi::put(sig_len, n) };
            0
        }
        Err(_) => -1,
    }
}

/// Signs a 32-byte SHA-256 `digest` with `key` and writes the raw 64-byte `r||s`
/// into `sig` (`sig_cap` >= `TETHER_ES256_SIGNATURE_LEN`). For firmware that drives
/// signing itself, and for tests that need a stand-in for a hardware engine.
///
/// # Safety
/// `key` must point to a loaded `tether_p256_key`, `digest` to `digest_len` readable
/// bytes and `sig` to `sig_cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_p256_sign_digest(
    key: *const tether_p256_key,
    digest: *const u8,
    digest_len: usize,
    sig: *mut u8,
    sig_cap: usize,
) -> tether_status {
    // SAFETY: the caller's contract.
    let (key, digest, sig) = unsafe {
        (
            ffi::get(key),
            ffi::bytes(digest, digest_len),
            ffi::bytes_mut(sig, sig_cap),
        )
    };
    let (Some(key), Some(digest), Some(sig)) = (key, digest, sig) else {
        return TETHER_ERR_NULL_POINTER;
    };
    if digest.len() != 32 {
        return TETHER_ERR_BAD_ARGUMENT;
    }
    let Some(sig) = sig.get_mut(..TETHER_ES256_SIGNATURE_LEN) else {
        return TETHER_ERR_BUFFER_TOO_SMALL;
    };
    let Ok(signing) = SigningKey::from_slice(&key.secret) else {
        return TETHER_ERR_KEY_INVALID;
    };
    let signed: Result<Signature, _> = signing.sign_prehash(digest);
    match signed {
        Ok(s) => {
            sig.copy_from_slice(&s.to_bytes());
            TETHER_OK
        }
        Err(_) => TETHER_ERR_KEY_INVALID,
    }
}
