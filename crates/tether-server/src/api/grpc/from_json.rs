//! The proto3 JSON the REST operations answer with, back into Google's messages for
//! the gRPC answer. The JSON is the server's own rendering, so a field that does not
//! read (it cannot happen short of a bug) is an INTERNAL error that names it rather
//! than a silently empty field.

use base64::Engine as _;
use serde_json::Value;

use super::types::{
    self, Device, DeviceConfig, DeviceCredential, DeviceRegistry, DeviceState,
    EventNotificationConfig, GatewayConfig, HttpConfig, MqttConfig, PublicKeyCertificate,
    PublicKeyCredential, RegistryCredential, StateNotificationConfig, X509CertificateDetails,
    device_credential, registry_credential,
};
use crate::api::error::{ApiError, ApiResult};
use crate::bridge::Code;

/// One JSON object being read, with its path for errors.
struct Get<'a> {
    v: &'a Value,
    at: &'a str,
}

fn broken(at: &str, key: &str, what: &str) -> ApiError {
    ApiError::new(
        Code::Internal,
        format!("the answer's field {at}.{key} is not {what}; this is a bug in Tether"),
    )
}

impl<'a> Get<'a> {
    fn new(v: &'a Value, at: &'a str) -> Self {
        Get { v, at }
    }

    fn field(&self, key: &str) -> Option<&'a Value> {
        self.v.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> ApiResult<String> {
        match self.field(key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(broken(self.at, key, "a string")),
        }
    }

    fn boolean(&self, key: &str) -> ApiResult<bool> {
        match self.field(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(broken(self.at, key, "a boolean")),
        }
    }

    fn number<T: std::str::FromStr + Default>(&self, key: &str) -> ApiResult<T> {
        match self.field(key) {
            None => Ok(T::default()),
            Some(Value::String(s)) => s.parse().map_err(|_| broken(self.at, key, "an integer")),
            Some(Value::Number(n)) => n
                .to_string()
                .parse()
                .map_err(|_| broken(self.at, key, "an integer")),
            Some(_) => Err(broken(self.at, key, "an integer")),
        }
    }

    fn bytes(&self, key: &str) -> ApiResult<Vec<u8>> {
        let text = self.string(key)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| broken(self.at, key, "base64"))
    }

    fn time(&self, key: &str) -> ApiResult<Option<prost_types::Timestamp>> {
        match self.field(key) {
            None => Ok(None),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| broken(self.at, key, "an RFC 3339 time")),
            Some(_) => Err(broken(self.at, key, "an RFC 3339 time")),
        }
    }

    /// An enum written by name (or by number).
    fn enumeration(&self, key: &str, from_name: fn(&str) -> Option<i32>) -> ApiResult<i32> {
        match self.field(key) {
            None => Ok(0),
            Some(Value::String(s)) => {
                from_name(s).ok_or_else(|| broken(self.at, key, "a known enum name"))
            }
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| broken(self.at, key, "an enum number")),
            Some(_) => Err(broken(self.at, key, "an enum")),
        }
    }

    fn object(&self, key: &str) -> Option<Get<'a>> {
        self.field(key).map(|v| Get { v, at: self.at })
    }

    fn list(&self, key: &str) -> impl Iterator<Item = Get<'a>> + 'a {
        let at = self.at;
        self.field(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(move |v| Get { v, at })
    }
}

macro_rules! from_name {
    ($t:ty) => {
        |s: &str| <$t>::from_str_name(s).map(|e| e as i32)
    };
}

/// A `Device`.
pub fn device(v: &Value) -> ApiResult<Device> {
    let o = Get::new(v, "device");
    let credentials = o
        .list("credentials")
        .map(|c| credential(&c))
        .collect::<ApiResult<_>>()?;
    let mut metadata = std::collections::HashMap::new();
    if let Some(Value::Object(m)) = o.field("metadata") {
        for (k, v) in m {
            let v = v
                .as_str()
                .ok_or_else(|| broken("device.metadata", k, "a string"))?;
            metadata.insert(k.clone(), v.to_string());
        }
    }
    Ok(Device {
        id: o.string("id")?,
        name: o.string("name")?,
        num_id: o.number("numId")?,
        credentials,
        last_heartbeat_time: o.time("lastHeartbeatTime")?,
        last_event_time: o.time("lastEventTime")?,
        last_state_time: o.time("lastStateTime")?,
        last_config_ack_time: o.time("lastConfigAckTime")?,
        last_config_send_time: o.time("lastConfigSendTime")?,
        blocked: o.boolean("blocked")?,
        last_error_time: o.time("lastErrorTime")?,
        last_error_status: o
            .object("lastErrorStatus")
            .map(|s| -> ApiResult<_> {
                Ok(super::rpc::Status {
                    code: s.number("code")?,
                    message: s.string("message")?,
                    details: Vec::new(),
                })
            })
            .transpose()?,
        config: o.object("config").map(|c| config_of(&c)).transpose()?,
        state: o.object("state").map(|s| state_of(&s)).transpose()?,
        log_level: o.enumeration("logLevel", from_name!(types::LogLevel))?,
        metadata,
        gateway_config: o
            .object("gatewayConfig")
            .map(|g| -> ApiResult<_> {
                Ok(GatewayConfig {
                    gateway_type: g.enumeration("gatewayType", from_name!(types::GatewayType))?,
                    gateway_auth_method: g
                        .enumeration("gatewayAuthMethod", from_name!(types::GatewayAuthMethod))?,
                    last_accessed_gateway_id: g.string("lastAccessedGatewayId")?,
                    last_accessed_gateway_time: g.time("lastAccessedGatewayTime")?,
                })
            })
            .transpose()?,
    })
}

