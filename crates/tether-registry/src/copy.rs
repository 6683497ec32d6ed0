//! Copying a whole registry database into an empty one: SQLite → PostgreSQL when a
//! deployment outgrows the embedded default (or back, or between two servers).
//!
//! Both schemas hold the same tables and value encodings (see `sql`), so rows move
//! as they are: registries keep their keys, devices their numIds (device names made
//! with a numId stay valid), config versions, states, errors and bindings stay. The
//! source is read in one snapshot; the target is written in one transaction, so a
//! failed copy leaves the target empty. Afterwards the target's id generators are moved
//! past the copied rows.

use futures_util::TryStreamExt as _;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row, Transaction};

use crate::sql::{Dialect, SqlStore, db};
use crate::store::{StoreError, StoreResult};

/// How one column is read and written.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int,
    OptInt,
    Text,
    OptText,
    Bytes,
}

/// A table, its columns and the order rows are copied in (parents first).
struct Table {
    name: &'static str,
    order_by: &'static str,
    columns: &'static [(&'static str, Kind)],
}

use Kind::{Bytes, Int, OptInt, OptText, Text};

const TABLES: [Table; 6] = [
    Table {
        name: "registries",
        order_by: "pk",
        columns: &[
            ("pk", Int),
            ("project", Text),
            ("location", Text),
            ("id", Text),
            ("event_notification_configs", Text),
            ("state_notification_topic", OptText),
            ("mqtt_state", Int),
            ("http_state", Int),
            ("log_level", Int),
            ("credentials", Text),
        ],
    },
    Table {
        name: "devices",
        order_by: "num_id",
        columns: &[
            ("num_id", Int),
            ("registry_pk", Int),
            ("id", Text),
            ("credentials", Text),
            ("blocked", Int),
            ("log_level", Int),
            ("metadata", Text),
            ("gateway_type", Int),
            ("gateway_auth_method", Int),
            ("last_accessed_gateway_id", Text),
            ("last_accessed_gateway_time", OptInt),
            ("last_heartbeat_time", OptInt),
            ("last_event_time", OptInt),
            ("last_state_time", OptInt),
            ("last_config_ack_time", OptInt),
            ("last_config_send_time", OptInt),
            ("last_error_time", OptInt),
            ("last_error_code", OptInt),
            ("last_error_message", OptText),
            ("config_version", Int),
            ("state_seq", Int),
        ],
    },
    Table {
        name: "device_configs",
        order_by: "num_id, version",
        columns: &[
            ("num_id", Int),
            ("version", Int),
            ("cloud_update_time", Int),
            ("device_ack_time", OptInt),
            ("binary_data", Bytes),
        ],
    },
    Table {
        name: "device_states",
        order_by: "num_id, seq",
        columns: &[
            ("num_id", Int),
            ("seq", Int),
            ("update_time", Int),
            ("binary_data", Bytes),
        ],
    },
    Table {
        name: "gateway_bindings",
        order_by: "gateway_num_id, device_num_id",
        columns: &[("gateway_num_id", Int), ("device_num_id", Int)],
    },
    Table {
        name: "provisioning_claims",
        order_by: "registry_pk, id",
        columns: &[
            ("registry_pk", Int),
            ("id", Text),
            ("key_format", Int),
            ("key", Text),
            ("device_id_pattern", Text),
            ("max_devices", OptInt),
            ("expiration_time", OptInt),
            ("template_metadata", Text),
            ("template_log_level", Int),
            ("template_gateway_type", Int),
            ("template_gateway_auth_method", Int),
            ("rotation_grace_secs", Int),
            ("devices_provisioned", Int),
            ("last_used_time", OptInt),
            ("create_time", Int),
            ("revoke_time", OptInt),
        ],
    },
];

/// Bound parameters per INSERT: below SQLite's oldest limit (999), so batches work on
/// any build.
const MAX_PARAMS: usize = 900;

/// Rows copied, per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Registries.
    pub registries: u64,
    /// Devices.
    pub devices: u64,
    /// Stored config versions.
    pub configs: u64,
    /// Stored device states.
    pub states: u64,
    /// Gateway bindings.
    pub bindings: u64,
    /// Provisioning claims.
    pub claims: u64,
}

impl CopyReport {
    fn set(&mut self, table: &str, n: u64) {
        match table {
            "registries" => self.registries = n,
            "devices" => self.devices = n,
            "device_configs" => self.configs = n,
            "device_states" => self.states = n,
            "provisioning_claims" => self.claims = n,
            _ => self.bindings = n,
        }
    }
}

/// What [`copy_database`] reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyProgress {
    /// A table is about to be copied: its name and row count in the source.
    Table(&'static str, u64),
    /// Rows of the current table copied so far.
    Rows(u64),
}

