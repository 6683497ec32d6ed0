//! The one [`Store`] implementation both backends share, over sqlx's `Any` driver.
//!
//! ```text
//!  SQLite file / memory ─┐                  ┌─ Dialect::Sqlite   (BEGIN IMMEDIATE, one writer)
//!                        ├─▶ SqlStore ──────┤
//!  PostgreSQL ───────────┘   (this module)  └─ Dialect::Postgres (BEGIN, row locks)
//! ```
//!
//! Both schemas use the same tables, column names and value encodings (integers,
//! microsecond times, proto enum numbers, JSON text), so every statement here runs
//! unchanged on both; only how a write transaction starts differs. Compare-and-set is
//! one `UPDATE … WHERE config_version = $n`: SQLite runs one writer at a time, and
//! PostgreSQL re-checks the condition after waiting for the row lock, so exactly one
//! of several concurrent callers wins on either.
//!
//! This module holds the store, its transactions and the `impl Store`, which says for
//! every call whether it reads or writes. The statements live with their resource:
//! [`registries`], [`devices`], [`history`] (configs and states), [`bindings`] and
//! [`activity`]; [`rows`] reads rows back into the model, [`query`] builds the
//! filtered list, [`codec`] encodes the JSON columns and [`compact`] returns free space.

mod activity;
mod bindings;
mod claims;
pub(crate) mod codec;
mod compact;
mod devices;
mod history;
mod query;
mod registries;
mod rows;
#[cfg(test)]
mod tests;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection as _};
use tokio::sync::{Mutex, MutexGuard};

use crate::model::{Device, DeviceConfig, DeviceRegistry, DeviceState, Timestamp};
use crate::names::{DeviceRef, LocationPath, RegistryPath};
use crate::provisioning::{Provisioned, ProvisioningClaim};
use crate::store::{
    Activity, Compaction, DeviceFilter, Page, PageRequest, Store, StoreError, StoreResult,
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

/// A [`Store`] in a SQL database: a SQLite file ([`open`](SqlStore::open)), SQLite in
/// memory ([`in_memory`](SqlStore::in_memory)) or PostgreSQL
/// ([`connect`](SqlStore::connect)). [`SqliteStore`](crate::SqliteStore) and
/// [`PostgresStore`](crate::PostgresStore) name the same type.
#[derive(Debug)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite has one writer at a time; queueing writers here keeps them in order and
    /// off SQLite's busy-retry loop. `None` on PostgreSQL.
    writers: Option<Mutex<()>>,
    /// An idle connection that keeps an in-memory database alive while the pool
    /// replaces its one connection. `None` for a database that outlives connections.
    _keep_alive: Option<std::sync::Mutex<AnyConnection>>,
}

/// A connection checked out for one write transaction (and, on SQLite, this process's
/// writer slot).
///
/// Unless the transaction ended cleanly, the connection is closed instead of going
/// back to the pool. After a failed COMMIT or ROLLBACK, or a future dropped between
/// BEGIN and COMMIT, its transaction state is unknown: SQLite rolls back by itself on
/// a full disk, so sqlx's ROLLBACK then fails and the connection would stay "in a
/// transaction" and refuse every later BEGIN.
struct Write<'a> {
    conn: PoolConnection<Any>,
    clean: bool,
    _slot: Option<MutexGuard<'a, ()>>,
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        if !self.clean {
            self.conn.close_on_drop();
        }
    }
}

/// A database failure the caller cannot fix, told apart by whose fault it is.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    let what = match &e {
        E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. }
        | E::TypeNotFound { .. } => return StoreError::corrupt(e.to_string()),
        E::PoolTimedOut => "no database connection was free in time",
        E::PoolClosed => "the store is closed",
        E::Io(_) | E::Tls(_) | E::Protocol(_) => "the database connection failed",
        E::Database(_) => "a statement failed",
        _ => "the database call failed",
    };
    StoreError::unavailable(what, e)
}

/// `taken()` if `e` broke a unique constraint (a concurrent create of the same id won
/// the race), else [`db`].
fn unless_taken(e: sqlx::Error, taken: impl FnOnce() -> StoreError) -> StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => taken(),
        _ => db(e),
    }
}

