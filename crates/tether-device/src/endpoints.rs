//! Several ways to reach the gateway, and when to use which.
//!
//! Policy:
//! * Connect to the **preferred** endpoint (the first) when possible.
//! * On a connection failure (DNS, TCP, TLS, timeout) try the next endpoint at once; only
//!   when every endpoint has failed in a row does the caller back off. A refusal by the
//!   server (CONNACK ≠ 0) is not an endpoint failure: every endpoint would refuse too.
//! * Once connected through a fallback, stay there (no flapping) until the next planned
//!   token refresh at least `return_after` later: that reconnect, which happens anyway,
//!   tries the preferred endpoint first. No extra disconnect is ever made to fail back.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One way to reach the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address (also the TLS server name).
    pub host: String,
    /// TCP port (8883, or 443 where 8883 is blocked).
    pub port: u16,
    /// Local address to bind before connecting: picks the network path (e.g. the
    /// cellular modem's address rather than Wi-Fi's).
    pub bind: Option<IpAddr>,
}

impl Endpoint {
    /// `host:port` with no local binding.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Endpoint {
            host: host.into(),
            port,
            bind: None,
        }
    }
}

/// The endpoints in order of preference, and where the device is now.
#[derive(Debug, Clone)]
pub struct Endpoints {
    list: Vec<Endpoint>,
    current: usize,
    failures_in_row: usize,
    fallback_since: Option<Instant>,
    return_after: Duration,
}

impl Endpoints {
    /// At least one endpoint; the first is preferred. Returns `None` for an empty list.
    pub fn new(list: Vec<Endpoint>, return_after: Duration) -> Option<Self> {
        if list.is_empty() {
            return None;
        }
        Some(Endpoints {
            list,
            current: 0,
            failures_in_row: 0,
            fallback_since: None,
            return_after,
        })
    }

    /// The endpoint to try next.
    pub fn current(&self) -> &Endpoint {
        &self.list[self.current]
    }

    /// Whether the current endpoint is the preferred one.
    pub fn on_preferred(&self) -> bool {
        self.current == 0
    }

    /// The attempt on the current endpoint failed: move to the next one. Returns true
    /// when every endpoint has now failed in a row (time to back off).
    pub fn failed(&mut self) -> bool {
        self.failures_in_row += 1;
        self.current = (self.current + 1) % self.list.len();
        if self.failures_in_row >= self.list.len() {
            self.failures_in_row = 0;
            return true;
        }
        false
    }

    /// Connected through the current endpoint at `now`.
    pub fn connected(&mut self, now: Instant) {
        self.failures_in_row = 0;
        if self.current == 0 {
            self.fallback_since = None;
        } else if self.fallback_since.is_none() {
            self.fallback_since = Some(now);
        }
    }

    /// A planned token refresh is about to reconnect at `now`: return to the preferred
    /// endpoint if the device has been on a fallback for `return_after`.
    pub fn before_refresh(&mut self, now: Instant) {
        if self
            .fallback_since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.return_after)
        {
            self.current = 0;
            self.fallback_since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Endpoints {
        let list = vec![Endpoint::new("gw", 8883), Endpoint::new("gw", 443)];
        Endpoints::new(list, Duration::from_secs(1800)).expect("non-empty")
    }

    #[test]
    fn fails_over_then_backs_off_after_a_full_round() {
        let mut e = two();
        assert_eq!(e.current().port, 8883);
        assert!(!e.failed(), "one endpoint left to try");
        assert_eq!(e.current().port, 443);
        assert!(e.failed(), "both failed: back off");
        assert_eq!(
            e.current().port,
            8883,
            "the next round starts at the preferred one"
        );
        assert!(Endpoints::new(vec![], Duration::ZERO).is_none());
    }

    #[allow(clippy::disallowed_methods)] // a base instant for relative test times
    #[test]
    fn returns_to_preferred_only_at_a_refresh_after_the_delay() {
        let t0 = Instant::now();
        let mut e = two();
        e.failed();
        e.connected(t0);
        assert!(!e.on_preferred());
        e.before_refresh(t0 + Duration::from_secs(600));
        assert!(!e.on_preferred(), "too early: stay on the fallback");
        e.before_refresh(t0 + Duration::from_secs(1800));
        assert!(e.on_preferred());
        e.connected(t0 + Duration::from_secs(1801));
        e.before_refresh(t0 + Duration::from_secs(9999));
        assert!(e.on_preferred());
    }
}
