//! The token's outer form: what it is wrapped in, its three parts, and their base64url.

use tether_jwt::b64::{self, DecodeError};

use super::report::{Report, Severity};
use crate::check::finding::tether_finding::*;

/// The parts of a JWT, for messages.
pub(crate) const SEGMENTS: [&str; 3] = ["header", "claims", "signature"];

/// Strips what people wrap tokens in (whitespace, `Bearer `, quotes), reporting each;
/// returns the token's offset in `input` and the token.
pub(crate) fn unwrap<'a>(input: &'a [u8], r: &mut Report<'_>) -> (usize, &'a [u8]) {
    let mut start = 0;
    let mut t = input;
    let trimmed = t.trim_ascii();
    if trimmed.len() != t.len() {
        r.add(
            TETHER_FINDING_SURROUNDING_WHITESPACE,
            Severity::Error,
            None,
            format_args!(
                "the token has {} byte(s) of whitespace or line breaks around it; send it alone",
                t.len() - trimmed.len()
            ),
        );
        start += t.len() - t.trim_ascii_start().len();
        t = trimmed;
    }
    for prefix in [&b"Bearer "[..], b"bearer ", b"BEARER "] {
        if let Some(rest) = t.strip_prefix(prefix) {
            r.add(
                TETHER_FINDING_BEARER_PREFIX,
                Severity::Error,
                None,
                format_args!("the token starts with 'Bearer ': send only the eyJ... token"),
            );
            t = rest.trim_ascii_start();
            start += prefix.len() + rest.len() - t.len();
        }
    }
    for q in [b'"', b'\''] {
        if t.len() >= 2 && t[0] == q && t[t.len() - 1] == q {
            r.add(
                TETHER_FINDING_SURROUNDING_QUOTES,
                Severity::Error,
                None,
                format_args!("the token is wrapped in {} quotes; remove them", q as char),
            );
            start += 1;
            t = &t[1..t.len() - 1];
        }
    }
    (start, t)
}

/// Reports a token that does not have three parts.
pub(crate) fn segment_count(token: &[u8], parts: usize, r: &mut Report<'_>) {
    let hint = match parts {
        1 if token.starts_with(b"-----BEGIN") => "it looks like a PEM key, not a token",
        1 => "there is no '.' at all",
        2 => "the signature part is missing: cut off or never signed",
        5 => "five parts is an encrypted JWE; IoT Core expects a signed JWS",
        _ => "extra '.' characters: two tokens joined, or trailing data",
    };
    r.add(
        TETHER_FINDING_SEGMENT_COUNT,
        Severity::Error,
        None,
        format_args!("a JWT has 3 parts header.claims.signature; this has {parts}: {hint}"),
    );
}

/// Decodes one part into `out`, reporting base64 problems; `base` is its offset.
pub(crate) fn decode<'o>(
    segment: usize,
    text: &[u8],
    base: usize,
    strict: bool,
    out: &'o mut [u8],
    r: &mut Report<'_>,
) -> Option<&'o [u8]> {
    let name = SEGMENTS[segment];
    if text.is_empty() {
        r.add(
            TETHER_FINDING_INVALID_BASE64,
            Severity::Error,
            Some(base),
            format_args!("the {name} part is empty: the token is truncated or unsigned"),
        );
        return None;
    }
    let (n, quirks) = match b64::decode_into(text, out) {
        Ok(ok) => ok,
        Err(e) => {
            let (offset, why) = match e {
                DecodeError::InvalidByte { offset, byte } if byte.is_ascii_whitespace() => (
                    offset,
                    "whitespace inside the token (a wrapped or copied token)",
                ),
                DecodeError::InvalidByte { offset, .. } => (offset, "a byte outside base64url"),
                DecodeError::PaddingNotAtEnd { offset } => (offset, "'=' before the end"),
                _ => (
                    text.len(),
                    "a truncated part (check the token buffer's size)",
                ),
            };
            r.add(
                TETHER_FINDING_INVALID_BASE64,
                Severity::Error,
                Some(base + offset),
                format_args!("the {name} is not base64url: {why}"),
            );
            return None;
        }
    };
    let (sev, accepted) = if strict {
        (Severity::Error, "refused by the strict policy")
    } else {
        (
            Severity::Warning,
            "accepted as IoT Core did; strict servers refuse it",
        )
    };
    if let Some(o) = quirks.padding_at {
        r.add(
            TETHER_FINDING_BASE64_PADDING,
            sev,
            Some(base + o),
            format_args!("the {name} ends with '=' padding ({accepted}); drop it"),
        );
    }
    if let Some(o) = quirks.standard_alphabet_at {
        r.add(
            TETHER_FINDING_BASE64_STANDARD_ALPHABET,
            sev,
            Some(base + o),
            format_args!("the {name} uses '+' or '/' ({accepted}); use '-' and '_'"),
        );
    }
    if let Some(o) = quirks.nonzero_trailing_bits_at {
        r.add(
            TETHER_FINDING_BASE64_NONCANONICAL_BITS,
            sev,
            Some(base + o),
            format_args!("the {name}'s last character has non-zero padding bits ({accepted})"),
        );
    }
    Some(&out[..n])
}
