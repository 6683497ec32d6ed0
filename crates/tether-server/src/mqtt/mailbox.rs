//! One connection's mailbox from the connections table: the API's messages (a bounded
//! queue), the newest config version and the close, behind one lock and one waker.
//!
//! It replaces a bounded channel for the messages and a watch for the rest: on an idle
//! connection those two held about 1.3 KB (tokio's channel allocates its first block of
//! slots and cache-padded state up front, its watch eight wait lists), and the driver
//! registered two wakers at every wait. The mailbox is one small allocation, and its
//! queue allocates only while a message waits.
//!
//! The table holds the [`Post`] (dropping it tells the driver the entry is gone), the
//! driver the [`Inbox`] (dropping it refuses further messages).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tether_registry::model::DeviceConfig;
use tokio::sync::oneshot;

use crate::bridge::Reason;
use crate::bridge::hub::HubError;

/// A message from the API to one connection.
#[derive(Debug)]
pub enum Control {
    /// Publish a command; answer on `done` once it is written (or why not).
    Command {
        /// The device (the connection's own, or one attached through it).
        num_id: u64,
        /// Empty for `/devices/{id}/commands`.
        subfolder: String,
        /// The payload.
        payload: Vec<u8>,
        /// Past this the caller has given up: the command is dropped, never sent late.
        deadline: tokio::time::Instant,
        /// The outcome.
        done: oneshot::Sender<Result<(), HubError>>,
    },
    /// The device (numId) changed: re-read it and close (or detach it) if it is
    /// blocked, deleted or its key was removed.
    Recheck(u64),
    /// The connection's registry changed: re-read it (routing, MQTT enabled state).
    RegistryChanged,
    /// A newer config of the attached device (numId) is in its mailbox.
    Config(u64),
    /// The attached device (numId) is now reached another way: detach it.
    Detach {
        /// The device.
        num_id: u64,
        /// Why.
        reason: Reason,
    },
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds its maximum: the connection is not keeping up.
    Full,
    /// The connection has ended.
    Closed,
}

/// What the driver is woken for, most urgent first.
#[derive(Debug)]
pub enum Delivery {
    /// The server closes the connection, with the reason (`None`: the table dropped the
    /// entry without one).
    Close(Option<Reason>),
    /// A newer config version is waiting: [`Inbox::latest_config`].
    Config,
    /// A message from the API.
    Control(Box<Control>),
}

#[derive(Debug, Default)]
struct State {
    /// The newest config version stored while connected (or attached).
    config: Option<DeviceConfig>,
    /// Set when `config` changed since the driver last looked.
    config_changed: bool,
    /// Set when the server closes this connection.
    close: Option<Reason>,
    /// The table's entry is gone.
    orphaned: bool,
    /// The driver is gone.
    closed: bool,
    queue: VecDeque<Box<Control>>,
    waker: Option<Waker>,
}

#[derive(Debug)]
struct Mailbox {
    capacity: usize,
    state: Mutex<State>,
    /// Whether the device is subscribed to its commands (the driver sets it, the API
    /// reads it before queueing a command).
    commands: AtomicBool,
    /// [`Post`]s alive: the last one to go orphans the driver.
    posts: AtomicUsize,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a single assignment or push: a poisoned lock is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `change` and wakes the driver if it returns true.
    fn update(&self, change: impl FnOnce(&mut State) -> bool) -> bool {
        let mut state = self.lock();
        if !change(&mut state) {
            return false;
        }
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }
}

/// A new mailbox whose queue holds at most `capacity` messages.
pub fn mailbox(capacity: usize) -> (Post, Inbox) {
    let mailbox = Arc::new(Mailbox {
        capacity,
        state: Mutex::default(),
        commands: AtomicBool::new(false),
        posts: AtomicUsize::new(1),
    });
    (Post(Arc::clone(&mailbox)), Inbox(mailbox))
}

