//! A process-wide count of the threads of one kind that are awake, each counted once
//! however often it reports: what [`appenders`](crate::appenders) and
//! [`yielders`](crate::yielders) keep, fed by a runtime's park and unpark hooks.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::LocalKey;

/// Threads awake now. `counted` is the kind's own thread-local flag, so that a thread
/// counted in one gauge is not taken as counted in another.
pub(crate) struct AwakeThreads {
    count: AtomicUsize,
    counted: &'static LocalKey<Cell<bool>>,
}

impl AwakeThreads {
    pub(crate) const fn new(counted: &'static LocalKey<Cell<bool>>) -> Self {
        Self {
            count: AtomicUsize::new(0),
            counted,
        }
    }

    /// The calling thread is awake (counted once).
    pub(crate) fn unparked(&self) {
        let _ = self.counted.try_with(|counted| {
            if !counted.replace(true) {
                self.count.fetch_add(1, Ordering::SeqCst);
            }
        });
    }

    /// The calling thread goes to sleep. Returns how many are left awake, or `None`
    /// when it was not counted (the count is unchanged then).
    pub(crate) fn parking(&self) -> Option<usize> {
        self.counted
            .try_with(|counted| {
                counted
                    .replace(false)
                    .then(|| self.count.fetch_sub(1, Ordering::SeqCst) - 1)
            })
            .ok()
            .flatten()
    }

    /// Whether any thread of this kind is awake.
    pub(crate) fn any(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }
}
