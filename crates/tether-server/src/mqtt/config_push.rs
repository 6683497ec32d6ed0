//! Config delivery to one connected device (spec §1.5), as a pure state machine.
//!
//! * On SUBSCRIBE the latest version is sent right away, then every newer version.
//! * QoS 1: the version in flight is re-sent (DUP) every `resend_interval` until the
//!   device PUBACKs it; a newer version supersedes it: no longer re-sent, but a late
//!   PUBACK of it still counts (the device did get that version), for the last
//!   [`SUPERSEDED_KEPT`] superseded ones.
//! * At most one send per `min_interval` (IoT Core: 1 config/s per device); versions
//!   arriving faster collapse into the newest.

use std::collections::VecDeque;
use std::time::Duration;

use tether_mqtt::{PacketId, QoS, Timestamp};
use tether_registry::model::DeviceConfig;

/// How many superseded versions still await their PUBACK. A device acknowledges what
/// it got, and a newer version can go out before that PUBACK arrives (a slow link, a
/// busy device); forgetting the old id at once would drop that acknowledgement, and
/// `deviceAckTime` would never be set for a version the device applied. Beyond this
/// the oldest is forgotten, so a device that never acknowledges pins few packet ids.
pub const SUPERSEDED_KEPT: usize = 2;

/// What the driver must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Publish this version at `qos`, first forgetting `forget` (the oldest superseded
    /// version, whose PUBACK is no longer awaited); then call [`ConfigPush::sent`].
    Send {
        /// The version to send.
        config: DeviceConfig,
        /// The granted QoS of the subscription.
        qos: QoS,
        /// The packet id the session should stop waiting for.
        forget: Option<PacketId>,
    },
    /// Publish the in-flight version again with DUP and the same id.
    Resend {
        /// Its packet id.
        id: PacketId,
        /// Its payload.
        payload: Vec<u8>,
    },
}

/// A superseded version whose PUBACK would still be recorded.
#[derive(Debug, Clone, Copy)]
struct Awaited {
    id: PacketId,
    version: i64,
}

#[derive(Debug, Clone)]
struct Inflight {
    id: PacketId,
    version: i64,
    payload: Vec<u8>,
    resend_at: Timestamp,
}

/// The config subscription of one connection.
#[derive(Debug, Clone)]
pub struct ConfigPush {
    qos: Option<QoS>,
    pending: Option<DeviceConfig>,
    inflight: Option<Inflight>,
    superseded: VecDeque<Awaited>,
    newest: i64,
    last_send: Option<Timestamp>,
    min_interval: Duration,
    resend_interval: Duration,
}

impl ConfigPush {
    /// Not subscribed yet.
    pub fn new(min_interval: Duration, resend_interval: Duration) -> Self {
        Self {
            qos: None,
            pending: None,
            inflight: None,
            superseded: VecDeque::new(),
            newest: 0,
            last_send: None,
            min_interval,
            resend_interval,
        }
    }

    /// Whether the device subscribed to its config topic.
    pub fn is_subscribed(&self) -> bool {
        self.qos.is_some()
    }

    /// The device subscribed at `qos`; `latest` is sent next, even if sent before.
    pub fn subscribe(&mut self, qos: QoS, latest: DeviceConfig) {
        self.qos = Some(qos);
        self.newest = self.newest.max(latest.version);
        self.pending = Some(latest);
    }

    /// The device unsubscribed: returns the packet ids to forget (the version in
    /// flight and the superseded ones still awaited).
    pub fn unsubscribe(&mut self) -> Vec<PacketId> {
        self.qos = None;
        self.pending = None;
        let inflight = self.inflight.take().map(|i| i.id);
        self.superseded
            .drain(..)
            .map(|a| a.id)
            .chain(inflight)
            .collect()
    }

    /// A new version was stored; ignored unless subscribed and newer than any seen.
    pub fn update(&mut self, config: DeviceConfig) {
        if self.qos.is_some() && config.version > self.newest {
            self.newest = config.version;
            self.pending = Some(config);
        }
    }

    /// What to do at `now`, if anything.
    pub fn poll(&mut self, now: Timestamp) -> Option<Action> {
        let qos = self.qos?;
        if self.pending.is_some() && self.send_allowed_at().is_none_or(|at| now >= at) {
            let config = self.pending.take()?;
            return Some(Action::Send {
                config,
                qos,
                forget: self.supersede(),
            });
        }
        let inflight = self.inflight.as_mut()?;
        if now >= inflight.resend_at {
            inflight.resend_at = now.saturating_add(self.resend_interval);
            return Some(Action::Resend {
                id: inflight.id,
                payload: inflight.payload.clone(),
            });
        }
        None
    }

    /// Records that `config` went out at `now` (with `id` for QoS 1).
    pub fn sent(&mut self, config: &DeviceConfig, id: Option<PacketId>, now: Timestamp) {
        self.last_send = Some(now);
        self.inflight = id.map(|id| Inflight {
            id,
            version: config.version,
            payload: config.binary_data.clone(),
            resend_at: now.saturating_add(self.resend_interval),
        });
    }

