//! The one [`Store`] implementation both backends share, over sqlx's `Any` driver.
//!
//! ```text
//!  SqliteStore ──┐                  ┌─ Dialect::Sqlite   (BEGIN IMMEDIATE, one writer)
//!                ├─▶ SqlStore ──────┤
//!  PostgresStore ┘   (this module)  └─ Dialect::Postgres (BEGIN, row locks)
//! ```
//!
//! Both schemas use the same tables, column names and value encodings (integers,
//! microsecond times, proto enum numbers, JSON text), so every statement here runs
//! unchanged on both; only how a write transaction starts differs. Compare-and-set is
//! one `UPDATE … WHERE config_version = $n`: SQLite runs one writer at a time, and
//! PostgreSQL re-checks the condition after waiting for the row lock, so exactly one
//! of several concurrent callers wins on either.

pub(crate) mod codec;

use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{Mutex, MutexGuard};

use crate::model::{
    Device, DeviceConfig, DeviceRegistry, DeviceState, GatewayAuthMethod, GatewayConfig,
    GatewayType, HttpState, LogLevel, MqttState, StateNotificationConfig, Status, Timestamp,
    limits,
};
use crate::names::{DeviceRef, LocationPath, RegistryPath};
use crate::paging::{self, Keyset};
use crate::store::{
    Activity, ActivityKind, DeviceFilter, Page, PageRequest, StoreError, StoreResult,
};

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub(crate) fn begin(self) -> &'static str {
        match self {
            // Take the write lock up front: a deferred transaction that read first could
            // not upgrade to a writer once another connection has committed.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// Row lock for a row about to change or be deleted (SQLite locks the database).
    fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// Row lock that keeps a parent row from being deleted while a child is added.
    fn for_share(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR SHARE",
        }
    }
}

/// A store over a pool of either dialect.
#[derive(Debug)]
pub(crate) struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite has one writer at a time; queueing writers here keeps them in order and
    /// off SQLite's busy-retry loop. `None` on PostgreSQL.
    writers: Option<Mutex<()>>,
}

/// A write transaction (and, on SQLite, this process's writer slot).
struct Write<'a> {
    tx: Transaction<'static, Any>,
    _slot: Option<MutexGuard<'a, ()>>,
}

impl Write<'_> {
    fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Commits on success, rolls back on failure: a failed call changes nothing.
    async fn finish<T>(self, result: StoreResult<T>) -> StoreResult<T> {
        match result {
            Ok(value) => {
                self.tx.commit().await.map_err(db)?;
                Ok(value)
            }
            Err(e) => {
                // The error that made us roll back matters more than a rollback failure.
                let _ = self.tx.rollback().await;
                Err(e)
            }
        }
    }
}

/// A database failure the caller cannot fix.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

fn get<'r, T>(row: &'r AnyRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column).map_err(db)
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp)
}

/// Enum numbers are stored as BIGINT; unknown numbers read as the default.
fn enum_num<T: Default>(n: i64, from: fn(i32) -> Option<T>) -> T {
    i32::try_from(n).ok().and_then(from).unwrap_or_default()
}

/// numIds are below 2^63 (we generate them below 2^53); larger ones match nothing.
fn to_db_num_id(n: u64) -> Option<i64> {
    i64::try_from(n).ok()
}

