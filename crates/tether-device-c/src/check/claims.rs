//! The header (`alg`, `typ`) and the claims (`aud`, `iat`, `exp`) against IoT Core's
//! rules: the same checks, in the same order, as `tether jwt diagnose`.

use core::fmt;

use tether_jwt::time::{Span, Utc};
use tether_jwt::{Algorithm, DEFAULT_MAX_LIFETIME_SECS, DEFAULT_SKEW_SECS};

use super::json::{self, JsonStr, NotJson, Shape, Value};
use super::report::{Report, Severity};
use super::structure::SEGMENTS;
use crate::check::finding::tether_finding::*;

/// Before 2020-01-01: a device clock that was never set.
const CLOCK_UNSET_BEFORE: i64 = 1_577_836_800;
/// Extra member names listed in a finding.
const MAX_LISTED: usize = 6;

/// What the claims are checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect<'a> {
    pub(crate) project: Option<&'a str>,
    pub(crate) now: Option<i64>,
}

/// Names of members other than the known ones, shown comma-separated.
struct Extra<'a> {
    names: [Option<JsonStr<'a>>; MAX_LISTED],
    count: usize,
}

impl<'a> Extra<'a> {
    fn new() -> Self {
        Extra {
            names: [None; MAX_LISTED],
            count: 0,
        }
    }

    fn push(&mut self, name: JsonStr<'a>) {
        if let Some(slot) = self.names.get_mut(self.count) {
            *slot = Some(name);
        }
        self.count += 1;
    }
}

impl fmt::Display for Extra<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.names.iter().flatten().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{name}")?;
        }
        if self.count > MAX_LISTED {
            write!(f, " and {} more", self.count - MAX_LISTED)?;
        }
        Ok(())
    }
}

/// Visits the object in `bytes`, or reports why it is not one. `segment` is 0 or 1.
fn object<'a>(
    segment: usize,
    bytes: &'a [u8],
    base: usize,
    r: &mut Report<'_>,
    visit: impl FnMut(JsonStr<'a>, Value<'a>),
) -> bool {
    let name = SEGMENTS[segment];
    match json::members(bytes, visit) {
        Ok(Shape::Object) => true,
        Ok(Shape::Other(kind)) => {
            r.add(
                TETHER_FINDING_INVALID_JSON,
                Severity::Error,
                Some(base),
                format_args!("the decoded {name} is a JSON {kind}, not an object"),
            );
            false
        }
        Err(NotJson { at, what }) => {
            r.add(
                TETHER_FINDING_INVALID_JSON,
                Severity::Error,
                Some(base),
                format_args!("the decoded {name} is not valid JSON at byte {at}: {what}"),
            );
            false
        }
    }
}

/// Checks the header; returns its algorithm if allowed.
pub(crate) fn header(bytes: &[u8], base: usize, r: &mut Report<'_>) -> Option<Algorithm> {
    let (mut alg, mut typ, mut names) = (None, None, Extra::new());
    let ok = object(0, bytes, base, r, |k, v| match () {
        _ if k.eq("alg") => alg = Some(v),
        _ if k.eq("typ") => typ = Some(v),
        _ => names.push(k),
    });
    if !ok {
        return None;
    }
    let at = Some(base);
    let allowed = match alg {
        Some(Value::Str(s)) if s.eq("ES256") => Some(Algorithm::Es256),
        Some(Value::Str(s)) if s.eq("RS256") => Some(Algorithm::Rs256),
        _ => None,
    };
    if allowed.is_none() {
        match alg {
            None => r.add(
                TETHER_FINDING_ALGORITHM,
                Severity::Error,
                at,
                format_args!("the header has no alg: it must be \"ES256\" or \"RS256\""),
            ),
            Some(Value::Str(s)) => r.add(
                TETHER_FINDING_ALGORITHM,
                Severity::Error,
                at,
                format_args!("alg \"{s}\" is not allowed: use exactly \"ES256\" or \"RS256\""),
            ),
            Some(other) => r.add(
                TETHER_FINDING_ALGORITHM,
                Severity::Error,
                at,
                format_args!(
                    "alg is a JSON {}: it must be \"ES256\" or \"RS256\"",
                    other.kind()
                ),
            ),
        }
    }
    match typ {
        None => r.add(
            TETHER_FINDING_TYPE,
            Severity::Warning,
            at,
            format_args!("the header has no typ; add \"typ\":\"JWT\""),
        ),
        Some(Value::Str(t)) if t.chars().map(|c| c.to_ascii_uppercase()).eq("JWT".chars()) => {}
        Some(_) => r.add(
            TETHER_FINDING_TYPE,
            Severity::Warning,
            at,
            format_args!("the header typ is not \"JWT\""),
        ),
    }
    if names.count > 0 {
        r.add(
            TETHER_FINDING_EXTRA_HEADER,
            Severity::Info,
            at,
            format_args!("header fields ignored by IoT Core: {names}"),
        );
    }
    allowed
}

/// A date claim as read: seconds, and whether it was a string.
#[derive(Debug, Clone, Copy)]
struct Date {
    secs: i64,
    from_string: bool,
}

