//! The header and the claims against IoT Core's rules. The rules themselves are
//! [`mod@crate::verify`]'s (`claim_problems`), so a diagnosis and a refusal never
//! disagree; this module adds the fix for each problem and the hints a server has no
//! use for (string dates, an unset device clock, skew inside the allowance, ignored
//! fields).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use super::Context;
use super::finding::{FindingCode, Report, Severity};
use crate::time::{Span, Utc};
use crate::token::{json_kind, truncate};
use crate::verify::claim_problems;
use crate::{Algorithm, Refusal, Rules, Segment};

pub(super) fn check_header(
    header: &Map<String, Value>,
    base: usize,
    r: &mut Report,
) -> Option<Algorithm> {
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

pub(super) fn check_claims(
    claims: &Map<String, Value>,
    ctx: &Context<'_>,
    base: usize,
    r: &mut Report,
) {
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
