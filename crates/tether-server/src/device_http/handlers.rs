//! The three bridge methods. Bodies follow the proto3 JSON mapping (camelCase or
//! snake_case, base64 `binaryData`); success is `200 {}` (publishEvent, setState) as
//! Google's sample expects, errors use Google's envelope.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tether_registry::ActivityKind;
use tether_registry::model::Timestamp;

use super::auth::{self, Caller, GatewayInfo};
use super::{Call, DeviceBridge, Target};
use crate::api::error::{ApiError, ApiResult};
use crate::api::json::Enc;
use crate::api::json::device::render_config;
use crate::api::json::reader::Obj;
use crate::api::request::json_body_limited;
use crate::bridge::Code;
use crate::bridge::uplink::{self, Routing};

/// Longest subfolder (spec §0: ≤ 256 bytes).
const SUBFOLDER_BYTES: usize = 256;

/// Answers one bridge call.
pub(super) async fn handle(bridge: &DeviceBridge, target: Target, request: Request) -> Response {
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let query = request.uri().query().map(str::to_owned);
    let result = match target.call {
        Call::PublishEvent => {
            publish_event(
                bridge,
                &target,
                authorization.as_deref(),
                request.into_body(),
            )
            .await
        }
        Call::SetState => {
            set_state(
                bridge,
                &target,
                authorization.as_deref(),
                request.into_body(),
            )
            .await
        }
        Call::GetConfig => {
            get_config(bridge, &target, authorization.as_deref(), query.as_deref()).await
        }
        Call::Provision => super::provision::provision(
            bridge,
            &target,
            authorization.as_deref(),
            request.into_body(),
        )
        .await
        .map_err(Refusal::from),
    };
    let label = match target.call {
        Call::PublishEvent => "publishEvent",
        Call::SetState => "setState",
        Call::GetConfig => "getConfig",
        Call::Provision => "provision",
    };
    match result {
        Ok(value) => {
            metrics::counter!("tether_http_bridge_requests_total", "method" => label, "code" => "OK")
                .increment(1);
            axum::Json(value).into_response()
        }
        Err(Refusal { error, retry_after }) => {
            metrics::counter!("tether_http_bridge_requests_total", "method" => label, "code" => error.code.name())
                .increment(1);
            let budget = &bridge.inner.log_budget;
            budget.refused();
            let key = format!("http:{}/{}", target.registry, target.device);
            if budget.allow(&key) {
                tracing::info!(
                    method = label,
                    "HTTP bridge call refused: {}",
                    error.message
                );
            }
            let mut response = error.into_response();
            if let Some(secs) = retry_after {
                response.headers_mut().insert(RETRY_AFTER, secs.into());
            }
            response
        }
    }
}

