//! The embedded default: one SQLite file in WAL mode.

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection as _};

use crate::migrate;
use crate::sql::{Dialect, SqlStore, db};
use crate::store::{StoreError, StoreResult};

/// A [`Store`](crate::Store) in a SQLite database file (or in memory, for tests):
/// opened with [`SqlStore::open`] or [`SqlStore::in_memory`].
pub type SqliteStore = SqlStore;

/// Characters kept as they are in the file part of a `sqlite://` URL.
fn url_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'~')
}

fn file_url(path: &Path) -> StoreResult<String> {
    let absolute = std::path::absolute(path).map_err(|e| {
        StoreError::unavailable(
            format!("cannot resolve database path {}", path.display()),
            e,
        )
    })?;
    let text = absolute.to_str().ok_or_else(|| {
        StoreError::InvalidArgument(format!(
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

/// Connections to a SQLite file: each runs on a thread of its own.
const POOL_SIZE: u32 = 8;

impl SqlStore {
    /// Opens (creating if needed) the database file and its directory, switches it to
    /// WAL mode and applies pending migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                StoreError::unavailable(format!("cannot create {}", parent.display()), e)
            })?;
        }
        sqlx::any::install_default_drivers();
        // Every connection is opened here and kept: sqlx runs each SQLite connection on
        // a thread of its own, spawned by whichever thread opens it, and a thread
        // inherits its creator's scheduling priority. Opened on demand, a connection
        // could be born on a low-priority admission thread and then serve device
        // traffic at that priority. (One closed after a failed write, see `Write`, is
        // still reopened by the next caller that needs it.)
        let pool = AnyPoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(POOL_SIZE)
            .idle_timeout(None)
            .max_lifetime(None)
            // sqlx pings a pooled connection before handing it out, a round trip to its
            // thread on every read: for a local file that cannot hang up, a cost with
            // nothing to detect (a connection that failed a write is closed, see `Write`).
            .test_before_acquire(false)
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
                StoreError::unavailable(
                    format!("cannot open SQLite database {}", path.display()),
                    e,
                )
            })?;
        // Open the rest now, on this thread, rather than in the background.
        let mut opened = Vec::with_capacity(POOL_SIZE as usize);
        for _ in 0..POOL_SIZE {
            opened.push(pool.acquire().await.map_err(db)?);
        }
        drop(opened);
        // WAL is a property of the file: readers no longer block the writer.
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&pool)
            .await
            .map_err(db)?;
        migrated(pool).await
    }

    /// A private in-memory database, for tests. It lives as long as the store.
    pub async fn in_memory() -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let name = getrandom::u64()
            .map_err(|e| StoreError::unavailable("no randomness for a database name", e))?;
        let url = format!("sqlite:file:tether-memory-{name:016x}?mode=memory&cache=shared");
        let cannot_open =
            |e: sqlx::Error| StoreError::unavailable("cannot open in-memory SQLite", e);
        // A shared-cache in-memory database disappears with its last connection: one
        // more, never used, keeps it while the pool replaces a broken connection.
        let keep_alive = AnyConnection::connect(&url).await.map_err(cannot_open)?;
        // Shared-cache locks do not wait: so exactly one working connection.
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect(&url)
            .await
            .map_err(cannot_open)?;
        Ok(migrated(pool).await?.keeping_alive(keep_alive))
    }
}

async fn migrated(pool: AnyPool) -> StoreResult<SqlStore> {
    migrate::migrator(Dialect::Sqlite)
        .run(&pool)
        .await
        .map_err(|e| migrate::failed("SQLite", e))?;
    Ok(SqlStore::new(pool, Dialect::Sqlite))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_escape_odd_paths() {
        let url = file_url(Path::new("/tmp/a b/t?x#y%.db")).expect("absolute path");
        assert_eq!(url, "sqlite:///tmp/a%20b/t%3Fx%23y%25.db?mode=rwc");
    }
}
