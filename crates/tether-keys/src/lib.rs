//! Keys and certificates for IoT Core devices: read anything, convert, generate,
//! make CSRs and certificates, run a small CA, and sign with PKCS#11 tokens.
//!
//! ```text
//!  bytes ─▶ parse() ─▶ Parsed { kind, encoding, object } ─┬─▶ convert / export (C, Rust)
//!  (PEM, DER, raw, hex)   PrivateKey | PublicKey |         ├─▶ registration (RSA_PEM … ES256_X509_PEM)
//!                         Certificate | Csr                 └─▶ fingerprint (tether_jwt::PublicKey)
//!  "file" | "pkcs11:…" ─▶ open_key() ─▶ KeyHandle ─▶ JWT Signer, CSR, certificate, CA
//! ```
//!
//! * Every public key becomes a [`tether_jwt::PublicKey`], so fingerprints and key
//!   checks are the same here, in the gateway and in the JWT verifier.
//! * Software signing uses ring (through `tether-jwt`'s signers); RustCrypto `rsa` is
//!   used only to generate RSA keys. Certificates and CSRs are built with `rcgen` and
//!   read with `x509-parser`.
//! * Nothing here reads the clock: validity periods take `now` as an argument.

pub mod ca;
pub mod cert;
pub mod convert;
pub mod export;
pub mod generate;
mod handle;
mod names;
mod parse;
pub mod pkcs11;
mod private_key;
pub mod register;
mod tlv;
mod x509;

pub use handle::KeyHandle;
pub use parse::{Encoding, Kind, Object, ParseError, Parsed, load, parse};
pub use private_key::{BoxSigner, PrivateKey};
pub use x509::{Certificate, Csr};

use tether_jwt::signers::KeyRejected;

/// Errors of this crate's operations, by layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be read as a key, certificate or CSR.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A key was needed but the input is something else.
    #[error("{found}: a private key (or a pkcs11: URI) is needed to sign{hint}")]
    NotAPrivateKey {
        /// What the input is.
        found: String,
        /// How to get what is needed.
        hint: &'static str,
    },
    /// ring refused the key.
    #[error("{0}")]
    Rejected(#[from] KeyRejected),
    /// A certificate or CSR could not be made.
    #[error(transparent)]
    Cert(#[from] cert::CertError),
    /// A key could not be generated.
    #[error(transparent)]
    Gen(#[from] generate::GenError),
    /// A PKCS#11 token operation failed.
    #[error(transparent)]
    Pkcs11(#[from] pkcs11::Pkcs11Error),
}

/// A file path or a `pkcs11:` URI → something that signs JWTs.
pub fn open_signer(spec: &str) -> Result<BoxSigner, Error> {
    KeyHandle::open(spec)?.signer()
}
