//! Every finding `diagnose` promises, each from a crafted token.

mod common;

use common::*;
use tether_jwt::{
    Context, Diagnosis, FindingCode as C, PublicKey, Segment, Severity, b64, diagnose,
};

fn run(token: &str, project: Option<&str>, keys: &[PublicKey]) -> Diagnosis {
    diagnose(
        token,
        &Context {
            project,
            now: Some(NOW),
            keys,
            ..Default::default()
        },
    )
}

fn has(d: &Diagnosis, code: C, needle: &str) -> bool {
    d.with_code(code).any(|f| f.message.contains(needle))
}

#[track_caller]
fn expect(d: &Diagnosis, code: C, needle: &str) {
    assert!(
        has(d, code, needle),
        "no {code} finding containing {needle:?} in {:#?}",
        d.findings
    );
}

#[test]
fn a_good_token_is_valid_and_names_its_key() {
    let (_, k) = es256();
    let d = run(
        &token(&k, "acme", NOW, 1200),
        Some("acme"),
        &[k.public_key()],
    );
    assert!(d.is_valid(), "{:#?}", d.findings);
    assert_eq!(d.verified_with, Some(0));
    expect(
        &d,
        C::SignatureVerified,
        &k.public_key().fingerprint().to_string(),
    );
    assert!(d.findings.iter().all(|f| f.severity == Severity::Info));
}

#[test]
fn wrapping_whitespace_quotes_and_bearer_are_found_and_looked_through() {
    let (_, k) = es256();
    let t = token(&k, "acme", NOW, 60);
    let keys = [k.public_key()];
    let d = run(&format!("  {t}\n"), Some("acme"), &keys);
    expect(&d, C::SurroundingWhitespace, "3 byte(s)");
    assert_eq!(d.verified_with, Some(0), "the token inside still verifies");
    let d = run(&format!("\"{t}\""), Some("acme"), &keys);
    expect(&d, C::SurroundingQuotes, "\" quotes");
    let d = run(&format!("Bearer {t}"), Some("acme"), &keys);
    expect(&d, C::BearerPrefix, "'Bearer '");
    assert_eq!(d.verified_with, Some(0));
    assert!(!d.is_valid());
}

#[test]
fn empty_and_wrong_segment_counts() {
    expect(&run("", None, &[]), C::Empty, "empty");
    expect(&run("   ", None, &[]), C::Empty, "empty");
    expect(
        &run("abc.def", None, &[]),
        C::SegmentCount,
        "signature part is missing",
    );
    expect(
        &run("a.b.c.d.e", None, &[]),
        C::SegmentCount,
        "encrypted JWE",
    );
    expect(
        &run("-----BEGIN PUBLIC KEY-----", None, &[]),
        C::SegmentCount,
        "PEM key",
    );
    expect(&run("a.b.c.d", None, &[]), C::SegmentCount, "this has 4");
}

#[test]
fn base64_problems_point_at_their_offset() {
    let (_, k) = es256();
    let t = token(&k, "acme", NOW, 60);
    let dot = t.find('.').expect("dot");
    let broken = format!("{}\n{}", &t[..dot + 5], &t[dot + 5..]);
    let d = run(&broken, None, &[]);
    let f = d
        .with_code(C::InvalidBase64)
        .next()
        .expect("invalid base64 finding");
    assert_eq!(
        (f.segment, f.offset),
        (Some(Segment::Claims), Some(dot + 5))
    );
    assert!(
        f.fix.as_deref().unwrap_or("").contains("line breaks"),
        "{f:?}"
    );
    let d = run(&format!("{}.{}", &t[..dot], "."), None, &[]);
    expect(&d, C::InvalidBase64, "claims part is empty");
}

