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

/// `(thread id, nice)` of every thread of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let task = task.expect("task entry").path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).expect("stat");
        // After the parenthesised name: state is field 3, nice field 19 (proc(5)).
        let after_name = &stat[stat.rfind(')').expect("stat has a name") + 2..];
        let nice = after_name
            .split(' ')
            .nth(16)
            .and_then(|n| n.parse().ok())
            .expect("nice field");
        let tid = task.file_name().map(|n| n.to_string_lossy().into_owned());
        found.push((tid.unwrap_or_default(), nice));
    }
    found
}

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
    let low = Arc::clone(&store);
    let reader = path.clone();
    std::thread::spawn(move || {
        rustix::process::nice(19).expect("lower this thread's priority");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let reads = (0..32).map(|_| low.get_registry(&reader));
            for read in futures_util::future::join_all(reads).await {
                read.expect("read");
            }
        });
    })
    .join()
    .expect("low-priority reader");

    let workers = threads_named("sqlx-sqlite");
    assert!(!workers.is_empty(), "no SQLite connection threads found");
    let lowered: Vec<_> = workers.iter().filter(|(_, nice)| *nice != 0).collect();
    assert!(
        lowered.is_empty(),
        "connection threads inherited a low priority: {lowered:?} of {workers:?}"
    );
}
