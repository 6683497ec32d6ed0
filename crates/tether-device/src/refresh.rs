//! When to reconnect with a fresh token.
//!
//! IoT Core closed a connection a few seconds after the token's `exp` plus the skew,
//! and devices that did not plan for it saw "The authorization token expired". The SDK
//! reconnects on its own schedule instead, a margin *before* `exp`, so the server never
//! has to cut it: the new connection (with a new token) replaces the old one.

use std::time::Duration;

/// Why a refresh plan is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The lifetime is outside what the server accepts.
    #[error("token lifetime {0:?} is outside 1 min to 24 h")]
    Lifetime(Duration),
    /// The margin leaves no time to use the token.
    #[error("refresh margin {margin:?} must be shorter than the token lifetime {lifetime:?}")]
    Margin {
        /// The margin.
        margin: Duration,
        /// The lifetime.
        lifetime: Duration,
    },
}

/// Token lifetime and how long before expiry to reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPlan {
    lifetime: Duration,
    margin: Duration,
}

impl Default for RefreshPlan {
    /// 20 min tokens (as Google's samples) renewed 2 min before they expire.
    fn default() -> Self {
        RefreshPlan {
            lifetime: Duration::from_secs(20 * 60),
            margin: Duration::from_secs(120),
        }
    }
}

impl RefreshPlan {
    /// A plan with an explicit margin.
    pub fn new(lifetime: Duration, margin: Duration) -> Result<Self, PlanError> {
        if lifetime < Duration::from_secs(60) || lifetime > Duration::from_secs(86_400) {
            return Err(PlanError::Lifetime(lifetime));
        }
        if margin >= lifetime {
            return Err(PlanError::Margin { margin, lifetime });
        }
        Ok(RefreshPlan { lifetime, margin })
    }

    /// A plan with the default margin: a tenth of the lifetime, between 30 s and 5 min
    /// (20 min tokens are renewed at 18 min).
    pub fn with_default_margin(lifetime: Duration) -> Result<Self, PlanError> {
        let margin = (lifetime / 10).clamp(Duration::from_secs(30), Duration::from_secs(300));
        Self::new(lifetime, margin)
    }

    /// The token lifetime (`exp − iat`).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// How long before `exp` the reconnect happens.
    pub fn margin(&self) -> Duration {
        self.margin
    }

    /// How long a connection made with a new token may stay up before the planned
    /// reconnect.
    pub fn reconnect_after(&self) -> Duration {
        self.lifetime - self.margin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_margins() {
        let p = RefreshPlan::with_default_margin(Duration::from_secs(1200)).expect("valid");
        assert_eq!(p.reconnect_after(), Duration::from_secs(1080));
        let p = RefreshPlan::with_default_margin(Duration::from_secs(86_400)).expect("valid");
        assert_eq!(p.reconnect_after(), Duration::from_secs(86_100));
        let p = RefreshPlan::with_default_margin(Duration::from_secs(120)).expect("valid");
        assert_eq!(p.reconnect_after(), Duration::from_secs(90));
    }

    #[test]
    fn refuses_unusable_plans() {
        assert!(RefreshPlan::new(Duration::from_secs(10), Duration::ZERO).is_err());
        assert!(RefreshPlan::new(Duration::from_secs(90_000), Duration::ZERO).is_err());
        assert_eq!(
            RefreshPlan::new(Duration::from_secs(600), Duration::from_secs(600)),
            Err(PlanError::Margin {
                margin: Duration::from_secs(600),
                lifetime: Duration::from_secs(600)
            })
        );
    }
}
