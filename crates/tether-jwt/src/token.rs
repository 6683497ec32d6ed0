//! A compact JWS taken apart, before any rule is applied: the three base64url
//! segments decoded, header and claims parsed as JSON objects, and the signing input
//! kept exactly as sent.
//!
//! Parsing is lenient where IoT Core was: `=` padding, the standard alphabet and
//! non-zero trailing bits are decoded and reported as [`EncodingWarning`]s with their
//! offset in the token, for the [`crate::EncodingPolicy`] to refuse or accept. What
//! cannot be decoded is a [`TokenError`] that names the segment (and, for base64,
//! the offset).
//! [`NumericDate`] reads `iat`/`exp` as IoT Core did, numbers or strings of digits.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde_json::{Map, Value};

use crate::Algorithm;
use crate::b64::{self, DecodeError, Quirks};

/// The three parts of a compact JWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    /// The JOSE header (first part).
    Header,
    /// The claims (second part).
    Claims,
    /// The signature (third part).
    Signature,
}

impl Segment {
    /// `header`, `claims` or `signature`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Segment::Header => "header",
            Segment::Claims => "claims",
            Segment::Signature => "signature",
        }
    }

    const ALL: [Segment; 3] = [Segment::Header, Segment::Claims, Segment::Signature];
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something accepted that strict JWT verifiers reject.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodingWarning {
    /// `=` padding in a segment.
    Padding {
        /// Where.
        segment: Segment,
        /// Offset of the first `=` in the whole token.
        offset: usize,
    },
    /// `+` or `/` (standard base64) in a segment.
    StandardAlphabet {
        /// Where.
        segment: Segment,
        /// Offset of the first such character in the whole token.
        offset: usize,
    },
    /// The last character of a segment has non-zero unused bits.
    NonCanonicalBits {
        /// Where.
        segment: Segment,
        /// Offset of that character in the whole token.
        offset: usize,
    },
    /// `iat` or `exp` sent as a JSON string (as Google's C samples did).
    StringNumericDate {
        /// `iat` or `exp`.
        claim: &'static str,
    },
}

impl EncodingWarning {
    /// Whether this is a base64 quirk (refused by the strict policy).
    pub fn is_base64(&self) -> bool {
        !matches!(self, EncodingWarning::StringNumericDate { .. })
    }
}

impl fmt::Display for EncodingWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodingWarning::Padding { segment, offset } => write!(
                f,
                "non-canonical encoding accepted: '=' padding in the {segment} at offset \
                 {offset}; base64url in JWTs has no padding (strip trailing '=')"
            ),
            EncodingWarning::StandardAlphabet { segment, offset } => write!(
                f,
                "non-canonical encoding accepted: standard base64 character in the {segment} \
                 at offset {offset}; JWTs use base64url ('-' for '+', '_' for '/')"
            ),
            EncodingWarning::NonCanonicalBits { segment, offset } => write!(
                f,
                "non-canonical encoding accepted: the last character of the {segment} \
                 (offset {offset}) has non-zero padding bits"
            ),
            EncodingWarning::StringNumericDate { claim } => write!(
                f,
                "`{claim}` is a string; JWT numeric dates are JSON numbers (accepted as IoT \
                 Core did; strict JWT libraries refuse it)"
            ),
        }
    }
}

/// Why a string is not a compact JWS with JSON header and claims.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Nothing was given.
    Empty,
    /// Not three dot-separated parts.
    SegmentCount {
        /// How many were found.
        found: usize,
    },
    /// A segment is empty.
    EmptySegment {
        /// Which.
        segment: Segment,
    },
    /// A segment is not base64.
    Base64 {
        /// Which.
        segment: Segment,
        /// Offset of the problem in the whole token.
        offset: usize,
        /// What is wrong.
        error: DecodeError,
    },
    /// The header or claims are not JSON objects.
    Json {
        /// Which.
        segment: Segment,
        /// The parser's message, with line and column in the decoded JSON.
        error: String,
    },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Empty => f.write_str("the token is empty"),
            TokenError::SegmentCount { found } => write!(
                f,
                "a JWT has 3 parts separated by '.', this has {found} (header.claims.signature)"
            ),
            TokenError::EmptySegment { segment } => write!(f, "the {segment} part is empty"),
            TokenError::Base64 {
                segment,
                offset,
                error,
            } => {
                write!(
                    f,
                    "the {segment} is not base64url (token offset {offset}): {error}"
                )
            }
            TokenError::Json { segment, error } => {
                write!(f, "the decoded {segment} is not a JSON object: {error}")
            }
        }
    }
}

