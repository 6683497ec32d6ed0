//! Each IoT Core rule refuses what it must, accepts what it must, and says why.

mod common;

use common::*;
use tether_jwt::{
    Algorithm, Credential, EncodingPolicy, EncodingWarning, Refusal, Rules, b64, verify,
};

fn creds(keys: &[tether_jwt::PublicKey]) -> Vec<Credential> {
    keys.iter().cloned().map(Credential::new).collect()
}

fn refusal(token: &str, rules: &Rules<'_>, c: &[Credential]) -> Refusal {
    match verify(token, rules, c) {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(r) => r,
    }
}

/// The index of the credential that accepted `token`, or the refusal that says why not.
fn accepted_by(token: &str, rules: &Rules<'_>, c: &[Credential]) -> Result<usize, Refusal> {
    verify(token, rules, c).map(|v| v.credential)
}

#[test]
fn valid_tokens_pass_and_name_the_matching_credential() {
    let (_, a) = es256();
    let (_, b) = es256();
    let r = rs256();
    let c = creds(&[a.public_key(), r.public_key(), b.public_key()]);
    let rules = Rules::new("acme", NOW);
    let v = verify(&token(&b, "acme", NOW, 1200), &rules, &c).expect("valid");
    assert_eq!(
        (v.credential, v.algorithm, v.iat, v.exp),
        (2, Algorithm::Es256, NOW, NOW + 1200)
    );
    assert!(v.warnings.is_empty());
    let v = verify(&token(&r, "acme", NOW, 1200), &rules, &c).expect("valid");
    assert_eq!((v.credential, v.algorithm), (1, Algorithm::Rs256));
}

