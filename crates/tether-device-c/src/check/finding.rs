//! The finding vocabulary of `tether jwt diagnose`, as numbers for C: the same
//! kebab-case names, so a device log and the CLI's output read alike.

#![allow(unsafe_code, reason = "exported C symbol")]

use core::ffi::{CStr, c_char};

/// What a finding of `tether_jwt_check` is about. `tether_finding_name` gives the
/// name `tether jwt diagnose` prints for it.
#[repr(C)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tether_finding {
    /// No finding.
    TETHER_FINDING_NONE = 0,
    /// Nothing was given.
    TETHER_FINDING_EMPTY = 1,
    /// Spaces or line breaks around the token.
    TETHER_FINDING_SURROUNDING_WHITESPACE = 2,
    /// Quotes around the token.
    TETHER_FINDING_SURROUNDING_QUOTES = 3,
    /// `Bearer ` in front of the token.
    TETHER_FINDING_BEARER_PREFIX = 4,
    /// Not three parts.
    TETHER_FINDING_SEGMENT_COUNT = 5,
    /// A part is not base64url.
    TETHER_FINDING_INVALID_BASE64 = 6,
    /// `=` padding.
    TETHER_FINDING_BASE64_PADDING = 7,
    /// `+` or `/`.
    TETHER_FINDING_BASE64_STANDARD_ALPHABET = 8,
    /// Non-zero unused bits in a part's last character.
    TETHER_FINDING_BASE64_NONCANONICAL_BITS = 9,
    /// Header or claims are not a JSON object.
    TETHER_FINDING_INVALID_JSON = 10,
    /// `alg` missing or not ES256/RS256.
    TETHER_FINDING_ALGORITHM = 11,
    /// `typ` missing or not `JWT`.
    TETHER_FINDING_TYPE = 12,
    /// Header fields IoT Core ignores.
    TETHER_FINDING_EXTRA_HEADER = 13,
    /// `iat`, `exp` or `aud` is absent.
    TETHER_FINDING_MISSING_CLAIM = 14,
    /// A claim has the wrong type.
    TETHER_FINDING_CLAIM_TYPE = 15,
    /// `iat`/`exp` sent as strings.
    TETHER_FINDING_STRING_DATE = 16,
    /// Claims IoT Core ignores.
    TETHER_FINDING_EXTRA_CLAIM = 17,
    /// `aud` is not the project id.
    TETHER_FINDING_AUDIENCE = 18,
    /// `exp` is too far in the past.
    TETHER_FINDING_EXPIRED = 19,
    /// `iat` is ahead of `now`.
    TETHER_FINDING_NOT_YET_VALID = 20,
    /// `exp - iat` is over 24 h or not positive.
    TETHER_FINDING_LIFETIME = 21,
    /// `iat` is before 2020: the clock was never set.
    TETHER_FINDING_CLOCK_UNSET = 22,
    /// An ES256 signature in DER form.
    TETHER_FINDING_DER_SIGNATURE = 23,
    /// A signature of the wrong size.
    TETHER_FINDING_SIGNATURE_LENGTH = 24,
    /// The key's type does not fit `alg`.
    TETHER_FINDING_KEY_TYPE_MISMATCH = 25,
    /// The signature verifies with the key.
    TETHER_FINDING_SIGNATURE_VERIFIED = 26,
    /// The signature does not verify with the key.
    TETHER_FINDING_SIGNATURE_MISMATCH = 27,
    /// The device signs with another key than the one checked.
    TETHER_FINDING_WRONG_KEY = 28,
    /// The token was changed after signing.
    TETHER_FINDING_TOKEN_DAMAGED = 29,
    /// No key was given, so the signature was not checked.
    TETHER_FINDING_SIGNATURE_NOT_CHECKED = 31,
}

