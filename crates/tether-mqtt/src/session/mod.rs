//! Sans-io session state machines, driven like quinn's `Connection`: the driver feeds
//! received bytes and the current time in, and polls for bytes to send, events for the
//! application and the next timer deadline.
//!
//! ```text
//!  socket ──bytes──▶ handle_input(bytes, now) ┐            ┌─▶ poll_transmit() ──▶ socket
//!  timer ─────────▶ handle_timeout(now)       ├─▶ session ─┼─▶ poll_event()    ──▶ gateway
//!  gateway ──────▶ accept / refuse / puback … ┘            └─▶ poll_timeout()  ──▶ timer
//! ```
//!
//! Time is a [`Timestamp`] in milliseconds from any epoch the driver picks (typically
//! `Instant::now()` minus the driver's start); nothing here reads a clock.

pub mod client;
mod input;
pub mod server;

pub use client::{ClientConfig, ClientError, ClientEvent, ClientSession};
pub use server::{CloseReason, Event, ServerConfig, ServerSession, SessionError};

use core::time::Duration;

/// A point in time: milliseconds since an epoch chosen by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The time `millis` milliseconds after the epoch.
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time plus `duration`, saturating at the far future.
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(millis))
    }
}
