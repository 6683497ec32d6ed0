use std::path::PathBuf;

/// Why bytes are not a key, certificate or CSR this crate can use. Each message says
/// what the input looks like and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Zero bytes, or only whitespace.
    #[error("empty file")]
    Empty,
    /// A password-protected key.
    #[error(
        "this is a PEM '{label}' (password-protected); decrypt it first: \
         openssl pkey -in {} -out plain.pem",
        file.as_deref().unwrap_or("FILE")
    )]
    Encrypted {
        /// The PEM label (or "EncryptedPrivateKeyInfo" for DER).
        label: String,
        /// The file, when known, to put in the suggested command.
        file: Option<String>,
    },
    /// Several certificates in one file.
    #[error(
        "a chain of {0} certificates; give one certificate (split the file, or take the \
         first with `openssl x509 -in FILE -out first.pem`)"
    )]
    Chain(usize),
    /// Several PEM objects of different kinds in one file.
    #[error("{} PEM objects ({}); give one per file", .0.len(), .0.join(", "))]
    Multiple(Vec<String>),
    /// A PEM label this crate does not read.
    #[error(
        "this is a PEM '{0}', which is not a key, certificate or CSR this tool reads \
         (expected PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY, PUBLIC KEY, RSA PUBLIC KEY, \
         CERTIFICATE or CERTIFICATE REQUEST)"
    )]
    UnknownPemLabel(String),
    /// An OpenSSH-format key.
    #[error(
        "this is an OpenSSH private key; convert it to PKCS#8 first: \
         ssh-keygen -p -m PKCS8 -f FILE (converts in place)"
    )]
    OpenSsh,
    /// A PKCS#12 / PFX bundle.
    #[error(
        "this is a PKCS#12 (.p12/.pfx) bundle; extract the key and certificate: \
         openssl pkcs12 -in FILE -nodes -out plain.pem"
    )]
    Pkcs12,
    /// A `-----BEGIN` block that does not decode.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// DER whose lengths run past the end of the data.
    #[error("truncated DER: {0}")]
    Truncated(String),
    /// Bytes left over after a complete structure.
    #[error("{extra} unexpected bytes after the {what}; is this two files concatenated?")]
    Trailing {
        /// What was parsed.
        what: &'static str,
        /// Bytes left over.
        extra: usize,
    },
    /// The structure was recognised but is broken.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// What it was read as.
        what: &'static str,
        /// The parser's reason.
        why: String,
    },
    /// An EC key on a curve other than P-256.
    #[error(
        "EC key on {0}: ES256 needs P-256 (prime256v1); generate one with `tether keys gen --alg es256`"
    )]
    UnsupportedCurve(String),
    /// Not RSA or EC.
    #[error("{0} key: IoT Core devices sign with RS256 (RSA) or ES256 (EC P-256) only")]
    UnsupportedAlgorithm(String),
    /// A key whose numbers are wrong (scalar out of range, point off the curve...).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Text with no PEM block and not hex.
    #[error(
        "looks like text but not PEM (no '-----BEGIN' line) and not the hex of a raw P-256 key \
         (64 hex digits for a private scalar, 128 or 130 for a public key); if it is base64 \
         without its BEGIN/END lines, add them"
    )]
    NotPem,
    /// Binary that is neither DER nor a raw key.
    #[error(
        "unrecognised binary data ({len} bytes, starting {start}): not DER, and not a raw \
         P-256 key (32-byte scalar, 64-byte x||y or 65-byte 04||x||y)"
    )]
    Unrecognized {
        /// Size of the input.
        len: usize,
        /// The first bytes in hex.
        start: String,
    },
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An error about the contents of a named file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<ParseError>,
    },
}

impl ParseError {
    pub(crate) fn malformed(what: &'static str, why: impl std::fmt::Display) -> Self {
        ParseError::Malformed {
            what,
            why: why.to_string(),
        }
    }

    /// The error without the file name wrapper.
    pub fn root(&self) -> &ParseError {
        match self {
            ParseError::InFile { source, .. } => source.root(),
            other => other,
        }
    }
}