impl tether_finding {
    /// The kebab-case name `tether jwt diagnose` uses.
    pub const fn name(self) -> &'static CStr {
        use tether_finding::*;
        match self {
            TETHER_FINDING_NONE => c"none",
            TETHER_FINDING_EMPTY => c"empty",
            TETHER_FINDING_SURROUNDING_WHITESPACE => c"surrounding-whitespace",
            TETHER_FINDING_SURROUNDING_QUOTES => c"surrounding-quotes",
            TETHER_FINDING_BEARER_PREFIX => c"bearer-prefix",
            TETHER_FINDING_SEGMENT_COUNT => c"segment-count",
            TETHER_FINDING_INVALID_BASE64 => c"invalid-base64",
            TETHER_FINDING_BASE64_PADDING => c"base64-padding",
            TETHER_FINDING_BASE64_STANDARD_ALPHABET => c"base64-standard-alphabet",
            TETHER_FINDING_BASE64_NONCANONICAL_BITS => c"base64-noncanonical-bits",
            TETHER_FINDING_INVALID_JSON => c"invalid-json",
            TETHER_FINDING_ALGORITHM => c"algorithm",
            TETHER_FINDING_TYPE => c"type",
            TETHER_FINDING_EXTRA_HEADER => c"extra-header",
            TETHER_FINDING_MISSING_CLAIM => c"missing-claim",
            TETHER_FINDING_CLAIM_TYPE => c"claim-type",
            TETHER_FINDING_STRING_DATE => c"string-date",
            TETHER_FINDING_EXTRA_CLAIM => c"extra-claim",
            TETHER_FINDING_AUDIENCE => c"audience",
            TETHER_FINDING_EXPIRED => c"expired",
            TETHER_FINDING_NOT_YET_VALID => c"not-yet-valid",
            TETHER_FINDING_LIFETIME => c"lifetime",
            TETHER_FINDING_CLOCK_UNSET => c"clock-unset",
            TETHER_FINDING_DER_SIGNATURE => c"der-signature",
            TETHER_FINDING_SIGNATURE_LENGTH => c"signature-length",
            TETHER_FINDING_KEY_TYPE_MISMATCH => c"key-type-mismatch",
            TETHER_FINDING_SIGNATURE_VERIFIED => c"signature-verified",
            TETHER_FINDING_SIGNATURE_MISMATCH => c"signature-mismatch",
            TETHER_FINDING_WRONG_KEY => c"wrong-key",
            TETHER_FINDING_TOKEN_DAMAGED => c"token-damaged",
            TETHER_FINDING_SIGNATURE_NOT_CHECKED => c"signature-not-checked",
        }
    }

    /// The name as text.
    pub fn as_str(self) -> &'static str {
        self.name().to_str().unwrap_or("none")
    }
}

/// Every finding code, for `tether_finding_name` and tests.
pub const ALL: [tether_finding; 31] = {
    use tether_finding::*;
    [
        TETHER_FINDING_NONE,
        TETHER_FINDING_EMPTY,
        TETHER_FINDING_SURROUNDING_WHITESPACE,
        TETHER_FINDING_SURROUNDING_QUOTES,
        TETHER_FINDING_BEARER_PREFIX,
        TETHER_FINDING_SEGMENT_COUNT,
        TETHER_FINDING_INVALID_BASE64,
        TETHER_FINDING_BASE64_PADDING,
        TETHER_FINDING_BASE64_STANDARD_ALPHABET,
        TETHER_FINDING_BASE64_NONCANONICAL_BITS,
        TETHER_FINDING_INVALID_JSON,
        TETHER_FINDING_ALGORITHM,
        TETHER_FINDING_TYPE,
        TETHER_FINDING_EXTRA_HEADER,
        TETHER_FINDING_MISSING_CLAIM,
        TETHER_FINDING_CLAIM_TYPE,
        TETHER_FINDING_STRING_DATE,
        TETHER_FINDING_EXTRA_CLAIM,
        TETHER_FINDING_AUDIENCE,
        TETHER_FINDING_EXPIRED,
        TETHER_FINDING_NOT_YET_VALID,
        TETHER_FINDING_LIFETIME,
        TETHER_FINDING_CLOCK_UNSET,
        TETHER_FINDING_DER_SIGNATURE,
        TETHER_FINDING_SIGNATURE_LENGTH,
        TETHER_FINDING_KEY_TYPE_MISMATCH,
        TETHER_FINDING_SIGNATURE_VERIFIED,
        TETHER_FINDING_SIGNATURE_MISMATCH,
        TETHER_FINDING_WRONG_KEY,
        TETHER_FINDING_TOKEN_DAMAGED,
        TETHER_FINDING_SIGNATURE_NOT_CHECKED,
    ]
};

/// The name of a finding code as a NUL-terminated string (`"der-signature"`), or
/// `"unknown"`. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn tether_finding_name(code: u32) -> *const c_char {
    ALL.iter()
        .find(|f| **f as u32 == code)
        .map_or(c"unknown", |f| f.name())
        .as_ptr()
}
