//! Keys inside a PKCS#11 token (HSM, smart card, SoftHSM), addressed by an RFC 7512
//! `pkcs11:` URI. The private key never leaves the token: it signs JWTs (through
//! [`tether_jwt::Signer`]) and CSRs/certificates (through `rcgen`).
//!
//! A module may be initialised once per process (`C_Initialize` twice gives
//! `CKR_CRYPTOKI_ALREADY_INITIALIZED`), so contexts are shared per module path.
//! Tokens are found by label because slot numbers change when tokens are created.

mod token;
mod uri;

pub use token::Pkcs11Key;
pub use uri::{MODULE_ENV, PIN_ENV, Pkcs11Uri};

/// Why a PKCS#11 operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The URI is malformed or incomplete.
    #[error("pkcs11 URI: {0}")]
    Uri(String),
    /// The module could not be loaded or initialised.
    #[error("PKCS#11 module {module}: {why}")]
    Module {
        /// The library path.
        module: String,
        /// What failed.
        why: String,
    },
    /// No token with the requested label.
    #[error("no PKCS#11 token labelled '{wanted}' (tokens present: {present})")]
    TokenNotFound {
        /// The label asked for.
        wanted: String,
        /// Labels found.
        present: String,
    },
    /// No matching key object.
    #[error("no {what} matching {uri} in the token{hint}")]
    KeyNotFound {
        /// Private or public key.
        what: &'static str,
        /// The object asked for.
        uri: String,
        /// Advice (for example about logging in).
        hint: &'static str,
    },
    /// Several objects match.
    #[error("{count} keys match {uri}; add id= or a more specific object= to the URI")]
    Ambiguous {
        /// How many matched.
        count: usize,
        /// The object asked for.
        uri: String,
    },
    /// An object with the label to generate already exists.
    #[error("the token already has a key labelled '{0}'; pick another object= or delete it")]
    Exists(String),
    /// The key is not one JWTs can be signed with.
    #[error("token key: {0}")]
    UnsupportedKey(String),
    /// A PKCS#11 call failed.
    #[error("PKCS#11 {call} failed: {source}")]
    Call {
        /// The operation.
        call: &'static str,
        /// cryptoki's error (includes the CKR_ code).
        source: cryptoki::error::Error,
    },
}
