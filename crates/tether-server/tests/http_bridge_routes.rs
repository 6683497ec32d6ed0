//! The HTTP device bridge through the router, without a network (`oneshot`):
//! publishEvent, setState and getConfig with good and bad tokens, Google's error
//! envelope and statuses, HTTP_DISABLED, limits, gatewayInfo, and the separation
//! from the admin token.

mod http_support;
mod mqtt_support;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use http_support::*;
use mqtt_support::*;
use serde_json::json;
use tether_registry::Store as _;
use tether_registry::model::{GatewayAuthMethod, HttpState};
use tether_registry::names::DeviceRef;

fn url(id: &str, suffix: &str) -> String {
    format!("/v1/{}{suffix}", device_name(id))
}

#[tokio::test]
async fn publish_event_with_good_and_bad_tokens() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let app = app(&gw);
    let dev = gw.device("http-1").await?;
    let other = gw.device("http-2").await?;
    let body = json!({"binaryData": STANDARD.encode(b"hot"), "subFolder": "alerts"});

    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("http-1", ":publishEvent"),
        Some(&dev.jwt()),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value, json!({}));
    let records = gw.wait_records(ALERTS_TOPIC, 1).await;
    let message = &records[0].message;
    assert_eq!(message.data, b"hot");
    assert_eq!(message.attributes["deviceId"], "http-1");
    assert_eq!(message.attributes["subFolder"], "alerts");

    // snake_case and URL-safe base64, as Google's sample sends.
    let snake = json!({"binary_data": URL_SAFE.encode([0xfb, 0xff])});
    let (status, _, _) = call(
        &app,
        Method::POST,
        &url("http-1", ":publishEvent"),
        Some(&dev.jwt()),
        Some(snake),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // No token, a token of another device, the admin token: 401 in Google's envelope.
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("http-1", ":publishEvent"),
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(value["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(value["error"]["code"], 401);
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Bearer <device JWT>")
    );
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("http-1", ":publishEvent"),
        Some(&other.jwt()),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}");
    let status_seen = gw.wait_error("http-1", |s| s.code == 16).await;
    assert!(
        status_seen.message.starts_with("http: SERVER: "),
        "{status_seen:?}"
    );
    let (status, _, _) = call(
        &app,
        Method::POST,
        &url("http-1", ":publishEvent"),
        Some(ADMIN_TOKEN),
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the admin token is not a device JWT"
    );
    // A wrong audience.
    let now = now_secs();
    let wrong_aud = dev.jwt_with("other-project", now, now + 600);
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("http-1", ":publishEvent"),
        Some(&wrong_aud),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("aud"),
        "{value}"
    );

    // The device JWT does not open the admin API.
    let (status, _, _) = call(
        &app,
        Method::GET,
        &url("http-1", ""),
        Some(&dev.jwt()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(
        &app,
        Method::GET,
        &url("http-1", ""),
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the admin API is unchanged");

    // Bad bodies and unknown devices.
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("http-1", ":publishEvent"),
        Some(&dev.jwt()),
        Some(json!({"binaryData": 5})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    assert_eq!(value["error"]["status"], "INVALID_ARGUMENT");
    let (status, _, _) = call(
        &app,
        Method::POST,
        &url("http-1", ":publishEvent"),
        Some(&dev.jwt()),
        Some(json!({"nope": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("ghost", ":publishEvent"),
        Some(&dev.jwt()),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{value}");
    let stored = || async { gw.log.read(TELEMETRY_TOPIC, 0, 1000).await.map(|r| r.len()) };
    let before = stored().await?;
    let big = json!({"binaryData": STANDARD.encode(vec![0u8; 256 * 1024 + 1])});
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("http-1", ":publishEvent"),
        Some(&dev.jwt()),
        Some(big),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        value["error"]["message"], "binaryData is 262145 bytes; the limit is 262144",
        "{value}"
    );
    // A body far past any payload is cut off while it is read: 413, nothing stored.
    let huge = json!({"binaryData": STANDARD.encode(vec![0u8; 1024 * 1024])});
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("http-1", ":publishEvent"),
        Some(&dev.jwt()),
        Some(huge),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{value}");
    let message = value["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("the request body is larger than the HTTP bridge's limit of"),
        "{value}"
    );
    assert_eq!(stored().await?, before, "neither refused event was stored");
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn set_state_and_get_config() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let app = app(&gw);
    let dev = gw.device("http-3").await?;
    let body = json!({"state": {"binaryData": STANDARD.encode(b"on")}});
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("http-3", ":setState"),
        Some(&dev.jwt()),
        Some(body.clone()),
    )
    .await;
    assert_eq!((status, value), (StatusCode::OK, json!({})));
    let states = gw
        .store
        .list_states(&registry_path(), &DeviceRef::Id("http-3".into()), 10)
        .await?;
    assert_eq!(states[0].binary_data, b"on");
    gw.wait_records(STATE_TOPIC, 1).await;
    // State is limited to 1/s per device, as over MQTT.
    let (status, value, headers) = call(
        &app,
        Method::POST,
        &url("http-3", ":setState"),
        Some(&dev.jwt()),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{value}");
    assert_eq!(value["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(headers.contains_key("retry-after"));
    let (status, _, _) = call(
        &app,
        Method::POST,
        &url("http-3", ":setState"),
        Some(&dev.jwt()),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    gw.store
        .modify_config(
            &registry_path(),
            &DeviceRef::Id("http-3".into()),
            0,
            b"cfg-2",
            tether_registry::model::Timestamp::from_secs(now_secs()),
        )
        .await?;
    let (status, value, _) = call(
        &app,
        Method::GET,
        &url("http-3", "/config?localVersion=0"),
        Some(&dev.jwt()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["version"], "2");
    assert_eq!(value["binaryData"], STANDARD.encode(b"cfg-2"));
    let (_, value, _) = call(
        &app,
        Method::GET,
        &url("http-3", "/config?local_version=1"),
        Some(&dev.jwt()),
        None,
    )
    .await;
    assert_eq!(
        value["binaryData"],
        STANDARD.encode(b"cfg-2"),
        "newer than the device's"
    );
    let (_, value, _) = call(
        &app,
        Method::GET,
        &url("http-3", "/config?local_version=2"),
        Some(&dev.jwt()),
        None,
    )
    .await;
    assert_eq!(value["version"], "2");
    assert!(value.get("binaryData").is_none(), "not newer: no data");
    let (status, value, _) = call(
        &app,
        Method::GET,
        &url("http-3", "/config?localVersion=3"),
        Some(&dev.jwt()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(value["error"]["status"], "OUT_OF_RANGE");
    let (status, _, _) = call(
        &app,
        Method::GET,
        &url("http-3", "/config?localVersion=x"),
        Some(&dev.jwt()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call(
        &app,
        Method::GET,
        &url("http-3", "/config"),
        Some("not.a.jwt"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn http_disabled_and_blocked_devices_are_refused() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let app = app(&gw);
    let dev = gw.device("http-4").await?;
    let mut device = gw.get_device("http-4").await;
    device.blocked = true;
    gw.store.update_device(&registry_path(), &device).await?;
    let (status, value, _) = call(
        &app,
        Method::GET,
        &url("http-4", "/config"),
        Some(&dev.jwt()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{value}");
    assert_eq!(value["error"]["status"], "PERMISSION_DENIED");
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("blocked")
    );

    let mut registry = gw.store.get_registry(&registry_path()).await?;
    registry.http_state = HttpState::Disabled;
    gw.store.update_registry(&registry).await?;
    let dev = gw.device("http-5").await?;
    let (status, value, _) = call(
        &app,
        Method::GET,
        &url("http-5", "/config"),
        Some(&dev.jwt()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP_DISABLED")
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn gateways_act_for_bound_devices() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let app = app(&gw);
    let gateway = gateway_device(&gw, "http-gw", GatewayAuthMethod::AssociationOnly).await;
    let token_gw = gateway_device(&gw, "http-gw-tok", GatewayAuthMethod::DeviceAuthTokenOnly).await;
    let dev = gw.device("behind-1").await?;
    let _unbound = gw.device("behind-2").await?;
    gw.store
        .bind(
            &registry_path(),
            &DeviceRef::Id("http-gw".into()),
            &DeviceRef::Id("behind-1".into()),
        )
        .await?;
    let event = |info: serde_json::Value| json!({"binaryData": STANDARD.encode(b"relayed"), "gatewayInfo": info});

    // delegatedDeviceId: the gateway's path and token, for a bound device.
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("http-gw", ":publishEvent"),
        Some(&gateway.jwt()),
        Some(event(json!({"delegatedDeviceId": "behind-1"}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let records = gw.wait_records(TELEMETRY_TOPIC, 1).await;
    assert_eq!(records[0].message.attributes["deviceId"], "behind-1");
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("http-gw", ":publishEvent"),
        Some(&gateway.jwt()),
        Some(event(json!({"delegatedDeviceId": "behind-2"}))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{value}");
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not bound")
    );

    // getConfig for a delegated device takes gatewayInfo as query parameters.
    gw.store
        .modify_config(
            &registry_path(),
            &DeviceRef::Id("behind-1".into()),
            0,
            b"behind-cfg",
            tether_registry::model::Timestamp::from_secs(now_secs()),
        )
        .await?;
    let (status, value, _) = call(
        &app,
        Method::GET,
        &url("http-gw", "/config?gatewayInfo.delegatedDeviceId=behind-1"),
        Some(&gateway.jwt()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["binaryData"], STANDARD.encode(b"behind-cfg"));

    // gatewayId: the device's path and token, relayed by a gateway.
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("behind-1", ":publishEvent"),
        Some(&dev.jwt()),
        Some(event(json!({"gatewayId": "http-gw"}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let (status, _, _) = call(
        &app,
        Method::POST,
        &url("behind-1", ":publishEvent"),
        Some(&dev.jwt()),
        Some(event(json!({"gatewayId": "behind-2"}))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not a gateway");
    // A token-only gateway cannot vouch for a device with its own token.
    let (status, value, _) = call(
        &app,
        Method::POST,
        &url("http-gw-tok", ":publishEvent"),
        Some(&token_gw.jwt()),
        Some(event(json!({"delegatedDeviceId": "behind-2"}))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{value}");
    let (status, _, _) = call(
        &app,
        Method::POST,
        &url("behind-1", ":publishEvent"),
        Some(&dev.jwt()),
        Some(event(json!({"gatewayId": "http-gw-tok"}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let mut seen = String::new();
    for _ in 0..100 {
        seen = gw
            .get_device("behind-1")
            .await
            .gateway_config
            .last_accessed_gateway_id;
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen.starts_with("http-gw"), "{seen}");
    gw.shutdown().await;
    Ok(())
}