/// An error answer, with `Retry-After` seconds for a rate refusal.
struct Refusal {
    error: ApiError,
    retry_after: Option<u64>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

type BridgeResult = Result<Value, Refusal>;

async fn publish_event(
    bridge: &DeviceBridge,
    target: &Target,
    authorization: Option<&str>,
    body: Body,
) -> BridgeResult {
    let mut o = Obj::new(read_body(bridge, body).await?, "")?;
    let data = o.bytes("binaryData")?.unwrap_or_default();
    let subfolder = o.string("subFolder")?.unwrap_or_default();
    let info = gateway_info(&mut o)?;
    o.finish()?;
    let caller = auth::authorize(bridge, target, authorization, info).await?;
    let limits = bridge.inner.limits;
    check_size("binaryData", data.len(), limits.telemetry_bytes)?;
    if subfolder.len() > SUBFOLDER_BYTES {
        return Err(ApiError::invalid(format!(
            "subFolder is {} bytes; the limit is {SUBFOLDER_BYTES}",
            subfolder.len()
        ))
        .into());
    }
    take(bridge, &caller, false)?;
    let coords = uplink::coordinates(&caller.address, &caller.device.id);
    let message = uplink::event_message(
        &Routing::of(&caller.registry),
        coords.event_attributes(&subfolder),
        &subfolder,
        data,
        bridge.inner.clock.unix_micros(),
    )
    .map_err(|why| {
        ApiError::invalid(format!(
            "telemetry to subfolder '{}' cannot be delivered: {why}",
            crate::bridge::shown(&subfolder)
        ))
    })?;
    uplink::publish(
        &*bridge.inner.sink,
        vec![message],
        bridge.inner.sink_timeout,
    )
    .await
    .map_err(|e| {
        ApiError::new(
            Code::Unavailable,
            format!("the telemetry was not accepted ({e}); retry"),
        )
    })?;
    accessed(bridge, &caller, ActivityKind::Event);
    Ok(json!({}))
}

async fn set_state(
    bridge: &DeviceBridge,
    target: &Target,
    authorization: Option<&str>,
    body: Body,
) -> BridgeResult {
    let mut o = Obj::new(read_body(bridge, body).await?, "")?;
    let data = match o.object("state")? {
        Some(mut state) => {
            let data = state.bytes("binaryData")?;
            state.finish()?;
            data
        }
        None => None,
    }
    .ok_or_else(|| ApiError::invalid("state.binaryData is required"))?;
    let info = gateway_info(&mut o)?;
    o.finish()?;
    let caller = auth::authorize(bridge, target, authorization, info).await?;
    check_size(
        "state.binaryData",
        data.len(),
        bridge.inner.limits.state_bytes,
    )?;
    take(bridge, &caller, true)?;
    let coords = uplink::coordinates(&caller.address, &caller.device.id);
    uplink::store_state(
        &*bridge.inner.store,
        std::sync::Arc::clone(&bridge.inner.sink),
        uplink::StateNotice {
            topic: Routing::of(&caller.registry).state_topic(),
            coords: &coords,
            attributes: std::collections::BTreeMap::new(),
        },
        &caller.address,
        data,
        Timestamp(bridge.inner.clock.unix_micros()),
    )
    .await
    .map_err(ApiError::from)?;
    accessed(bridge, &caller, ActivityKind::State);
    Ok(json!({}))
}

async fn get_config(
    bridge: &DeviceBridge,
    target: &Target,
    authorization: Option<&str>,
    query: Option<&str>,
) -> BridgeResult {
    let mut local_version = 0i64;
    let mut info = GatewayInfo::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*key {
            "localVersion" | "local_version" => {
                local_version = value.parse().map_err(|_| {
                    ApiError::invalid(format!("localVersion must be an integer (got '{value}')"))
                })?;
            }
            "gatewayInfo.delegatedDeviceId" | "gateway_info.delegated_device_id" => {
                info.delegated_device_id = Some(value.into_owned());
            }
            "gatewayInfo.gatewayId" | "gateway_info.gateway_id" => {
                info.gateway_id = Some(value.into_owned());
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "unknown query parameter '{key}' (getConfig takes localVersion)"
                ))
                .into());
            }
        }
    }
    let caller = auth::authorize(bridge, target, authorization, info).await?;
    take(bridge, &caller, false)?;
    let config = &caller.device.config;
    if local_version < 0 {
        return Err(ApiError::invalid("localVersion must not be negative").into());
    }
    if local_version > config.version {
        return Err(ApiError::new(
            Code::OutOfRange,
            format!(
                "localVersion {local_version} is ahead of the server's latest config version \
                 {}",
                config.version
            ),
        )
        .into());
    }
    let mut rendered = render_config(config, Enc::default());
    // Data only when newer than what the device has (0 = always).
    if local_version != 0
        && local_version >= config.version
        && let Value::Object(map) = &mut rendered
    {
        map.remove("binaryData");
    }
    accessed(bridge, &caller, ActivityKind::ConfigSent);
    Ok(rendered)
}

fn gateway_info(o: &mut Obj) -> ApiResult<GatewayInfo> {
    let Some(mut g) = o.object("gatewayInfo")? else {
        return Ok(GatewayInfo::default());
    };
    let info = GatewayInfo {
        delegated_device_id: g.string("delegatedDeviceId")?.filter(|s| !s.is_empty()),
        gateway_id: g.string("gatewayId")?.filter(|s| !s.is_empty()),
    };
    g.finish()?;
    Ok(info)
}

fn check_size(field: &str, len: usize, max: usize) -> ApiResult<()> {
    if len > max {
        return Err(ApiError::invalid(format!(
            "{field} is {len} bytes; the limit is {max}"
        )));
    }
    Ok(())
}

fn take(bridge: &DeviceBridge, caller: &Caller, state: bool) -> Result<(), Refusal> {
    bridge.take(&caller.address, state).map_err(|wait| {
        let what = if state {
            format!("{} state update(s)", bridge.inner.limits.state_per_sec)
        } else {
            format!("{} message(s)", bridge.inner.limits.messages_per_sec)
        };
        Refusal {
            error: ApiError::new(
                Code::ResourceExhausted,
                format!("the device may send {what} per second; retry later"),
            ),
            retry_after: Some(wait.as_secs().max(1)),
        }
    })
}

/// Records the call on the device (and the gateway it came through).
fn accessed(bridge: &DeviceBridge, caller: &Caller, kind: ActivityKind) {
    auth::record(bridge, &caller.address, kind);
    if let Some(gateway_id) = &caller.gateway_id {
        auth::record(
            bridge,
            &caller.address,
            ActivityKind::GatewayAccess {
                gateway_id: gateway_id.clone(),
            },
        );
    }
}

async fn read_body(bridge: &DeviceBridge, body: Body) -> Result<Value, ApiError> {
    let limits = bridge.inner.limits;
    // base64 grows data by 4/3; leave room for the JSON around it.
    let max = limits.telemetry_bytes.max(limits.state_bytes) / 3 * 4 + 16 * 1024;
    json_body_limited(body, max, "the HTTP bridge's limit of").await
}
