//! Recognise and read any key, certificate or CSR: PEM or DER, PKCS#8, PKCS#1, SEC1,
//! SPKI, X.509, PKCS#10, and raw P-256 bytes (binary or hex).
//!
//! Detection order: empty → PEM (by its `-----BEGIN` line) → other text (hex of a raw
//! key) → DER (by the shape of its tags) → raw binary by size. A refusal names what
//! the input looks like and what would have been accepted.

mod der_kind;
mod error;

use std::fmt;
use std::path::Path;

use tether_jwt::{Fingerprint, KeyError, KeyType, PublicKey};
use zeroize::Zeroizing;

use self::der_kind::DerKind;
pub use self::error::ParseError;
use crate::private_key::PrivateKey;
use crate::x509::{Certificate, Csr};

/// What an input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// PKCS#8 `PrivateKeyInfo` (`BEGIN PRIVATE KEY`), EC or RSA.
    Pkcs8PrivateKey,
    /// PKCS#1 `RSAPrivateKey` (`BEGIN RSA PRIVATE KEY`).
    Pkcs1PrivateKey,
    /// SEC1 `ECPrivateKey` (`BEGIN EC PRIVATE KEY`).
    Sec1PrivateKey,
    /// A bare 32-byte P-256 scalar.
    RawPrivateKey,
    /// X.509 `SubjectPublicKeyInfo` (`BEGIN PUBLIC KEY`).
    SpkiPublicKey,
    /// PKCS#1 `RSAPublicKey` (`BEGIN RSA PUBLIC KEY`).
    Pkcs1PublicKey,
    /// A bare P-256 point: `x‖y` (64 bytes) or `04‖x‖y` (65 bytes).
    RawPublicKey,
    /// An X.509 certificate.
    Certificate,
    /// A PKCS#10 certificate signing request.
    Csr,
}

impl Kind {
    /// Whether this kind holds a private key.
    pub fn is_private(self) -> bool {
        matches!(
            self,
            Kind::Pkcs8PrivateKey
                | Kind::Pkcs1PrivateKey
                | Kind::Sec1PrivateKey
                | Kind::RawPrivateKey
        )
    }
}

/// How the input was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// `-----BEGIN …-----` text.
    Pem,
    /// Binary DER.
    Der,
    /// Raw binary key bytes.
    Raw,
    /// Raw key bytes written as hex text.
    Hex,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Pem => "PEM",
            Encoding::Der => "DER",
            Encoding::Raw => "raw binary",
            Encoding::Hex => "hex text",
        })
    }
}

/// The parsed contents.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Object {
    /// A private key.
    PrivateKey(PrivateKey),
    /// A public key.
    PublicKey(PublicKey),
    /// A certificate.
    Certificate(Certificate),
    /// A certificate signing request.
    Csr(Csr),
}

/// A recognised and parsed key, certificate or CSR.
#[derive(Debug, Clone)]
pub struct Parsed {
    kind: Kind,
    encoding: Encoding,
    object: Object,
    /// The DER as read (absent for raw keys), so PEM⇄DER round trips are byte-exact.
    der: Option<Zeroizing<Vec<u8>>>,
}

impl Parsed {
    pub(crate) fn new(kind: Kind, encoding: Encoding, object: Object) -> Self {
        Parsed {
            kind,
            encoding,
            object,
            der: None,
        }
    }

    fn with_der(mut self, der: &[u8]) -> Self {
        self.der = Some(Zeroizing::new(der.to_vec()));
        self
    }

    /// The DER exactly as it was in the input (PEM contents or the DER file), if the
    /// input was not raw bytes.
    pub fn original_der(&self) -> Option<&[u8]> {
        self.der.as_deref().map(Vec::as_slice)
    }

    /// What it is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// How it was encoded.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The parsed object.
    pub fn object(&self) -> &Object {
        &self.object
    }

    /// Whether it holds a private key.
    pub fn is_private(&self) -> bool {
        matches!(self.object, Object::PrivateKey(_))
    }

