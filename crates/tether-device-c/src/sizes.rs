//! Buffer sizes and argument values, as constants in the C header. Every size is
//! exact for its worst case and checked against the code that fills the buffer.

use tether_jwt::b64::encoded_len;

/// Longest project id (`aud`) accepted. GCP ids are 6 to 30 characters.
pub const TETHER_MAX_PROJECT_ID_LEN: usize = 128;
/// Longest token lifetime IoT Core accepts: 24 h.
pub const TETHER_MAX_LIFETIME_SECS: u32 = 86_400;

/// A buffer this size (NUL included) holds any ES256 token `tether_jwt_mint` makes.
pub const TETHER_JWT_ES256_MAX_LEN: usize = 381;
/// A buffer this size (NUL included) holds any RS256 token for keys up to 4096 bits.
pub const TETHER_JWT_RS256_MAX_LEN: usize = 978;

/// A buffer this size (NUL included) holds any `tether_provision_request` (a 128-byte
/// project id, a 255-character device id, 20-digit `iat` and `exp`). A real request
/// is about 400 bytes; the exact need is reported on `TETHER_ERR_BUFFER_TOO_SMALL`.
pub const TETHER_PROVISION_REQUEST_MAX_LEN: usize = 877;
/// Longest device id: IoT Core's ids are 3 to 255 characters.
pub const TETHER_MAX_DEVICE_ID_LEN: usize = 255;

/// An ES256 signature: raw `r||s`.
pub const TETHER_ES256_SIGNATURE_LEN: usize = 64;
/// Longest DER ECDSA P-256 signature a signer may return.
pub const TETHER_DER_SIGNATURE_MAX_LEN: usize = 72;
/// Longest RSA signature (4096-bit keys); also the signature buffer given to signers.
pub const TETHER_SIGNATURE_MAX_LEN: usize = 512;

/// A P-256 public key as DER SubjectPublicKeyInfo.
pub const TETHER_P256_SPKI_LEN: usize = 91;
/// A P-256 public key as PEM (`BEGIN PUBLIC KEY`), NUL included.
pub const TETHER_P256_PUBLIC_PEM_LEN: usize = 179;
/// Largest DER SubjectPublicKeyInfo written (RSA 4096).
pub const TETHER_PUBLIC_KEY_DER_MAX_LEN: usize = 550;
/// Largest public key PEM written (RSA 4096), NUL included.
pub const TETHER_PUBLIC_KEY_PEM_MAX_LEN: usize = 801;
/// Largest DER key read (a PKCS#8 RSA 4096 private key, for its public half).
pub const TETHER_KEY_DER_MAX_LEN: usize = 2560;
/// `sha256:` and 64 hex digits, NUL included.
pub const TETHER_FINGERPRINT_LEN: usize = 72;

/// Longest token `tether_jwt_check` reads.
pub const TETHER_CHECK_MAX_TOKEN_LEN: usize = 2048;
/// A findings buffer this size holds the text of every realistic check.
pub const TETHER_CHECK_TEXT_LEN: usize = 1024;

/// `tether_signer.alg`: ECDSA P-256 with SHA-256.
pub const TETHER_ALG_ES256: u32 = 1;
/// `tether_signer.alg`: RSASSA-PKCS1-v1_5 with SHA-256.
pub const TETHER_ALG_RS256: u32 = 2;

/// `tether_signer.input`: the callback gets the JWS signing input and hashes it itself.
pub const TETHER_SIGN_INPUT_MESSAGE: u32 = 0;
/// `tether_signer.input`: the callback gets the 32-byte SHA-256 digest.
pub const TETHER_SIGN_INPUT_SHA256: u32 = 1;
/// `tether_signer.input` (RS256 only): the 51-byte DER `DigestInfo` of the SHA-256
/// digest, for engines that only add PKCS#1 v1.5 padding (PKCS#11 `CKM_RSA_PKCS`).
pub const TETHER_SIGN_INPUT_SHA256_DIGEST_INFO: u32 = 2;

/// `tether_signer.sig_format` (ES256): DER if it parses as DER, else 64-byte `r||s`.
pub const TETHER_SIG_AUTO: u32 = 0;
/// `tether_signer.sig_format` (ES256): always 64-byte `r||s`.
pub const TETHER_SIG_RAW: u32 = 1;
/// `tether_signer.sig_format` (ES256): always DER `ECDSA-Sig-Value`.
pub const TETHER_SIG_DER: u32 = 2;

/// `tether_public_key_convert` output: PEM SubjectPublicKeyInfo, NUL-terminated.
pub const TETHER_KEY_PEM: u32 = 0;
/// `tether_public_key_convert` output: DER SubjectPublicKeyInfo.
pub const TETHER_KEY_DER: u32 = 1;
/// `tether_public_key_convert` output (P-256): 64 bytes `x||y`.
pub const TETHER_KEY_RAW: u32 = 2;
/// `tether_public_key_convert` output (P-256): 65 bytes `04||x||y`.
pub const TETHER_KEY_RAW_UNCOMPRESSED: u32 = 3;

/// eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9 (both algorithms' headers are 36 characters).
const HEADER: usize = 36;

/// Exact length (without NUL) of a token whose claims have `iat`/`exp` of the given
/// digit counts, an `aud` of `aud_len` bytes that needs no escaping, and a signature
/// of `sig_len` bytes.
pub(crate) const fn token_len(
    aud_len: usize,
    iat_digits: usize,
    exp_digits: usize,
    sig_len: usize,
) -> usize {
    // {"iat":N,"exp":N,"aud":"A"}
    let claims = 7 + iat_digits + 7 + exp_digits + 8 + aud_len + 2;
    HEADER + 1 + encoded_len(claims) + 1 + encoded_len(sig_len)
}

/// Exact length (without NUL) of an ES256 provisioning proof: a token as
/// [`token_len`] whose claims also have `"sub":"S"` with an `S` of `sub_len` bytes
/// that needs no escaping.
pub(crate) const fn proof_len(
    aud_len: usize,
    sub_len: usize,
    iat_digits: usize,
    exp_digits: usize,
) -> usize {
    // {"iat":N,"exp":N,"aud":"A","sub":"S"}
    let claims = 7 + iat_digits + 7 + exp_digits + 8 + aud_len + 9 + sub_len + 2;
    HEADER + 1 + encoded_len(claims) + 1 + encoded_len(64)
}

/// Decimal digits of `v`.
pub(crate) const fn digits(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

const _: () = {
    let worst = token_len(TETHER_MAX_PROJECT_ID_LEN, 20, 20, 0);
    assert!(TETHER_JWT_ES256_MAX_LEN == worst + encoded_len(64) + 1);
    assert!(TETHER_JWT_RS256_MAX_LEN == worst + encoded_len(TETHER_SIGNATURE_MAX_LEN) + 1);
    assert!(TETHER_P256_SPKI_LEN == tether_jwt::keyfile::P256_SPKI_LEN);
    assert!(
        TETHER_P256_PUBLIC_PEM_LEN == tether_jwt::pem::encoded_len(10, TETHER_P256_SPKI_LEN) + 1
    );
    assert!(
        TETHER_PUBLIC_KEY_PEM_MAX_LEN
            == tether_jwt::pem::encoded_len(10, TETHER_PUBLIC_KEY_DER_MAX_LEN) + 1
    );
    assert!(TETHER_FINGERPRINT_LEN == 7 + 64 + 1);
};
