//! Parsed device keys for the bridges, so a CONNECT does not parse PEM again.
//!
//! Entries are keyed by (registry, numId) and remember the credential list they were
//! parsed from: a device whose credentials changed is parsed again on its next lookup,
//! whoever changed them. [`KeyCache::invalidate`] drops an entry at once (e.g. after a
//! delete). Stored keys that no longer parse are skipped, and why is kept for the
//! device's `lastErrorStatus`.
//!
//! An entry also remembers which key verified the device's last few tokens (by the
//! token's digest), so a device that reconnects or calls the HTTP bridge with the same
//! token skips the signature check. That memory lives and dies with the entry: a
//! changed credential list, a removed key or a deleted device forgets it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tether_jwt::Credential;

use crate::model::{Device, DeviceCredential, PublicKeyCredential};
use crate::names::RegistryPath;
use crate::provisioning::ProvisioningClaim;

/// A device's usable keys and the reasons others were skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceKeys {
    /// Keys to try, in the device's credential order (skipped ones left out).
    pub credentials: Arc<Vec<Credential>>,
    /// `credentials[i]: why` for each stored key that could not be used.
    pub skipped: Arc<Vec<String>>,
}

/// Tokens remembered per device: the current one and those a refresh overlaps with.
const VERIFIED_PER_DEVICE: usize = 4;

/// A token's digest (e.g. SHA-256 of its text) and the credential that verified it.
type VerifiedToken = ([u8; 32], usize);

#[derive(Debug)]
struct Entry {
    source: Vec<DeviceCredential>,
    keys: DeviceKeys,
    /// Newest last.
    verified: Vec<VerifiedToken>,
}

/// Cache of parsed device keys, shared by the MQTT and HTTP bridges.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<(RegistryPath, u64), Entry>>,
    /// Provisioning claims' keys by (registry, claim id), with the credential they
    /// were parsed from.
    claims: Mutex<HashMap<(RegistryPath, String), ClaimKey>>,
}

#[derive(Debug)]
struct ClaimKey {
    source: PublicKeyCredential,
    key: Result<Credential, String>,
}

impl KeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        KeyCache::default()
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<(RegistryPath, u64), Entry>> {
        // A panic while holding the lock leaves whole entries behind, never half ones.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The device's keys, parsed once per credential list.
    pub fn credentials(&self, registry: &RegistryPath, device: &Device) -> Arc<Vec<Credential>> {
        self.keys(registry, device).credentials
    }

    /// The device's keys and the reasons any stored key was skipped.
    pub fn keys(&self, registry: &RegistryPath, device: &Device) -> DeviceKeys {
        self.keys_for_token(registry, device, None).0
    }

    /// The device's keys and, for the token with `digest`, the index of the key that
    /// already verified it against exactly these keys
    /// ([`KeyCache::remember_verified`]), if any.
    pub fn keys_for_token(
        &self,
        registry: &RegistryPath,
        device: &Device,
        digest: Option<&[u8; 32]>,
    ) -> (DeviceKeys, Option<usize>) {
        let key = (registry.clone(), device.num_id);
        if let Some(entry) = self.entries().get(&key)
            && entry.source == device.credentials
        {
            let known = digest.and_then(|d| {
                entry
                    .verified
                    .iter()
                    .find(|(seen, _)| seen == d)
                    .map(|&(_, i)| i)
            });
            return (entry.keys.clone(), known);
        }
        // Parse outside the lock: PEM and RSA parsing is the slow part.
        let keys = parse_all(&device.credentials);
        self.entries().insert(
            key,
            Entry {
                source: device.credentials.clone(),
                keys: keys.clone(),
                verified: Vec::new(),
            },
        );
        (keys, None)
    }

    /// Remembers that `credential` of `device`'s keys verified the token with
    /// `digest`. Nothing is remembered unless the cached keys are still those of
    /// `device`'s credential list, the one the token was verified against.
    pub fn remember_verified(
        &self,
        registry: &RegistryPath,
        device: &Device,
        digest: [u8; 32],
        credential: usize,
    ) {
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(&(registry.clone(), device.num_id)) else {
            return;
        };
        if entry.source != device.credentials || entry.verified.iter().any(|(d, _)| *d == digest) {
            return;
        }
        if entry.verified.len() == VERIFIED_PER_DEVICE {
            entry.verified.remove(0);
        }
        entry.verified.push((digest, credential));
    }

    /// A provisioning claim's key, parsed once per credential (a changed key is
    /// parsed again); `Err` says why a stored key cannot be used.
    pub fn claim_key(&self, claim: &ProvisioningClaim) -> Result<Credential, String> {
        let key = (claim.registry.clone(), claim.id.clone());
        let mut claims = self
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cached) = claims.get(&key)
            && cached.source == claim.credential
        {
            return cached.key.clone();
        }
        // Claims are few, and parsed once per key: parsing under the lock is fine.
        if claims.len() >= MAX_CLAIM_KEYS {
            claims.clear();
        }
        let parsed = parse_key(&claim.credential.key).map(|key| Credential {
            key,
            expires_at: None,
        });
        claims.insert(
            key,
            ClaimKey {
                source: claim.credential.clone(),
                key: parsed.clone(),
            },
        );
        parsed
    }

    /// Forgets a device's keys.
    pub fn invalidate(&self, registry: &RegistryPath, num_id: u64) {
        self.entries().remove(&(registry.clone(), num_id));
    }

    /// Forgets every device of a registry (e.g. after it was deleted).
    pub fn invalidate_registry(&self, registry: &RegistryPath) {
        self.entries().retain(|(r, _), _| r != registry);
    }

    /// Number of devices cached.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }
}

/// Past this many claim keys the table starts afresh, so it cannot grow without bound.
const MAX_CLAIM_KEYS: usize = 10_000;

/// A stored credential's key text as the gateway reads it, or why it cannot be used
/// (also what the console shows for each key).
pub fn parse_key(text: &str) -> Result<tether_jwt::PublicKey, String> {
    tether_keys::parse(text.as_bytes())
        .map_err(|e| e.to_string())
        .and_then(|p| {
            p.public_key()
                .ok_or_else(|| "the stored text holds no public key".to_string())
        })
}

fn parse_all(creds: &[DeviceCredential]) -> DeviceKeys {
    let mut credentials = Vec::with_capacity(creds.len());
    let mut skipped = Vec::new();
    for (i, c) in creds.iter().enumerate() {
        let parsed = parse_key(&c.public_key.key);
        match parsed {
            Ok(key) => credentials.push(Credential {
                key,
                expires_at: c.expiration_time.map(|t| t.secs()),
            }),
            Err(why) => skipped.push(format!(
                "credentials[{i}] ({}) cannot be used: {why}",
                c.public_key.format.name()
            )),
        }
    }
    DeviceKeys {
        credentials: Arc::new(credentials),
        skipped: Arc::new(skipped),
    }
}