    /// The private key, if it is one.
    pub fn private_key(&self) -> Option<&PrivateKey> {
        match &self.object {
            Object::PrivateKey(k) => Some(k),
            _ => None,
        }
    }

    /// The certificate, if it is one.
    pub fn certificate(&self) -> Option<&Certificate> {
        match &self.object {
            Object::Certificate(c) => Some(c),
            _ => None,
        }
    }

    /// The CSR, if it is one.
    pub fn csr(&self) -> Option<&Csr> {
        match &self.object {
            Object::Csr(c) => Some(c),
            _ => None,
        }
    }

    /// The public key: of a private key (computed for EC keys stored without it), a
    /// public key, a certificate's subject or a CSR's requester.
    pub fn public_key(&self) -> Option<PublicKey> {
        Some(self.public_key_ref().clone())
    }

    pub(crate) fn public_key_ref(&self) -> &PublicKey {
        match &self.object {
            Object::PrivateKey(k) => k.public_key(),
            Object::PublicKey(k) => k,
            Object::Certificate(c) => c.public_key(),
            Object::Csr(c) => c.public_key(),
        }
    }

    /// SHA-256 of the public key's SPKI: equal for a key, its certificate and its CSR.
    pub fn fingerprint(&self) -> Fingerprint {
        self.public_key_ref().fingerprint()
    }

    /// One line in words: "PKCS#1 RSA private key, 2048 bits", "X.509 certificate,
    /// ES256, expires 2027-01-03, subject CN=dev-1".
    pub fn describe(&self) -> String {
        let key = key_words(self.public_key_ref());
        match (&self.object, self.kind) {
            (_, Kind::Pkcs8PrivateKey) => format!("PKCS#8 private key, {key}"),
            (_, Kind::Pkcs1PrivateKey) => {
                format!("PKCS#1 RSA private key, {}", bits(self.public_key_ref()))
            }
            (_, Kind::Sec1PrivateKey) => "SEC1 EC private key, P-256 (ES256)".into(),
            (_, Kind::RawPrivateKey) => "raw P-256 private key (32-byte scalar)".into(),
            (_, Kind::SpkiPublicKey) => format!("public key (SPKI), {key}"),
            (_, Kind::Pkcs1PublicKey) => {
                format!("PKCS#1 RSA public key, {}", bits(self.public_key_ref()))
            }
            (_, Kind::RawPublicKey) => "raw P-256 public key (uncompressed point)".into(),
            (Object::Certificate(c), _) => format!(
                "X.509 certificate, {}, expires {}, subject {}{}",
                alg_words(self.public_key_ref()),
                date(c.not_after()),
                c.subject(),
                if c.is_ca() { " (CA)" } else { "" }
            ),
            (Object::Csr(c), _) => format!(
                "PKCS#10 CSR, {}, subject {}{}",
                alg_words(self.public_key_ref()),
                c.subject(),
                if c.signature_ok() {
                    ""
                } else {
                    " (its signature does NOT verify)"
                }
            ),
            _ => key,
        }
    }
}

fn bits(key: &PublicKey) -> String {
    format!("{} bits", key.rsa_bits())
}

fn key_words(key: &PublicKey) -> String {
    match key.key_type() {
        KeyType::EcP256 => "EC P-256 (ES256)".into(),
        KeyType::Rsa => format!("RSA {} bits (RS256)", key.rsa_bits()),
    }
}

fn alg_words(key: &PublicKey) -> String {
    match key.key_type() {
        KeyType::EcP256 => "ES256".into(),
        KeyType::Rsa => format!("RS256 (RSA {})", key.rsa_bits()),
    }
}

/// `YYYY-MM-DD` of a Unix time.
pub(crate) fn date(unix: i64) -> String {
    let mut s = tether_jwt::time::Utc(unix).to_string();
    s.truncate(10);
    s
}

