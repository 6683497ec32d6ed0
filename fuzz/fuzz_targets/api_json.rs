//! The admin API's request readers on arbitrary input, on both transports: JSON
//! bodies as REST receives them, and protobuf messages as gRPC receives them
//! (decoded by prost, mapped to proto3 JSON, then read by the same readers).
//!
//! Checked: a body that reads renders back (names and numbers for enums) to JSON
//! that reads again to the same resource; field masks and query strings either
//! parse or are refused, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use serde_json::Value;
use tether_registry::names::parse_registry;
use tether_server::api::grpc::{to_json, types};
use tether_server::api::json::device::{parse_device, render_device};
use tether_server::api::json::mask::FieldMask;
use tether_server::api::json::registry::{parse_registry as read_registry, render_registry};
use tether_server::api::json::Enc;
use tether_server::api::request::Query;

const MASK_PATHS: &[&str] = &["blocked", "metadata", "gateway_config.gateway_type"];

fn check_json(v: Value) {
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
            assert_eq!(again.device.gateway_config.gateway_type, input.device.gateway_config.gateway_type);
        }
    }
    if let Ok(input) = read_registry(v, "device_registry") {
        let rendered = render_registry(&input.registry, Enc::default());
        let again = read_registry(rendered.clone(), "device_registry")
            .unwrap_or_else(|e| panic!("a rendered registry does not read: {e}\n{rendered}"));
        assert_eq!(again.registry.event_notification_configs, input.registry.event_notification_configs);
        assert_eq!(again.registry.mqtt_state, input.registry.mqtt_state);
        assert_eq!(again.registry.log_level, input.registry.log_level);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => {
            if let Ok(v) = serde_json::from_slice::<Value>(rest) {
                check_json(v);
            }
        }
        1 => {
            if let Ok(d) = types::Device::decode(rest) {
                check_json(to_json::device(&d));
            }
        }
        2 => {
            if let Ok(r) = types::DeviceRegistry::decode(rest) {
                check_json(to_json::registry(&r));
            }
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            let _ = FieldMask::parse("fieldMask", &text, MASK_PATHS);
            if let Ok(mut q) = Query::parse(Some(&text)) {
                let _ = q.take_count(&["pageSize"], 500);
                let _ = q.take_all(&["deviceIds"]);
                let _ = q.finish();
            }
        }
    }
});
