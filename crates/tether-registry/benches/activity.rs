//! Writing a tick's device activity: 2,000 devices' `lastEventTime` in one
//! `record_activity` call, what the MQTT bridge's activity writer does every 5 s for
//! 2,000 devices that each send a message a second. Every time moves forward, so
//! every row is written. SQLite in a file, and PostgreSQL in a fresh schema when
//! `TETHER_TEST_DATABASE_URL` names one.
//!
//! Run with: cargo bench -p tether-registry --bench activity

// Only the store's call is timed, not building its batch.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tether_registry::model::{Device, DeviceRegistry, Timestamp};
use tether_registry::names::RegistryPath;
use tether_registry::{Activity, ActivityKind, PostgresStore, SqliteStore, Store};

const DEVICES: usize = 2_000;

fn registry() -> RegistryPath {
    RegistryPath {
        project: "bench".into(),
        location: "europe-west1".into(),
        registry: "fleet".into(),
    }
}

/// A registry of [`DEVICES`] devices; their numIds.
async fn fleet(store: &dyn Store) -> Vec<u64> {
    let path = registry();
    store
        .create_registry(&DeviceRegistry {
            path: path.clone(),
            ..DeviceRegistry::default()
        })
        .await
        .expect("registry");
    let mut ids = Vec::with_capacity(DEVICES);
    for i in 0..DEVICES {
        let device = Device {
            id: format!("dev-{i}"),
            ..Device::default()
        };
        let created = store
            .create_device(&path, &device, Timestamp::from_secs(1))
            .await
            .expect("device");
        ids.push(created.num_id);
    }
    ids
}

fn bench_store(c: &mut Criterion, name: &str, rt: &tokio::runtime::Runtime, store: Arc<dyn Store>) {
    let ids = rt.block_on(fleet(&*store));
    let path = registry();
    let clock = AtomicI64::new(1_000);
    let mut group = c.benchmark_group("activity");
    group.throughput(Throughput::Elements(DEVICES as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function(format!("{DEVICES}_event_times/{name}"), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let at = Timestamp::from_secs(clock.fetch_add(1, Ordering::Relaxed));
                let batch: Vec<Activity> = ids
                    .iter()
                    .map(|&num_id| Activity {
                        registry: path.clone(),
                        num_id,
                        kind: ActivityKind::Event,
                        at,
                    })
                    .collect();
                let start = Instant::now();
                rt.block_on(store.record_activity(&batch)).expect("record");
                spent += start.elapsed();
            }
            spent
        });
    });
    group.finish();
}

fn activity(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = rt
        .block_on(SqliteStore::open(&dir.path().join("tether.db")))
        .expect("SQLite");
    bench_store(c, "sqlite_file", &rt, Arc::new(sqlite));

    if let Ok(url) = std::env::var("TETHER_TEST_DATABASE_URL") {
        let schema = format!("bench_activity_{}", std::process::id());
        let store = rt
            .block_on(PostgresStore::connect_with_schema(&url, Some(&schema)))
            .expect("PostgreSQL at TETHER_TEST_DATABASE_URL");
        bench_store(c, "postgres", &rt, Arc::new(store));
        rt.block_on(async {
            let pool = sqlx::PgPool::connect(&url).await.expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&pool)
            .await
            .expect("drop the bench schema");
            pool.close().await;
        });
    }
}

criterion_group!(benches, activity);
criterion_main!(benches);
