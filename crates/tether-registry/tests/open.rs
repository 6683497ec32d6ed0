//! Opening stores: `open_store` routing, reopening a SQLite file (data kept, WAL mode,
//! migrations applied once) and reconnecting to PostgreSQL (migrations applied once).

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
    assert_eq!(applied, 1);
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
        Err(StoreError::Backend(m)) => {
            assert!(
                m.starts_with("cannot connect to PostgreSQL at postgresql://u:***@127.0.0.1:1/x"),
                "{m}"
            );
            assert!(!m.contains("secret"));
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
}

#[tokio::test]
async fn postgres_reconnect_migrates_once() {
    let url = tether_testkit::needs::env("TETHER_TEST_DATABASE_URL");
    let Some(url) = tether_testkit::require("PostgreSQL (TETHER_TEST_DATABASE_URL)", url) else {
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
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&raw)
        .await
        .expect("drop schema");
    raw.close().await;
    assert!(kept.is_ok());
    assert_eq!(applied.expect("migrations table"), 1);
    assert!(matches!(
        PostgresStore::connect_with_schema(&url, Some("bad; drop")).await,
        Err(StoreError::InvalidArgument(_))
    ));
}
