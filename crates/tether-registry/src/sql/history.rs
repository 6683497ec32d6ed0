//! Config versions and device states: the compare-and-set that issues a config, the
//! device's acknowledgement, state reports, and the last few of each kept as history.

use sqlx::AnyConnection;

use super::rows::{config_from_row, get};
use super::{db, devices};
use crate::model::{DeviceConfig, DeviceState, Timestamp, limits};
use crate::names::{DeviceRef, RegistryPath};
use crate::store::{StoreError, StoreResult};

/// How many rows a history list returns: 0 = all that are kept.
fn limit_of(n: usize) -> i64 {
    match n {
        0 => history(),
        n => i64::try_from(n).unwrap_or(i64::MAX),
    }
}

/// How many config versions and states are kept per device.
fn history() -> i64 {
    i64::try_from(limits::HISTORY).unwrap_or(10)
}

/// The two histories a device keeps.
#[derive(Clone, Copy)]
enum Kept {
    /// `device_configs`, numbered by version.
    Configs,
    /// `device_states`, numbered by seq.
    States,
}

/// Stores entry `n` of a device's history and drops those older than the last
/// [`history()`].
async fn append(
    conn: &mut AnyConnection,
    kept: Kept,
    num_id: i64,
    n: i64,
    at: Timestamp,
    binary_data: &[u8],
) -> StoreResult<()> {
    let (insert, prune) = match kept {
        Kept::Configs => (
            "INSERT INTO device_configs (num_id, version, cloud_update_time, binary_data) \
             VALUES ($1, $2, $3, $4)",
            "DELETE FROM device_configs WHERE num_id = $1 AND version <= $2",
        ),
        Kept::States => (
            "INSERT INTO device_states (num_id, seq, update_time, binary_data) \
             VALUES ($1, $2, $3, $4)",
            "DELETE FROM device_states WHERE num_id = $1 AND seq <= $2",
        ),
    };
    sqlx::query(insert)
        .bind(num_id)
        .bind(n)
        .bind(at.0)
        .bind(binary_data.to_vec())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    sqlx::query(prune)
        .bind(num_id)
        .bind(n - history())
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn modify_config(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    device: &DeviceRef,
    version_to_update: i64,
    binary_data: &[u8],
    now: Timestamp,
) -> StoreResult<DeviceConfig> {
    let num_id = devices::num_id(conn, registry, device).await?;
    // The compare-and-set: the condition is checked under the row's write lock.
    let bumped = sqlx::query(
        "UPDATE devices SET config_version = config_version + 1 \
         WHERE num_id = $1 AND ($2 = 0 OR config_version = $2) RETURNING config_version",
    )
    .bind(num_id)
    .bind(version_to_update)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let Some(row) = bumped else {
        let row = sqlx::query("SELECT config_version FROM devices WHERE num_id = $1")
            .bind(num_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?
            .ok_or_else(|| devices::not_found(registry, device))?;
        let current: i64 = get(&row, "config_version")?;
        return Err(StoreError::Aborted(format!(
            "the config version to update is {version_to_update} but the current version \
             is {current}"
        )));
    };
    let version: i64 = get(&row, "config_version")?;
    append(conn, Kept::Configs, num_id, version, now, binary_data).await?;
    Ok(DeviceConfig {
        version,
        cloud_update_time: Some(now),
        device_ack_time: None,
        binary_data: binary_data.to_vec(),
    })
}

pub(super) async fn list_configs(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    device: &DeviceRef,
    num_versions: usize,
) -> StoreResult<Vec<DeviceConfig>> {
    let num_id = devices::num_id(conn, registry, device).await?;
    let rows = sqlx::query(
        "SELECT version, cloud_update_time, device_ack_time, binary_data \
         FROM device_configs WHERE num_id = $1 ORDER BY version DESC LIMIT $2",
    )
    .bind(num_id)
    .bind(limit_of(num_versions))
    .fetch_all(conn)
    .await
    .map_err(db)?;
    rows.iter().map(config_from_row).collect()
}

pub(super) async fn ack_config(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    num_id: u64,
    version: i64,
    now: Timestamp,
) -> StoreResult<()> {
    let num_id = devices::num_id(conn, registry, &DeviceRef::NumId(num_id)).await?;
    // The first acknowledgement of a version is the one that counts.
    let acked = sqlx::query(
        "UPDATE device_configs SET device_ack_time = $1 \
         WHERE num_id = $2 AND version = $3 AND device_ack_time IS NULL",
    )
    .bind(now.0)
    .bind(num_id)
    .bind(version)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let kept = acked.rows_affected() > 0
        || sqlx::query("SELECT version FROM device_configs WHERE num_id = $1 AND version = $2")
            .bind(num_id)
            .bind(version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?
            .is_some();
    if kept {
        sqlx::query(
            "UPDATE devices SET last_config_ack_time = $1 WHERE num_id = $2 \
             AND (last_config_ack_time IS NULL OR last_config_ack_time < $1)",
        )
        .bind(now.0)
        .bind(num_id)
        .execute(conn)
        .await
        .map_err(db)?;
    }
    Ok(())
}

pub(super) async fn record_state(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    num_id: u64,
    binary_data: &[u8],
    now: Timestamp,
) -> StoreResult<DeviceState> {
    let num_id = devices::num_id(conn, registry, &DeviceRef::NumId(num_id)).await?;
    let row = sqlx::query(
        "UPDATE devices SET state_seq = state_seq + 1, last_state_time = CASE \
         WHEN last_state_time IS NULL OR last_state_time < $1 THEN $1 \
         ELSE last_state_time END WHERE num_id = $2 RETURNING state_seq",
    )
    .bind(now.0)
    .bind(num_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    let seq: i64 = get(&row, "state_seq")?;
    append(conn, Kept::States, num_id, seq, now, binary_data).await?;
    Ok(DeviceState {
        update_time: Some(now),
        binary_data: binary_data.to_vec(),
    })
}

pub(super) async fn list_states(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    device: &DeviceRef,
    num_states: usize,
) -> StoreResult<Vec<DeviceState>> {
    let num_id = devices::num_id(conn, registry, device).await?;
    let rows = sqlx::query(
        "SELECT update_time, binary_data FROM device_states \
         WHERE num_id = $1 ORDER BY seq DESC LIMIT $2",
    )
    .bind(num_id)
    .bind(limit_of(num_states))
    .fetch_all(conn)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|row| {
            Ok(DeviceState {
                update_time: Some(Timestamp(get(row, "update_time")?)),
                binary_data: get(row, "binary_data")?,
            })
        })
        .collect()
}