#[test]
fn padding_standard_alphabet_and_trailing_bits() {
    let (_, k) = es256();
    // Claims whose encoding needs padding and contains '-'/'_'.
    let mut body = String::new();
    for filler in 0..64 {
        body = format!(
            r#"{{"iat":{NOW},"exp":{},"aud":"acme","x":"{}>>>???"}}"#,
            NOW + 60,
            "~".repeat(filler)
        );
        let enc = b64::encode(body.as_bytes());
        if enc.contains(['-', '_']) && !body.len().is_multiple_of(3) {
            break;
        }
    }
    let enc = b64::encode(body.as_bytes())
        .replace('-', "+")
        .replace('_', "/");
    let pad = "=".repeat((4 - enc.len() % 4) % 4);
    let input = format!("{}.{enc}{pad}", b64::encode(ES256_HEADER.as_bytes()));
    let t = format!("{input}.{}", b64::encode(&sign(&k, input.as_bytes())));
    let d = run(&format!(" {t}"), Some("acme"), &[k.public_key()]);
    let f = d.with_code(C::Padding).next().expect("padding finding");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.offset,
        Some(1 + input.find('=').expect("has =")),
        "offset in the input as given"
    );
    expect(&d, C::StandardAlphabet, "standard base64 alphabet");
    assert_eq!(
        d.verified_with,
        Some(0),
        "lenient: verified over the bytes as sent"
    );
    let strict = diagnose(
        &t,
        &Context {
            encoding: tether_jwt::EncodingPolicy::Strict,
            ..Default::default()
        },
    );
    assert_eq!(
        strict.with_code(C::Padding).next().map(|f| f.severity),
        Some(Severity::Error)
    );
    // "Zh" decodes to 'f' but has non-zero unused bits ("Zg" is canonical).
    let t = token(&k, "acme", NOW, 60);
    let (head, sig) = t.rsplit_once('.').expect("parts");
    let mut chars: Vec<char> = sig.chars().collect();
    let last = chars.len() - 1;
    let v = b64::decode(sig.as_bytes()).expect("b64").0;
    chars[last] = match chars[last] {
        'A' => 'B',
        'Q' => 'R',
        'g' => 'h',
        'w' => 'x',
        c => c,
    };
    let d = run(
        &format!("{head}.{}", chars.iter().collect::<String>()),
        Some("acme"),
        &[k.public_key()],
    );
    expect(&d, C::NonCanonicalBits, "non-zero padding bits");
    assert_eq!(v.len(), 64);
}

