//! Device activity from the bridges (last*-times, last error, last gateway), applied in
//! batches: each time only moves forward, and records for deleted devices are ignored.
//!
//! A fleet's batch is mostly plain times (`lastEventTime`, `lastHeartbeatTime`, …): a
//! statement per record was a round trip to the database's thread per record, 2,000
//! every tick for 2,000 devices that each send a message a second. Those go in one
//! statement per registry, column and [`ROWS_PER_STATEMENT`] devices; errors and
//! gateway access (rare, and with more than a time) stay one statement each.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe};

use super::db;
use super::rows::to_db_num_id;
use crate::names::RegistryPath;
use crate::store::{Activity, ActivityKind, StoreResult};

/// Devices per batched statement: two parameters each, far below SQLite's and
/// PostgreSQL's limits on parameters per statement.
const ROWS_PER_STATEMENT: usize = 500;

/// The condition of a record with more than a time, written alone: each time only
/// moves forward, and a numId that is not a device of the registry matches no row.
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

/// Applies a whole batch, with the outcome of applying its records one by one: per
/// device and column the latest time wins (at equal times the first record, which
/// only an error's status can tell apart).
pub(super) async fn apply_all(conn: &mut AnyConnection, batch: &[Activity]) -> StoreResult<()> {
    // Per registry and column: each device's latest time.
    let mut times: HashMap<(&RegistryPath, &'static str), BTreeMap<i64, i64>> = HashMap::new();
    for a in batch {
        let Some(num_id) = to_db_num_id(a.num_id) else {
            continue;
        };
        let column = match &a.kind {
            ActivityKind::Heartbeat => "last_heartbeat_time",
            ActivityKind::Event => "last_event_time",
            ActivityKind::State => "last_state_time",
            ActivityKind::ConfigSent => "last_config_send_time",
            ActivityKind::Error(status) => {
                one(
                    concat!(
                        "UPDATE devices SET last_error_time = $1, last_error_code = $6, \
                         last_error_message = $7",
                        where_device!("last_error_time")
                    ),
                    a,
                    num_id,
                )
                .bind(i64::from(status.code))
                .bind(status.message.clone())
                .execute(&mut *conn)
                .await
                .map_err(db)?;
                continue;
            }
            ActivityKind::GatewayAccess { gateway_id } => {
                one(
                    concat!(
                        "UPDATE devices SET last_accessed_gateway_time = $1, \
                         last_accessed_gateway_id = $6",
                        where_device!("last_accessed_gateway_time")
                    ),
                    a,
                    num_id,
                )
                .bind(gateway_id.clone())
                .execute(&mut *conn)
                .await
                .map_err(db)?;
                continue;
            }
        };
        // A plain time: its device's latest, written with the others below.
        let kept = times
            .entry((&a.registry, column))
            .or_default()
            .entry(num_id)
            .or_insert(a.at.0);
        *kept = (*kept).max(a.at.0);
    }
    for ((registry, column), devices) in times {
        let devices: Vec<(i64, i64)> = devices.into_iter().collect();
        for chunk in devices.chunks(ROWS_PER_STATEMENT) {
            touch_many(conn, registry, column, chunk).await?;
        }
    }
    Ok(())
}

/// `sql` with its first five values bound: $1 the time, $2 the numId, $3–$5 the
/// registry's path; the record's own values follow.
fn one<'q>(sql: &'static str, a: &Activity, num_id: i64) -> Query<'q, Any, AnyArguments> {
    sqlx::query(sql)
        .bind(a.at.0)
        .bind(num_id)
        .bind(a.registry.project.clone())
        .bind(a.registry.location.clone())
        .bind(a.registry.registry.clone())
}

/// Moves `column` forward to each `(numId, time)` of `devices` (distinct numIds) in one
/// statement. A numId that is not a device of `registry` matches no row.
async fn touch_many(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    column: &'static str,
    devices: &[(i64, i64)],
) -> StoreResult<()> {
    // Audited: the only text put into it is `column`, one of `apply_all`'s literal
    // column names, and the placeholders; every value is bound.
    let sql = AssertSqlSafe(touch_many_sql(column, devices.len()));
    let mut query = sqlx::query(sql)
        .persistent(false)
        .bind(registry.project.clone())
        .bind(registry.location.clone())
        .bind(registry.registry.clone());
    for &(num_id, at) in devices {
        query = query.bind(num_id).bind(at);
    }
    query.execute(conn).await.map_err(db)?;
    Ok(())
}

/// `UPDATE … FROM (VALUES …)`, which SQLite (3.33 on) and PostgreSQL both take. Their
/// `VALUES` columns are both named `column1`, `column2`. `$1`–`$3` are the registry's
/// path, then a numId and a time per device. (Not cached as a prepared statement: its
/// text differs with the number of devices.)
fn touch_many_sql(column: &str, rows: usize) -> String {
    let mut sql = format!(
        "UPDATE devices SET {column} = v.t FROM (SELECT column1 AS n, column2 AS t FROM (VALUES "
    );
    for i in 0..rows {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(sql, "{sep}(${}, ${})", 4 + 2 * i, 5 + 2 * i);
    }
    let _ = write!(
        sql,
        ") AS r) AS v WHERE devices.num_id = v.n AND devices.registry_pk = (SELECT pk FROM \
         registries WHERE project = $1 AND location = $2 AND id = $3) AND \
         (devices.{column} IS NULL OR devices.{column} < v.t)"
    );
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batched_statement_numbers_its_parameters_after_the_registry() {
        assert_eq!(
            touch_many_sql("last_event_time", 2),
            "UPDATE devices SET last_event_time = v.t FROM (SELECT column1 AS n, column2 AS t \
             FROM (VALUES ($4, $5), ($6, $7)) AS r) AS v WHERE devices.num_id = v.n AND \
             devices.registry_pk = (SELECT pk FROM registries WHERE project = $1 AND \
             location = $2 AND id = $3) AND (devices.last_event_time IS NULL OR \
             devices.last_event_time < v.t)"
        );
    }
}