/// The table's side.
#[derive(Debug)]
pub struct Post(Arc<Mailbox>);

impl Post {
    /// Queues a message for the driver.
    ///
    /// # Errors
    /// The queue is full, or the driver is gone.
    pub fn try_send(&self, control: Box<Control>) -> Result<(), Refused> {
        let mut refused = None;
        self.0.update(|state| {
            if state.closed {
                refused = Some(Refused::Closed);
            } else if state.queue.len() >= self.0.capacity {
                refused = Some(Refused::Full);
            } else {
                state.queue.push_back(control);
            }
            refused.is_none()
        });
        refused.map_or(Ok(()), Err)
    }

    /// Keeps `config` unless a version as new is already waiting; true when kept.
    pub fn offer_config(&self, config: &DeviceConfig) -> bool {
        self.0.update(|state| {
            let newer = state
                .config
                .as_ref()
                .is_none_or(|l| l.version < config.version);
            if newer {
                state.config = Some(config.clone());
                state.config_changed = true;
            }
            newer
        })
    }

    /// Tells the driver to close the connection with `reason` (a later reason replaces
    /// one not yet seen).
    pub fn close(&self, reason: Reason) {
        self.0.update(|state| {
            state.close = Some(reason);
            true
        });
    }

    /// Whether the device is subscribed to its commands.
    pub fn commands(&self) -> bool {
        self.0.commands.load(Ordering::Acquire)
    }
}

impl Clone for Post {
    fn clone(&self) -> Self {
        self.0.posts.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(&self.0))
    }
}

/// The driver's side.
#[derive(Debug)]
pub struct Inbox(Arc<Mailbox>);

