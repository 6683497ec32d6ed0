//! Devices: create (with a fresh numId), read, update, delete and list with IoT Core's
//! filters, and the lookups the config, state and binding calls share.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe};

use super::query::{Arg, Built};
use super::rows::{device_from_row, device_select, enum_num, get, to_db_num_id};
use super::{Dialect, codec, db, registries, unless_taken};
use crate::model::{Device, GatewayType, Timestamp};
use crate::names::{DeviceRef, RegistryPath};
use crate::paging::{self, Keyset};
use crate::store::{DeviceFilter, Page, PageRequest, StoreError, StoreResult};

pub(super) fn not_found(registry: &RegistryPath, device: &dyn std::fmt::Display) -> StoreError {
    StoreError::NotFound(format!("device '{device}' not found in {registry}"))
}

/// Random numIds in [10^15, 2^53): as long as IoT Core's, and exact even in clients
/// that read JSON numbers as doubles.
fn random_num_id() -> StoreResult<i64> {
    const LOW: i64 = 1_000_000_000_000_000;
    const HIGH: i64 = 1 << 53;
    let r = getrandom::u64()
        .map_err(|e| StoreError::unavailable("no randomness for a device numId", e))?;
    // The remainder is below 2^53, so it always fits.
    Ok(LOW + i64::try_from(r % (HIGH - LOW).unsigned_abs()).unwrap_or(0))
}

/// The numId and gateway type of a device of the registry `pk`.
pub(super) async fn find(
    conn: &mut AnyConnection,
    pk: i64,
    path: &RegistryPath,
    device: &DeviceRef,
) -> StoreResult<(i64, GatewayType)> {
    find_locked(conn, pk, path, device, "").await
}

/// [`find`] with a row lock `suffix` (`Dialect::for_update`): the row stays locked
/// until the transaction ends (PostgreSQL; SQLite holds the whole database).
async fn find_locked(
    conn: &mut AnyConnection,
    pk: i64,
    path: &RegistryPath,
    device: &DeviceRef,
    suffix: &str,
) -> StoreResult<(i64, GatewayType)> {
    let select = "SELECT num_id, gateway_type FROM devices";
    let row = one_of_registry(conn, select, "", pk, device, suffix)
        .await?
        .ok_or_else(|| not_found(path, device))?;
    Ok((
        get(&row, "num_id")?,
        enum_num(get(&row, "gateway_type")?, GatewayType::from_number),
    ))
}

/// The numId of a device of the registry (the registry lookup and [`find`] in one).
pub(super) async fn num_id(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    device: &DeviceRef,
) -> StoreResult<i64> {
    let pk = registries::pk(conn, registry).await?;
    let (num_id, _) = find(conn, pk, registry, device).await?;
    Ok(num_id)
}

async fn load(conn: &mut AnyConnection, path: &RegistryPath, num_id: i64) -> StoreResult<Device> {
    let row = sqlx::query(concat!(device_select!(), " WHERE d.num_id = $1"))
        .bind(num_id)
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or_else(|| not_found(path, &num_id))?;
    device_from_row(&row)
}

/// Runs `select` (columns of the devices table aliased `alias`) for the device of the
/// registry `pk` that `device` names, with a row lock `suffix`; `None` if there is none.
async fn one_of_registry(
    conn: &mut AnyConnection,
    select: &str,
    alias: &str,
    pk: i64,
    device: &DeviceRef,
    suffix: &str,
) -> StoreResult<Option<AnyRow>> {
    let column = match device {
        DeviceRef::Id(_) => "id",
        DeviceRef::NumId(_) => "num_id",
    };
    let sql = format!("{select} WHERE {alias}registry_pk = $1 AND {alias}{column} = $2{suffix}");
    let query = sqlx::query(AssertSqlSafe(sql)).bind(pk);
    let query = match device {
        DeviceRef::Id(id) => query.bind(id.clone()),
        DeviceRef::NumId(n) => match to_db_num_id(*n) {
            Some(n) => query.bind(n),
            // Beyond what the column holds: no row has it.
            None => return Ok(None),
        },
    };
    query.fetch_optional(conn).await.map_err(db)
}

