//! Whether a thread whose work may wait for the log is awake: then the writer's
//! wake-up at the end of an fsync preempts it.
//!
//! The writer runs under `SCHED_BATCH` so that an append does not wake it onto the
//! core of the thread that appended (see `writer/priority.rs`). The price is at the
//! other end of a group commit: the fsync's completion cannot preempt either, and the
//! PUBACKs of the whole group wait for whatever holds the core to finish its slice.
//! During a connect flood that is a TLS handshake on a low-priority admission thread,
//! for up to a few milliseconds. A server's low-priority threads tell this module when
//! they wake up and go to sleep ([`unparked`] and [`parking`], e.g. tokio's
//! `on_thread_unpark` and `on_thread_park`); while one is awake, the writer waits for
//! the disk under the default policy.
//!
//! One gauge per process. Threads that never call [`unparked`] are never counted:
//! without the hooks the writer always waits under `SCHED_BATCH`.

use std::cell::Cell;

use crate::awake::AwakeThreads;

thread_local! {
    /// Whether this thread is counted in [`AWAKE`].
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Yielding threads awake now.
static AWAKE: AwakeThreads = AwakeThreads::new(&COUNTED);

/// This low-priority thread woke up to work (tokio's `on_thread_unpark`; also
/// `on_thread_start`: a thread starts awake).
pub fn unparked() {
    AWAKE.unparked();
}

/// This low-priority thread goes to sleep (tokio's `on_thread_park`; also
/// `on_thread_stop`, so that a stopped thread is not counted).
pub fn parking() {
    AWAKE.parking();
}

/// Whether a yielding thread is awake.
pub fn any_awake() -> bool {
    AWAKE.any()
}

// Tested with the writer's policy, in `writer/priority.rs`: the gauge is the process's.
