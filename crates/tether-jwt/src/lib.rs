//! Device authentication for IoT Core-compatible gateways: the JWT a device sends as
//! its MQTT password or HTTP bearer token.
//!
//! ```text
//!  device (no_std, no allocator)          gateway / tools (alloc, std)
//!  ┌───────────────────────────┐          ┌──────────────────────────────────────────┐
//!  │ mint(signer, claims, buf) │──token──▶│ verify(token, rules, credentials)        │
//!  │   Signer: software key,   │          │   → Verified { credential, exp, .. }     │
//!  │   PKCS#11, secure engine  │          │   | Refusal (precise, fixable reason)    │
//!  └───────────────────────────┘          │ diagnose(token, context) → [Finding]     │
//!                                         └──────────────────────────────────────────┘
//! ```
//!
//! * Minting ([`mint()`]) writes `b64url(header).b64url(claims).b64url(signature)` into
//!   a caller's buffer and never allocates. A [`Signer`] produces the JWS signature;
//!   [`ecdsa_der`] converts the DER ECDSA signatures that hardware engines and mbedTLS
//!   produce into the raw `r‖s` that ES256 requires.
//! * Verification (`alloc`) applies the IoT Core rules: RS256/ES256 only; `iat`, `exp`
//!   and `aud` required; `aud` is the project id; lifetime ≤ 24 h; 10 min clock skew;
//!   up to three credentials, expired ones skipped. Time is always an argument.
//! * Diagnosis (`alloc`) explains everything wrong with a token, with the fix.
//!
//! Features: `alloc` (decode, verify, diagnose), `std`, `ring` (fast software signers
//! and verifiers for servers and tools), `p256` (RustCrypto P-256 signer and verifier
//! that needs neither `std` nor an allocator), `p256-table` (that signer with a 33 KB
//! precomputed table in read-only data: about 6× faster, still `no_std`).
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod alg;
pub mod b64;
mod der;
pub mod digest_info;
pub mod ecdsa_der;
pub mod keyfile;
mod mint;
pub mod pem;
mod rules;
mod signer;
pub mod time;

#[cfg(feature = "alloc")]
pub mod diagnose;
#[cfg(feature = "alloc")]
mod key;
#[cfg(feature = "alloc")]
mod sigcheck;
#[cfg(feature = "alloc")]
mod token;
#[cfg(feature = "alloc")]
mod verify;

pub mod signers;

pub use alg::{Algorithm, KeyType};
pub use mint::{Claims, MAX_SUB_LEN, MintError, max_proof_len, max_token_len, mint, mint_proof};
pub use signer::{SignError, Signer};

#[cfg(feature = "alloc")]
pub use diagnose::{Context, Diagnosis, Finding, FindingCode, Severity, diagnose};
#[cfg(all(feature = "alloc", feature = "p256"))]
pub use diagnose::{es256_signers, token_es256_signers};
#[cfg(feature = "alloc")]
pub use key::{Fingerprint, KeyError, PublicKey};
pub use rules::{DEFAULT_MAX_LIFETIME_SECS, DEFAULT_SKEW_SECS, EncodingPolicy, Rules};
#[cfg(feature = "alloc")]
pub use sigcheck::{SignatureError, verify_signature};
#[cfg(feature = "alloc")]
pub use token::{EncodingWarning, NumericDate, Segment, Token, TokenError};
#[cfg(feature = "alloc")]
pub use verify::{Credential, Refusal, Verified, verify, verify_known};
