//! Credential checks (formats, expiry, registry CAs, x509Details) and the bridges' key
//! cache, with keys and certificates made by tether-keys at a fixed time.

use std::sync::{Arc, OnceLock};

use tether_jwt::KeyType;
use tether_keys::KeyHandle;
use tether_keys::ca::Ca;
use tether_keys::cert::{Validity, make_csr, self_signed};
use tether_keys::convert::pem_text;
use tether_keys::generate::{KeySpec, generate};
use tether_registry::KeyCache;
use tether_registry::credentials::{validate_device_credentials, validate_registry_credentials};
use tether_registry::model::{
    CertificateFormat, Device, DeviceCredential, DeviceRegistry, PublicKeyCredential,
    PublicKeyFormat, RegistryCredential, Timestamp,
};
use tether_registry::names::RegistryPath;

/// 2026-05-28T20:26:40Z.
const NOW: i64 = 1_780_000_000;
const DAY: i64 = 86_400;

fn now() -> Timestamp {
    Timestamp::from_secs(NOW)
}

fn valid() -> Validity {
    Validity {
        not_before: NOW - DAY,
        days: 30,
    }
}

fn es256() -> KeyHandle {
    KeyHandle::Software(generate(KeySpec::Es256).expect("keygen"))
}

/// RSA keygen is slow in debug builds: make one and share it.
fn rsa() -> &'static KeyHandle {
    static KEY: OnceLock<KeyHandle> = OnceLock::new();
    KEY.get_or_init(|| {
        KeyHandle::Software(generate(KeySpec::Rs256 { bits: 2048 }).expect("keygen"))
    })
}

fn spki_pem(key: &KeyHandle) -> String {
    pem_text("PUBLIC KEY", key.public_key().spki_der())
}

fn cert_pem(key: &KeyHandle, subject: &str, validity: Validity) -> String {
    pem_text(
        "CERTIFICATE",
        &self_signed(key, subject, &[], validity).expect("self-signed"),
    )
}

fn cred(format: PublicKeyFormat, key: String) -> DeviceCredential {
    DeviceCredential {
        public_key: PublicKeyCredential { format, key },
        expiration_time: None,
    }
}

fn no_ca() -> DeviceRegistry {
    DeviceRegistry::default()
}

fn new_ca(subject: &str) -> Ca {
    Ca::init(es256(), subject, valid()).expect("ca")
}

fn ca_pem(ca: &Ca) -> String {
    pem_text("CERTIFICATE", ca.certificate().der())
}

fn issue(ca: &Ca, key: &KeyHandle, subject: &str) -> String {
    let csr = make_csr(key, subject, &[]).expect("csr");
    pem_text("CERTIFICATE", &ca.sign_csr(&csr, valid()).expect("sign"))
}

fn registry_with(cas: &[&Ca]) -> DeviceRegistry {
    DeviceRegistry {
        credentials: cas
            .iter()
            .map(|ca| RegistryCredential {
                format: CertificateFormat::X509Pem,
                certificate: ca_pem(ca),
                x509_details: None,
            })
            .collect(),
        ..DeviceRegistry::default()
    }
}

#[test]
fn matching_formats_are_accepted() {
    let ec = es256();
    let creds = vec![
        cred(PublicKeyFormat::Es256Pem, spki_pem(&ec)),
        cred(PublicKeyFormat::RsaPem, spki_pem(rsa())),
        cred(
            PublicKeyFormat::Es256X509Pem,
            cert_pem(&ec, "CN=dev-1", valid()),
        ),
    ];
    assert_eq!(validate_device_credentials(&creds, &no_ca(), now()), Ok(()));
    let rsa_cert = vec![cred(
        PublicKeyFormat::RsaX509Pem,
        cert_pem(rsa(), "CN=dev-1", valid()),
    )];
    assert_eq!(
        validate_device_credentials(&rsa_cert, &no_ca(), now()),
        Ok(())
    );
    assert_eq!(validate_device_credentials(&[], &no_ca(), now()), Ok(()));
}

