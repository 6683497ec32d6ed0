//! `tether_jwt_check`: the offline checks of `tether jwt diagnose`, run on the device
//! against its own token and a public key, without an allocator. A device that is
//! refused can log exactly why, in the same words the CLI uses.
//!
//! ```text
//!  token ─▶ structure (wrapping, 3 parts, base64url) ─▶ claims (header, aud/iat/exp)
//!                                                    └▶ signature (DER? length? key?)
//!                                                          │
//!                        findings: counts, first error, one text line each ◀┘
//! ```
//! Not run on the device: recovering the ES256 signer's public keys (the CLI does).

#![allow(unsafe_code, reason = "exported C function over raw pointers")]

mod claims;
pub(crate) mod finding;
mod json;
mod report;
mod rsa;
mod signature;
mod structure;

use core::ffi::c_char;

use sha2::{Digest as _, Sha256};
use tether_jwt::b64::decoded_len_max;
use tether_jwt::keyfile::KeyFile;

use self::claims::Expect;
use self::finding::tether_finding;
use self::report::Report;
use self::signature::{Checked, Evidence, Key};
use crate::ffi;
use crate::keys::{self, DerBuf};
use crate::sizes::{
    TETHER_CHECK_MAX_TOKEN_LEN, TETHER_KEY_DER_MAX_LEN, TETHER_PUBLIC_KEY_DER_MAX_LEN,
};
use crate::status::tether_status::{self, *};
use crate::text::Text;

/// What `tether_jwt_check` checks against. Zero-initialised means: any project, no
/// time rules, lenient base64 (as IoT Core).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct tether_check_options {
    /// The project id `aud` must equal; NULL to leave `aud` unchecked.
    pub project_id: *const c_char,
    /// The current time, seconds since 1970, if `now_known`.
    pub now: i64,
    /// Whether `now` is set; without it, expiry and clock rules are skipped.
    pub now_known: bool,
    /// Refuse `=` padding and the standard base64 alphabet (IoT Core accepted them).
    pub strict: bool,
}

/// What `tether_jwt_check` found.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct tether_check_result {
    /// Findings that make the token refused.
    pub errors: u32,
    /// Findings strict servers refuse, or that look wrong.
    pub warnings: u32,
    /// Findings for information (e.g. `signature-verified`).
    pub infos: u32,
    /// The first error's code, `TETHER_FINDING_NONE` if none.
    pub first_error: tether_finding,
    /// Bytes of text written, without the NUL.
    pub text_len: usize,
    /// Bytes the whole text needs, NUL included.
    pub text_needed: usize,
}

/// Checks `token` (`token_len` bytes, not NUL-terminated) as `tether jwt diagnose`
/// does: its wrapping, parts, base64url, header, claims, and - if `public_key` is
/// not NULL - its signature against that key (PEM, DER or raw; a private key is
/// read for its public half), telling a wrong key from a damaged token.
///
/// Each finding becomes one line of `text`: `severity code [at offset]: message`,
/// NUL-terminated; lines that do not fit are left out whole. `text` may be NULL;
/// `TETHER_CHECK_TEXT_LEN` bytes hold every realistic report. `options` may be NULL
/// (defaults) and `result` may be NULL.
///
/// Returns `TETHER_OK` if the token would be accepted, `TETHER_ERR_TOKEN_REFUSED` if
/// a finding is an error, `TETHER_ERR_BUFFER_TOO_SMALL` if the text was cut (the
/// verdict is then in `result->errors`), or an argument error: NULL `token`, a
/// token over `TETHER_CHECK_MAX_TOKEN_LEN`, an unreadable key, a bad project id.
///
/// # Safety
/// `token` must point to `token_len` readable bytes; `public_key` (if not NULL) to
/// `public_key_len` bytes; `options` and `result` to valid structs or be NULL;
/// `text` (if not NULL) to `text_cap` writable bytes; `options->project_id` to a
/// NUL-terminated string or be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_jwt_check(
    token: *const c_char,
    token_len: usize,
    public_key: *const u8,
    public_key_len: usize,
    options: *const tether_check_options,
    text: *mut c_char,
    text_cap: usize,
    result: *mut tether_check_result,
) -> tether_status {
    // SAFETY: the caller's contract for each pointer.
    let (token, key, options, text) = unsafe {
        (
            ffi::bytes(token.cast::<u8>(), token_len),
            ffi::bytes(public_key, public_key_len),
            ffi::get(options),
            ffi::bytes_mut(text.cast::<u8>(), text_cap),
        )
    };
    let Some(token) = token else {
        return TETHER_ERR_NULL_POINTER;
    };
    if token.len() > TETHER_CHECK_MAX_TOKEN_LEN {
        return TETHER_ERR_TOKEN_TOO_LONG;
    }
    let project = match options.map(|o| o.project_id).filter(|p| !p.is_null()) {
        // SAFETY: the caller's contract for `project_id`.
        Some(p) => match unsafe { ffi::project_id(p) } {
            Ok(p) => Some(p),
            Err(status) => return status,
        },
        None => None,
    };
    let expect = Expect {
        project,
        now: options.filter(|o| o.now_known).map(|o| o.now),
    };
    let strict = options.is_some_and(|o| o.strict);
    let mut report = Report::new(text.map(Text::new));
    if let Err(status) = check_with_key(token, key, &expect, strict, &mut report) {
        return status;
    }
    let (text_len, text_needed, cut) = report.finish_text();
    // SAFETY: the caller's contract for `result`.
    unsafe {
        ffi::put(
            result,
            tether_check_result {
                errors: report.errors,
                warnings: report.warnings,
                infos: report.infos,
                first_error: report.first_error,
                text_len,
                text_needed,
            },
        );
    }
    match (cut, report.errors) {
        (true, _) => TETHER_ERR_BUFFER_TOO_SMALL,
        (false, 0) => TETHER_OK,
        (false, _) => TETHER_ERR_TOKEN_REFUSED,
    }
}

