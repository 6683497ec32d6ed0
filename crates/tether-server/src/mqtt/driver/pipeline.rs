//! The QoS 1 ack pipeline of one connection, sans-io: device messages whose appends
//! are in flight, in arrival order. A PUBACK leaves only when its message and every
//! message before it have settled ([MQTT-4.6.0-2]), a DUP resend of a message still in
//! flight is recognised, and the pipeline has a cap past which the driver stops reading.
//!
//! ```text
//!  submit(ack, kind, task) ──▶ [oldest … newest] ◀── submit_settled (attach, detach:
//!                                 │                   ordered, nothing to wait for)
//!  driver awaits oldest_running() ┘ finish_oldest(result)
//!  next_settled_or(finished?) ──▶ Settled { ack, kind, result } ──▶ PUBACK, or close
//!     (appends behind the oldest that finished too settle in the same wake)
//! ```
//!
//! `H` is whatever the driver waits on (a task handle); the pipeline never polls it,
//! so tests drive it with plain values.

use std::collections::VecDeque;

use tether_mqtt::PacketId;

use crate::bridge::uplink::UplinkError;

/// Device messages in flight at once per connection by default.
pub(crate) const DEFAULT_CAP: usize = 64;

/// What a pipeline entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendKind {
    /// Telemetry, appended to the sink.
    Event,
    /// A state report, stored in the registry.
    State,
    /// A gateway's attach or detach: ordered, nothing to store.
    Control,
}

impl AppendKind {
    /// The `kind` label of metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            AppendKind::Event => "event",
            AppendKind::State => "state",
            AppendKind::Control => "control",
        }
    }
}

/// Why a message was not made durable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AppendError {
    /// The sink or the store said no, or did not answer in time.
    #[error("{0}")]
    Uplink(#[from] UplinkError),
    /// The task doing the append ended without an answer.
    #[error("the append task failed: {0}")]
    Task(String),
}

impl AppendError {
    /// The `cause` label of `tether_mqtt_append_failures_total`: `timeout`, `log`,
    /// `nats`, `sink`, `store` or `task`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            AppendError::Uplink(e) => e.label(),
            AppendError::Task(_) => "task",
        }
    }
}

/// A message whose turn has come: acknowledge it, or act on its failure.
#[derive(Debug)]
pub(crate) struct Settled {
    /// The packet id to acknowledge (QoS 1), if any.
    pub(crate) ack: Option<PacketId>,
    /// What it was.
    pub(crate) kind: AppendKind,
    /// Whether it is durable.
    pub(crate) result: Result<(), AppendError>,
}

#[derive(Debug)]
enum State<H> {
    Running(H),
    Done(Result<(), AppendError>),
}

#[derive(Debug)]
struct Entry<H> {
    ack: Option<PacketId>,
    kind: AppendKind,
    state: State<H>,
}

/// Room a drained pipeline keeps; past it the queue is released.
const ENTRIES_KEPT: usize = 16;

/// The ordered appends of one connection.
#[derive(Debug)]
pub(crate) struct AckPipeline<H> {
    entries: VecDeque<Entry<H>>,
    cap: usize,
}

impl<H> AckPipeline<H> {
    /// An empty pipeline holding at most `cap` messages.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Whether another message may be submitted (the driver reads the socket only then).
    pub(crate) fn can_accept(&self) -> bool {
        self.entries.len() < self.cap
    }

    /// Entries the queue has room for.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Messages in flight or waiting for their turn.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `id` is a QoS 1 message still in flight: a DUP resend of it is dropped,
    /// and the first copy's PUBACK answers both.
    pub(crate) fn is_in_flight(&self, id: PacketId) -> bool {
        self.entries.iter().any(|e| e.ack == Some(id))
    }

    /// Adds a message whose append `handle` is running.
    pub(crate) fn submit(&mut self, ack: Option<PacketId>, kind: AppendKind, handle: H) {
        self.entries.push_back(Entry {
            ack,
            kind,
            state: State::Running(handle),
        });
    }

    /// Adds a message with nothing to wait for, acknowledged in its turn.
    pub(crate) fn submit_settled(&mut self, ack: Option<PacketId>, kind: AppendKind) {
        self.entries.push_back(Entry {
            ack,
            kind,
            state: State::Done(Ok(())),
        });
    }

