//! Choosing a store from `tether serve --database …`.

use std::path::Path;
use std::sync::Arc;

use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// The file name of the embedded database in the data directory.
pub const SQLITE_FILE: &str = "tether.db";

/// Opens the store `database` names: `None` → the SQLite file `data_dir/tether.db`;
/// `postgres://…` or `postgresql://…` → PostgreSQL; `sqlite://PATH` (or `sqlite:PATH`)
/// → that SQLite file. Migrations are applied either way.
pub async fn open_store(
    database: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn Store>, StoreError> {
    let Some(url) = database else {
        return Ok(Arc::new(
            SqliteStore::open(&data_dir.join(SQLITE_FILE)).await?,
        ));
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::connect(url).await?));
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() || path.contains('?') {
            return Err(StoreError::InvalidArgument(format!(
                "--database '{url}': give a file path after 'sqlite://', without options \
                 (e.g. sqlite:///var/lib/tether/tether.db)"
            )));
        }
        return Ok(Arc::new(SqliteStore::open(Path::new(path)).await?));
    }
    let scheme = url.split_once("://").map_or(url, |(s, _)| s);
    Err(StoreError::InvalidArgument(format!(
        "--database '{scheme}://…' is not supported: use postgres://USER@HOST:PORT/DB, \
         postgresql://…, or sqlite://PATH (leave it out for the SQLite file in the data \
         directory)"
    )))
}
