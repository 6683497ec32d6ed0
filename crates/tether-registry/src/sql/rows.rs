//! Reading rows back into the model: typed column access, the stored encodings of
//! times, enums and numIds, and the SELECTs whose rows the `*_from_row` functions read.

use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use super::codec;
use crate::model::{
    Device, DeviceConfig, DeviceRegistry, DeviceState, GatewayAuthMethod, GatewayConfig,
    GatewayType, HttpState, LogLevel, MqttState, StateNotificationConfig, Status, Timestamp,
};
use crate::names::RegistryPath;
use crate::store::{StoreError, StoreResult};

/// A column of a row. A value that does not decode is stored data this build cannot
/// read (a missing column is a query bug, which no retry fixes either).
pub(super) fn get<'r, T>(row: &'r AnyRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column)
        .map_err(|e| StoreError::corrupt(format!("column {column}: {e}")))
}

pub(super) fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp)
}

/// Enum numbers are stored as BIGINT; unknown numbers read as the default.
pub(super) fn enum_num<T: Default>(n: i64, from: fn(i32) -> Option<T>) -> T {
    i32::try_from(n).ok().and_then(from).unwrap_or_default()
}

/// numIds are below 2^63 (we generate them below 2^53); larger ones match nothing.
pub(super) fn to_db_num_id(n: u64) -> Option<i64> {
    i64::try_from(n).ok()
}

fn from_db_num_id(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// The columns of a device with its latest config and state.
macro_rules! device_select {
    () => {
        "SELECT d.num_id, d.id, d.credentials, d.blocked, d.log_level, d.metadata, \
         d.gateway_type, d.gateway_auth_method, d.last_accessed_gateway_id, \
         d.last_accessed_gateway_time, d.last_heartbeat_time, d.last_event_time, \
         d.last_state_time, d.last_config_ack_time, d.last_config_send_time, \
         d.last_error_time, d.last_error_code, d.last_error_message, \
         c.version AS config_version, c.cloud_update_time, c.device_ack_time, \
         c.binary_data AS config_data, s.update_time AS state_time, s.binary_data AS state_data \
         FROM devices d \
         LEFT JOIN device_configs c ON c.num_id = d.num_id AND c.version = d.config_version \
         LEFT JOIN device_states s ON s.num_id = d.num_id AND s.seq = d.state_seq"
    };
}
pub(super) use device_select;

/// The columns of a registry, with its key (`pk`) for a following device query.
pub(super) const REGISTRY_SELECT: &str = "SELECT pk, id, project, location, \
     event_notification_configs, state_notification_topic, mqtt_state, http_state, \
     log_level, credentials FROM registries";

/// A row of [`device_select!`].
pub(super) fn device_from_row(row: &AnyRow) -> StoreResult<Device> {
    let error_message = get::<Option<String>>(row, "last_error_message")?;
    let last_error_status = get::<Option<i64>>(row, "last_error_code")?.map(|code| Status {
        // 2 is UNKNOWN; stored codes always fit.
        code: i32::try_from(code).unwrap_or(2),
        message: error_message.unwrap_or_default(),
    });
    let state = match get::<Option<i64>>(row, "state_time")? {
        Some(t) => Some(DeviceState {
            update_time: Some(Timestamp(t)),
            binary_data: get::<Option<Vec<u8>>>(row, "state_data")?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Device {
        id: get(row, "id")?,
        num_id: from_db_num_id(get(row, "num_id")?),
        credentials: codec::decode_device_credentials(&get::<String>(row, "credentials")?)?,
        last_heartbeat_time: ts(get(row, "last_heartbeat_time")?),
        last_event_time: ts(get(row, "last_event_time")?),
        last_state_time: ts(get(row, "last_state_time")?),
        last_config_ack_time: ts(get(row, "last_config_ack_time")?),
        last_config_send_time: ts(get(row, "last_config_send_time")?),
        blocked: get::<i64>(row, "blocked")? != 0,
        last_error_time: ts(get(row, "last_error_time")?),
        last_error_status,
        config: DeviceConfig {
            version: get::<Option<i64>>(row, "config_version")?.unwrap_or_default(),
            cloud_update_time: ts(get(row, "cloud_update_time")?),
            device_ack_time: ts(get(row, "device_ack_time")?),
            binary_data: get::<Option<Vec<u8>>>(row, "config_data")?.unwrap_or_default(),
        },
        state,
        log_level: enum_num(get(row, "log_level")?, LogLevel::from_number),
        metadata: codec::decode_metadata(&get::<String>(row, "metadata")?)?,
        gateway_config: GatewayConfig {
            gateway_type: enum_num(get(row, "gateway_type")?, GatewayType::from_number),
            gateway_auth_method: enum_num(
                get(row, "gateway_auth_method")?,
                GatewayAuthMethod::from_number,
            ),
            last_accessed_gateway_id: get(row, "last_accessed_gateway_id")?,
            last_accessed_gateway_time: ts(get(row, "last_accessed_gateway_time")?),
        },
    })
}

/// A row of [`REGISTRY_SELECT`].
pub(super) fn registry_from_row(row: &AnyRow) -> StoreResult<DeviceRegistry> {
    Ok(DeviceRegistry {
        path: RegistryPath {
            project: get(row, "project")?,
            location: get(row, "location")?,
            registry: get(row, "id")?,
        },
        event_notification_configs: codec::decode_event_configs(&get::<String>(
            row,
            "event_notification_configs",
        )?)?,
        state_notification_config: get::<Option<String>>(row, "state_notification_topic")?
            .map(|pubsub_topic_name| StateNotificationConfig { pubsub_topic_name }),
        mqtt_state: enum_num(get(row, "mqtt_state")?, MqttState::from_number),
        http_state: enum_num(get(row, "http_state")?, HttpState::from_number),
        log_level: enum_num(get(row, "log_level")?, LogLevel::from_number),
        credentials: codec::decode_registry_credentials(&get::<String>(row, "credentials")?)?,
    })
}

/// A row of `device_configs`.
pub(super) fn config_from_row(row: &AnyRow) -> StoreResult<DeviceConfig> {
    Ok(DeviceConfig {
        version: get(row, "version")?,
        cloud_update_time: ts(get(row, "cloud_update_time")?),
        device_ack_time: ts(get(row, "device_ack_time")?),
        binary_data: get(row, "binary_data")?,
    })
}
