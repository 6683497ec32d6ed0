//! `StreamingPull`: one inbound task applies the client's acks, deadline changes
//! and stream settings; one outbound task pulls within the client's flow control
//! (`max_outstanding_messages`) and sends. Leases outlive the stream, as on
//! Pub/Sub: a client that reconnects still acks what it received.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use googleapis_tonic_google_pubsub_v1::google::pubsub::v1 as pb;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::convert;
use crate::engine::{ACK_DEADLINE_S, Commit, MAX_PULL, PubSub, Subscription};
use crate::ledger::StreamId;

/// What the client receives.
pub type ResponseStream = ReceiverStream<Result<pb::StreamingPullResponse, Status>>;

/// How often an idle stream checks that its client and subscription are still there.
const RECHECK: Duration = Duration::from_secs(5);
/// In flight per stream when the client sets no `max_outstanding_messages`.
const DEFAULT_OUTSTANDING: usize = 1000;

/// The stream's settings, changed by the client as it goes.
#[derive(Debug)]
struct Flow {
    deadline_s: AtomicU32,
    max_outstanding: AtomicUsize,
    closed: AtomicBool,
}

fn stream_deadline(seconds: i32) -> Result<u32, Status> {
    u32::try_from(seconds)
        .ok()
        .filter(|s| ACK_DEADLINE_S.contains(s))
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "stream_ack_deadline_seconds is {seconds}: use 10 to 600"
            ))
        })
}

fn max_outstanding(n: i64) -> usize {
    usize::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_OUTSTANDING)
}

/// Applies a request's acks and deadline changes. Refused ack ids are not an
/// error on a stream (Pub/Sub's at-least-once streams do not report them): the
/// messages are delivered again.
async fn apply(
    pubsub: &PubSub,
    sub: &Arc<Subscription>,
    r: &pb::StreamingPullRequest,
) -> Result<(), Status> {
    if r.modify_deadline_seconds.len() != r.modify_deadline_ack_ids.len() {
        return Err(Status::invalid_argument(format!(
            "modify_deadline_seconds has {} entries and modify_deadline_ack_ids {}: they pair up",
            r.modify_deadline_seconds.len(),
            r.modify_deadline_ack_ids.len()
        )));
    }
    if !r.ack_ids.is_empty() {
        let report = pubsub.acknowledge(sub, &r.ack_ids, Commit::Queue).await?;
        if !(report.expired.is_empty() && report.forged.is_empty()) {
            tracing::debug!(
                subscription = sub.name(),
                expired = report.expired.len(),
                forged = report.forged.len(),
                "stream acks refused"
            );
        }
    }
    // Clients send one deadline for a run of ids: one ledger pass per run.
    let (ids, seconds) = (&r.modify_deadline_ack_ids, &r.modify_deadline_seconds);
    let mut start = 0;
    while start < ids.len() {
        let end = (start..ids.len())
            .find(|&i| seconds[i] != seconds[start])
            .unwrap_or(ids.len());
        pubsub
            .modify_ack_deadline(sub, &ids[start..end], seconds[start])
            .await?;
        start = end;
    }
    Ok(())
}

/// Opens a stream: checks the first request, then runs the two tasks.
pub(crate) async fn start(
    pubsub: Arc<PubSub>,
    streams: Arc<Semaphore>,
    max_streams: usize,
    stop: watch::Receiver<bool>,
    mut inbound: Streaming<pb::StreamingPullRequest>,
) -> Result<ResponseStream, Status> {
    let first = inbound.message().await?.ok_or_else(|| {
        Status::invalid_argument(
            "the stream ended before its first request (which names the subscription)",
        )
    })?;
    let sub = pubsub.subscription(&first.subscription).await?;
    let deadline = stream_deadline(first.stream_ack_deadline_seconds)?;
    let permit = streams.try_acquire_owned().map_err(|_| {
        Status::resource_exhausted(format!(
            "{max_streams} streaming pulls are open, the most this server allows \
             (--pubsub-max-streams): close idle subscribers or raise the limit"
        ))
    })?;
    apply(&pubsub, &sub, &first).await?;
    let flow = Arc::new(Flow {
        deadline_s: AtomicU32::new(deadline),
        max_outstanding: AtomicUsize::new(max_outstanding(first.max_outstanding_messages)),
        closed: AtomicBool::new(false),
    });
    let (tx, rx) = mpsc::channel(4);
    let stream = pubsub.stream_id();
    tokio::spawn(read_requests(
        Arc::clone(&pubsub),
        Arc::clone(&sub),
        Arc::clone(&flow),
        inbound,
        tx.clone(),
    ));
    tokio::spawn(send_messages(pubsub, sub, flow, stream, tx, stop, permit));
    Ok(ReceiverStream::new(rx))
}