/// A device of the registry `pk` with its latest config and state, in one query;
/// `None` if there is no such device.
pub(super) async fn find_loaded(
    conn: &mut AnyConnection,
    pk: i64,
    device: &DeviceRef,
) -> StoreResult<Option<Device>> {
    let row = one_of_registry(conn, device_select!(), "d.", pk, device, "").await?;
    row.as_ref().map(device_from_row).transpose()
}

pub(super) async fn create(
    conn: &mut AnyConnection,
    dialect: Dialect,
    registry: &RegistryPath,
    d: &Device,
    now: Timestamp,
) -> StoreResult<Device> {
    // Shared lock: the registry cannot be deleted while the device is added.
    let pk = registries::pk_locked(conn, registry, dialect.for_share()).await?;
    let exists =
        || StoreError::AlreadyExists(format!("device '{}' already exists in {registry}", d.id));
    let taken = sqlx::query("SELECT num_id FROM devices WHERE registry_pk = $1 AND id = $2")
        .bind(pk)
        .bind(d.id.clone())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    if taken.is_some() {
        return Err(exists());
    }
    // A collision is rare (2^53 values); pick again inside the same transaction.
    let mut num_id = random_num_id()?;
    for _ in 0..8 {
        let used = sqlx::query("SELECT num_id FROM devices WHERE num_id = $1")
            .bind(num_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        if used.is_none() {
            break;
        }
        num_id = random_num_id()?;
    }
    sqlx::query(
        "INSERT INTO devices (num_id, registry_pk, id, credentials, blocked, log_level, \
         metadata, gateway_type, gateway_auth_method, config_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1)",
    )
    .bind(num_id)
    .bind(pk)
    .bind(d.id.clone())
    .bind(codec::encode_device_credentials(&d.credentials))
    .bind(i64::from(d.blocked))
    .bind(i64::from(d.log_level.number()))
    .bind(codec::encode_metadata(&d.metadata))
    .bind(i64::from(d.gateway_config.gateway_type.number()))
    .bind(i64::from(d.gateway_config.gateway_auth_method.number()))
    .execute(&mut *conn)
    .await
    .map_err(|e| unless_taken(e, exists))?;
    sqlx::query(
        "INSERT INTO device_configs (num_id, version, cloud_update_time, binary_data) \
         VALUES ($1, 1, $2, $3)",
    )
    .bind(num_id)
    .bind(now.0)
    .bind(d.config.binary_data.clone())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    load(conn, registry, num_id).await
}

pub(super) async fn get_one(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    device: &DeviceRef,
) -> StoreResult<Device> {
    let pk = registries::pk(conn, registry).await?;
    find_loaded(conn, pk, device)
        .await?
        .ok_or_else(|| not_found(registry, device))
}

pub(super) async fn update(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    d: &Device,
) -> StoreResult<Device> {
    let pk = registries::pk(conn, registry).await?;
    let Some(num_id) = to_db_num_id(d.num_id) else {
        return Err(not_found(registry, &d.num_id));
    };
    let done = sqlx::query(
        "UPDATE devices SET credentials = $1, blocked = $2, metadata = $3, log_level = $4, \
         gateway_auth_method = $5 WHERE num_id = $6 AND registry_pk = $7",
    )
    .bind(codec::encode_device_credentials(&d.credentials))
    .bind(i64::from(d.blocked))
    .bind(codec::encode_metadata(&d.metadata))
    .bind(i64::from(d.log_level.number()))
    .bind(i64::from(d.gateway_config.gateway_auth_method.number()))
    .bind(num_id)
    .bind(pk)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(not_found(registry, &d.num_id));
    }
    load(conn, registry, num_id).await
}