    /// The oldest message's append, while it runs: nothing after it can be
    /// acknowledged first, so it is the only one worth waiting for.
    pub(crate) fn oldest_running(&mut self) -> Option<&mut H> {
        match self.entries.front_mut() {
            Some(Entry {
                state: State::Running(handle),
                ..
            }) => Some(handle),
            _ => None,
        }
    }

    /// The oldest message's append, while it runs (to look at, not to wait on).
    pub(crate) fn oldest(&self) -> Option<&H> {
        match self.entries.front() {
            Some(Entry {
                state: State::Running(handle),
                ..
            }) => Some(handle),
            _ => None,
        }
    }

    /// Records the result of the oldest message's append.
    pub(crate) fn finish_oldest(&mut self, result: Result<(), AppendError>) {
        if let Some(entry) = self.entries.front_mut()
            && matches!(entry.state, State::Running(_))
        {
            entry.state = State::Done(result);
        }
    }

    /// The oldest message, once it has settled.
    #[cfg(test)]
    pub(crate) fn next_settled(&mut self) -> Option<Settled> {
        self.next_settled_or(|_| None)
    }

    /// The oldest message, once it has settled or `finished` says its append has
    /// (without waiting for it: `None` while it runs). The driver wakes for the oldest
    /// append only, and the ones behind it often finished with it (one group commit).
    pub(crate) fn next_settled_or(
        &mut self,
        finished: impl FnOnce(&mut H) -> Option<Result<(), AppendError>>,
    ) -> Option<Settled> {
        let front = self.entries.front_mut()?;
        if let State::Running(handle) = &mut front.state {
            front.state = State::Done(finished(handle)?);
        }
        let entry = self.entries.pop_front()?;
        if self.entries.is_empty() && self.entries.capacity() > ENTRIES_KEPT {
            // A burst is acknowledged: give its room back rather than keep it for
            // the connection's lifetime.
            self.entries = VecDeque::new();
        }
        let State::Done(result) = entry.state else {
            return None;
        };
        Some(Settled {
            ack: entry.ack,
            kind: entry.kind,
            result,
        })
    }

