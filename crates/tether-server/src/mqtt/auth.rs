//! CONNECT authentication: client id → registry and device → JWT against the device's
//! credentials. Returns a [`Principal`] or a [`Refused`] with the CONNACK code (spec
//! §1.3 recommendation) and the reason to store as `lastErrorStatus`.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use tether_jwt::{Credential, EncodingPolicy, EncodingWarning, PublicKey, Refusal, Rules};
use tether_mqtt::{ClientId, Connect, ConnectReturnCode};
use tether_registry::model::{Device, DeviceRegistry, MqttState};
use tether_registry::names::{DeviceRef, RegistryPath};
use tether_registry::{Store, StoreError};

use super::reason::{Reason, RpcCode};
use crate::hub::DeviceAddress;

/// Where the parsed public keys of a device come from (a cache in the server).
#[async_trait]
pub trait CredentialSource: Send + Sync + Debug {
    /// The device's credentials as the JWT verifier wants them.
    async fn credentials(&self, registry: &RegistryPath, device: &Device) -> Arc<Vec<Credential>>;

    /// Why stored keys of the device could not be used (`credentials[i]: why`),
    /// appended to a refusal so the owner sees a broken registration.
    async fn skipped(&self, _registry: &RegistryPath, _device: &Device) -> Arc<Vec<String>> {
        Arc::new(Vec::new())
    }

    /// Forgets what is cached for the device (its credentials changed).
    fn invalidate(&self, _device: &DeviceAddress) {}
}

/// The registry crate's cache: keys are parsed once per credential list.
#[async_trait]
impl CredentialSource for tether_registry::KeyCache {
    async fn credentials(&self, registry: &RegistryPath, device: &Device) -> Arc<Vec<Credential>> {
        tether_registry::KeyCache::credentials(self, registry, device)
    }

    async fn skipped(&self, registry: &RegistryPath, device: &Device) -> Arc<Vec<String>> {
        self.keys(registry, device).skipped
    }

    fn invalidate(&self, device: &DeviceAddress) {
        tether_registry::KeyCache::invalidate(self, &device.registry, device.num_id);
    }
}

/// JWT settings of the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwtPolicy {
    /// Allowed clock skew in seconds (IoT Core: 600); also added to `exp` for the
    /// connection's end.
    pub skew_secs: i64,
    /// Base64 strictness.
    pub encoding: EncodingPolicy,
}

impl Default for JwtPolicy {
    fn default() -> Self {
        Self {
            skew_secs: tether_jwt::DEFAULT_SKEW_SECS,
            encoding: EncodingPolicy::Lenient,
        }
    }
}

/// An authenticated device.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Its registry (as read at CONNECT).
    pub registry: DeviceRegistry,
    /// The device (as read at CONNECT).
    pub device: Device,
    /// The key that verified the token.
    pub key: PublicKey,
    /// The token's `exp`: the connection ends at `exp + skew`.
    pub token_exp: i64,
    /// Encoding accepted although strict verifiers refuse it.
    pub warnings: Vec<EncodingWarning>,
}

impl Principal {
    /// The hub address of the device.
    pub fn address(&self) -> DeviceAddress {
        DeviceAddress {
            registry: self.registry.path.clone(),
            num_id: self.device.num_id,
        }
    }
}

/// A refused CONNECT.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The CONNACK return code.
    pub code: ConnectReturnCode,
    /// Why.
    pub reason: Reason,
    /// The device to record the reason on, when it was found.
    pub device: Option<Box<DeviceAddress>>,
}

impl Refused {
    fn new(code: ConnectReturnCode, reason: Reason) -> Self {
        Self {
            code,
            reason,
            device: None,
        }
    }

    fn on(mut self, device: &DeviceAddress) -> Self {
        self.device = Some(Box::new(device.clone()));
        self
    }
}

