//! What every function returns: one status code, each precise enough to act on.

#![allow(unsafe_code, reason = "exported C symbol")]

use core::ffi::{CStr, c_char};

/// The result of every `tether_*` function. `TETHER_OK` is 0; everything else says
/// exactly what to fix. `tether_status_name` gives the name as text for logs.
#[repr(C)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tether_status {
    /// Done.
    TETHER_OK = 0,
    /// A required pointer argument is NULL.
    TETHER_ERR_NULL_POINTER = 1,
    /// The output buffer is too small; the length argument says how much is needed.
    TETHER_ERR_BUFFER_TOO_SMALL = 2,
    /// The project id is empty, longer than `TETHER_MAX_PROJECT_ID_LEN`, or has a
    /// character other than printable ASCII (without `"` and `\`).
    TETHER_ERR_PROJECT_ID = 3,
    /// The lifetime is 0 or over 24 h (86400 s); for `tether_provision_request`,
    /// `exp` is not after `iat` or more than 24 h after it.
    TETHER_ERR_LIFETIME = 4,
    /// An unknown `TETHER_ALG_*`, `TETHER_SIGN_INPUT_*`, `TETHER_SIG_*` or
    /// `TETHER_KEY_*` value, or one that does not fit the algorithm.
    TETHER_ERR_BAD_ARGUMENT = 5,
    /// The signer callback returned non-zero.
    TETHER_ERR_SIGNER_FAILED = 6,
    /// The signer produced a length no signature of its algorithm has.
    TETHER_ERR_SIGNATURE_LENGTH = 7,
    /// The signer produced a DER ECDSA signature that does not parse as P-256.
    TETHER_ERR_SIGNATURE_DER = 8,
    /// The key is neither PEM, DER nor a raw key of 32, 64 or 65 bytes; for
    /// `tether_provision_request`, not 64 bytes `x||y` or 65 bytes `04||x||y`.
    TETHER_ERR_KEY_FORMAT = 9,
    /// The private key is encrypted; store it decrypted.
    TETHER_ERR_KEY_ENCRYPTED = 10,
    /// A key type this function cannot use (another curve, Ed25519, an RSA key where
    /// P-256 is needed, RSA under 2048 bits for registration).
    TETHER_ERR_KEY_UNSUPPORTED = 11,
    /// The key's numbers are invalid (scalar 0 or >= n, point not on P-256).
    TETHER_ERR_KEY_INVALID = 12,
    /// A public key or certificate was given where a private key is needed.
    TETHER_ERR_KEY_NOT_PRIVATE = 13,
    /// `tether_jwt_check`: the token would be refused; the findings say why.
    TETHER_ERR_TOKEN_REFUSED = 14,
    /// `tether_jwt_check`: the token is longer than `TETHER_CHECK_MAX_TOKEN_LEN`.
    TETHER_ERR_TOKEN_TOO_LONG = 15,
    /// The device id is not 3 to `TETHER_MAX_DEVICE_ID_LEN` characters of
    /// `[a-zA-Z0-9-._+~%]` starting with a letter (IoT Core's rule).
    TETHER_ERR_DEVICE_ID = 16,
}

impl tether_status {
    /// The variant's name.
    pub const fn name(self) -> &'static CStr {
        use tether_status::*;
        match self {
            TETHER_OK => c"TETHER_OK",
            TETHER_ERR_NULL_POINTER => c"TETHER_ERR_NULL_POINTER",
            TETHER_ERR_BUFFER_TOO_SMALL => c"TETHER_ERR_BUFFER_TOO_SMALL",
            TETHER_ERR_PROJECT_ID => c"TETHER_ERR_PROJECT_ID",
            TETHER_ERR_LIFETIME => c"TETHER_ERR_LIFETIME",
            TETHER_ERR_BAD_ARGUMENT => c"TETHER_ERR_BAD_ARGUMENT",
            TETHER_ERR_SIGNER_FAILED => c"TETHER_ERR_SIGNER_FAILED",
            TETHER_ERR_SIGNATURE_LENGTH => c"TETHER_ERR_SIGNATURE_LENGTH",
            TETHER_ERR_SIGNATURE_DER => c"TETHER_ERR_SIGNATURE_DER",
            TETHER_ERR_KEY_FORMAT => c"TETHER_ERR_KEY_FORMAT",
            TETHER_ERR_KEY_ENCRYPTED => c"TETHER_ERR_KEY_ENCRYPTED",
            TETHER_ERR_KEY_UNSUPPORTED => c"TETHER_ERR_KEY_UNSUPPORTED",
            TETHER_ERR_KEY_INVALID => c"TETHER_ERR_KEY_INVALID",
            TETHER_ERR_KEY_NOT_PRIVATE => c"TETHER_ERR_KEY_NOT_PRIVATE",
            TETHER_ERR_TOKEN_REFUSED => c"TETHER_ERR_TOKEN_REFUSED",
            TETHER_ERR_TOKEN_TOO_LONG => c"TETHER_ERR_TOKEN_TOO_LONG",
            TETHER_ERR_DEVICE_ID => c"TETHER_ERR_DEVICE_ID",
        }
    }
}

/// Every status, for tests and for `tether_status_name`.
pub const ALL: [tether_status; 17] = {
    use tether_status::*;
    [
        TETHER_OK,
        TETHER_ERR_NULL_POINTER,
        TETHER_ERR_BUFFER_TOO_SMALL,
        TETHER_ERR_PROJECT_ID,
        TETHER_ERR_LIFETIME,
        TETHER_ERR_BAD_ARGUMENT,
        TETHER_ERR_SIGNER_FAILED,
        TETHER_ERR_SIGNATURE_LENGTH,
        TETHER_ERR_SIGNATURE_DER,
        TETHER_ERR_KEY_FORMAT,
        TETHER_ERR_KEY_ENCRYPTED,
        TETHER_ERR_KEY_UNSUPPORTED,
        TETHER_ERR_KEY_INVALID,
        TETHER_ERR_KEY_NOT_PRIVATE,
        TETHER_ERR_TOKEN_REFUSED,
        TETHER_ERR_TOKEN_TOO_LONG,
        TETHER_ERR_DEVICE_ID,
    ]
};

/// The name of a status as a NUL-terminated string (`"TETHER_ERR_KEY_FORMAT"`), or
/// `"TETHER_UNKNOWN"` for a value that is none. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn tether_status_name(status: i32) -> *const c_char {
    ALL.iter()
        .find(|s| **s as i32 == status)
        .map_or(c"TETHER_UNKNOWN", |s| s.name())
        .as_ptr()
}
