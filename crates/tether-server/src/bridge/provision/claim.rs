//! Is a refused device token a provisioning claim's? Asked only after the usual
//! device check failed (an unknown device, or a device whose keys did not sign the
//! token), so a registry without claims answers exactly as before, and a device with
//! its own key never pays for it.
//!
//! ```text
//!  token ─▶ the registry's claims ─▶ whose key signed it? ─▶ none: the refusal stands
//!                                        │
//!                                        └─▶ live, pattern, room, IoT Core's claims
//!                                             ─▶ a provisioning session, or why not
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use regex::Regex;
use tether_jwt::{Rules, Token};
use tether_registry::model::{DeviceRegistry, Timestamp};
use tether_registry::names::RegistryPath;
use tether_registry::provisioning::ProvisioningClaim;
use tether_registry::{Store, StoreResult};
use tokio::time::Instant;

use crate::bridge::auth::{CredentialSource, JwtPolicy};
use crate::bridge::{Code, Reason, shown};

/// Past this many registries the table starts afresh, so it cannot grow without bound.
const MAX_LISTS: usize = 10_000;

/// The registries' claim lists, read at most once per `ttl` per registry: a flood of
/// refused tokens must not add a query each, and a registry without claims must cost
/// nothing. A list a moment old is safe: creating a device re-checks its claim's
/// revocation, expiry and count in the store's transaction.
#[derive(Debug)]
pub struct ClaimLists {
    ttl: Duration,
    lists: Mutex<HashMap<RegistryPath, (Instant, ClaimList)>>,
}

/// A registry's claims, shared by the connections that read them.
type ClaimList = Arc<Vec<ProvisioningClaim>>;

impl ClaimLists {
    /// Lists kept for `ttl` (zero: always read).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            lists: Mutex::new(HashMap::new()),
        }
    }

    /// The claims of `registry`, from memory while fresh.
    ///
    /// # Errors
    /// The store's, when it had to be asked and failed.
    pub async fn get(&self, store: &dyn Store, registry: &RegistryPath) -> StoreResult<ClaimList> {
        if !self.ttl.is_zero()
            && let Some((at, list)) = self
                .lists
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(registry)
            && at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(list));
        }
        let list = Arc::new(store.list_claims(registry).await?);
        if !self.ttl.is_zero() {
            let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
            if lists.len() >= MAX_LISTS {
                lists.clear();
            }
            lists.insert(registry.clone(), (Instant::now(), Arc::clone(&list)));
        }
        Ok(list)
    }
}

/// Longest compiled pattern (a claim's id pattern is set by the operator, but a huge
/// one must not cost every provisioning device).
const PATTERN_SIZE_LIMIT: usize = 64 * 1024;

/// A connection that may provision one device through a claim.
#[derive(Debug, Clone)]
pub struct ClaimSession {
    /// The registry, as read when the token was checked.
    pub registry: DeviceRegistry,
    /// The claim whose key signed the token.
    pub claim: ProvisioningClaim,
    /// The device it may provision.
    pub device_id: String,
    /// The claim token's `exp`.
    pub exp: i64,
    /// Why this claim cannot provision the device (pattern, revoked, expired, full):
    /// the answer to every request of the session.
    pub refusal: Option<Reason>,
}

/// What a token is, as far as claims go.
#[derive(Debug)]
pub enum ClaimCheck {
    /// The registry has no claims: every answer stays as it was without the feature.
    NoClaims,
    /// No claim's key signed the token.
    NotClaimed,
    /// A claim's key signed it, but the token breaks IoT Core's rules (or the store
    /// did not answer).
    Refused(Reason),
    /// A claim's token: a provisioning session (whose requests may all be refused, see
    /// [`ClaimSession::refusal`]).
    Session(Box<ClaimSession>),
}

/// Compiles a claim's device id pattern; it must match the whole id.
///
/// # Errors
/// Why the pattern is not a usable regular expression.
pub fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

/// A token refused as a device's own, to check against the registry's claims.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The registry.
    pub registry: &'a DeviceRegistry,
    /// The device the token is for.
    pub device_id: &'a str,
    /// The token.
    pub token: &'a str,
    /// The device is already there: only the same request again may be answered, so
    /// the claim's device count does not matter.
    pub exists: bool,
}