async fn read_requests(
    pubsub: Arc<PubSub>,
    sub: Arc<Subscription>,
    flow: Arc<Flow>,
    mut inbound: Streaming<pb::StreamingPullRequest>,
    tx: mpsc::Sender<Result<pb::StreamingPullResponse, Status>>,
) {
    while let Ok(Some(r)) = inbound.message().await {
        if r.stream_ack_deadline_seconds != 0 {
            match stream_deadline(r.stream_ack_deadline_seconds) {
                Ok(d) => flow.deadline_s.store(d, Ordering::Relaxed),
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    break;
                }
            }
        }
        if r.max_outstanding_messages != 0 {
            flow.max_outstanding.store(
                max_outstanding(r.max_outstanding_messages),
                Ordering::Relaxed,
            );
        }
        if let Err(status) = apply(&pubsub, &sub, &r).await {
            let _ = tx.send(Err(status)).await;
            break;
        }
    }
    flow.closed.store(true, Ordering::Relaxed);
}

async fn send_messages(
    pubsub: Arc<PubSub>,
    sub: Arc<Subscription>,
    flow: Arc<Flow>,
    stream: StreamId,
    tx: mpsc::Sender<Result<pb::StreamingPullResponse, Status>>,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    metrics::gauge!("tether_pubsub_streams").increment(1.0);
    deliver(&pubsub, &sub, &flow, stream, &tx, &stop).await;
    metrics::gauge!("tether_pubsub_streams").decrement(1.0);
}

async fn deliver(
    pubsub: &Arc<PubSub>,
    sub: &Arc<Subscription>,
    flow: &Flow,
    stream: StreamId,
    tx: &mpsc::Sender<Result<pb::StreamingPullResponse, Status>>,
    stop: &watch::Receiver<bool>,
) {
    loop {
        if flow.closed.load(Ordering::Relaxed) || tx.is_closed() {
            return;
        }
        if *stop.borrow() {
            let _ = tx
                .send(Err(Status::unavailable(
                    "the server is shutting down; reconnect",
                )))
                .await;
            return;
        }
        if !pubsub.is_live(sub) {
            let _ = tx
                .send(Err(Status::not_found(format!(
                    "subscription {:?} was deleted",
                    sub.name()
                ))))
                .await;
            return;
        }
        let room = flow
            .max_outstanding
            .load(Ordering::Relaxed)
            .saturating_sub(sub.outstanding(stream))
            .min(MAX_PULL);
        if room == 0 {
            // Wait for an ack, a nack or an expiry to make room.
            let _ = tokio::time::timeout(RECHECK, sub.room_freed()).await;
            continue;
        }
        let deadline = flow.deadline_s.load(Ordering::Relaxed);
        let deliveries = match pubsub
            .pull(sub, room, stream, deadline, Some(Instant::now() + RECHECK))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        if deliveries.is_empty() {
            continue;
        }
        // The client may have gone while the pull waited: then the messages go to
        // another subscriber now, not after the ack deadline.
        let Ok(permit) = tx.reserve().await else {
            pubsub.give_back(sub, &deliveries).await;
            return;
        };
        if flow.closed.load(Ordering::Relaxed) {
            pubsub.give_back(sub, &deliveries).await;
            return;
        }
        permit.send(Ok(pb::StreamingPullResponse {
            received_messages: deliveries.into_iter().map(convert::received).collect(),
            ..pb::StreamingPullResponse::default()
        }));
    }
}