/// Reads a key, certificate or CSR, detecting its kind and encoding.
pub fn parse(bytes: &[u8]) -> Result<Parsed, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    if let Some(text) = as_text(bytes) {
        if text.contains("-----BEGIN ") {
            return parse_pem(text);
        }
        if let Some(raw) = hex_bytes(text) {
            return parse_raw(&raw, Encoding::Hex).ok_or(ParseError::NotPem)?;
        }
        // Binary DER and raw keys can happen to be all printable only if tiny.
        if bytes.len() > 65 || bytes[0] != 0x30 {
            return Err(ParseError::NotPem);
        }
    }
    if bytes[0] == 0x30 {
        match parse_der(bytes, Encoding::Der) {
            Ok(p) => return Ok(p),
            // A raw key may start with 0x30 by chance; the size decides.
            Err(e) => return parse_raw(bytes, Encoding::Raw).unwrap_or(Err(e)),
        }
    }
    parse_raw(bytes, Encoding::Raw).unwrap_or_else(|| {
        let start: String = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Err(ParseError::Unrecognized {
            len: bytes.len(),
            start,
        })
    })
}

/// Reads a file with [`parse`]; errors name the file.
pub fn load(path: &Path) -> Result<Parsed, ParseError> {
    let bytes = std::fs::read(path).map_err(|source| ParseError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes).map_err(|e| {
        let e = match e {
            ParseError::Encrypted { label, file: None } => ParseError::Encrypted {
                label,
                file: Some(path.display().to_string()),
            },
            other => other,
        };
        ParseError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        }
    })
}

fn as_text(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.chars()
        .all(|c| !c.is_control() || c.is_ascii_whitespace())
        .then_some(text)
}

/// Hex digits with optional `0x` prefixes, spaces, commas, colons and braces (as in a
/// C array or `xxd -p` output).
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let cleaned = text.replace("0x", "").replace("0X", "");
    let digits: Vec<u8> = cleaned
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && !b",:{};".contains(b))
        .collect();
    if digits.is_empty()
        || !digits.len().is_multiple_of(2)
        || !digits.iter().all(u8::is_ascii_hexdigit)
    {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
        })
        .collect()
}

/// A raw P-256 key by size; `None` when the size fits no raw form.
fn parse_raw(bytes: &[u8], encoding: Encoding) -> Option<Result<Parsed, ParseError>> {
    let result = match bytes.len() {
        32 => PrivateKey::from_p256_scalar(bytes)
            .map(|k| Parsed::new(Kind::RawPrivateKey, encoding, Object::PrivateKey(k))),
        64 | 65 => PublicKey::from_p256_point(bytes)
            .map(|k| Parsed::new(Kind::RawPublicKey, encoding, Object::PublicKey(k)))
            .map_err(|e| ParseError::InvalidKey(e.to_string())),
        33 if matches!(bytes[0], 2 | 3) => Err(ParseError::InvalidKey(
            "a compressed P-256 point (33 bytes); give the uncompressed 04||x||y form".into(),
        )),
        _ => return None,
    };
    Some(result)
}

