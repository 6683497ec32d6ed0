//! The storage interface. Every backend implements [`Store`]; one conformance suite
//! (`tests/conformance.rs`) runs against each.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{
    Device, DeviceConfig, DeviceRegistry, DeviceState, GatewayType, Status, Timestamp,
};
use crate::names::{DeviceRef, LocationPath, RegistryPath};
use crate::provisioning::{Provisioned, ProvisioningClaim};

/// Why a store call failed; each maps to one `google.rpc.Code`. Messages name the
/// resource and the rule, ready to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The resource does not exist (NOT_FOUND).
    #[error("{0}")]
    NotFound(String),
    /// A resource with that id exists (ALREADY_EXISTS).
    #[error("{0}")]
    AlreadyExists(String),
    /// The call is valid but the state forbids it (FAILED_PRECONDITION), e.g. deleting
    /// a registry that still has devices.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A compare-and-set lost (ABORTED), e.g. `versionToUpdate` is not the current version.
    #[error("{0}")]
    Aborted(String),
    /// The input breaks a rule (INVALID_ARGUMENT).
    #[error("{0}")]
    InvalidArgument(String),
    /// The database cannot do the work now (UNAVAILABLE): it is down or unreachable, the
    /// disk is full, an I/O call failed, or no connection was free in time. Nobody's
    /// input is at fault, and a retry may succeed. The message is for logs.
    #[error("storage unavailable: {what}: {source}")]
    Unavailable {
        /// What the store was doing, e.g. "cannot connect to PostgreSQL at …".
        what: String,
        /// The database driver's (or the file system's) error.
        #[source]
        source: Cause,
    },
    /// Stored data cannot be read back (INTERNAL): a row, column or schema is not what
    /// this build wrote. The data is at fault, not the request, and a retry will not
    /// help. The message is for logs.
    #[error("stored data is not valid: {what}")]
    Corrupt {
        /// What cannot be read, and why.
        what: String,
    },
}

impl StoreError {
    /// An [`Unavailable`](StoreError::Unavailable) error: `what` failed because of `source`.
    pub fn unavailable(
        what: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        StoreError::Unavailable {
            what: what.into(),
            source: Cause(Arc::from(source.into())),
        }
    }

    /// A [`Corrupt`](StoreError::Corrupt) error.
    pub fn corrupt(what: impl Into<String>) -> Self {
        StoreError::Corrupt { what: what.into() }
    }
}

/// The error beneath a [`StoreError::Unavailable`], shared so the error stays `Clone`.
/// It displays as, and has the source of, the error it holds; two causes are equal when
/// they read the same.
#[derive(Debug, Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync>);

impl Cause {
    /// The error itself, e.g. to downcast to `sqlx::Error` or `std::io::Error`.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which page of a list to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (0 = the default, capped at `limits::PAGE_SIZE_MAX`).
    pub page_size: usize,
    /// The `next_page_token` of the previous page, or empty for the first.
    pub page_token: String,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in a stable order (registries by id, devices by numId).
    pub items: Vec<T>,
    /// Token for the next page; empty on the last page.
    pub next_page_token: String,
}

/// Filters of `devices.list` (all given conditions must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Only these ids (≤ 10,000).
    pub device_ids: Vec<String>,
    /// Only these numIds (≤ 10,000).
    pub device_num_ids: Vec<u64>,
    /// Only gateways or only non-gateways.
    pub gateway_type: Option<GatewayType>,
    /// Only devices bound to this gateway.
    pub associations_gateway: Option<DeviceRef>,
    /// Only gateways this device is bound to.
    pub associations_device: Option<DeviceRef>,
}

/// What a device did, recorded in batches by the bridges (IoT Core's last*-times were
/// "stale by a few minutes" too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityKind {
    /// MQTT PINGREQ: `lastHeartbeatTime`.
    Heartbeat,
    /// Telemetry: `lastEventTime`.
    Event,
    /// State: `lastStateTime` (the state itself is stored with [`Store::record_state`]).
    State,
    /// A config was sent: `lastConfigSendTime`.
    ConfigSent,
    /// An error: `lastErrorTime` and `lastErrorStatus`.
    Error(Status),
    /// Reached through a gateway: `gatewayConfig.lastAccessedGateway{Id,Time}`.
    GatewayAccess {
        /// The gateway's id.
        gateway_id: String,
    },
}

