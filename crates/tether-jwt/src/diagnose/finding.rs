//! The vocabulary of a diagnosis: what a finding is about ([`FindingCode`], whose
//! names are a stable contract for scripts), how much it matters ([`Severity`]), and
//! the [`Report`] the checks append findings to.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::Segment;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The token is refused because of it.
    Error,
    /// Accepted here (as IoT Core did) but refused by strict servers, or suspicious.
    Warning,
    /// For information.
    Info,
}

impl Severity {
    /// `error`, `warning` or `info`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident => $text:literal,)*) => {
        /// What a finding is about; `as_str` gives a stable name for scripts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum FindingCode { $($(#[$doc])* $name,)* }
        impl FindingCode {
            /// A stable kebab-case name.
            pub const fn as_str(self) -> &'static str {
                match self { $(FindingCode::$name => $text,)* }
            }
        }
    };
}

codes! {
    /// Nothing was given.
    Empty => "empty",
    /// Spaces or line breaks around the token.
    SurroundingWhitespace => "surrounding-whitespace",
    /// Quotes around the token.
    SurroundingQuotes => "surrounding-quotes",
    /// `Bearer ` in front of the token.
    BearerPrefix => "bearer-prefix",
    /// Not three parts.
    SegmentCount => "segment-count",
    /// A part is not base64.
    InvalidBase64 => "invalid-base64",
    /// `=` padding.
    Padding => "base64-padding",
    /// `+` or `/`.
    StandardAlphabet => "base64-standard-alphabet",
    /// Non-zero unused bits in the last character.
    NonCanonicalBits => "base64-noncanonical-bits",
    /// Header or claims are not a JSON object.
    InvalidJson => "invalid-json",
    /// `alg` missing or not allowed.
    Algorithm => "algorithm",
    /// `typ` missing or not `JWT`.
    Type => "type",
    /// Header fields IoT Core ignores.
    ExtraHeader => "extra-header",
    /// A required claim is absent.
    MissingClaim => "missing-claim",
    /// A claim has the wrong type.
    ClaimType => "claim-type",
    /// `iat`/`exp` sent as strings.
    StringDate => "string-date",
    /// Claims IoT Core ignores.
    ExtraClaim => "extra-claim",
    /// `aud` is not the project id.
    Audience => "audience",
    /// `exp` is too far in the past.
    Expired => "expired",
    /// `iat` is too far in the future.
    NotYetValid => "not-yet-valid",
    /// `exp − iat` is over 24 h or negative.
    Lifetime => "lifetime",
    /// The device clock was never set.
    ClockUnset => "clock-unset",
    /// An ES256 signature in DER form.
    DerSignature => "der-signature",
    /// A signature of the wrong size.
    SignatureLength => "signature-length",
    /// The key's type does not fit `alg`.
    KeyTypeMismatch => "key-type-mismatch",
    /// The signature verifies with a supplied key.
    SignatureVerified => "signature-verified",
    /// The signature does not verify with a supplied key.
    SignatureMismatch => "signature-mismatch",
    /// Evidence that the device signs with a key other than the one checked.
    WrongKey => "wrong-key",
    /// Evidence that the token was changed after signing.
    TokenDamaged => "token-damaged",
    /// The keys an ES256 signature can come from.
    RecoveredSigner => "recovered-signer",
    /// No key was given, so the signature was not checked.
    SignatureNotChecked => "signature-not-checked",
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing found in a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is about.
    pub code: FindingCode,
    /// How much it matters.
    pub severity: Severity,
    /// The part of the token it is in, if any.
    pub segment: Option<Segment>,
    /// Byte offset in the token as given, if it points somewhere.
    pub offset: Option<usize>,
    /// What is wrong, in plain language.
    pub message: String,
    /// How to fix it.
    pub fix: Option<String>,
}

/// The findings so far; every check appends to it, in token order.
pub(super) struct Report {
    pub(super) findings: Vec<Finding>,
}

impl Report {
    pub(super) fn new() -> Self {
        Report {
            findings: Vec::new(),
        }
    }

    /// Whether a finding with `code` was already made.
    pub(super) fn has(&self, code: FindingCode) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    pub(super) fn add(
        &mut self,
        code: FindingCode,
        severity: Severity,
        at: Option<(Segment, usize)>,
        message: String,
        fix: Option<&str>,
    ) {
        self.findings.push(Finding {
            code,
            severity,
            segment: at.map(|a| a.0),
            offset: at.map(|a| a.1),
            message,
            fix: fix.map(String::from),
        });
    }
}
