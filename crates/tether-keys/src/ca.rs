//! A small certificate authority: a self-signed CA certificate and its key (a file or
//! a PKCS#11 token), which signs CSRs from devices and the gateway's TLS certificate.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, ExtendedKeyUsagePurpose,
    IsCa, Issuer, KeyUsagePurpose,
};
use tether_jwt::PublicKey;

use crate::cert::{CertError, RcgenKey, RcgenPublic, Validity, parse_subject, random_serial, sans};
use crate::{Certificate, Csr, KeyHandle};

/// A CA: its certificate and the key that signs with it.
#[derive(Debug)]
pub struct Ca {
    cert: Certificate,
    key: KeyHandle,
}

impl Ca {
    /// Creates a CA: a self-signed certificate for `key` that may sign certificates.
    pub fn init(key: KeyHandle, subject: &str, validity: Validity) -> Result<Self, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = parse_subject(subject)?;
        // No intermediates: IoT Core wants device certificates signed by a registry CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial()?);
        validity.apply(&mut params)?;
        let der = params.self_signed(&RcgenKey(&key))?.der().to_vec();
        let cert = Certificate::from_der(&der).map_err(|e| CertError::Encode(e.to_string()))?;
        Ok(Ca { cert, key })
    }

    /// Loads a CA from its certificate and key; they must belong together.
    pub fn new(cert: Certificate, key: KeyHandle) -> Result<Self, CertError> {
        if cert.public_key() != key.public_key() {
            return Err(CertError::Ca(format!(
                "the key ({}) is not the CA certificate's key ({})",
                key.public_key().fingerprint(),
                cert.public_key().fingerprint()
            )));
        }
        if !cert.is_ca() {
            return Err(CertError::Ca(format!(
                "'{}' is not a CA certificate",
                cert.subject()
            )));
        }
        Ok(Ca { cert, key })
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The CA key.
    pub fn key(&self) -> &KeyHandle {
        &self.key
    }

    fn issuer(&self) -> Result<Issuer<'_, RcgenKey<'_>>, CertError> {
        let pem = crate::convert::pem_text("CERTIFICATE", self.cert.der());
        Ok(Issuer::from_ca_cert_pem(&pem, RcgenKey(&self.key))?)
    }

    /// Signs a CSR (DER) after checking its signature: a device certificate with the
    /// subject and names it asks for, valid for `validity`.
    pub fn sign_csr(&self, csr_der: &[u8], validity: Validity) -> Result<Vec<u8>, CertError> {
        let csr = Csr::from_der(csr_der).map_err(|e| CertError::Csr(e.to_string()))?;
        if !csr.signature_ok() {
            return Err(CertError::Csr(
                "its signature does not verify with its own key; it was altered or made wrong"
                    .into(),
            ));
        }
        let pem = crate::convert::pem_text("CERTIFICATE REQUEST", csr_der);
        let mut request = CertificateSigningRequestParams::from_pem(&pem)
            .map_err(|e| CertError::Csr(e.to_string()))?;
        let params = &mut request.params;
        params.is_ca = IsCa::ExplicitNoCa;
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        if params.key_usages.is_empty() {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        }
        validity.apply(params)?;
        Ok(request.signed_by(&self.issuer()?)?.der().to_vec())
    }

    /// Issues a TLS server certificate for `public` with the given DNS names and IPs.
    pub fn issue_server(
        &self,
        public: &PublicKey,
        names: &[String],
        validity: Validity,
    ) -> Result<Vec<u8>, CertError> {
        let mut params = CertificateParams::default();
        let cn = names.first().map_or("tether", String::as_str);
        params.distinguished_name = parse_subject(&format!("CN={cn}"))?;
        params.subject_alt_names = sans(names)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        validity.apply(&mut params)?;
        Ok(params
            .signed_by(&RcgenPublic(public), &self.issuer()?)?
            .der()
            .to_vec())
    }
}
