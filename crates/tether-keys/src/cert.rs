//! Building CSRs and certificates with `rcgen`, signed by any [`KeyHandle`] (a software
//! key or a PKCS#11 token), so one code path serves both.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyUsagePurpose, PublicKeyData, SanType,
    SerialNumber, SignatureAlgorithm, SigningKey,
};
use tether_jwt::{KeyType, PublicKey};
use time::OffsetDateTime;

use crate::KeyHandle;

/// Why a certificate or CSR could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The subject string is not `CN=…,O=…`.
    #[error("subject '{subject}': {why} (write it as \"CN=dev-1,O=Acme,C=US\")")]
    Subject {
        /// The subject given.
        subject: String,
        /// What is wrong.
        why: String,
    },
    /// A date out of range.
    #[error("validity: {0}")]
    Validity(String),
    /// The CSR is unusable.
    #[error("CSR: {0}")]
    Csr(String),
    /// The CA certificate and key do not belong together, or the CA cannot sign.
    #[error("CA: {0}")]
    Ca(String),
    /// rcgen failed (the key or token could not sign, or a value is unencodable).
    #[error("certificate encoding: {0}")]
    Encode(String),
}

impl From<rcgen::Error> for CertError {
    fn from(e: rcgen::Error) -> Self {
        CertError::Encode(e.to_string())
    }
}

/// When a certificate is valid: from `not_before` (Unix seconds) for `days` days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Start, Unix seconds (usually "now").
    pub not_before: i64,
    /// Length in days.
    pub days: u32,
}

impl Validity {
    pub(crate) fn apply(&self, params: &mut CertificateParams) -> Result<(), CertError> {
        let start = OffsetDateTime::from_unix_timestamp(self.not_before)
            .map_err(|e| CertError::Validity(e.to_string()))?;
        let end = start
            .checked_add(time::Duration::days(i64::from(self.days)))
            .ok_or_else(|| CertError::Validity(format!("{} days is too long", self.days)))?;
        params.not_before = start;
        params.not_after = end;
        Ok(())
    }
}

/// Parses `CN=dev-1,O=Acme,C=US` (or OpenSSL's `/CN=dev-1/O=Acme`).
pub fn parse_subject(subject: &str) -> Result<DistinguishedName, CertError> {
    let err = |why: &str| CertError::Subject {
        subject: subject.into(),
        why: why.into(),
    };
    let parts: Vec<&str> = if let Some(rest) = subject.strip_prefix('/') {
        rest.split('/').collect()
    } else {
        subject.split(',').collect()
    };
    let mut dn = DistinguishedName::new();
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| err("each part needs '='"))?;
        let ty = match key.trim().to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "ST" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            other => {
                return Err(err(&format!(
                    "unknown attribute '{other}' (use CN, O, OU, C, ST, L)"
                )));
            }
        };
        dn.push(ty, value.trim());
    }
    if dn.iter().next().is_none() {
        return Err(err("empty"));
    }
    Ok(dn)
}

pub(crate) fn sans(names: &[String]) -> Result<Vec<SanType>, CertError> {
    names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => {
                n.as_str().try_into().map(SanType::DnsName).map_err(|_| {
                    CertError::Encode(format!("'{n}' is not a DNS name or IP address"))
                })
            }
        })
        .collect()
}

pub(crate) fn algorithm(key: &PublicKey) -> &'static SignatureAlgorithm {
    match key.key_type() {
        KeyType::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyType::Rsa => &rcgen::PKCS_RSA_SHA256,
    }
}

/// A random positive 16-byte serial number.
pub(crate) fn random_serial() -> Result<SerialNumber, CertError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| CertError::Encode("no randomness for the serial number".into()))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A [`KeyHandle`] as rcgen's signing key.
pub(crate) struct RcgenKey<'a>(pub &'a KeyHandle);

impl PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key().key_bytes()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        algorithm(self.0.public_key())
    }
}

impl SigningKey for RcgenKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0
            .sign_x509(msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// A bare public key as rcgen's subject key (for certificates issued from CSRs or
/// for keys the CA never holds).
pub(crate) struct RcgenPublic<'a>(pub &'a PublicKey);

impl PublicKeyData for RcgenPublic<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.key_bytes()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        algorithm(self.0)
    }
}

/// A PKCS#10 CSR (DER) for `key` with `subject` and optional DNS/IP names; the key
/// (or its token) signs it.
pub fn make_csr(key: &KeyHandle, subject: &str, names: &[String]) -> Result<Vec<u8>, CertError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = parse_subject(subject)?;
    params.subject_alt_names = sans(names)?;
    let csr = params.serialize_request(&RcgenKey(key))?;
    Ok(csr.der().to_vec())
}

/// A self-signed end-entity certificate (DER): what IoT Core's `*_X509_PEM` formats
/// take when the registry has no CA.
pub fn self_signed(
    key: &KeyHandle,
    subject: &str,
    names: &[String],
    validity: Validity,
) -> Result<Vec<u8>, CertError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = parse_subject(subject)?;
    params.subject_alt_names = sans(names)?;
    params.serial_number = Some(random_serial()?);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity.apply(&mut params)?;
    Ok(params.self_signed(&RcgenKey(key))?.der().to_vec())
}
