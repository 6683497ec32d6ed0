//! CONNECT authentication: client id → registry and device → JWT against the device's
//! credentials (the shared steps are in [`crate::bridge::auth`]). Returns a
//! [`Principal`] or a [`Refused`] with the CONNACK code (spec §1.3 recommendation)
//! and the reason to store as `lastErrorStatus`.

use std::sync::Arc;

use tether_iot::ClientId;
use tether_jwt::{EncodingWarning, PublicKey};
use tether_mqtt::{Connect, ConnectReturnCode};
use tether_registry::Store;
use tether_registry::model::{Device, DeviceRegistry, MqttState};
use tether_registry::names::{DeviceRef, RegistryPath};

use crate::bridge::auth::{self as device_auth, Denied, DeniedKind};
pub use crate::bridge::auth::{CredentialSource, JwtPolicy};
use crate::bridge::hub::DeviceAddress;
use crate::bridge::provision::claim::{self, Candidate, ClaimCheck, ClaimLists, ClaimSession};
use crate::bridge::{Code, Reason};
use crate::mqtt::device_cache::DeviceCache;

/// An authenticated device.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Its registry (as read at CONNECT; later the node's shared copy).
    pub registry: Arc<DeviceRegistry>,
    /// The device as read at CONNECT, without what a connection never reads (see
    /// [`connection_copy`]); shared with the [`DeviceCache`] entry.
    pub device: Arc<Device>,
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

impl From<Denied> for Refused {
    fn from(denied: Denied) -> Self {
        // An unparsable password is CONNACK 4; a well-formed token that fails the
        // rules or the signature is 5, as IoT Core answered.
        let code = match denied.kind {
            DeniedKind::UnknownDevice => ConnectReturnCode::IdentifierRejected,
            DeniedKind::Malformed => ConnectReturnCode::BadUserNameOrPassword,
            DeniedKind::Unavailable => ConnectReturnCode::ServerUnavailable,
            _ => ConnectReturnCode::NotAuthorized,
        };
        Self {
            code,
            reason: denied.reason,
            device: denied.device,
        }
    }
}

/// Who a CONNECT is: a device, or a device that does not exist yet and provisions
/// itself through a claim.
#[derive(Debug)]
pub enum Authenticated {
    /// A registered device with its own token.
    Device(Box<Principal>),
    /// A provisioning session (docs/provisioning.md).
    Provisioning(Box<ClaimSession>),
}

/// The device refusals a provisioning claim's token can be behind: the device is not
/// there yet, or (a retry after a lost reply) its keys did not sign the token.
const CLAIM_MAY_EXPLAIN: [&str; 5] = [
    "unknown_device",
    "jwt_signature",
    "jwt_key_type",
    "jwt_signature_format",
    "no_credentials",
];

/// [`authenticate`], and when the device's own check fails, whether the token is a
/// provisioning claim's. A registry without claims answers exactly as
/// [`authenticate`] does.
///
/// # Errors
/// [`Refused`] with the CONNACK code and the reason.
pub async fn authenticate_or_claim(
    connect: &Connect,
    lookup: Lookup<'_>,
    keys: &dyn CredentialSource,
    claims: &ClaimLists,
    policy: JwtPolicy,
    now: i64,
) -> Result<Authenticated, Refused> {
    let store = lookup.store;
    let refused = match authenticate(connect, lookup, keys, policy, now).await {
        Ok(principal) => return Ok(Authenticated::Device(Box::new(principal))),
        Err(refused) if CLAIM_MAY_EXPLAIN.contains(&refused.reason.label) => refused,
        Err(refused) => return Err(refused),
    };
    let (Ok(id), Ok(token)) = (ClientId::parse(&connect.client_id), password(connect)) else {
        return Err(refused);
    };
    let path = RegistryPath {
        project: id.project.to_owned(),
        location: id.location.to_owned(),
        registry: id.registry.to_owned(),
    };
    // A registry without claims costs nothing more (its empty list is remembered).
    let claims = match claims.get(store, &path).await {
        Ok(claims) if !claims.is_empty() => claims,
        _ => return Err(refused),
    };
    let Ok(registry) = store.get_registry(&path).await else {
        return Err(refused);
    };
    let exists = refused.reason.label != "unknown_device";
    let candidate = Candidate {
        registry: &registry,
        device_id: id.device,
        token,
        exists,
    };
    let check = claim::check(&claims, keys, candidate, policy, now);
    match check {
        ClaimCheck::NoClaims => Err(refused),
        ClaimCheck::NotClaimed if !exists => {
            let mut refused = refused;
            refused.reason.message.push_str(NOT_CLAIMED_EITHER);
            Err(refused)
        }
        ClaimCheck::NotClaimed => Err(refused),
        ClaimCheck::Refused(reason) => Err(Refused {
            code: if reason.code == Code::Unavailable {
                ConnectReturnCode::ServerUnavailable
            } else {
                ConnectReturnCode::NotAuthorized
            },
            reason,
            device: None,
        }),
        ClaimCheck::Session(_) if registry.mqtt_state == MqttState::Disabled => Err(Refused {
            code: ConnectReturnCode::NotAuthorized,
            reason: mqtt_disabled(&path),
            device: None,
        }),
        ClaimCheck::Session(session) => Ok(Authenticated::Provisioning(session)),
    }
}

/// Where CONNECT reads the registry and the device: the cache, else the store.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    /// The store.
    pub store: &'a dyn Store,
    /// What earlier CONNECTs read ([`DeviceCache::disabled`]: always the store).
    pub cache: &'a DeviceCache,
}