/// One activity record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// The device's registry.
    pub registry: RegistryPath,
    /// The device's numId.
    pub num_id: u64,
    /// What happened.
    pub kind: ActivityKind,
    /// When.
    pub at: Timestamp,
}

/// Persistent storage of registries, devices, configs, states and bindings.
///
/// Implementations are `Send + Sync` and shared as `Arc<dyn Store>`. Every method that
/// creates history takes the time as an argument. A failed call changes nothing.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// A short name for logs (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    /// Creates a registry; `AlreadyExists` if the id is taken in that location.
    async fn create_registry(&self, registry: &DeviceRegistry) -> StoreResult<DeviceRegistry>;
    /// Reads a registry.
    async fn get_registry(&self, path: &RegistryPath) -> StoreResult<DeviceRegistry>;
    /// Replaces a registry's mutable fields (all but `path`).
    async fn update_registry(&self, registry: &DeviceRegistry) -> StoreResult<DeviceRegistry>;
    /// Deletes a registry; `FailedPrecondition` while it has devices.
    async fn delete_registry(&self, path: &RegistryPath) -> StoreResult<()>;
    /// Every Pub/Sub topic named in any registry's notification configs (event and
    /// state), sorted, each once: the topics the Pub/Sub API serves without a
    /// `CreateTopic`.
    async fn notification_topics(&self) -> StoreResult<Vec<String>>;
    /// Lists the registries of a location, ordered by id.
    async fn list_registries(
        &self,
        parent: &LocationPath,
        page: &PageRequest,
    ) -> StoreResult<Page<DeviceRegistry>>;

    /// Creates a device: assigns a new `num_id`, stores `device.config.binary_data` as
    /// config version 1 (at `now`). `AlreadyExists` if the id is taken.
    async fn create_device(
        &self,
        registry: &RegistryPath,
        device: &Device,
        now: Timestamp,
    ) -> StoreResult<Device>;
    /// Reads a device with its latest config and state.
    async fn get_device(&self, registry: &RegistryPath, device: &DeviceRef) -> StoreResult<Device>;
    /// Reads a registry and one of its devices (`None` if it has no such device) in
    /// one go: what a CONNECT needs, without a second trip for the device. `NotFound`
    /// only for the registry.
    async fn get_registry_and_device(
        &self,
        path: &RegistryPath,
        device: &DeviceRef,
    ) -> StoreResult<(DeviceRegistry, Option<Device>)>;
    /// Replaces a device's mutable fields: credentials, blocked, metadata, log level and
    /// gateway auth method (identified by `device.num_id`).
    async fn update_device(&self, registry: &RegistryPath, device: &Device) -> StoreResult<Device>;
    /// Deletes a device with its history and bindings; `FailedPrecondition` for a
    /// gateway that still has devices bound.
    async fn delete_device(&self, registry: &RegistryPath, device: &DeviceRef) -> StoreResult<()>;
    /// Lists a registry's devices, ordered by numId.
    async fn list_devices(
        &self,
        registry: &RegistryPath,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Device>>;

    /// Stores a new config version. With `version_to_update` ≠ 0 this is a
    /// compare-and-set: `Aborted` unless it equals the current version, even under
    /// concurrent callers. Keeps the last 10 versions.
    async fn modify_config(
        &self,
        registry: &RegistryPath,
        device: &DeviceRef,
        version_to_update: i64,
        binary_data: &[u8],
        now: Timestamp,
    ) -> StoreResult<DeviceConfig>;
    /// Config versions, newest first (`num_versions` 0 = all kept).
    async fn list_config_versions(
        &self,
        registry: &RegistryPath,
        device: &DeviceRef,
        num_versions: usize,
    ) -> StoreResult<Vec<DeviceConfig>>;
    /// Records the device's acknowledgement of a config version (`deviceAckTime`,
    /// `lastConfigAckTime`). Acks of versions no longer kept are ignored.
    async fn ack_config(
        &self,
        registry: &RegistryPath,
        num_id: u64,
        version: i64,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Stores a state report (and `lastStateTime`). Keeps the last 10.
    async fn record_state(
        &self,
        registry: &RegistryPath,
        num_id: u64,
        binary_data: &[u8],
        now: Timestamp,
    ) -> StoreResult<DeviceState>;
    /// States, newest first (`num_states` 0 = all kept).
    async fn list_states(
        &self,
        registry: &RegistryPath,
        device: &DeviceRef,
        num_states: usize,
    ) -> StoreResult<Vec<DeviceState>>;

    /// Binds a device to a gateway (idempotent). `FailedPrecondition` if the gateway is
    /// not a gateway, the device is a gateway, or the device already has 10 gateways.
    async fn bind(
        &self,
        registry: &RegistryPath,
        gateway: &DeviceRef,
        device: &DeviceRef,
    ) -> StoreResult<()>;
    /// Removes a binding; `NotFound` if there is none.
    async fn unbind(
        &self,
        registry: &RegistryPath,
        gateway: &DeviceRef,
        device: &DeviceRef,
    ) -> StoreResult<()>;
    /// Whether the device is bound to the gateway.
    async fn is_bound(
        &self,
        registry: &RegistryPath,
        gateway_num_id: u64,
        device_num_id: u64,
    ) -> StoreResult<bool>;

    /// Applies a batch of activity records (last*-times, last error). Records for
    /// deleted devices are ignored; later times win.
    async fn record_activity(&self, batch: &[Activity]) -> StoreResult<()>;

    /// Gives the space of deleted rows back to the file system (`tether storage
    /// compact`). SQLite rebuilds its file (`VACUUM`; writers wait meanwhile);
    /// PostgreSQL runs a plain `VACUUM` on the registry's tables.
    async fn compact(&self) -> StoreResult<Compaction>;

    /// Creates a provisioning claim (its counters and times are set here);
    /// `AlreadyExists` if the id is taken, `FailedPrecondition` past
    /// [`CLAIMS_PER_REGISTRY`](crate::provisioning::CLAIMS_PER_REGISTRY).
    async fn create_claim(
        &self,
        claim: &ProvisioningClaim,
        now: Timestamp,
    ) -> StoreResult<ProvisioningClaim>;
    /// Reads a claim.
    async fn get_claim(&self, registry: &RegistryPath, id: &str) -> StoreResult<ProvisioningClaim>;
    /// A registry's claims, revoked ones included, ordered by id (at most
    /// [`CLAIMS_PER_REGISTRY`](crate::provisioning::CLAIMS_PER_REGISTRY)).
    async fn list_claims(&self, registry: &RegistryPath) -> StoreResult<Vec<ProvisioningClaim>>;
    /// Revokes a claim at `now` (a second revocation keeps the first time). The claim
    /// stays, so that a device using it learns why it is refused.
    async fn revoke_claim(
        &self,
        registry: &RegistryPath,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<ProvisioningClaim>;
    /// Creates `device` (its id, first credential and metadata already set) through
    /// the claim, atomically: `FailedPrecondition` if the claim is revoked, expired
    /// or at its maximum; the existing device with `created: false` when the same
    /// claim already provisioned it with the same key (a retry); `AlreadyExists` for
    /// any other existing device, which is never changed. Concurrent calls for one
    /// id create one device.
    async fn provision_device(
        &self,
        registry: &RegistryPath,
        claim_id: &str,
        device: &Device,
        now: Timestamp,
    ) -> StoreResult<Provisioned>;
}

/// What [`Store::compact`] did: the size of the database (SQLite) or of the registry's
/// tables (PostgreSQL), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// Before compacting.
    pub bytes_before: u64,
    /// After compacting.
    pub bytes_after: u64,
}