    /// Empties the pipeline (the connection is gone): the appends still running finish
    /// on their own, durable but unacknowledged, so the device resends (at least once).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).expect("non-zero")
    }

    /// Settles what can be, as the driver does after each wake.
    fn acks(p: &mut AckPipeline<u32>) -> Vec<Option<u16>> {
        std::iter::from_fn(|| p.next_settled())
            .map(|s| {
                assert!(s.result.is_ok());
                s.ack.map(PacketId::get)
            })
            .collect()
    }

    #[test]
    fn a_drained_burst_gives_its_room_back() {
        let mut p = AckPipeline::new(1000);
        for n in 1..=500u16 {
            p.submit_settled(Some(id(n)), AppendKind::Event);
        }
        assert!(p.capacity() >= 500);
        assert_eq!(acks(&mut p).len(), 500);
        assert!(p.capacity() <= ENTRIES_KEPT, "kept {}", p.capacity());
    }

    #[test]
    fn acknowledgements_leave_in_arrival_order() {
        let mut p = AckPipeline::new(8);
        p.submit(Some(id(1)), AppendKind::Event, 10);
        p.submit(None, AppendKind::Event, 11);
        p.submit(Some(id(3)), AppendKind::State, 12);
        assert_eq!(
            acks(&mut p),
            Vec::<Option<u16>>::new(),
            "nothing settled yet"
        );
        assert_eq!(p.oldest_running(), Some(&mut 10));
        p.finish_oldest(Ok(()));
        assert_eq!(acks(&mut p), vec![Some(1)]);
        assert_eq!(p.oldest_running(), Some(&mut 11));
        p.finish_oldest(Ok(()));
        // Only the oldest running append is waited on; a second finish before it is
        // taken out changes nothing.
        p.finish_oldest(Err(AppendError::Task("not this one".into())));
        assert_eq!(acks(&mut p), vec![None]);
        assert_eq!(p.oldest_running(), Some(&mut 12));
        p.finish_oldest(Ok(()));
        assert_eq!(acks(&mut p), vec![Some(3)]);
        assert_eq!(p.len(), 0);
        assert_eq!(p.oldest_running(), None);
    }

    /// One wake for the oldest append settles every append behind it that finished
    /// too (one group commit): their PUBACKs leave together. One still running stops
    /// the walk, and what is behind it waits, even if finished.
    #[test]
    fn appends_that_finished_with_the_oldest_settle_in_the_same_wake() {
        let mut p = AckPipeline::new(8);
        for n in 1..=5u16 {
            p.submit(Some(id(n)), AppendKind::Event, u32::from(n));
        }
        p.finish_oldest(Ok(()));
        let finished = [2u32, 3, 5];
        let mut asked = Vec::new();
        let settled: Vec<u16> = std::iter::from_fn(|| {
            p.next_settled_or(|handle| {
                asked.push(*handle);
                finished.contains(handle).then_some(Ok(()))
            })
        })
        .filter_map(|s| s.ack.map(PacketId::get))
        .collect();
        assert_eq!(settled, vec![1, 2, 3], "4 runs: 5 waits behind it");
        assert_eq!(asked, vec![2, 3, 4], "5 is not asked before 4");
        assert_eq!(p.oldest_running(), Some(&mut 4));
        // A failure found this way is reported as one the driver waited for.
        let failed = p
            .next_settled_or(|_| Some(Err(AppendError::Task("gone".into()))))
            .expect("settled");
        assert_eq!((failed.ack, failed.result.is_err()), (Some(id(4)), true));
    }

    #[test]
    fn a_settled_entry_waits_for_the_ones_before_it() {
        let mut p = AckPipeline::new(8);
        p.submit(Some(id(1)), AppendKind::Event, 10);
        p.submit_settled(Some(id(2)), AppendKind::Control);
        assert_eq!(acks(&mut p), Vec::<Option<u16>>::new(), "2 waits for 1");
        p.finish_oldest(Ok(()));
        assert_eq!(acks(&mut p), vec![Some(1), Some(2)]);
        p.submit_settled(Some(id(4)), AppendKind::Control);
        assert_eq!(acks(&mut p), vec![Some(4)], "alone, it goes at once");
    }

    #[test]
    fn a_duplicate_is_recognised_while_its_first_copy_is_in_flight() {
        let mut p = AckPipeline::new(8);
        p.submit(Some(id(7)), AppendKind::Event, 1);
        assert!(p.is_in_flight(id(7)));
        assert!(!p.is_in_flight(id(8)));
        p.finish_oldest(Ok(()));
        assert_eq!(acks(&mut p), vec![Some(7)]);
        assert!(
            !p.is_in_flight(id(7)),
            "acknowledged: a new message may reuse it"
        );
    }

    #[test]
    fn the_cap_stops_new_messages_until_the_oldest_settles() {
        let mut p = AckPipeline::new(2);
        p.submit(Some(id(1)), AppendKind::Event, 1);
        assert!(p.can_accept());
        p.submit(Some(id(2)), AppendKind::Event, 2);
        assert!(!p.can_accept());
        p.finish_oldest(Ok(()));
        assert!(!p.can_accept(), "settled but not yet taken out");
        assert_eq!(acks(&mut p), vec![Some(1)]);
        assert!(p.can_accept());
        assert_eq!(AckPipeline::<u8>::new(0).cap, 1, "a cap of 0 would wedge");
    }

    #[test]
    fn a_failed_append_is_reported_with_its_cause_and_nothing_after_it_is_acked_first() {
        let mut p = AckPipeline::new(8);
        p.submit(Some(id(1)), AppendKind::Event, 1);
        p.submit(Some(id(2)), AppendKind::State, 2);
        p.finish_oldest(Err(UplinkError::Timeout(Duration::from_secs(5)).into()));
        let failed = p.next_settled().expect("settled");
        assert_eq!(failed.ack, Some(id(1)));
        assert_eq!(failed.kind, AppendKind::Event);
        let error = failed.result.expect_err("failed");
        assert_eq!(error.label(), "timeout");
        assert_eq!(
            error.to_string(),
            "the telemetry sink did not accept it within 5 s"
        );
        assert!(p.next_settled().is_none(), "2 is still running");
        p.clear();
        assert_eq!(p.len(), 0);
        assert!(p.can_accept());
    }
}