fn credential(c: &Get<'_>) -> ApiResult<DeviceCredential> {
    let key = c
        .object("publicKey")
        .map(|k| -> ApiResult<_> {
            Ok(device_credential::Credential::PublicKey(
                PublicKeyCredential {
                    format: k.enumeration("format", from_name!(types::PublicKeyFormat))?,
                    key: k.string("key")?,
                },
            ))
        })
        .transpose()?;
    Ok(DeviceCredential {
        expiration_time: c.time("expirationTime")?,
        credential: key,
    })
}

fn config_of(c: &Get<'_>) -> ApiResult<DeviceConfig> {
    Ok(DeviceConfig {
        version: c.number("version")?,
        cloud_update_time: c.time("cloudUpdateTime")?,
        device_ack_time: c.time("deviceAckTime")?,
        binary_data: c.bytes("binaryData")?,
    })
}

fn state_of(s: &Get<'_>) -> ApiResult<DeviceState> {
    Ok(DeviceState {
        update_time: s.time("updateTime")?,
        binary_data: s.bytes("binaryData")?,
    })
}

/// A `DeviceConfig`.
pub fn config(v: &Value) -> ApiResult<DeviceConfig> {
    config_of(&Get::new(v, "deviceConfig"))
}

/// A `DeviceState`.
pub fn state(v: &Value) -> ApiResult<DeviceState> {
    state_of(&Get::new(v, "deviceState"))
}

/// A list's `nextPageToken`.
pub fn next_page_token(v: &Value) -> ApiResult<String> {
    Get::new(v, "response").string("nextPageToken")
}

/// The items of a list under `key`, each read by `read`.
pub fn items<T>(v: &Value, key: &str, read: fn(&Value) -> ApiResult<T>) -> ApiResult<Vec<T>> {
    Get::new(v, "response")
        .list(key)
        .map(|item| read(item.v))
        .collect()
}

/// A `DeviceRegistry`.
pub fn registry(v: &Value) -> ApiResult<DeviceRegistry> {
    let o = Get::new(v, "deviceRegistry");
    let event_notification_configs = o
        .list("eventNotificationConfigs")
        .map(|e| -> ApiResult<_> {
            Ok(EventNotificationConfig {
                subfolder_matches: e.string("subfolderMatches")?,
                pubsub_topic_name: e.string("pubsubTopicName")?,
            })
        })
        .collect::<ApiResult<_>>()?;
    let credentials = o
        .list("credentials")
        .map(|c| -> ApiResult<_> {
            let cert = c
                .object("publicKeyCertificate")
                .map(|p| certificate(&p))
                .transpose()?;
            Ok(RegistryCredential {
                credential: cert.map(registry_credential::Credential::PublicKeyCertificate),
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(DeviceRegistry {
        id: o.string("id")?,
        name: o.string("name")?,
        event_notification_configs,
        state_notification_config: o
            .object("stateNotificationConfig")
            .map(|s| -> ApiResult<_> {
                Ok(StateNotificationConfig {
                    pubsub_topic_name: s.string("pubsubTopicName")?,
                })
            })
            .transpose()?,
        mqtt_config: o
            .object("mqttConfig")
            .map(|m| -> ApiResult<_> {
                Ok(MqttConfig {
                    mqtt_enabled_state: m
                        .enumeration("mqttEnabledState", from_name!(types::MqttState))?,
                })
            })
            .transpose()?,
        http_config: o
            .object("httpConfig")
            .map(|h| -> ApiResult<_> {
                Ok(HttpConfig {
                    http_enabled_state: h
                        .enumeration("httpEnabledState", from_name!(types::HttpState))?,
                })
            })
            .transpose()?,
        log_level: o.enumeration("logLevel", from_name!(types::LogLevel))?,
        credentials,
    })
}

fn certificate(p: &Get<'_>) -> ApiResult<PublicKeyCertificate> {
    Ok(PublicKeyCertificate {
        format: p.enumeration("format", from_name!(types::PublicKeyCertificateFormat))?,
        certificate: p.string("certificate")?,
        x509_details: p
            .object("x509Details")
            .map(|x| -> ApiResult<_> {
                Ok(X509CertificateDetails {
                    issuer: x.string("issuer")?,
                    subject: x.string("subject")?,
                    start_time: x.time("startTime")?,
                    expiry_time: x.time("expiryTime")?,
                    signature_algorithm: x.string("signatureAlgorithm")?,
                    public_key_type: x.string("publicKeyType")?,
                })
            })
            .transpose()?,
    })
}