/// Authenticates a CONNECT at `now` (Unix seconds).
///
/// # Errors
/// [`Refused`] with the CONNACK code and the reason.
pub async fn authenticate(
    connect: &Connect,
    store: &dyn Store,
    keys: &dyn CredentialSource,
    policy: JwtPolicy,
    now: i64,
) -> Result<Principal, Refused> {
    let id = ClientId::parse(&connect.client_id).map_err(|e| {
        Refused::new(
            ConnectReturnCode::IdentifierRejected,
            Reason::new(RpcCode::InvalidArgument, "client_id", e.to_string()),
        )
    })?;
    let path = RegistryPath {
        project: id.project.to_owned(),
        location: id.location.to_owned(),
        registry: id.registry.to_owned(),
    };
    let registry = store.get_registry(&path).await.map_err(|e| match e {
        StoreError::NotFound(_) => Refused::new(
            ConnectReturnCode::IdentifierRejected,
            Reason::new(
                RpcCode::NotFound,
                "unknown_registry",
                format!(
                    "registry '{}' does not exist (check the project, region and registry \
                     in the client id)",
                    path
                ),
            ),
        ),
        other => unavailable(&other),
    })?;
    let device = store
        .get_device(&path, &DeviceRef::Id(id.device.to_owned()))
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => Refused::new(
                ConnectReturnCode::IdentifierRejected,
                Reason::new(
                    RpcCode::NotFound,
                    "unknown_device",
                    format!(
                        "device '{}' does not exist in registry '{path}' (device ids are \
                         case-sensitive)",
                        id.device
                    ),
                ),
            ),
            other => unavailable(&other),
        })?;
    let address = DeviceAddress {
        registry: path.clone(),
        num_id: device.num_id,
    };
    if registry.mqtt_state == MqttState::Disabled {
        return Err(Refused::new(
            ConnectReturnCode::NotAuthorized,
            Reason::new(
                RpcCode::FailedPrecondition,
                "mqtt_disabled",
                format!(
                    "MQTT is disabled for registry '{path}' (mqttConfig.mqttEnabledState is \
                     MQTT_DISABLED)"
                ),
            ),
        )
        .on(&address));
    }
    if device.blocked {
        return Err(Refused::new(
            ConnectReturnCode::NotAuthorized,
            Reason::new(
                RpcCode::PermissionDenied,
                "device_blocked",
                "the device is blocked; set blocked to false to let it connect",
            ),
        )
        .on(&address));
    }
    let token = password(connect).map_err(|r| r.on(&address))?;
    let credentials = keys.credentials(&path, &device).await;
    let rules = Rules {
        skew_secs: policy.skew_secs,
        ..Rules::new(id.project, now).with_encoding(policy.encoding)
    };
    let verified = match tether_jwt::verify(token, &rules, &credentials) {
        Ok(verified) => verified,
        Err(refusal) => {
            let mut refused = jwt_refused(&refusal);
            let skipped = keys.skipped(&path, &device).await;
            if !skipped.is_empty() {
                refused.reason.message = format!(
                    "{}; stored keys that could not be used: {}",
                    refused.reason.message,
                    skipped.join("; ")
                );
            }
            return Err(refused.on(&address));
        }
    };
    let key = credentials
        .get(verified.credential)
        .map(|c| c.key.clone())
        .ok_or_else(|| {
            Refused::new(
                ConnectReturnCode::ServerUnavailable,
                Reason::new(
                    RpcCode::Unavailable,
                    "internal",
                    "the verifier named a credential that does not exist",
                ),
            )
        })?;
    Ok(Principal {
        registry,
        device,
        key,
        token_exp: verified.exp,
        warnings: verified.warnings,
    })
}

fn password(connect: &Connect) -> Result<&str, Refused> {
    let refuse = |label, message: &str| {
        Refused::new(
            ConnectReturnCode::BadUserNameOrPassword,
            Reason::new(RpcCode::Unauthenticated, label, message),
        )
    };
    match connect.password.as_deref() {
        None | Some([]) => Err(refuse(
            "no_password",
            "CONNECT has no password; send the device's JWT as the password (with any user \
             name, e.g. 'unused': some MQTT libraries drop the password when the user name \
             is empty)",
        )),
        Some(bytes) => std::str::from_utf8(bytes).map_err(|_| {
            refuse(
                "password_not_text",
                "the CONNECT password is not text, so it cannot be a JWT; send the device's \
                 JWT as the password",
            )
        }),
    }
}

fn jwt_refused(refusal: &Refusal) -> Refused {
    // An unparsable password is CONNACK 4; a well-formed token that fails the rules
    // or the signature is 5, as IoT Core answered.
    let code = match refusal {
        Refusal::Malformed(_) => ConnectReturnCode::BadUserNameOrPassword,
        _ => ConnectReturnCode::NotAuthorized,
    };
    Refused::new(
        code,
        Reason::new(
            RpcCode::Unauthenticated,
            refusal.reason(),
            refusal.to_string(),
        ),
    )
}

fn unavailable(error: &StoreError) -> Refused {
    Refused::new(
        ConnectReturnCode::ServerUnavailable,
        Reason::new(
            RpcCode::Unavailable,
            "store_unavailable",
            format!("the device registry is not available ({error}); try again later"),
        ),
    )
}
