//! `Device`, `DeviceConfig`, `DeviceState` in proto3 JSON.

use serde_json::Value;
use tether_registry::model::{
    Device, DeviceConfig, DeviceCredential, DeviceState, GatewayConfig, PublicKeyCredential,
};
use tether_registry::names::RegistryPath;

use super::reader::Obj;
use super::{Enc, Out};
use crate::api::error::{ApiError, ApiResult};

/// A `Device` as read from a request body, before the rules are checked.
#[derive(Debug, Clone, Default)]
pub struct DeviceInput {
    /// The model fields that were given (others are defaults).
    pub device: Device,
    /// `name` as given (ignored: the URL names the device).
    pub name: Option<String>,
    /// `config.version` as given (must be 0 on create).
    pub config_version: i64,
    /// Whether `config.binaryData` was given.
    pub has_config: bool,
}

/// Reads a `Device` body; output-only fields are accepted and ignored.
pub fn parse_device(body: Value, at: &str) -> ApiResult<DeviceInput> {
    let mut o = Obj::new(body, at)?;
    let mut input = DeviceInput::default();
    let d = &mut input.device;
    d.id = o.string("id")?.unwrap_or_default();
    input.name = o.string("name")?;
    for (v, at) in o.array("credentials")? {
        d.credentials.push(parse_credential(v, &at)?);
    }
    d.blocked = o.boolean("blocked")?.unwrap_or(false);
    if let Some(mut c) = o.object("config")? {
        input.config_version = c.int64("version")?.unwrap_or(0);
        if let Some(data) = c.bytes("binaryData")? {
            d.config.binary_data = data;
            input.has_config = true;
        }
        c.ignore("cloudUpdateTime");
        c.ignore("deviceAckTime");
        c.finish()?;
    }
    d.log_level = o.enumeration("logLevel")?.unwrap_or_default();
    if let Some(pairs) = o.string_map("metadata")? {
        d.metadata = pairs.into_iter().collect();
    }
    if let Some(mut g) = o.object("gatewayConfig")? {
        d.gateway_config.gateway_type = g.enumeration("gatewayType")?.unwrap_or_default();
        d.gateway_config.gateway_auth_method =
            g.enumeration("gatewayAuthMethod")?.unwrap_or_default();
        g.ignore("lastAccessedGatewayId");
        g.ignore("lastAccessedGatewayTime");
        g.finish()?;
    }
    for output_only in [
        "numId",
        "lastHeartbeatTime",
        "lastEventTime",
        "lastStateTime",
        "lastConfigAckTime",
        "lastConfigSendTime",
        "lastErrorTime",
        "lastErrorStatus",
        "state",
    ] {
        o.ignore(output_only);
    }
    o.finish()?;
    Ok(input)
}

/// Reads one `DeviceCredential`.
pub fn parse_credential(v: Value, at: &str) -> ApiResult<DeviceCredential> {
    let mut c = Obj::new(v, at)?;
    let public_key_at = c.path("publicKey");
    let mut k = c.object("publicKey")?.ok_or_else(|| {
        ApiError::invalid(format!(
            "{public_key_at} is required: {{\"format\": \"ES256_PEM\", \"key\": \"-----BEGIN PUBLIC KEY-----…\"}}"
        ))
    })?;
    let public_key = PublicKeyCredential {
        format: k.enumeration("format")?.unwrap_or_default(),
        key: k.string("key")?.unwrap_or_default(),
    };
    k.finish()?;
    let expiration_time = c.timestamp("expirationTime")?;
    c.finish()?;
    Ok(DeviceCredential {
        public_key,
        expiration_time,
    })
}

fn render_credential(c: &DeviceCredential, enc: Enc) -> Value {
    let key = Out::new(enc)
        .enumeration("format", c.public_key.format)
        .string("key", &c.public_key.key)
        .build();
    Out::new(enc)
        .message("publicKey", key)
        .time("expirationTime", c.expiration_time)
        .build()
}

/// A `DeviceConfig`.
pub fn render_config(c: &DeviceConfig, enc: Enc) -> Value {
    Out::new(enc)
        .int64_always("version", c.version)
        .time("cloudUpdateTime", c.cloud_update_time)
        .time("deviceAckTime", c.device_ack_time)
        .bytes("binaryData", &c.binary_data)
        .build()
}

/// A `DeviceState`.
pub fn render_state(s: &DeviceState, enc: Enc) -> Value {
    Out::new(enc)
        .time("updateTime", s.update_time)
        .bytes("binaryData", &s.binary_data)
        .build()
}

fn render_gateway(g: &GatewayConfig, enc: Enc) -> Value {
    Out::new(enc)
        .enumeration("gatewayType", g.gateway_type)
        .enumeration("gatewayAuthMethod", g.gateway_auth_method)
        .string("lastAccessedGatewayId", &g.last_accessed_gateway_id)
        .time("lastAccessedGatewayTime", g.last_accessed_gateway_time)
        .build()
}

