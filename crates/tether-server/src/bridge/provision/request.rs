//! A provisioning request's body, read without I/O:
//! `{"publicKey": {"format": F, "key": K}, "proof": JWT}`.
//!
//! The key comes as the device has it: `ES256_RAW` is base64 of an engine's 64-byte
//! `x‖y` (or 65-byte `04‖x‖y`) point, the other formats are IoT Core's PEM ones. It
//! is turned into the credential the registry stores, in one canonical text, so that
//! the same key sent again is recognised as the same.

use serde_json::{Map, Value};
use tether_jwt::PublicKey;
use tether_registry::model::{PublicKeyCredential, PublicKeyFormat};

use crate::bridge::{Code, Reason, shown};

/// Largest request body: an RSA certificate and a proof fit many times over.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The formats a request may use.
const FORMATS: &str = "ES256_RAW, ES256_PEM, RSA_PEM, ES256_X509_PEM or RSA_X509_PEM";

/// A parsed request.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    /// The key as it will be stored.
    pub credential: PublicKeyCredential,
    /// The key itself.
    pub key: PublicKey,
    /// The proof of possession: a JWT signed by the new key.
    pub proof: String,
}

fn invalid(message: impl Into<String>) -> Reason {
    Reason::new(Code::InvalidArgument, "provision_request", message)
}

/// Reads a request body.
///
/// # Errors
/// What is wrong with it, naming the field.
pub fn parse(body: &[u8]) -> Result<ProvisionRequest, Reason> {
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid(format!(
            "the provisioning request is {} bytes; at most {MAX_BODY_BYTES} are allowed",
            body.len()
        )));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "the provisioning request is not JSON ({e}); send {{\"publicKey\": {{\"format\": \
             …, \"key\": …}}, \"proof\": \"<JWT>\"}}"
        ))
    })?;
    let Value::Object(mut fields) = value else {
        return Err(invalid("the provisioning request must be a JSON object"));
    };
    let public_key = take_object(&mut fields, "publicKey")?;
    let proof = take_string(&mut fields, "proof", "proof")?;
    if let Some(extra) = fields.keys().next() {
        return Err(invalid(format!(
            "unknown field '{}' in the provisioning request (allowed: publicKey, proof)",
            shown(extra)
        )));
    }
    let mut public_key = public_key;
    let format = take_string(&mut public_key, "format", "publicKey.format")?;
    let key_text = take_string(&mut public_key, "key", "publicKey.key")?;
    if let Some(extra) = public_key.keys().next() {
        return Err(invalid(format!(
            "unknown field 'publicKey.{}' (allowed: format, key)",
            shown(extra)
        )));
    }
    let (credential, key) = read_key(&format, &key_text)?;
    Ok(ProvisionRequest {
        credential,
        key,
        proof,
    })
}

fn take_object(fields: &mut Map<String, Value>, name: &str) -> Result<Map<String, Value>, Reason> {
    match fields.remove(name) {
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(invalid(format!("'{name}' must be a JSON object"))),
        None => Err(invalid(format!("the provisioning request has no '{name}'"))),
    }
}

fn take_string(fields: &mut Map<String, Value>, name: &str, at: &str) -> Result<String, Reason> {
    match fields.remove(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(invalid(format!("'{at}' is empty"))),
        Some(_) => Err(invalid(format!("'{at}' must be a string"))),
        None => Err(invalid(format!("the provisioning request has no '{at}'"))),
    }
}

/// The stored credential and the key, from a request's format and key text.
fn read_key(format: &str, text: &str) -> Result<(PublicKeyCredential, PublicKey), Reason> {
    if format == "ES256_RAW" {
        return raw_p256(text);
    }
    let Some(declared) =
        PublicKeyFormat::from_name(format).filter(|f| *f != PublicKeyFormat::Unspecified)
    else {
        return Err(invalid(format!(
            "publicKey.format '{}' is not known; use {FORMATS}",
            shown(format)
        )));
    };
    let parsed = tether_keys::parse(text.as_bytes())
        .map_err(|e| invalid(format!("publicKey.key ({format}) cannot be read: {e}")))?;
    let key = parsed.public_key().ok_or_else(|| {
        invalid(format!(
            "publicKey.key ({format}) holds {}, not a public key or certificate",
            parsed.describe()
        ))
    })?;
    let stored = if parsed.certificate().is_some() {
        // A certificate is kept as sent: its signature covers those bytes.
        format!("{}\n", text.trim())
    } else {
        tether_keys::convert::pem_text("PUBLIC KEY", key.spki_der())
    };
    Ok((
        PublicKeyCredential {
            format: declared,
            key: stored,
        },
        key,
    ))
}

