//! Google's messages to the proto3 JSON mapping the REST operations read: what a
//! gRPC request carries becomes the body a REST client would have sent, field for
//! field. Default values are left out, as the mapping says, so an unset field means
//! the same on both transports.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::types::{
    self, Device, DeviceConfig, DeviceCredential, DeviceRegistry, DeviceState, GatewayConfig,
    ModifyCloudToDeviceConfigRequest, PublicKeyCertificate, RegistryCredential,
    SendCommandToDeviceRequest, device_credential, registry_credential,
};

/// A JSON object under construction.
#[derive(Debug, Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn string(mut self, key: &str, v: &str) -> Self {
        if !v.is_empty() {
            self.0.insert(key.into(), Value::String(v.into()));
        }
        self
    }

    /// int64 and uint64 are strings in the mapping.
    fn int64(mut self, key: &str, v: impl Into<i128>) -> Self {
        let v: i128 = v.into();
        if v != 0 {
            self.0.insert(key.into(), Value::String(v.to_string()));
        }
        self
    }

    fn boolean(mut self, key: &str, v: bool) -> Self {
        if v {
            self.0.insert(key.into(), Value::Bool(true));
        }
        self
    }

    fn bytes(mut self, key: &str, v: &[u8]) -> Self {
        if !v.is_empty() {
            let text = base64::engine::general_purpose::STANDARD.encode(v);
            self.0.insert(key.into(), Value::String(text));
        }
        self
    }

    fn time(mut self, key: &str, v: Option<&prost_types::Timestamp>) -> Self {
        if let Some(t) = v {
            self.0.insert(key.into(), Value::String(t.to_string()));
        }
        self
    }

    /// An enum by name; a number the generated type does not know stays a number,
    /// so that the operation refuses it in its own words.
    fn enumeration(mut self, key: &str, number: i32, name: Option<&'static str>) -> Self {
        if number != 0 {
            let v = name.map_or_else(|| Value::from(number), |n| Value::String(n.into()));
            self.0.insert(key.into(), v);
        }
        self
    }

    fn message(mut self, key: &str, v: Option<Value>) -> Self {
        if let Some(v) = v {
            self.0.insert(key.into(), v);
        }
        self
    }

    fn list(mut self, key: &str, v: Vec<Value>) -> Self {
        if !v.is_empty() {
            self.0.insert(key.into(), Value::Array(v));
        }
        self
    }

    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

macro_rules! enum_name {
    ($t:ty, $n:expr) => {
        <$t>::try_from($n).ok().map(|e| e.as_str_name())
    };
}

/// A `Device`.
pub fn device(d: &Device) -> Value {
    let metadata: Map<String, Value> = d
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Obj::default()
        .string("id", &d.id)
        .string("name", &d.name)
        .int64("numId", d.num_id)
        .list(
            "credentials",
            d.credentials.iter().map(credential).collect(),
        )
        .time("lastHeartbeatTime", d.last_heartbeat_time.as_ref())
        .time("lastEventTime", d.last_event_time.as_ref())
        .time("lastStateTime", d.last_state_time.as_ref())
        .time("lastConfigAckTime", d.last_config_ack_time.as_ref())
        .time("lastConfigSendTime", d.last_config_send_time.as_ref())
        .boolean("blocked", d.blocked)
        .time("lastErrorTime", d.last_error_time.as_ref())
        .message(
            "lastErrorStatus",
            d.last_error_status.as_ref().map(|s| {
                let mut o = Map::new();
                if s.code != 0 {
                    o.insert("code".into(), Value::from(s.code));
                }
                if !s.message.is_empty() {
                    o.insert("message".into(), Value::String(s.message.clone()));
                }
                Value::Object(o)
            }),
        )
        .message("config", d.config.as_ref().map(config))
        .message("state", d.state.as_ref().map(state))
        .enumeration(
            "logLevel",
            d.log_level,
            enum_name!(types::LogLevel, d.log_level),
        )
        .message(
            "metadata",
            (!metadata.is_empty()).then_some(Value::Object(metadata)),
        )
        .message("gatewayConfig", d.gateway_config.as_ref().map(gateway))
        .done()
}

fn credential(c: &DeviceCredential) -> Value {
    let key = c
        .credential
        .as_ref()
        .map(|device_credential::Credential::PublicKey(k)| {
            Obj::default()
                .enumeration(
                    "format",
                    k.format,
                    enum_name!(types::PublicKeyFormat, k.format),
                )
                .string("key", &k.key)
                .done()
        });
    Obj::default()
        .message("publicKey", key)
        .time("expirationTime", c.expiration_time.as_ref())
        .done()
}

