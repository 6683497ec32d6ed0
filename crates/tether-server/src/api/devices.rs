//! `projects.locations.registries.devices`: create, get, patch, delete, list.

use serde_json::{Value, json};
use tether_registry::model::{Device, GatewayType, limits};
use tether_registry::names::{DeviceRef, RegistryPath, validate_id};
use tether_registry::{DeviceFilter, PageRequest};

use super::ApiState;
use super::credentials::check_device_credentials;
use super::error::{ApiError, ApiResult};
use super::json::device::{parse_device, render_device};
use super::json::mask::FieldMask;
use super::json::reader::{enum_value, uint64_value};
use super::registries::update_mask;
use super::request::Query;
use super::rules::check_device;
use crate::bridge::hub::DeviceAddress;

/// Paths `updateMask` may name on a device.
pub const MUTABLE: &[&str] = &[
    "credentials",
    "blocked",
    "metadata",
    "log_level",
    "gateway_config",
    "gateway_config.gateway_auth_method",
];

/// Fields that exist but are immutable or set only by the server.
const READ_ONLY: &[&str] = &[
    "id",
    "name",
    "num_id",
    "last_heartbeat_time",
    "last_event_time",
    "last_state_time",
    "last_config_ack_time",
    "last_config_send_time",
    "last_error_time",
    "last_error_status",
    "config",
    "state",
    "gateway_config.gateway_type",
    "gateway_config.last_accessed_gateway_id",
    "gateway_config.last_accessed_gateway_time",
];

/// Paths `fieldMask` may name on get and list.
pub const READABLE: &[&str] = &[
    "id",
    "name",
    "num_id",
    "credentials",
    "last_heartbeat_time",
    "last_event_time",
    "last_state_time",
    "last_config_ack_time",
    "last_config_send_time",
    "blocked",
    "last_error_time",
    "last_error_status",
    "config",
    "config.version",
    "config.cloud_update_time",
    "config.device_ack_time",
    "config.binary_data",
    "state",
    "state.update_time",
    "state.binary_data",
    "log_level",
    "metadata",
    "gateway_config",
    "gateway_config.gateway_type",
    "gateway_config.gateway_auth_method",
    "gateway_config.last_accessed_gateway_id",
    "gateway_config.last_accessed_gateway_time",
];

/// How many ids `deviceIds` / `deviceNumIds` may list.
const FILTER_IDS_MAX: usize = 10_000;

const BODY_AT: &str = "device";

/// The address the hub knows a device by.
pub fn address(registry: &RegistryPath, device: &Device) -> DeviceAddress {
    DeviceAddress {
        registry: registry.clone(),
        num_id: device.num_id,
    }
}

/// `POST /v1/{parent}/devices`.
pub async fn create(
    state: &ApiState,
    registry_path: &RegistryPath,
    query: Query,
    body: Value,
) -> ApiResult<Value> {
    let enc = query.enc();
    query.finish()?;
    let input = parse_device(body, BODY_AT)?;
    let device = input.device;
    if device.id.is_empty() {
        return Err(ApiError::invalid(format!(
            "{BODY_AT}.id is required: the device id to create"
        )));
    }
    validate_id("device", &device.id)?;
    if let Some(name) = input.name.as_deref().filter(|n| !n.is_empty())
        && name != registry_path.device_name(&device.id)
    {
        return Err(ApiError::invalid(format!(
            "{BODY_AT}.name must be empty on create (the server assigns it), got '{name}'"
        )));
    }
    if input.config_version != 0 {
        return Err(ApiError::invalid(format!(
            "{BODY_AT}.config.version must be 0 on create (got {}): the server assigns version 1",
            input.config_version
        )));
    }
    check_device(BODY_AT, &device)?;
    let registry = state.store.get_registry(registry_path).await?;
    let now = state.now();
    check_device_credentials(BODY_AT, &device.credentials, &registry, now)?;
    let created = state
        .store
        .create_device(registry_path, &device, now)
        .await?;
    Ok(render_device(&created, registry_path, enc))
}

/// `GET /v1/{name}?fieldMask=`.
pub async fn get(
    state: &ApiState,
    registry: &RegistryPath,
    device: &DeviceRef,
    mut query: Query,
) -> ApiResult<Value> {
    let enc = query.enc();
    let mask = match query.take(&["fieldMask", "field_mask"]) {
        Some(text) => Some(FieldMask::parse("fieldMask", &text, READABLE)?),
        None => None,
    };
    query.finish()?;
    let found = state.store.get_device(registry, device).await?;
    let full = render_device(&found, registry, enc);
    Ok(match mask {
        Some(mask) if !mask.is_empty() => mask.filter(full, &["id", "name", "numId"]),
        _ => full,
    })
}