fn raw_p256(text: &str) -> Result<(PublicKeyCredential, PublicKey), Reason> {
    let (bytes, _) = tether_jwt::b64::decode(text.trim().as_bytes()).map_err(|e| {
        invalid(format!(
            "publicKey.key (ES256_RAW) is not base64: {e}; send base64 of the 64-byte x‖y \
             or the 65-byte 04‖x‖y point"
        ))
    })?;
    let key = PublicKey::from_p256_point(&bytes).map_err(|e| {
        invalid(format!(
            "publicKey.key (ES256_RAW) is {} bytes and not a P-256 point: {e}",
            bytes.len()
        ))
    })?;
    let pem = tether_keys::convert::pem_text("PUBLIC KEY", key.spki_der());
    Ok((
        PublicKeyCredential {
            format: PublicKeyFormat::Es256Pem,
            key: pem,
        },
        key,
    ))
}

/// The name a stored credential's format has in replies.
pub fn format_name(credential: &PublicKeyCredential) -> &'static str {
    credential.format.name()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(format: &str, key: &str) -> Vec<u8> {
        serde_json::json!({"publicKey": {"format": format, "key": key}, "proof": "a.b.c"})
            .to_string()
            .into_bytes()
    }

    fn p256_point() -> Vec<u8> {
        let key = tether_keys::generate::generate(tether_keys::generate::KeySpec::Es256)
            .expect("generate");
        let spki = key.public_key().spki_der().to_vec();
        // The uncompressed point is the SPKI's last 65 bytes.
        spki[spki.len() - 65..].to_vec()
    }

    #[test]
    fn a_raw_engine_key_becomes_the_same_pem_with_or_without_its_prefix() {
        let point = p256_point();
        let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
        let with = parse(&body("ES256_RAW", &b64(&point))).expect("65 bytes");
        let without = parse(&body("ES256_RAW", &b64(&point[1..]))).expect("64 bytes");
        assert_eq!(with.credential, without.credential);
        assert_eq!(with.credential.format, PublicKeyFormat::Es256Pem);
        assert!(
            with.credential
                .key
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        // The PEM it stores reads back as the same key.
        let again = parse(&body("ES256_PEM", &with.credential.key)).expect("pem");
        assert_eq!(again.credential, with.credential);
        assert_eq!(again.key.fingerprint(), with.key.fingerprint());
    }

    #[test]
    fn each_bad_request_names_what_is_wrong() {
        let cases: [(&[u8], &str); 8] = [
            (b"not json", "not JSON"),
            (b"[]", "must be a JSON object"),
            (br#"{"proof": "x"}"#, "no 'publicKey'"),
            (
                br#"{"publicKey": {"format": "ES256_RAW", "key": "AAAA"}}"#,
                "no 'proof'",
            ),
            (
                br#"{"publicKey": {"format": "ES256_RAW", "key": "AAAA"}, "proof": "x", "more": 1}"#,
                "unknown field 'more'",
            ),
            (
                br#"{"publicKey": {"format": "ES512", "key": "AAAA"}, "proof": "x"}"#,
                "format 'ES512' is not known",
            ),
            (
                br#"{"publicKey": {"format": "ES256_RAW", "key": "AAAA"}, "proof": "x"}"#,
                "3 bytes and not a P-256 point",
            ),
            (
                br#"{"publicKey": {"format": "ES256_RAW", "key": "@@"}, "proof": "x"}"#,
                "not base64",
            ),
        ];
        for (input, expected) in cases {
            let refused = parse(input).expect_err("refused");
            assert_eq!(refused.code, Code::InvalidArgument);
            assert!(
                refused.message.contains(expected),
                "{expected:?} not in {:?}",
                refused.message
            );
        }
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(
            parse(&big)
                .expect_err("too big")
                .message
                .contains("at most")
        );
    }
}