#[test]
fn mismatches_say_what_was_found_and_what_to_use() {
    let ec = es256();
    let check = |c: DeviceCredential| {
        validate_device_credentials(
            &[cred(PublicKeyFormat::Es256Pem, spki_pem(&ec)), c],
            &no_ca(),
            now(),
        )
    };
    assert_eq!(
        check(cred(PublicKeyFormat::Es256Pem, spki_pem(rsa()))),
        Err(
            "credentials[1]: format is ES256_PEM but the key is an RSA public key (2048 bits); \
             use RSA_PEM"
                .into()
        )
    );
    assert_eq!(
        check(cred(PublicKeyFormat::RsaPem, spki_pem(&ec))),
        Err(
            "credentials[1]: format is RSA_PEM but the key is a P-256 public key; use ES256_PEM"
                .into()
        )
    );
    assert_eq!(
        check(cred(
            PublicKeyFormat::Es256Pem,
            cert_pem(&ec, "CN=d", valid())
        )),
        Err(
            "credentials[1]: format is ES256_PEM but the key is an X.509 certificate with a \
             P-256 key; use ES256_X509_PEM"
                .into()
        )
    );
    assert_eq!(
        check(cred(PublicKeyFormat::Es256X509Pem, spki_pem(&ec))),
        Err(
            "credentials[1]: format is ES256_X509_PEM but the key is a P-256 public key; use \
             ES256_PEM"
                .into()
        )
    );
    assert_eq!(
        check(cred(
            PublicKeyFormat::Es256X509Pem,
            cert_pem(rsa(), "CN=d", valid())
        )),
        Err(
            "credentials[1]: format is ES256_X509_PEM but the key is an X.509 certificate with \
             an RSA key (2048 bits); use RSA_X509_PEM"
                .into()
        )
    );
    assert_eq!(
        check(cred(PublicKeyFormat::Unspecified, spki_pem(&ec))),
        Err(
            "credentials[1]: publicKey.format is missing; use RSA_PEM, RSA_X509_PEM, ES256_PEM \
             or ES256_X509_PEM"
                .into()
        )
    );
}

#[test]
fn unreadable_and_wrong_kinds_of_pem_are_refused() {
    let refuse = |text: String| {
        validate_device_credentials(&[cred(PublicKeyFormat::Es256Pem, text)], &no_ca(), now())
            .err()
            .unwrap_or_default()
    };
    let garbage = refuse("not a key".into());
    assert!(garbage.starts_with("credentials[0]: "), "{garbage}");
    assert!(refuse(String::new()).starts_with("credentials[0]: "));

    let private = match generate(KeySpec::Es256) {
        Ok(k) => pem_text("PRIVATE KEY", &k.pkcs8_der()),
        Err(e) => panic!("keygen: {e}"),
    };
    let msg = refuse(private);
    assert!(msg.contains("private key"), "{msg}");
    assert!(msg.contains("--to spki"), "{msg}");

    let csr = pem_text(
        "CERTIFICATE REQUEST",
        &make_csr(&es256(), "CN=d", &[]).expect("csr"),
    );
    assert!(refuse(csr).contains("certificate request"));

    // DER is not PEM.
    let der = String::from_utf8_lossy(es256().public_key().spki_der()).into_owned();
    assert!(refuse(der).starts_with("credentials[0]: "));
}

#[test]
fn at_most_three_credentials() {
    let ec = es256();
    let creds = vec![cred(PublicKeyFormat::Es256Pem, spki_pem(&ec)); 4];
    assert_eq!(
        validate_device_credentials(&creds, &no_ca(), now()),
        Err("a device has at most 3 credentials; 4 were given".into())
    );
}

#[test]
fn expired_certificates_are_refused() {
    let ec = es256();
    let expired = Validity {
        not_before: NOW - 10 * DAY,
        days: 3,
    };
    let creds = vec![cred(
        PublicKeyFormat::Es256X509Pem,
        cert_pem(&ec, "CN=old", expired),
    )];
    assert_eq!(
        validate_device_credentials(&creds, &no_ca(), now()),
        Err("credentials[0]: the certificate expired on 2026-05-21T20:26:40Z".into())
    );
}