#[test]
fn algorithms_other_than_rs256_and_es256_are_refused() {
    let (_, k) = es256();
    let c = creds(&[k.public_key()]);
    let rules = Rules::new("acme", NOW);
    let body = claims("acme", NOW, NOW + 60);
    for (header, needle) in [
        (r#"{"alg":"none","typ":"JWT"}"#, "'none' (unsigned)"),
        (r#"{"alg":"HS256","typ":"JWT"}"#, "shared-secret HMAC"),
        (r#"{"alg":"PS256","typ":"JWT"}"#, "only RS256 and ES256"),
        (r#"{"alg":"es256","typ":"JWT"}"#, "only RS256 and ES256"),
        (r#"{"typ":"JWT"}"#, "has no `alg`"),
    ] {
        let t = craft(&k, header, &body);
        let r = refusal(&t, &rules, &c);
        assert!(
            matches!(r, Refusal::AlgorithmNotAllowed { .. }),
            "{header}: {r:?}"
        );
        assert!(r.to_string().contains(needle), "{header}: {r}");
        assert_eq!(r.reason(), "jwt_algorithm");
    }
}

#[test]
fn required_claims_and_types() {
    let (_, k) = es256();
    let c = creds(&[k.public_key()]);
    let rules = Rules::new("acme", NOW);
    let cases = [
        (
            format!(r#"{{"exp":{},"aud":"acme"}}"#, NOW + 60),
            "no `iat` claim",
        ),
        (format!(r#"{{"iat":{NOW},"aud":"acme"}}"#), "no `exp` claim"),
        (
            format!(r#"{{"iat":{NOW},"exp":{}}}"#, NOW + 60),
            "no `aud` claim",
        ),
        (
            format!(r#"{{"iat":"soon","exp":{},"aud":"acme"}}"#, NOW + 60),
            "`iat` is invalid: the string \"soon\"",
        ),
        (
            format!(r#"{{"iat":{NOW},"exp":true,"aud":"acme"}}"#),
            "`exp` is invalid: a JSON boolean",
        ),
        (
            format!(r#"{{"iat":{NOW},"exp":{},"aud":["acme"]}}"#, NOW + 60),
            "`aud` is invalid: it is a JSON array",
        ),
    ];
    for (body, needle) in cases {
        let r = refusal(&craft(&k, ES256_HEADER, &body), &rules, &c);
        assert!(r.to_string().contains(needle), "{body}: {r}");
        assert_eq!(r.reason(), "jwt_claims");
    }
}

#[test]
fn numeric_strings_are_accepted_with_a_warning() {
    let (_, k) = es256();
    let body = format!(r#"{{"iat":"{NOW}","exp":"{}","aud":"acme"}}"#, NOW + 600);
    let v = verify(
        &craft(&k, ES256_HEADER, &body),
        &Rules::new("acme", NOW),
        &creds(&[k.public_key()]),
    )
    .expect("accepted as IoT Core did");
    assert_eq!((v.iat, v.exp), (NOW, NOW + 600));
    assert!(
        v.warnings
            .contains(&EncodingWarning::StringNumericDate { claim: "iat" })
    );
    assert!(
        v.warnings
            .contains(&EncodingWarning::StringNumericDate { claim: "exp" })
    );
}

#[test]
fn audience_must_be_the_project_id() {
    let (_, k) = es256();
    let r = refusal(
        &token(&k, "h4nh44-1", NOW, 60),
        &Rules::new("acme", NOW),
        &creds(&[k.public_key()]),
    );
    assert_eq!(
        r.to_string(),
        "JWT `aud` is 'h4nh44-1' but the project is 'acme'; set aud to the project id"
    );
    assert_eq!(r.reason(), "jwt_audience");
}

#[test]
fn lifetime_is_at_most_24_hours_and_positive() {
    let (_, k) = es256();
    let c = creds(&[k.public_key()]);
    let rules = Rules::new("acme", NOW);
    assert_eq!(
        accepted_by(&token(&k, "acme", NOW, 86_400), &rules, &c),
        Ok(0)
    );
    let r = refusal(&token(&k, "acme", NOW, 86_401), &rules, &c);
    assert!(
        matches!(r, Refusal::LifetimeTooLong { max: 86_400, .. }),
        "{r:?}"
    );
    assert!(r.to_string().contains("is 1 d"), "{r}");
    let r = refusal(
        &craft(&k, ES256_HEADER, &claims("acme", NOW, NOW)),
        &rules,
        &c,
    );
    assert!(matches!(r, Refusal::ExpiresBeforeIssued { .. }), "{r:?}");
}

#[test]
fn ten_minutes_of_skew_each_way() {
    let (_, k) = es256();
    let c = creds(&[k.public_key()]);
    let rules = Rules::new("acme", NOW);
    assert_eq!(
        accepted_by(&token(&k, "acme", NOW + 600, 60), &rules, &c),
        Ok(0)
    );
    let r = refusal(&token(&k, "acme", NOW + 601, 60), &rules, &c);
    assert_eq!(r.reason(), "jwt_not_yet_valid");
    assert!(
        r.to_string()
            .contains("10 min 1 s ahead of the server time 2026-09-21T14:13:20Z"),
        "{r}"
    );
    assert!(r.to_string().contains("fast by more than 1 s"), "{r}");
    // exp exactly 10 minutes ago is still accepted; one second more is not.
    assert_eq!(
        accepted_by(&token(&k, "acme", NOW - 1200, 600), &rules, &c),
        Ok(0)
    );
    let r = refusal(&token(&k, "acme", NOW - 1201, 600), &rules, &c);
    assert_eq!(r.reason(), "jwt_expired");
    assert!(
        r.to_string()
            .starts_with("The authorization token expired: JWT `exp` 2026-09-21T14:03:19Z"),
        "{r}"
    );
    // A token from an unset clock says so.
    let r = refusal(&token(&k, "acme", 3600, 600), &rules, &c);
    assert!(
        r.to_string().contains("the device clock looks unset"),
        "{r}"
    );
}

#[test]
fn credentials_expired_are_skipped_and_listed_keys_are_named() {
    let (_, a) = es256();
    let (_, b) = es256();
    let r = rs256();
    let rules = Rules::new("acme", NOW);
    let t = token(&a, "acme", NOW, 600);
    // The matching key has expired: it is not tried.
    let c = vec![
        Credential {
            key: a.public_key(),
            expires_at: Some(NOW - 1),
        },
        Credential {
            key: b.public_key(),
            expires_at: Some(NOW + 1),
        },
        Credential::new(r.public_key()),
    ];
    let e = refusal(&t, &rules, &c);
    assert_eq!(
        e.to_string(),
        format!(
            "ES256 signature does not verify with the registered key ({}): the device signs with \
             another private key, or the token was altered after signing",
            b.public_key().label()
        )
    );
    assert!(
        e.to_string()
            .contains(&b.public_key().fingerprint().to_string()[..15])
    );
    let c2 = vec![Credential {
        key: a.public_key(),
        expires_at: Some(NOW),
    }];
    assert_eq!(
        refusal(&t, &rules, &c2),
        Refusal::AllCredentialsExpired { count: 1 }
    );
    assert_eq!(refusal(&t, &rules, &[]), Refusal::NoCredentials);
    // Two active keys of the right type: both are listed.
    let c3 = creds(&[b.public_key(), es256().1.public_key()]);
    let msg = refusal(&t, &rules, &c3).to_string();
    assert!(
        msg.contains("any of the 2 registered keys (ES256 sha256:"),
        "{msg}"
    );
}

#[test]
fn algorithm_and_key_type_must_agree() {
    let (_, a) = es256();
    let r = rs256();
    let e = refusal(
        &token(&a, "acme", NOW, 60),
        &Rules::new("acme", NOW),
        &creds(&[r.public_key()]),
    );
    assert!(
        matches!(
            e,
            Refusal::NoKeyForAlgorithm {
                alg: Algorithm::Es256,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("no EC P-256 key (registered: RS256 (RSA 2048) sha256:"),
        "{e}"
    );
}

#[test]
fn der_signatures_and_truncation_are_named() {
    let (_, a) = es256();
    let t = token(&a, "acme", NOW, 60);
    let (input, sig) = t.rsplit_once('.').expect("three parts");
    let raw: [u8; 64] = b64::decode(sig.as_bytes())
        .expect("b64")
        .0
        .try_into()
        .expect("64 bytes");
    let mut der = [0u8; 72];
    let n = tether_jwt::ecdsa_der::raw_to_der(&raw, &mut der);
    let der_token = format!("{input}.{}", b64::encode(&der[..n]));
    let c = creds(&[a.public_key()]);
    let rules = Rules::new("acme", NOW);
    let e = refusal(&der_token, &rules, &c);
    assert_eq!(e, Refusal::DerSignature { len: n });
    assert!(e.to_string().contains("raw 64-byte r||s"));
    let short = format!("{input}.{}", b64::encode(&raw[..63]));
    assert_eq!(
        refusal(&short, &rules, &c),
        Refusal::SignatureLength {
            alg: Algorithm::Es256,
            found: 63,
            expected: 64
        }
    );
}

/// A token whose header and claims use padding and the standard alphabet, signed over
/// exactly those bytes.
fn non_canonical_token(signer: &dyn tether_jwt::Signer) -> String {
    for filler in 0..64 {
        let body = format!(
            r#"{{"iat":{NOW},"exp":{},"aud":"acme","x":"{}>>>???"}}"#,
            NOW + 60,
            "~".repeat(filler)
        );
        let enc = b64::encode(body.as_bytes());
        if enc.contains(['-', '_']) && !body.len().is_multiple_of(3) {
            let std = enc.replace('-', "+").replace('_', "/");
            let pad = "=".repeat((4 - std.len() % 4) % 4);
            let input = format!("{}.{std}{pad}", b64::encode(ES256_HEADER.as_bytes()));
            return format!("{input}.{}", b64::encode(&sign(signer, input.as_bytes())));
        }
    }
    unreachable!("some filler length gives both quirks")
}

#[test]
fn encoding_policy_lenient_warns_strict_refuses() {
    let (_, k) = es256();
    let c = creds(&[k.public_key()]);
    let t = non_canonical_token(&k);
    let lenient = verify(&t, &Rules::new("acme", NOW), &c).expect("lenient accepts");
    assert!(
        lenient
            .warnings
            .iter()
            .any(|w| matches!(w, EncodingWarning::Padding { .. }))
    );
    assert!(
        lenient
            .warnings
            .iter()
            .any(|w| matches!(w, EncodingWarning::StandardAlphabet { .. }))
    );
    assert!(
        lenient.warnings[0]
            .to_string()
            .starts_with("non-canonical encoding accepted")
    );
    let strict = Rules::new("acme", NOW).with_encoding(EncodingPolicy::Strict);
    let e = refusal(&t, &strict, &c);
    assert_eq!(e.reason(), "jwt_noncanonical_encoding");
    assert!(
        e.to_string()
            .starts_with("JWT refused by the strict encoding policy"),
        "{e}"
    );
    // A canonical token passes the strict policy.
    assert_eq!(accepted_by(&token(&k, "acme", NOW, 60), &strict, &c), Ok(0));
}

#[test]
fn malformed_tokens_say_what_is_broken() {
    let (_, k) = es256();
    let c = creds(&[k.public_key()]);
    let rules = Rules::new("acme", NOW);
    let good = token(&k, "acme", NOW, 60);
    let cases = [
        (String::new(), "the token is empty"),
        ("abc.def".to_string(), "this has 2"),
        (good.replacen('.', "..", 1), "this has 4"),
        (
            format!("{}!", &good[..10]) + &good[11..],
            "'!' at offset 10 is not a base64url character",
        ),
        (
            format!("e30.{}", &good[good.find('.').map_or(0, |i| i + 1)..]),
            "missing",
        ),
        (
            format!(
                "bm90IGpzb24.{}",
                &good[good.find('.').map_or(0, |i| i + 1)..]
            ),
            "the decoded header is not a JSON object",
        ),
    ];
    for (t, needle) in cases {
        let e = refusal(&t, &rules, &c);
        let text = e.to_string();
        assert!(
            text.contains(needle)
                || (needle == "missing" && matches!(e, Refusal::AlgorithmNotAllowed { alg: None })),
            "{t}: {text}"
        );
    }
}

#[test]
fn a_known_signature_skips_only_the_signature_check() {
    let (_, a) = es256();
    let (_, b) = es256();
    let c = creds(&[a.public_key(), b.public_key()]);
    let rules = Rules::new("acme", NOW);
    let t = token(&b, "acme", NOW, 1200);
    let v = tether_jwt::verify_known(&t, &rules, &c, Some(1)).expect("valid");
    assert_eq!((v.credential, v.exp), (1, NOW + 1200));

    // The times and claims are checked again: an expired token stays refused.
    let later = Rules::new("acme", NOW + 1200 + 601);
    let r = tether_jwt::verify_known(&t, &later, &c, Some(1)).expect_err("expired");
    assert_eq!(r.reason(), "jwt_expired", "{r}");
    let r = tether_jwt::verify_known(&t, &Rules::new("other", NOW), &c, Some(1))
        .expect_err("another project");
    assert!(matches!(r, Refusal::AudienceMismatch { .. }), "{r:?}");

    // A known index that no longer fits (gone, or its credential expired) falls back
    // to the full check, which names the key that really verifies.
    let v = tether_jwt::verify_known(&t, &rules, &c, Some(7)).expect("valid");
    assert_eq!(v.credential, 1);
    let mut expired = c.clone();
    expired[0].expires_at = Some(NOW - 1);
    let r = tether_jwt::verify_known(&t, &rules, &expired[..1], Some(0)).expect_err("expired key");
    assert!(matches!(r, Refusal::AllCredentialsExpired { .. }), "{r:?}");
}
