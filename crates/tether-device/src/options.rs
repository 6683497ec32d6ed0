//! What [`crate::Device::connect`] needs: who the device is, how it signs, where it
//! connects, and its timings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tether_iot::ClientId;
use tether_jwt::Signer;

use crate::backoff::Backoff;
use crate::clock::{Clock, SystemClock};
use crate::endpoints::Endpoint;
use crate::jitter::{Jitter, SystemJitter};
use crate::refresh::RefreshPlan;
use crate::transport::Security;

/// A signer the driver task can share.
pub type SharedSigner = Arc<dyn Signer + Send + Sync>;

/// The device's full name: `projects/P/locations/L/registries/R/devices/D`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DevicePath {
    /// Project id (also the token's `aud`).
    pub project: String,
    /// Cloud region, e.g. `us-central1`.
    pub region: String,
    /// Registry id.
    pub registry: String,
    /// Device id (case-sensitive).
    pub device: String,
}

impl DevicePath {
    /// From its parts.
    pub fn new(
        project: impl Into<String>,
        region: impl Into<String>,
        registry: impl Into<String>,
        device: impl Into<String>,
    ) -> Self {
        DevicePath {
            project: project.into(),
            region: region.into(),
            registry: registry.into(),
            device: device.into(),
        }
    }

    /// Parses an MQTT client id.
    pub fn parse(client_id: &str) -> Result<Self, tether_iot::ClientIdError> {
        let c = ClientId::parse(client_id)?;
        Ok(DevicePath::new(c.project, c.location, c.registry, c.device))
    }

    /// The MQTT client id.
    pub fn client_id(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DevicePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "projects/{}/locations/{}/registries/{}/devices/{}",
            self.project, self.region, self.registry, self.device
        )
    }
}

/// Everything [`crate::Device::connect`] needs. Start with [`DeviceOptions::new`] and
/// change fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct DeviceOptions {
    /// Who the device is.
    pub device: DevicePath,
    /// Signs the JWTs (a key file or `pkcs11:` URI through [`crate::open_signer`]).
    pub signer: SharedSigner,
    /// Where to connect, in order of preference.
    pub endpoints: Vec<Endpoint>,
    /// TLS (with the root CA) or plain TCP.
    pub security: Security,
    /// Token lifetime and how long before `exp` to reconnect with a fresh one.
    pub refresh: RefreshPlan,
    /// Backoff between failed rounds (every endpoint tried).
    pub backoff: Backoff,
    /// How long to stay on a fallback endpoint before a planned refresh goes back to
    /// the preferred one.
    pub return_after: Duration,
    /// MQTT keep-alive in seconds (IoT Core's samples: 60).
    pub keep_alive: u16,
    /// Limit for each of DNS, TCP, TLS and CONNACK.
    pub connect_timeout: Duration,
    /// [`crate::HttpDevice`]: the most one call may take, connecting included (the
    /// bridge itself ends a request at 60 s, `--http-request-timeout-secs`).
    pub request_timeout: Duration,
    /// Subscribe to `/devices/{id}/errors` (gateways).
    pub gateway: bool,
    /// The wall clock for `iat`/`exp`.
    pub clock: Arc<dyn Clock>,
    /// The backoff's random numbers.
    pub jitter: Arc<dyn Jitter>,
    /// Which MQTT version to speak (default [`MqttVersion::Auto`]).
    pub mqtt_version: MqttVersion,
}

/// The MQTT version the SDK speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MqttVersion {
    /// MQTT 5 with the JWT as Authentication Data (method `jwt`), so the token is
    /// refreshed with AUTH on the live connection; against a server that refuses MQTT
    /// 5 or the method (CONNACK 0x01 in 3.1.1, 0x84 or 0x8C), MQTT 3.1.1 from then on,
    /// refreshing by reconnecting.
    #[default]
    Auto,
    /// MQTT 3.1.1 only (IoT Core's protocol): the JWT as password, refreshed by
    /// reconnecting.
    V3_1_1,
    /// MQTT 5 only, with AUTH re-authentication.
    V5,
}

impl fmt::Debug for DeviceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceOptions")
            .field("device", &self.device)
            .field("endpoints", &self.endpoints)
            .field("refresh", &self.refresh)
            .field("keep_alive", &self.keep_alive)
            .finish_non_exhaustive()
    }
}

impl DeviceOptions {
    /// IoT Core's defaults: 20 min tokens renewed 2 min early, backoff from 1 s to
    /// 15 min, keep-alive 60 s, 30 min before failing back. Add endpoints and the CA
    /// (`security`), which start empty and plain.
    pub fn new(device: DevicePath, signer: SharedSigner) -> Self {
        DeviceOptions {
            device,
            signer,
            endpoints: Vec::new(),
            security: Security::Plain,
            refresh: RefreshPlan::default(),
            backoff: Backoff::default(),
            return_after: Duration::from_secs(30 * 60),
            keep_alive: 60,
            connect_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(75),
            gateway: false,
            clock: Arc::new(SystemClock),
            jitter: Arc::new(SystemJitter::new()),
            mqtt_version: MqttVersion::Auto,
        }
    }

    /// Adds an endpoint (the first added is preferred).
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// Trusts the root CAs in a PEM bundle.
    pub fn ca_pem(mut self, pem: &[u8]) -> Result<Self, crate::tls::CaError> {
        let roots = crate::tls::certs_from_pem(pem)?;
        self.security = Security::Tls(Arc::new(crate::tls::client_config(&roots)?));
        Ok(self)
    }
}
