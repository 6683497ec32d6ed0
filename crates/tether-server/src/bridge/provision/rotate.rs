//! Key rotation by the device itself: a device connected with its own key registers a
//! new one with the provisioning request (its new key and a proof signed by it). The
//! new key is added and the older ones expire after the grace period of the claim that
//! made the device, so that the device can switch over without a gap. Decided here
//! without I/O.

use tether_registry::model::{DeviceCredential, PublicKeyCredential, Timestamp};
use tether_registry::provisioning::MAX_DEVICE_KEYS;

use crate::bridge::{Code, Reason};

/// The credentials after adding `new` at `now`, with every older key expiring at the
/// latest at `grace_until`; `None` when `new` is registered already (a retry).
///
/// # Errors
/// The device holds [`MAX_DEVICE_KEYS`] keys that have not expired.
pub fn rotated(
    current: &[DeviceCredential],
    new: &PublicKeyCredential,
    grace_until: Timestamp,
    now: Timestamp,
) -> Result<Option<Vec<DeviceCredential>>, Reason> {
    if current
        .iter()
        .any(|c| c.public_key.format == new.format && c.public_key.key.trim() == new.key.trim())
    {
        return Ok(None);
    }
    // Expired keys make room; they verify nothing any more.
    let mut kept: Vec<DeviceCredential> = current
        .iter()
        .filter(|c| c.expiration_time.is_none_or(|t| t > now))
        .cloned()
        .collect();
    if kept.len() >= MAX_DEVICE_KEYS {
        let soonest = kept.iter().filter_map(|c| c.expiration_time).min();
        let when = soonest.map_or_else(
            || "none of them expires; an operator must remove one".to_string(),
            |t| {
                format!(
                    "the first expires at {}; rotate after that",
                    tether_jwt::time::Utc(t.secs())
                )
            },
        );
        return Err(Reason::new(
            Code::FailedPrecondition,
            "rotation_keys_full",
            format!("the device already has {MAX_DEVICE_KEYS} keys; {when}"),
        ));
    }
    for c in &mut kept {
        c.expiration_time = Some(
            c.expiration_time
                .map_or(grace_until, |t| t.min(grace_until)),
        );
    }
    kept.push(DeviceCredential {
        public_key: new.clone(),
        expiration_time: None,
    });
    Ok(Some(kept))
}

#[cfg(test)]
mod tests {
    use tether_registry::model::PublicKeyFormat;

    use super::*;

    fn key(text: &str, expires: Option<i64>) -> DeviceCredential {
        DeviceCredential {
            public_key: PublicKeyCredential {
                format: PublicKeyFormat::Es256Pem,
                key: text.into(),
            },
            expiration_time: expires.map(Timestamp::from_secs),
        }
    }

    #[test]
    fn a_new_key_is_added_and_the_old_ones_expire_after_the_grace() {
        let now = Timestamp::from_secs(1000);
        let grace = Timestamp::from_secs(1000 + 3600);
        let new = key("new", None).public_key;
        let out = rotated(
            &[key("old", None), key("soon", Some(1500))],
            &new,
            grace,
            now,
        )
        .expect("room")
        .expect("added");
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0].expiration_time,
            Some(grace),
            "an old key gets the grace"
        );
        assert_eq!(
            out[1].expiration_time,
            Some(Timestamp::from_secs(1500)),
            "never later"
        );
        assert_eq!(out[2].public_key.key, "new");
        assert_eq!(out[2].expiration_time, None);
        // The same key again changes nothing.
        assert_eq!(rotated(&out, &new, grace, now), Ok(None));
    }

    #[test]
    fn three_live_keys_refuse_a_fourth_and_expired_ones_make_room() {
        let now = Timestamp::from_secs(1000);
        let grace = Timestamp::from_secs(5000);
        let new = key("new", None).public_key;
        let full = [key("a", None), key("b", Some(2000)), key("c", None)];
        let refused = rotated(&full, &new, grace, now).expect_err("full");
        assert!(
            refused.message.contains("already has 3 keys"),
            "{}",
            refused.message
        );
        assert!(
            refused.message.contains("expires at"),
            "{}",
            refused.message
        );
        let later = Timestamp::from_secs(2000);
        let out = rotated(&full, &new, grace, later)
            .expect("room")
            .expect("added");
        assert_eq!(out.len(), 3, "the expired key is gone");
        assert!(out.iter().all(|c| c.public_key.key != "b"));
    }
}