pub(super) async fn delete(
    conn: &mut AnyConnection,
    dialect: Dialect,
    registry: &RegistryPath,
    device: &DeviceRef,
) -> StoreResult<()> {
    let pk = registries::pk(conn, registry).await?;
    let (num_id, _) = find_locked(conn, pk, registry, device, dialect.for_update()).await?;
    let row = sqlx::query("SELECT COUNT(*) AS n FROM gateway_bindings WHERE gateway_num_id = $1")
        .bind(num_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let bound: i64 = get(&row, "n")?;
    if bound > 0 {
        return Err(StoreError::FailedPrecondition(format!(
            "gateway '{device}' in {registry} still has {bound} device(s) bound; \
             unbind them first"
        )));
    }
    // Children first, explicitly, so neither store depends on cascading deletes.
    for statement in [
        "DELETE FROM device_configs WHERE num_id = $1",
        "DELETE FROM device_states WHERE num_id = $1",
        "DELETE FROM gateway_bindings WHERE device_num_id = $1",
        "DELETE FROM devices WHERE num_id = $1",
    ] {
        sqlx::query(statement)
            .bind(num_id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

pub(super) async fn list(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    filter: &DeviceFilter,
    page: &PageRequest,
) -> StoreResult<Page<Device>> {
    let size = paging::page_size(page);
    let after = paging::decode_num_id(&page.page_token)?.unwrap_or(0);
    let empty = Page {
        items: Vec::new(),
        next_page_token: String::new(),
    };
    let pk = registries::pk(conn, registry).await?;

    let mut q = Built::default();
    let p = q.arg(Arg::Int(pk));
    let a = q.arg(Arg::Int(after));
    q.sql = format!(
        concat!(
            device_select!(),
            " WHERE d.registry_pk = {} AND d.num_id > {}"
        ),
        p, a
    );
    if !filter.device_ids.is_empty() {
        let list: Vec<String> = filter
            .device_ids
            .iter()
            .map(|id| q.arg(Arg::Text(id.clone())))
            .collect();
        q.sql += &format!(" AND d.id IN ({})", list.join(", "));
    }
    if !filter.device_num_ids.is_empty() {
        let nums: Vec<i64> = filter
            .device_num_ids
            .iter()
            .filter_map(|n| to_db_num_id(*n))
            .collect();
        if nums.is_empty() {
            return Ok(empty);
        }
        let list: Vec<String> = nums.into_iter().map(|n| q.arg(Arg::Int(n))).collect();
        q.sql += &format!(" AND d.num_id IN ({})", list.join(", "));
    }
    match filter.gateway_type {
        Some(GatewayType::Gateway) => {
            let g = q.arg(Arg::Int(GatewayType::Gateway.number().into()));
            q.sql += &format!(" AND d.gateway_type = {g}");
        }
        // Unspecified counts as a non-gateway, as in IoT Core.
        Some(GatewayType::NonGateway) => {
            let g = q.arg(Arg::Int(GatewayType::Gateway.number().into()));
            q.sql += &format!(" AND d.gateway_type <> {g}");
        }
        Some(GatewayType::Unspecified) | None => {}
    }
    if let Some(gateway) = &filter.associations_gateway {
        let (g, _) = find(conn, pk, registry, gateway).await?;
        let g = q.arg(Arg::Int(g));
        q.sql += &format!(
            " AND d.num_id IN (SELECT device_num_id FROM gateway_bindings \
             WHERE gateway_num_id = {g})"
        );
    }
    if let Some(device) = &filter.associations_device {
        let (n, _) = find(conn, pk, registry, device).await?;
        let n = q.arg(Arg::Int(n));
        q.sql += &format!(
            " AND d.num_id IN (SELECT gateway_num_id FROM gateway_bindings \
             WHERE device_num_id = {n})"
        );
    }
    let limit = q.arg(Arg::Int(i64::try_from(size + 1).unwrap_or(i64::MAX)));
    q.sql += &format!(" ORDER BY d.num_id LIMIT {limit}");

    let rows = q.fetch_all(conn).await?;
    let items = rows
        .iter()
        .map(device_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(paging::page_of(items, size, Keyset::Devices, |d| {
        d.num_id.to_string()
    }))
}
