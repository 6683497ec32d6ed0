//! Authenticating a device token, whatever the transport: the MQTT CONNECT, a
//! gateway's attach message and every HTTP bridge request share these steps.
//!
//! ```text
//!  registry path + device ref ─▶ lookup (registry, device) ─▶ not blocked
//!      token ─▶ tether_jwt::verify(rules for the project, the device's keys)
//!            ─▶ Verified {key, exp, warnings}  or  Denied {kind, reason}
//! ```
//!
//! The transports map [`DeniedKind`] to their own answer (a CONNACK code, an
//! errors-topic message, an HTTP status).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use tether_jwt::{
    Algorithm, Credential, EncodingPolicy, EncodingWarning, PublicKey, Refusal, Rules,
};
use tether_registry::model::{Device, DeviceRegistry};
use tether_registry::names::{DeviceRef, RegistryPath};
use tether_registry::provisioning::ProvisioningClaim;
use tether_registry::{Store, StoreError};

use crate::bridge::hub::DeviceAddress;
use crate::bridge::{Code, Reason};

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

    /// The device's credentials, and which of them already verified the token with
    /// this digest against exactly these credentials (none unless remembered by
    /// [`CredentialSource::remember_verified`]).
    async fn credentials_for_token(
        &self,
        registry: &RegistryPath,
        device: &Device,
        _digest: &[u8; 32],
    ) -> (Arc<Vec<Credential>>, Option<usize>) {
        (self.credentials(registry, device).await, None)
    }

    /// Remembers that `credential` of `device`'s current credentials verified the
    /// token with `digest`.
    fn remember_verified(
        &self,
        _registry: &RegistryPath,
        _device: &Device,
        _digest: [u8; 32],
        _credential: usize,
    ) {
    }

    /// A provisioning claim's key, or why its stored key cannot be used.
    fn claim_key(&self, claim: &ProvisioningClaim) -> Result<Credential, String> {
        tether_registry::parse_key(&claim.credential.key).map(Credential::new)
    }
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

    async fn credentials_for_token(
        &self,
        registry: &RegistryPath,
        device: &Device,
        digest: &[u8; 32],
    ) -> (Arc<Vec<Credential>>, Option<usize>) {
        let (keys, known) = self.keys_for_token(registry, device, Some(digest));
        (keys.credentials, known)
    }

    fn remember_verified(
        &self,
        registry: &RegistryPath,
        device: &Device,
        digest: [u8; 32],
        credential: usize,
    ) {
        tether_registry::KeyCache::remember_verified(self, registry, device, digest, credential);
    }

    fn claim_key(&self, claim: &ProvisioningClaim) -> Result<Credential, String> {
        tether_registry::KeyCache::claim_key(self, claim)
    }
}

/// JWT settings shared by the bridges.
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

/// Who is at fault when a device is not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeniedKind {
    /// The registry or device does not exist.
    UnknownDevice,
    /// The token is missing or not a JWT at all.
    Malformed,
    /// A well-formed token that fails the rules or the signature.
    BadToken,
    /// The device (or its registry's set-up) is not allowed in.
    Forbidden,
    /// The store did not answer.
    Unavailable,
}

/// A refusal: its kind and the reason to record on the device.
#[derive(Debug, Clone)]
pub struct Denied {
    /// What kind of refusal.
    pub kind: DeniedKind,
    /// Why, in words the device's owner can act on.
    pub reason: Reason,
    /// The device to record the reason on, when it was found.
    pub device: Option<Box<DeviceAddress>>,
}

impl Denied {
    /// A refusal of `kind`.
    pub fn new(kind: DeniedKind, reason: Reason) -> Self {
        Self {
            kind,
            reason,
            device: None,
        }
    }

    /// The same, recorded on `device`.
    #[must_use]
    pub fn on(mut self, device: &DeviceAddress) -> Self {
        self.device = Some(Box::new(device.clone()));
        self
    }
}

/// A token that verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The key that verified it.
    pub key: PublicKey,
    /// Its `exp`.
    pub exp: i64,
    /// Encoding accepted although strict verifiers refuse it.
    pub warnings: Vec<EncodingWarning>,
}

/// Reads the registry and the device (`device` is an id or a numId).
///
/// # Errors
/// [`DeniedKind::UnknownDevice`] or [`DeniedKind::Unavailable`].
pub async fn lookup(
    store: &dyn Store,
    path: &RegistryPath,
    device: &DeviceRef,
) -> Result<(DeviceRegistry, Device), Denied> {
    let (registry, found) = store.get_registry_and_device(path, device).await.map_err(
        |e| match e {
            StoreError::NotFound(_) => Denied::new(
                DeniedKind::UnknownDevice,
                Reason::new(
                    Code::NotFound,
                    "unknown_registry",
                    format!(
                        "registry '{path}' does not exist (check the project, region and registry)"
                    ),
                ),
            ),
            other => unavailable(&other),
        },
    )?;
    let found = found.ok_or_else(|| {
        Denied::new(
            DeniedKind::UnknownDevice,
            Reason::new(
                Code::NotFound,
                "unknown_device",
                format!(
                    "device '{}' does not exist in registry '{path}' (device ids are \
                     case-sensitive)",
                    device_label(device)
                ),
            ),
        )
    })?;
    Ok((registry, found))
}

fn device_label(device: &DeviceRef) -> String {
    match device {
        DeviceRef::Id(id) => id.clone(),
        DeviceRef::NumId(n) => n.to_string(),
    }
}

