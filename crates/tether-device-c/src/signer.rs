//! The signer callback: how a hardware engine, a secure element or the built-in
//! software key signs a token. The library hashes (or not) as the engine wants, and
//! turns whatever ECDSA encoding comes back into the raw `r||s` JWS needs.

#![allow(
    unsafe_code,
    reason = "calls the C callback through a raw function pointer"
)]

use core::cell::Cell;
use core::ffi::c_void;

use sha2::{Digest as _, Sha256};
use tether_jwt::ecdsa_der::der_to_raw;
use tether_jwt::{Algorithm, SignError, Signer};

use crate::sizes::{
    TETHER_ALG_ES256, TETHER_ALG_RS256, TETHER_SIG_AUTO, TETHER_SIG_DER, TETHER_SIG_RAW,
    TETHER_SIGN_INPUT_MESSAGE, TETHER_SIGN_INPUT_SHA256, TETHER_SIGN_INPUT_SHA256_DIGEST_INFO,
    TETHER_SIGNATURE_MAX_LEN,
};
use crate::status::tether_status::{self, *};

/// Signs `input` (`input_len` bytes: the signing input, its SHA-256 digest or its
/// `DigestInfo`, as `tether_signer.input` asks) and writes the signature into `sig`
/// (`sig_cap` bytes: `TETHER_SIGNATURE_MAX_LEN`), its length into `*sig_len`.
/// ES256: 64-byte `r||s` or DER; RS256: the PKCS#1 v1.5 signature (modulus length).
/// Returns 0 on success; any other value is reported as `TETHER_ERR_SIGNER_FAILED`.
/// Must not write more than `sig_cap` bytes.
#[allow(non_camel_case_types)]
pub type tether_sign_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        input: *const u8,
        input_len: usize,
        sig: *mut u8,
        sig_cap: usize,
        sig_len: *mut usize,
    ) -> i32,
>;

/// Whatever holds the device's private key. Fill it by hand for a hardware engine,
/// or with `tether_p256_key_signer` for a key in memory.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct tether_signer {
    /// `TETHER_ALG_ES256` or `TETHER_ALG_RS256`: becomes the token's `alg`.
    pub alg: u32,
    /// What the callback receives: `TETHER_SIGN_INPUT_MESSAGE`, `_SHA256` or
    /// `_SHA256_DIGEST_INFO` (RS256 only).
    pub input: u32,
    /// ES256: `TETHER_SIG_AUTO`, `TETHER_SIG_RAW` or `TETHER_SIG_DER`. RS256: 0.
    pub sig_format: u32,
    /// The callback. NULL is `TETHER_ERR_NULL_POINTER`.
    pub sign: tether_sign_fn,
    /// Passed to the callback unchanged.
    pub ctx: *mut c_void,
}

/// What the callback is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Message,
    Sha256,
    DigestInfo,
}

/// How the callback's ECDSA signature is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Auto,
    Raw,
    Der,
}

/// A [`Signer`] over the C callback. It remembers why signing failed, since
/// [`SignError`] has no room for a status code, and the signature length, which
/// decides the token's exact size.
pub(crate) struct CallbackSigner {
    alg: Algorithm,
    input: Input,
    format: Format,
    callback:
        unsafe extern "C" fn(*mut c_void, *const u8, usize, *mut u8, usize, *mut usize) -> i32,
    ctx: *mut c_void,
    /// Bytes the token may take (NUL excluded): ES256 is refused before signing if
    /// the exact length does not fit, so no engine operation is wasted.
    room: usize,
    failure: Cell<Option<tether_status>>,
    sig_len: Cell<usize>,
}

impl CallbackSigner {
    /// Validates the C struct; `room` is the token capacity without the NUL.
    pub(crate) fn new(s: &tether_signer, room: usize) -> Result<Self, tether_status> {
        let alg = match s.alg {
            TETHER_ALG_ES256 => Algorithm::Es256,
            TETHER_ALG_RS256 => Algorithm::Rs256,
            _ => return Err(TETHER_ERR_BAD_ARGUMENT),
        };
        let input = match (s.input, alg) {
            (TETHER_SIGN_INPUT_MESSAGE, _) => Input::Message,
            (TETHER_SIGN_INPUT_SHA256, _) => Input::Sha256,
            (TETHER_SIGN_INPUT_SHA256_DIGEST_INFO, Algorithm::Rs256) => Input::DigestInfo,
            _ => return Err(TETHER_ERR_BAD_ARGUMENT),
        };
        let format = match (s.sig_format, alg) {
            (TETHER_SIG_AUTO, _) => Format::Auto,
            (TETHER_SIG_RAW, Algorithm::Es256) => Format::Raw,
            (TETHER_SIG_DER, Algorithm::Es256) => Format::Der,
            _ => return Err(TETHER_ERR_BAD_ARGUMENT),
        };
        let callback = s.sign.ok_or(TETHER_ERR_NULL_POINTER)?;
        Ok(CallbackSigner {
            alg,
            input,
            format,
            callback,
            ctx: s.ctx,
            room,
            failure: Cell::new(None),
            sig_len: Cell::new(0),
        })
    }

