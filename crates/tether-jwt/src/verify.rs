//! The server's check of a device token: IoT Core's rules, stopping at the first
//! failure.
//!
//! [`verify`] applies them in the order a device engineer would fix them: structure
//! and base64 ([`Token::parse`]; quirks refused or only reported, by
//! [`EncodingPolicy`]), then `alg` (ES256 or RS256), then the claims (`aud`, then
//! `iat`/`exp` against the `now` in [`Rules`], with skew and maximum lifetime), and
//! the signature last, tried with each unexpired [`Credential`] whose key type fits.
//! The answer is [`Verified`] (which credential, what was accepted leniently) or a
//! [`Refusal`] whose message says what to fix and never quotes the token.
//! [`mod@crate::diagnose`] runs the same claim rules (`claim_problems`), so a diagnosis
//! and a refusal never disagree.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde_json::{Map, Value};

use crate::ecdsa_der::is_der_signature;
use crate::time::{Span, Utc};
use crate::token::{json_kind, truncate};
use crate::{
    Algorithm, EncodingPolicy, EncodingWarning, NumericDate, PublicKey, Rules, SignatureError,
    Token, TokenError, verify_signature,
};

/// Before this time (2020-01-01) an `iat` means the device clock was never set.
const CLOCK_UNSET_BEFORE: i64 = 1_577_836_800;

/// A registered device key and when it stops being accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The public key.
    pub key: PublicKey,
    /// Seconds since the epoch after which the key is ignored; `None` for never.
    pub expires_at: Option<i64>,
}

impl Credential {
    /// A credential that never expires.
    pub fn new(key: PublicKey) -> Self {
        Credential {
            key,
            expires_at: None,
        }
    }
}

/// A token that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Index of the credential whose key verified the signature.
    pub credential: usize,
    /// The token's algorithm.
    pub algorithm: Algorithm,
    /// Issued at.
    pub iat: i64,
    /// Expires at; a connection must end at `exp + skew`.
    pub exp: i64,
    /// What was accepted although strict verifiers refuse it.
    pub warnings: Vec<EncodingWarning>,
}

/// Why a token was refused. The message says what is wrong and how to fix it; it
/// never contains the token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The token is not a well-formed JWS.
    Malformed(TokenError),
    /// Strict policy: padding or the standard alphabet.
    NonCanonicalEncoding(EncodingWarning),
    /// `alg` missing or not RS256/ES256.
    AlgorithmNotAllowed {
        /// The `alg` found, if any.
        alg: Option<String>,
    },
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A claim has the wrong type or value.
    InvalidClaim {
        /// Which claim.
        claim: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `aud` is not the project id.
    AudienceMismatch {
        /// The `aud` in the token.
        found: String,
        /// The project id.
        expected: String,
    },
    /// `exp` is not after `iat`.
    ExpiresBeforeIssued {
        /// Issued at.
        iat: i64,
        /// Expires at.
        exp: i64,
    },
    /// `exp − iat` is over the limit.
    LifetimeTooLong {
        /// Issued at.
        iat: i64,
        /// Expires at.
        exp: i64,
        /// The limit.
        max: i64,
    },
    /// `iat` is further in the future than the skew allows.
    IssuedInFuture {
        /// Issued at.
        iat: i64,
        /// Server time.
        now: i64,
        /// Allowed skew.
        skew: i64,
    },
    /// `exp` is further in the past than the skew allows.
    Expired {
        /// Expires at.
        exp: i64,
        /// Issued at.
        iat: i64,
        /// Server time.
        now: i64,
        /// Allowed skew.
        skew: i64,
    },
    /// The device has no credentials at all.
    NoCredentials,
    /// Every credential is past its expiration time.
    AllCredentialsExpired {
        /// How many there are.
        count: usize,
    },
    /// No credential has the key type the token's algorithm needs.
    NoKeyForAlgorithm {
        /// The token's algorithm.
        alg: Algorithm,
        /// Labels of the active keys.
        keys: Vec<String>,
    },
    /// An ES256 signature in DER form instead of raw `r‖s`.
    DerSignature {
        /// Its length.
        len: usize,
    },
    /// The signature has the wrong length for every candidate key.
    SignatureLength {
        /// The token's algorithm.
        alg: Algorithm,
        /// The length found.
        found: usize,
        /// The length expected.
        expected: usize,
    },
    /// The signature verifies with none of the candidate keys.
    SignatureMismatch {
        /// The token's algorithm.
        alg: Algorithm,
        /// Labels of the keys tried.
        keys: Vec<String>,
    },
}