#[test]
fn json_errors_and_header_rules() {
    let (_, k) = es256();
    let body = claims("acme", NOW, NOW + 60);
    let d = run(
        &craft(&k, r#"{"alg":"ES256","typ":"JWT""#, &body),
        None,
        &[],
    );
    expect(
        &d,
        C::InvalidJson,
        "decoded header is not valid JSON at byte 2",
    );
    expect(&d, C::InvalidJson, "EOF while parsing an object");
    let d = run(&craft(&k, ES256_HEADER, "[1,2]"), None, &[]);
    expect(&d, C::InvalidJson, "decoded claims is a JSON array");
    let d = run(&craft(&k, r#"{"alg":"none"}"#, &body), None, &[]);
    expect(&d, C::Algorithm, "'none'");
    expect(&d, C::Type, "no `typ`");
    let d = run(
        &craft(&k, r#"{"alg":"es256","typ":"JWT"}"#, &body),
        None,
        &[],
    );
    assert!(
        d.with_code(C::Algorithm)
            .any(|f| f.fix.as_deref().unwrap_or("").contains("upper case"))
    );
    let d = run(
        &craft(&k, r#"{"alg":"ES256","typ":"JWS","kid":"k1"}"#, &body),
        None,
        &[],
    );
    expect(&d, C::Type, "not \"JWT\"");
    expect(&d, C::ExtraHeader, "kid");
}

#[test]
fn claim_findings() {
    let (_, k) = es256();
    let d = run(
        &craft(
            &k,
            ES256_HEADER,
            r#"{"exp":"x","aud":7,"sub":"dev","nbf":1}"#,
        ),
        Some("acme"),
        &[],
    );
    expect(&d, C::MissingClaim, "no `iat`");
    expect(&d, C::ClaimType, "`exp` is invalid");
    expect(&d, C::ClaimType, "`aud` is invalid: it is a JSON number");
    expect(&d, C::ExtraClaim, "nbf");
    expect(&d, C::ExtraClaim, "sub");
    let body = format!(r#"{{"iat":"{NOW}","exp":"{}","aud":"acme"}}"#, NOW + 60);
    let d = run(
        &craft(&k, ES256_HEADER, &body),
        Some("acme"),
        &[k.public_key()],
    );
    expect(&d, C::StringDate, "`iat` is the string");
    assert!(d.is_valid(), "string dates are warnings: {:#?}", d.findings);
    let d = run(&token(&k, "my-project-123456", NOW, 60), Some("acme"), &[]);
    let f = d.with_code(C::Audience).next().expect("audience finding");
    assert!(
        f.message
            .contains("'my-project-123456' but the project is 'acme'")
    );
    assert!(
        f.fix
            .as_deref()
            .unwrap_or("")
            .contains("not the project number")
    );
}

#[test]
fn time_findings_give_utc_times_and_clock_offsets() {
    let (_, k) = es256();
    let d = run(&token(&k, "acme", NOW - 7200, 3600), None, &[]);
    let f = d.with_code(C::Expired).next().expect("expired");
    assert!(
        f.message.contains("2026-09-21T13:13:20Z")
            && f.message
                .contains("1 h before the server time 2026-09-21T14:13:20Z"),
        "{}",
        f.message
    );
    assert!(
        f.fix
            .as_deref()
            .unwrap_or("")
            .contains("behind by at least 50 min"),
        "{f:?}"
    );
    let d = run(&token(&k, "acme", NOW + 3600, 600), None, &[]);
    expect(&d, C::NotYetValid, "1 h ahead of the server time");
    let d = run(&token(&k, "acme", NOW + 300, 600), None, &[]);
    let f = d.with_code(C::NotYetValid).next().expect("info about skew");
    assert_eq!(f.severity, Severity::Info);
    assert!(d.is_valid());
    let d = run(&token(&k, "acme", NOW, 2 * 86_400), None, &[]);
    expect(&d, C::Lifetime, "is 2 d");
    let d = run(&token(&k, "acme", 1_000, 600), None, &[]);
    expect(&d, C::ClockUnset, "1970-01-01T00:16:40Z");
    // Without a server time only the time-independent rules are checked.
    let d = diagnose(&token(&k, "acme", 1_000_000_000, 600), &Context::default());
    assert_eq!(d.with_code(C::Expired).next(), None);
}

#[test]
fn der_signature_is_found_and_shown_to_verify_after_conversion() {
    let (_, k) = es256();
    let t = token(&k, "acme", NOW, 60);
    let (input, sig) = t.rsplit_once('.').expect("parts");
    let raw: [u8; 64] = b64::decode(sig.as_bytes())
        .expect("b64")
        .0
        .try_into()
        .expect("64");
    let mut der = [0u8; 72];
    let n = tether_jwt::ecdsa_der::raw_to_der(&raw, &mut der);
    let d = run(
        &format!("{input}.{}", b64::encode(&der[..n])),
        Some("acme"),
        &[k.public_key()],
    );
    expect(
        &d,
        C::DerSignature,
        &format!("{n}-byte DER ECDSA-Sig-Value"),
    );
    expect(&d, C::SignatureVerified, "after DER→r||s conversion");
    assert!(!d.is_valid());
    let d = run(
        &format!("{input}.{}", b64::encode(&raw[..40])),
        Some("acme"),
        &[k.public_key()],
    );
    expect(&d, C::SignatureLength, "40 bytes; it must be 64");
}

#[test]
fn key_type_mismatch_is_named() {
    let (_, k) = es256();
    let rsa = rs256();
    let d = run(
        &token(&k, "acme", NOW, 60),
        Some("acme"),
        &[rsa.public_key()],
    );
    expect(&d, C::KeyTypeMismatch, "alg ES256 but key #1 is an RSA key");
}

#[test]
fn another_key_verifying_means_the_wrong_key_is_registered() {
    let (_, device) = es256();
    let (_, registered) = es256();
    let d = run(
        &token(&device, "acme", NOW, 60),
        Some("acme"),
        &[registered.public_key(), device.public_key()],
    );
    assert_eq!(d.verified_with, Some(1));
    expect(
        &d,
        C::SignatureMismatch,
        &format!("key #1 ({})", registered.public_key().fingerprint()),
    );
    expect(
        &d,
        C::WrongKey,
        &format!(
            "private key of key #2 ({})",
            device.public_key().fingerprint()
        ),
    );
}

#[test]
fn rsa_signature_opened_with_the_key_tells_wrong_key_from_altered_token() {
    let device = rs256();
    let other = rs256_other();
    let t = token(&device, "acme", NOW, 60);
    // Wrong key registered: the signature opens to garbage under it.
    let d = run(&t, Some("acme"), &[other.public_key()]);
    expect(&d, C::WrongKey, "opens to garbage");
    assert_eq!(d.with_code(C::TokenDamaged).next(), None);
    // Right key, altered claims: the padding is valid but the hash differs.
    let (h, rest) = t.split_once('.').expect("parts");
    let (_, sig) = rest.split_once('.').expect("parts");
    let altered = format!(
        "{h}.{}.{sig}",
        b64::encode(claims("acme", NOW, NOW + 6000).as_bytes())
    );
    let d = run(&altered, Some("acme"), &[device.public_key()]);
    expect(&d, C::TokenDamaged, "over different bytes");
    assert_eq!(d.with_code(C::WrongKey).next(), None);
}

#[test]
fn re_encoding_after_signing_is_detected() {
    let (_, k) = es256();
    let t = token(&k, "acme-x", NOW, 60); // claims length not a multiple of 3
    let (h, rest) = t.split_once('.').expect("parts");
    let (c, sig) = rest.split_once('.').expect("parts");
    let padded = format!("{h}.{c}{}.{sig}", "=".repeat((4 - c.len() % 4) % 4));
    assert_ne!(padded, t, "the claims segment needs padding for this test");
    let d = run(&padded, Some("acme-x"), &[k.public_key()]);
    expect(&d, C::Padding, "padding");
    expect(&d, C::TokenDamaged, "re-encoded after signing");
}

#[test]
fn es256_mismatch_recovers_the_signing_key() {
    let (_, device) = es256();
    let (_, registered) = es256();
    let d = run(
        &token(&device, "acme", NOW, 60),
        Some("acme"),
        &[registered.public_key()],
    );
    expect(&d, C::WrongKey, "verifies with none of the given keys");
    expect(
        &d,
        C::RecoveredSigner,
        &device.public_key().fingerprint().to_string(),
    );
    // Without keys the signature is not checked, and the signer is still shown.
    let d = run(&token(&device, "acme", NOW, 60), Some("acme"), &[]);
    expect(&d, C::SignatureNotChecked, "not checked");
    expect(
        &d,
        C::RecoveredSigner,
        &device.public_key().fingerprint().to_string(),
    );
}

#[test]
fn damaged_structure_is_reported_as_damage() {
    let (_, k) = es256();
    let t = token(&k, "acme", NOW, 60);
    let (h, rest) = t.split_once('.').expect("parts");
    let (_, sig) = rest.split_once('.').expect("parts");
    let d = run(
        &format!("{h}.{}.{sig}", b64::encode(b"{\"iat\":1,")),
        Some("acme"),
        &[k.public_key()],
    );
    expect(&d, C::InvalidJson, "claims");
    expect(&d, C::TokenDamaged, "damaged");
}

#[test]
fn the_signers_of_an_es256_token_are_recovered_from_it() {
    let (_, k) = es256();
    let t = token(&k, "acme", NOW, 1200);
    let signers = tether_jwt::token_es256_signers(&t);
    assert_eq!(signers.len(), 2, "{signers:?}");
    assert!(signers.contains(&k.public_key().fingerprint()));
    // Padded base64 and surrounding whitespace are looked through, as the verifier does.
    let padded = tether_jwt::token_es256_signers(&format!(" {t}== "));
    assert_eq!(padded, signers);
    // Not an ES256 signature: nothing is claimed.
    for bad in ["", "a.b", "a.b.!!!", "a.b.c2lnbmF0dXJl"] {
        assert!(tether_jwt::token_es256_signers(bad).is_empty(), "{bad}");
    }
}
