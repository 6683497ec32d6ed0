//! Choosing a store from `tether serve --database …`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sql::SqlStore;
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
    let store = open_any(database, data_dir).await?;
    Ok(Arc::new(store))
}

/// The SQLite file `database` names (`None`: the one in `data_dir`), or `None` for
/// another backend.
pub fn sqlite_path(database: Option<&str>, data_dir: &Path) -> Option<PathBuf> {
    match database {
        None => Some(data_dir.join(SQLITE_FILE)),
        Some(url) => url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .map(PathBuf::from),
    }
}

/// [`open_store`], keeping the store's type, for work that needs the database itself
/// (copying it with [`copy_database`](crate::copy_database)).
pub async fn open_any(database: Option<&str>, data_dir: &Path) -> Result<SqlStore, StoreError> {
    let Some(url) = database else {
        return SqlStore::open(&data_dir.join(SQLITE_FILE)).await;
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return SqlStore::connect(url).await;
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
        return SqlStore::open(Path::new(path)).await;
    }
    let scheme = url.split_once("://").map_or(url, |(s, _)| s);
    Err(StoreError::InvalidArgument(format!(
        "--database '{scheme}://…' is not supported: use postgres://USER@HOST:PORT/DB, \
         postgresql://…, or sqlite://PATH (leave it out for the SQLite file in the data \
         directory)"
    )))
}