impl Refusal {
    /// A short stable name for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "jwt_malformed",
            Refusal::NonCanonicalEncoding(_) => "jwt_noncanonical_encoding",
            Refusal::AlgorithmNotAllowed { .. } => "jwt_algorithm",
            Refusal::MissingClaim(_) | Refusal::InvalidClaim { .. } => "jwt_claims",
            Refusal::AudienceMismatch { .. } => "jwt_audience",
            Refusal::ExpiresBeforeIssued { .. } | Refusal::LifetimeTooLong { .. } => "jwt_lifetime",
            Refusal::IssuedInFuture { .. } => "jwt_not_yet_valid",
            Refusal::Expired { .. } => "jwt_expired",
            Refusal::NoCredentials | Refusal::AllCredentialsExpired { .. } => "no_credentials",
            Refusal::NoKeyForAlgorithm { .. } => "jwt_key_type",
            Refusal::DerSignature { .. } | Refusal::SignatureLength { .. } => {
                "jwt_signature_format"
            }
            Refusal::SignatureMismatch { .. } => "jwt_signature",
        }
    }
}

fn list(keys: &[String]) -> String {
    keys.join(", ")
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(e) => write!(f, "JWT is malformed: {e}"),
            Refusal::NonCanonicalEncoding(w) => write!(
                f,
                "JWT refused by the strict encoding policy: {}",
                alloc::string::ToString::to_string(w)
                    .trim_start_matches("non-canonical encoding accepted: ")
            ),
            Refusal::AlgorithmNotAllowed { alg: None } => f.write_str(
                "JWT header has no `alg`; use {\"alg\":\"ES256\",\"typ\":\"JWT\"} or RS256",
            ),
            Refusal::AlgorithmNotAllowed { alg: Some(a) } if a == "none" => {
                f.write_str("JWT `alg` is 'none' (unsigned); devices must sign with RS256 or ES256")
            }
            Refusal::AlgorithmNotAllowed { alg: Some(a) } if a.starts_with("HS") => write!(
                f,
                "JWT `alg` is '{a}' (a shared-secret HMAC); devices must sign with their \
                 private key using RS256 or ES256"
            ),
            Refusal::AlgorithmNotAllowed { alg: Some(a) } => {
                write!(f, "JWT `alg` is '{a}'; only RS256 and ES256 are accepted")
            }
            Refusal::MissingClaim(c) => write!(
                f,
                "JWT has no `{c}` claim; IoT Core tokens need iat, exp and aud (the project id)"
            ),
            Refusal::InvalidClaim { claim, reason } => {
                write!(f, "JWT `{claim}` is invalid: {reason}")
            }
            Refusal::AudienceMismatch { found, expected } => write!(
                f,
                "JWT `aud` is '{found}' but the project is '{expected}'; set aud to the project id"
            ),
            Refusal::ExpiresBeforeIssued { iat, exp } => write!(
                f,
                "JWT `exp` ({}) is not after `iat` ({})",
                Utc(*exp),
                Utc(*iat)
            ),
            Refusal::LifetimeTooLong { iat, exp, max } => write!(
                f,
                "JWT lifetime exp - iat is {} (iat {}, exp {}); the maximum is {}",
                Span((exp - iat).unsigned_abs()),
                Utc(*iat),
                Utc(*exp),
                Span(max.unsigned_abs())
            ),
            Refusal::IssuedInFuture { iat, now, skew } => {
                write!(
                    f,
                    "JWT `iat` {} is {} ahead of the server time {} (allowed {}): the device \
                     clock is fast by more than {}; synchronise it (SNTP)",
                    Utc(*iat),
                    Span((iat - now).unsigned_abs()),
                    Utc(*now),
                    Span(skew.unsigned_abs()),
                    Span((iat - now - skew).unsigned_abs())
                )
            }
            Refusal::Expired {
                exp,
                iat,
                now,
                skew,
            } => {
                write!(
                    f,
                    "The authorization token expired: JWT `exp` {} is {} before the server time \
                     {} (allowed skew {}); mint a fresh token before connecting",
                    Utc(*exp),
                    Span((now - exp).unsigned_abs()),
                    Utc(*now),
                    Span(skew.unsigned_abs())
                )?;
                if *iat < CLOCK_UNSET_BEFORE {
                    write!(
                        f,
                        "; `iat` is {}, so the device clock looks unset",
                        Utc(*iat)
                    )?;
                }
                Ok(())
            }
            Refusal::NoCredentials => {
                f.write_str("the device has no registered credentials; add its public key")
            }
            Refusal::AllCredentialsExpired { count } => write!(
                f,
                "all {count} registered credentials of the device are past their expiration \
                 time; register a current key"
            ),
            Refusal::NoKeyForAlgorithm { alg, keys } => write!(
                f,
                "JWT is signed with {alg} but the device has no {} key (registered: {}); \
                 sign with the algorithm of the registered key or register the device's key",
                alg.key_type(),
                list(keys)
            ),
            Refusal::DerSignature { len } => write!(
                f,
                "the ES256 signature is a {len}-byte DER ECDSA-Sig-Value; JWS needs the raw \
                 64-byte r||s (convert the DER from mbedTLS/OpenSSL/the secure element)"
            ),
            Refusal::SignatureLength {
                alg,
                found,
                expected,
            } => write!(
                f,
                "the {alg} signature is {found} bytes; {expected} expected (truncated or \
                 damaged token?)"
            ),
            Refusal::SignatureMismatch { alg, keys } => {
                let n = keys.len();
                let what = if n == 1 {
                    String::from("the registered key")
                } else {
                    alloc::format!("any of the {n} registered keys")
                };
                write!(
                    f,
                    "{alg} signature does not verify with {what} ({}): the device signs with \
                     another private key, or the token was altered after signing",
                    list(keys)
                )
            }
        }
    }
}

