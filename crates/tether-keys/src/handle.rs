//! A private key wherever it lives: in a file (software) or in a PKCS#11 token.

use std::sync::Arc;

use tether_jwt::{Algorithm, PublicKey, SignError, Signer};

use crate::pkcs11::{Pkcs11Key, Pkcs11Uri};
use crate::{BoxSigner, Error, PrivateKey, load};

/// A signing key: software or in a token.
#[derive(Debug, Clone)]
pub enum KeyHandle {
    /// A private key read from a file.
    Software(PrivateKey),
    /// A key inside a PKCS#11 token.
    Token(Arc<Pkcs11Key>),
}

impl KeyHandle {
    /// Opens a key file or a `pkcs11:` URI.
    pub fn open(spec: &str) -> Result<Self, Error> {
        if spec.starts_with("pkcs11:") {
            let uri = Pkcs11Uri::parse(spec)?;
            return Ok(KeyHandle::Token(Arc::new(Pkcs11Key::open(&uri)?)));
        }
        let parsed = load(std::path::Path::new(spec))?;
        match parsed.private_key() {
            Some(key) => Ok(KeyHandle::Software(key.clone())),
            None => Err(Error::NotAPrivateKey {
                found: format!("{spec} is a {}", parsed.describe()),
                hint: "; give the private key this was made from",
            }),
        }
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        match self {
            KeyHandle::Software(k) => k.public_key(),
            KeyHandle::Token(k) => k.public_key(),
        }
    }

    /// A JWT signer for this key.
    pub fn signer(&self) -> Result<BoxSigner, Error> {
        match self {
            KeyHandle::Software(k) => Ok(k.signer()?),
            KeyHandle::Token(k) => Ok(Box::new(TokenSigner(Arc::clone(k)))),
        }
    }

    /// Signs `message` as X.509 and PKCS#10 want it: ECDSA as a DER `ECDSA-Sig-Value`,
    /// RSA as PKCS#1 v1.5 with SHA-256.
    pub(crate) fn sign_x509(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let signer = self.signer().map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 1024];
        let n = signer.sign(message, &mut buf).map_err(|e| e.to_string())?;
        buf.truncate(n);
        if signer.algorithm() == Algorithm::Es256 {
            let raw: [u8; 64] = buf
                .as_slice()
                .try_into()
                .map_err(|_| "ECDSA signature is not 64 bytes")?;
            let mut der = [0u8; tether_jwt::ecdsa_der::MAX_DER_LEN];
            let len = tether_jwt::ecdsa_der::raw_to_der(&raw, &mut der);
            return Ok(der[..len].to_vec());
        }
        Ok(buf)
    }
}

/// Shares one token session between signers.
#[derive(Debug)]
struct TokenSigner(Arc<Pkcs11Key>);

impl Signer for TokenSigner {
    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
    fn sign(&self, message: &[u8], out: &mut [u8]) -> Result<usize, SignError> {
        self.0.sign(message, out)
    }
}
