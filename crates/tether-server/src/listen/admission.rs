//! Admission work, the TLS handshake and a CONNECT's authentication, on threads that
//! yield to connected devices.
//!
//! A connect costs a few hundred microseconds of crypto and lookups; a PUBLISH from a
//! connected device, tens. On the device threads a flood of connects (good tokens or
//! bad) queues in front of every PUBACK. On [`Admission::start`]'s threads, at the
//! lowest scheduling priority, the kernel mostly runs a device's PUBLISH first when
//! both are ready, and admission still gets the whole CPU when devices leave it idle.
//! Where priority is not enough (a device thread just woken by a hand-over), the
//! admission thread steps aside ([`step_aside`]), and while these threads are awake
//! the telemetry log's writer preempts them when an fsync completes
//! ([`tether_log::yielders`]).
//!
//! ```text
//!  MQTT: accept, TLS handshake, CONNECT, authentication, the device's first 2 s
//!        ─▶ admission thread (nice 19) ─▶ spawned on the device threads, step_aside()
//!  Admission::run(work) ─▶ admission thread ─▶ the output back to the caller, step_aside()
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// Where admission work runs: inline on the caller's task, or on a pool of
/// low-priority threads. Cheap to clone.
#[derive(Clone, Default)]
pub struct Admission {
    pool: Option<Arc<Pool>>,
}

struct Pool {
    handle: Handle,
    /// Held so that the threads live as long as a clone of the [`Admission`]; taken in
    /// `drop` to shut down without blocking (the last clone may go in async code).
    runtime: Option<Runtime>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.pool.is_some() {
            "Admission(low-priority threads)"
        } else {
            "Admission(inline)"
        })
    }
}

/// The admission threads are gone (the server is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is shutting down")]
pub struct Stopped;

/// Aborts the admission task when the connection that waits for it goes away.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Admission {
    /// Admission work runs on the caller's task, at the priority of device traffic.
    pub fn inline() -> Self {
        Self::default()
    }

    /// Starts `threads` admission threads (at least one) at the lowest priority the
    /// platform gives without privileges (`nice` 19 on Unix).
    ///
    /// # Errors
    /// When the threads cannot be started.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .max_blocking_threads(threads.max(1))
            .thread_name("tether-admit")
            .on_thread_start(|| {
                lower_priority();
                tether_log::yielders::unparked();
            })
            // While these threads are awake, the telemetry log's fsync completion
            // preempts them: the PUBACKs it makes due come first.
            .on_thread_unpark(tether_log::yielders::unparked)
            .on_thread_park(tether_log::yielders::parking)
            .on_thread_stop(tether_log::yielders::parking)
            .enable_all()
            .build()?;
        Ok(Self {
            pool: Some(Arc::new(Pool {
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
            })),
        })
    }

    /// Whether work goes to low-priority threads.
    pub fn is_pooled(&self) -> bool {
        self.pool.is_some()
    }

    /// The admission threads' runtime, when pooled.
    pub fn runtime(&self) -> Option<&Handle> {
        self.pool.as_ref().map(|p| &p.handle)
    }

    /// Runs `work` to completion where admission runs. Dropping the returned future
    /// cancels the work.
    ///
    /// # Errors
    /// [`Stopped`] when the admission threads stopped first.
    pub async fn run<F>(&self, work: F) -> Result<F::Output, Stopped>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Some(pool) = &self.pool else {
            return Ok(work.await);
        };
        // The output goes back over a channel rather than as the task's own result, so
        // that this thread can step aside after the send has woken the caller's thread
        // (a device thread, for the HTTPS bridge's and gRPC's handshakes).
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut task = AbortOnDrop(pool.handle.spawn(async move {
            let output = work.await;
            if tx.send(output).is_ok() {
                step_aside();
            }
        }));
        match rx.await {
            Ok(output) => Ok(output),
            // The task ended without an output: it panicked, or the runtime stopped.
            Err(_) => match (&mut task.0).await {
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                _ => Err(Stopped),
            },
        }
    }
}

/// How long [`step_aside`] asks to sleep. The kernel's timer slack (50 µs by default)
/// comes on top, which is the point: the device thread gets that long.
const STEP_ASIDE: Duration = Duration::from_micros(1);

