//! Opening stores: `open_store` routing, reopening a SQLite file (data kept, WAL mode,
//! migrations applied once), reconnecting to PostgreSQL (migrations applied once), and
//! PostgreSQL calls recovering after the server ended the store's sessions.

use std::path::Path;

use tether_registry::model::DeviceRegistry;
use tether_registry::names::RegistryPath;
use tether_registry::{PostgresStore, SqliteStore, StoreError, open_store};

fn registry(id: &str) -> DeviceRegistry {
    DeviceRegistry {
        path: RegistryPath {
            project: "p".into(),
            location: "l".into(),
            registry: id.into(),
        },
        ..DeviceRegistry::default()
    }
}

async fn raw_sqlite(path: &Path) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}", path.display());
    sqlx::SqlitePool::connect(&url).await.expect("raw SQLite")
}

#[tokio::test]
async fn sqlite_file_reopens_with_its_data_and_migrates_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data/tether.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let created = tether_registry::Store::create_registry(&store, &registry("fleet"))
        .await
        .expect("create");
    store.close().await;

    let store = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(
        tether_registry::Store::get_registry(&store, &created.path).await,
        Ok(created)
    );
    store.close().await;

    let raw = raw_sqlite(&path).await;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&raw)
        .await
        .expect("migrations table");
    assert_eq!(applied, 3, "every migration applied once");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&raw)
        .await
        .expect("journal mode");
    assert_eq!(mode, "wal");
    raw.close().await;
}

#[tokio::test]
async fn open_store_picks_the_backend_from_the_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(None, &dir.path().join("data"))
        .await
        .expect("default store");
    assert_eq!(store.backend(), "sqlite");
    assert!(dir.path().join("data/tether.db").exists());

    let file = dir.path().join("other.db");
    let url = format!("sqlite://{}", file.display());
    let store = open_store(Some(&url), dir.path())
        .await
        .expect("sqlite url");
    assert_eq!(store.backend(), "sqlite");
    assert!(file.exists());

    assert_eq!(
        open_store(Some("mysql://root@localhost/tether"), dir.path())
            .await
            .err(),
        Some(StoreError::InvalidArgument(
            "--database 'mysql://…' is not supported: use postgres://USER@HOST:PORT/DB, \
             postgresql://…, or sqlite://PATH (leave it out for the SQLite file in the data \
             directory)"
                .into()
        ))
    );
    assert!(matches!(
        open_store(Some("sqlite://"), dir.path()).await.err(),
        Some(StoreError::InvalidArgument(m)) if m.contains("give a file path")
    ));
    // Routed to PostgreSQL (nothing listens on port 1): the error says so, without
    // the password.
    match open_store(Some("postgresql://u:secret@127.0.0.1:1/x"), dir.path()).await {
        Err(e @ StoreError::Unavailable { .. }) => {
            let m = e.to_string();
            assert!(
                m.starts_with(
                    "storage unavailable: cannot connect to PostgreSQL at \
                     postgresql://u:***@127.0.0.1:1/x: "
                ),
                "{m}"
            );
            assert!(!m.contains("secret"));
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
}

/// PostgreSQL's URL: the test skips without it, or fails under
/// `TETHER_TEST_REQUIRE_ALL=1` (CI).
fn postgres_url() -> Option<String> {
    let url = tether_testkit::needs::env("TETHER_TEST_DATABASE_URL");
    tether_testkit::require("PostgreSQL (TETHER_TEST_DATABASE_URL)", url)
}

async fn drop_schema(raw: &sqlx::PgPool, schema: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(raw)
        .await
        .expect("drop schema");
}

#[tokio::test]
async fn postgres_reconnect_migrates_once() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = format!("t_open_{}", std::process::id());
    let store = PostgresStore::connect_with_schema(&url, Some(&schema))
        .await
        .expect("connect");
    tether_registry::Store::create_registry(&store, &registry("fleet"))
        .await
        .expect("create");
    store.close().await;
    let store = PostgresStore::connect_with_schema(&url, Some(&schema))
        .await
        .expect("reconnect");
    let kept = tether_registry::Store::get_registry(&store, &registry("fleet").path).await;
    store.close().await;

    let raw = sqlx::PgPool::connect(&url).await.expect("raw PostgreSQL");
    let applied: Result<i64, _> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {schema}._sqlx_migrations"
    )))
    .fetch_one(&raw)
    .await;
    drop_schema(&raw, &schema).await;
    raw.close().await;
    assert!(kept.is_ok());
    assert_eq!(applied.expect("migrations table"), 3);
    assert!(matches!(
        PostgresStore::connect_with_schema(&url, Some("bad; drop")).await,
        Err(StoreError::InvalidArgument(_))
    ));
}

/// The server restarts or an administrator ends the sessions: every pooled connection
/// dies under the store. The calls that follow get new connections and succeed.
#[tokio::test]
async fn postgres_calls_recover_after_the_connections_are_terminated() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = format!("t_kill_{}", std::process::id());
    // Named, so only this store's sessions are ended, not those of tests running beside.
    let separator = if url.contains('?') { '&' } else { '?' };
    let store_url = format!("{url}{separator}application_name={schema}");
    let store = PostgresStore::connect_with_schema(&store_url, Some(&schema))
        .await
        .expect("connect");
    let fleet = registry("fleet");
    tether_registry::Store::create_registry(&store, &fleet)
        .await
        .expect("create");

    let raw = sqlx::PgPool::connect(&url).await.expect("raw PostgreSQL");
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND application_name = $1",
    )
    .bind(&schema)
    .fetch_all(&raw)
    .await
    .expect("terminate the store's sessions");
    assert!(!ended.is_empty(), "the store had sessions open");
    // pg_terminate_backend only signals: wait until the sessions are gone.
    for _ in 0..100 {
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(&schema)
                .fetch_one(&raw)
                .await
                .expect("count sessions");
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let read = tether_registry::Store::get_registry(&store, &fleet.path).await;
    let write = tether_registry::Store::create_registry(&store, &registry("after")).await;
    let read_again = tether_registry::Store::get_registry(&store, &fleet.path).await;
    store.close().await;
    drop_schema(&raw, &schema).await;
    raw.close().await;
    assert_eq!(read.map(|r| r.path), Ok(fleet.path.clone()), "a read");
    assert!(write.is_ok(), "a write: {write:?}");
    assert!(read_again.is_ok(), "{read_again:?}");
}
