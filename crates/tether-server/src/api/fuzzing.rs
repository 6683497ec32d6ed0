//! Entry points for the `api_json` fuzz target in `fuzz/` and its property tests
//! (`tests/api_json_props.rs`): the admin API's request readers on arbitrary input,
//! on both transports. Not part of the API: this may change at any time.
//!
//! Checked: a device or registry body that reads renders back (enums as names and as
//! numbers) to JSON that reads again to the same fields; field masks and query
//! strings either parse or are refused; nothing panics.

use prost::Message as _;
use serde_json::Value;
use tether_registry::names::parse_registry;

use super::grpc::{to_json, types};
use super::json::Enc;
use super::json::device::{parse_device, render_device};
use super::json::mask::FieldMask;
use super::json::registry::{parse_registry as read_registry, render_registry};
use super::request::Query;

/// Paths the mask check offers as known.
const MASK_PATHS: &[&str] = &["blocked", "metadata", "gateway_config.gateway_type"];

/// The fuzz target's input: the first byte selects a JSON body, a protobuf
/// `Device`, a protobuf `DeviceRegistry` (both mapped to JSON as the gRPC
/// transport maps them), or a field mask and query string; the rest is the input.
pub fn check(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => {
            if let Ok(v) = serde_json::from_slice::<Value>(rest) {
                check_body(v);
            }
        }
        1 => check_grpc_device(rest),
        2 => check_grpc_registry(rest),
        _ => check_mask_and_query(&String::from_utf8_lossy(rest)),
    }
}

/// A protobuf `Device` as the gRPC transport receives it.
pub fn check_grpc_device(bytes: &[u8]) {
    if let Ok(d) = types::Device::decode(bytes) {
        check_body(to_json::device(&d));
    }
}

/// A protobuf `DeviceRegistry` as the gRPC transport receives it.
pub fn check_grpc_registry(bytes: &[u8]) {
    if let Ok(r) = types::DeviceRegistry::decode(bytes) {
        check_body(to_json::registry(&r));
    }
}

/// `text` as a field mask and as a query string.
pub fn check_mask_and_query(text: &str) {
    let _ = FieldMask::parse("fieldMask", text, MASK_PATHS);
    if let Ok(mut q) = Query::parse(Some(text)) {
        let _ = q.take_count(&["pageSize"], 500);
        let _ = q.take_all(&["deviceIds"]);
        let _ = q.finish();
    }
}

/// A request body, read as a device and as a registry.
///
/// # Panics
/// When a body that reads renders to JSON that does not read again to the same
/// fields: the property this checks.
pub fn check_body(v: Value) {
    let path = parse_registry("projects/p/locations/l/registries/reg").expect("a valid name");
    if let Ok(input) = parse_device(v.clone(), "device") {
        for enc in [Enc::default(), Enc { enum_ints: true }] {
            let rendered = render_device(&input.device, &path, enc);
            let again = parse_device(rendered.clone(), "device")
                .unwrap_or_else(|e| panic!("a rendered device does not read: {e}\n{rendered}"));
            assert_eq!(again.device.id, input.device.id);
            assert_eq!(again.device.credentials, input.device.credentials);
            assert_eq!(again.device.metadata, input.device.metadata);
            assert_eq!(again.device.blocked, input.device.blocked);
            assert_eq!(again.device.log_level, input.device.log_level);
            assert_eq!(
                again.device.gateway_config.gateway_type,
                input.device.gateway_config.gateway_type
            );
        }
    }
    if let Ok(input) = read_registry(v, "device_registry") {
        let rendered = render_registry(&input.registry, Enc::default());
        let again = read_registry(rendered.clone(), "device_registry")
            .unwrap_or_else(|e| panic!("a rendered registry does not read: {e}\n{rendered}"));
        assert_eq!(
            again.registry.event_notification_configs,
            input.registry.event_notification_configs
        );
        assert_eq!(again.registry.mqtt_state, input.registry.mqtt_state);
        assert_eq!(again.registry.log_level, input.registry.log_level);
    }
}
