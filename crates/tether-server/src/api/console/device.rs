//! What the device list and the device page need beside the Device Manager API:
//! which devices are connected, and each key as the gateway reads it.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Map, Value, json};
use tether_registry::model::DeviceCredential;
use tether_registry::names::{parse_device, parse_registry};

use super::ConsoleState;
use crate::api::error::{ApiError, ApiResult};
use crate::api::json::time;
use crate::bridge::hub::DeviceAddress;

/// Most numIds one presence call answers for (a page of the device list is 50).
pub const PRESENCE_MAX: usize = 500;
/// Presence questions in flight at once.
const PRESENCE_CONCURRENCY: usize = 16;

fn required<'a>(q: &'a HashMap<String, String>, key: &str, example: &str) -> ApiResult<&'a str> {
    q.get(key)
        .map(String::as_str)
        .ok_or_else(|| ApiError::invalid(format!("{key} is required, e.g. ?{key}={example}")))
}

/// `?registry=projects/p/locations/l/registries/r&numIds=1,2,3`:
/// `{"online": {"1": true, …}}`, with `"unknown": "why"` when some could not be asked
/// (the cluster link is down).
pub(super) async fn presence(
    State(state): State<ConsoleState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let registry = parse_registry(required(
        &q,
        "registry",
        "projects/p/locations/l/registries/r",
    )?)?;
    let ids = required(&q, "numIds", "1,2,3")?;
    let num_ids = ids
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| ApiError::invalid(format!("numIds: '{s}' is not a device numId")))
        })
        .collect::<ApiResult<Vec<u64>>>()?;
    if num_ids.len() > PRESENCE_MAX {
        return Err(ApiError::invalid(format!(
            "numIds names {} devices; at most {PRESENCE_MAX} per call",
            num_ids.len()
        )));
    }
    // In a cluster each device not here is a NATS round trip (up to the command
    // timeout when a node is frozen): ask a few at a time, not one after another.
    let mut online = Map::new();
    let mut unknown = None;
    for chunk in num_ids.chunks(PRESENCE_CONCURRENCY) {
        let answers = futures_util::future::join_all(chunk.iter().map(|&num_id| {
            let address = DeviceAddress {
                registry: registry.clone(),
                num_id,
            };
            let hub = &state.api.hub;
            async move { (num_id, hub.is_connected(&address).await) }
        }))
        .await;
        for (num_id, answer) in answers {
            match answer {
                Ok(up) => {
                    online.insert(num_id.to_string(), Value::Bool(up));
                }
                Err(e) => unknown = Some(e.to_string()),
            }
        }
    }
    if let Some(why) = unknown {
        // What is known is still shown; the page says why the rest is not.
        return Ok(Json(json!({ "online": online, "unknown": why })));
    }
    Ok(Json(json!({ "online": online })))
}

/// `?name=projects/p/locations/l/registries/r/devices/d`: whether it is connected and
/// each credential as the gateway reads it (algorithm, fingerprint, expiry, or why the
/// gateway cannot use it).
pub(super) async fn device(
    State(state): State<ConsoleState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let (registry, device_ref) = parse_device(required(
        &q,
        "name",
        "projects/p/locations/l/registries/r/devices/d",
    )?)?;
    let device = state.api.store.get_device(&registry, &device_ref).await?;
    let address = DeviceAddress {
        registry,
        num_id: device.num_id,
    };
    let (online, unknown) = match state.api.hub.is_connected(&address).await {
        Ok(up) => (Value::Bool(up), Value::Null),
        Err(e) => (Value::Null, Value::String(e.to_string())),
    };
    let now = state.api.now().secs();
    let credentials: Vec<Value> = device
        .credentials
        .iter()
        .enumerate()
        .map(|(i, c)| credential(i, c, now))
        .collect();
    Ok(Json(json!({
        "online": online,
        "onlineUnknown": unknown,
        "credentials": credentials,
    })))
}

fn credential(index: usize, c: &DeviceCredential, now: i64) -> Value {
    let mut o = Map::new();
    o.insert("index".into(), json!(index));
    o.insert("format".into(), json!(c.public_key.format.name()));
    if let Some(t) = c.expiration_time {
        o.insert("expirationTime".into(), json!(time::format(t)));
        o.insert("expired".into(), json!(t.secs() <= now));
    }
    match tether_registry::parse_key(&c.public_key.key) {
        Ok(key) => {
            o.insert("label".into(), json!(key.label()));
            o.insert("fingerprint".into(), json!(key.fingerprint().to_string()));
        }
        Err(why) => {
            o.insert(
                "error".into(),
                json!(format!("the gateway cannot use this key: {why}")),
            );
        }
    }
    Value::Object(o)
}