impl core::error::Error for TokenError {}

/// A compact JWS split, decoded and parsed, not yet checked.
#[derive(Debug, Clone)]
pub struct Token<'a> {
    /// The bytes the signature covers: `header.claims` exactly as sent.
    pub signing_input: &'a str,
    /// The decoded header object.
    pub header: Map<String, Value>,
    /// The decoded claims object.
    pub claims: Map<String, Value>,
    /// The decoded signature.
    pub signature: Vec<u8>,
    /// Offset of each segment in the token, in [`Segment`] order.
    pub offsets: [usize; 3],
    /// Base64 quirks accepted while decoding.
    pub warnings: Vec<EncodingWarning>,
}

impl<'a> Token<'a> {
    /// Splits and decodes a compact JWS, accepting padding and the standard alphabet
    /// (reported in `warnings`).
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [h, c, s] = parts[..] else {
            return Err(TokenError::SegmentCount { found: parts.len() });
        };
        let offsets = [0, h.len() + 1, h.len() + c.len() + 2];
        let mut warnings = Vec::new();
        let mut decoded: [Vec<u8>; 3] = Default::default();
        for (i, (segment, text)) in Segment::ALL.into_iter().zip([h, c, s]).enumerate() {
            if text.is_empty() {
                return Err(TokenError::EmptySegment { segment });
            }
            let (bytes, quirks) = b64::decode(text.as_bytes()).map_err(|error| {
                let rel = match error {
                    DecodeError::InvalidByte { offset, .. }
                    | DecodeError::PaddingNotAtEnd { offset } => offset,
                    _ => text.len(),
                };
                TokenError::Base64 {
                    segment,
                    offset: offsets[i] + rel,
                    error,
                }
            })?;
            push_quirks(&mut warnings, segment, offsets[i], quirks);
            decoded[i] = bytes;
        }
        let [header, claims, signature] = decoded;
        Ok(Token {
            signing_input: &token[..h.len() + 1 + c.len()],
            header: json_object(Segment::Header, &header)?,
            claims: json_object(Segment::Claims, &claims)?,
            signature,
            offsets,
            warnings,
        })
    }

    /// The header's `alg` string, if it is one.
    pub fn alg_name(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// The header's algorithm if it is ES256 or RS256.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg_name().and_then(Algorithm::from_name)
    }
}

fn push_quirks(out: &mut Vec<EncodingWarning>, segment: Segment, base: usize, q: Quirks) {
    if let Some(o) = q.padding_at {
        out.push(EncodingWarning::Padding {
            segment,
            offset: base + o,
        });
    }
    if let Some(o) = q.standard_alphabet_at {
        out.push(EncodingWarning::StandardAlphabet {
            segment,
            offset: base + o,
        });
    }
    if let Some(o) = q.nonzero_trailing_bits_at {
        out.push(EncodingWarning::NonCanonicalBits {
            segment,
            offset: base + o,
        });
    }
}

fn json_object(segment: Segment, bytes: &[u8]) -> Result<Map<String, Value>, TokenError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(TokenError::Json {
            segment,
            error: alloc::format!("found a JSON {}, not an object", json_kind(&other)),
        }),
        Err(e) => Err(TokenError::Json {
            segment,
            error: e.to_string(),
        }),
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A JWT NumericDate as IoT Core read it: a JSON number, or a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumericDate {
    /// Seconds since the epoch (fractions truncated).
    pub secs: i64,
    /// It was sent as a string.
    pub from_string: bool,
}

impl NumericDate {
    /// Reads a claim value; `Err` says what type was found.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(NumericDate {
                        secs: i,
                        from_string: false,
                    })
                } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15) {
                    Ok(NumericDate {
                        secs: f as i64,
                        from_string: false,
                    })
                } else {
                    Err(alloc::format!("{n} is out of range for a date"))
                }
            }
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(secs) if !s.trim().is_empty() => Ok(NumericDate {
                    secs,
                    from_string: true,
                }),
                _ => Err(alloc::format!(
                    "the string \"{}\" is not a number of seconds since 1970",
                    truncate(s, 40)
                )),
            },
            other => Err(alloc::format!("a JSON {} is not a date", json_kind(other))),
        }
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
