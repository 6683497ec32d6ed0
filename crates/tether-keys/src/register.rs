//! Which IoT Core credential format a key or certificate can be registered as
//! (`PublicKeyFormat` in `google.cloud.iot.v1`), and exactly the text to register.

use std::fmt;

use tether_jwt::KeyType;

use crate::convert::pem_text;
use crate::parse::date;
use crate::{Object, Parsed};

/// IoT Core's `PublicKeyFormat` (the numbers are the proto enum values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicKeyFormat {
    /// RSA public key as SPKI PEM (`BEGIN PUBLIC KEY`).
    RsaPem = 3,
    /// RSA key in an X.509 certificate.
    RsaX509Pem = 1,
    /// P-256 public key as SPKI PEM.
    Es256Pem = 2,
    /// P-256 key in an X.509 certificate.
    Es256X509Pem = 4,
}

impl PublicKeyFormat {
    /// The proto enum name, e.g. `ES256_PEM`.
    pub fn as_str(self) -> &'static str {
        match self {
            PublicKeyFormat::RsaPem => "RSA_PEM",
            PublicKeyFormat::RsaX509Pem => "RSA_X509_PEM",
            PublicKeyFormat::Es256Pem => "ES256_PEM",
            PublicKeyFormat::Es256X509Pem => "ES256_X509_PEM",
        }
    }
}

impl fmt::Display for PublicKeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A credential ready for `devices.create` / `devices.patch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The format to declare.
    pub format: PublicKeyFormat,
    /// The `key` text, exactly.
    pub key: String,
    /// Whether the text differs from the input (re-encoded to what IoT Core reads).
    pub converted: bool,
}

/// Why an input cannot be registered as a device credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotRegistrable {
    /// A private key must stay on the device.
    #[error("this is a private key; register the public key: `tether keys convert FILE --to spki`")]
    PrivateKey,
    /// A CSR is a request, not a credential.
    #[error(
        "this is a certificate request; get it signed (`tether ca sign FILE`) and register the \
         certificate, or register its public key: `tether keys convert FILE --to spki`"
    )]
    Csr,
    /// IoT Core refused expired certificates.
    #[error(
        "the certificate expired on {0}; IoT Core refuses expired certificates: issue a new one"
    )]
    Expired(String),
    /// The certificate is not valid yet.
    #[error("the certificate is not valid before {0}; check the clock of whoever issued it")]
    NotYetValid(String),
    /// RSA below 2048 bits.
    #[error("RSA {0}-bit key: at least 2048 bits are needed")]
    WeakRsa(u32),
}

impl NotRegistrable {
    /// The message with `FILE` replaced by the actual file name.
    pub fn message_for(&self, file: &str) -> String {
        self.to_string().replace("FILE", file)
    }
}

/// The IoT Core format `parsed` registers as, and its text; `now` (Unix seconds)
/// decides whether a certificate is in its validity period.
pub fn registration(parsed: &Parsed, now: i64) -> Result<Registration, NotRegistrable> {
    let public = parsed.public_key_ref();
    if public.key_type() == KeyType::Rsa && public.rsa_bits() < 2048 {
        return Err(NotRegistrable::WeakRsa(public.rsa_bits()));
    }
    let x509 = |rsa| {
        if rsa {
            PublicKeyFormat::RsaX509Pem
        } else {
            PublicKeyFormat::Es256X509Pem
        }
    };
    let rsa = public.key_type() == KeyType::Rsa;
    match parsed.object() {
        Object::PrivateKey(_) => Err(NotRegistrable::PrivateKey),
        Object::Csr(_) => Err(NotRegistrable::Csr),
        Object::Certificate(c) => {
            if now > c.not_after() {
                return Err(NotRegistrable::Expired(date(c.not_after())));
            }
            if now < c.not_before() {
                return Err(NotRegistrable::NotYetValid(date(c.not_before())));
            }
            Ok(Registration {
                format: x509(rsa),
                key: pem_text("CERTIFICATE", c.der()),
                converted: parsed.encoding() != crate::Encoding::Pem,
            })
        }
        Object::PublicKey(k) => Ok(Registration {
            format: if rsa {
                PublicKeyFormat::RsaPem
            } else {
                PublicKeyFormat::Es256Pem
            },
            key: pem_text("PUBLIC KEY", k.spki_der()),
            converted: parsed.kind() != crate::Kind::SpkiPublicKey
                || parsed.encoding() != crate::Encoding::Pem,
        }),
    }
}
