//! `projects.locations.registries`: create, get, patch, delete, list.

use serde_json::{Value, json};
use tether_registry::PageRequest;
use tether_registry::model::{DeviceRegistry, limits};
use tether_registry::names::RegistryPath;

use super::ApiState;
use super::credentials::check_registry_credentials;
use super::error::{ApiError, ApiResult};
use super::json::mask::FieldMask;
use super::json::registry::{parse_registry, render_registry};
use super::request::{self, Query};
use super::rules::check_registry;

/// Paths `updateMask` may name on a registry.
pub const MUTABLE: &[&str] = &[
    "event_notification_configs",
    "event_notification_config",
    "state_notification_config",
    "state_notification_config.pubsub_topic_name",
    "mqtt_config",
    "mqtt_config.mqtt_enabled_state",
    "http_config",
    "http_config.http_enabled_state",
    "log_level",
    "credentials",
];

/// Fields that exist but cannot be patched.
const IMMUTABLE: &[&str] = &["id", "name"];

const BODY_AT: &str = "device_registry";

/// `POST /v1/{parent}/registries`.
pub async fn create(
    state: &ApiState,
    project: &str,
    location: &str,
    query: Query,
    body: Value,
) -> ApiResult<Value> {
    let parent = request::location(project, location)?;
    let enc = query.enc();
    query.finish()?;
    let input = parse_registry(body, BODY_AT)?;
    if input.id.is_empty() {
        return Err(ApiError::invalid(format!(
            "{BODY_AT}.id is required: the registry id to create"
        )));
    }
    let path = request::registry(&parent.project, &parent.location, &input.id)?;
    if let Some(name) = input.name.as_deref().filter(|n| !n.is_empty())
        && name != path.to_string()
    {
        return Err(ApiError::invalid(format!(
            "{BODY_AT}.name must be empty on create (the server names the registry '{path}'), got '{name}'"
        )));
    }
    let mut registry = DeviceRegistry {
        path,
        ..input.registry
    };
    check_registry(BODY_AT, &registry)?;
    check_registry_credentials(BODY_AT, &mut registry.credentials, state.now())?;
    let created = state.store.create_registry(&registry).await?;
    Ok(render_registry(&created, enc))
}

/// `GET /v1/{name}`.
pub async fn get(state: &ApiState, path: &RegistryPath, query: Query) -> ApiResult<Value> {
    let enc = query.enc();
    query.finish()?;
    let registry = state.store.get_registry(path).await?;
    Ok(render_registry(&registry, enc))
}

/// `DELETE /v1/{name}`.
pub async fn delete(state: &ApiState, path: &RegistryPath, query: Query) -> ApiResult<Value> {
    query.finish()?;
    state.store.delete_registry(path).await?;
    Ok(json!({}))
}

/// `GET /v1/{parent}/registries`.
pub async fn list(
    state: &ApiState,
    project: &str,
    location: &str,
    mut query: Query,
) -> ApiResult<Value> {
    let parent = request::location(project, location)?;
    let enc = query.enc();
    let page = PageRequest {
        page_size: query.take_count(&["pageSize", "page_size"], limits::PAGE_SIZE_MAX)?,
        page_token: query.take(&["pageToken", "page_token"]).unwrap_or_default(),
    };
    query.finish()?;
    let result = state.store.list_registries(&parent, &page).await?;
    let mut out = serde_json::Map::new();
    let items: Vec<Value> = result
        .items
        .iter()
        .map(|r| render_registry(r, enc))
        .collect();
    if !items.is_empty() {
        out.insert("deviceRegistries".into(), Value::Array(items));
    }
    if !result.next_page_token.is_empty() {
        out.insert(
            "nextPageToken".into(),
            Value::String(result.next_page_token),
        );
    }
    Ok(Value::Object(out))
}

/// Reads `updateMask` (required, only mutable fields).
pub fn update_mask(
    query: &mut Query,
    mutable: &[&str],
    immutable: &[&str],
) -> ApiResult<FieldMask> {
    let text = query.take(&["updateMask", "update_mask"]).ok_or_else(|| {
        ApiError::invalid(format!(
            "updateMask is required: a comma-separated list of the fields to change, from {}",
            mutable.join(", ")
        ))
    })?;
    let mut all: Vec<&str> = mutable.to_vec();
    all.extend_from_slice(immutable);
    let mask = FieldMask::parse("updateMask", &text, &all)?;
    if mask.is_empty() {
        return Err(ApiError::invalid(
            "updateMask names no field: list the fields to change",
        ));
    }
    if let Some(bad) = mask.dotted().find(|p| !mutable.contains(&p.as_str())) {
        return Err(ApiError::invalid(format!(
            "updateMask: '{bad}' cannot be changed; mutable fields are {}",
            mutable.join(", ")
        )));
    }
    Ok(mask)
}

/// `PATCH /v1/{deviceRegistry.name}?updateMask=`.
pub async fn patch(
    state: &ApiState,
    path: &RegistryPath,
    mut query: Query,
    body: Value,
) -> ApiResult<Value> {
    let enc = query.enc();
    let mask = update_mask(&mut query, MUTABLE, IMMUTABLE)?;
    query.finish()?;
    let input = parse_registry(body, BODY_AT)?;
    let mut registry = state.store.get_registry(path).await?;
    let given = input.registry;
    let mut credentials_changed = false;
    for field in mask.dotted() {
        match field.as_str() {
            "event_notification_configs" | "event_notification_config" => {
                registry.event_notification_configs = given.event_notification_configs.clone();
            }
            "state_notification_config" | "state_notification_config.pubsub_topic_name" => {
                registry.state_notification_config = given.state_notification_config.clone();
            }
            "mqtt_config" | "mqtt_config.mqtt_enabled_state" => {
                registry.mqtt_state = given.mqtt_state;
            }
            "http_config" | "http_config.http_enabled_state" => {
                registry.http_state = given.http_state;
            }
            "log_level" => registry.log_level = given.log_level,
            "credentials" => {
                registry.credentials = given.credentials.clone();
                credentials_changed = true;
            }
            _ => {}
        }
    }
    check_registry(BODY_AT, &registry)?;
    if credentials_changed {
        check_registry_credentials(BODY_AT, &mut registry.credentials, state.now())?;
    }
    let updated = state.store.update_registry(&registry).await?;
    // Connected devices see the change now, not at their next periodic re-read.
    state.hub.registry_changed(path).await;
    Ok(render_registry(&updated, enc))
}
