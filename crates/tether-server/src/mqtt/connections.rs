//! The live connections, keyed by device, and the [`DeviceHub`] over them: how the API
//! reaches a connected device (commands, config) and how a new connection of the same
//! device closes the old one.
//!
//! ```text
//!  API ──send_command──▶ Connections ──mailbox: queue──▶ driver ──PUBLISH──▶ device
//!      ──config_updated─▶      │      ──mailbox: config (latest wins)──▶
//!      ──device_changed─▶      │      ──Recheck──▶ driver re-reads the device
//!  new CONNECT ─register─▶     └──────mailbox: close──▶ old driver ends
//!  gateway attach ─attach─▶ entry of the attached device posting its messages to
//!                           the gateway's mailbox; messages name the device's numId
//! ```
//!
//! An attached device is reachable exactly like a connected one: its entry holds the
//! gateway connection's mailbox, so commands, config and re-checks reach the
//! gateway's driver, which publishes them on the attached device's topics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tether_registry::model::DeviceConfig;
use tether_registry::names::RegistryPath;
use tokio::sync::{mpsc, oneshot};

use super::Clock;
use super::device_cache::DeviceCache;
pub use super::mailbox::Control;
use super::mailbox::{Inbox, Post, Refused, mailbox};
use crate::bridge::hub::{DeviceAddress, DeviceHub, HubError};
use crate::bridge::{Code, Reason};

/// Control messages queued per connection.
const CONTROL_QUEUE: usize = 64;
/// How long `send_command` waits for the connection to take the command.
const COMMAND_HANDOFF: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Entry {
    conn_id: u64,
    /// The device's own mailbox: its config, its close and its command subscription.
    post: Post,
    /// For a device attached through a gateway (detached instead of closed): the
    /// gateway connection's mailbox, where its messages go.
    gateway: Option<Post>,
}

impl Entry {
    /// Where API messages for the device go.
    fn control(&self) -> &Post {
        self.gateway.as_ref().unwrap_or(&self.post)
    }

    fn direct(&self) -> bool {
        self.gateway.is_none()
    }

    fn end(&self, device: &DeviceAddress, reason: Reason) {
        match &self.gateway {
            None => self.post.close(reason),
            Some(gateway) => {
                // A full queue means the gateway is stuck; it is detached when its
                // connection ends.
                let _ = gateway.try_send(Box::new(Control::Detach {
                    num_id: device.num_id,
                    reason,
                }));
            }
        }
    }
}

/// A device became reachable here, or stopped being (see [`Connections::observe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Connected (or attached through a gateway) on this node at `at_ms` (Unix ms,
    /// read while the registration was made).
    Up {
        /// The device.
        device: DeviceAddress,
        /// When.
        at_ms: u64,
    },
    /// Gone from this node.
    Down(DeviceAddress),
}

/// The connected devices.
#[derive(Debug, Default)]
pub struct Connections {
    map: Mutex<HashMap<DeviceAddress, Entry>>,
    /// Told when a device arrives or leaves (the cluster hub, when there is one), with
    /// the clock that stamps arrivals.
    presence: OnceLock<(mpsc::UnboundedSender<Presence>, Arc<dyn Clock>)>,
    /// Registry patches so far (see [`Connections::registry_changes`]).
    registry_changes: AtomicU64,
    /// What CONNECT read, forgotten on every change this hub hears.
    devices: DeviceCache,
}

/// Why a device's older connection is closed when a newer one arrives (here or, in a
/// cluster, on another node).
pub(crate) fn another_connection() -> Reason {
    Reason::new(
        Code::Cancelled,
        "superseded",
        "The connection was closed because there is another active connection with the \
         same device ID.",
    )
}

