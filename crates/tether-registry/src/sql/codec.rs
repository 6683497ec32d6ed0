//! How structured fields are stored: lists and maps as JSON text, so both dialects keep
//! them in one TEXT column and read them back the same way.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::model::{
    CertificateFormat, DeviceCredential, EventNotificationConfig, PublicKeyCredential,
    PublicKeyFormat, RegistryCredential, Timestamp, X509Details,
};
use crate::store::StoreError;

fn corrupt(column: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(format!("{column}: {why}"))
}

fn parse(column: &str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(column, e))
}

fn items<'a>(column: &str, value: &'a Value) -> Result<&'a Vec<Value>, StoreError> {
    value
        .as_array()
        .ok_or_else(|| corrupt(column, "expected a JSON array"))
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn time(v: &Value, key: &str) -> Option<Timestamp> {
    v.get(key).and_then(Value::as_i64).map(Timestamp)
}

fn number(v: &Value, key: &str) -> i32 {
    v.get(key)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
        .unwrap_or(0)
}

pub(crate) fn encode_device_credentials(creds: &[DeviceCredential]) -> String {
    Value::Array(
        creds
            .iter()
            .map(|c| {
                json!({
                    "format": c.public_key.format.number(),
                    "key": c.public_key.key,
                    "expirationTime": c.expiration_time.map(|t| t.0),
                })
            })
            .collect(),
    )
    .to_string()
}

pub(crate) fn decode_device_credentials(s: &str) -> Result<Vec<DeviceCredential>, StoreError> {
    const COLUMN: &str = "device credentials";
    let value = parse(COLUMN, s)?;
    items(COLUMN, &value)?
        .iter()
        .map(|c| {
            let format = PublicKeyFormat::from_number(number(c, "format"))
                .ok_or_else(|| corrupt(COLUMN, "unknown key format"))?;
            Ok(DeviceCredential {
                public_key: PublicKeyCredential {
                    format,
                    key: text(c, "key"),
                },
                expiration_time: time(c, "expirationTime"),
            })
        })
        .collect()
}

pub(crate) fn encode_metadata(metadata: &BTreeMap<String, String>) -> String {
    Value::Object(
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
    .to_string()
}

pub(crate) fn decode_metadata(s: &str) -> Result<BTreeMap<String, String>, StoreError> {
    const COLUMN: &str = "device metadata";
    let value = parse(COLUMN, s)?;
    let map = value
        .as_object()
        .ok_or_else(|| corrupt(COLUMN, "expected a JSON object"))?;
    Ok(map
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect())
}

pub(crate) fn encode_event_configs(configs: &[EventNotificationConfig]) -> String {
    Value::Array(
        configs
            .iter()
            .map(|c| {
                json!({
                    "subfolderMatches": c.subfolder_matches,
                    "pubsubTopicName": c.pubsub_topic_name,
                })
            })
            .collect(),
    )
    .to_string()
}

pub(crate) fn decode_event_configs(s: &str) -> Result<Vec<EventNotificationConfig>, StoreError> {
    const COLUMN: &str = "event notification configs";
    let value = parse(COLUMN, s)?;
    Ok(items(COLUMN, &value)?
        .iter()
        .map(|c| EventNotificationConfig {
            subfolder_matches: text(c, "subfolderMatches"),
            pubsub_topic_name: text(c, "pubsubTopicName"),
        })
        .collect())
}

pub(crate) fn encode_registry_credentials(creds: &[RegistryCredential]) -> String {
    Value::Array(
        creds
            .iter()
            .map(|c| {
                let details = c.x509_details.as_ref().map(|d| {
                    json!({
                        "issuer": d.issuer,
                        "subject": d.subject,
                        "startTime": d.start_time.map(|t| t.0),
                        "expiryTime": d.expiry_time.map(|t| t.0),
                        "signatureAlgorithm": d.signature_algorithm,
                        "publicKeyType": d.public_key_type,
                    })
                });
                json!({
                    "format": c.format.number(),
                    "certificate": c.certificate,
                    "x509Details": details,
                })
            })
            .collect(),
    )
    .to_string()
}

pub(crate) fn decode_registry_credentials(s: &str) -> Result<Vec<RegistryCredential>, StoreError> {
    const COLUMN: &str = "registry credentials";
    let value = parse(COLUMN, s)?;
    items(COLUMN, &value)?
        .iter()
        .map(|c| {
            let format = CertificateFormat::from_number(number(c, "format"))
                .ok_or_else(|| corrupt(COLUMN, "unknown certificate format"))?;
            let x509_details =
                c.get("x509Details")
                    .filter(|d| d.is_object())
                    .map(|d| X509Details {
                        issuer: text(d, "issuer"),
                        subject: text(d, "subject"),
                        start_time: time(d, "startTime"),
                        expiry_time: time(d, "expiryTime"),
                        signature_algorithm: text(d, "signatureAlgorithm"),
                        public_key_type: text(d, "publicKeyType"),
                    });
            Ok(RegistryCredential {
                format,
                certificate: text(c, "certificate"),
                x509_details,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let creds = vec![DeviceCredential {
            public_key: PublicKeyCredential {
                format: PublicKeyFormat::Es256Pem,
                key: "-----BEGIN PUBLIC KEY-----\n…".into(),
            },
            expiration_time: Some(Timestamp(42)),
        }];
        assert_eq!(
            decode_device_credentials(&encode_device_credentials(&creds)),
            Ok(creds)
        );
        let meta = BTreeMap::from([("k".to_string(), "v \"q\"".to_string())]);
        assert_eq!(decode_metadata(&encode_metadata(&meta)), Ok(meta));
        let reg = vec![RegistryCredential {
            format: CertificateFormat::X509Pem,
            certificate: "pem".into(),
            x509_details: Some(X509Details {
                issuer: "CN=a".into(),
                start_time: Some(Timestamp(1)),
                ..X509Details::default()
            }),
        }];
        assert_eq!(
            decode_registry_credentials(&encode_registry_credentials(&reg)),
            Ok(reg)
        );
        assert!(matches!(
            decode_metadata("["),
            Err(StoreError::Corrupt { what }) if what.starts_with("device metadata: ")
        ));
    }
}
