//! Credential checks at create and patch time, as IoT Core made them: each refusal
//! says which credential, what was found and what to do.
//!
//! * Device keys: at most 3; the declared format must match the PEM (SPKI key or X.509
//!   certificate, RSA ≥ 2048 bits or P-256); certificates must not have expired.
//! * While the registry has CA certificates, device credentials must be certificates
//!   signed directly by one of them (no intermediates), and not a CA itself.
//! * Registry CAs: at most 10 X.509 PEM certificates, not expired, RSA ≥ 2048 or P-256;
//!   their [`X509Details`] are filled in.

use tether_jwt::time::Utc;
use tether_jwt::{KeyType, PublicKey};
use tether_keys::{Certificate, Encoding, Kind, Object, Parsed};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::model::{
    CertificateFormat, DeviceCredential, DeviceRegistry, PublicKeyFormat, RegistryCredential,
    Timestamp, X509Details, limits,
};

const MIN_RSA_BITS: u32 = 2048;

fn rfc3339(unix: i64) -> String {
    Utc(unix).to_string()
}

fn key_words(key: &PublicKey) -> String {
    match key.key_type() {
        KeyType::Rsa => format!("an RSA key ({} bits)", key.rsa_bits()),
        KeyType::EcP256 => "a P-256 key".into(),
    }
}

/// "an RSA public key (2048 bits)", "an X.509 certificate with a P-256 key", ….
fn found_words(parsed: &Parsed, key: &PublicKey) -> String {
    match parsed.object() {
        Object::Certificate(_) => format!("an X.509 certificate with {}", key_words(key)),
        _ => match key.key_type() {
            KeyType::Rsa => format!("an RSA public key ({} bits)", key.rsa_bits()),
            KeyType::EcP256 => "a P-256 public key".into(),
        },
    }
}

/// The format that fits what was found.
fn fitting_format(is_cert: bool, key_type: KeyType) -> PublicKeyFormat {
    match (is_cert, key_type) {
        (false, KeyType::Rsa) => PublicKeyFormat::RsaPem,
        (true, KeyType::Rsa) => PublicKeyFormat::RsaX509Pem,
        (false, KeyType::EcP256) => PublicKeyFormat::Es256Pem,
        (true, KeyType::EcP256) => PublicKeyFormat::Es256X509Pem,
    }
}

/// Reads PEM text as a public key or a certificate; anything else is refused with what
/// it is and how to get what is needed.
fn read_pem(text: &str) -> Result<Parsed, String> {
    let parsed = tether_keys::parse(text.as_bytes()).map_err(|e| format!("{e}"))?;
    if parsed.encoding() != Encoding::Pem {
        return Err(format!(
            "found {} as {}, but PEM text (-----BEGIN …-----) is needed",
            parsed.describe(),
            parsed.encoding()
        ));
    }
    match parsed.kind() {
        Kind::SpkiPublicKey | Kind::Certificate => Ok(parsed),
        Kind::Pkcs1PublicKey => Err(
            "this is a PKCS#1 RSA public key (BEGIN RSA PUBLIC KEY); register it as SPKI \
             (BEGIN PUBLIC KEY): `tether keys convert FILE --to spki`"
                .into(),
        ),
        Kind::Csr => Err(
            "this is a certificate request; register the certificate issued for it, or its \
             public key (`tether keys convert FILE --to spki`)"
                .into(),
        ),
        _ if parsed.is_private() => Err(
            "this is a private key, which must stay on the device; register its public key: \
             `tether keys convert FILE --to spki`"
                .into(),
        ),
        _ => Err(format!(
            "found {}; register an SPKI public key or an X.509 certificate",
            parsed.describe()
        )),
    }
}

fn check_strength(key: &PublicKey) -> Result<(), String> {
    if key.key_type() == KeyType::Rsa && key.rsa_bits() < MIN_RSA_BITS {
        return Err(format!(
            "the RSA key has {} bits; at least {MIN_RSA_BITS} are needed",
            key.rsa_bits()
        ));
    }
    Ok(())
}

fn check_not_expired(cert: &Certificate, now: Timestamp) -> Result<(), String> {
    if now.secs() > cert.not_after() {
        return Err(format!(
            "the certificate expired on {}",
            rfc3339(cert.not_after())
        ));
    }
    Ok(())
}

/// A registry CA as far as it could be read (stored CAs were checked when they were
/// added; one that no longer parses signs nothing).
struct Ca {
    index: usize,
    cert: Certificate,
}

fn registry_cas(registry: &DeviceRegistry) -> Vec<Ca> {
    registry
        .credentials
        .iter()
        .enumerate()
        .filter_map(|(index, c)| {
            let parsed = tether_keys::parse(c.certificate.as_bytes()).ok()?;
            let cert = parsed.certificate()?.clone();
            Some(Ca { index, cert })
        })
        .collect()
}

/// Checks a device's credentials against IoT Core's rules and the registry's CAs.
/// The error names the credential (`credentials[1]: …`) and the fix.
pub fn validate_device_credentials(
    creds: &[DeviceCredential],
    registry: &DeviceRegistry,
    now: Timestamp,
) -> Result<(), String> {
    if creds.len() > limits::DEVICE_CREDENTIALS {
        return Err(format!(
            "a device has at most {} credentials; {} were given",
            limits::DEVICE_CREDENTIALS,
            creds.len()
        ));
    }
    let cas = if registry.credentials.is_empty() {
        Vec::new()
    } else {
        registry_cas(registry)
    };
    for (i, cred) in creds.iter().enumerate() {
        check_device_credential(cred, &registry.credentials, &cas, now)
            .map_err(|why| format!("credentials[{i}]: {why}"))?;
    }
    Ok(())
}

