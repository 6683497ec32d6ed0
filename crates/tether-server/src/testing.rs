//! Fixtures for the crate's unit tests.

use std::sync::Arc;

use tether_registry::model::DeviceRegistry;
use tether_registry::names::RegistryPath;
use tether_registry::{SqliteStore, Store};

/// An in-memory SQLite store holding one registry, `projects/p/locations/l/registries/r`.
pub(crate) async fn store_with_registry() -> (Arc<dyn Store>, RegistryPath) {
    let store = SqliteStore::in_memory().await.expect("store");
    let path = RegistryPath {
        project: "p".into(),
        location: "l".into(),
        registry: "r".into(),
    };
    store
        .create_registry(&DeviceRegistry {
            path: path.clone(),
            ..DeviceRegistry::default()
        })
        .await
        .expect("registry");
    (Arc::new(store), path)
}
