//! Gateway bindings: bind (with IoT Core's role and count rules), unbind, and the
//! check the bridges make before a gateway speaks for a device.

use sqlx::{AnyConnection, AssertSqlSafe};

use super::rows::{get, to_db_num_id};
use super::{Dialect, db, devices, registries};
use crate::model::{GatewayType, limits};
use crate::names::{DeviceRef, RegistryPath};
use crate::store::{StoreError, StoreResult};

pub(super) async fn bind(
    conn: &mut AnyConnection,
    dialect: Dialect,
    registry: &RegistryPath,
    gateway: &DeviceRef,
    device: &DeviceRef,
) -> StoreResult<()> {
    let pk = registries::pk(conn, registry).await?;
    let (g, g_type) = devices::find(conn, pk, registry, gateway).await?;
    let (d, d_type) = devices::find(conn, pk, registry, device).await?;
    if g_type != GatewayType::Gateway {
        return Err(StoreError::FailedPrecondition(format!(
            "device '{gateway}' in {registry} is not a gateway; only devices created with \
             gatewayConfig.gatewayType GATEWAY can have devices bound"
        )));
    }
    if d_type == GatewayType::Gateway {
        return Err(StoreError::FailedPrecondition(format!(
            "device '{device}' in {registry} is a gateway; a gateway cannot be bound to \
             another gateway"
        )));
    }
    // Lock both rows, gateway first (the roles are checked, so the order is the
    // same in every bind): concurrent binds cannot pass the limit together, and
    // neither device can be deleted under us.
    for num_id in [g, d] {
        let found = sqlx::query(AssertSqlSafe(format!(
            "SELECT num_id FROM devices WHERE num_id = $1{}",
            dialect.for_update()
        )))
        .bind(num_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        if found.is_none() {
            return Err(devices::not_found(registry, &num_id));
        }
    }
    let rows = sqlx::query("SELECT gateway_num_id FROM gateway_bindings WHERE device_num_id = $1")
        .bind(d)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let gateways = rows
        .iter()
        .map(|r| get::<i64>(r, "gateway_num_id"))
        .collect::<StoreResult<Vec<_>>>()?;
    if gateways.contains(&g) {
        return Ok(());
    }
    if gateways.len() >= limits::GATEWAYS_PER_DEVICE {
        return Err(StoreError::FailedPrecondition(format!(
            "device '{device}' in {registry} is already bound to {} gateways, the most \
             allowed; unbind one first",
            gateways.len()
        )));
    }
    sqlx::query("INSERT INTO gateway_bindings (gateway_num_id, device_num_id) VALUES ($1, $2)")
        .bind(g)
        .bind(d)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn unbind(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    gateway: &DeviceRef,
    device: &DeviceRef,
) -> StoreResult<()> {
    let pk = registries::pk(conn, registry).await?;
    let (g, _) = devices::find(conn, pk, registry, gateway).await?;
    let (d, _) = devices::find(conn, pk, registry, device).await?;
    let done = sqlx::query(
        "DELETE FROM gateway_bindings WHERE gateway_num_id = $1 AND device_num_id = $2",
    )
    .bind(g)
    .bind(d)
    .execute(conn)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!(
            "device '{device}' is not bound to gateway '{gateway}' in {registry}"
        )));
    }
    Ok(())
}

pub(super) async fn is_bound(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    gateway_num_id: u64,
    device_num_id: u64,
) -> StoreResult<bool> {
    let (Some(g), Some(d)) = (to_db_num_id(gateway_num_id), to_db_num_id(device_num_id)) else {
        return Ok(false);
    };
    let pk = registries::pk(conn, registry).await?;
    let row = sqlx::query(
        "SELECT b.gateway_num_id FROM gateway_bindings b \
         JOIN devices g ON g.num_id = b.gateway_num_id \
         WHERE b.gateway_num_id = $1 AND b.device_num_id = $2 AND g.registry_pk = $3",
    )
    .bind(g)
    .bind(d)
    .bind(pk)
    .fetch_optional(conn)
    .await
    .map_err(db)?;
    Ok(row.is_some())
}