/// A `DeviceConfig`.
pub fn config(c: &DeviceConfig) -> Value {
    Obj::default()
        .int64("version", c.version)
        .time("cloudUpdateTime", c.cloud_update_time.as_ref())
        .time("deviceAckTime", c.device_ack_time.as_ref())
        .bytes("binaryData", &c.binary_data)
        .done()
}

/// A `DeviceState`.
pub fn state(s: &DeviceState) -> Value {
    Obj::default()
        .time("updateTime", s.update_time.as_ref())
        .bytes("binaryData", &s.binary_data)
        .done()
}

fn gateway(g: &GatewayConfig) -> Value {
    Obj::default()
        .enumeration(
            "gatewayType",
            g.gateway_type,
            enum_name!(types::GatewayType, g.gateway_type),
        )
        .enumeration(
            "gatewayAuthMethod",
            g.gateway_auth_method,
            enum_name!(types::GatewayAuthMethod, g.gateway_auth_method),
        )
        .string("lastAccessedGatewayId", &g.last_accessed_gateway_id)
        .time(
            "lastAccessedGatewayTime",
            g.last_accessed_gateway_time.as_ref(),
        )
        .done()
}

/// A `DeviceRegistry`.
pub fn registry(r: &DeviceRegistry) -> Value {
    let events = r
        .event_notification_configs
        .iter()
        .map(|e| {
            Obj::default()
                .string("subfolderMatches", &e.subfolder_matches)
                .string("pubsubTopicName", &e.pubsub_topic_name)
                .done()
        })
        .collect();
    Obj::default()
        .string("id", &r.id)
        .string("name", &r.name)
        .list("eventNotificationConfigs", events)
        .message(
            "stateNotificationConfig",
            r.state_notification_config.as_ref().map(|s| {
                Obj::default()
                    .string("pubsubTopicName", &s.pubsub_topic_name)
                    .done()
            }),
        )
        .message(
            "mqttConfig",
            r.mqtt_config.as_ref().map(|m| {
                Obj::default()
                    .enumeration(
                        "mqttEnabledState",
                        m.mqtt_enabled_state,
                        enum_name!(types::MqttState, m.mqtt_enabled_state),
                    )
                    .done()
            }),
        )
        .message(
            "httpConfig",
            r.http_config.as_ref().map(|h| {
                Obj::default()
                    .enumeration(
                        "httpEnabledState",
                        h.http_enabled_state,
                        enum_name!(types::HttpState, h.http_enabled_state),
                    )
                    .done()
            }),
        )
        .enumeration(
            "logLevel",
            r.log_level,
            enum_name!(types::LogLevel, r.log_level),
        )
        .list(
            "credentials",
            r.credentials.iter().map(registry_credential).collect(),
        )
        .done()
}

fn registry_credential(c: &RegistryCredential) -> Value {
    let cert = c
        .credential
        .as_ref()
        .map(|registry_credential::Credential::PublicKeyCertificate(p)| certificate(p));
    Obj::default().message("publicKeyCertificate", cert).done()
}

fn certificate(p: &PublicKeyCertificate) -> Value {
    Obj::default()
        .enumeration(
            "format",
            p.format,
            enum_name!(types::PublicKeyCertificateFormat, p.format),
        )
        .string("certificate", &p.certificate)
        .message(
            "x509Details",
            p.x509_details.as_ref().map(|x| {
                Obj::default()
                    .string("issuer", &x.issuer)
                    .string("subject", &x.subject)
                    .time("startTime", x.start_time.as_ref())
                    .time("expiryTime", x.expiry_time.as_ref())
                    .string("signatureAlgorithm", &x.signature_algorithm)
                    .string("publicKeyType", &x.public_key_type)
                    .done()
            }),
        )
        .done()
}

/// The body of `modifyCloudToDeviceConfig`.
pub fn modify_config(r: &ModifyCloudToDeviceConfigRequest) -> Value {
    Obj::default()
        .int64("versionToUpdate", r.version_to_update)
        .bytes("binaryData", &r.binary_data)
        .done()
}

/// The body of `sendCommandToDevice`.
pub fn command(r: &SendCommandToDeviceRequest) -> Value {
    Obj::default()
        .bytes("binaryData", &r.binary_data)
        .string("subfolder", &r.subfolder)
        .done()
}

/// The body of `bindDeviceToGateway` and `unbindDeviceFromGateway`.
pub fn binding(gateway_id: &str, device_id: &str) -> Value {
    Obj::default()
        .string("gatewayId", gateway_id)
        .string("deviceId", device_id)
        .done()
}
