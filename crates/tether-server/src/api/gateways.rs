//! `bindDeviceToGateway` / `unbindDeviceFromGateway` (`{gatewayId, deviceId}`, each an
//! id or a numId).

use serde_json::{Value, json};
use tether_registry::names::{DeviceRef, RegistryPath};

use super::ApiState;
use super::devices::address;
use super::error::{ApiError, ApiResult};
use super::json::reader::Obj;
use super::request::Query;

fn read_pair(body: Value) -> ApiResult<(DeviceRef, DeviceRef)> {
    let mut o = Obj::new(body, "")?;
    let gateway = o.string("gatewayId")?.unwrap_or_default();
    let device = o.string("deviceId")?.unwrap_or_default();
    o.finish()?;
    let parse = |field: &str, text: &str| {
        if text.is_empty() {
            return Err(ApiError::invalid(format!(
                "{field} is required: a device id or numId"
            )));
        }
        DeviceRef::parse(text).map_err(|e| ApiError::invalid(format!("{field}: {}", e.0)))
    };
    Ok((parse("gatewayId", &gateway)?, parse("deviceId", &device)?))
}

/// `POST /v1/{parent}:bindDeviceToGateway`.
pub async fn bind(
    state: &ApiState,
    registry: &RegistryPath,
    query: Query,
    body: Value,
) -> ApiResult<Value> {
    query.finish()?;
    let (gateway, device) = read_pair(body)?;
    state.store.bind(registry, &gateway, &device).await?;
    Ok(json!({}))
}

/// `POST /v1/{parent}:unbindDeviceFromGateway`; the hub detaches the device if a
/// gateway holds it attached.
pub async fn unbind(
    state: &ApiState,
    registry: &RegistryPath,
    query: Query,
    body: Value,
) -> ApiResult<Value> {
    query.finish()?;
    let (gateway, device) = read_pair(body)?;
    state.store.unbind(registry, &gateway, &device).await?;
    if let Ok(d) = state.store.get_device(registry, &device).await {
        state.hub.device_changed(&address(registry, &d)).await;
    }
    Ok(json!({}))
}