/// A whole `Device`; its name ends in the numId, as IoT Core's did.
pub fn render_device(d: &Device, registry: &RegistryPath, enc: Enc) -> Value {
    let status = d.last_error_status.as_ref().map(|s| {
        Out::new(enc)
            .int32("code", s.code)
            .string("message", &s.message)
            .build()
    });
    let metadata: serde_json::Map<String, Value> = d
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut out = Out::new(enc)
        .string("id", &d.id)
        .string("name", &registry.device_name(&d.num_id.to_string()))
        .int64("numId", d.num_id)
        .list(
            "credentials",
            d.credentials
                .iter()
                .map(|c| render_credential(c, enc))
                .collect(),
        )
        .time("lastHeartbeatTime", d.last_heartbeat_time)
        .time("lastEventTime", d.last_event_time)
        .time("lastStateTime", d.last_state_time)
        .time("lastConfigAckTime", d.last_config_ack_time)
        .time("lastConfigSendTime", d.last_config_send_time)
        .boolean("blocked", d.blocked)
        .time("lastErrorTime", d.last_error_time)
        .message_opt("lastErrorStatus", status)
        .message("config", render_config(&d.config, enc))
        .message_opt("state", d.state.as_ref().map(|s| render_state(s, enc)))
        .enumeration("logLevel", d.log_level);
    if !metadata.is_empty() {
        out = out.message("metadata", Value::Object(metadata));
    }
    out.message("gatewayConfig", render_gateway(&d.gateway_config, enc))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tether_registry::model::{GatewayType, LogLevel, PublicKeyFormat, Timestamp};

    fn registry() -> RegistryPath {
        RegistryPath {
            project: "p".into(),
            location: "us-central1".into(),
            registry: "reg".into(),
        }
    }

    #[test]
    fn renders_proto3_json() {
        let mut d = Device {
            id: "dev-1".into(),
            num_id: 2_718_281_828_459_045,
            log_level: LogLevel::Info,
            ..Device::default()
        };
        d.config.version = 1;
        d.config.binary_data = vec![0xfb, 0xff];
        d.config.cloud_update_time = Some(Timestamp::from_secs(1_700_000_000));
        d.gateway_config.gateway_type = GatewayType::NonGateway;
        d.metadata.insert("k".into(), "v".into());
        let v = render_device(&d, &registry(), Enc::default());
        assert_eq!(
            v,
            json!({
                "id": "dev-1",
                "name": "projects/p/locations/us-central1/registries/reg/devices/2718281828459045",
                "numId": "2718281828459045",
                "config": {"version": "1", "cloudUpdateTime": "2023-11-14T22:13:20Z", "binaryData": "+/8="},
                "logLevel": "INFO",
                "metadata": {"k": "v"},
                "gatewayConfig": {"gatewayType": "NON_GATEWAY"},
            })
        );
        let ints = render_device(&d, &registry(), Enc { enum_ints: true });
        assert_eq!(ints["logLevel"], json!(30));
        assert_eq!(ints["gatewayConfig"]["gatewayType"], json!(2));
    }

    #[test]
    fn parses_snake_case_numbers_and_ignores_output_only() -> ApiResult<()> {
        let input = parse_device(
            json!({
                "id": "dev-1",
                "num_id": "123",
                "credentials": [{"public_key": {"format": 2, "key": "k"}, "expiration_time": "2030-01-01T00:00:00Z"}],
                "log_level": 40,
                "config": {"version": "0", "binary_data": "-_8"},
                "gateway_config": {"gateway_type": "GATEWAY", "gateway_auth_method": 1},
                "lastHeartbeatTime": "2020-01-01T00:00:00Z",
            }),
            "device",
        )?;
        let d = input.device;
        assert_eq!(
            d.credentials[0].public_key.format,
            PublicKeyFormat::Es256Pem
        );
        assert_eq!(d.log_level, LogLevel::Debug);
        assert_eq!(d.config.binary_data, vec![0xfb, 0xff]);
        assert_eq!(d.gateway_config.gateway_type, GatewayType::Gateway);
        assert_eq!(d.num_id, 0);
        Ok(())
    }

    #[test]
    fn names_the_bad_field() {
        let e = parse_device(
            json!({"credentials": [{"publicKey": {"format": "ES999", "key": "k"}}]}),
            "device",
        );
        assert!(e.is_err_and(|e| e.message.starts_with(
            "Invalid value at 'device.credentials[0].publicKey.format' (TYPE_ENUM), \"ES999\""
        )));
        let e = parse_device(json!({"gatewayConfig": {"kind": 1}}), "device");
        assert!(e.is_err_and(|e| {
            e.message
                .contains("Unknown name \"kind\" at 'device.gatewayConfig'")
        }));
    }
}
