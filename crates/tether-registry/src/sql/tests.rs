//! What the conformance suite cannot reach from outside: a write that fails between
//! BEGIN and COMMIT (the disk full) or is dropped half-way must leave the pool usable,
//! and compacting must shrink the SQLite file.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::AssertSqlSafe;

use super::SqlStore;
use crate::model::{Device, DeviceRegistry, Timestamp};
use crate::names::{DeviceRef, RegistryPath};
use crate::store::{Store, StoreError};

fn path(id: &str) -> RegistryPath {
    RegistryPath {
        project: "p".into(),
        location: "l".into(),
        registry: id.into(),
    }
}

fn registry(id: &str) -> DeviceRegistry {
    DeviceRegistry {
        path: path(id),
        ..DeviceRegistry::default()
    }
}

async fn pragma(store: &SqlStore, statement: String) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(statement))
        .fetch_one(store.pool())
        .await
        .expect("pragma")
}

/// The incident of issue 11: after one "database or disk is full" the store refused
/// every later write with "attempted to call begin_with at non-zero transaction
/// depth", because SQLite had rolled the transaction back itself, sqlx's ROLLBACK then
/// failed, and the connection went back to the pool still "in a transaction".
#[tokio::test]
async fn a_full_disk_fails_one_write_and_not_the_next() {
    // In memory the pool has one connection, so the page limit is set on the one
    // every write uses.
    let store = SqlStore::in_memory().await.expect("store");
    store
        .create_registry(&registry("before"))
        .await
        .expect("first registry");
    let pages = pragma(&store, "PRAGMA page_count".into()).await;
    pragma(&store, format!("PRAGMA max_page_count = {pages}")).await;

    let mut big = registry("too-big");
    big.event_notification_configs = vec![crate::model::EventNotificationConfig {
        subfolder_matches: String::new(),
        pubsub_topic_name: "t".repeat(200_000),
    }];
    match store.create_registry(&big).await {
        Err(e @ StoreError::Unavailable { .. }) => {
            assert!(e.to_string().contains("full"), "{e}");
        }
        other => panic!("expected the disk to be full, got {other:?}"),
    }

    pragma(&store, "PRAGMA max_page_count = 1073741823".into()).await;
    store
        .create_registry(&registry("after"))
        .await
        .expect("the next write succeeds");
    assert!(matches!(
        store.get_registry(&big.path).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.get_registry(&path("before")).await.is_ok());
}

/// A caller that gives up (a timeout, a closed connection) drops the write between
/// BEGIN and COMMIT: nothing it did is kept, and the next write gets a clean
/// connection. In memory this also shows the database outlives the dropped one.
#[tokio::test]
async fn a_write_dropped_half_way_changes_nothing() {
    let store = SqlStore::in_memory().await.expect("store");
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        store.transact(async |conn| {
            super::registries::create(conn, &registry("abandoned")).await?;
            std::future::pending::<()>().await;
            Ok(())
        }),
    )
    .await;
    assert!(abandoned.is_err(), "the write was given up");

    store
        .create_registry(&registry("next"))
        .await
        .expect("the next write succeeds");
    assert!(matches!(
        store.get_registry(&path("abandoned")).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn compacting_shrinks_the_sqlite_file_after_deletes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("tether.db");
    let store = SqlStore::open(&file).await.expect("store");
    let fleet = path("fleet");
    store
        .create_registry(&registry("fleet"))
        .await
        .expect("registry");
    let metadata = BTreeMap::from([("notes".to_string(), "x".repeat(1_000))]);
    for n in 0..3_000 {
        let device = Device {
            id: format!("d{n}"),
            metadata: metadata.clone(),
            ..Device::default()
        };
        store
            .create_device(&fleet, &device, Timestamp(n))
            .await
            .expect("device");
    }
    for n in 0..3_000 {
        store
            .delete_device(&fleet, &DeviceRef::Id(format!("d{n}")))
            .await
            .expect("delete");
    }
    let on_disk = || {
        ["tether.db", "tether.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
            .map(|m| m.len())
            .sum::<u64>()
    };
    let before = on_disk();

    let done = store.compact().await.expect("compact");

    let after = on_disk();
    assert!(
        after < before / 10,
        "files {before} → {after} bytes, reported {done:?}"
    );
    assert!(
        done.bytes_after < done.bytes_before / 10,
        "reported {done:?}"
    );
    assert!(store.get_registry(&fleet).await.is_ok(), "the data is kept");
    store.close().await;
}
