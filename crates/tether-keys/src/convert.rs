//! Re-encoding: the same object in PEM or DER, a private key as PKCS#8, PKCS#1 or
//! SEC1, any key's public half as SPKI, and P-256 keys as raw bytes.

use tether_jwt::KeyType;

use crate::{Kind, Object, Parsed};

/// What to convert to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The same structure, PEM.
    Pem,
    /// The same structure, DER.
    Der,
    /// PKCS#8 private key.
    Pkcs8,
    /// PKCS#1 RSA private key (from a private key) or RSA public key (from a public one).
    Pkcs1,
    /// SEC1 EC private key.
    Sec1,
    /// The public key as SPKI (`BEGIN PUBLIC KEY`), what IoT Core registers.
    Spki,
    /// P-256 raw bytes: the 32-byte scalar of a private key, or `x‖y` of a public key.
    Raw,
}

/// How to write the result of a structural target (`pkcs8`, `pkcs1`, `sec1`, `spki`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// DER instead of PEM.
    pub der: bool,
    /// For raw public keys: `04‖x‖y` (65 bytes) instead of `x‖y` (64 bytes).
    pub uncompressed_prefix: bool,
}

/// Why a conversion does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot convert a {from} to {to}: {why}")]
pub struct ConvertError {
    /// What the input is.
    pub from: String,
    /// The target.
    pub to: &'static str,
    /// Why not, and what to use instead.
    pub why: &'static str,
}

/// Bytes to write and whether they are text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The output.
    pub bytes: Vec<u8>,
    /// PEM (text) rather than binary.
    pub is_text: bool,
}

/// PEM text with 64-column lines and a trailing newline.
pub fn pem_text(label: &str, der: &[u8]) -> String {
    let block = pem::Pem::new(label, der.to_vec());
    pem::encode_config(
        &block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

fn out(label: &str, der: Vec<u8>, as_der: bool) -> Converted {
    if as_der {
        Converted {
            bytes: der,
            is_text: false,
        }
    } else {
        Converted {
            bytes: pem_text(label, &der).into_bytes(),
            is_text: true,
        }
    }
}

/// The PEM label and DER of `parsed` as its own structure (raw keys become PKCS#8 or
/// SPKI, the standard forms).
pub fn structure_der(parsed: &Parsed) -> (&'static str, Vec<u8>) {
    if let Some(der) = parsed.original_der() {
        return (label_of(parsed.kind()), der.to_vec());
    }
    match parsed.object() {
        Object::PrivateKey(k) => ("PRIVATE KEY", k.pkcs8_der().to_vec()),
        Object::PublicKey(k) => ("PUBLIC KEY", k.spki_der().to_vec()),
        Object::Certificate(c) => ("CERTIFICATE", c.der().to_vec()),
        Object::Csr(c) => ("CERTIFICATE REQUEST", c.der().to_vec()),
    }
}

fn label_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Pkcs1PrivateKey => "RSA PRIVATE KEY",
        Kind::Sec1PrivateKey => "EC PRIVATE KEY",
        Kind::SpkiPublicKey | Kind::RawPublicKey => "PUBLIC KEY",
        Kind::Pkcs1PublicKey => "RSA PUBLIC KEY",
        Kind::Certificate => "CERTIFICATE",
        Kind::Csr => "CERTIFICATE REQUEST",
        _ => "PRIVATE KEY",
    }
}

/// Converts `parsed` to `target`.
pub fn convert(
    parsed: &Parsed,
    target: Target,
    options: Options,
) -> Result<Converted, ConvertError> {
    let refuse = |to: &'static str, why: &'static str| ConvertError {
        from: parsed.describe(),
        to,
        why,
    };
    let private = parsed.private_key();
    let public = parsed.public_key_ref();
    let rsa = public.key_type() == KeyType::Rsa;
    match target {
        Target::Pem => {
            let (label, der) = structure_der(parsed);
            Ok(out(label, der, false))
        }
        Target::Der => Ok(out("", structure_der(parsed).1, true)),
        Target::Pkcs8 => match private {
            Some(k) => Ok(out("PRIVATE KEY", k.pkcs8_der().to_vec(), options.der)),
            None => Err(refuse(
                "pkcs8",
                "PKCS#8 holds private keys; for the public key use --to spki",
            )),
        },
        Target::Sec1 => match private {
            _ if rsa => Err(refuse(
                "sec1",
                "SEC1 is for EC keys; RSA keys use pkcs1 or pkcs8",
            )),
            Some(k) => match k.sec1_der() {
                Some(der) => Ok(out("EC PRIVATE KEY", der.to_vec(), options.der)),
                None => Err(refuse("sec1", "not an EC key")),
            },
            None => Err(refuse(
                "sec1",
                "SEC1 holds private keys; for the public key use --to spki or raw",
            )),
        },
        Target::Pkcs1 => match (rsa, private) {
            (false, _) => Err(refuse(
                "pkcs1",
                "PKCS#1 is for RSA keys; EC keys use sec1 or pkcs8",
            )),
            (true, Some(k)) => Ok(out(
                "RSA PRIVATE KEY",
                k.pkcs1_der().unwrap_or_default().to_vec(),
                options.der,
            )),
            (true, None) => Ok(out(
                "RSA PUBLIC KEY",
                public.key_bytes().to_vec(),
                options.der,
            )),
        },
        Target::Spki => Ok(out("PUBLIC KEY", public.spki_der().to_vec(), options.der)),
        Target::Raw => {
            if rsa {
                return Err(refuse(
                    "raw",
                    "raw bytes are for P-256 keys; RSA keys have no raw form (use der)",
                ));
            }
            let bytes = match private.and_then(|k| k.p256_scalar()) {
                Some(scalar) => scalar.to_vec(),
                None if options.uncompressed_prefix => public.key_bytes().to_vec(),
                None => public.key_bytes()[1..].to_vec(),
            };
            Ok(Converted {
                bytes,
                is_text: false,
            })
        }
    }
}