    /// Why the last `sign` failed, if the callback side failed.
    pub(crate) fn failure(&self) -> Option<tether_status> {
        self.failure.get()
    }

    /// Length of the last signature produced.
    pub(crate) fn sig_len(&self) -> usize {
        self.sig_len.get()
    }

    fn fail(&self, status: tether_status, why: &'static str) -> SignError {
        self.failure.set(Some(status));
        SignError::Failed(why)
    }

    /// Turns the engine's ECDSA output into `r||s` in `out`.
    fn ecdsa_raw(&self, sig: &[u8], out: &mut [u8]) -> Result<usize, SignError> {
        let mut raw = [0u8; 64];
        let der = match self.format {
            Format::Raw => None,
            Format::Der => Some(der_to_raw(sig, &mut raw)),
            Format::Auto => match der_to_raw(sig, &mut raw) {
                Ok(()) => Some(Ok(())),
                Err(_) if sig.len() == 64 => None,
                Err(e) if sig.first() == Some(&0x30) => Some(Err(e)),
                Err(_) => return Err(self.fail(TETHER_ERR_SIGNATURE_LENGTH, "not 64 bytes")),
            },
        };
        match der {
            Some(Ok(())) => {}
            Some(Err(_)) => {
                return Err(self.fail(TETHER_ERR_SIGNATURE_DER, "bad DER signature"));
            }
            None if sig.len() == 64 => raw.copy_from_slice(sig),
            None => return Err(self.fail(TETHER_ERR_SIGNATURE_LENGTH, "not 64 bytes")),
        }
        let out = out
            .get_mut(..64)
            .ok_or(SignError::BufferTooSmall { needed: 64 })?;
        out.copy_from_slice(&raw);
        Ok(64)
    }
}

impl Signer for CallbackSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn sign(&self, message: &[u8], out: &mut [u8]) -> Result<usize, SignError> {
        if self.alg == Algorithm::Es256 {
            let needed = message.len() + 1 + tether_jwt::b64::encoded_len(64);
            if needed > self.room {
                self.sig_len.set(64);
                return Err(self.fail(TETHER_ERR_BUFFER_TOO_SMALL, "token buffer too small"));
            }
        }
        let digest: [u8; 32] = Sha256::digest(message).into();
        let mut info = [0u8; tether_jwt::digest_info::SHA256.len() + 32];
        info[..tether_jwt::digest_info::SHA256.len()]
            .copy_from_slice(&tether_jwt::digest_info::SHA256);
        info[tether_jwt::digest_info::SHA256.len()..].copy_from_slice(&digest);
        let input: &[u8] = match self.input {
            Input::Message => message,
            Input::Sha256 => &digest,
            Input::DigestInfo => &info,
        };
        let mut sig = [0u8; TETHER_SIGNATURE_MAX_LEN];
        let mut len = 0usize;
        // SAFETY: `input` and `sig` are live buffers of the lengths passed; the
        // callback's contract is to write at most `sig.len()` bytes into `sig`.
        let rc = unsafe {
            (self.callback)(
                self.ctx,
                input.as_ptr(),
                input.len(),
                sig.as_mut_ptr(),
                sig.len(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(self.fail(TETHER_ERR_SIGNER_FAILED, "the signer callback failed"));
        }
        let sig = sig
            .get(..len)
            .ok_or_else(|| self.fail(TETHER_ERR_SIGNATURE_LENGTH, "longer than its buffer"))?;
        let n = match self.alg {
            Algorithm::Es256 => self.ecdsa_raw(sig, out)?,
            Algorithm::Rs256 if (256..=TETHER_SIGNATURE_MAX_LEN).contains(&len) => {
                let dst = out
                    .get_mut(..len)
                    .ok_or(SignError::BufferTooSmall { needed: len })?;
                dst.copy_from_slice(sig);
                len
            }
            Algorithm::Rs256 => {
                return Err(self.fail(
                    TETHER_ERR_SIGNATURE_LENGTH,
                    "not an RSA 2048-4096 signature",
                ));
            }
        };
        self.sig_len.set(n);
        Ok(n)
    }
}
