//! Giving the space of deleted rows back to the file system (`tether storage compact`).
//!
//! SQLite keeps freed pages in its file until `VACUUM` rebuilds it; in WAL mode the
//! rebuilt database reaches the main file at the checkpoint that follows, which also
//! empties the WAL. PostgreSQL's plain `VACUUM` makes dead rows' space reusable and
//! returns empty pages at the end of each table, without locking out writers.

use sqlx::AnyConnection;

use super::rows::get;
use super::{Dialect, SqlStore, db};
use crate::store::{Compaction, StoreResult};

pub(super) async fn compact(store: &SqlStore) -> StoreResult<Compaction> {
    // The writer slot too: on SQLite, VACUUM needs the database to itself.
    let mut w = store.write().await?;
    let bytes_before = size(&mut w.conn, store.dialect).await?;
    let statements: &[&'static str] = match store.dialect {
        Dialect::Sqlite => &["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"],
        Dialect::Postgres => {
            &["VACUUM registries, devices, device_configs, device_states, gateway_bindings"]
        }
    };
    for &statement in statements {
        // Neither runs inside a transaction, nor as a prepared statement on PostgreSQL.
        sqlx::raw_sql(statement)
            .execute(&mut *w.conn)
            .await
            .map_err(db)?;
    }
    let bytes_after = size(&mut w.conn, store.dialect).await?;
    w.clean = true;
    Ok(Compaction {
        bytes_before,
        bytes_after,
    })
}

/// The bytes the database (SQLite) or the registry's tables (PostgreSQL) take.
async fn size(conn: &mut AnyConnection, dialect: Dialect) -> StoreResult<u64> {
    let sql = match dialect {
        Dialect::Sqlite => {
            "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()"
        }
        Dialect::Postgres => {
            "SELECT (pg_total_relation_size('registries') + pg_total_relation_size('devices') \
             + pg_total_relation_size('device_configs') \
             + pg_total_relation_size('device_states') \
             + pg_total_relation_size('gateway_bindings'))::BIGINT AS n"
        }
    };
    let row = sqlx::query(sql).fetch_one(conn).await.map_err(db)?;
    Ok(u64::try_from(get::<i64>(&row, "n")?).unwrap_or(0))
}
