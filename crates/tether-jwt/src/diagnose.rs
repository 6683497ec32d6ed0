//! Everything wrong with a token, each with where it is, why it matters and the fix.
//!
//! [`crate::verify`] stops at the first problem, as a server must; [`diagnose`] keeps
//! going so a firmware engineer sees every mistake at once, and uses every piece of
//! evidence to tell a wrongly registered key from a damaged token: another supplied
//! key that verifies, the RSA signature's padding opened with each public key, the
//! ES256 public keys recoverable from the signature.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};
use core::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::b64::{self, DecodeError};
use crate::ecdsa_der::{der_to_raw, is_der_signature};
use crate::time::{Span, Utc};
use crate::token::{json_kind, truncate};
use crate::verify::claim_problems;
use crate::{
    Algorithm, DEFAULT_MAX_LIFETIME_SECS, DEFAULT_SKEW_SECS, EncodingPolicy, PublicKey, Refusal,
    Rules, Segment, SignatureError, verify_signature,
};

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

/// What [`diagnose`] is told about the device and the server.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The expected project id (`aud`); unchecked if `None`.
    pub project: Option<&'a str>,
    /// The server's time; time rules unchecked if `None`.
    pub now: Option<i64>,
    /// Public keys to check the signature with (registered, or the device's own).
    pub keys: &'a [PublicKey],
    /// Allowed clock skew.
    pub skew_secs: i64,
    /// Longest allowed lifetime.
    pub max_lifetime_secs: i64,
    /// Base64 strictness.
    pub encoding: EncodingPolicy,
}

impl Default for Context<'_> {
    fn default() -> Self {
        Context {
            project: None,
            now: None,
            keys: &[],
            skew_secs: DEFAULT_SKEW_SECS,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
            encoding: EncodingPolicy::Lenient,
        }
    }
}

/// The result of [`diagnose`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// Every finding, in token order.
    pub findings: Vec<Finding>,
    /// The decoded header, if it is a JSON object.
    pub header: Option<Map<String, Value>>,
    /// The decoded claims, if they are a JSON object.
    pub claims: Option<Map<String, Value>>,
    /// The algorithm, if allowed.
    pub algorithm: Option<Algorithm>,
    /// Index into [`Context::keys`] of the first key that verified the signature.
    pub verified_with: Option<usize>,
}

impl Diagnosis {
    /// True when no finding is an error.
    pub fn is_valid(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Findings with a given code.
    pub fn with_code(&self, code: FindingCode) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.code == code)
    }
}

struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn add(
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

/// Examines a token as a device sent it and reports every problem found.
pub fn diagnose(input: &str, ctx: &Context<'_>) -> Diagnosis {
    let mut r = Report {
        findings: Vec::new(),
    };
    let mut d = Diagnosis {
        findings: Vec::new(),
        header: None,
        claims: None,
        algorithm: None,
        verified_with: None,
    };
    let (start, token) = unwrap_token(input, &mut r);
    if token.is_empty() {
        r.add(
            FindingCode::Empty,
            Severity::Error,
            None,
            "the token is empty".into(),
            None,
        );
        d.findings = r.findings;
        return d;
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        segment_count(&parts, &mut r);
        d.findings = r.findings;
        return d;
    }
    let offsets = [
        start,
        start + parts[0].len() + 1,
        start + parts[0].len() + parts[1].len() + 2,
    ];
    let segments = [Segment::Header, Segment::Claims, Segment::Signature];
    let mut decoded: [Option<Vec<u8>>; 3] = [None, None, None];
    for i in 0..3 {
        decoded[i] = decode_segment(segments[i], parts[i], offsets[i], ctx.encoding, &mut r);
    }
    let structure_damaged = r
        .findings
        .iter()
        .any(|f| f.code == FindingCode::InvalidBase64);
    d.header = decoded[0]
        .as_deref()
        .and_then(|h| json(Segment::Header, h, offsets[0], &mut r));
    d.claims = decoded[1]
        .as_deref()
        .and_then(|c| json(Segment::Claims, c, offsets[1], &mut r));
    if let Some(header) = &d.header {
        d.algorithm = check_header(header, offsets[0], &mut r);
    }
    if let Some(claims) = &d.claims {
        check_claims(claims, ctx, offsets[1], &mut r);
    }
    let json_damaged = r
        .findings
        .iter()
        .any(|f| f.code == FindingCode::InvalidJson);
    if let (Some(alg), Some(sig)) = (d.algorithm, &decoded[2]) {
        let signing_input = &token[..parts[0].len() + 1 + parts[1].len()];
        let evidence = Evidence {
            alg,
            signing_input: signing_input.as_bytes(),
            signature: sig,
            parts: [parts[0], parts[1]],
            sig_offset: offsets[2],
            damaged: structure_damaged || json_damaged,
        };
        d.verified_with = check_signature(&evidence, ctx.keys, &mut r);
    }
    d.findings = r.findings;
    d
}

/// Strips what people wrap tokens in; returns the token's offset and the token.
fn unwrap_token<'a>(input: &'a str, r: &mut Report) -> (usize, &'a str) {
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

fn segment_count(parts: &[&str], r: &mut Report) {
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

fn decode_segment(
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

fn json(segment: Segment, bytes: &[u8], base: usize, r: &mut Report) -> Option<Map<String, Value>> {
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

fn check_header(header: &Map<String, Value>, base: usize, r: &mut Report) -> Option<Algorithm> {
    let at = Some((Segment::Header, base));
    let alg = match header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name)
    {
        Some(alg) => Some(alg),
        None => {
            let alg = header.get("alg").map(|v| match v {
                Value::String(s) => String::from(truncate(s, 40)),
                other => format!("(a JSON {})", json_kind(other)),
            });
            let lower = alg.as_deref().map(str::to_ascii_uppercase);
            let fix = match (&alg, lower.as_deref()) {
                (Some(a), Some("ES256" | "RS256")) if a != "ES256" && a != "RS256" => {
                    "write the algorithm in upper case, exactly \"ES256\" or \"RS256\""
                }
                _ => {
                    "sign with the device's private key: ES256 for a P-256 key, RS256 for an RSA key"
                }
            };
            r.add(
                FindingCode::Algorithm,
                Severity::Error,
                at,
                Refusal::AlgorithmNotAllowed { alg }.to_string(),
                Some(fix),
            );
            None
        }
    };
    match header.get("typ") {
        None => r.add(
            FindingCode::Type,
            Severity::Warning,
            at,
            "the header has no `typ`; IoT Core documented {\"alg\":..,\"typ\":\"JWT\"} as required"
                .into(),
            Some("add \"typ\":\"JWT\" to the header"),
        ),
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(other) => r.add(
            FindingCode::Type,
            Severity::Warning,
            at,
            format!("the header `typ` is {other}, not \"JWT\""),
            Some("set \"typ\":\"JWT\""),
        ),
    }
    let extra: Vec<&str> = header
        .keys()
        .map(String::as_str)
        .filter(|k| !matches!(*k, "alg" | "typ"))
        .collect();
    if !extra.is_empty() {
        r.add(
            FindingCode::ExtraHeader,
            Severity::Info,
            at,
            format!("header fields ignored by IoT Core: {}", extra.join(", ")),
            None,
        );
    }
    alg
}

fn check_claims(claims: &Map<String, Value>, ctx: &Context<'_>, base: usize, r: &mut Report) {
    let at = Some((Segment::Claims, base));
    let aud_in_token = claims.get("aud").and_then(Value::as_str).unwrap_or("");
    let rules = Rules {
        project: ctx.project.unwrap_or(aud_in_token),
        now: ctx.now.unwrap_or(0),
        skew_secs: ctx.skew_secs,
        max_lifetime_secs: ctx.max_lifetime_secs,
        encoding: ctx.encoding,
    };
    let mut problems = Vec::new();
    let dates = claim_problems(claims, &rules, &mut problems);
    for p in problems {
        let (code, fix): (FindingCode, String) = match &p {
            Refusal::MissingClaim(c) => (
                FindingCode::MissingClaim,
                format!("add `{c}`: {}", claim_help(c)),
            ),
            Refusal::InvalidClaim { claim, .. } => {
                (FindingCode::ClaimType, format!("`{claim}` must be {}", claim_help(claim)))
            }
            Refusal::AudienceMismatch { expected, .. } => (
                FindingCode::Audience,
                format!(
                    "set aud to the project id \"{expected}\" (the id, not the project number or \
                     display name, and not the registry or device id)"
                ),
            ),
            Refusal::ExpiresBeforeIssued { .. } | Refusal::LifetimeTooLong { .. } => (
                FindingCode::Lifetime,
                "set exp = iat + the token lifetime: at most 24 h (Google's samples used 20 to 60 min)".into(),
            ),
            Refusal::IssuedInFuture { .. } if ctx.now.is_some() => (
                FindingCode::NotYetValid,
                "set the device clock from SNTP (or the server's time) before minting tokens".into(),
            ),
            Refusal::Expired { exp, now, skew, .. } if ctx.now.is_some() => (
                FindingCode::Expired,
                format!(
                    "mint a fresh token before each connection and refresh it before exp. If \
                     this token was minted just now, the device clock is behind by at least {}: \
                     set it from SNTP",
                    Span((now - skew - exp).unsigned_abs())
                ),
            ),
            _ => continue,
        };
        r.add(code, Severity::Error, at, p.to_string(), Some(&fix));
    }
    if let Some((iat, exp)) = dates {
        for (name, d) in [("iat", iat), ("exp", exp)] {
            if d.from_string {
                r.add(
                    FindingCode::StringDate,
                    Severity::Warning,
                    at,
                    format!(
                        "`{name}` is the string \"{}\"; JWT dates are JSON numbers (accepted as IoT \
                         Core accepted Google's C samples, but strict libraries refuse it)",
                        d.secs
                    ),
                    Some("write iat and exp as numbers, without quotes"),
                );
            }
        }
        if iat.secs < 1_577_836_800 {
            r.add(
                FindingCode::ClockUnset,
                Severity::Error,
                at,
                format!(
                    "`iat` is {}: the device clock was never set (it counts from its power-on default)",
                    Utc(iat.secs)
                ),
                Some("get the time from SNTP (or the server's Date header) before minting the first token"),
            );
        }
        if let Some(now) = ctx.now {
            let off = iat.secs - now;
            if off.abs() > 60 && off.abs() <= ctx.skew_secs && exp.secs >= now - ctx.skew_secs {
                r.add(
                    FindingCode::NotYetValid,
                    Severity::Info,
                    at,
                    format!(
                        "`iat` {} is {} {} the server time {} (within the allowed {})",
                        Utc(iat.secs),
                        Span(off.unsigned_abs()),
                        if off > 0 { "ahead of" } else { "behind" },
                        Utc(now),
                        Span(ctx.skew_secs.unsigned_abs())
                    ),
                    None,
                );
            }
        }
    }
    let extra: Vec<&str> = claims
        .keys()
        .map(String::as_str)
        .filter(|k| !matches!(*k, "iat" | "exp" | "aud"))
        .collect();
    if !extra.is_empty() {
        r.add(
            FindingCode::ExtraClaim,
            Severity::Info,
            at,
            format!("claims ignored by IoT Core: {}", extra.join(", ")),
            None,
        );
    }
}

fn claim_help(claim: &str) -> &'static str {
    match claim {
        "aud" => "the project id as a string",
        "iat" => "the time the token was made, in seconds since 1970 (a JSON number)",
        _ => {
            "when the token expires, in seconds since 1970 (a JSON number, at most 24 h after iat)"
        }
    }
}

struct Evidence<'a> {
    alg: Algorithm,
    signing_input: &'a [u8],
    signature: &'a [u8],
    parts: [&'a str; 2],
    sig_offset: usize,
    damaged: bool,
}

fn check_signature(e: &Evidence<'_>, keys: &[PublicKey], r: &mut Report) -> Option<usize> {
    let at = Some((Segment::Signature, e.sig_offset));
    let mut signature: Vec<u8> = e.signature.to_vec();
    let mut length_ok = true;
    if e.alg == Algorithm::Es256 && signature.len() != 64 {
        let mut raw = [0u8; 64];
        if is_der_signature(&signature) && der_to_raw(&signature, &mut raw).is_ok() {
            r.add(
                FindingCode::DerSignature,
                Severity::Error,
                at,
                format!(
                    "the ES256 signature is a {}-byte DER ECDSA-Sig-Value (starts 0x30); JWS \
                     needs the raw 64-byte r||s",
                    signature.len()
                ),
                Some("convert the signature from DER to r||s before base64url-encoding it (mbedtls_ecdsa_write_signature, OpenSSL and most secure elements return DER); tether_jwt::ecdsa_der::der_to_raw does it"),
            );
            signature = raw.to_vec();
        } else {
            r.add(
                FindingCode::SignatureLength,
                Severity::Error,
                at,
                format!("the ES256 signature is {} bytes; it must be 64 (r||s)", signature.len()),
                Some("the signature was truncated or mangled (e.g. treated as a C string with a 0 byte); encode all 64 bytes"),
            );
            length_ok = false;
        }
    }
    if keys.is_empty() {
        r.add(
            FindingCode::SignatureNotChecked,
            Severity::Info,
            at,
            "no public key given, so the signature was not checked".into(),
            Some("pass the registered public key or certificate (--key) to check it"),
        );
        if e.alg == Algorithm::Es256 && length_ok {
            recovered_signers(e.signing_input, &signature, r, at);
        }
        return None;
    }
    let mut verified = None;
    let mut failed = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match verify_signature(e.alg, key, e.signing_input, &signature) {
            Ok(()) => {
                if verified.is_none() {
                    verified = Some(i);
                }
                let how = if signature.len() == e.signature.len() { "" } else { " after DER→r||s conversion" };
                r.add(
                    FindingCode::SignatureVerified,
                    Severity::Info,
                    at,
                    format!("the signature verifies{how} with key #{} ({})", i + 1, key.fingerprint()),
                    None,
                );
            }
            Err(SignatureError::KeyTypeMismatch { alg, key: kt }) => r.add(
                FindingCode::KeyTypeMismatch,
                Severity::Error,
                Some((Segment::Header, 0)),
                format!(
                    "the token says alg {alg} but key #{} is an {kt} key ({}): {alg} needs an {} key",
                    i + 1,
                    key.fingerprint(),
                    alg.key_type()
                ),
                Some(&format!(
                    "make the header's alg match the device's key: {} for this key",
                    kt.algorithm()
                )),
            ),
            Err(SignatureError::WrongLength { expected, found }) => {
                r.add(
                    FindingCode::SignatureLength,
                    Severity::Error,
                    at,
                    format!(
                        "the signature is {found} bytes but key #{} (RSA {} bits) makes {expected}-byte signatures",
                        i + 1,
                        key.rsa_bits()
                    ),
                    Some("the token was truncated, or it was signed with a different RSA key size"),
                );
                failed.push(i);
            }
            Err(SignatureError::Unsupported(why)) => r.add(
                FindingCode::SignatureMismatch,
                Severity::Error,
                at,
                format!("key #{} ({}) cannot be used: {why}", i + 1, key.fingerprint()),
                Some("register an RSA key of at least 2048 bits or a P-256 key"),
            ),
            Err(SignatureError::Mismatch) => {
                r.add(
                    FindingCode::SignatureMismatch,
                    Severity::Error,
                    at,
                    format!(
                        "the signature does not verify with key #{} ({})",
                        i + 1,
                        key.fingerprint()
                    ),
                    None,
                );
                failed.push(i);
            }
        }
    }
    if let Some(good) = verified {
        for &i in &failed {
            r.add(
                FindingCode::WrongKey,
                Severity::Error,
                at,
                format!(
                    "the token was signed with the private key of key #{} ({}), not of key #{} ({})",
                    good + 1,
                    keys[good].fingerprint(),
                    i + 1,
                    keys[i].fingerprint()
                ),
                Some(&format!(
                    "if key #{} is what the server has registered, register key #{} instead (or give the device the private key of #{})",
                    i + 1,
                    good + 1,
                    i + 1
                )),
            );
        }
        return verified;
    }
    if failed.is_empty() {
        return None;
    }
    explain_mismatch(e, keys, &failed, &signature, r, at);
    None
}

/// Works out, for signatures that verify with no key, whether the key or the token
/// is wrong.
fn explain_mismatch(
    e: &Evidence<'_>,
    keys: &[PublicKey],
    failed: &[usize],
    signature: &[u8],
    r: &mut Report,
    at: Option<(Segment, usize)>,
) {
    if e.damaged {
        r.add(
            FindingCode::TokenDamaged,
            Severity::Error,
            at,
            "the token is damaged (see the base64/JSON findings above), so no signature can verify"
                .into(),
            Some("pass the token through unchanged: no re-encoding, truncation or line wrapping"),
        );
        return;
    }
    if let Some(key) = canonical_reencoding_verifies(e, keys, failed, signature) {
        r.add(
            FindingCode::TokenDamaged,
            Severity::Error,
            at,
            format!(
                "the signature verifies with key #{} ({}) over the canonical base64url of the \
                 header and claims, but the token was sent with a different encoding: it was \
                 re-encoded after signing",
                key + 1,
                keys[key].fingerprint()
            ),
            Some("sign exactly the bytes you send: encode header and claims as unpadded base64url first, then sign `header.claims`"),
        );
        return;
    }
    let hash: [u8; 32] = Sha256::digest(e.signing_input).into();
    for &i in failed {
        let key = &keys[i];
        if e.alg != Algorithm::Rs256 || signature.len() * 8 < key.rsa_bits() as usize {
            continue;
        }
        match open_rsa_signature(key, signature) {
            Some(Opened::Sha256(h)) if h != hash => r.add(
                FindingCode::TokenDamaged,
                Severity::Error,
                at,
                format!(
                    "the signature was made with key #{} ({}) but over different bytes: the \
                     header or claims were changed after signing",
                    i + 1,
                    key.fingerprint()
                ),
                Some("sign the exact `header.claims` string that is sent, and do not edit or re-serialise the token afterwards"),
            ),
            Some(Opened::Sha256(_)) => {}
            Some(Opened::OtherHash(name)) => r.add(
                FindingCode::TokenDamaged,
                Severity::Error,
                at,
                format!(
                    "the signature was made with key #{} ({}) but with {name}, while alg says \
                     RS256 (SHA-256)",
                    i + 1,
                    key.fingerprint()
                ),
                Some("sign with RSASSA-PKCS1-v1_5 and SHA-256 (RS256)"),
            ),
            None => r.add(
                FindingCode::WrongKey,
                Severity::Error,
                at,
                format!(
                    "the signature was not made with key #{} ({}): it opens to garbage under \
                     that public key, so the device signs with a different private key",
                    i + 1,
                    key.fingerprint()
                ),
                Some("register the public key that matches the device's private key (`tether keys inspect` shows both fingerprints), or give the device the private key of the registered one"),
            ),
        }
    }
    if e.alg == Algorithm::Es256 {
        r.add(
            FindingCode::WrongKey,
            Severity::Error,
            at,
            "the ES256 signature verifies with none of the given keys: most often the device \
             holds a different private key than the one registered; less often the token \
             was altered after signing"
                .into(),
            Some("compare fingerprints: `tether keys inspect <device private key>` must show one of the keys above; the recovered signer fingerprints below tell which key made this signature"),
        );
        recovered_signers(e.signing_input, signature, r, at);
    }
}

fn canonical_reencoding_verifies(
    e: &Evidence<'_>,
    keys: &[PublicKey],
    failed: &[usize],
    signature: &[u8],
) -> Option<usize> {
    let (h, hq) = b64::decode(e.parts[0].as_bytes()).ok()?;
    let (c, cq) = b64::decode(e.parts[1].as_bytes()).ok()?;
    if hq.is_canonical() && cq.is_canonical() {
        return None;
    }
    let canonical = format!("{}.{}", b64::encode(&h), b64::encode(&c));
    failed
        .iter()
        .copied()
        .find(|&i| verify_signature(e.alg, &keys[i], canonical.as_bytes(), signature).is_ok())
}

enum Opened {
    Sha256([u8; 32]),
    OtherHash(&'static str),
}

/// Applies an RSA public key to a signature (s^e mod n) and reads the PKCS#1 v1.5
/// block. `None` when the block is not valid padding: the key did not make it.
fn open_rsa_signature(key: &PublicKey, signature: &[u8]) -> Option<Opened> {
    use num_bigint::BigUint;
    let (n, e) = key.rsa_components()?;
    let n = BigUint::from_bytes_be(n);
    let s = BigUint::from_bytes_be(signature);
    if s >= n {
        return None;
    }
    let m = s.modpow(&BigUint::from_bytes_be(e), &n).to_bytes_be();
    let k = signature.len();
    let mut em = vec![0u8; k.saturating_sub(m.len())];
    em.extend_from_slice(&m);
    if em.len() != k || em[0] != 0 || em[1] != 1 {
        return None;
    }
    let ff = em[2..].iter().take_while(|&&b| b == 0xff).count();
    if ff < 8 || em.get(2 + ff) != Some(&0) {
        return None;
    }
    let t = &em[3 + ff..];
    const SHA256: &[u8] = &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    const OTHERS: &[(&[u8], &str)] = &[
        (
            &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a,
            ],
            "SHA-1",
        ),
        (
            &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02,
            ],
            "SHA-384 (RS384)",
        ),
        (
            &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03,
            ],
            "SHA-512 (RS512)",
        ),
    ];
    if let Some(h) = t.strip_prefix(SHA256) {
        return h.try_into().ok().map(Opened::Sha256);
    }
    OTHERS
        .iter()
        .find(|(p, _)| t.starts_with(p))
        .map(|(_, name)| Opened::OtherHash(name))
}