/// Reads `iat`/`exp` as `tether_jwt::NumericDate::from_json` does.
fn date(v: &Value<'_>) -> Result<Date, &'static str> {
    match v {
        Value::Num(n) => {
            if let Ok(i) = n.parse::<i64>() {
                return Ok(Date {
                    secs: i,
                    from_string: false,
                });
            }
            match n.parse::<f64>() {
                Ok(f) if f.is_finite() && f.abs() < 1e15 => Ok(Date {
                    secs: f as i64,
                    from_string: false,
                }),
                _ => Err("the number is out of range for a date"),
            }
        }
        Value::Str(s) => match s.plain().map(str::trim).map(str::parse::<i64>) {
            Some(Ok(secs)) => Ok(Date {
                secs,
                from_string: true,
            }),
            _ => Err("the string is not a number of seconds since 1970"),
        },
        _ => Err("it is not a number of seconds since 1970"),
    }
}

/// Checks the claims against IoT Core's rules.
pub(crate) fn claims(bytes: &[u8], base: usize, expect: &Expect<'_>, r: &mut Report<'_>) {
    let (mut aud, mut iat, mut exp, mut extra) = (None, None, None, Extra::new());
    let ok = object(1, bytes, base, r, |k, v| match () {
        _ if k.eq("aud") => aud = Some(v),
        _ if k.eq("iat") => iat = Some(v),
        _ if k.eq("exp") => exp = Some(v),
        _ => extra.push(k),
    });
    if !ok {
        return;
    }
    let at = Some(base);
    match aud {
        None => r.add(
            TETHER_FINDING_MISSING_CLAIM,
            Severity::Error,
            at,
            format_args!("the claims have no aud: add the project id"),
        ),
        Some(Value::Str(a)) => {
            if let Some(project) = expect.project.filter(|p| !a.eq(p)) {
                r.add(
                    TETHER_FINDING_AUDIENCE,
                    Severity::Error,
                    at,
                    format_args!("aud is \"{a}\" but the project id is \"{project}\": set aud to the project id"),
                );
            }
        }
        Some(other) => r.add(
            TETHER_FINDING_CLAIM_TYPE,
            Severity::Error,
            at,
            format_args!(
                "aud is a JSON {}; it must be the project id as a string",
                other.kind()
            ),
        ),
    }
    let read = |name: &str, v: Option<Value<'_>>, r: &mut Report<'_>| match v.map(|v| date(&v)) {
        None => {
            r.add(
                TETHER_FINDING_MISSING_CLAIM,
                Severity::Error,
                at,
                format_args!("the claims have no {name}: add it, in seconds since 1970"),
            );
            None
        }
        Some(Err(why)) => {
            r.add(
                TETHER_FINDING_CLAIM_TYPE,
                Severity::Error,
                at,
                format_args!("{name} is invalid: {why}"),
            );
            None
        }
        Some(Ok(d)) => Some(d),
    };
    let iat = read("iat", iat, r);
    let exp = read("exp", exp, r);
    if let (Some(iat), Some(exp)) = (iat, exp) {
        dates(iat, exp, expect, at, r);
    }
    if extra.count > 0 {
        r.add(
            TETHER_FINDING_EXTRA_CLAIM,
            Severity::Info,
            at,
            format_args!("claims ignored by IoT Core: {extra}"),
        );
    }
}

/// Lifetime, clock and expiry rules.
fn dates(iat: Date, exp: Date, expect: &Expect<'_>, at: Option<usize>, r: &mut Report<'_>) {
    let (i, e, skew) = (iat.secs, exp.secs, DEFAULT_SKEW_SECS);
    if e <= i {
        r.add(
            TETHER_FINDING_LIFETIME,
            Severity::Error,
            at,
            format_args!(
                "exp {} is not after iat {}: set exp = iat + lifetime",
                Utc(e),
                Utc(i)
            ),
        );
    } else if e.saturating_sub(i) > DEFAULT_MAX_LIFETIME_SECS {
        r.add(
            TETHER_FINDING_LIFETIME,
            Severity::Error,
            at,
            format_args!(
                "the lifetime is {}; at most {} is accepted",
                Span(e.saturating_sub(i).unsigned_abs()),
                Span(DEFAULT_MAX_LIFETIME_SECS as u64)
            ),
        );
    }
    if let Some(now) = expect.now {
        if i > now.saturating_add(skew) {
            r.add(
                TETHER_FINDING_NOT_YET_VALID,
                Severity::Error,
                at,
                format_args!(
                    "iat {} is {} ahead of now {}: set the clock from SNTP",
                    Utc(i),
                    Span(i.saturating_sub(now).unsigned_abs()),
                    Utc(now)
                ),
            );
        }
        if e < now.saturating_sub(skew) {
            r.add(
                TETHER_FINDING_EXPIRED,
                Severity::Error,
                at,
                format_args!(
                    "the token expired at {} (now {}): mint a fresh one before each connection",
                    Utc(e),
                    Utc(now)
                ),
            );
        }
    }
    for (name, d) in [("iat", iat), ("exp", exp)] {
        if d.from_string {
            r.add(
                TETHER_FINDING_STRING_DATE,
                Severity::Warning,
                at,
                format_args!(
                    "{name} is a string; JWT dates are JSON numbers (strict servers refuse it)"
                ),
            );
        }
    }
    if i < CLOCK_UNSET_BEFORE {
        r.add(
            TETHER_FINDING_CLOCK_UNSET,
            Severity::Error,
            at,
            format_args!(
                "iat is {}: the device clock was never set; get the time from SNTP first",
                Utc(i)
            ),
        );
    }
    if let Some(now) = expect.now {
        let off = i.saturating_sub(now);
        let dist = off.unsigned_abs();
        if dist > 60 && dist <= skew.unsigned_abs() && e >= now.saturating_sub(skew) {
            let dir = if off > 0 { "ahead of" } else { "behind" };
            r.add(
                TETHER_FINDING_NOT_YET_VALID,
                Severity::Info,
                at,
                format_args!(
                    "iat is {} {dir} now (within the allowed {})",
                    Span(off.unsigned_abs()),
                    Span(skew as u64)
                ),
            );
        }
    }
}
