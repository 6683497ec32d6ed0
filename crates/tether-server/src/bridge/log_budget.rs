//! What a client can make the server write to its log is bounded: lines a client can
//! cause (refusals, protocol errors, failed appends) pass through a [`LogBudget`], at
//! most a few per minute for one device or source address and a fixed number per
//! minute in all; what is held back is counted and said once a minute. Per-connection
//! events (connected, disconnected) are logged at DEBUG and summed up in one INFO line a
//! minute. Metrics still count every event.
//!
//! ```text
//!  refusal ─▶ budget.allow(key) ─ yes ─▶ WARN line
//!                              └─ no ──▶ counted ─┐
//!  connect / disconnect ──▶ counted ──────────────┼─▶ every 60 s: one INFO summary
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

/// How long a budget window lasts, and how often the summary is written.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The limits of one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lines per window for one key (a device, a source address).
    pub per_key: u32,
    /// Lines per window in all.
    pub total: u32,
    /// Keys remembered per window; past this every new key counts as over budget.
    pub keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_key: 3,
            total: 120,
            keys: 10_000,
        }
    }
}

#[derive(Debug, Default)]
struct Window {
    lines: u32,
    per_key: HashMap<String, u32>,
    suppressed: u64,
}

/// Connection events of the last window, for the summary line.
#[derive(Debug, Default)]
struct Counts {
    connects: AtomicU64,
    disconnects: AtomicU64,
    refusals: AtomicU64,
}

/// The server's log budget: one per process, shared by every transport.
#[derive(Debug, Default)]
pub struct LogBudget {
    limits: Limits,
    window: Mutex<Window>,
    counts: Counts,
}

impl LogBudget {
    /// A budget with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Whether one more line about `key` may be written now. A `false` is counted and
    /// reported in the next summary.
    pub fn allow(&self, key: &str) -> bool {
        let mut guard = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let w = &mut *guard;
        let limits = self.limits;
        let known = w.per_key.len();
        let allowed = w.lines < limits.total
            && match w.per_key.get_mut(key) {
                Some(n) if *n < limits.per_key => {
                    *n += 1;
                    true
                }
                Some(_) => false,
                None if known < limits.keys => {
                    w.per_key.insert(key.to_owned(), 1);
                    true
                }
                None => false,
            };
        if allowed {
            w.lines += 1;
        } else {
            w.suppressed += 1;
        }
        allowed
    }

    /// Counts an accepted connection (logged at DEBUG; summed up each minute).
    pub fn connected(&self) {
        self.counts.connects.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection that ended.
    pub fn disconnected(&self) {
        self.counts.disconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused CONNECT or request.
    pub fn refused(&self) {
        self.counts.refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts a new window; the summary of the one that ended, if anything happened.
    pub fn roll(&self) -> Option<String> {
        let suppressed = {
            let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
            let suppressed = w.suppressed;
            *w = Window::default();
            suppressed
        };
        let connects = self.counts.connects.swap(0, Ordering::Relaxed);
        let disconnects = self.counts.disconnects.swap(0, Ordering::Relaxed);
        let refusals = self.counts.refusals.swap(0, Ordering::Relaxed);
        if connects + disconnects + refusals + suppressed == 0 {
            return None;
        }
        let mut line = format!(
            "in the last {} s: {connects} connection(s) accepted, {disconnects} ended, \
             {refusals} refused",
            WINDOW.as_secs()
        );
        if suppressed > 0 {
            line.push_str(&format!(
                "; {suppressed} log line(s) about clients held back (see /metrics for every count)"
            ));
        }
        Some(line)
    }

    /// Writes the summary line every [`WINDOW`].
    pub fn spawn_summary(self: &Arc<Self>) -> JoinHandle<()> {
        let budget = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(WINDOW);
            every.tick().await;
            loop {
                every.tick().await;
                if let Some(line) = budget.roll() {
                    tracing::info!("{line}");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_and_all_keys_are_bounded_per_window() {
        let budget = LogBudget::new(Limits {
            per_key: 2,
            total: 5,
            keys: 3,
        });
        assert!(budget.allow("a") && budget.allow("a"));
        assert!(!budget.allow("a"), "a third line about 'a' is held back");
        assert!(budget.allow("b") && budget.allow("c"));
        assert!(!budget.allow("d"), "a fourth key is over the key table");
        assert!(budget.allow("b"));
        assert!(!budget.allow("c"), "five lines in all");
        budget.refused();
        let summary = budget.roll().expect("something happened");
        assert!(summary.contains("1 refused"), "{summary}");
        assert!(
            summary.contains("3 log line(s) about clients held back"),
            "{summary}"
        );
        assert!(budget.allow("a"), "a new window");
        assert_eq!(budget.roll(), None, "a quiet window says nothing");
    }

    #[test]
    fn ten_thousand_refusals_make_a_bounded_number_of_lines() {
        let budget = LogBudget::default();
        let written = (0..10_000)
            .filter(|i| budget.allow(&format!("10.0.{}.{}", i / 256, i % 256)))
            .count();
        assert_eq!(written, 120);
    }
}
