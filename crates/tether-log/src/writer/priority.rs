//! The writer thread does not preempt the threads that append. On Linux it runs under
//! `SCHED_BATCH`: the same share of the CPU as any thread, but its wake-up does not
//! interrupt the running one. Without it, each append woke the writer onto the core of
//! the connection that queued it, the writer found that connection's thread busy
//! (see [`appenders`](crate::appenders)) and went back to sleep: two context switches
//! per group commit for nothing, and a worse tail. Measured at 10,000 msg/s on one
//! core: 38–43 µs of server CPU per message against 52–59, PUBACK p99 2.1–2.7 ms
//! against 20–48 ms; saturation no worse (BENCHMARKS.md).
//!
//! The fsync is the exception while a low-priority thread is awake
//! ([`yielders`](crate::yielders)): its completion makes a whole group's PUBACKs due,
//! and under `SCHED_BATCH` they waited for that thread's slice (a connect flood's
//! handshakes; on a virtual disk that made the devices' p99 1.6–1.9× higher). So the
//! writer waits for the disk under the default policy then, and returns to
//! `SCHED_BATCH` before it waits for appends again: two system calls per group commit,
//! only while such a thread is awake.

use std::cell::Cell;

thread_local! {
    /// Whether this thread runs under `SCHED_BATCH` (set by [`yield_to_appenders`]).
    static BATCH: Cell<bool> = const { Cell::new(false) };
}

/// Puts the calling thread under `SCHED_BATCH` (Linux; elsewhere nothing). Best effort:
/// a refusal (a seccomp filter, say) leaves the default policy, and is logged.
pub(crate) fn yield_to_appenders() {
    match set_batch(true) {
        Ok(()) => BATCH.set(true),
        Err(e) => tracing::debug!(
            error = %e,
            "telemetry log: the writer thread keeps the default scheduling policy"
        ),
    }
}

/// Runs `wait` (an fsync) so that its end wakes this thread at once if a low-priority
/// thread holds the core: under the default policy while one is awake (see the module
/// comment), under `SCHED_BATCH` otherwise. A refused switch leaves the policy as it
/// was.
pub(crate) fn wait_for_disk<T>(wait: impl FnOnce() -> T) -> T {
    if !BATCH.get() || !crate::yielders::any_awake() {
        return wait();
    }
    let switched = set_batch(false).is_ok();
    let result = wait();
    if switched && set_batch(true).is_err() {
        // Appends now wake the writer onto their own core, as without
        // SCHED_BATCH; stop switching.
        BATCH.set(false);
        tracing::debug!("telemetry log: the writer thread could not return to SCHED_BATCH");
    }
    result
}

/// Switches the calling thread between `SCHED_BATCH` and the default policy.
#[cfg(target_os = "linux")]
fn set_batch(batch: bool) -> std::io::Result<()> {
    let policy = if batch {
        libc::SCHED_BATCH
    } else {
        libc::SCHED_OTHER
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param` for the duration of the call only;
    // pid 0 is the calling thread, whose policy is all that changes (its nice stays).
    #[allow(unsafe_code)]
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_batch(_batch: bool) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn policy() -> i32 {
        // SAFETY: no arguments but the calling thread's pid 0.
        #[allow(unsafe_code)]
        unsafe {
            libc::sched_getscheduler(0)
        }
    }

    // One test: the yielders' gauge is the process's, and tests run in parallel
    // (this is its only test).
    #[test]
    fn the_disk_wait_runs_under_the_default_policy_only_while_a_yielder_is_awake() {
        std::thread::spawn(|| {
            yield_to_appenders();
            assert_eq!(policy(), libc::SCHED_BATCH);
            // Nobody yields: the wait keeps SCHED_BATCH.
            crate::yielders::parking(); // never counted: changes nothing
            assert_eq!(wait_for_disk(policy), libc::SCHED_BATCH);

            let (go, woke) = std::sync::mpsc::channel();
            let (stop, stopped) = std::sync::mpsc::channel::<()>();
            let yielder = std::thread::spawn(move || {
                crate::yielders::unparked();
                crate::yielders::unparked(); // counted once
                go.send(()).expect("send");
                let _ = stopped.recv();
                crate::yielders::parking();
                crate::yielders::parking(); // and never below zero
            });
            woke.recv().expect("yielder started");
            assert_eq!(wait_for_disk(policy), libc::SCHED_OTHER, "during the wait");
            assert_eq!(policy(), libc::SCHED_BATCH, "back after it");
            stop.send(()).expect("stop");
            yielder.join().expect("yielder");
            assert_eq!(wait_for_disk(policy), libc::SCHED_BATCH);
        })
        .join()
        .expect("the test thread");
    }
}
