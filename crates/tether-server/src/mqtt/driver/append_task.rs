//! What a connection waits on for one message's append. Telemetry for the embedded
//! log is queued straight to its writer thread and the connection holds the receipt:
//! no task and no timer per message (the driver's own timer enforces the sink
//! timeout, on the oldest append only, since nothing behind it can be acknowledged
//! first). State reports, NATS and a full writer queue take a task of their own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::FutureExt as _;
use tether_mqtt::Timestamp;
use tether_route::Receipt;
use tokio::task::JoinHandle;

use super::pipeline::AppendError;

/// One append in flight: resolves to `Ok` once the message is durable.
#[derive(Debug)]
pub(crate) enum AppendTask {
    /// A task of its own, which enforces the sink timeout itself.
    Spawned(JoinHandle<Result<(), AppendError>>),
    /// Queued to the sink; past `deadline` the driver gives up on it.
    Queued {
        /// Resolves when the sink has made it durable, or failed to.
        receipt: Receipt,
        /// When the sink timeout runs out.
        deadline: Timestamp,
    },
}

impl AppendTask {
    /// The result, if the append has finished (without waiting).
    pub(crate) fn finished(&mut self) -> Option<Result<(), AppendError>> {
        if let AppendTask::Spawned(handle) = self
            && !handle.is_finished()
        {
            return None;
        }
        self.now_or_never()
    }

    /// When the driver stops waiting for it (a task enforces its own timeout).
    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        match self {
            AppendTask::Spawned(_) => None,
            AppendTask::Queued { deadline, .. } => Some(*deadline),
        }
    }
}

impl Future for AppendTask {
    type Output = Result<(), AppendError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            AppendTask::Spawned(handle) => Pin::new(handle)
                .poll(cx)
                .map(|joined| joined.unwrap_or_else(|e| Err(AppendError::Task(e.to_string())))),
            AppendTask::Queued { receipt, .. } => Pin::new(receipt)
                .poll(cx)
                .map(|result| Ok(result.map_err(crate::bridge::uplink::UplinkError::from)?)),
        }
    }
}
