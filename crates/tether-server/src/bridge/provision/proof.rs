//! The proof of possession: a JWT signed by the device's **new** key, with IoT Core's
//! claims (`aud` = the project, `iat`, `exp`) and `sub` = the device id. Checked
//! against the submitted key before anything is registered, so that a key the device
//! does not hold (the wrong file copied at the factory) can never be registered.

use tether_jwt::{Credential, PublicKey, Refusal, Rules, Token};

use crate::bridge::auth::JwtPolicy;
use crate::bridge::{Code, Reason, shown};

fn refused(label: &'static str, message: String) -> Reason {
    Reason::new(Code::PermissionDenied, label, message)
}

/// Checks `proof` for `device_id` of `project` against the submitted `key`.
///
/// # Errors
/// Why the proof does not prove possession, in words.
pub fn check(
    proof: &str,
    key: &PublicKey,
    project: &str,
    device_id: &str,
    policy: JwtPolicy,
    now: i64,
) -> Result<(), Reason> {
    let token = Token::parse(proof).map_err(|e| {
        Reason::new(
            Code::InvalidArgument,
            "proof_malformed",
            format!("the proof is not a JWT: {e}"),
        )
    })?;
    match token.claims.get("sub") {
        Some(serde_json::Value::String(sub)) if sub == device_id => {}
        Some(serde_json::Value::String(sub)) => {
            return Err(refused(
                "proof_subject",
                format!(
                    "the proof's sub is '{}', but it is for device '{device_id}'; sign the \
                     proof with sub = '{device_id}'",
                    shown(sub)
                ),
            ));
        }
        _ => {
            return Err(refused(
                "proof_subject",
                format!("the proof has no sub claim; set sub to the device id '{device_id}'"),
            ));
        }
    }
    let rules = Rules {
        skew_secs: policy.skew_secs,
        ..Rules::new(project, now).with_encoding(policy.encoding)
    };
    match tether_jwt::verify(proof, &rules, &[Credential::new(key.clone())]) {
        Ok(_) => Ok(()),
        Err(
            Refusal::SignatureMismatch { .. }
            | Refusal::NoKeyForAlgorithm { .. }
            | Refusal::SignatureLength { .. }
            | Refusal::DerSignature { .. },
        ) => Err(refused(
            "proof_signature",
            format!(
                "the proof is not signed by the submitted {} key ({}); sign it with the \
                 private key of the public key you send",
                key.algorithm(),
                key.fingerprint()
            ),
        )),
        Err(other) => Err(refused(
            "proof_refused",
            format!("the proof is refused: {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use tether_jwt::{Claims, mint, mint_proof};

    use super::*;

    const NOW: i64 = 1_780_000_000;

    fn key() -> tether_keys::PrivateKey {
        tether_keys::generate::generate(tether_keys::generate::KeySpec::Es256).expect("key")
    }

    fn proof(signer: &tether_keys::PrivateKey, sub: Option<&str>, iat: i64) -> String {
        let iat = u64::try_from(iat).expect("time");
        let claims = Claims {
            aud: "acme",
            iat,
            exp: iat + 600,
        };
        let signer = signer.signer().expect("signer");
        let mut out = vec![0; 2048];
        let n = match sub {
            Some(sub) => mint_proof(&*signer, &claims, sub, &mut out),
            None => mint(&*signer, &claims, &mut out),
        }
        .expect("mint");
        String::from_utf8(out[..n].to_vec()).expect("text")
    }

    #[test]
    fn a_proof_by_the_new_key_for_this_device_passes() {
        let k = key();
        let p = proof(&k, Some("sensor-1"), NOW);
        check(
            &p,
            k.public_key(),
            "acme",
            "sensor-1",
            JwtPolicy::default(),
            NOW,
        )
        .expect("ok");
    }

    #[test]
    fn each_failed_proof_says_why() {
        let k = key();
        let other = key();
        let policy = JwtPolicy::default();
        let wrong_key = proof(&other, Some("sensor-1"), NOW);
        let m = check(&wrong_key, k.public_key(), "acme", "sensor-1", policy, NOW)
            .expect_err("another key")
            .message;
        assert!(
            m.contains("not signed by the submitted ES256 key (sha256:"),
            "{m}"
        );
        let fingerprint = k.public_key().fingerprint().to_string();
        assert!(m.contains(&fingerprint), "{m}");

        let other_sub = proof(&k, Some("sensor-2"), NOW);
        let m = check(&other_sub, k.public_key(), "acme", "sensor-1", policy, NOW)
            .expect_err("other sub")
            .message;
        assert!(m.contains("sub is 'sensor-2'"), "{m}");

        let no_sub = proof(&k, None, NOW);
        let m = check(&no_sub, k.public_key(), "acme", "sensor-1", policy, NOW)
            .expect_err("no sub")
            .message;
        assert!(m.contains("no sub claim"), "{m}");

        let old = proof(&k, Some("sensor-1"), NOW - 7200);
        let m = check(&old, k.public_key(), "acme", "sensor-1", policy, NOW)
            .expect_err("expired")
            .message;
        assert!(
            m.contains("the proof is refused") && m.contains("expired"),
            "{m}"
        );

        let m = check("nope", k.public_key(), "acme", "sensor-1", policy, NOW)
            .expect_err("malformed")
            .message;
        assert!(m.contains("not a JWT"), "{m}");
    }
}
