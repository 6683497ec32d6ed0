//! Choosing a store from `tether serve --database …`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// The file name of the embedded database in the data directory.
pub const SQLITE_FILE: &str = "tether.db";

/// A store of either backend, for work that needs the backend itself (copying a
/// database with [`copy_database`](crate::copy_database)).
#[derive(Debug)]
pub enum AnyStore {
    /// The embedded SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    Postgres(PostgresStore),
}

impl AnyStore {
    pub(crate) fn sql(&self) -> &crate::sql::SqlStore {
        match self {
            AnyStore::Sqlite(s) => &s.0,
            AnyStore::Postgres(p) => &p.0,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Postgres(_) => "postgres",
        }
    }

    /// The [`Store`] interface of either backend.
    pub fn as_store(&self) -> &dyn Store {
        match self {
            AnyStore::Sqlite(s) => s,
            AnyStore::Postgres(p) => p,
        }
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        match self {
            AnyStore::Sqlite(s) => s.close().await,
            AnyStore::Postgres(p) => p.close().await,
        }
    }

    /// As the [`Store`] the servers use.
    pub fn into_store(self) -> Arc<dyn Store> {
        match self {
            AnyStore::Sqlite(s) => Arc::new(s),
            AnyStore::Postgres(p) => Arc::new(p),
        }
    }
}

/// Opens the store `database` names: `None` → the SQLite file `data_dir/tether.db`;
/// `postgres://…` or `postgresql://…` → PostgreSQL; `sqlite://PATH` (or `sqlite:PATH`)
/// → that SQLite file. Migrations are applied either way.
pub async fn open_store(
    database: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn Store>, StoreError> {
    open_any(database, data_dir).await.map(AnyStore::into_store)
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

/// [`open_store`], keeping the backend's type.
pub async fn open_any(database: Option<&str>, data_dir: &Path) -> Result<AnyStore, StoreError> {
    let Some(url) = database else {
        return Ok(AnyStore::Sqlite(
            SqliteStore::open(&data_dir.join(SQLITE_FILE)).await?,
        ));
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(AnyStore::Postgres(PostgresStore::connect(url).await?));
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
        return Ok(AnyStore::Sqlite(SqliteStore::open(Path::new(path)).await?));
    }
    let scheme = url.split_once("://").map_or(url, |(s, _)| s);
    Err(StoreError::InvalidArgument(format!(
        "--database '{scheme}://…' is not supported: use postgres://USER@HOST:PORT/DB, \
         postgresql://…, or sqlite://PATH (leave it out for the SQLite file in the data \
         directory)"
    )))
}
