//! CONNECT authentication: client id → registry and device → JWT against the device's
//! credentials (the shared steps are in [`crate::bridge::auth`]). Returns a
//! [`Principal`] or a [`Refused`] with the CONNACK code (spec §1.3 recommendation)
//! and the reason to store as `lastErrorStatus`.

use tether_iot::ClientId;
use tether_jwt::{EncodingWarning, PublicKey};
use tether_mqtt::{Connect, ConnectReturnCode};
use tether_registry::Store;
use tether_registry::model::{Device, DeviceRegistry, MqttState};
use tether_registry::names::{DeviceRef, RegistryPath};

use crate::bridge::auth::{self as device_auth, Denied, DeniedKind};
pub use crate::bridge::auth::{CredentialSource, JwtPolicy};
use crate::bridge::hub::DeviceAddress;
use crate::bridge::{Code, Reason};

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
    let (registry, device) =
        device_auth::lookup(store, &path, &DeviceRef::Id(id.device.to_owned())).await?;
    let address = DeviceAddress {
        registry: path.clone(),
        num_id: device.num_id,
    };
    if registry.mqtt_state == MqttState::Disabled {
        return Err(Denied::new(
            DeniedKind::Forbidden,
            Reason::new(
                Code::FailedPrecondition,
                "mqtt_disabled",
                format!(
                    "MQTT is disabled for registry '{path}' (mqttConfig.mqttEnabledState is \
                     MQTT_DISABLED)"
                ),
            ),
        )
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