    /// The device acknowledged `id`: the version it acknowledged, if it was ours (in
    /// flight, or superseded and still awaited).
    pub fn acked(&mut self, id: PacketId) -> Option<i64> {
        match &self.inflight {
            Some(i) if i.id == id => self.inflight.take().map(|i| i.version),
            _ => {
                let at = self.superseded.iter().position(|a| a.id == id)?;
                self.superseded.remove(at).map(|a| a.version)
            }
        }
    }

    /// Moves the version in flight to the superseded ones; returns the id that falls
    /// out of them.
    fn supersede(&mut self) -> Option<PacketId> {
        let old = self.inflight.take()?;
        self.superseded.push_back(Awaited {
            id: old.id,
            version: old.version,
        });
        if self.superseded.len() > SUPERSEDED_KEPT {
            self.superseded.pop_front().map(|a| a.id)
        } else {
            None
        }
    }

    /// When [`ConfigPush::poll`] has something to do next.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.qos?;
        let pending = self
            .pending
            .as_ref()
            .map(|_| self.send_allowed_at().unwrap_or_default());
        let resend = self.inflight.as_ref().map(|i| i.resend_at);
        match (pending, resend) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn send_allowed_at(&self) -> Option<Timestamp> {
        self.last_send.map(|t| t.saturating_add(self.min_interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn config(version: i64) -> DeviceConfig {
        DeviceConfig {
            version,
            binary_data: format!("v{version}").into_bytes(),
            ..DeviceConfig::default()
        }
    }

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap_or_else(|| panic!("zero"))
    }

    fn push() -> ConfigPush {
        ConfigPush::new(Duration::from_secs(1), Duration::from_secs(20))
    }

    #[test]
    fn latest_on_subscribe_then_resend_until_acked() {
        let mut p = push();
        assert_eq!(p.poll(t(0)), None);
        p.update(config(2));
        assert_eq!(p.poll(t(0)), None, "not subscribed: nothing");
        p.subscribe(QoS::AtLeastOnce, config(3));
        assert_eq!(
            p.poll(t(0)),
            Some(Action::Send {
                config: config(3),
                qos: QoS::AtLeastOnce,
                forget: None
            })
        );
        p.sent(&config(3), Some(id(1)), t(0));
        assert_eq!(p.deadline(), Some(t(20_000)));
        assert_eq!(p.poll(t(19_999)), None);
        assert_eq!(
            p.poll(t(20_000)),
            Some(Action::Resend {
                id: id(1),
                payload: b"v3".to_vec()
            })
        );
        assert_eq!(p.acked(id(2)), None);
        assert_eq!(p.acked(id(1)), Some(3));
        assert_eq!(p.deadline(), None);
    }

    #[test]
    fn newer_version_supersedes_and_is_rate_limited() {
        let mut p = push();
        p.subscribe(QoS::AtLeastOnce, config(1));
        let _ = p.poll(t(0));
        p.sent(&config(1), Some(id(1)), t(0));
        p.update(config(2));
        p.update(config(3));
        p.update(config(2)); // stale: ignored
        assert_eq!(p.deadline(), Some(t(1000)));
        assert_eq!(p.poll(t(500)), None);
        assert_eq!(
            p.poll(t(1000)),
            Some(Action::Send {
                config: config(3),
                qos: QoS::AtLeastOnce,
                forget: None
            })
        );
        p.sent(&config(3), Some(id(2)), t(1000));
        // The device got version 1 and says so after version 3 went out.
        assert_eq!(p.acked(id(1)), Some(1));
        assert_eq!(p.acked(id(1)), None, "counted once");
        assert_eq!(p.acked(id(2)), Some(3));
    }

    #[test]
    fn a_device_that_never_acknowledges_pins_few_superseded_ids() {
        let mut p = push();
        p.subscribe(QoS::AtLeastOnce, config(1));
        let mut forgotten = Vec::new();
        for v in 1..=6u16 {
            let now = t(u64::from(v) * 1000);
            p.update(config(i64::from(v)));
            match p.poll(now) {
                Some(Action::Send { config, forget, .. }) => {
                    forgotten.extend(forget);
                    p.sent(&config, Some(id(v)), now);
                }
                other => panic!("version {v}: {other:?}"),
            }
        }
        // 6 sent: 1 in flight, 2 superseded awaited, the 3 oldest forgotten in order.
        assert_eq!(forgotten, [id(1), id(2), id(3)]);
        assert_eq!(p.acked(id(2)), None, "forgotten");
        assert_eq!(p.acked(id(4)), Some(4));
        let left = p.unsubscribe();
        assert_eq!(left, [id(5), id(6)]);
    }

    #[test]
    fn qos0_sends_once_and_unsubscribe_stops() {
        let mut p = push();
        p.subscribe(QoS::AtMostOnce, config(1));
        let _ = p.poll(t(0));
        p.sent(&config(1), None, t(0));
        assert_eq!(p.deadline(), None);
        p.subscribe(QoS::AtLeastOnce, config(1));
        let _ = p.poll(t(5000));
        p.sent(&config(1), Some(id(7)), t(5000));
        assert_eq!(p.unsubscribe(), [id(7)]);
        p.update(config(9));
        assert_eq!(p.poll(t(99_000)), None);
    }
}
