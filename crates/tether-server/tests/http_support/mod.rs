//! Shared set-up of the HTTP bridge tests: the MQTT test gateway (store, telemetry
//! log, CA) plus the admin router with the device bridge in front of it.
#![allow(dead_code, clippy::unwrap_used)] // Each test binary uses part of it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tether_registry::model::{GatewayAuthMethod, GatewayConfig, GatewayType};
use tether_server::api::auth::AdminAuth;
use tether_server::api::{ApiState, router};
use tether_server::bridge::{BridgeDeps, JwtPolicy, Limits, SystemClock};
use tether_server::device_http::{DeviceBridge, with_bridge};
use tower::ServiceExt as _;

use super::mqtt_support::*;

pub const ADMIN_TOKEN: &str = "admin-token-for-bridge-tests";

/// The bridge over the gateway's store and telemetry log.
pub fn bridge(gw: &Gateway) -> DeviceBridge {
    let deps = BridgeDeps::new(gw.store.clone(), gw.log.clone());
    DeviceBridge::new(
        &deps,
        JwtPolicy::default(),
        Limits::default(),
        std::time::Duration::from_secs(30),
    )
}

/// The admin API with the bridge in front, as `tether serve` wires it.
pub fn app(gw: &Gateway) -> Router {
    let state = ApiState {
        store: gw.store.clone(),
        hub: gw.handle().hub(),
        admin: AdminAuth::from_token(ADMIN_TOKEN, "the test"),
        clock: Arc::new(SystemClock),
    };
    with_bridge(router(state), bridge(gw))
}

/// `projects/…/devices/{id}`.
pub fn device_name(id: &str) -> String {
    format!("{}/devices/{id}", registry_path())
}

/// One request through the router: status, JSON body (Null when empty), headers.
pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value, HeaderMap) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(v) => {
            request = request.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, value, headers)
}

/// A gateway device with `method`.
pub async fn gateway_device(gw: &Gateway, id: &str, method: GatewayAuthMethod) -> TestDevice {
    gw.device_with(id, |d| {
        d.gateway_config = GatewayConfig {
            gateway_type: GatewayType::Gateway,
            gateway_auth_method: method,
            ..GatewayConfig::default()
        };
    })
    .await
    .unwrap()
}