/// `PATCH /v1/{device.name}?updateMask=`.
pub async fn patch(
    state: &ApiState,
    registry_path: &RegistryPath,
    device_ref: &DeviceRef,
    mut query: Query,
    body: Value,
) -> ApiResult<Value> {
    let enc = query.enc();
    let mask = update_mask(&mut query, MUTABLE, READ_ONLY)?;
    query.finish()?;
    let given = parse_device(body, BODY_AT)?.device;
    let mut device = state.store.get_device(registry_path, device_ref).await?;
    let mut credentials_changed = false;
    for field in mask.dotted() {
        match field.as_str() {
            "credentials" => {
                device.credentials = given.credentials.clone();
                credentials_changed = true;
            }
            "blocked" => device.blocked = given.blocked,
            "metadata" => device.metadata = given.metadata.clone(),
            "log_level" => device.log_level = given.log_level,
            "gateway_config" | "gateway_config.gateway_auth_method" => {
                let wanted = given.gateway_config.gateway_type;
                if field == "gateway_config"
                    && wanted != GatewayType::Unspecified
                    && wanted != device.gateway_config.gateway_type
                {
                    return Err(ApiError::invalid(format!(
                        "{BODY_AT}.gatewayConfig.gatewayType cannot be changed after create (it is {})",
                        device.gateway_config.gateway_type.name()
                    )));
                }
                device.gateway_config.gateway_auth_method =
                    given.gateway_config.gateway_auth_method;
            }
            _ => {}
        }
    }
    check_device(BODY_AT, &device)?;
    if credentials_changed {
        let registry = state.store.get_registry(registry_path).await?;
        check_device_credentials(BODY_AT, &device.credentials, &registry, state.now())?;
    }
    let updated = state.store.update_device(registry_path, &device).await?;
    state
        .hub
        .device_changed(&address(registry_path, &updated))
        .await;
    Ok(render_device(&updated, registry_path, enc))
}

/// `DELETE /v1/{name}`.
pub async fn delete(
    state: &ApiState,
    registry: &RegistryPath,
    device_ref: &DeviceRef,
    query: Query,
) -> ApiResult<Value> {
    query.finish()?;
    let device = state.store.get_device(registry, device_ref).await?;
    state
        .store
        .delete_device(registry, &DeviceRef::NumId(device.num_id))
        .await?;
    state.hub.device_changed(&address(registry, &device)).await;
    Ok(json!({}))
}

/// Splits repeated and comma-separated values.
fn split_list(values: Vec<String>) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

fn device_ref_param(name: &str, text: &str) -> ApiResult<DeviceRef> {
    DeviceRef::parse(text).map_err(|e| ApiError::invalid(format!("{name}: {}", e.0)))
}

/// Reads the filters of `devices.list`.
fn list_filter(query: &mut Query) -> ApiResult<DeviceFilter> {
    let mut filter = DeviceFilter {
        device_ids: split_list(query.take_all(&["deviceIds", "device_ids"])),
        ..DeviceFilter::default()
    };
    for text in split_list(query.take_all(&["deviceNumIds", "device_num_ids"])) {
        filter
            .device_num_ids
            .push(uint64_value(&Value::String(text), "deviceNumIds")?);
    }
    for (what, n) in [
        ("deviceIds", filter.device_ids.len()),
        ("deviceNumIds", filter.device_num_ids.len()),
    ] {
        if n > FILTER_IDS_MAX {
            return Err(ApiError::invalid(format!(
                "{what} lists {n} values; at most {FILTER_IDS_MAX} are allowed"
            )));
        }
    }
    let gateway_type = query.take(&[
        "gatewayListOptions.gatewayType",
        "gateway_list_options.gateway_type",
    ]);
    let by_gateway = query.take(&[
        "gatewayListOptions.associationsGatewayId",
        "gateway_list_options.associations_gateway_id",
    ]);
    let by_device = query.take(&[
        "gatewayListOptions.associationsDeviceId",
        "gateway_list_options.associations_device_id",
    ]);
    let set = [&gateway_type, &by_gateway, &by_device]
        .iter()
        .filter(|o| o.is_some())
        .count();
    if set > 1 {
        return Err(ApiError::invalid(
            "gatewayListOptions takes only one of gatewayType, associationsGatewayId and associationsDeviceId",
        ));
    }
    if let Some(text) = gateway_type {
        let t: GatewayType = enum_value(&Value::String(text), "gatewayListOptions.gatewayType")?;
        filter.gateway_type = Some(t).filter(|t| *t != GatewayType::Unspecified);
    }
    if let Some(text) = by_gateway {
        filter.associations_gateway = Some(device_ref_param(
            "gatewayListOptions.associationsGatewayId",
            &text,
        )?);
    }
    if let Some(text) = by_device {
        filter.associations_device = Some(device_ref_param(
            "gatewayListOptions.associationsDeviceId",
            &text,
        )?);
    }
    Ok(filter)
}

/// `GET /v1/{parent}/devices`: `id` and `numId` of each device, plus the fields
/// `fieldMask` names (as IoT Core did).
pub async fn list(state: &ApiState, registry: &RegistryPath, mut query: Query) -> ApiResult<Value> {
    let enc = query.enc();
    let filter = list_filter(&mut query)?;
    let mask = match query.take(&["fieldMask", "field_mask"]) {
        Some(text) => FieldMask::parse("fieldMask", &text, READABLE)?,
        None => FieldMask::default(),
    };
    let page = PageRequest {
        page_size: query.take_count(&["pageSize", "page_size"], limits::PAGE_SIZE_MAX)?,
        page_token: query.take(&["pageToken", "page_token"]).unwrap_or_default(),
    };
    query.finish()?;
    // Listing an unknown registry is NOT_FOUND, not an empty list.
    state.store.get_registry(registry).await?;
    let result = state.store.list_devices(registry, &filter, &page).await?;
    let devices: Vec<Value> = result
        .items
        .iter()
        .map(|d| mask.filter(render_device(d, registry, enc), &["id", "numId"]))
        .collect();
    let mut out = serde_json::Map::new();
    if !devices.is_empty() {
        out.insert("devices".into(), Value::Array(devices));
    }
    if !result.next_page_token.is_empty() {
        out.insert(
            "nextPageToken".into(),
            Value::String(result.next_page_token),
        );
    }
    Ok(Value::Object(out))
}
