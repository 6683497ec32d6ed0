//! File descriptors shared out between the listeners, with a reserve for everything
//! else (the database, the telemetry log's segments, NATS, accept itself), so that one
//! listener can never starve another or the server: slow HTTP clients at their cap
//! leave MQTT devices and the store their descriptors.
//!
//! At start the soft limit is raised towards the hard limit as far as the caps need;
//! if the caps still do not fit, they are shrunk (the admin API's last) and the server
//! says so.

/// Descriptors kept out of every listener's reach.
pub const RESERVE: u64 = 256;

/// What each listener may hold, from the limit in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The process's descriptor limit (soft), after raising it.
    pub limit: u64,
    /// MQTT connections at once.
    pub mqtt: usize,
    /// HTTPS device-bridge connections at once.
    pub https: usize,
    /// Admin API connections at once.
    pub admin: usize,
    /// Whether the caps asked for had to be cut to fit.
    pub shrunk: bool,
}

/// Shares `limit` descriptors out: the caps asked for when they fit beside
/// [`RESERVE`], else smaller ones in the same proportions (each at least 1; the admin
/// API keeps up to 16 so an operator can always get in).
pub fn plan(limit: u64, mqtt: usize, https: usize, admin: usize) -> Plan {
    let available = usize::try_from(limit.saturating_sub(RESERVE)).unwrap_or(usize::MAX);
    let asked = mqtt.saturating_add(https).saturating_add(admin);
    if asked <= available {
        return Plan {
            limit,
            mqtt,
            https,
            admin,
            shrunk: false,
        };
    }
    let admin = admin.min(16).min(available / 4).max(1);
    let rest = available.saturating_sub(admin).max(2);
    let devices = mqtt.saturating_add(https).max(1);
    // Proportional shares, computed in u128 so the product cannot overflow.
    let share =
        |n: usize| usize::try_from(n as u128 * rest as u128 / devices as u128).unwrap_or(rest);
    Plan {
        limit,
        mqtt: share(mqtt).max(1),
        https: share(https).max(1),
        admin,
        shrunk: true,
    }
}

/// Raises the soft descriptor limit towards `wanted` (never past the hard limit) and
/// returns the limit in force.
#[cfg(unix)]
pub fn raise_limit(wanted: u64) -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let current = now.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return current;
    }
    let target = now.maximum.map_or(wanted, |hard| hard.min(wanted));
    if target > current {
        let raised = rustix::process::Rlimit {
            current: Some(target),
            maximum: now.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return target;
        }
    }
    current
}

/// Elsewhere the limit is not known here; assume the caps fit.
#[cfg(not(unix))]
pub fn raise_limit(wanted: u64) -> u64 {
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_that_fit_are_kept() {
        let p = plan(20_000, 10_000, 4096, 256);
        assert_eq!(
            (p.mqtt, p.https, p.admin, p.shrunk),
            (10_000, 4096, 256, false)
        );
    }

    #[test]
    fn caps_that_do_not_fit_shrink_and_leave_the_reserve() {
        let p = plan(1024, 10_000, 4096, 256);
        assert!(p.shrunk);
        assert_eq!(p.admin, 16);
        let total = (p.mqtt + p.https + p.admin) as u64;
        assert!(total + RESERVE <= 1024, "{p:?}");
        assert!(p.mqtt > p.https, "shares keep their proportions: {p:?}");
        // A tiny limit still gives every listener one slot.
        let p = plan(100, 10_000, 4096, 256);
        assert!(p.mqtt >= 1 && p.https >= 1 && p.admin >= 1, "{p:?}");
    }
}