impl core::error::Error for Refusal {}

/// Checks a device token against IoT Core's rules and the device's credentials.
///
/// Order: structure and encoding, `alg`, claims (`aud`, then times), then each
/// unexpired credential whose key type fits `alg`, in order; the first that verifies
/// is reported in [`Verified::credential`].
pub fn verify(
    token: &str,
    rules: &Rules<'_>,
    credentials: &[Credential],
) -> Result<Verified, Refusal> {
    verify_known(token, rules, credentials, None)
}

/// [`verify`] for a token whose signature the caller has already seen verify:
/// `known` is the index of the credential that verified this exact token against this
/// exact credential list. Every other check runs again (structure, `alg`, claims,
/// times, that credential's expiry); only the signature check is skipped, which is
/// most of the cost. With `known: None` this is [`verify`].
///
/// The caller keys what it remembers by the whole token and the credential list, so
/// a changed key, a removed key or another token never reuses an earlier answer.
pub fn verify_known(
    token: &str,
    rules: &Rules<'_>,
    credentials: &[Credential],
    known: Option<usize>,
) -> Result<Verified, Refusal> {
    let parsed = Token::parse(token).map_err(Refusal::Malformed)?;
    let mut warnings = parsed.warnings.clone();
    if let (EncodingPolicy::Strict, Some(w)) =
        (rules.encoding, warnings.iter().find(|w| w.is_base64()))
    {
        return Err(Refusal::NonCanonicalEncoding(w.clone()));
    }
    let alg = check_algorithm(&parsed)?;
    let mut problems = Vec::new();
    let times = claim_problems(&parsed.claims, rules, &mut problems);
    if let Some(first) = problems.into_iter().next() {
        return Err(first);
    }
    let (iat, exp) = times.ok_or(Refusal::MissingClaim("exp"))?;
    for claim in [("iat", iat), ("exp", exp)] {
        if claim.1.from_string {
            warnings.push(EncodingWarning::StringNumericDate { claim: claim.0 });
        }
    }
    let credential = match known {
        Some(i) if credentials.get(i).is_some_and(|c| active_at(c, rules.now)) => i,
        _ => check_signature(&parsed, alg, rules.now, credentials)?,
    };
    Ok(Verified {
        credential,
        algorithm: alg,
        iat: iat.secs,
        exp: exp.secs,
        warnings,
    })
}