impl Connections {
    /// Hands a command to the device's connection, which sends it only if `deadline`
    /// has not passed: a caller that gave up never sees its command delivered later.
    ///
    /// # Errors
    /// Why it was not handed over.
    pub async fn send_command_by(
        &self,
        device: &DeviceAddress,
        device_id: &str,
        subfolder: &str,
        payload: Vec<u8>,
        deadline: tokio::time::Instant,
    ) -> Result<(), HubError> {
        let control = {
            let map = self.lock();
            let entry = map.get(device).ok_or(HubError::NotConnected)?;
            if !entry.post.commands() {
                return Err(HubError::NotSubscribed(device_id.to_owned()));
            }
            entry.control().clone()
        };
        let (done, outcome) = oneshot::channel();
        control
            .try_send(Box::new(Control::Command {
                num_id: device.num_id,
                subfolder: subfolder.to_owned(),
                payload,
                deadline,
                done,
            }))
            .map_err(|refused| match refused {
                Refused::Full => HubError::Unavailable(
                    "the device's connection has too many commands queued; retry".into(),
                ),
                Refused::Closed => HubError::NotConnected,
            })?;
        match tokio::time::timeout_at(deadline, outcome).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(HubError::NotConnected),
            // The connection drops it when it gets to it: not delivered.
            Err(_) => Err(HubError::Unavailable(
                "the device's connection did not take the command in time; it was not \
                 delivered"
                    .into(),
            )),
        }
    }

    /// How many registry patches were announced: a connection that was being
    /// authenticated while the count moved re-reads its registry once registered.
    pub fn registry_changes(&self) -> u64 {
        self.registry_changes.load(Ordering::Acquire)
    }

    /// No device connected yet; CONNECT keeps what it read in `devices`.
    pub fn new(devices: DeviceCache) -> Self {
        Self {
            devices,
            ..Self::default()
        }
    }

    /// What CONNECT read for recently connected devices.
    pub fn device_cache(&self) -> &DeviceCache {
        &self.devices
    }

    /// Reports the devices here now, then every arrival and departure, to `tx`
    /// (sent while the map is locked, so in the map's order). Only the first observer
    /// is kept; `false` for a later one.
    pub fn observe(&self, tx: mpsc::UnboundedSender<Presence>, clock: Arc<dyn Clock>) -> bool {
        let map = self.lock();
        let at_ms = clock.unix_millis();
        if self.presence.set((tx, clock)).is_err() {
            return false;
        }
        for device in map.keys() {
            self.tell_up(device, at_ms);
        }
        true
    }

    fn tell_up(&self, device: &DeviceAddress, at_ms: u64) {
        if let Some((tx, _)) = self.presence.get() {
            let _ = tx.send(Presence::Up {
                device: device.clone(),
                at_ms,
            });
        }
    }

    /// An arrival, stamped now (call with the map locked).
    fn arrived(&self, device: &DeviceAddress) {
        if let Some((_, clock)) = self.presence.get() {
            self.tell_up(device, clock.unix_millis());
        }
    }

    fn departed(&self, device: &DeviceAddress) {
        if let Some((tx, _)) = self.presence.get() {
            let _ = tx.send(Presence::Down(device.clone()));
        }
    }

    /// Whether `device` is reachable here.
    pub fn contains(&self, device: &DeviceAddress) -> bool {
        self.lock().contains_key(device)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<DeviceAddress, Entry>> {
        // A panic elsewhere cannot leave the map half-updated (single inserts and
        // removes), so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers connection `conn_id` of `device`; an older connection of the same
    /// device is told to close.
    /// The driver's [`Inbox`] holds API messages, the newest config, the close with
    /// its reason, and the command subscription.
    pub fn register(&self, device: &DeviceAddress, conn_id: u64) -> Inbox {
        let (post, inbox) = mailbox(CONTROL_QUEUE);
        let entry = Entry {
            conn_id,
            post,
            gateway: None,
        };
        let mut map = self.lock();
        if let Some(old) = map.insert(device.clone(), entry) {
            old.end(device, another_connection());
        }
        self.arrived(device);
        drop(map);
        inbox
    }

    /// Makes `device` reachable through the connection `conn_id` of `gateway`; an
    /// older connection or attachment of the device ends. `None` when that gateway
    /// connection is not registered (it was superseded). The [`Inbox`] holds the
    /// attached device's config (a [`Control::Config`] in the gateway's mailbox says
    /// when to look) and its command subscription.
    pub fn attach(
        &self,
        gateway: &DeviceAddress,
        conn_id: u64,
        device: &DeviceAddress,
    ) -> Option<Inbox> {
        let mut map = self.lock();
        let gateway_post = map
            .get(gateway)
            .filter(|e| e.conn_id == conn_id)?
            .post
            .clone();
        // Only a config and a command subscription: the queue is the gateway's.
        let (post, inbox) = mailbox(0);
        let entry = Entry {
            conn_id,
            post,
            gateway: Some(gateway_post),
        };
        if let Some(old) = map.insert(device.clone(), entry)
            && (old.conn_id != conn_id || old.direct())
        {
            old.end(device, another_connection());
        }
        self.arrived(device);
        Some(inbox)
    }

    /// Removes connection `conn_id` unless a newer one took its place.
    pub fn deregister(&self, device: &DeviceAddress, conn_id: u64) {
        let mut map = self.lock();
        if map.get(device).is_some_and(|e| e.conn_id == conn_id) {
            map.remove(device);
            self.departed(device);
        }
    }

    /// How many devices are connected.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no device is connected.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Tells every connection to close with `reason` (shutdown).
    pub fn close_all(&self, reason: &Reason) {
        for (device, entry) in self.lock().iter() {
            entry.end(device, reason.clone());
        }
    }

    /// Closes one device's connection with `reason`, if it is connected.
    pub fn close(&self, device: &DeviceAddress, reason: Reason) {
        if let Some(entry) = self.lock().get(device) {
            entry.end(device, reason);
        }
    }
}

#[async_trait]
impl DeviceHub for Connections {
    async fn send_command(
        &self,
        device: &DeviceAddress,
        device_id: &str,
        subfolder: &str,
        payload: Vec<u8>,
    ) -> Result<(), HubError> {
        let deadline = tokio::time::Instant::now() + COMMAND_HANDOFF;
        self.send_command_by(device, device_id, subfolder, payload, deadline)
            .await
    }

    async fn config_updated(&self, device: &DeviceAddress, config: &DeviceConfig) {
        if let Some(entry) = self.lock().get(device) {
            let newer = entry.post.offer_config(config);
            if newer && let Some(gateway) = &entry.gateway {
                // A gateway's driver is woken for its own config; it learns of an
                // attached device's through its queue (and looks at all of them on any
                // wake).
                let _ = gateway.try_send(Box::new(Control::Config(device.num_id)));
            }
        }
    }

    async fn device_changed(&self, device: &DeviceAddress) {
        self.devices.forget_device(device);
        if let Some(entry) = self.lock().get(device) {
            // A full queue already holds work that will make the driver look again.
            let _ = entry
                .control()
                .try_send(Box::new(Control::Recheck(device.num_id)));
        }
    }

    async fn is_connected(&self, device: &DeviceAddress) -> Result<bool, HubError> {
        Ok(self.contains(device))
    }

    async fn registry_changed(&self, registry: &RegistryPath) {
        self.devices.forget_registry(registry);
        self.registry_changes.fetch_add(1, Ordering::AcqRel);
        let map = self.lock();
        // Attached devices (no `close`) share their gateway's queue; the gateway's own
        // entry carries the message once.
        let own = map
            .iter()
            .filter(|(address, entry)| address.registry == *registry && entry.direct());
        for (_, entry) in own {
            // A full queue already holds work; the periodic refresh catches up.
            let _ = entry.post.try_send(Box::new(Control::RegistryChanged));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceAddress {
        DeviceAddress {
            registry: RegistryPath {
                project: "p".into(),
                location: "l".into(),
                registry: "r".into(),
            },
            num_id: 7,
        }
    }

    #[tokio::test]
    async fn a_second_registration_closes_the_first() {
        let hub = Connections::default();
        let first = hub.register(&device(), 1);
        let second = hub.register(&device(), 2);
        assert_eq!(first.close_reason().map(|r| r.label), Some("superseded"));
        assert!(second.close_reason().is_none());
        hub.deregister(&device(), 1);
        assert_eq!(
            hub.len(),
            1,
            "the old connection must not remove the new one"
        );
        hub.deregister(&device(), 2);
        assert!(hub.is_empty());
    }

    #[tokio::test]
    async fn commands_need_a_subscription() {
        let hub = Connections::default();
        assert_eq!(
            hub.send_command(&device(), "d", "", vec![]).await,
            Err(HubError::NotConnected)
        );
        let reg = hub.register(&device(), 1);
        assert_eq!(
            hub.send_command(&device(), "d", "", vec![]).await,
            Err(HubError::NotSubscribed("d".into()))
        );
        reg.set_commands(true);
        drop(reg);
        // The driver is gone: the command cannot be handed over.
        assert_eq!(
            hub.send_command(&device(), "d", "", vec![]).await,
            Err(HubError::NotConnected)
        );
    }
}
