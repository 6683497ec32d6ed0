//! Topics named in registries: found without reading every registry's configs on
//! each call, and found at once when a registry names a new one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tether_log::{EmbeddedLog, LogConfig};
use tether_pubsub::{Catalog, PubSub, RegistryTopics, WallClock};

#[derive(Debug)]
struct FixedClock;

impl WallClock for FixedClock {
    fn unix_micros(&self) -> i64 {
        1_790_000_000_000_000
    }
}

/// Registries whose topics the test changes, counting the reads.
#[derive(Debug, Default)]
struct Counted {
    topics: Mutex<Vec<String>>,
    reads: AtomicUsize,
}

#[async_trait::async_trait]
impl RegistryTopics for Counted {
    async fn topics(&self) -> Vec<String> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.topics.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

#[tokio::test]
async fn registry_topics_are_read_once_for_many_calls_and_again_on_a_miss()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(EmbeddedLog::open(LogConfig::new(dir.path())).await?);
    let catalog = Catalog::open(&dir.path().join("pubsub.db")).await?;
    let registries = Arc::new(Counted::default());
    registries
        .topics
        .lock()
        .map_err(|_| "poisoned")?
        .push("projects/acme/topics/events".into());
    let pubsub = PubSub::open(
        catalog,
        log.clone(),
        log,
        registries.clone(),
        Arc::new(FixedClock),
    )
    .await?;

    for _ in 0..100 {
        assert!(pubsub.topic_exists("projects/acme/topics/events").await?);
    }
    let reads = registries.reads.load(Ordering::Relaxed);
    assert!(reads <= 2, "{reads} reads of every registry for 100 calls");

    // A registry names a new topic: found on the next call, not after a delay.
    registries
        .topics
        .lock()
        .map_err(|_| "poisoned")?
        .push("projects/acme/topics/state".into());
    assert!(pubsub.topic_exists("projects/acme/topics/state").await?);
    assert!(!pubsub.topic_exists("projects/acme/topics/nothing").await?);
    Ok(())
}
