//! The writer thread does not preempt the threads that append. On Linux it runs under
//! `SCHED_BATCH`: the same share of the CPU as any thread, but its wake-up does not
//! interrupt the running one. Without it, each append woke the writer onto the core of
//! the connection that queued it, the writer found that connection's thread busy
//! (see [`appenders`](crate::appenders)) and went back to sleep: two context switches
//! per group commit for nothing, and a worse tail. Measured at 10,000 msg/s on one
//! core: 38–43 µs of server CPU per message against 52–59, PUBACK p99 2.1–2.7 ms
//! against 20–48 ms; saturation no worse (BENCHMARKS.md).

/// Puts the calling thread under `SCHED_BATCH` (Linux; elsewhere nothing). Best effort:
/// a refusal (a seccomp filter, say) leaves the default policy, and is logged.
pub(crate) fn yield_to_appenders() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads `param` for the duration of the call only;
        // pid 0 is the calling thread, whose policy is all that changes.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "telemetry log: the writer thread keeps the default scheduling policy"
            );
        }
    }
}
