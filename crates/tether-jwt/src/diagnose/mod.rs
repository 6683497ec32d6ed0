//! Everything wrong with a token, each with where it is, why it matters and the fix.
//!
//! [`crate::verify()`] stops at the first problem, as a server must; [`diagnose`] keeps
//! going so a firmware engineer sees every mistake at once, and uses every piece of
//! evidence to tell a wrongly registered key from a damaged token: another supplied
//! key that verifies, the RSA signature's padding opened with each public key, the
//! ES256 public keys recoverable from the signature.
//!
//! One pipeline; each stage appends [`Finding`]s to a shared report, in token order:
//!
//! ```text
//!  input ─▶ envelope ──────────▶ claims ─────────────▶ signature ────────────▶ Diagnosis
//!           wrapping, 3 parts,    header: alg, typ      every key, and why not
//!           base64url, JSON       claims: aud, times    (with key_recovery)
//! ```
//!
//! `finding` holds the vocabulary. [`FindingCode`] names are a stable contract for
//! scripts: codes are added, never renamed or removed.

mod claims;
mod envelope;
mod finding;
mod key_recovery;
mod signature;

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

pub use finding::{Finding, FindingCode, Severity};
#[cfg(feature = "p256")]
pub use key_recovery::{es256_signers, token_es256_signers};

use claims::{check_claims, check_header};
use envelope::{decode_segment, json, segment_count, unwrap_token};
use finding::Report;
use signature::{Evidence, check_signature};

use crate::{
    Algorithm, DEFAULT_MAX_LIFETIME_SECS, DEFAULT_SKEW_SECS, EncodingPolicy, PublicKey, Segment,
};

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

/// Examines a token as a device sent it and reports every problem found.
pub fn diagnose(input: &str, ctx: &Context<'_>) -> Diagnosis {
    let mut r = Report::new();
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
    let structure_damaged = r.has(FindingCode::InvalidBase64);
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
    let json_damaged = r.has(FindingCode::InvalidJson);
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
