//! What this crate reads out of X.509 certificates and PKCS#10 CSRs (via
//! `x509-parser`): names, validity and the public key, checked by `tether-jwt`.

use tether_jwt::PublicKey;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::parse::ParseError;

/// An X.509 certificate and the facts about it that matter for device registration.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    public: PublicKey,
    subject: String,
    issuer: String,
    serial: String,
    not_before: i64,
    not_after: i64,
    is_ca: bool,
    self_signed: bool,
}

impl Certificate {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, ParseError> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| ParseError::malformed("X.509 certificate", e))?;
        if !rest.is_empty() {
            return Err(ParseError::Trailing {
                what: "X.509 certificate",
                extra: rest.len(),
            });
        }
        let public = crate::parse::public_from_spki(cert.public_key().raw)?;
        // Self-signed means the certificate's own key verifies it (a root or a
        // `keys cert` output), not merely issuer == subject.
        let self_signed = cert.subject() == cert.issuer() && cert.verify_signature(None).is_ok();
        Ok(Certificate {
            der: der.to_vec(),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            self_signed,
            public,
        })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The subject's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
    /// Subject distinguished name, e.g. `CN=dev-1`.
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// Issuer distinguished name.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// Serial number as colon-separated hex.
    pub fn serial(&self) -> &str {
        &self.serial
    }
    /// Start of validity, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }
    /// End of validity, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }
    /// Whether basic constraints say CA.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }
    /// Whether the certificate's own key signed it.
    pub fn is_self_signed(&self) -> bool {
        self.self_signed
    }

    /// Whether `issuer`'s key made this certificate's signature.
    pub fn is_signed_by(&self, issuer: &Certificate) -> bool {
        let (Ok((_, me)), Ok((_, ca))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        me.verify_signature(Some(ca.public_key())).is_ok()
    }
}

/// A PKCS#10 certificate signing request.
#[derive(Debug, Clone)]
pub struct Csr {
    der: Vec<u8>,
    public: PublicKey,
    subject: String,
    signature_ok: bool,
}

impl Csr {
    /// Parses a DER CSR and checks its self-signature.
    pub fn from_der(der: &[u8]) -> Result<Self, ParseError> {
        let (rest, csr) = X509CertificationRequest::from_der(der)
            .map_err(|e| ParseError::malformed("PKCS#10 CSR", e))?;
        if !rest.is_empty() {
            return Err(ParseError::Trailing {
                what: "PKCS#10 CSR",
                extra: rest.len(),
            });
        }
        let info = &csr.certification_request_info;
        let public = crate::parse::public_from_spki(info.subject_pki.raw)?;
        Ok(Csr {
            der: der.to_vec(),
            subject: info.subject.to_string(),
            signature_ok: csr.verify_signature().is_ok(),
            public,
        })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The requested key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
    /// Requested subject, e.g. `CN=dev-1`.
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// Whether the request's signature verifies with its own key (proof of possession).
    pub fn signature_ok(&self) -> bool {
        self.signature_ok
    }
}