impl SqlStore {
    pub(crate) fn new(pool: AnyPool, dialect: Dialect) -> Self {
        let writers = (dialect == Dialect::Sqlite).then(|| Mutex::new(()));
        SqlStore {
            pool,
            dialect,
            writers,
            _keep_alive: None,
        }
    }

    /// Keeps `conn` open, unused, as long as the store.
    pub(crate) fn keeping_alive(mut self, conn: AnyConnection) -> Self {
        self._keep_alive = Some(std::sync::Mutex::new(conn));
        self
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Waits for this process's writer slot (SQLite) and a pooled connection.
    async fn write(&self) -> StoreResult<Write<'_>> {
        let slot = match &self.writers {
            Some(m) => Some(m.lock().await),
            None => None,
        };
        let conn = self.pool.acquire().await.map_err(db)?;
        Ok(Write {
            conn,
            clean: false,
            _slot: slot,
        })
    }

    /// A pooled connection for reads, outside any transaction.
    async fn read(&self) -> StoreResult<PoolConnection<Any>> {
        self.pool.acquire().await.map_err(db)
    }

    /// Runs `work` in one write transaction: commits what it did if it succeeds, rolls
    /// everything back if it fails, so a failed call changes nothing.
    pub(crate) async fn transact<T>(
        &self,
        work: impl AsyncFnOnce(&mut AnyConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut w = self.write().await?;
        let mut tx = w.conn.begin_with(self.dialect.begin()).await.map_err(db)?;
        let result = work(&mut tx).await;
        let ended = match result {
            Ok(_) => tx.commit().await,
            Err(_) => tx.rollback().await,
        };
        match ended {
            Ok(()) => {
                w.clean = true;
                result
            }
            // The error that made us roll back matters more than a rollback failure.
            Err(e) => Err(result.err().unwrap_or_else(|| db(e))),
        }
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        SqlStore::backend(self)
    }

    async fn create_registry(&self, registry: &DeviceRegistry) -> StoreResult<DeviceRegistry> {
        self.transact(async |conn| registries::create(conn, registry).await)
            .await
    }

    async fn get_registry(&self, path: &RegistryPath) -> StoreResult<DeviceRegistry> {
        registries::get_one(&mut *self.read().await?, path).await
    }

    async fn update_registry(&self, registry: &DeviceRegistry) -> StoreResult<DeviceRegistry> {
        self.transact(async |conn| registries::update(conn, registry).await)
            .await
    }

    async fn delete_registry(&self, path: &RegistryPath) -> StoreResult<()> {
        self.transact(async |conn| registries::delete(conn, self.dialect, path).await)
            .await
    }

    async fn notification_topics(&self) -> StoreResult<Vec<String>> {
        registries::notification_topics(&mut *self.read().await?).await
    }

    async fn list_registries(
        &self,
        parent: &LocationPath,
        page: &PageRequest,
    ) -> StoreResult<Page<DeviceRegistry>> {
        registries::list(&mut *self.read().await?, parent, page).await
    }

    async fn create_device(
        &self,
        registry: &RegistryPath,
        device: &Device,
        now: Timestamp,
    ) -> StoreResult<Device> {
        self.transact(async |conn| devices::create(conn, self.dialect, registry, device, now).await)
            .await
    }

    async fn get_device(&self, registry: &RegistryPath, device: &DeviceRef) -> StoreResult<Device> {
        devices::get_one(&mut *self.read().await?, registry, device).await
    }

    async fn get_registry_and_device(
        &self,
        path: &RegistryPath,
        device: &DeviceRef,
    ) -> StoreResult<(DeviceRegistry, Option<Device>)> {
        let mut conn = self.read().await?;
        let (pk, registry) = registries::get_with_pk(&mut conn, path).await?;
        let device = devices::find_loaded(&mut conn, pk, device).await?;
        Ok((registry, device))
    }

    async fn update_device(&self, registry: &RegistryPath, device: &Device) -> StoreResult<Device> {
        self.transact(async |conn| devices::update(conn, registry, device).await)
            .await
    }

    async fn delete_device(&self, registry: &RegistryPath, device: &DeviceRef) -> StoreResult<()> {
        self.transact(async |conn| devices::delete(conn, self.dialect, registry, device).await)
            .await
    }

    async fn list_devices(
        &self,
        registry: &RegistryPath,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Device>> {
        devices::list(&mut *self.read().await?, registry, filter, page).await
    }

    async fn modify_config(
        &self,
        registry: &RegistryPath,
        device: &DeviceRef,
        version_to_update: i64,
        binary_data: &[u8],
        now: Timestamp,
    ) -> StoreResult<DeviceConfig> {
        self.transact(async |conn| {
            history::modify_config(conn, registry, device, version_to_update, binary_data, now)
                .await
        })
        .await
    }

    async fn list_config_versions(
        &self,
        registry: &RegistryPath,
        device: &DeviceRef,
        num_versions: usize,
    ) -> StoreResult<Vec<DeviceConfig>> {
        history::list_configs(&mut *self.read().await?, registry, device, num_versions).await
    }

    async fn ack_config(
        &self,
        registry: &RegistryPath,
        num_id: u64,
        version: i64,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.transact(async |conn| history::ack_config(conn, registry, num_id, version, now).await)
            .await
    }

    async fn record_state(
        &self,
        registry: &RegistryPath,
        num_id: u64,
        binary_data: &[u8],
        now: Timestamp,
    ) -> StoreResult<DeviceState> {
        self.transact(async |conn| {
            history::record_state(conn, registry, num_id, binary_data, now).await
        })
        .await
    }

    async fn list_states(
        &self,
        registry: &RegistryPath,
        device: &DeviceRef,
        num_states: usize,
    ) -> StoreResult<Vec<DeviceState>> {
        history::list_states(&mut *self.read().await?, registry, device, num_states).await
    }

    async fn bind(
        &self,
        registry: &RegistryPath,
        gateway: &DeviceRef,
        device: &DeviceRef,
    ) -> StoreResult<()> {
        self.transact(async |conn| {
            bindings::bind(conn, self.dialect, registry, gateway, device).await
        })
        .await
    }

    async fn unbind(
        &self,
        registry: &RegistryPath,
        gateway: &DeviceRef,
        device: &DeviceRef,
    ) -> StoreResult<()> {
        self.transact(async |conn| bindings::unbind(conn, registry, gateway, device).await)
            .await
    }

    async fn is_bound(
        &self,
        registry: &RegistryPath,
        gateway_num_id: u64,
        device_num_id: u64,
    ) -> StoreResult<bool> {
        bindings::is_bound(
            &mut *self.read().await?,
            registry,
            gateway_num_id,
            device_num_id,
        )
        .await
    }

    async fn record_activity(&self, batch: &[Activity]) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.transact(async |conn| activity::apply_all(conn, batch).await)
            .await
    }

    async fn compact(&self) -> StoreResult<Compaction> {
        compact::compact(self).await
    }

    async fn create_claim(
        &self,
        claim: &ProvisioningClaim,
        now: Timestamp,
    ) -> StoreResult<ProvisioningClaim> {
        self.transact(async |conn| claims::create(conn, self.dialect, claim, now).await)
            .await
    }

    async fn get_claim(&self, registry: &RegistryPath, id: &str) -> StoreResult<ProvisioningClaim> {
        claims::get_one(&mut *self.read().await?, registry, id).await
    }

    async fn list_claims(&self, registry: &RegistryPath) -> StoreResult<Vec<ProvisioningClaim>> {
        claims::list(&mut *self.read().await?, registry).await
    }

    async fn revoke_claim(
        &self,
        registry: &RegistryPath,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<ProvisioningClaim> {
        self.transact(async |conn| claims::revoke(conn, registry, id, now).await)
            .await
    }

    async fn provision_device(
        &self,
        registry: &RegistryPath,
        claim_id: &str,
        device: &Device,
        now: Timestamp,
    ) -> StoreResult<Provisioned> {
        self.transact(async |conn| {
            claims::provision(conn, self.dialect, registry, claim_id, device, now).await
        })
        .await
    }
}
