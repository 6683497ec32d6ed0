//! The embedded default: one SQLite file in WAL mode.

use std::path::Path;

use sqlx::any::AnyPoolOptions;

use crate::migrate;
use crate::sql::{Dialect, SqlStore, db};
use crate::store::{StoreError, StoreResult};

/// A [`Store`](crate::Store) in a SQLite database file (or in memory, for tests).
#[derive(Debug)]
pub struct SqliteStore(pub(crate) SqlStore);

/// Characters kept as they are in the file part of a `sqlite://` URL.
fn url_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'~')
}

fn file_url(path: &Path) -> StoreResult<String> {
    let absolute = std::path::absolute(path).map_err(|e| {
        StoreError::Backend(format!(
            "cannot resolve database path {}: {e}",
            path.display()
        ))
    })?;
    let text = absolute.to_str().ok_or_else(|| {
        StoreError::Backend(format!(
            "database path {} is not valid UTF-8; choose another data directory",
            absolute.display()
        ))
    })?;
    let mut url = String::from("sqlite://");
    for b in text.bytes() {
        if url_safe(b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its directory, switches it to
    /// WAL mode and applies pending migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // sqlx already turns foreign keys on and waits 5 s on a busy file;
                    // say it here too so the settings do not depend on its defaults.
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .connect(&file_url(path)?)
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "cannot open SQLite database {}: {e}",
                    path.display()
                ))
            })?;
        // WAL is a property of the file: readers no longer block the writer.
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&pool)
            .await
            .map_err(db)?;
        Self::migrated(pool).await
    }

    /// A private in-memory database, for tests. It lives as long as the store.
    pub async fn in_memory() -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let name = getrandom::u64()
            .map_err(|e| StoreError::Backend(format!("no randomness for a database name: {e}")))?;
        // A shared-cache in-memory database disappears with its last connection, and
        // shared-cache locks do not wait: so exactly one connection, kept forever.
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect(&format!(
                "sqlite:file:tether-memory-{name:016x}?mode=memory&cache=shared"
            ))
            .await
            .map_err(|e| StoreError::Backend(format!("cannot open in-memory SQLite: {e}")))?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: sqlx::AnyPool) -> StoreResult<Self> {
        migrate::migrator(Dialect::Sqlite)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("SQLite migration failed: {e}")))?;
        Ok(SqliteStore(SqlStore::new(pool, Dialect::Sqlite)))
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.0.pool().close().await;
    }
}

crate::sql::delegate_store!(SqliteStore, "sqlite");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_escape_odd_paths() {
        let url = file_url(Path::new("/tmp/a b/t?x#y%.db")).expect("absolute path");
        assert_eq!(url, "sqlite:///tmp/a%20b/t%3Fx%23y%25.db?mode=rwc");
    }
}