/// Gives the core to a device thread that this admission thread has just woken, by
/// sleeping for a moment. Called after a connection is handed to the device threads.
///
/// `nice` 19 does not do it. A trace of a connect flood showed a device thread, woken
/// by a hand-over, wait up to 4 ms while the admission thread went on with handshakes
/// until a timer tick. Linux's scheduler (EEVDF) lets the thread on the core finish
/// the slice it was picked for, and holds back a woken thread that has run ahead of
/// its share, both whatever the threads' priorities. A shorter slice, `SCHED_IDLE`
/// and `sched_yield` did not change it: each leaves the admission thread runnable. A
/// sleep takes it off the run queue, and the device thread runs.
pub fn step_aside() {
    std::thread::sleep(STEP_ASIDE);
    #[cfg(test)]
    tests::STEPS.with(|steps| steps.set(steps.get() + 1));
}

/// Lowers the calling thread's scheduling priority. On Linux `nice` is per thread, so
/// the device threads keep theirs.
fn lower_priority() {
    #[cfg(unix)]
    if let Err(e) = rustix::process::nice(19) {
        tracing::debug!(error = %e, "cannot lower the admission threads' priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// How often this thread stepped aside.
        pub(super) static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    fn steps() -> u64 {
        STEPS.with(std::cell::Cell::get)
    }

    #[tokio::test]
    async fn pooled_work_steps_aside_once_its_output_is_sent() {
        let admission = Admission::start(1).expect("admission threads");
        let before = admission.run(async { steps() }).await.expect("ran");
        // One thread: this runs after the first task has stepped aside.
        let after = admission.run(async { steps() }).await.expect("ran");
        assert_eq!(
            after,
            before + 1,
            "the first task's thread stepped aside once"
        );
    }

    #[tokio::test]
    async fn inline_work_runs_on_the_caller() {
        let admission = Admission::inline();
        assert!(!admission.is_pooled());
        let here = std::thread::current().id();
        let there = admission
            .run(async move { std::thread::current().id() })
            .await;
        assert_eq!(there, Ok(here));
    }

    #[tokio::test]
    async fn pooled_work_runs_on_a_niced_admission_thread() {
        let admission = Admission::start(1).expect("admission threads");
        assert!(admission.is_pooled());
        let (name, nice) = admission
            .run(async {
                let name = std::thread::current().name().map(str::to_owned);
                #[cfg(unix)]
                let nice = rustix::process::getpriority_process(None).ok();
                #[cfg(not(unix))]
                let nice: Option<i32> = None;
                (name, nice)
            })
            .await
            .expect("ran");
        assert_eq!(name.as_deref(), Some("tether-admit"));
        #[cfg(target_os = "linux")]
        assert_eq!(nice, Some(19), "admission threads run at nice 19");
    }

    #[tokio::test]
    async fn a_working_admission_thread_lets_the_log_writer_preempt_it() {
        let admission = Admission::start(1).expect("admission threads");
        let awake = admission
            .run(async { tether_log::yielders::any_awake() })
            .await
            .expect("ran");
        assert!(awake, "counted among the threads the log's writer preempts");
    }

    #[tokio::test]
    async fn dropping_the_waiter_cancels_the_work() {
        let admission = Admission::start(1).expect("admission threads");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiter = admission.run(async move {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            let _ = tx.send(());
        });
        // Started, then abandoned: the sender is dropped by the abort, not kept for an
        // hour.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(20), waiter).await;
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(5), rx)
                .await
                .expect("the work was cancelled")
                .is_err()
        );
    }

    /// The thread blocks (a voluntary context switch), rather than yielding or
    /// spinning, which would leave it the only thread the scheduler may pick.
    #[cfg(target_os = "linux")]
    #[test]
    fn stepping_aside_blocks_the_thread() {
        fn voluntary_switches() -> u64 {
            let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("voluntary_ctxt_switches")
        }
        let before = voluntary_switches();
        step_aside();
        assert!(voluntary_switches() > before, "step_aside gave up the core");
    }

    #[test]
    fn the_last_clone_may_go_inside_async_code() {
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let admission = Admission::start(1).expect("admission threads");
        outer.block_on(async move { drop(admission) });
    }
}
