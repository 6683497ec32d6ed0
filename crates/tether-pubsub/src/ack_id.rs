//! Ack ids: `{offset}.{attempt}.{tag}`, where the tag is an HMAC over the
//! subscription, offset and attempt with a key made when the server starts. A
//! client cannot make one up, and one from before a restart is told apart from
//! a delivery that merely expired.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Hex digits of the tag: 96 bits of the HMAC.
const TAG_HEX: usize = 24;

/// Why an ack id is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forged {
    /// Not `{offset}.{attempt}.{tag}` at all.
    Malformed,
    /// Well formed, but the tag does not match: made up, for another
    /// subscription, or issued before the server restarted.
    BadTag,
}

/// Makes and checks ack ids.
#[derive(Debug)]
pub struct AckIds {
    key: hmac::Key,
}

impl AckIds {
    /// A new key from the system's random source.
    ///
    /// # Errors
    /// When the system has no random source.
    pub fn new() -> Result<Self, std::io::Error> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| std::io::Error::other("the system random source failed"))?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }

    fn tag(&self, subscription: &str, offset: u64, attempt: u32) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(subscription.as_bytes());
        ctx.update(&[0]);
        ctx.update(&offset.to_be_bytes());
        ctx.update(&attempt.to_be_bytes());
        let tag = ctx.sign();
        let mut hex = String::with_capacity(TAG_HEX);
        for b in &tag.as_ref()[..TAG_HEX / 2] {
            hex.push_str(&format!("{b:02x}"));
        }
        hex
    }

    /// The ack id of delivery `attempt` of `offset` on `subscription`.
    pub fn make(&self, subscription: &str, offset: u64, attempt: u32) -> String {
        format!(
            "{offset}.{attempt}.{}",
            self.tag(subscription, offset, attempt)
        )
    }

    /// The `(offset, attempt)` an ack id names, if this server issued it for
    /// `subscription`.
    pub fn check(&self, subscription: &str, ack_id: &str) -> Result<(u64, u32), Forged> {
        let mut parts = ack_id.splitn(3, '.');
        let (Some(offset), Some(attempt), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Forged::Malformed);
        };
        let (Ok(offset), Ok(attempt)) = (offset.parse::<u64>(), attempt.parse::<u32>()) else {
            return Err(Forged::Malformed);
        };
        if tag.len() != TAG_HEX {
            return Err(Forged::Malformed);
        }
        let expected = self.tag(subscription, offset, attempt);
        // Constant time: the tag is a secret until it is issued.
        let differ = expected
            .bytes()
            .zip(tag.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differ != 0 {
            return Err(Forged::BadTag);
        }
        Ok((offset, attempt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_check_only_for_their_subscription_and_key() -> Result<(), std::io::Error> {
        let ids = AckIds::new()?;
        let id = ids.make("projects/p/subscriptions/s", 42, 3);
        assert_eq!(ids.check("projects/p/subscriptions/s", &id), Ok((42, 3)));
        assert_eq!(
            ids.check("projects/p/subscriptions/other", &id),
            Err(Forged::BadTag)
        );
        let tampered = id.replacen("42.", "43.", 1);
        assert_eq!(
            ids.check("projects/p/subscriptions/s", &tampered),
            Err(Forged::BadTag)
        );
        let restarted = AckIds::new()?;
        assert_eq!(
            restarted.check("projects/p/subscriptions/s", &id),
            Err(Forged::BadTag)
        );
        for bad in [
            "",
            "1.2",
            "x.1.abc",
            "1.2.short",
            "1.-2.000000000000000000000000",
        ] {
            assert_eq!(
                ids.check("projects/p/subscriptions/s", bad),
                Err(Forged::Malformed),
                "{bad}"
            );
        }
        Ok(())
    }
}