/// Copies every registry, device, config version, state, binding and provisioning
/// claim of `from` into `to`, which must hold no registry yet. Stop the servers that
/// use `from` first: changes made during the copy are not carried over.
pub async fn copy_database(
    from: &SqlStore,
    to: &SqlStore,
    progress: &mut (dyn FnMut(CopyProgress) + Send),
) -> StoreResult<CopyReport> {
    let mut source = snapshot(from).await?;
    let report = to
        .transact(async |target| {
            let existing = count(target, "registries").await?;
            if existing > 0 {
                return Err(StoreError::FailedPrecondition(format!(
                    "the target {} database already holds {existing} registr{}; copy into \
                     an empty database (a new one, or drop Tether's tables first)",
                    to.backend(),
                    if existing == 1 { "y" } else { "ies" }
                )));
            }
            let mut report = CopyReport::default();
            for table in &TABLES {
                let total = count(&mut source, table.name).await?;
                progress(CopyProgress::Table(table.name, total));
                let copied = copy_table(table, &mut source, target, progress).await?;
                let landed = count(target, table.name).await?;
                if landed != copied || copied != total {
                    return Err(StoreError::corrupt(format!(
                        "{}: read {total} rows, wrote {copied}, the target holds {landed}; \
                         nothing was committed",
                        table.name
                    )));
                }
                report.set(table.name, copied);
            }
            if to.dialect() == Dialect::Postgres {
                // Registries made after the copy must not reuse a copied key.
                sqlx::query(
                    "SELECT setval(pg_get_serial_sequence('registries', 'pk'), \
                     COALESCE((SELECT MAX(pk) FROM registries), 0) + 1, false)",
                )
                .execute(&mut *target)
                .await
                .map_err(db)?;
            }
            Ok(report)
        })
        .await;
    // The snapshot is no longer needed; ending it cannot undo or fail the copy.
    let _ = source.rollback().await;
    report
}

/// A read transaction that sees one state of the whole source.
async fn snapshot(store: &SqlStore) -> StoreResult<Transaction<'static, Any>> {
    match store.dialect() {
        // A deferred transaction: its first read fixes the WAL snapshot.
        Dialect::Sqlite => store.pool().begin().await.map_err(db),
        Dialect::Postgres => store
            .pool()
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db),
    }
}

async fn count(conn: &mut AnyConnection, table: &str) -> StoreResult<u64> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(conn)
        .await
        .map_err(db)?;
    let n: i64 = row.try_get(0).map_err(db)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn copy_table(
    table: &Table,
    source: &mut AnyConnection,
    target: &mut AnyConnection,
    progress: &mut (dyn FnMut(CopyProgress) + Send),
) -> StoreResult<u64> {
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let select = format!(
        "SELECT {} FROM {} ORDER BY {}",
        names.join(", "),
        table.name,
        table.order_by
    );
    let per_batch = (MAX_PARAMS / table.columns.len()).max(1);
    let mut rows = sqlx::query(AssertSqlSafe(select)).fetch(source);
    let mut batch = Vec::with_capacity(per_batch);
    let mut copied = 0u64;
    while let Some(row) = rows.try_next().await.map_err(db)? {
        batch.push(row);
        if batch.len() == per_batch {
            copied += insert(table, &batch, target).await?;
            batch.clear();
            progress(CopyProgress::Rows(copied));
        }
    }
    if !batch.is_empty() {
        copied += insert(table, &batch, target).await?;
        progress(CopyProgress::Rows(copied));
    }
    Ok(copied)
}

/// One multi-row INSERT of `rows`, each value decoded and bound by its column's kind.
async fn insert(table: &Table, rows: &[AnyRow], target: &mut AnyConnection) -> StoreResult<u64> {
    let width = table.columns.len();
    let tuples: Vec<String> = (0..rows.len())
        .map(|r| {
            let params: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name,
        names.join(", "),
        tuples.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(false);
    for row in rows {
        for (i, (name, kind)) in table.columns.iter().enumerate() {
            let bad = |e: sqlx::Error| {
                StoreError::corrupt(format!("{}.{name}: cannot read the value: {e}", table.name))
            };
            query = match kind {
                Int => query.bind(row.try_get::<i64, _>(i).map_err(bad)?),
                OptInt => query.bind(row.try_get::<Option<i64>, _>(i).map_err(bad)?),
                Text => query.bind(row.try_get::<String, _>(i).map_err(bad)?),
                OptText => query.bind(row.try_get::<Option<String>, _>(i).map_err(bad)?),
                Bytes => query.bind(row.try_get::<Vec<u8>, _>(i).map_err(bad)?),
            };
        }
    }
    let done = query.execute(target).await.map_err(|e| {
        StoreError::unavailable(format!("writing {} into the target", table.name), e)
    })?;
    Ok(done.rows_affected())
}
