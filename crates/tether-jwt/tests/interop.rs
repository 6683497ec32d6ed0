//! Tokens cross between tether and independent implementations, both ways, and
//! the RFC 7515 appendix A.2/A.3 vectors hold.

mod common;

use common::*;
use jsonwebtoken::{Algorithm as JAlg, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tether_jwt::signers::{P256Signer, RingRs256Signer};
use tether_jwt::{
    Algorithm, Credential, Diagnosis, FindingCode, PublicKey, Rules, SignatureError, Signer, b64,
    diagnose, verify, verify_signature,
};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct IotClaims {
    iat: i64,
    exp: i64,
    aud: String,
}

fn jsonwebtoken_decode(token: &str, alg: JAlg, key: &DecodingKey, aud: &str) -> IotClaims {
    jsonwebtoken_ring::install();
    let mut v = Validation::new(alg);
    v.validate_exp = false; // fixed test times; the rules are checked by tether's own tests
    v.set_audience(&[aud]);
    v.set_required_spec_claims(&["iat", "exp", "aud"]);
    jsonwebtoken::decode::<IotClaims>(token, key, &v)
        .expect("jsonwebtoken accepts the token")
        .claims
}

#[test]
fn tether_es256_tokens_verify_in_jsonwebtoken() {
    let (_, signer) = es256();
    let t = token(&signer, "acme-prod", NOW, 1200);
    let point = signer.public_key().key_bytes().to_vec();
    let claims = jsonwebtoken_decode(
        &t,
        JAlg::ES256,
        &DecodingKey::from_ec_der(&point),
        "acme-prod",
    );
    assert_eq!(
        claims,
        IotClaims {
            iat: NOW,
            exp: NOW + 1200,
            aud: "acme-prod".into()
        }
    );
}

#[test]
fn tether_rs256_tokens_verify_in_jsonwebtoken() {
    let signer = rs256();
    let t = token(&signer, "acme", NOW, 3600);
    let pkcs1 = signer.public_key().key_bytes().to_vec();
    let claims = jsonwebtoken_decode(&t, JAlg::RS256, &DecodingKey::from_rsa_der(&pkcs1), "acme");
    assert_eq!(claims.exp - claims.iat, 3600);
}

#[test]
fn no_std_p256_signer_tokens_verify_in_jsonwebtoken_and_ring() {
    let scalar = [7u8; 32];
    let signer = P256Signer::from_scalar(&scalar).expect("valid scalar");
    let t = token(&signer, "acme", NOW, 600);
    let claims = jsonwebtoken_decode(
        &t,
        JAlg::ES256,
        &DecodingKey::from_ec_der(&signer.public_point()),
        "acme",
    );
    assert_eq!(claims.aud, "acme");
    let key = PublicKey::from_p256_point(&signer.public_point()).expect("point");
    let ok = verify(&t, &Rules::new("acme", NOW), &[Credential::new(key)]).expect("verifies");
    assert_eq!(ok.algorithm, Algorithm::Es256);
}

#[test]
fn jsonwebtoken_tokens_verify_in_tether() {
    jsonwebtoken_ring::install();
    let claims = IotClaims {
        iat: NOW,
        exp: NOW + 600,
        aud: "acme".into(),
    };
    let (pkcs8, ec) = es256();
    let es = jsonwebtoken::encode(
        &Header::new(JAlg::ES256),
        &claims,
        &EncodingKey::from_ec_der(&pkcs8),
    )
    .expect("jsonwebtoken signs ES256");
    let rs = jsonwebtoken::encode(
        &Header::new(JAlg::RS256),
        &claims,
        &EncodingKey::from_rsa_der(RSA_PKCS8),
    )
    .expect("jsonwebtoken signs RS256");
    let creds = [
        Credential::new(rs256().public_key()),
        Credential::new(ec.public_key()),
    ];
    let rules = Rules::new("acme", NOW + 30);
    let v = verify(&es, &rules, &creds).expect("ES256 from jsonwebtoken verifies");
    assert_eq!(
        (v.credential, v.algorithm, v.iat, v.exp),
        (1, Algorithm::Es256, NOW, NOW + 600)
    );
    let v = verify(&rs, &rules, &creds).expect("RS256 from jsonwebtoken verifies");
    assert_eq!((v.credential, v.algorithm), (0, Algorithm::Rs256));
}

// RFC 7515 appendix A: the JWS Signing Input of A.2 and A.3 (same claims, different header).
const A2_INPUT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const A2_SIG: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const A3_INPUT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const A3_SIG: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const A3_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";

fn dec(s: &str) -> Vec<u8> {
    b64::decode(s.as_bytes()).expect("vector is base64url").0
}

#[test]
fn rfc7515_a2_rs256_signature_is_reproduced_exactly() {
    let key = include_bytes!("data/rfc7515-a2-rsa-private-pkcs1.der");
    let signer = RingRs256Signer::from_pkcs1_der(key).expect("A.2 key loads");
    // RSASSA-PKCS1-v1_5 is deterministic: the same key and input give the RFC's bytes.
    assert_eq!(sign(&signer, A2_INPUT.as_bytes()), dec(A2_SIG));
    let public = signer.public_key();
    assert_eq!(public.rsa_bits(), 2048);
    assert_eq!(
        verify_signature(Algorithm::Rs256, &public, A2_INPUT.as_bytes(), &dec(A2_SIG)),
        Ok(())
    );
    // The RFC token is a valid JWS but not an IoT Core token: diagnose says why.
    let d: Diagnosis = diagnose(
        &format!("{A2_INPUT}.{A2_SIG}"),
        &tether_jwt::Context {
            keys: std::slice::from_ref(&public),
            ..Default::default()
        },
    );
    assert_eq!(d.verified_with, Some(0));
    let missing: Vec<&str> = d
        .with_code(FindingCode::MissingClaim)
        .map(|f| f.message.as_str())
        .collect();
    assert!(
        missing.iter().any(|m| m.contains("`aud`")) && missing.iter().any(|m| m.contains("`iat`")),
        "{missing:?}"
    );
}

#[test]
fn rfc7515_a3_es256_vector_verifies_and_key_matches() {
    let signer = P256Signer::from_scalar(&dec(A3_D)).expect("A.3 scalar");
    let point = signer.public_point();
    assert_eq!(point[0], 4);
    assert_eq!(&point[1..33], dec(A3_X).as_slice());
    assert_eq!(&point[33..], dec(A3_Y).as_slice());
    let public = PublicKey::from_p256_point(&point).expect("point");
    assert_eq!(
        verify_signature(Algorithm::Es256, &public, A3_INPUT.as_bytes(), &dec(A3_SIG)),
        Ok(())
    );
    let mut tampered = A3_INPUT.as_bytes().to_vec();
    tampered[30] ^= 1;
    assert_eq!(
        verify_signature(Algorithm::Es256, &public, &tampered, &dec(A3_SIG)),
        Err(SignatureError::Mismatch)
    );
    // Our signature over the same input verifies with the RFC's public key.
    let ours = sign(&signer, A3_INPUT.as_bytes());
    assert_eq!(
        verify_signature(Algorithm::Es256, &public, A3_INPUT.as_bytes(), &ours),
        Ok(())
    );
    assert_eq!(signer.algorithm(), Algorithm::Es256);
}