#[test]
fn registry_cas_require_certificates_they_signed() {
    let ca = new_ca("CN=Fleet CA");
    let other = new_ca("CN=Other CA");
    let registry = registry_with(&[&other, &ca]);
    let dev = es256();

    let signed = issue(&ca, &dev, "CN=dev-1");
    assert_eq!(
        validate_device_credentials(
            &[cred(PublicKeyFormat::Es256X509Pem, signed.clone())],
            &registry,
            now()
        ),
        Ok(())
    );
    let rsa_signed = issue(&ca, rsa(), "CN=dev-rsa");
    assert_eq!(
        validate_device_credentials(
            &[cred(PublicKeyFormat::RsaX509Pem, rsa_signed)],
            &registry,
            now()
        ),
        Ok(())
    );

    assert_eq!(
        validate_device_credentials(
            &[cred(PublicKeyFormat::Es256Pem, spki_pem(&dev))],
            &registry,
            now()
        ),
        Err(
            "credentials[0]: the registry has CA certificates, so device credentials must be \
             certificates (RSA_X509_PEM or ES256_X509_PEM) signed by one of them; got ES256_PEM"
                .into()
        )
    );

    let self_made = cert_pem(&dev, "CN=dev-1", valid());
    let msg = validate_device_credentials(
        &[cred(PublicKeyFormat::Es256X509Pem, self_made)],
        &registry,
        now(),
    )
    .err()
    .unwrap_or_default();
    assert!(
        msg.starts_with("credentials[0]: the certificate (subject CN=dev-1, issuer CN=dev-1) is not signed by any of the registry's 2 CA certificate(s)"),
        "{msg}"
    );

    let foreign = issue(&new_ca("CN=Stranger"), &dev, "CN=dev-1");
    assert!(
        validate_device_credentials(
            &[cred(PublicKeyFormat::Es256X509Pem, foreign)],
            &registry,
            now()
        )
        .is_err_and(|m| m.contains("not signed by any"))
    );

    assert_eq!(
        validate_device_credentials(
            &[cred(PublicKeyFormat::Es256X509Pem, ca_pem(&ca))],
            &registry,
            now()
        ),
        Err(
            "credentials[0]: this is the registry's CA certificate credentials[1] (CN=Fleet CA); \
             register a device certificate signed by it"
                .into()
        )
    );
}

#[test]
fn registry_credentials_get_x509_details() {
    let ca = new_ca("CN=Fleet CA");
    let rsa_ca = cert_pem(rsa(), "CN=RSA CA", valid());
    let creds = vec![
        RegistryCredential {
            format: CertificateFormat::X509Pem,
            certificate: ca_pem(&ca),
            x509_details: None,
        },
        RegistryCredential {
            format: CertificateFormat::X509Pem,
            certificate: rsa_ca,
            x509_details: None,
        },
    ];
    let checked = validate_registry_credentials(&creds, now()).expect("valid CAs");
    let d0 = checked[0].x509_details.clone().expect("details");
    assert_eq!(d0.subject, "CN=Fleet CA");
    assert_eq!(d0.issuer, "CN=Fleet CA");
    assert_eq!(d0.start_time, Some(Timestamp::from_secs(NOW - DAY)));
    assert_eq!(d0.expiry_time, Some(Timestamp::from_secs(NOW + 29 * DAY)));
    assert_eq!(d0.signature_algorithm, "ECDSA_WITH_SHA256");
    assert_eq!(d0.public_key_type, "ECDSA_P256");
    let d1 = checked[1].x509_details.clone().expect("details");
    assert_eq!(d1.signature_algorithm, "SHA256_WITH_RSA");
    assert_eq!(d1.public_key_type, "RSA_2048");
    assert_eq!(checked[1].certificate, creds[1].certificate);

    let bad_format = vec![RegistryCredential {
        format: CertificateFormat::Unspecified,
        ..creds[0].clone()
    }];
    assert_eq!(
        validate_registry_credentials(&bad_format, now()),
        Err("credentials[0]: publicKeyCertificate.format is \
             UNSPECIFIED_PUBLIC_KEY_CERTIFICATE_FORMAT; use X509_CERTIFICATE_PEM"
            .into())
    );
    let not_cert = vec![RegistryCredential {
        certificate: spki_pem(&es256()),
        ..creds[0].clone()
    }];
    assert!(
        validate_registry_credentials(&not_cert, now())
            .is_err_and(|m| m.starts_with("credentials[0]: found public key (SPKI)")),
    );
    let expired = vec![
        creds[0].clone(),
        RegistryCredential {
            certificate: cert_pem(
                &es256(),
                "CN=Old CA",
                Validity {
                    not_before: NOW - 40 * DAY,
                    days: 30,
                },
            ),
            ..creds[0].clone()
        },
    ];
    assert_eq!(
        validate_registry_credentials(&expired, now()),
        Err("credentials[1]: the certificate expired on 2026-05-18T20:26:40Z".into())
    );
    let many = vec![creds[0].clone(); 11];
    assert_eq!(
        validate_registry_credentials(&many, now()),
        Err("a registry has at most 10 CA certificates; 11 were given".into())
    );
}

