//! What CONNECT read for a device (its registry and the connection's copy of it), kept
//! so that the device's next CONNECT skips the store: a reconnect storm after a network
//! blip then costs TLS and the token check, not two SQLite round trips each (their
//! thread hand-offs were a third of a reconnect's CPU; BENCHMARKS.md, issue 12).
//!
//! Safe only while every change is heard: the API's device and registry changes,
//! a key rotation over MQTT and, on this node, nothing else writes what CONNECT reads.
//! [`super::connections::Connections`] forgets an entry on each of those. A cluster
//! node can miss another node's broadcast (a NATS outage), so clustered nodes read the
//! store every time ([`DeviceCache::disabled`]).
//!
//! A lookup that started before a change must not store what it read after the change
//! forgot the entry: [`DeviceCache::generation`] is taken before the read, and
//! [`DeviceCache::insert`] refuses if any change came since.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tether_registry::model::{Device, DeviceRegistry};
use tether_registry::names::RegistryPath;
use tokio::time::Instant;

use crate::bridge::hub::DeviceAddress;

/// How long an entry serves: a device reconnecting later reads the store again, and
/// the cache holds the recently connected devices, not the whole registry.
pub const TTL: Duration = Duration::from_secs(300);
/// Most entries; beyond it CONNECTs read the store (a flood of distinct ids cannot
/// grow memory).
pub const CAPACITY: usize = 200_000;
/// Expired entries are dropped every this many inserts, so that devices gone for good
/// do not stay in memory until the cache is full.
const SWEEP_EVERY: u32 = 1024;

/// A device's registry and the connection's copy of the device.
pub type Found = (Arc<DeviceRegistry>, Arc<Device>);

#[derive(Debug)]
struct Entry {
    device: Arc<Device>,
    stored_at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    /// Counts changes heard; see the module doc.
    generation: u64,
    /// By registry, so that a registry (its path and its copy) is kept once, not once
    /// per device, and a registry change forgets its devices at once.
    registries: HashMap<RegistryPath, Devices>,
    /// Inserts since the last sweep.
    inserts: u32,
}

/// One registry's entries.
#[derive(Debug)]
struct Devices {
    /// The registry as the entries' lookups read it (each lookup reads its own copy;
    /// equal copies are kept once).
    registry: Arc<DeviceRegistry>,
    by_id: HashMap<String, Entry>,
    /// numId → id: changes name a device by its numId.
    ids: HashMap<u64, String>,
}

/// See the module doc.
#[derive(Debug)]
pub struct DeviceCache {
    enabled: bool,
    inner: Mutex<Inner>,
}

impl Default for DeviceCache {
    fn default() -> Self {
        Self::enabled()
    }
}

impl DeviceCache {
    /// A cache in use.
    pub fn enabled() -> Self {
        Self {
            enabled: true,
            inner: Mutex::default(),
        }
    }