/// Reads the key (if any) and runs the checks.
fn check_with_key(
    token: &[u8],
    key: Option<&[u8]>,
    expect: &Expect<'_>,
    strict: bool,
    r: &mut Report<'_>,
) -> Result<(), tether_status> {
    let Some(key) = key else {
        run(token, None, expect, strict, r);
        return Ok(());
    };
    let mut buf: DerBuf = [0u8; TETHER_KEY_DER_MAX_LEN];
    let parsed = keys::read(key, &mut buf)?;
    let mut spki = [0u8; TETHER_PUBLIC_KEY_DER_MAX_LEN];
    let n = keys::spki(&parsed, &mut spki)?;
    let key = match parsed {
        KeyFile::P256Private { .. } | KeyFile::P256Public { .. } => {
            Key::P256(keys::p256_point(&parsed)?)
        }
        KeyFile::RsaPublic {
            modulus, exponent, ..
        }
        | KeyFile::RsaPrivate {
            modulus, exponent, ..
        } => Key::Rsa { modulus, exponent },
    };
    let checked = Checked {
        key,
        fingerprint: Sha256::digest(&spki[..n]).into(),
    };
    run(token, Some(&checked), expect, strict, r);
    Ok(())
}

/// Every check, in the order `tether jwt diagnose` makes them.
pub(crate) fn run(
    input: &[u8],
    key: Option<&Checked<'_>>,
    expect: &Expect<'_>,
    strict: bool,
    r: &mut Report<'_>,
) {
    let (start, token) = structure::unwrap(input, r);
    if token.is_empty() {
        r.add(
            tether_finding::TETHER_FINDING_EMPTY,
            report::Severity::Error,
            None,
            format_args!("the token is empty"),
        );
        return;
    }
    let mut parts = [&token[..0]; 3];
    let mut count = 0;
    for part in token.split(|&c| c == b'.') {
        if let Some(slot) = parts.get_mut(count) {
            *slot = part;
        }
        count += 1;
    }
    if count != 3 {
        structure::segment_count(token, count, r);
        return;
    }
    let offsets = [
        start,
        start + parts[0].len() + 1,
        start + parts[0].len() + parts[1].len() + 2,
    ];
    let mut scratch = [0u8; decoded_len_max(TETHER_CHECK_MAX_TOKEN_LEN) + 4];
    let (header_buf, rest) = scratch.split_at_mut(decoded_len_max(parts[0].len()));
    let (claims_buf, sig_buf) = rest.split_at_mut(decoded_len_max(parts[1].len()));
    let header = structure::decode(0, parts[0], offsets[0], strict, header_buf, r);
    let claims = structure::decode(1, parts[1], offsets[1], strict, claims_buf, r);
    let sig = structure::decode(2, parts[2], offsets[2], strict, sig_buf, r);
    let base64_damaged = r.has(tether_finding::TETHER_FINDING_INVALID_BASE64);
    let alg = header.and_then(|h| claims::header(h, offsets[0], r));
    if let Some(c) = claims {
        claims::claims(c, offsets[1], expect, r);
    }
    let damaged = base64_damaged || r.has(tether_finding::TETHER_FINDING_INVALID_JSON);
    if let (Some(alg), Some(signature)) = (alg, sig) {
        let evidence = Evidence {
            alg,
            signing_input: &token[..parts[0].len() + 1 + parts[1].len()],
            signature,
            decoded: [header.unwrap_or(&[]), claims.unwrap_or(&[])],
            offset: offsets[2],
            damaged,
        };
        signature::check(&evidence, key, r);
    }
}
