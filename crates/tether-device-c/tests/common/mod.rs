//! Safe wrappers around the C API for the tests, and test keys and signers.
#![allow(dead_code, unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_void};

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use tether_device_c::sizes::*;
use tether_device_c::*;

pub const NOW: u64 = 1_790_000_000; // 2026-09-21T14:13:20Z
pub const RSA_PKCS8: &[u8] = include_bytes!("../../../tether-jwt/tests/data/rsa2048-pkcs8.der");

/// A fresh P-256 PKCS#8 key (DER).
pub fn p256_pkcs8() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .expect("ring generates a P-256 key")
        .as_ref()
        .to_vec()
}

/// PEM text of `der` with `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    tether_keys::convert::pem_text(label, der)
}

/// `tether_p256_key_init`.
pub fn load(bytes: &[u8]) -> Result<tether_p256_key, tether_status> {
    let mut key = std::mem::MaybeUninit::<tether_p256_key>::zeroed();
    // SAFETY: both pointers are valid for the lengths given.
    let st = unsafe { tether_p256_key_init(key.as_mut_ptr(), bytes.as_ptr(), bytes.len()) };
    match st {
        // SAFETY: zeroed then initialised by the call.
        tether_status::TETHER_OK => Ok(unsafe { key.assume_init() }),
        st => Err(st),
    }
}

/// The software signer of a loaded key.
pub fn soft_signer(key: &tether_p256_key) -> tether_signer {
    let mut signer = std::mem::MaybeUninit::<tether_signer>::zeroed();
    // SAFETY: valid pointers.
    let st = unsafe { tether_p256_key_signer(key, signer.as_mut_ptr()) };
    assert_eq!(st, tether_status::TETHER_OK);
    // SAFETY: initialised by the call.
    unsafe { signer.assume_init() }
}

/// `tether_jwt_mint` into a buffer of `cap` bytes followed by a canary; checks the
/// canary survived and returns the status, the token and the reported length.
pub fn mint_cap(
    signer: &tether_signer,
    project: &str,
    lifetime: u32,
    cap: usize,
) -> (tether_status, String, usize) {
    let project = CString::new(project).expect("no NUL");
    let mut buf = vec![0xa5u8; cap + 16];
    let mut len = usize::MAX;
    // SAFETY: `buf` holds `cap` writable bytes (and a canary after them).
    let st = unsafe {
        tether_jwt_mint(
            signer,
            project.as_ptr(),
            NOW,
            lifetime,
            buf.as_mut_ptr().cast::<c_char>(),
            cap,
            &mut len,
        )
    };
    assert!(
        buf[cap..].iter().all(|&b| b == 0xa5),
        "wrote past the buffer: {st:?}"
    );
    let text = if cap > 0 {
        CStr::from_bytes_until_nul(&buf[..cap])
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    (st, text, len)
}

pub fn mint(signer: &tether_signer, project: &str) -> String {
    let (st, token, len) = mint_cap(signer, project, 1200, TETHER_JWT_RS256_MAX_LEN);
    assert_eq!(st, tether_status::TETHER_OK);
    assert_eq!(len, token.len());
    token
}

/// A signer over a Rust closure, as a C engine would be: `f(input, sig) -> (rc, len)`.
pub struct Engine<F: FnMut(&[u8], &mut [u8]) -> (i32, usize)> {
    pub f: F,
}

unsafe extern "C" fn engine_call<F: FnMut(&[u8], &mut [u8]) -> (i32, usize)>(
    ctx: *mut c_void,
    input: *const u8,
    input_len: usize,
    sig: *mut u8,
    sig_cap: usize,
    sig_len: *mut usize,
) -> i32 {
    // SAFETY: `ctx` is the `Engine<F>` given in `signer`; the library passes valid buffers.
    let (engine, input, sig) = unsafe {
        (
            &mut *ctx.cast::<Engine<F>>(),
            std::slice::from_raw_parts(input, input_len),
            std::slice::from_raw_parts_mut(sig, sig_cap),
        )
    };
    let (rc, len) = (engine.f)(input, sig);
    // SAFETY: valid pointer from the library.
    unsafe { *sig_len = len };
    rc
}

impl<F: FnMut(&[u8], &mut [u8]) -> (i32, usize)> Engine<F> {
    pub fn signer(&mut self, alg: u32, input: u32, sig_format: u32) -> tether_signer {
        tether_signer {
            alg,
            input,
            sig_format,
            sign: Some(engine_call::<F>),
            ctx: (self as *mut Self).cast::<c_void>(),
        }
    }
}

/// `tether_jwt_check` with a text buffer of `cap` bytes (and a canary after it).
pub fn check_cap(
    token: &[u8],
    key: Option<&[u8]>,
    project: Option<&str>,
    now: Option<i64>,
    cap: usize,
) -> (tether_status, tether_check_result, String) {
    let project = project.map(|p| CString::new(p).expect("no NUL"));
    let options = tether_check_options {
        project_id: project.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
        now: now.unwrap_or(0),
        now_known: now.is_some(),
        strict: false,
    };
    let mut text = vec![0xa5u8; cap + 16];
    // SAFETY: a zeroed result is a valid value (all integers; first_error 0 = NONE).
    let mut result: tether_check_result = unsafe { std::mem::zeroed() };
    let (kp, kl) = key.map_or((std::ptr::null(), 0), |k| (k.as_ptr(), k.len()));
    // SAFETY: all pointers are valid for the lengths given.
    let st = unsafe {
        tether_jwt_check(
            token.as_ptr().cast::<c_char>(),
            token.len(),
            kp,
            kl,
            &options,
            text.as_mut_ptr().cast::<c_char>(),
            cap,
            &mut result,
        )
    };
    assert!(
        text[cap..].iter().all(|&b| b == 0xa5),
        "wrote past the text buffer"
    );
    let s = CStr::from_bytes_until_nul(&text[..cap])
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    (st, result, s)
}

pub fn check(
    token: &str,
    key: Option<&[u8]>,
    project: Option<&str>,
    now: Option<i64>,
) -> (tether_status, tether_check_result, String) {
    check_cap(token.as_bytes(), key, project, now, TETHER_CHECK_TEXT_LEN)
}