fn from_db_num_id(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// Random numIds in [10^15, 2^53): as long as IoT Core's, and exact even in clients
/// that read JSON numbers as doubles.
fn random_num_id() -> StoreResult<i64> {
    const LOW: u64 = 1_000_000_000_000_000;
    const HIGH: u64 = 1 << 53;
    let r = getrandom::u64()
        .map_err(|e| StoreError::Backend(format!("no randomness for a device numId: {e}")))?;
    i64::try_from(LOW + r % (HIGH - LOW))
        .map_err(|_| StoreError::Backend("numId out of range".into()))
}

fn device_not_found(registry: &RegistryPath, device: &dyn std::fmt::Display) -> StoreError {
    StoreError::NotFound(format!("device '{device}' not found in {registry}"))
}

fn registry_not_found(path: &RegistryPath) -> StoreError {
    StoreError::NotFound(format!(
        "registry '{}' not found in {}",
        path.registry,
        path.location_path()
    ))
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

const REGISTRY_SELECT: &str = "SELECT id, project, location, event_notification_configs, \
     state_notification_topic, mqtt_state, http_state, log_level, credentials FROM registries";

fn device_from_row(row: &AnyRow) -> StoreResult<Device> {
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

fn registry_from_row(row: &AnyRow) -> StoreResult<DeviceRegistry> {
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

fn config_from_row(row: &AnyRow) -> StoreResult<DeviceConfig> {
    Ok(DeviceConfig {
        version: get(row, "version")?,
        cloud_update_time: ts(get(row, "cloud_update_time")?),
        device_ack_time: ts(get(row, "device_ack_time")?),
        binary_data: get(row, "binary_data")?,
    })
}

/// A bind value of a statement built at run time.
enum Arg {
    Int(i64),
    Text(String),
}

/// A statement built at run time from fixed fragments; values are always bound.
#[derive(Default)]
struct Built {
    sql: String,
    args: Vec<Arg>,
}

impl Built {
    /// Adds a value and returns its placeholder.
    fn arg(&mut self, value: Arg) -> String {
        self.args.push(value);
        format!("${}", self.args.len())
    }

    async fn fetch_all(self, conn: &mut AnyConnection) -> StoreResult<Vec<AnyRow>> {
        // Filter lists change the text every time: do not fill the statement cache.
        let mut query = sqlx::query(AssertSqlSafe(self.sql)).persistent(false);
        for arg in self.args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        query.fetch_all(conn).await.map_err(db)
    }
}

impl SqlStore {
    pub(crate) fn new(pool: AnyPool, dialect: Dialect) -> Self {
        let writers = (dialect == Dialect::Sqlite).then(|| Mutex::new(()));
        SqlStore {
            pool,
            dialect,
            writers,
        }
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn write(&self) -> StoreResult<Write<'_>> {
        let slot = match &self.writers {
            Some(m) => Some(m.lock().await),
            None => None,
        };
        let tx = self
            .pool
            .begin_with(self.dialect.begin())
            .await
            .map_err(db)?;
        Ok(Write { tx, _slot: slot })
    }

    async fn read(&self) -> StoreResult<sqlx::pool::PoolConnection<Any>> {
        self.pool.acquire().await.map_err(db)
    }

    async fn registry_pk(&self, conn: &mut AnyConnection, path: &RegistryPath) -> StoreResult<i64> {
        self.registry_pk_locked(conn, path, "").await
    }

    /// The registry's key, with a row lock `suffix` (`Dialect::for_share`/`for_update`).
    async fn registry_pk_locked(
        &self,
        conn: &mut AnyConnection,
        path: &RegistryPath,
        suffix: &str,
    ) -> StoreResult<i64> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT pk FROM registries WHERE project = $1 AND location = $2 AND id = $3{suffix}"
        )))
        .bind(path.project.clone())
        .bind(path.location.clone())
        .bind(path.registry.clone())
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .map(|row| get::<i64>(&row, "pk"))
        .transpose()?
        .ok_or_else(|| registry_not_found(path))
    }

    /// The numId and gateway type of a device of the registry; with `lock`, the row
    /// stays locked until the transaction ends (PostgreSQL; SQLite holds the whole
    /// database).
    async fn find_device(
        &self,
        conn: &mut AnyConnection,
        pk: i64,
        path: &RegistryPath,
        device: &DeviceRef,
        lock: bool,
    ) -> StoreResult<(i64, GatewayType)> {
        let suffix = if lock { self.dialect.for_update() } else { "" };
        let row = match device {
            DeviceRef::Id(id) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT num_id, gateway_type FROM devices \
                     WHERE registry_pk = $1 AND id = $2{suffix}"
                )))
                .bind(pk)
                .bind(id.clone())
                .fetch_optional(conn)
                .await
            }
            DeviceRef::NumId(n) => {
                let Some(n) = to_db_num_id(*n) else {
                    return Err(device_not_found(path, device));
                };
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT num_id, gateway_type FROM devices \
                     WHERE registry_pk = $1 AND num_id = $2{suffix}"
                )))
                .bind(pk)
                .bind(n)
                .fetch_optional(conn)
                .await
            }
        }
        .map_err(db)?
        .ok_or_else(|| device_not_found(path, device))?;
        Ok((
            get(&row, "num_id")?,
            enum_num(get(&row, "gateway_type")?, GatewayType::from_number),
        ))
    }

    async fn load_device(
        &self,
        conn: &mut AnyConnection,
        path: &RegistryPath,
        num_id: i64,
    ) -> StoreResult<Device> {
        let row = sqlx::query(concat!(device_select!(), " WHERE d.num_id = $1"))
            .bind(num_id)
            .fetch_optional(conn)
            .await
            .map_err(db)?
            .ok_or_else(|| device_not_found(path, &num_id))?;
        device_from_row(&row)
    }

    // ----- registries -----

    pub(crate) async fn create_registry(
        &self,
        registry: &DeviceRegistry,
    ) -> StoreResult<DeviceRegistry> {
        let mut w = self.write().await?;
        let result = self.insert_registry(w.conn(), registry).await;
        w.finish(result).await
    }

    async fn insert_registry(
        &self,
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
        match self.registry_pk(conn, &r.path).await {
            Ok(_) => return Err(exists()),
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        sqlx::query(
            "INSERT INTO registries (project, location, id, event_notification_configs, \
             state_notification_topic, mqtt_state, http_state, log_level, credentials) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(r.path.project.clone())
        .bind(r.path.location.clone())
        .bind(r.path.registry.clone())
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
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                exists()
            } else {
                db(e)
            }
        })?;
        self.load_registry(conn, &r.path).await
    }

    async fn load_registry(
        &self,
        conn: &mut AnyConnection,
        path: &RegistryPath,
    ) -> StoreResult<DeviceRegistry> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{REGISTRY_SELECT} WHERE project = $1 AND location = $2 AND id = $3"
        )))
        .bind(path.project.clone())
        .bind(path.location.clone())
        .bind(path.registry.clone())
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or_else(|| registry_not_found(path))?;
        registry_from_row(&row)
    }

    pub(crate) async fn get_registry(&self, path: &RegistryPath) -> StoreResult<DeviceRegistry> {
        let mut conn = self.read().await?;
        self.load_registry(&mut conn, path).await
    }

    pub(crate) async fn update_registry(&self, r: &DeviceRegistry) -> StoreResult<DeviceRegistry> {
        let mut w = self.write().await?;
        let result = self.update_registry_in(w.conn(), r).await;
        w.finish(result).await
    }

    async fn update_registry_in(
        &self,
        conn: &mut AnyConnection,
        r: &DeviceRegistry,
    ) -> StoreResult<DeviceRegistry> {
        let done = sqlx::query(
            "UPDATE registries SET event_notification_configs = $1, \
             state_notification_topic = $2, mqtt_state = $3, http_state = $4, log_level = $5, \
             credentials = $6 WHERE project = $7 AND location = $8 AND id = $9",
        )
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
        .bind(r.path.project.clone())
        .bind(r.path.location.clone())
        .bind(r.path.registry.clone())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(registry_not_found(&r.path));
        }
        self.load_registry(conn, &r.path).await
    }

    pub(crate) async fn delete_registry(&self, path: &RegistryPath) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = self.delete_registry_in(w.conn(), path).await;
        w.finish(result).await
    }

    async fn delete_registry_in(
        &self,
        conn: &mut AnyConnection,
        path: &RegistryPath,
    ) -> StoreResult<()> {
        // Locked, so no device can be created in it until we are done.
        let pk = self
            .registry_pk_locked(conn, path, self.dialect.for_update())
            .await?;
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
        sqlx::query("DELETE FROM registries WHERE pk = $1")
            .bind(pk)
            .execute(conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn list_registries(
        &self,
        parent: &LocationPath,
        page: &PageRequest,
    ) -> StoreResult<Page<DeviceRegistry>> {
        let size = paging::page_size(page);
        let after = paging::decode(Keyset::Registries, &page.page_token)?.unwrap_or_default();
        let mut conn = self.read().await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{REGISTRY_SELECT} WHERE project = $1 AND location = $2 AND id > $3 \
             ORDER BY id LIMIT $4"
        )))
        .bind(parent.project.clone())
        .bind(parent.location.clone())
        .bind(after)
        .bind(i64::try_from(size + 1).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let mut items = rows
            .iter()
            .map(registry_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let next_page_token = if items.len() > size {
            items.truncate(size);
            items
                .last()
                .map(|r| paging::encode(Keyset::Registries, &r.path.registry))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }

    // ----- devices -----

    pub(crate) async fn create_device(
        &self,
        registry: &RegistryPath,
        device: &Device,
        now: Timestamp,
    ) -> StoreResult<Device> {
        let mut w = self.write().await?;
        let result = self.create_device_in(w.conn(), registry, device, now).await;
        w.finish(result).await
    }

    async fn create_device_in(
        &self,
        conn: &mut AnyConnection,
        registry: &RegistryPath,
        d: &Device,
        now: Timestamp,
    ) -> StoreResult<Device> {
        // Shared lock: the registry cannot be deleted while the device is added.
        let pk = self
            .registry_pk_locked(conn, registry, self.dialect.for_share())
            .await?;
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
        .map_err(|e| {
            if is_unique_violation(&e) {
                exists()
            } else {
                db(e)
            }
        })?;
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
        self.load_device(conn, registry, num_id).await
    }

    pub(crate) async fn get_device(
        &self,
        registry: &RegistryPath,
        device: &DeviceRef,
    ) -> StoreResult<Device> {
        let mut conn = self.read().await?;
        let pk = self.registry_pk(&mut conn, registry).await?;
        let (num_id, _) = self
            .find_device(&mut conn, pk, registry, device, false)
            .await?;
        self.load_device(&mut conn, registry, num_id).await
    }

    pub(crate) async fn update_device(
        &self,
        registry: &RegistryPath,
        device: &Device,
    ) -> StoreResult<Device> {
        let mut w = self.write().await?;
        let result = self.update_device_in(w.conn(), registry, device).await;
        w.finish(result).await
    }

    async fn update_device_in(
        &self,
        conn: &mut AnyConnection,
        registry: &RegistryPath,
        d: &Device,
    ) -> StoreResult<Device> {
        let pk = self.registry_pk(conn, registry).await?;
        let Some(num_id) = to_db_num_id(d.num_id) else {
            return Err(device_not_found(registry, &d.num_id));
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
            return Err(device_not_found(registry, &d.num_id));
        }
        self.load_device(conn, registry, num_id).await
    }

    pub(crate) async fn delete_device(
        &self,
        registry: &RegistryPath,
        device: &DeviceRef,
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = self.delete_device_in(w.conn(), registry, device).await;
        w.finish(result).await
    }

    async fn delete_device_in(
        &self,
        conn: &mut AnyConnection,
        registry: &RegistryPath,
        device: &DeviceRef,
    ) -> StoreResult<()> {
        let pk = self.registry_pk(conn, registry).await?;
        let (num_id, _) = self.find_device(conn, pk, registry, device, true).await?;
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM gateway_bindings WHERE gateway_num_id = $1")
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

    pub(crate) async fn list_devices(
        &self,
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
        let mut conn = self.read().await?;
        let pk = self.registry_pk(&mut conn, registry).await?;

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
            let (g, _) = self
                .find_device(&mut conn, pk, registry, gateway, false)
                .await?;
            let g = q.arg(Arg::Int(g));
            q.sql += &format!(
                " AND d.num_id IN (SELECT device_num_id FROM gateway_bindings \
                 WHERE gateway_num_id = {g})"
            );
        }
        if let Some(device) = &filter.associations_device {
            let (n, _) = self
                .find_device(&mut conn, pk, registry, device, false)
                .await?;
            let n = q.arg(Arg::Int(n));
            q.sql += &format!(
                " AND d.num_id IN (SELECT gateway_num_id FROM gateway_bindings \
                 WHERE device_num_id = {n})"
            );
        }
        let limit = q.arg(Arg::Int(i64::try_from(size + 1).unwrap_or(i64::MAX)));
        q.sql += &format!(" ORDER BY d.num_id LIMIT {limit}");

        let rows = q.fetch_all(&mut conn).await?;
        let mut items = rows
            .iter()
            .map(device_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let next_page_token = if items.len() > size {
            items.truncate(size);
            items
                .last()
                .map(|d| paging::encode(Keyset::Devices, &d.num_id.to_string()))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }

    // ----- configs and states -----

    pub(crate) async fn modify_config(
        &self,
        registry: &RegistryPath,
        device: &DeviceRef,
        version_to_update: i64,
        binary_data: &[u8],
        now: Timestamp,
    ) -> StoreResult<DeviceConfig> {
        let mut w = self.write().await?;
        let result = self
            .modify_config_in(
                w.conn(),
                registry,
                device,
                version_to_update,
                binary_data,
                now,
            )
            .await;
        w.finish(result).await
    }

    async fn modify_config_in(
        &self,
        conn: &mut AnyConnection,
        registry: &RegistryPath,
        device: &DeviceRef,
        version_to_update: i64,
        binary_data: &[u8],
        now: Timestamp,
    ) -> StoreResult<DeviceConfig> {
        let pk = self.registry_pk(conn, registry).await?;
        let (num_id, _) = self.find_device(conn, pk, registry, device, false).await?;
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
                .ok_or_else(|| device_not_found(registry, device))?;
            let current: i64 = get(&row, "config_version")?;
            return Err(StoreError::Aborted(format!(
                "the config version to update is {version_to_update} but the current version \
                 is {current}"
            )));
        };
        let version: i64 = get(&row, "config_version")?;
        sqlx::query(
            "INSERT INTO device_configs (num_id, version, cloud_update_time, binary_data) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(num_id)
        .bind(version)
        .bind(now.0)
        .bind(binary_data.to_vec())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        sqlx::query("DELETE FROM device_configs WHERE num_id = $1 AND version <= $2")
            .bind(num_id)
            .bind(version - history())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        Ok(DeviceConfig {
            version,
            cloud_update_time: Some(now),
            device_ack_time: None,
            binary_data: binary_data.to_vec(),
        })
    }

    pub(crate) async fn list_config_versions(
        &self,
        registry: &RegistryPath,
        device: &DeviceRef,
        num_versions: usize,
    ) -> StoreResult<Vec<DeviceConfig>> {
        let mut conn = self.read().await?;
        let pk = self.registry_pk(&mut conn, registry).await?;
        let (num_id, _) = self
            .find_device(&mut conn, pk, registry, device, false)
            .await?;
        let rows = sqlx::query(
            "SELECT version, cloud_update_time, device_ack_time, binary_data \
             FROM device_configs WHERE num_id = $1 ORDER BY version DESC LIMIT $2",
        )
        .bind(num_id)
        .bind(limit_of(num_versions))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        rows.iter().map(config_from_row).collect()
    }

    pub(crate) async fn ack_config(
        &self,
        registry: &RegistryPath,
        num_id: u64,
        version: i64,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = self
            .ack_config_in(w.conn(), registry, num_id, version, now)
            .await;
        w.finish(result).await
    }

    async fn ack_config_in(
        &self,
        conn: &mut AnyConnection,
        registry: &RegistryPath,
        num_id: u64,
        version: i64,
        now: Timestamp,
    ) -> StoreResult<()> {
        let pk = self.registry_pk(conn, registry).await?;
        let (num_id, _) = self
            .find_device(conn, pk, registry, &DeviceRef::NumId(num_id), false)
            .await?;
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

    pub(crate) async fn record_state(
        &self,
        registry: &RegistryPath,
        num_id: u64,
        binary_data: &[u8],
        now: Timestamp,
    ) -> StoreResult<DeviceState> {
        let mut w = self.write().await?;
        let result = self
            .record_state_in(w.conn(), registry, num_id, binary_data, now)
            .await;
        w.finish(result).await
    }

    async fn record_state_in(
        &self,
        conn: &mut AnyConnection,
        registry: &RegistryPath,
        num_id: u64,
        binary_data: &[u8],
        now: Timestamp,
    ) -> StoreResult<DeviceState> {
        let pk = self.registry_pk(conn, registry).await?;
        let (num_id, _) = self
            .find_device(conn, pk, registry, &DeviceRef::NumId(num_id), false)
            .await?;
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
        sqlx::query(
            "INSERT INTO device_states (num_id, seq, update_time, binary_data) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(num_id)
        .bind(seq)
        .bind(now.0)
        .bind(binary_data.to_vec())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        sqlx::query("DELETE FROM device_states WHERE num_id = $1 AND seq <= $2")
            .bind(num_id)
            .bind(seq - history())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        Ok(DeviceState {
            update_time: Some(now),
            binary_data: binary_data.to_vec(),
        })
    }

    pub(crate) async fn list_states(
        &self,
        registry: &RegistryPath,
        device: &DeviceRef,
        num_states: usize,
    ) -> StoreResult<Vec<DeviceState>> {
        let mut conn = self.read().await?;
        let pk = self.registry_pk(&mut conn, registry).await?;
        let (num_id, _) = self
            .find_device(&mut conn, pk, registry, device, false)
            .await?;
        let rows = sqlx::query(
            "SELECT update_time, binary_data FROM device_states \
             WHERE num_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(num_id)
        .bind(limit_of(num_states))
        .fetch_all(&mut *conn)
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

    // ----- gateways -----

    pub(crate) async fn bind(
        &self,
        registry: &RegistryPath,
        gateway: &DeviceRef,
        device: &DeviceRef,
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = self.bind_in(w.conn(), registry, gateway, device).await;
        w.finish(result).await
    }

    async fn bind_in(
        &self,
        conn: &mut AnyConnection,
        registry: &RegistryPath,
        gateway: &DeviceRef,
        device: &DeviceRef,
    ) -> StoreResult<()> {
        let pk = self.registry_pk(conn, registry).await?;
        let (g, g_type) = self.find_device(conn, pk, registry, gateway, false).await?;
        let (d, d_type) = self.find_device(conn, pk, registry, device, false).await?;
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
                self.dialect.for_update()
            )))
            .bind(num_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
            if found.is_none() {
                return Err(device_not_found(registry, &num_id));
            }
        }
        let rows =
            sqlx::query("SELECT gateway_num_id FROM gateway_bindings WHERE device_num_id = $1")
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

    pub(crate) async fn unbind(
        &self,
        registry: &RegistryPath,
        gateway: &DeviceRef,
        device: &DeviceRef,
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = self.unbind_in(w.conn(), registry, gateway, device).await;
        w.finish(result).await
    }

    async fn unbind_in(
        &self,
        conn: &mut AnyConnection,
        registry: &RegistryPath,
        gateway: &DeviceRef,
        device: &DeviceRef,
    ) -> StoreResult<()> {
        let pk = self.registry_pk(conn, registry).await?;
        let (g, _) = self.find_device(conn, pk, registry, gateway, false).await?;
        let (d, _) = self.find_device(conn, pk, registry, device, false).await?;
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

    pub(crate) async fn is_bound(
        &self,
        registry: &RegistryPath,
        gateway_num_id: u64,
        device_num_id: u64,
    ) -> StoreResult<bool> {
        let (Some(g), Some(d)) = (to_db_num_id(gateway_num_id), to_db_num_id(device_num_id)) else {
            return Ok(false);
        };
        let mut conn = self.read().await?;
        let pk = self.registry_pk(&mut conn, registry).await?;
        let row = sqlx::query(
            "SELECT b.gateway_num_id FROM gateway_bindings b \
             JOIN devices g ON g.num_id = b.gateway_num_id \
             WHERE b.gateway_num_id = $1 AND b.device_num_id = $2 AND g.registry_pk = $3",
        )
        .bind(g)
        .bind(d)
        .bind(pk)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        Ok(row.is_some())
    }

    // ----- activity -----

    pub(crate) async fn record_activity(&self, batch: &[Activity]) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut w = self.write().await?;
        let mut result = Ok(());
        for activity in batch {
            result = apply_activity(w.conn(), activity).await;
            if result.is_err() {
                break;
            }
        }
        w.finish(result).await
    }
}

/// How many rows a history list returns: 0 = all that are kept.
fn limit_of(n: usize) -> i64 {
    match n {
        0 => history(),
        n => i64::try_from(n).unwrap_or(i64::MAX),
    }
}

fn history() -> i64 {
    i64::try_from(limits::HISTORY).unwrap_or(10)
}

/// One activity record: each time only moves forward; unknown devices match no row.
async fn apply_activity(conn: &mut AnyConnection, a: &Activity) -> StoreResult<()> {
    let Some(num_id) = to_db_num_id(a.num_id) else {
        return Ok(());
    };
    // $1 time, $2 numId, $3–$5 registry path; extra values follow.
    macro_rules! where_device {
        ($column:literal) => {
            concat!(
                " WHERE num_id = $2 AND registry_pk = (SELECT pk FROM registries \
                 WHERE project = $3 AND location = $4 AND id = $5) AND (",
                $column,
                " IS NULL OR ",
                $column,
                " < $1)"
            )
        };
    }
    macro_rules! touch {
        ($column:literal) => {
            concat!(
                "UPDATE devices SET ",
                $column,
                " = $1",
                where_device!($column)
            )
        };
    }
    let query = match &a.kind {
        ActivityKind::Heartbeat => sqlx::query(touch!("last_heartbeat_time")),
        ActivityKind::Event => sqlx::query(touch!("last_event_time")),
        ActivityKind::State => sqlx::query(touch!("last_state_time")),
        ActivityKind::ConfigSent => sqlx::query(touch!("last_config_send_time")),
        ActivityKind::Error(_) => sqlx::query(concat!(
            "UPDATE devices SET last_error_time = $1, last_error_code = $6, \
             last_error_message = $7",
            where_device!("last_error_time")
        )),
        ActivityKind::GatewayAccess { .. } => sqlx::query(concat!(
            "UPDATE devices SET last_accessed_gateway_time = $1, last_accessed_gateway_id = $6",
            where_device!("last_accessed_gateway_time")
        )),
    };
    let query = query
        .bind(a.at.0)
        .bind(num_id)
        .bind(a.registry.project.clone())
        .bind(a.registry.location.clone())
        .bind(a.registry.registry.clone());
    let query = match &a.kind {
        ActivityKind::Error(status) => query
            .bind(i64::from(status.code))
            .bind(status.message.clone()),
        ActivityKind::GatewayAccess { gateway_id } => query.bind(gateway_id.clone()),
        _ => query,
    };
    query.execute(conn).await.map_err(db)?;
    Ok(())
}

/// Implements [`Store`](crate::Store) for a newtype around [`SqlStore`].
macro_rules! delegate_store {
    ($ty:ty, $name:literal) => {
        #[async_trait::async_trait]
        impl $crate::Store for $ty {
            fn backend(&self) -> &'static str {
                $name
            }
            async fn create_registry(
                &self,
                registry: &$crate::model::DeviceRegistry,
            ) -> $crate::StoreResult<$crate::model::DeviceRegistry> {
                self.0.create_registry(registry).await
            }
            async fn get_registry(
                &self,
                path: &$crate::names::RegistryPath,
            ) -> $crate::StoreResult<$crate::model::DeviceRegistry> {
                self.0.get_registry(path).await
            }
            async fn update_registry(
                &self,
                registry: &$crate::model::DeviceRegistry,
            ) -> $crate::StoreResult<$crate::model::DeviceRegistry> {
                self.0.update_registry(registry).await
            }
            async fn delete_registry(
                &self,
                path: &$crate::names::RegistryPath,
            ) -> $crate::StoreResult<()> {
                self.0.delete_registry(path).await
            }
            async fn list_registries(
                &self,
                parent: &$crate::names::LocationPath,
                page: &$crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<$crate::model::DeviceRegistry>> {
                self.0.list_registries(parent, page).await
            }
            async fn create_device(
                &self,
                registry: &$crate::names::RegistryPath,
                device: &$crate::model::Device,
                now: $crate::model::Timestamp,
            ) -> $crate::StoreResult<$crate::model::Device> {
                self.0.create_device(registry, device, now).await
            }
            async fn get_device(
                &self,
                registry: &$crate::names::RegistryPath,
                device: &$crate::names::DeviceRef,
            ) -> $crate::StoreResult<$crate::model::Device> {
                self.0.get_device(registry, device).await
            }
            async fn update_device(
                &self,
                registry: &$crate::names::RegistryPath,
                device: &$crate::model::Device,
            ) -> $crate::StoreResult<$crate::model::Device> {
                self.0.update_device(registry, device).await
            }
            async fn delete_device(
                &self,
                registry: &$crate::names::RegistryPath,
                device: &$crate::names::DeviceRef,
            ) -> $crate::StoreResult<()> {
                self.0.delete_device(registry, device).await
            }
            async fn list_devices(
                &self,
                registry: &$crate::names::RegistryPath,
                filter: &$crate::DeviceFilter,
                page: &$crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<$crate::model::Device>> {
                self.0.list_devices(registry, filter, page).await
            }
            async fn modify_config(
                &self,
                registry: &$crate::names::RegistryPath,
                device: &$crate::names::DeviceRef,
                version_to_update: i64,
                binary_data: &[u8],
                now: $crate::model::Timestamp,
            ) -> $crate::StoreResult<$crate::model::DeviceConfig> {
                self.0
                    .modify_config(registry, device, version_to_update, binary_data, now)
                    .await
            }
            async fn list_config_versions(
                &self,
                registry: &$crate::names::RegistryPath,
                device: &$crate::names::DeviceRef,
                num_versions: usize,
            ) -> $crate::StoreResult<Vec<$crate::model::DeviceConfig>> {
                self.0
                    .list_config_versions(registry, device, num_versions)
                    .await
            }
            async fn ack_config(
                &self,
                registry: &$crate::names::RegistryPath,
                num_id: u64,
                version: i64,
                now: $crate::model::Timestamp,
            ) -> $crate::StoreResult<()> {
                self.0.ack_config(registry, num_id, version, now).await
            }
            async fn record_state(
                &self,
                registry: &$crate::names::RegistryPath,
                num_id: u64,
                binary_data: &[u8],
                now: $crate::model::Timestamp,
            ) -> $crate::StoreResult<$crate::model::DeviceState> {
                self.0
                    .record_state(registry, num_id, binary_data, now)
                    .await
            }
            async fn list_states(
                &self,
                registry: &$crate::names::RegistryPath,
                device: &$crate::names::DeviceRef,
                num_states: usize,
            ) -> $crate::StoreResult<Vec<$crate::model::DeviceState>> {
                self.0.list_states(registry, device, num_states).await
            }
            async fn bind(
                &self,
                registry: &$crate::names::RegistryPath,
                gateway: &$crate::names::DeviceRef,
                device: &$crate::names::DeviceRef,
            ) -> $crate::StoreResult<()> {
                self.0.bind(registry, gateway, device).await
            }
            async fn unbind(
                &self,
                registry: &$crate::names::RegistryPath,
                gateway: &$crate::names::DeviceRef,
                device: &$crate::names::DeviceRef,
            ) -> $crate::StoreResult<()> {
                self.0.unbind(registry, gateway, device).await
            }
            async fn is_bound(
                &self,
                registry: &$crate::names::RegistryPath,
                gateway_num_id: u64,
                device_num_id: u64,
            ) -> $crate::StoreResult<bool> {
                self.0
                    .is_bound(registry, gateway_num_id, device_num_id)
                    .await
            }
            async fn record_activity(&self, batch: &[$crate::Activity]) -> $crate::StoreResult<()> {
                self.0.record_activity(batch).await
            }
        }
    };
}
pub(crate) use delegate_store;