impl Lookup<'_> {
    /// The registry and the connection's copy of the device: from the cache when it
    /// holds them, else read (and kept, unless a change came meanwhile).
    async fn device(
        &self,
        path: &RegistryPath,
        id: &str,
    ) -> Result<(Arc<DeviceRegistry>, Arc<Device>), Denied> {
        let now = tokio::time::Instant::now();
        if let Some(found) = self.cache.get(path, id, now) {
            return Ok(found);
        }
        let generation = self.cache.generation();
        let (registry, device) =
            device_auth::lookup(self.store, path, &DeviceRef::Id(id.to_owned())).await?;
        let found = (Arc::new(registry), Arc::new(connection_copy(device)));
        self.cache.insert(generation, &found, now);
        Ok(found)
    }
}

/// Authenticates a CONNECT at `now` (Unix seconds).
///
/// # Errors
/// [`Refused`] with the CONNACK code and the reason.
pub async fn authenticate(
    connect: &Connect,
    lookup: Lookup<'_>,
    keys: &dyn CredentialSource,
    policy: JwtPolicy,
    now: i64,
) -> Result<Principal, Refused> {
    let id = ClientId::parse(&connect.client_id).map_err(|e| Refused {
        code: ConnectReturnCode::IdentifierRejected,
        reason: Reason::new(Code::InvalidArgument, "client_id", e.to_string()),
        device: None,
    })?;
    let path = RegistryPath {
        project: id.project.to_owned(),
        location: id.location.to_owned(),
        registry: id.registry.to_owned(),
    };
    let (registry, device) = lookup.device(&path, id.device).await?;
    let address = DeviceAddress {
        registry: path.clone(),
        num_id: device.num_id,
    };
    if registry.mqtt_state == MqttState::Disabled {
        return Err(Denied::new(DeniedKind::Forbidden, mqtt_disabled(&path))
            .on(&address)
            .into());
    }
    device_auth::check_not_blocked(&device, &address)?;
    let token = password(connect).map_err(|d| Refused::from(d.on(&address)))?;
    let verified =
        device_auth::verify_token(token, id.project, &path, &device, keys, policy, now).await?;
    Ok(Principal {
        registry,
        device,
        key: verified.key,
        token_exp: verified.exp,
        warnings: verified.warnings,
    })
}

/// What a live connection keeps of its device: the fields its later checks read (id,
/// numId, keys, blocked, gateway settings). The config, state and metadata (up to 64
/// KB, 64 KB and 256 KB) are read from the store when needed; kept per connection they
/// would make a fleet's memory grow with their size.
pub fn connection_copy(device: Device) -> Device {
    Device {
        config: tether_registry::model::DeviceConfig::default(),
        state: None,
        metadata: std::collections::BTreeMap::new(),
        last_error_status: None,
        ..device
    }
}

/// Appended to an unknown device's refusal when no claim signed its token either.
const NOT_CLAIMED_EITHER: &str =
    "; the token is not signed by any of the registry's provisioning claims either";

/// Why a CONNECT (or a re-authentication) is refused while the registry's MQTT is off.
pub(crate) fn mqtt_disabled(path: &RegistryPath) -> Reason {
    Reason::new(
        Code::FailedPrecondition,
        "mqtt_disabled",
        format!(
            "MQTT is disabled for registry '{path}' (mqttConfig.mqttEnabledState is \
             MQTT_DISABLED)"
        ),
    )
}

fn password(connect: &Connect) -> Result<&str, Denied> {
    let refuse = |label, message: &str| {
        Denied::new(
            DeniedKind::Malformed,
            Reason::new(Code::Unauthenticated, label, message),
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

#[cfg(test)]
mod tests {
    use tether_registry::model::{
        DeviceConfig, DeviceCredential, DeviceState, GatewayConfig, GatewayType,
        PublicKeyCredential,
    };

    use super::*;

    /// A connection keeps what its re-checks read, not the config, state and metadata.
    #[test]
    fn a_connection_keeps_its_device_without_config_state_and_metadata() {
        let device = Device {
            id: "d".into(),
            num_id: 7,
            credentials: vec![DeviceCredential {
                public_key: PublicKeyCredential {
                    key: "PEM".into(),
                    ..PublicKeyCredential::default()
                },
                ..DeviceCredential::default()
            }],
            blocked: true,
            config: DeviceConfig {
                version: 3,
                binary_data: vec![1; 64 * 1024],
                ..DeviceConfig::default()
            },
            state: Some(DeviceState {
                binary_data: vec![2; 64 * 1024],
                ..DeviceState::default()
            }),
            metadata: [("k".to_owned(), "v".repeat(1000))].into(),
            gateway_config: GatewayConfig {
                gateway_type: GatewayType::Gateway,
                ..GatewayConfig::default()
            },
            ..Device::default()
        };
        let kept = connection_copy(device.clone());
        assert_eq!(
            (
                kept.id.as_str(),
                kept.num_id,
                &kept.credentials,
                kept.blocked
            ),
            ("d", 7, &device.credentials, true)
        );
        assert!(kept.is_gateway());
        assert!(kept.config.binary_data.is_empty() && kept.state.is_none());
        assert!(kept.metadata.is_empty());
    }

    /// A message wrapped across source lines keeps single spaces (a lost `\` once put
    /// twenty spaces into two of them).
    #[test]
    fn refusal_texts_read_as_one_sentence() {
        let path = RegistryPath {
            project: "p".into(),
            location: "us-central1".into(),
            registry: "r".into(),
        };
        let disabled = mqtt_disabled(&path).message;
        assert_eq!(
            disabled,
            "MQTT is disabled for registry 'projects/p/locations/us-central1/registries/r' \
             (mqttConfig.mqttEnabledState is MQTT_DISABLED)"
        );
        for text in [disabled.as_str(), NOT_CLAIMED_EITHER] {
            assert!(!text.contains("  "), "double space in {text:?}");
        }
    }
}
