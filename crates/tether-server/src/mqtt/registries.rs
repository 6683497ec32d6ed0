//! One copy of each registry for every connection of this node.
//!
//! A connection routes its messages by its registry's notification configs, re-read
//! every `registry_refresh` (changes made by another server on the same database reach
//! it that way) and at once when the API says the registry changed. Read per
//! connection, that was one database read every 10 s per device, on the PUBLISH's
//! path: 2,000 devices cost 200 reads a second, and when the database was busy (a
//! connect flood looks up keys there) the PUBLISH that happened to be due waited
//! behind it. Here the periodic read is shared and never awaited by a PUBLISH, and
//! the reads after a change are shared too: one read for every connection of the
//! registry, not one each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tether_registry::Store;
use tether_registry::model::DeviceRegistry;
use tether_registry::names::RegistryPath;
use tokio::time::Instant;

use crate::bridge::uplink::Routing;

/// One read of a registry.
#[derive(Debug, Clone)]
pub(crate) struct Copy {
    /// Counts the reads of this registry, from 1.
    pub(crate) number: u64,
    /// When the read started.
    pub(crate) read_at: Instant,
    /// What it read.
    pub(crate) registry: Arc<DeviceRegistry>,
    /// Its routing, converted once for every connection of the registry.
    pub(crate) routing: Arc<Routing>,
}

/// The shared copies.
#[derive(Debug, Default)]
pub(crate) struct Registries {
    entries: Mutex<HashMap<RegistryPath, Entry>>,
}

#[derive(Debug)]
struct Entry {
    /// The latest read.
    copy: Option<Copy>,
    /// The hub's count of registry changes when that read started.
    changes_seen: u64,
    /// A background refresh is under way.
    refreshing: bool,
    /// One read at a time per registry; callers after a change wait for it.
    flight: Arc<tokio::sync::Mutex<()>>,
}