#[cfg(feature = "p256")]
fn recovered_signers(
    message: &[u8],
    signature: &[u8],
    r: &mut Report,
    at: Option<(Segment, usize)>,
) {
    use p256::ecdsa::{RecoveryId, Signature, VerifyingKey};
    let Ok(sig) = Signature::from_slice(signature) else {
        return;
    };
    let prehash = Sha256::digest(message);
    let fps: Vec<String> = [false, true]
        .into_iter()
        .filter_map(|odd| {
            VerifyingKey::recover_from_prehash(&prehash, &sig, RecoveryId::new(odd, false)).ok()
        })
        .filter_map(|vk| PublicKey::from_p256_point(vk.to_sec1_point(false).as_bytes()).ok())
        .map(|k| k.fingerprint().to_string())
        .collect();
    if fps.is_empty() {
        return;
    }
    r.add(
        FindingCode::RecoveredSigner,
        Severity::Info,
        at,
        format!(
            "if the token is intact, it was signed by the private key of one of these public \
             keys: {}",
            fps.join(" or ")
        ),
        Some("run `tether keys inspect` on the device's key: if its fingerprint is listed, the server has a different key registered"),
    );
}

#[cfg(not(feature = "p256"))]
fn recovered_signers(_: &[u8], _: &[u8], _: &mut Report, _: Option<(Segment, usize)>) {}
