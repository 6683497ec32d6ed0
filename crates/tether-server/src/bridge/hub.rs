//! The delivery hub: how the API reaches devices that are connected right now.
//!
//! The REST API calls it for `sendCommandToDevice` and after `modifyCloudToDeviceConfig`;
//! the MQTT bridge implements it over its live connections. [`Disconnected`] is the hub
//! of a server with no device listeners (and of API tests).

use async_trait::async_trait;
use tether_registry::model::DeviceConfig;
use tether_registry::names::RegistryPath;

/// Why a command could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The device has no open connection (FAILED_PRECONDITION, as IoT Core).
    #[error("the device is not connected")]
    NotConnected,
    /// Connected but not subscribed to `/devices/{id}/commands/#` (FAILED_PRECONDITION).
    #[error("the device is connected but not subscribed to /devices/{0}/commands/#")]
    NotSubscribed(String),
    /// The connection could not take the message in time (RESOURCE_EXHAUSTED: retry
    /// later). It was not delivered.
    #[error("{0}")]
    Unavailable(String),
    /// The link to the node holding the device is down or did not answer (UNAVAILABLE:
    /// retry). The command was not delivered and will not be.
    #[error("{0}")]
    LinkDown(String),
}

/// A connected device, addressed by its registry and numId.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceAddress {
    /// The registry.
    pub registry: RegistryPath,
    /// The device's numId.
    pub num_id: u64,
}

/// Delivers API actions to connected devices.
#[async_trait]
pub trait DeviceHub: Send + Sync + std::fmt::Debug {
    /// Sends a command to `/devices/{id}/commands[/subfolder]` if the device is
    /// connected and subscribed; returns once it is handed to the connection.
    async fn send_command(
        &self,
        device: &DeviceAddress,
        device_id: &str,
        subfolder: &str,
        payload: Vec<u8>,
    ) -> Result<(), HubError>;

    /// A new config version was stored: push it if the device is subscribed.
    async fn config_updated(&self, device: &DeviceAddress, config: &DeviceConfig);

    /// The device was changed (blocked, credentials replaced) or deleted: the hub
    /// re-checks or closes its connection.
    async fn device_changed(&self, device: &DeviceAddress);

    /// The registry was changed (MQTT disabled, routing or log level changed): every
    /// connection in it re-reads the registry now, and closes if MQTT was disabled.
    async fn registry_changed(&self, registry: &RegistryPath);

    /// Whether the device has an open connection, here or (in a cluster) on any node:
    /// what the console shows as online. `Err` when that cannot be known now (the
    /// cluster link is down).
    async fn is_connected(&self, device: &DeviceAddress) -> Result<bool, HubError>;
}

/// The hub of a server with no device connections: every command fails with
/// [`HubError::NotConnected`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Disconnected;

#[async_trait]
impl DeviceHub for Disconnected {
    async fn send_command(
        &self,
        _: &DeviceAddress,
        _: &str,
        _: &str,
        _: Vec<u8>,
    ) -> Result<(), HubError> {
        Err(HubError::NotConnected)
    }

    async fn config_updated(&self, _: &DeviceAddress, _: &DeviceConfig) {}

    async fn device_changed(&self, _: &DeviceAddress) {}

    async fn registry_changed(&self, _: &RegistryPath) {}

    async fn is_connected(&self, _: &DeviceAddress) -> Result<bool, HubError> {
        Ok(false)
    }
}