    /// Never holds anything: every CONNECT reads the store.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves whole entries behind, so a poisoned lock is still sound.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The changes heard so far; pass it to [`DeviceCache::insert`].
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The entry for device `id` of `registry`, if one is fresh at `now` (counted in
    /// `tether_mqtt_device_cache_total`).
    pub fn get(&self, registry: &RegistryPath, id: &str, now: Instant) -> Option<Found> {
        if !self.enabled {
            return None;
        }
        let found = self
            .lock()
            .registries
            .get(registry)
            .and_then(|devices| Some((&devices.registry, devices.by_id.get(id)?)))
            .filter(|(_, e)| now.saturating_duration_since(e.stored_at) < TTL)
            .map(|(r, e)| (Arc::clone(r), Arc::clone(&e.device)));
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("tether_mqtt_device_cache_total", "result" => result).increment(1);
        found
    }

    /// Keeps what a lookup read, unless a change came since `generation` was taken.
    pub fn insert(&self, generation: u64, found: &Found, now: Instant) {
        if !self.enabled {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        let (registry, device) = found;
        inner.inserts += 1;
        if inner.inserts >= SWEEP_EVERY {
            inner.inserts = 0;
            inner.expire(now);
        }
        let known = inner
            .registries
            .get(&registry.path)
            .is_some_and(|d| d.by_id.contains_key(&device.id));
        if !known && inner.len() >= CAPACITY {
            inner.expire(now);
            if inner.len() >= CAPACITY {
                return;
            }
        }
        let fresh = || Devices {
            registry: Arc::clone(registry),
            by_id: HashMap::new(),
            ids: HashMap::new(),
        };
        let devices = inner
            .registries
            .entry(registry.path.clone())
            .or_insert_with(fresh);
        if devices.registry != *registry {
            // Read with another version of the registry than the entries held: start
            // again from this one (without a missed change, the copies are equal).
            *devices = fresh();
        }
        devices.ids.insert(device.num_id, device.id.clone());
        devices.by_id.insert(
            device.id.clone(),
            Entry {
                device: Arc::clone(device),
                stored_at: now,
            },
        );
    }

    /// The device changed (or was deleted): its next CONNECT reads the store.
    pub fn forget_device(&self, device: &DeviceAddress) {
        let mut inner = self.lock();
        inner.generation += 1;
        let Some(devices) = inner.registries.get_mut(&device.registry) else {
            return;
        };
        if let Some(id) = devices.ids.remove(&device.num_id) {
            devices.by_id.remove(&id);
        }
        if devices.by_id.is_empty() {
            inner.registries.remove(&device.registry);
        }
    }

    /// The registry changed: every device of it reads the store again.
    pub fn forget_registry(&self, registry: &RegistryPath) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.registries.remove(registry);
    }

    /// How many entries are held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Entries in all registries (a node has few registries).
    fn len(&self) -> usize {
        self.registries.values().map(|d| d.by_id.len()).sum()
    }

    fn expire(&mut self, now: Instant) {
        let fresh = |e: &Entry| now.saturating_duration_since(e.stored_at) < TTL;
        self.registries.retain(|_, devices| {
            devices.by_id.retain(|_, e| fresh(e));
            let by_id = &devices.by_id;
            devices.ids.retain(|_, id| by_id.contains_key(id));
            !by_id.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(registry: &str) -> RegistryPath {
        RegistryPath {
            project: "p".into(),
            location: "us-central1".into(),
            registry: registry.into(),
        }
    }

    fn found(registry: &str, id: &str, num_id: u64) -> Found {
        let registry = DeviceRegistry {
            path: path(registry),
            ..DeviceRegistry::default()
        };
        let device = Device {
            id: id.into(),
            num_id,
            ..Device::default()
        };
        (Arc::new(registry), Arc::new(device))
    }

    #[test]
    fn serves_until_a_change_of_the_device_or_its_registry_or_the_ttl() {
        let cache = DeviceCache::enabled();
        let now = Instant::now();
        let g = cache.generation();
        cache.insert(g, &found("r", "a", 1), now);
        cache.insert(g, &found("r", "b", 2), now);
        cache.insert(g, &found("s", "a", 3), now);
        assert_eq!(cache.get(&path("r"), "a", now).map(|f| f.1.num_id), Some(1));
        assert!(cache.get(&path("r"), "c", now).is_none(), "never read");

        cache.forget_device(&DeviceAddress {
            registry: path("r"),
            num_id: 1,
        });
        assert!(cache.get(&path("r"), "a", now).is_none(), "changed");
        assert!(cache.get(&path("r"), "b", now).is_some(), "another device");
        assert!(
            cache.get(&path("s"), "a", now).is_some(),
            "same id elsewhere"
        );

        cache.forget_registry(&path("r"));
        assert!(
            cache.get(&path("r"), "b", now).is_none(),
            "its registry changed"
        );
        assert!(cache.get(&path("s"), "a", now).is_some());

        let later = now + TTL;
        assert!(cache.get(&path("s"), "a", later).is_none(), "too old");
    }

    #[test]
    fn a_lookup_that_raced_a_change_is_not_kept() {
        let cache = DeviceCache::enabled();
        let now = Instant::now();
        let before = cache.generation();
        // The lookup read the old device; the API changed it meanwhile.
        cache.forget_device(&DeviceAddress {
            registry: path("r"),
            num_id: 1,
        });
        cache.insert(before, &found("r", "a", 1), now);
        assert!(cache.is_empty(), "stale read kept");
        cache.insert(cache.generation(), &found("r", "a", 1), now);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn expired_entries_are_swept_as_others_come() {
        let cache = DeviceCache::enabled();
        let start = Instant::now();
        cache.insert(cache.generation(), &found("r", "gone", 1), start);
        let later = start + TTL;
        for n in 0..u64::from(SWEEP_EVERY) {
            let id = format!("d{n}");
            cache.insert(cache.generation(), &found("r", &id, 2 + n), later);
        }
        assert_eq!(
            cache.len(),
            SWEEP_EVERY as usize,
            "the expired one is dropped"
        );
        assert!(cache.get(&path("r"), "d0", later).is_some());
    }

    #[test]
    fn equal_registry_copies_are_kept_once() {
        let cache = DeviceCache::enabled();
        let now = Instant::now();
        // Two lookups, two reads of the same registry.
        cache.insert(cache.generation(), &found("r", "a", 1), now);
        cache.insert(cache.generation(), &found("r", "b", 2), now);
        let (ra, _) = cache.get(&path("r"), "a", now).expect("a");
        let (rb, _) = cache.get(&path("r"), "b", now).expect("b");
        assert!(Arc::ptr_eq(&ra, &rb), "one copy of the registry");
        // A read that saw another registry replaces the entries read with the old one.
        let (registry, device) = found("r", "c", 3);
        let mut other = (*registry).clone();
        other.http_state = tether_registry::model::HttpState::Disabled;
        cache.insert(cache.generation(), &(Arc::new(other), device), now);
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&path("r"), "a", now).is_none());
    }

    #[test]
    fn disabled_holds_nothing() {
        let cache = DeviceCache::disabled();
        let now = Instant::now();
        cache.insert(cache.generation(), &found("r", "a", 1), now);
        assert!(cache.get(&path("r"), "a", now).is_none());
        assert!(cache.is_empty());
    }
}