/// Refuses a blocked device.
///
/// # Errors
/// [`DeniedKind::Forbidden`].
pub fn check_not_blocked(device: &Device, address: &DeviceAddress) -> Result<(), Denied> {
    if device.blocked {
        return Err(Denied::new(
            DeniedKind::Forbidden,
            Reason::new(
                Code::PermissionDenied,
                "device_blocked",
                "the device is blocked; set blocked to false to let it connect",
            ),
        )
        .on(address));
    }
    Ok(())
}

/// Verifies `token` as `device`'s JWT for `project` at `now` (Unix seconds).
///
/// # Errors
/// [`DeniedKind::Malformed`] or [`DeniedKind::BadToken`], recorded on the device.
pub async fn verify_token(
    token: &str,
    project: &str,
    registry: &RegistryPath,
    device: &Device,
    keys: &dyn CredentialSource,
    policy: JwtPolicy,
    now: i64,
) -> Result<Verified, Denied> {
    let address = DeviceAddress {
        registry: registry.clone(),
        num_id: device.num_id,
    };
    // A token this device already presented, verified against these same
    // credentials, skips the signature check (reconnects, HTTP bridge calls); its
    // claims and times are checked again, and a changed credential list forgets it.
    let digest = token_digest(token);
    let (credentials, known) = keys.credentials_for_token(registry, device, &digest).await;
    let rules = Rules {
        skew_secs: policy.skew_secs,
        ..Rules::new(project, now).with_encoding(policy.encoding)
    };
    let verified = match tether_jwt::verify_known(token, &rules, &credentials, known) {
        Ok(verified) => {
            if known != Some(verified.credential) {
                keys.remember_verified(registry, device, digest, verified.credential);
            } else {
                metrics::counter!("tether_jwt_signature_checks_skipped_total").increment(1);
            }
            verified
        }
        Err(refusal) => {
            let mut denied = jwt_denied(&refusal);
            if let Some(signers) = signed_by(token, &refusal, now) {
                denied.reason.message = format!("{}; {signers}", denied.reason.message);
            }
            let skipped = keys.skipped(registry, device).await;
            if !skipped.is_empty() {
                denied.reason.message = format!(
                    "{}; stored keys that could not be used: {}",
                    denied.reason.message,
                    skipped.join("; ")
                );
            }
            return Err(denied.on(&address));
        }
    };
    let key = credentials
        .get(verified.credential)
        .map(|c| c.key.clone())
        .ok_or_else(|| {
            Denied::new(
                DeniedKind::Unavailable,
                Reason::new(
                    Code::Unavailable,
                    "internal",
                    "the verifier named a credential that does not exist",
                ),
            )
        })?;
    Ok(Verified {
        key,
        exp: verified.exp,
        warnings: verified.warnings,
    })
}

fn token_digest(token: &str) -> [u8; 32] {
    let mut digest = [0; 32];
    digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    digest
}

/// Most signer recoveries per second in this process: each costs about six ES256
/// verifications (~460 µs; `es256/refused/recover_signers` in BENCHMARKS.md), so a
/// flood of wrong-key tokens must not buy one per refusal. Past the budget the refusal
/// omits the signers; the console's token debugger always shows them.
pub const SIGNER_RECOVERIES_PER_SEC: u32 = 10;

/// The current second and the recoveries spent in it.
static RECOVERY_BUDGET: std::sync::Mutex<(i64, u32)> = std::sync::Mutex::new((0, 0));

/// Whether a signer recovery fits this second's budget (spends it if so).
fn recovery_allowed(now: i64) -> bool {
    let mut budget = RECOVERY_BUDGET
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if budget.0 != now {
        *budget = (now, 0);
    }
    if budget.1 >= SIGNER_RECOVERIES_PER_SEC {
        return false;
    }
    budget.1 += 1;
    true
}

/// For an ES256 token that no registered key verifies: the keys that signed it,
/// recovered from the signature, so the refusal names both sides of the mismatch
/// (within [`SIGNER_RECOVERIES_PER_SEC`]).
fn signed_by(token: &str, refusal: &Refusal, now: i64) -> Option<String> {
    let Refusal::SignatureMismatch {
        alg: Algorithm::Es256,
        ..
    } = refusal
    else {
        return None;
    };
    if !recovery_allowed(now) {
        return None;
    }
    let signers: Vec<String> = tether_jwt::token_es256_signers(token)
        .iter()
        .map(|f| f.short().to_string())
        .collect();
    (!signers.is_empty()).then(|| {
        format!(
            "if intact, the token was signed by the key {} (an ES256 signature names two \
             candidates; `tether keys inspect` on the device's private key shows its \
             fingerprint)",
            signers.join(" or ")
        )
    })
}

fn jwt_denied(refusal: &Refusal) -> Denied {
    let kind = match refusal {
        Refusal::Malformed(_) => DeniedKind::Malformed,
        _ => DeniedKind::BadToken,
    };
    Denied::new(
        kind,
        Reason::new(Code::Unauthenticated, refusal.reason(), refusal.to_string()),
    )
}

/// The refusal for a store that did not answer.
pub fn unavailable(error: &StoreError) -> Denied {
    Denied::new(
        DeniedKind::Unavailable,
        Reason::new(
            Code::Unavailable,
            "store_unavailable",
            format!("the device registry is not available ({error}); try again later"),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_recoveries_are_budgeted_per_second() {
        // A second no real clock reads, so a refusal elsewhere cannot spend it.
        let second = -7;
        for _ in 0..SIGNER_RECOVERIES_PER_SEC {
            assert!(recovery_allowed(second));
        }
        assert!(!recovery_allowed(second), "the budget is spent");
        assert!(recovery_allowed(second + 1), "a new second, a new budget");
    }
}
