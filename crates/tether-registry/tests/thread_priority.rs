//! A SQLite store's connection threads keep the priority of the thread that opened the
//! store, whoever uses it later. sqlx runs each SQLite connection on a thread spawned
//! by whichever thread opens the connection, and Linux threads inherit their creator's
//! `nice`: a connection opened on demand by a low-priority (admission) thread would
//! serve device traffic at that priority afterwards.
#![cfg(target_os = "linux")]

use std::sync::Arc;

use tether_registry::model::DeviceRegistry;
use tether_registry::names::RegistryPath;
use tether_registry::{SqliteStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_used_from_a_low_priority_thread_keep_normal_priority() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("tether.db"))
            .await
            .expect("open"),
    );
    let path = RegistryPath {
        project: "p".into(),
        location: "l".into(),
        registry: "fleet".into(),
    };
    store
        .create_registry(&DeviceRegistry {
            path: path.clone(),
            ..DeviceRegistry::default()
        })
        .await
        .expect("create");

    // Many reads at once from a thread at nice 19, as the admission threads are: each
    // needs a connection of its own.
    // Its runtime stays up until the threads are counted: a connection checked out on a
    // runtime goes back to the pool through a task on that runtime, and one dropped
    // with the runtime is closed (its thread ends) instead.
    let low = Arc::clone(&store);
    let reader = path.clone();
    let (read_tx, read) = std::sync::mpsc::channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let low_thread = std::thread::spawn(move || {
        rustix::process::nice(19).expect("lower this thread's priority");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let reads = (0..32).map(|_| low.get_registry(&reader));
            let all_read = futures_util::future::join_all(reads)
                .await
                .into_iter()
                .all(|read| read.is_ok());
            let _ = read_tx.send(all_read);
            let _ = stop_rx.await;
        });
    });
    assert_eq!(read.recv(), Ok(true), "every low-priority read succeeded");

    let workers = tether_testkit::threads::thread_nices(None, "sqlx-sqlite");
    assert!(
        !workers.is_empty(),
        "no SQLite connection threads found among {:?}",
        tether_testkit::threads::thread_nices(None, "")
    );
    let lowered: Vec<_> = workers.iter().filter(|(_, nice)| *nice != 0).collect();
    assert!(
        lowered.is_empty(),
        "connection threads inherited a low priority: {lowered:?} of {workers:?}"
    );
    let _ = stop.send(());
    low_thread.join().expect("low-priority reader");
}
