//! Registries: create, read, update, delete and list, and the key lookup every device
//! call starts with.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe};

use super::rows::{REGISTRY_SELECT, get, registry_from_row};
use super::{Dialect, codec, db, unless_taken};
use crate::model::DeviceRegistry;
use crate::names::{LocationPath, RegistryPath};
use crate::paging::{self, Keyset};
use crate::store::{Page, PageRequest, StoreError, StoreResult};

pub(super) fn not_found(path: &RegistryPath) -> StoreError {
    StoreError::NotFound(format!(
        "registry '{}' not found in {}",
        path.registry,
        path.location_path()
    ))
}

/// The registry's key.
pub(super) async fn pk(conn: &mut AnyConnection, path: &RegistryPath) -> StoreResult<i64> {
    pk_locked(conn, path, "").await
}

/// The registry's key, with a row lock `suffix` (`Dialect::for_share`/`for_update`).
pub(super) async fn pk_locked(
    conn: &mut AnyConnection,
    path: &RegistryPath,
    suffix: &str,
) -> StoreResult<i64> {
    with_path(
        sqlx::query(AssertSqlSafe(format!(
            "SELECT pk FROM registries {BY_PATH}{suffix}"
        ))),
        path,
    )
    .fetch_optional(conn)
    .await
    .map_err(db)?
    .map(|row| get::<i64>(&row, "pk"))
    .transpose()?
    .ok_or_else(|| not_found(path))
}

/// Every topic named in any registry's notification configs, sorted, each once.
pub(super) async fn notification_topics(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    let rows =
        sqlx::query("SELECT event_notification_configs, state_notification_topic FROM registries")
            .fetch_all(conn)
            .await
            .map_err(db)?;
    let mut topics = std::collections::BTreeSet::new();
    for row in rows {
        let events =
            codec::decode_event_configs(&get::<String>(&row, "event_notification_configs")?)?;
        topics.extend(events.into_iter().map(|c| c.pubsub_topic_name));
        topics.extend(get::<Option<String>>(&row, "state_notification_topic")?);
    }
    Ok(topics.into_iter().collect())
}

/// The registry a statement is about: its path bound to $1–$3 by [`with_path`].
const BY_PATH: &str = "WHERE project = $1 AND location = $2 AND id = $3";

/// Binds a registry's path to $1–$3.
fn with_path<'q>(
    query: Query<'q, Any, AnyArguments>,
    path: &RegistryPath,
) -> Query<'q, Any, AnyArguments> {
    query
        .bind(path.project.clone())
        .bind(path.location.clone())
        .bind(path.registry.clone())
}

/// Binds a registry's path ($1–$3) and stored fields ($4–$9).
fn with_values<'q>(
    query: Query<'q, Any, AnyArguments>,
    r: &DeviceRegistry,
) -> Query<'q, Any, AnyArguments> {
    with_path(query, &r.path)
        .bind(codec::encode_event_configs(&r.event_notification_configs))
        .bind(
            r.state_notification_config
                .as_ref()
                .map(|s| s.pubsub_topic_name.clone()),
        )
        .bind(i64::from(r.mqtt_state.number()))
        .bind(i64::from(r.http_state.number()))
        .bind(i64::from(r.log_level.number()))
        .bind(codec::encode_registry_credentials(&r.credentials))
}

pub(super) async fn create(
    conn: &mut AnyConnection,
    r: &DeviceRegistry,
) -> StoreResult<DeviceRegistry> {
    let exists = || {
        StoreError::AlreadyExists(format!(
            "registry '{}' already exists in {}",
            r.path.registry,
            r.path.location_path()
        ))
    };
    match pk(conn, &r.path).await {
        Ok(_) => return Err(exists()),
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    with_values(
        sqlx::query(
            "INSERT INTO registries (project, location, id, event_notification_configs, \
             state_notification_topic, mqtt_state, http_state, log_level, credentials) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        ),
        r,
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| unless_taken(e, exists))?;
    get_one(conn, &r.path).await
}

pub(super) async fn get_one(
    conn: &mut AnyConnection,
    path: &RegistryPath,
) -> StoreResult<DeviceRegistry> {
    Ok(get_with_pk(conn, path).await?.1)
}

/// A registry and its key, in one query.
pub(super) async fn get_with_pk(
    conn: &mut AnyConnection,
    path: &RegistryPath,
) -> StoreResult<(i64, DeviceRegistry)> {
    let row = with_path(
        sqlx::query(AssertSqlSafe(format!("{REGISTRY_SELECT} {BY_PATH}"))),
        path,
    )
    .fetch_optional(conn)
    .await
    .map_err(db)?
    .ok_or_else(|| not_found(path))?;
    Ok((get(&row, "pk")?, registry_from_row(&row)?))
}

pub(super) async fn update(
    conn: &mut AnyConnection,
    r: &DeviceRegistry,
) -> StoreResult<DeviceRegistry> {
    let done = with_values(
        sqlx::query(
            "UPDATE registries SET event_notification_configs = $4, \
             state_notification_topic = $5, mqtt_state = $6, http_state = $7, log_level = $8, \
             credentials = $9 WHERE project = $1 AND location = $2 AND id = $3",
        ),
        r,
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(not_found(&r.path));
    }
    get_one(conn, &r.path).await
}

pub(super) async fn delete(
    conn: &mut AnyConnection,
    dialect: Dialect,
    path: &RegistryPath,
) -> StoreResult<()> {
    // Locked, so no device can be created in it until we are done.
    let pk = pk_locked(conn, path, dialect.for_update()).await?;
    let row = sqlx::query("SELECT COUNT(*) AS n FROM devices WHERE registry_pk = $1")
        .bind(pk)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let devices: i64 = get(&row, "n")?;
    if devices > 0 {
        return Err(StoreError::FailedPrecondition(format!(
            "registry '{path}' still has {devices} device(s); delete them first"
        )));
    }
    super::claims::delete_all(conn, pk).await?;
    sqlx::query("DELETE FROM registries WHERE pk = $1")
        .bind(pk)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn list(
    conn: &mut AnyConnection,
    parent: &LocationPath,
    page: &PageRequest,
) -> StoreResult<Page<DeviceRegistry>> {
    let size = paging::page_size(page);
    let after = paging::decode(Keyset::Registries, &page.page_token)?.unwrap_or_default();
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{REGISTRY_SELECT} WHERE project = $1 AND location = $2 AND id > $3 \
         ORDER BY id LIMIT $4"
    )))
    .bind(parent.project.clone())
    .bind(parent.location.clone())
    .bind(after)
    .bind(i64::try_from(size + 1).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await
    .map_err(db)?;
    let items = rows
        .iter()
        .map(registry_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(paging::page_of(items, size, Keyset::Registries, |r| {
        r.path.registry.clone()
    }))
}