impl Entry {
    fn new() -> Self {
        Self {
            copy: None,
            changes_seen: 0,
            refreshing: false,
            flight: Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

impl Registries {
    fn lock(&self) -> MutexGuard<'_, HashMap<RegistryPath, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Without waiting: the shared copy if it was read after `read_after` (when the
    /// caller's own copy was read: a connection never goes back to an older one), and
    /// a background read when the shared copy is older than `refresh` or than the
    /// hub's count of registry `changes` (a later call gets it).
    pub(crate) fn periodic(
        self: &Arc<Self>,
        path: &RegistryPath,
        read_after: Instant,
        changes: u64,
        refresh: Duration,
        store: &Arc<dyn Store>,
    ) -> Option<Copy> {
        let mut entries = self.lock();
        let entry = entries.entry(path.clone()).or_insert_with(Entry::new);
        let stale = entry
            .copy
            .as_ref()
            .is_none_or(|c| c.read_at.elapsed() >= refresh)
            || entry.changes_seen < changes;
        let newer = entry
            .copy
            .clone()
            .filter(|c| c.read_at > read_after && entry.changes_seen >= changes);
        if stale && !entry.refreshing {
            entry.refreshing = true;
            let flight = Arc::clone(&entry.flight);
            let (registries, path, store) = (Arc::clone(self), path.clone(), Arc::clone(store));
            tokio::spawn(async move {
                let _one = flight.lock().await;
                let read = registries.read(&path, &*store, changes, refresh).await;
                if let Err(e) = read {
                    tracing::warn!(error = %e, "could not refresh the registry; using the cached copy");
                }
                if let Some(entry) = registries.lock().get_mut(&path) {
                    entry.refreshing = false;
                }
            });
        }
        newer
    }

    /// The latest shared copy, if any, without reading anything.
    pub(crate) fn latest(&self, path: &RegistryPath) -> Option<Copy> {
        self.lock().get(path).and_then(|e| e.copy.clone())
    }

    /// A copy read after the hub counted `changes` registry changes: the shared one
    /// if it is that recent, or one read now (once for all the callers waiting).
    ///
    /// # Errors
    /// The store's error.
    pub(crate) async fn after_change(
        &self,
        path: &RegistryPath,
        changes: u64,
        store: &dyn Store,
    ) -> tether_registry::StoreResult<Copy> {
        let flight = Arc::clone(
            &self
                .lock()
                .entry(path.clone())
                .or_insert_with(Entry::new)
                .flight,
        );
        let _one = flight.lock().await;
        // However old, a copy read after the change will do.
        self.read(path, store, changes, Duration::MAX).await
    }

    /// Reads the registry (unless a read started within `fresh_enough` and after
    /// `changes`) and shares it. Called with the registry's flight lock held.
    async fn read(
        &self,
        path: &RegistryPath,
        store: &dyn Store,
        changes: u64,
        fresh_enough: Duration,
    ) -> tether_registry::StoreResult<Copy> {
        if let Some(entry) = self.lock().get(path)
            && let Some(copy) = &entry.copy
            && entry.changes_seen >= changes
            && copy.read_at.elapsed() < fresh_enough
        {
            return Ok(copy.clone());
        }
        let started = Instant::now();
        let registry = store.get_registry(path).await?;
        let mut entries = self.lock();
        let entry = entries.entry(path.clone()).or_insert_with(Entry::new);
        let copy = Copy {
            number: entry.copy.as_ref().map_or(0, |c| c.number) + 1,
            read_at: started,
            routing: Arc::new(Routing::of(&registry)),
            registry: Arc::new(registry),
        };
        entry.copy = Some(copy.clone());
        entry.changes_seen = entry.changes_seen.max(changes);
        Ok(copy)
    }
}

#[cfg(test)]
mod tests {
    use tether_registry::model::MqttState;

    use super::*;

    async fn store() -> (Arc<dyn Store>, RegistryPath) {
        crate::testing::store_with_registry().await
    }

    async fn disable_mqtt(store: &Arc<dyn Store>, path: &RegistryPath) {
        let mut registry = store.get_registry(path).await.expect("read");
        registry.mqtt_state = MqttState::Disabled;
        store.update_registry(&registry).await.expect("update");
    }

    /// Lets the background read run.
    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn a_change_is_read_once_for_every_connection() {
        let (store, path) = store().await;
        let registries = Arc::new(Registries::default());
        let reads = futures_util::future::join_all((0..20).map(|_| {
            let (registries, store, path) = (registries.clone(), store.clone(), path.clone());
            async move { registries.after_change(&path, 1, &*store).await }
        }))
        .await;
        let numbers: Vec<u64> = reads
            .iter()
            .map(|r| r.as_ref().expect("read").number)
            .collect();
        assert_eq!(numbers, vec![1; 20], "one read shared by all");

        disable_mqtt(&store, &path).await;
        let copy = registries
            .after_change(&path, 2, &*store)
            .await
            .expect("read");
        assert_eq!(copy.number, 2, "a later change reads again");
        assert_eq!(copy.registry.mqtt_state, MqttState::Disabled);
        let copy = registries
            .after_change(&path, 2, &*store)
            .await
            .expect("read");
        assert_eq!(copy.number, 2, "the same change is not read twice");
    }

    #[tokio::test]
    async fn the_periodic_refresh_never_waits_and_never_goes_back() {
        // Short, so that the test waits for real (SQLite's pool does not like a
        // paused clock).
        const REFRESH: Duration = Duration::from_millis(300);
        let (store, path) = store().await;
        let registries = Arc::new(Registries::default());
        let connected = Instant::now();
        // Nothing shared yet: the caller keeps its own copy; a read starts.
        assert!(
            registries
                .periodic(&path, connected, 0, REFRESH, &store)
                .is_none()
        );
        settle().await;
        let first = registries
            .periodic(&path, connected, 0, REFRESH, &store)
            .expect("the background read's copy");
        assert_eq!(first.number, 1);
        assert!(
            registries
                .periodic(&path, first.read_at, 0, REFRESH, &store)
                .is_none(),
            "nothing newer"
        );

        // Another server disables MQTT. A connection that read the registry after the
        // shared copy does not take it (it would go back in time); once the copy is
        // stale it is read again.
        disable_mqtt(&store, &path).await;
        let later = Instant::now();
        assert!(
            registries
                .periodic(&path, later, 0, REFRESH, &store)
                .is_none()
        );
        tokio::time::sleep(REFRESH).await;
        assert!(
            registries
                .periodic(&path, later, 0, REFRESH, &store)
                .is_none()
        );
        settle().await;
        let second = registries
            .periodic(&path, first.read_at, 0, REFRESH, &store)
            .expect("the refreshed copy");
        assert_eq!(second.number, 2);
        assert_eq!(second.registry.mqtt_state, MqttState::Disabled);

        // A change the hub counted makes the shared copy stale at once.
        assert!(
            registries
                .periodic(&path, connected, 7, REFRESH, &store)
                .is_none()
        );
        settle().await;
        assert_eq!(
            registries
                .periodic(&path, second.read_at, 7, REFRESH, &store)
                .map(|c| c.number),
            Some(3)
        );
    }
}