fn parse_pem(text: &str) -> Result<Parsed, ParseError> {
    let blocks = pem::parse_many(text).map_err(|e| ParseError::Pem(e.to_string()))?;
    // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
    let blocks: Vec<_> = blocks
        .into_iter()
        .filter(|b| b.tag() != "EC PARAMETERS")
        .collect();
    let certs = blocks
        .iter()
        .filter(|b| b.tag().ends_with("CERTIFICATE"))
        .count();
    if certs > 1 && certs == blocks.len() {
        return Err(ParseError::Chain(certs));
    }
    let block = match blocks.as_slice() {
        [] => {
            return Err(ParseError::Pem(
                "no complete -----BEGIN/-----END block".into(),
            ));
        }
        [one] => one,
        many => {
            return Err(ParseError::Multiple(
                many.iter().map(|b| b.tag().to_string()).collect(),
            ));
        }
    };
    let tag = block.tag();
    let encrypted_header = block
        .headers()
        .get("Proc-Type")
        .is_some_and(|v| v.contains("ENCRYPTED"));
    if tag == "ENCRYPTED PRIVATE KEY" || encrypted_header {
        return Err(ParseError::Encrypted {
            label: tag.to_string(),
            file: None,
        });
    }
    let der = block.contents();
    let expected = match tag {
        "PRIVATE KEY" => DerKind::Pkcs8,
        "RSA PRIVATE KEY" => DerKind::Pkcs1Private,
        "EC PRIVATE KEY" => DerKind::Sec1,
        "PUBLIC KEY" => DerKind::Spki,
        "RSA PUBLIC KEY" => DerKind::Pkcs1Public,
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => DerKind::Certificate,
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => DerKind::Csr,
        "OPENSSH PRIVATE KEY" => return Err(ParseError::OpenSsh),
        other => return Err(ParseError::UnknownPemLabel(other.to_string())),
    };
    let found = der_kind::classify(der)?;
    if found != expected {
        return Err(ParseError::malformed(
            "PEM",
            format!(
                "the label says '{tag}' but the contents are a {}",
                der_kind_words(found)
            ),
        ));
    }
    parse_der_as(der, found, Encoding::Pem)
}

fn der_kind_words(kind: DerKind) -> &'static str {
    match kind {
        DerKind::Pkcs8 => "PKCS#8 private key",
        DerKind::Pkcs1Private => "PKCS#1 RSA private key",
        DerKind::Sec1 => "SEC1 EC private key",
        DerKind::Spki => "SPKI public key",
        DerKind::Pkcs1Public => "PKCS#1 RSA public key",
        DerKind::Certificate => "certificate",
        DerKind::Csr => "CSR",
    }
}

fn parse_der(der: &[u8], encoding: Encoding) -> Result<Parsed, ParseError> {
    let kind = der_kind::classify(der)?;
    parse_der_as(der, kind, encoding)
}

fn parse_der_as(der: &[u8], kind: DerKind, encoding: Encoding) -> Result<Parsed, ParseError> {
    let private = |k: Kind, key: PrivateKey| Parsed::new(k, encoding, Object::PrivateKey(key));
    let parsed = match kind {
        DerKind::Pkcs8 => private(Kind::Pkcs8PrivateKey, PrivateKey::from_pkcs8_der(der)?),
        DerKind::Pkcs1Private => private(Kind::Pkcs1PrivateKey, PrivateKey::from_pkcs1_der(der)?),
        DerKind::Sec1 => private(Kind::Sec1PrivateKey, PrivateKey::from_sec1_der(der)?),
        DerKind::Spki => Parsed::new(
            Kind::SpkiPublicKey,
            encoding,
            Object::PublicKey(public_from_spki(der)?),
        ),
        DerKind::Pkcs1Public => Parsed::new(
            Kind::Pkcs1PublicKey,
            encoding,
            Object::PublicKey(PublicKey::from_rsa_pkcs1_der(der).map_err(key_error)?),
        ),
        DerKind::Certificate => Parsed::new(
            Kind::Certificate,
            encoding,
            Object::Certificate(Certificate::from_der(der)?),
        ),
        DerKind::Csr => Parsed::new(Kind::Csr, encoding, Object::Csr(Csr::from_der(der)?)),
    };
    Ok(parsed.with_der(der))
}

/// A DER SPKI as a `tether-jwt` public key, with curve and algorithm errors kept apart.
pub(crate) fn public_from_spki(der: &[u8]) -> Result<PublicKey, ParseError> {
    PublicKey::from_spki_der(der).map_err(key_error)
}

fn key_error(e: KeyError) -> ParseError {
    match e {
        KeyError::UnsupportedCurve(c) => ParseError::UnsupportedCurve(c),
        KeyError::UnsupportedAlgorithm(a) => ParseError::UnsupportedAlgorithm(a),
        other => ParseError::InvalidKey(other.to_string()),
    }
}
