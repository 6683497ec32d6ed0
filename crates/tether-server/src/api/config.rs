//! Config versions, states and commands: `modifyCloudToDeviceConfig`,
//! `configVersions.list`, `states.list`, `sendCommandToDevice`.

use serde_json::{Value, json};
use tether_registry::model::limits;
use tether_registry::names::{DeviceRef, RegistryPath};

use super::ApiState;
use super::devices::address;
use super::error::{ApiError, ApiResult};
use super::json::device::{render_config, render_state};
use super::json::reader::Obj;
use super::request::Query;
use super::rules::{COMMAND_BYTES, check_config_size, check_subfolder};

/// `POST /v1/{name}:modifyCloudToDeviceConfig` `{versionToUpdate, binaryData}`.
pub async fn modify(
    state: &ApiState,
    registry: &RegistryPath,
    device_ref: &DeviceRef,
    query: Query,
    body: Value,
) -> ApiResult<Value> {
    let enc = query.enc();
    query.finish()?;
    let mut o = Obj::new(body, "")?;
    let version_to_update = o.int64("versionToUpdate")?.unwrap_or(0);
    let data = o.bytes("binaryData")?.unwrap_or_default();
    o.finish()?;
    if version_to_update < 0 {
        return Err(ApiError::invalid(format!(
            "versionToUpdate must not be negative (got {version_to_update}); 0 updates unconditionally"
        )));
    }
    check_config_size("binaryData", data.len())?;
    let device = state.store.get_device(registry, device_ref).await?;
    let config = state
        .store
        .modify_config(
            registry,
            &DeviceRef::NumId(device.num_id),
            version_to_update,
            &data,
            state.now(),
        )
        .await?;
    state
        .hub
        .config_updated(&address(registry, &device), &config)
        .await;
    Ok(render_config(&config, enc))
}

/// `GET /v1/{name}/configVersions?numVersions=`: newest first.
pub async fn list_versions(
    state: &ApiState,
    registry: &RegistryPath,
    device: &DeviceRef,
    mut query: Query,
) -> ApiResult<Value> {
    let enc = query.enc();
    let n = query.take_count(&["numVersions", "num_versions"], usize::MAX)?;
    query.finish()?;
    let versions = state
        .store
        .list_config_versions(registry, device, n.min(limits::HISTORY))
        .await?;
    let items: Vec<Value> = versions.iter().map(|c| render_config(c, enc)).collect();
    Ok(if items.is_empty() {
        json!({})
    } else {
        json!({ "deviceConfigs": items })
    })
}

/// `GET /v1/{name}/states?numStates=`: newest first.
pub async fn list_states(
    state: &ApiState,
    registry: &RegistryPath,
    device: &DeviceRef,
    mut query: Query,
) -> ApiResult<Value> {
    let enc = query.enc();
    let n = query.take_count(&["numStates", "num_states"], usize::MAX)?;
    query.finish()?;
    let states = state
        .store
        .list_states(registry, device, n.min(limits::HISTORY))
        .await?;
    let items: Vec<Value> = states.iter().map(|s| render_state(s, enc)).collect();
    Ok(if items.is_empty() {
        json!({})
    } else {
        json!({ "deviceStates": items })
    })
}

/// `POST /v1/{name}:sendCommandToDevice` `{binaryData, subfolder}`. A device that is
/// not connected and subscribed gets 400 FAILED_PRECONDITION, as on IoT Core.
pub async fn send_command(
    state: &ApiState,
    registry: &RegistryPath,
    device_ref: &DeviceRef,
    query: Query,
    body: Value,
) -> ApiResult<Value> {
    query.finish()?;
    let mut o = Obj::new(body, "")?;
    let data = o.bytes("binaryData")?.unwrap_or_default();
    let subfolder = o.string("subfolder")?.unwrap_or_default();
    o.finish()?;
    if data.is_empty() {
        return Err(ApiError::invalid(
            "binaryData is required: the command payload in base64",
        ));
    }
    if data.len() > COMMAND_BYTES {
        return Err(ApiError::invalid(format!(
            "binaryData is {} bytes; a command is at most {COMMAND_BYTES} bytes",
            data.len()
        )));
    }
    check_subfolder(&subfolder)?;
    let device = state.store.get_device(registry, device_ref).await?;
    if device.blocked {
        return Err(ApiError::precondition(format!(
            "device '{}' is blocked: unblock it before sending commands",
            device.id
        )));
    }
    state
        .hub
        .send_command(&address(registry, &device), &device.id, &subfolder, data)
        .await?;
    Ok(json!({}))
}