/// Checks whether a refused token is one of `claims`' (the registry's) that may
/// provision the device.
pub fn check(
    claims: &[ProvisioningClaim],
    keys: &dyn CredentialSource,
    candidate: Candidate<'_>,
    policy: JwtPolicy,
    now: i64,
) -> ClaimCheck {
    if claims.is_empty() {
        return ClaimCheck::NoClaims;
    }
    let Candidate {
        registry,
        device_id,
        token,
        exists,
    } = candidate;
    let Ok(parsed) = Token::parse(token) else {
        return ClaimCheck::NotClaimed;
    };
    let Some(alg) = parsed.algorithm() else {
        return ClaimCheck::NotClaimed;
    };
    let signed_by = claims.iter().find_map(|claim| {
        let credential = keys.claim_key(claim).ok()?;
        tether_jwt::verify_signature(
            alg,
            &credential.key,
            parsed.signing_input.as_bytes(),
            &parsed.signature,
        )
        .ok()?;
        Some((claim.clone(), credential))
    });
    let Some((claim, credential)) = signed_by else {
        return ClaimCheck::NotClaimed;
    };
    match admit(
        &claim,
        &credential,
        registry,
        device_id,
        token,
        exists,
        policy,
        now,
    ) {
        Ok((exp, refusal)) => ClaimCheck::Session(Box::new(ClaimSession {
            registry: registry.clone(),
            refusal,
            claim,
            device_id: device_id.to_owned(),
            exp,
        })),
        Err(reason) => ClaimCheck::Refused(reason),
    }
}

/// The claim token checked under IoT Core's rules (`Err`: a CONNACK refusal, as for
/// any token), and why this claim cannot provision the device now, if it cannot: that
/// is answered to the request, where a device can read it, rather than at CONNECT.
#[allow(clippy::too_many_arguments)]
fn admit(
    claim: &ProvisioningClaim,
    credential: &tether_jwt::Credential,
    registry: &DeviceRegistry,
    device_id: &str,
    token: &str,
    exists: bool,
    policy: JwtPolicy,
    now: i64,
) -> Result<(i64, Option<Reason>), Reason> {
    let rules = Rules {
        skew_secs: policy.skew_secs,
        ..Rules::new(&registry.path.project, now).with_encoding(policy.encoding)
    };
    let exp = tether_jwt::verify(token, &rules, std::slice::from_ref(credential))
        .map(|verified| verified.exp)
        .map_err(|refusal| {
            Reason::new(
                Code::Unauthenticated,
                refusal.reason(),
                format!(
                    "the token of provisioning claim '{}' is refused: {refusal}",
                    claim.id
                ),
            )
        })?;
    Ok((exp, cannot_provision(claim, device_id, exists, now)))
}

/// Why `claim` cannot provision `device_id` at `now`, if it cannot.
fn cannot_provision(
    claim: &ProvisioningClaim,
    device_id: &str,
    exists: bool,
    now: i64,
) -> Option<Reason> {
    let refused = |label, message: String| Reason::new(Code::PermissionDenied, label, message);
    if let Some(why) = claim.unusable(Timestamp::from_secs(now)) {
        return Some(refused("claim_unusable", why));
    }
    let pattern = match compile_pattern(&claim.device_id_pattern) {
        Ok(pattern) => pattern,
        Err(e) => {
            return Some(refused(
                "claim_pattern",
                format!(
                    "provisioning claim '{}' has a device id pattern that cannot be used \
                     ({e}); fix the claim",
                    claim.id
                ),
            ));
        }
    };
    if !pattern.is_match(device_id) {
        return Some(refused(
            "claim_pattern",
            format!(
                "device id '{}' does not match the pattern '{}' of provisioning claim '{}'",
                shown(device_id),
                shown(&claim.device_id_pattern),
                claim.id
            ),
        ));
    }
    if !exists && let Some(why) = claim.full() {
        return Some(Reason::new(Code::ResourceExhausted, "claim_full", why));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matches_the_whole_id() {
        let p = compile_pattern("sensor-[0-9a-f]{8}").expect("pattern");
        assert!(p.is_match("sensor-0a1b2c3d"));
        assert!(!p.is_match("xsensor-0a1b2c3d"));
        assert!(!p.is_match("sensor-0a1b2c3d-2"));
        let anchored = compile_pattern("^sensor-[0-9a-f]{8}$").expect("anchored");
        assert!(anchored.is_match("sensor-0a1b2c3d"));
        assert!(compile_pattern("sensor-(").is_err());
        assert!(compile_pattern("a{1000}{1000}").is_err(), "too large");
    }
}
