//! `tether_jwt_check` on the device agrees with `tether jwt diagnose`: on a corpus
//! of the mistakes firmware makes, both report the same findings (code and
//! severity), and the device check never panics or overruns on arbitrary input.
#![allow(unsafe_code, reason = "calls the exported C function")]

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use tether_device_c::sizes::TETHER_CHECK_TEXT_LEN;
use tether_jwt::b64;
use tether_jwt::ecdsa_der::{MAX_DER_LEN, raw_to_der};
use tether_jwt::signers::{RingEs256Signer, RingRs256Signer};
use tether_jwt::{Context, PublicKey, Signer, diagnose};

/// `severity code` of every finding, counted (order aside).
type Findings = BTreeMap<String, usize>;

fn device(token: &str, key: Option<&[u8]>, project: Option<&str>, now: Option<i64>) -> Findings {
    let (_, _, text) = check_cap(token.as_bytes(), key, project, now, 8192);
    let mut out = Findings::new();
    for line in text.lines() {
        let head = line.split(':').next().unwrap_or_default();
        let mut words = head.split(' ');
        let key = format!(
            "{} {}",
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default()
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

fn cli(token: &str, key: Option<&PublicKey>, project: Option<&str>, now: Option<i64>) -> Findings {
    let keys: Vec<PublicKey> = key.into_iter().cloned().collect();
    let ctx = Context {
        project,
        now,
        keys: &keys,
        ..Context::default()
    };
    let mut out = Findings::new();
    for f in diagnose(token, &ctx).findings {
        // The device does not recover ES256 signers' keys (the CLI does).
        if f.code.as_str() == "recovered-signer" {
            continue;
        }
        *out.entry(format!("{} {}", f.severity.as_str(), f.code.as_str()))
            .or_default() += 1;
    }
    out
}

fn sign(signer: &dyn Signer, input: &[u8]) -> Vec<u8> {
    let mut sig = [0u8; 512];
    let n = signer.sign(input, &mut sig).expect("signs");
    sig[..n].to_vec()
}

fn craft(signer: &dyn Signer, header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(claims.as_bytes())
    );
    let sig = sign(signer, input.as_bytes());
    format!("{input}.{}", b64::encode(&sig))
}

fn claims(aud: &str, iat: i64, exp: i64) -> String {
    format!(r#"{{"iat":{iat},"exp":{exp},"aud":"{aud}"}}"#)
}

const ES: &str = r#"{"alg":"ES256","typ":"JWT"}"#;
const RS: &str = r#"{"alg":"RS256","typ":"JWT"}"#;

fn padded(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    for p in &mut parts {
        while p.len() % 4 != 0 {
            p.push('=');
        }
    }
    parts.join(".")
}

fn standard_alphabet(token: &str) -> String {
    token.replace('-', "+").replace('_', "/")
}

#[test]
fn the_device_check_reports_what_diagnose_reports() {
    let p8 = p256_pkcs8();
    let es = RingEs256Signer::from_pkcs8(&p8).expect("key");
    let es_pub = es.public_key();
    let other = RingEs256Signer::from_pkcs8(&p256_pkcs8()).expect("key");
    let rs = RingRs256Signer::from_pkcs8(RSA_PKCS8).expect("rsa");
    let rs_pub = rs.public_key();
    let now = NOW as i64;
    let good = craft(&es, ES, &claims("acme", now, now + 1200));
    let input = good
        .rsplit_once('.')
        .map(|(i, _)| i.to_owned())
        .unwrap_or_default();
    let raw = sign(&es, input.as_bytes());
    let mut der = [0u8; MAX_DER_LEN];
    let n = raw_to_der(raw.as_slice().try_into().expect("64"), &mut der);
    let der_token = format!("{input}.{}", b64::encode(&der[..n]));
    // The standard-alphabet case needs a '-' or '_' to swap; the signature is
    // random, and about one token in 15 has neither.
    let swappable = std::iter::repeat_with(|| craft(&es, ES, &claims("acme", now, now + 1200)))
        .take(1000)
        .find(|t| t.contains(['-', '_']))
        .expect("a token with '-' or '_'");
    let rs_good = craft(&rs, RS, &claims("acme", now, now + 600));
    let mut tampered_rs = rs_good.clone();
    tampered_rs.replace_range(
        40..41,
        if &tampered_rs[40..41] == "A" {
            "B"
        } else {
            "A"
        },
    );

    let corpus: Vec<(String, &str)> = vec![
        (good.clone(), "valid ES256"),
        (format!(" {good}\n"), "whitespace"),
        (format!("Bearer {good}"), "bearer"),
        (format!("\"{good}\""), "quotes"),
        (String::new(), "empty"),
        ("abc".into(), "one part"),
        (input.clone(), "two parts"),
        (format!("{good}.x.y"), "five parts"),
        (format!("{good}garbage!"), "trailing garbage"),
        (padded(&good), "padding"),
        (standard_alphabet(&swappable), "standard alphabet"),
        (der_token, "DER signature"),
        (
            format!("{input}.{}", b64::encode(&raw[..40])),
            "short signature",
        ),
        (
            craft(&es, ES, &claims("other-project", now, now + 1200)),
            "audience",
        ),
        (craft(&es, ES, &claims("acme", 1_000, 2_000)), "clock unset"),
        (
            craft(&es, ES, &claims("acme", now - 90_000, now - 7_200)),
            "expired",
        ),
        (
            craft(&es, ES, &claims("acme", now + 3_600, now + 4_000)),
            "future",
        ),
        (
            craft(&es, ES, &claims("acme", now, now + 90_000)),
            "lifetime",
        ),
        (
            craft(&es, ES, &claims("acme", now, now - 1)),
            "exp before iat",
        ),
        (
            craft(&es, ES, &claims("acme", now + 120, now + 600)),
            "small skew",
        ),
        (
            craft(
                &es,
                ES,
                &format!(r#"{{"iat":"{now}","exp":"{}","aud":"acme"}}"#, now + 60),
            ),
            "string dates",
        ),
        (
            craft(
                &es,
                ES,
                &format!(
                    r#"{{"iat":{now},"exp":{}.5,"aud":"acme","sub":"d"}}"#,
                    now + 60
                ),
            ),
            "float and extra",
        ),
        (
            craft(&es, ES, r#"{"iat":true,"aud":["acme"]}"#),
            "types and missing",
        ),
        (
            craft(&es, r#"{"alg":"es256"}"#, &claims("acme", now, now + 60)),
            "alg case, no typ",
        ),
        (
            craft(
                &es,
                r#"{"alg":"HS256","typ":"jwt","kid":"1"}"#,
                &claims("acme", now, now + 60),
            ),
            "hs256",
        ),
        (
            craft(&es, r#"["ES256"]"#, &claims("acme", now, now + 60)),
            "header array",
        ),
        (craft(&es, ES, "{\"iat\":1,"), "broken json"),
        (
            craft(&other, ES, &claims("acme", now, now + 1200)),
            "wrong key",
        ),
        (rs_good.clone(), "valid RS256"),
        (tampered_rs, "RS256 tampered"),
        (
            craft(&rs, ES, &claims("acme", now, now + 60)),
            "alg says ES256, RSA signature",
        ),
    ];
    let keys: [(Option<&[u8]>, Option<&PublicKey>); 3] = [
        (None, None),
        (Some(&p8), Some(&es_pub)),
        (Some(RSA_PKCS8), Some(&rs_pub)),
    ];
    let mut seen = Findings::new();
    for (token, what) in &corpus {
        for (key_bytes, key) in keys {
            for (project, at) in [(Some("acme"), Some(now)), (None, None)] {
                let d = device(token, key_bytes, project, at);
                let c = cli(token, key, project, at);
                assert_eq!(
                    d,
                    c,
                    "{what} (key: {}, project: {project:?})",
                    key.is_some()
                );
                seen.extend(d);
            }
        }
    }
    covered(&seen);
}

fn covered(seen: &Findings) {
    for want in [
        "error surrounding-whitespace",
        "error bearer-prefix",
        "error surrounding-quotes",
        "error empty",
        "error segment-count",
        "error invalid-base64",
        "warning base64-padding",
        "warning base64-standard-alphabet",
        "error der-signature",
        "error signature-length",
        "error audience",
        "error clock-unset",
        "error expired",
        "error not-yet-valid",
        "info not-yet-valid",
        "error lifetime",
        "warning string-date",
        "info extra-claim",
        "error claim-type",
        "error missing-claim",
        "error algorithm",
        "warning type",
        "info extra-header",
        "error invalid-json",
        "error wrong-key",
        "error token-damaged",
        "error signature-mismatch",
        "info signature-verified",
        "info signature-not-checked",
        "error key-type-mismatch",
    ] {
        assert!(seen.contains_key(want), "the corpus never produced {want}");
    }
}

proptest! {
    /// Arbitrary bytes, and tokens with a random byte changed, never panic the check,
    /// never write past the text buffer, and always answer OK, REFUSED or TOO_SMALL.
    #[test]
    fn never_panics_or_overruns(
        junk in proptest::collection::vec(any::<u8>(), 0..400),
        flip in 0usize..300,
        byte in any::<u8>(),
        cap in 0usize..300,
    ) {
        use tether_device_c::tether_status::*;
        let (st, ..) = check_cap(&junk, None, Some("acme"), Some(NOW as i64), cap);
        prop_assert!(matches!(st, TETHER_OK | TETHER_ERR_TOKEN_REFUSED | TETHER_ERR_BUFFER_TOO_SMALL));
        let p8 = p256_pkcs8_cached();
        let key = load(p8).expect("loads");
        let mut token = mint(&soft_signer(&key), "acme").into_bytes();
        let i = flip % token.len();
        token[i] = byte;
        let (st, ..) = check_cap(&token, Some(p8), Some("acme"), Some(NOW as i64), cap.min(TETHER_CHECK_TEXT_LEN));
        prop_assert!(matches!(st, TETHER_OK | TETHER_ERR_TOKEN_REFUSED | TETHER_ERR_BUFFER_TOO_SMALL));
    }
}

fn p256_pkcs8_cached() -> &'static [u8] {
    static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    KEY.get_or_init(p256_pkcs8)
}
