//! Provisioning claims: a registry's credential, baked into a batch of firmware, that
//! lets a device register the key it generated itself (docs/provisioning.md).
//!
//! The store keeps the claims and makes the one decision that must be atomic: whether
//! a claim may create a device now ([`crate::Store::provision_device`]), with the
//! claim's count, revocation and expiry checked in the same transaction as the
//! insert. Checking the request (the device's key, its proof, the id pattern) is the
//! server's.

use std::collections::BTreeMap;

use crate::model::{
    Device, GatewayAuthMethod, GatewayType, LogLevel, PublicKeyCredential, Timestamp,
};
use crate::names::RegistryPath;

/// The metadata key that names the claim a device was provisioned by.
pub const PROVISIONED_BY: &str = "tether.provisionedBy";
/// The metadata key that holds when it was provisioned (RFC 3339).
pub const PROVISIONED_TIME: &str = "tether.provisionedTime";
/// Claims per registry (live and revoked).
pub const CLAIMS_PER_REGISTRY: usize = 100;
/// The default [`ProvisioningClaim::rotation_grace_secs`]: a day.
pub const DEFAULT_ROTATION_GRACE_SECS: u64 = 24 * 3600;
/// Keys a device may hold (IoT Core's limit).
pub const MAX_DEVICE_KEYS: usize = crate::model::limits::DEVICE_CREDENTIALS;

/// What a provisioned device starts with besides its id and key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceTemplate {
    /// Metadata copied to each device (the provisioning keys are added).
    pub metadata: BTreeMap<String, String>,
    /// The device's log level.
    pub log_level: LogLevel,
    /// Gateway or not, and how a gateway's devices authenticate.
    pub gateway_type: GatewayType,
    /// The gateway's auth method (gateways only).
    pub gateway_auth_method: GatewayAuthMethod,
}

/// A provisioning claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningClaim {
    /// Its registry.
    pub registry: RegistryPath,
    /// Its id (IoT Core's id rule).
    pub id: String,
    /// The key the claim's tokens are signed with.
    pub credential: PublicKeyCredential,
    /// A regular expression every device id provisioned through it must match.
    pub device_id_pattern: String,
    /// At most this many devices; `None` for no limit.
    pub max_devices: Option<u64>,
    /// After this the claim provisions nothing; `None` never expires.
    pub expiration_time: Option<Timestamp>,
    /// What each device starts with.
    pub device_template: DeviceTemplate,
    /// When a device this claim made rotates to a new key, its older keys expire this
    /// many seconds later (docs/provisioning.md).
    pub rotation_grace_secs: u64,
    /// Devices it has created (output only).
    pub devices_provisioned: u64,
    /// When it last created a device (output only).
    pub last_used_time: Option<Timestamp>,
    /// When it was created (output only).
    pub create_time: Option<Timestamp>,
    /// When it was revoked; a revoked claim provisions nothing (output only).
    pub revoke_time: Option<Timestamp>,
}

impl ProvisioningClaim {
    /// Why the claim cannot provision at `now`, in words for the device's owner;
    /// `None` when it can (the device count is checked separately).
    pub fn unusable(&self, now: Timestamp) -> Option<String> {
        if let Some(at) = self.revoke_time {
            return Some(format!(
                "provisioning claim '{}' was revoked at {}",
                self.id,
                rfc3339(at)
            ));
        }
        match self.expiration_time {
            Some(at) if now >= at => Some(format!(
                "provisioning claim '{}' expired at {}",
                self.id,
                rfc3339(at)
            )),
            _ => None,
        }
    }

    /// The refusal when the claim is at its maximum, `None` while it has room.
    pub fn full(&self) -> Option<String> {
        match self.max_devices {
            Some(max) if self.devices_provisioned >= max => Some(format!(
                "provisioning claim '{}' has provisioned its maximum of {max} devices",
                self.id
            )),
            _ => None,
        }
    }
}

/// What [`crate::Store::provision_device`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// The device as stored.
    pub device: Device,
    /// False when the same claim had already provisioned it with the same key (a
    /// retry whose first reply was lost): nothing changed.
    pub created: bool,
}

/// Whether `existing` is what the same request through `claim_id` with `key` would
/// have created: a retry is answered with the same success.
pub fn is_same_provision(existing: &Device, claim_id: &str, key: &PublicKeyCredential) -> bool {
    existing.metadata.get(PROVISIONED_BY).map(String::as_str) == Some(claim_id)
        && existing
            .credentials
            .iter()
            .any(|c| c.public_key.format == key.format && c.public_key.key.trim() == key.key.trim())
}

fn rfc3339(t: Timestamp) -> String {
    tether_jwt::time::Utc(t.secs()).to_string()
}
