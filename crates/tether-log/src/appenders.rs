//! Whether the threads that append are busy: a group commit that finds them busy
//! waits for what they are about to append, so that one fsync covers it.
//!
//! The writer commits whatever it has as soon as it has anything. When appends come
//! faster than fsyncs complete, every fsync then covers only what arrived during the
//! previous one, a few messages, and on a virtual disk an fsync costs about as much
//! CPU as handling ten messages. A server's async worker threads tell this module when
//! they go to sleep and wake up ([`parking`] and [`unparked`], e.g. tokio's
//! `on_thread_park` and `on_thread_unpark`); with [`LogConfig::busy_wait`] set, a
//! group commit waits while any of them is awake, up to that long, then takes what
//! arrived meanwhile. A thread that parks has nothing left to do, and so nothing more
//! to append: a quiet server commits at once, as without it.
//!
//! One gauge per process (the runtime whose threads append). Threads that never call
//! [`unparked`] are never counted: without the hooks nothing ever waits.
//!
//! [`LogConfig::busy_wait`]: crate::LogConfig::busy_wait

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::awake::AwakeThreads;

thread_local! {
    /// Whether this thread is counted in [`BUSY`].
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Appending threads awake now.
static BUSY: AwakeThreads = AwakeThreads::new(&COUNTED);
/// Writers waiting in [`wait_until_idle`].
static WAITING: AtomicUsize = AtomicUsize::new(0);
static GATE: Mutex<()> = Mutex::new(());
static IDLE: Condvar = Condvar::new();

/// This thread woke up to work (tokio's `on_thread_unpark`).
pub fn unparked() {
    BUSY.unparked();
}

/// This thread has nothing left to do and goes to sleep (tokio's `on_thread_park`;
/// also `on_thread_stop`, so that a stopped thread is not counted).
pub fn parking() {
    if BUSY.parking() == Some(0) && WAITING.load(Ordering::SeqCst) > 0 {
        // Under the lock: a writer that saw a busy thread is waiting by now.
        let _guard = GATE.lock();
        IDLE.notify_all();
    }
}

/// Whether an appending thread is awake.
pub(crate) fn busy() -> bool {
    BUSY.any()
}

/// Waits until no appending thread is awake, or at most `max`. True if it waited.
pub(crate) fn wait_until_idle(max: Duration) -> bool {
    if max.is_zero() || !busy() {
        return false;
    }
    WAITING.fetch_add(1, Ordering::SeqCst);
    let guard = GATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The condition variable keeps the deadline across spurious wake-ups.
    drop(IDLE.wait_timeout_while(guard, max, |()| busy()));
    WAITING.fetch_sub(1, Ordering::SeqCst);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the gauge is the process's, and tests run in parallel.
    #[test]
    #[allow(clippy::disallowed_methods)] // how long a wait took is what is checked
    fn a_writer_waits_while_a_thread_is_busy_and_no_longer() {
        use std::time::Instant;

        assert!(!wait_until_idle(Duration::from_secs(5)), "nobody counted");
        parking(); // never counted: changes nothing
        assert!(!busy());

        let (go, woke) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            unparked();
            unparked(); // counted once
            go.send(()).expect("send");
            std::thread::sleep(Duration::from_millis(100));
            parking();
        });
        woke.recv().expect("worker started");
        assert!(busy());
        let start = Instant::now();
        assert!(wait_until_idle(Duration::from_secs(10)));
        let waited = start.elapsed();
        assert!(!busy());
        assert!(
            waited < Duration::from_secs(5),
            "woken when the thread parked, not at the limit: {waited:?}"
        );
        worker.join().expect("worker");

        // A thread that stays busy: the wait ends at its limit.
        let (go, woke) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            unparked();
            go.send(()).expect("send");
            let _ = stopped.recv();
            parking();
        });
        woke.recv().expect("worker started");
        let start = Instant::now();
        assert!(wait_until_idle(Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(busy());
        stop.send(()).expect("stop");
        worker.join().expect("worker");
        assert!(!busy());
    }
}