impl Inbox {
    /// The next delivery: the close first, then a newer config, then the queue.
    pub fn poll_delivery(&self, cx: &mut Context<'_>) -> Poll<Delivery> {
        let mut state = self.0.lock();
        if let Some(reason) = &state.close {
            return Poll::Ready(Delivery::Close(Some(reason.clone())));
        }
        if state.orphaned {
            return Poll::Ready(Delivery::Close(None));
        }
        if std::mem::take(&mut state.config_changed) {
            return Poll::Ready(Delivery::Config);
        }
        if let Some(control) = state.queue.pop_front() {
            if state.queue.is_empty() {
                // A burst's slots go back: most connections never hold a message.
                state.queue = VecDeque::new();
            }
            return Poll::Ready(Delivery::Control(control));
        }
        match &mut state.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The next delivery, when it comes.
    pub async fn delivery(&self) -> Delivery {
        std::future::poll_fn(|cx| self.poll_delivery(cx)).await
    }

    /// The newest config version offered so far (the driver reads it when woken for
    /// [`Delivery::Config`]).
    pub fn latest_config(&self) -> Option<DeviceConfig> {
        self.0.lock().config.clone()
    }

    /// The newest config version, if one came since the last call (an attached
    /// device's, which its gateway learns of through its own queue).
    pub fn take_config_change(&self) -> Option<DeviceConfig> {
        let mut state = self.0.lock();
        if std::mem::take(&mut state.config_changed) {
            state.config.clone()
        } else {
            None
        }
    }

    /// Sets whether the device is subscribed to its commands.
    pub fn set_commands(&self, subscribed: bool) {
        self.0.commands.store(subscribed, Ordering::Release);
    }

    /// The close waiting for the driver (tests).
    #[cfg(test)]
    pub fn close_reason(&self) -> Option<Reason> {
        self.0.lock().close.clone()
    }
}

impl Drop for Post {
    fn drop(&mut self) {
        // Clones live in a gateway's attached entries; only the last one orphans.
        if self.0.posts.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.update(|state| {
                state.orphaned = true;
                true
            });
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let queued = {
            let mut state = self.0.lock();
            state.closed = true;
            std::mem::take(&mut state.queue)
        };
        // Dropped outside the lock: a command's sender learns it was not delivered.
        drop(queued);
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;
    use std::pin::pin;

    use super::*;
    use crate::bridge::Code;

    fn reason(label: &'static str) -> Reason {
        Reason::new(Code::Cancelled, label, "test")
    }

    fn config(version: i64) -> DeviceConfig {
        DeviceConfig {
            version,
            ..DeviceConfig::default()
        }
    }

    fn now(inbox: &Inbox) -> Option<Delivery> {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(inbox.delivery()).poll(&mut cx) {
            Poll::Ready(d) => Some(d),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_close_wins_over_a_config_and_messages_whatever_came_first() {
        let (post, inbox) = mailbox(4);
        assert!(now(&inbox).is_none(), "nothing yet");
        post.try_send(Box::new(Control::Recheck(1))).expect("room");
        assert!(post.offer_config(&config(2)));
        assert!(matches!(now(&inbox), Some(Delivery::Config)));
        assert_eq!(inbox.latest_config().map(|c| c.version), Some(2));
        assert!(matches!(
            now(&inbox),
            Some(Delivery::Control(c)) if matches!(*c, Control::Recheck(1))
        ));
        assert!(now(&inbox).is_none(), "all seen");

        assert!(post.offer_config(&config(3)));
        post.close(reason("superseded"));
        assert!(matches!(
            now(&inbox),
            Some(Delivery::Close(Some(r))) if r.label == "superseded"
        ));
        assert!(
            matches!(now(&inbox), Some(Delivery::Close(Some(_)))),
            "a close stays"
        );
    }

    #[test]
    fn an_older_or_equal_config_is_not_offered() {
        let (post, inbox) = mailbox(4);
        assert!(post.offer_config(&config(5)));
        assert!(!post.offer_config(&config(5)));
        assert!(!post.offer_config(&config(4)));
        assert_eq!(inbox.take_config_change().map(|c| c.version), Some(5));
        assert!(inbox.take_config_change().is_none(), "taken");
        assert!(now(&inbox).is_none());
    }

    #[test]
    fn the_queue_is_bounded_and_refuses_once_the_driver_is_gone() {
        let (post, inbox) = mailbox(2);
        post.try_send(Box::new(Control::Recheck(1))).expect("room");
        post.try_send(Box::new(Control::Recheck(2))).expect("room");
        assert_eq!(
            post.try_send(Box::new(Control::RegistryChanged)),
            Err(Refused::Full)
        );
        drop(inbox);
        assert_eq!(
            post.try_send(Box::new(Control::RegistryChanged)),
            Err(Refused::Closed)
        );
    }

    #[test]
    fn the_driver_is_woken_and_learns_when_the_entry_is_gone() {
        let (post, inbox) = mailbox(2);
        let woken = Arc::new(AtomicBool::new(false));
        let waker = Waker::from(Arc::new(Flag(Arc::clone(&woken))));
        let mut cx = Context::from_waker(&waker);
        assert!(inbox.poll_delivery(&mut cx).is_pending());
        post.try_send(Box::new(Control::RegistryChanged))
            .expect("room");
        assert!(woken.swap(false, Ordering::SeqCst), "a message wakes");
        assert!(inbox.poll_delivery(&mut cx).is_ready());
        assert!(inbox.poll_delivery(&mut cx).is_pending());
        drop(post);
        assert!(woken.load(Ordering::SeqCst), "the entry's end wakes");
        assert!(matches!(now(&inbox), Some(Delivery::Close(None))));
    }

    #[test]
    fn a_gateway_s_post_orphans_only_when_its_last_clone_goes() {
        let (post, inbox) = mailbox(2);
        let attached = post.clone();
        drop(post);
        assert!(now(&inbox).is_none(), "an attached device still posts");
        drop(attached);
        assert!(matches!(now(&inbox), Some(Delivery::Close(None))));
    }

    struct Flag(Arc<AtomicBool>);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}