fn check_device_credential(
    cred: &DeviceCredential,
    ca_credentials: &[RegistryCredential],
    cas: &[Ca],
    now: Timestamp,
) -> Result<(), String> {
    let declared = cred.public_key.format;
    if declared == PublicKeyFormat::Unspecified {
        return Err(
            "publicKey.format is missing; use RSA_PEM, RSA_X509_PEM, ES256_PEM or ES256_X509_PEM"
                .into(),
        );
    }
    let parsed = read_pem(&cred.public_key.key)?;
    let key = parsed
        .public_key()
        .ok_or_else(|| "the PEM holds no public key".to_string())?;
    let is_cert = parsed.certificate().is_some();
    let fits = fitting_format(is_cert, key.key_type());
    if fits != declared {
        return Err(format!(
            "format is {} but the key is {}; use {}",
            declared.name(),
            found_words(&parsed, &key),
            fits.name()
        ));
    }
    check_strength(&key)?;
    if let Some(cert) = parsed.certificate() {
        check_not_expired(cert, now)?;
    }
    if ca_credentials.is_empty() {
        return Ok(());
    }
    let Some(cert) = parsed.certificate() else {
        return Err(format!(
            "the registry has CA certificates, so device credentials must be certificates \
             (RSA_X509_PEM or ES256_X509_PEM) signed by one of them; got {}",
            declared.name()
        ));
    };
    if let Some(ca) = cas.iter().find(|ca| ca.cert.der() == cert.der()) {
        return Err(format!(
            "this is the registry's CA certificate credentials[{}] ({}); register a device \
             certificate signed by it",
            ca.index,
            ca.cert.subject()
        ));
    }
    let signers: Vec<&Ca> = cas
        .iter()
        .filter(|ca| cert.is_signed_by(&ca.cert))
        .collect();
    if signers.is_empty() {
        return Err(format!(
            "the certificate (subject {}, issuer {}) is not signed by any of the registry's {} \
             CA certificate(s); IoT Core accepts only certificates signed directly by a \
             registry CA, no intermediates",
            cert.subject(),
            cert.issuer(),
            ca_credentials.len()
        ));
    }
    if signers.iter().all(|ca| now.secs() > ca.cert.not_after()) {
        let ca = signers[0];
        return Err(format!(
            "the certificate is signed by the registry's CA certificate credentials[{}] ({}), \
             which expired on {}",
            ca.index,
            ca.cert.subject(),
            rfc3339(ca.cert.not_after())
        ));
    }
    Ok(())
}

/// Checks a registry's CA certificates and returns them with their [`X509Details`]
/// filled in. The error names the certificate (`credentials[0]: …`).
pub fn validate_registry_credentials(
    creds: &[RegistryCredential],
    now: Timestamp,
) -> Result<Vec<RegistryCredential>, String> {
    if creds.len() > limits::REGISTRY_CREDENTIALS {
        return Err(format!(
            "a registry has at most {} CA certificates; {} were given",
            limits::REGISTRY_CREDENTIALS,
            creds.len()
        ));
    }
    creds
        .iter()
        .enumerate()
        .map(|(i, c)| {
            check_registry_credential(c, now)
                .map(|details| RegistryCredential {
                    format: c.format,
                    certificate: c.certificate.clone(),
                    x509_details: Some(details),
                })
                .map_err(|why| format!("credentials[{i}]: {why}"))
        })
        .collect()
}

fn check_registry_credential(
    cred: &RegistryCredential,
    now: Timestamp,
) -> Result<X509Details, String> {
    if cred.format != CertificateFormat::X509Pem {
        return Err(format!(
            "publicKeyCertificate.format is {}; use X509_CERTIFICATE_PEM",
            cred.format.name()
        ));
    }
    let parsed = read_pem(&cred.certificate)?;
    let Some(cert) = parsed.certificate() else {
        return Err(format!(
            "found {}, but a CA certificate (-----BEGIN CERTIFICATE-----) is needed",
            parsed.describe()
        ));
    };
    check_strength(cert.public_key())?;
    check_not_expired(cert, now)?;
    x509_details(cert)
}

/// IoT Core's `x509Details` of a certificate.
pub fn x509_details(cert: &Certificate) -> Result<X509Details, String> {
    let (_, x509) = X509Certificate::from_der(cert.der())
        .map_err(|e| format!("the certificate cannot be read: {e}"))?;
    let oid = x509.signature_algorithm.algorithm.to_id_string();
    let key = cert.public_key();
    Ok(X509Details {
        issuer: cert.issuer().to_string(),
        subject: cert.subject().to_string(),
        start_time: Some(Timestamp::from_secs(cert.not_before())),
        expiry_time: Some(Timestamp::from_secs(cert.not_after())),
        signature_algorithm: signature_algorithm_name(&oid),
        public_key_type: match key.key_type() {
            KeyType::Rsa => format!("RSA_{}", key.rsa_bits()),
            KeyType::EcP256 => "ECDSA_P256".into(),
        },
    })
}

fn signature_algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.5" => "SHA1_WITH_RSA",
        "1.2.840.113549.1.1.11" => "SHA256_WITH_RSA",
        "1.2.840.113549.1.1.12" => "SHA384_WITH_RSA",
        "1.2.840.113549.1.1.13" => "SHA512_WITH_RSA",
        "1.2.840.113549.1.1.10" => "RSASSA_PSS",
        "1.2.840.10045.4.3.2" => "ECDSA_WITH_SHA256",
        "1.2.840.10045.4.3.3" => "ECDSA_WITH_SHA384",
        "1.2.840.10045.4.3.4" => "ECDSA_WITH_SHA512",
        other => return other.to_string(),
    }
    .to_string()
}