#[test]
fn key_cache_parses_once_per_credential_list() {
    let registry = RegistryPath {
        project: "p".into(),
        location: "l".into(),
        registry: "r".into(),
    };
    let ec = es256();
    let mut device = Device {
        id: "dev-1".into(),
        num_id: 7,
        credentials: vec![
            DeviceCredential {
                expiration_time: Some(Timestamp::from_secs(NOW + 60)),
                ..cred(PublicKeyFormat::Es256Pem, spki_pem(&ec))
            },
            cred(
                PublicKeyFormat::RsaPem,
                "-----BEGIN PUBLIC KEY-----\nAAAA\n".into(),
            ),
            cred(
                PublicKeyFormat::RsaX509Pem,
                cert_pem(rsa(), "CN=dev-1", valid()),
            ),
        ],
        ..Device::default()
    };
    let cache = KeyCache::new();
    let keys = cache.keys(&registry, &device);
    assert_eq!(keys.credentials.len(), 2);
    assert_eq!(keys.credentials[0].key, *ec.public_key());
    assert_eq!(keys.credentials[0].expires_at, Some(NOW + 60));
    assert_eq!(keys.credentials[1].key.key_type(), KeyType::Rsa);
    assert_eq!(keys.credentials[1].expires_at, None);
    assert_eq!(keys.skipped.len(), 1);
    assert!(
        keys.skipped[0].starts_with("credentials[1] (RSA_PEM) cannot be used: "),
        "{}",
        keys.skipped[0]
    );

    // Same credentials: the same parsed list.
    let again = cache.credentials(&registry, &device);
    assert!(Arc::ptr_eq(&again, &keys.credentials));

    // Changed credentials: parsed again.
    device.credentials.truncate(1);
    let changed = cache.credentials(&registry, &device);
    assert_eq!(changed.len(), 1);
    assert!(!Arc::ptr_eq(&changed, &keys.credentials));
    assert_eq!(cache.len(), 1);

    // Invalidation drops the entry; the same numId in another registry is separate.
    let other = RegistryPath {
        registry: "r2".into(),
        ..registry.clone()
    };
    cache.credentials(&other, &device);
    assert_eq!(cache.len(), 2);
    cache.invalidate(&registry, 7);
    assert_eq!(cache.len(), 1);
    let fresh = cache.credentials(&registry, &device);
    assert!(!Arc::ptr_eq(&fresh, &changed));
    assert_eq!(*fresh, *changed);
    cache.invalidate_registry(&other);
    assert_eq!(cache.len(), 1);
}

#[test]
fn a_remembered_token_is_forgotten_with_the_credentials_it_was_verified_against() {
    let registry = RegistryPath {
        project: "p".into(),
        location: "l".into(),
        registry: "r".into(),
    };
    let ec = es256();
    let other = es256();
    let mut device = Device {
        num_id: 9,
        credentials: vec![
            cred(PublicKeyFormat::Es256Pem, spki_pem(&ec)),
            cred(PublicKeyFormat::Es256Pem, spki_pem(&other)),
        ],
        ..Device::default()
    };
    let cache = KeyCache::new();
    let (a, b) = ([1u8; 32], [2u8; 32]);
    assert_eq!(cache.keys_for_token(&registry, &device, Some(&a)).1, None);
    cache.remember_verified(&registry, &device, a, 1);
    assert_eq!(
        cache.keys_for_token(&registry, &device, Some(&a)).1,
        Some(1)
    );
    assert_eq!(cache.keys_for_token(&registry, &device, Some(&b)).1, None);
    assert_eq!(cache.keys_for_token(&registry, &device, None).1, None);

    // A few tokens per device, the oldest forgotten first.
    for d in 10..14u8 {
        cache.remember_verified(&registry, &device, [d; 32], 0);
    }
    assert_eq!(cache.keys_for_token(&registry, &device, Some(&a)).1, None);
    assert_eq!(
        cache.keys_for_token(&registry, &device, Some(&[13; 32])).1,
        Some(0)
    );

    // The key is removed: the device's new credential list forgets every token.
    let before = device.clone();
    device.credentials.remove(0);
    assert_eq!(
        cache.keys_for_token(&registry, &device, Some(&[13; 32])).1,
        None
    );
    // What was verified against the old list is not remembered for the new one.
    cache.remember_verified(&registry, &before, b, 0);
    assert_eq!(cache.keys_for_token(&registry, &device, Some(&b)).1, None);
    // Nor after the device is forgotten.
    cache.remember_verified(&registry, &device, b, 0);
    cache.invalidate(&registry, 9);
    assert_eq!(cache.keys_for_token(&registry, &device, Some(&b)).1, None);
}
