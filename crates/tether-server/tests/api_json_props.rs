//! Property tests for the admin API's request readers: the fallback for the
//! `api_json` fuzz target (fuzz/, nightly only) in the normal test run. Both run the
//! same checks, `tether_server::api::fuzzing`, here on JSON bodies built from the
//! resources' field names with arbitrary values, and on arbitrary protobuf bytes.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tether_server::api::fuzzing::{
    check_body as check, check_grpc_device, check_grpc_registry, check_mask_and_query,
};
use tether_server::api::grpc::{to_json, types};
use tether_server::api::json::device::parse_device;

/// Names the readers know, a few they do not, and both spellings.
const KEYS: &[&str] = &[
    "id",
    "name",
    "numId",
    "credentials",
    "blocked",
    "metadata",
    "logLevel",
    "log_level",
    "gatewayConfig",
    "gatewayType",
    "gatewayAuthMethod",
    "config",
    "version",
    "binaryData",
    "publicKey",
    "format",
    "key",
    "expirationTime",
    "eventNotificationConfigs",
    "subfolderMatches",
    "pubsubTopicName",
    "stateNotificationConfig",
    "mqttConfig",
    "mqttEnabledState",
    "httpConfig",
    "httpEnabledState",
    "colour",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "ES256_PEM",
            "RSA_X509_PEM",
            "GATEWAY",
            "NON_GATEWAY",
            "ASSOCIATION_ONLY",
            "INFO",
            "DEBUG",
            "MQTT_ENABLED",
            "HTTP_DISABLED",
            "2030-01-01T00:00:00Z",
            "AAE=",
            "-_8",
            "dev-1",
            "projects/p/topics/t",
            "12",
            "",
        ])
        .prop_map(|s| Value::String(s.into())),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| ((*k).to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn json_bodies_read_render_and_read_again(v in value()) {
        check(v.clone());
        check(json!({"id": "dev-1", "x": v}));
    }

    #[test]
    fn grpc_messages_map_to_bodies_that_read_or_are_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        check_grpc_device(&bytes);
        check_grpc_registry(&bytes);
    }

    #[test]
    fn masks_and_queries_parse_or_are_refused(text in ".{0,64}") {
        check_mask_and_query(&text);
    }
}

/// A valid device round-trips through the gRPC mapping.
#[test]
fn a_grpc_device_reads_as_its_json() {
    let d = types::Device {
        id: "dev-1".into(),
        blocked: true,
        log_level: types::LogLevel::Debug as i32,
        metadata: [("site".to_string(), "north".to_string())].into(),
        ..Default::default()
    };
    let input = parse_device(to_json::device(&d), "device").expect("reads");
    assert_eq!(input.device.id, "dev-1");
    assert!(input.device.blocked);
    assert_eq!(
        input.device.metadata.get("site").map(String::as_str),
        Some("north")
    );
}