pub(crate) fn check_algorithm(token: &Token<'_>) -> Result<Algorithm, Refusal> {
    token
        .algorithm()
        .ok_or_else(|| Refusal::AlgorithmNotAllowed {
            alg: token.header.get("alg").map(|v| match v {
                Value::String(s) => String::from(truncate(s, 40)),
                other => alloc::format!("(a JSON {})", json_kind(other)),
            }),
        })
}

/// Collects every claim problem in `out`; returns `(iat, exp)` when both are dates.
pub(crate) fn claim_problems(
    claims: &Map<String, Value>,
    rules: &Rules<'_>,
    out: &mut Vec<Refusal>,
) -> Option<(NumericDate, NumericDate)> {
    match claims.get("aud") {
        None => out.push(Refusal::MissingClaim("aud")),
        Some(Value::String(aud)) if aud == rules.project => {}
        Some(Value::String(aud)) => out.push(Refusal::AudienceMismatch {
            found: String::from(truncate(aud, 80)),
            expected: String::from(rules.project),
        }),
        Some(other) => out.push(Refusal::InvalidClaim {
            claim: "aud",
            reason: alloc::format!(
                "it is a JSON {}; it must be the project id as a string",
                json_kind(other)
            ),
        }),
    }
    let date = |name: &'static str, out: &mut Vec<Refusal>| match claims.get(name) {
        None => {
            out.push(Refusal::MissingClaim(name));
            None
        }
        Some(v) => match NumericDate::from_json(v) {
            Ok(d) => Some(d),
            Err(reason) => {
                out.push(Refusal::InvalidClaim {
                    claim: name,
                    reason,
                });
                None
            }
        },
    };
    let iat = date("iat", out);
    let exp = date("exp", out);
    let (iat, exp) = (iat?, exp?);
    let (i, e, now, skew) = (iat.secs, exp.secs, rules.now, rules.skew_secs);
    if e <= i {
        out.push(Refusal::ExpiresBeforeIssued { iat: i, exp: e });
    } else if e - i > rules.max_lifetime_secs {
        out.push(Refusal::LifetimeTooLong {
            iat: i,
            exp: e,
            max: rules.max_lifetime_secs,
        });
    }
    if i > now + skew {
        out.push(Refusal::IssuedInFuture { iat: i, now, skew });
    }
    if e < now - skew {
        out.push(Refusal::Expired {
            exp: e,
            iat: i,
            now,
            skew,
        });
    }
    Some((iat, exp))
}

fn active_at(credential: &Credential, now: i64) -> bool {
    credential.expires_at.is_none_or(|t| t > now)
}

fn check_signature(
    token: &Token<'_>,
    alg: Algorithm,
    now: i64,
    credentials: &[Credential],
) -> Result<usize, Refusal> {
    if credentials.is_empty() {
        return Err(Refusal::NoCredentials);
    }
    let active = || {
        credentials
            .iter()
            .enumerate()
            .filter(|(_, c)| active_at(c, now))
    };
    if active().next().is_none() {
        return Err(Refusal::AllCredentialsExpired {
            count: credentials.len(),
        });
    }
    let mut tried = Vec::new();
    let mut length_error = None;
    for (i, cred) in active() {
        match verify_signature(
            alg,
            &cred.key,
            token.signing_input.as_bytes(),
            &token.signature,
        ) {
            Ok(()) => return Ok(i),
            Err(SignatureError::KeyTypeMismatch { .. }) => continue,
            Err(SignatureError::WrongLength { expected, found }) => {
                length_error = Some((expected, found));
            }
            Err(_) => {}
        }
        tried.push(cred.key.label());
    }
    if tried.is_empty() {
        return Err(Refusal::NoKeyForAlgorithm {
            alg,
            keys: active().map(|(_, c)| c.key.label()).collect(),
        });
    }
    let sig = &token.signature;
    if alg == Algorithm::Es256 && sig.len() != 64 && is_der_signature(sig) {
        return Err(Refusal::DerSignature { len: sig.len() });
    }
    if let (Some((expected, found)), 1) = (length_error, tried.len()) {
        return Err(Refusal::SignatureLength {
            alg,
            found,
            expected,
        });
    }
    Err(Refusal::SignatureMismatch { alg, keys: tried })
}
