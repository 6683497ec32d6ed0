//! The token's envelope, before any rule about its contents: what it was wrapped in
//! (whitespace, quotes, `Bearer `), its three parts, their base64url and their JSON.
//! Offsets in findings point into the token as given, wrapping included.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use super::finding::{FindingCode, Report, Severity};
use crate::b64::{self, DecodeError};
use crate::token::json_kind;
use crate::{EncodingPolicy, Segment};

/// Strips what people wrap tokens in; returns the token's offset and the token.
pub(super) fn unwrap_token<'a>(input: &'a str, r: &mut Report) -> (usize, &'a str) {
    let mut start = 0;
    let mut t = input;
    let trimmed = t.trim();
    if trimmed.len() != t.len() {
        let lead = t.len() - t.trim_start().len();
        r.add(
            FindingCode::SurroundingWhitespace,
            Severity::Error,
            None,
            format!(
                "the token has {} byte(s) of whitespace or line breaks around it",
                t.len() - trimmed.len()
            ),
            Some("send the token alone: strip spaces and the trailing newline (e.g. from a file or `echo`)"),
        );
        start += lead;
        t = trimmed;
    }
    for prefix in ["Bearer ", "bearer ", "BEARER "] {
        if let Some(rest) = t.strip_prefix(prefix) {
            r.add(
                FindingCode::BearerPrefix,
                Severity::Error,
                None,
                "the token starts with 'Bearer ': that belongs in an HTTP authorization \
                 header, not in the token or the MQTT password"
                    .into(),
                Some("send only the eyJ... token as the MQTT password"),
            );
            start += prefix.len();
            t = rest.trim_start();
            start += rest.len() - t.len();
        }
    }
    for q in ['"', '\''] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            r.add(
                FindingCode::SurroundingQuotes,
                Severity::Error,
                None,
                format!("the token is wrapped in {q} quotes"),
                Some("remove the quotes; they are part of the JSON or shell text around the token, not of the token"),
            );
            start += 1;
            t = &t[1..t.len() - 1];
        }
    }
    (start, t)
}

pub(super) fn segment_count(parts: &[&str], r: &mut Report) {
    let n = parts.len();
    let hint = match n {
        1 if parts[0].starts_with("-----BEGIN") => {
            " It looks like a PEM key or certificate, not a token: mint one with `tether jwt mint`."
        }
        1 => " There is no '.' at all: this is not a JWT.",
        2 => " The signature part is missing: the token was cut off or never signed.",
        5 => " Five parts is an encrypted JWE; IoT Core expects a signed JWS.",
        _ => " Extra '.' characters: two tokens joined together, or a damaged token?",
    };
    r.add(
        FindingCode::SegmentCount,
        Severity::Error,
        None,
        format!(
            "a JWT has 3 parts separated by '.' (header.claims.signature); this has {n}.{hint}"
        ),
        Some("send the complete token: base64url(header).base64url(claims).base64url(signature)"),
    );
}

pub(super) fn decode_segment(
    segment: Segment,
    text: &str,
    base: usize,
    policy: EncodingPolicy,
    r: &mut Report,
) -> Option<Vec<u8>> {
    if text.is_empty() {
        r.add(
            FindingCode::InvalidBase64,
            Severity::Error,
            Some((segment, base)),
            format!("the {segment} part is empty"),
            Some("every part of a JWT must be present; the token is truncated or was never signed"),
        );
        return None;
    }
    let (bytes, quirks) = match b64::decode(text.as_bytes()) {
        Ok(ok) => ok,
        Err(e) => {
            let (offset, fix) = match e {
                DecodeError::InvalidByte { offset, byte } if byte.is_ascii_whitespace() => (
                    offset,
                    "remove line breaks and spaces inside the token (a wrapped or copied token)",
                ),
                DecodeError::InvalidByte { offset, .. } => (
                    offset,
                    "the token was damaged: mint it again and pass it through unchanged",
                ),
                DecodeError::PaddingNotAtEnd { offset } => (
                    offset,
                    "'=' may only end a segment; the token was damaged or joined wrongly",
                ),
                _ => (
                    text.len(),
                    "the segment is truncated: check the buffer size that holds the token",
                ),
            };
            r.add(
                FindingCode::InvalidBase64,
                Severity::Error,
                Some((segment, base + offset)),
                format!("the {segment} is not base64url: {e}"),
                Some(fix),
            );
            return None;
        }
    };
    let sev = match policy {
        EncodingPolicy::Strict => Severity::Error,
        EncodingPolicy::Lenient => Severity::Warning,
    };
    let accepted = match policy {
        EncodingPolicy::Strict => "refused by the strict policy",
        EncodingPolicy::Lenient => "accepted as IoT Core did, but strict servers refuse it",
    };
    if let Some(o) = quirks.padding_at {
        r.add(
            FindingCode::Padding,
            sev,
            Some((segment, base + o)),
            format!("the {segment} ends with '=' padding ({accepted})"),
            Some("use base64url without padding (RFC 7515 §2): drop the trailing '=' before joining the parts"),
        );
    }
    if let Some(o) = quirks.standard_alphabet_at {
        r.add(
            FindingCode::StandardAlphabet,
            sev,
            Some((segment, base + o)),
            format!("the {segment} uses the standard base64 alphabet ('+' or '/') ({accepted})"),
            Some("use the URL-safe alphabet: '-' instead of '+', '_' instead of '/'"),
        );
    }
    if let Some(o) = quirks.nonzero_trailing_bits_at {
        r.add(
            FindingCode::NonCanonicalBits,
            sev,
            Some((segment, base + o)),
            format!("the last character of the {segment} has non-zero padding bits ({accepted})"),
            Some("encode with a standard base64url encoder; a hand-written one mishandles the last group"),
        );
    }
    Some(bytes)
}

pub(super) fn json(
    segment: Segment,
    bytes: &[u8],
    base: usize,
    r: &mut Report,
) -> Option<Map<String, Value>> {
    let fix = match segment {
        Segment::Header => "the header must be {\"alg\":\"ES256\",\"typ\":\"JWT\"} (or RS256)",
        _ => {
            "the claims must be a JSON object like {\"iat\":1700000000,\"exp\":1700001200,\"aud\":\"my-project\"}"
        }
    };
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Some(map),
        Ok(other) => {
            r.add(
                FindingCode::InvalidJson,
                Severity::Error,
                Some((segment, base)),
                format!(
                    "the decoded {segment} is a JSON {}, not an object",
                    json_kind(&other)
                ),
                Some(fix),
            );
            None
        }
        Err(e) => {
            let at = byte_offset(bytes, e.line(), e.column());
            let snippet = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned();
            r.add(
                FindingCode::InvalidJson,
                Severity::Error,
                Some((segment, base)),
                format!(
                    "the decoded {segment} is not valid JSON at byte {at}: {e} (decoded text starts: {snippet:?})"
                ),
                Some(fix),
            );
            None
        }
    }
}

fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start = bytes
        .split(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum::<usize>();
    line_start + column.saturating_sub(1)
}
