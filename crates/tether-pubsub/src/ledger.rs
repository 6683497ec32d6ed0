//! One subscription's delivery state, sans-io: which messages are acked, which
//! are out on a lease, which are due again. Time is passed in (milliseconds on
//! any monotonic clock); reading the messages is the caller's business.
//!
//! ```text
//!   offsets:  ……acked……│ floor                                 │ next ……never read……
//!                      ├─ leased (deadline, attempt, stream) ──▶ ack ─▶ acked
//!                      │      └─ deadline passes / nack ─▶ due ─▶ leased again
//!                      └─ acked (above the floor, out of order)
//! ```
//!
//! * `floor` is the smallest offset that may still need delivering: everything
//!   below it is acked (or was never a message of this topic: JetStream offsets
//!   have gaps). Only `floor` and the acked offsets above it are persisted, so a
//!   restart delivers again exactly what was not acked.
//! * A delivery is identified by `(offset, attempt)`; an ack or deadline change
//!   for an older attempt is refused as expired, because the message was (or is
//!   being) delivered again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A stream (or unary pull) that holds leases, for flow control.
pub type StreamId = u64;

/// One message out on a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lease {
    attempt: u32,
    deadline_ms: u64,
    stream: StreamId,
}

/// Why an ack or deadline change did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The delivery's lease ended (deadline passed or nacked) and the message is
    /// due again, or was delivered again with a newer attempt.
    Expired,
    /// No such delivery was made since the subscription was loaded.
    Unknown,
}

/// What an ack changed, for the caller to persist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AckOutcome {
    /// Offsets newly acked.
    pub acked: Vec<u64>,
    /// The floor after the acks, if it moved.
    pub new_floor: Option<u64>,
}

/// A subscription's delivery state.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    floor: u64,
    next: u64,
    acked: BTreeSet<u64>,
    leased: BTreeMap<u64, Lease>,
    /// Due again, with the attempt that was last delivered.
    due: BTreeMap<u64, u32>,
    outstanding: HashMap<StreamId, usize>,
}

impl Ledger {
    /// A ledger loaded from storage: `floor` and the acked offsets above it.
    pub fn new(floor: u64, acked: impl IntoIterator<Item = u64>) -> Self {
        Self {
            floor,
            next: floor,
            acked: acked.into_iter().filter(|o| *o >= floor).collect(),
            ..Self::default()
        }
    }

    /// The persisted floor: every message below it is acked.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Where reading new messages continues.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Messages out on a lease held by `stream`.
    pub fn outstanding(&self, stream: StreamId) -> usize {
        self.outstanding.get(&stream).copied().unwrap_or(0)
    }

    /// Messages out on any lease.
    pub fn leased(&self) -> usize {
        self.leased.len()
    }

    /// Messages due again (nacked or expired).
    pub fn due(&self) -> usize {
        self.due.len()
    }

    /// The earliest lease deadline, to wake up for.
    pub fn next_deadline(&self) -> Option<u64> {
        self.leased.values().map(|l| l.deadline_ms).min()
    }

    fn release(&mut self, lease: &Lease) {
        if let Some(n) = self.outstanding.get_mut(&lease.stream) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.outstanding.remove(&lease.stream);
            }
        }
    }

    /// Moves every lease whose deadline is at or before `now_ms` to due.
    /// Returns how many expired.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let ended: Vec<u64> = self
            .leased
            .iter()
            .filter(|(_, l)| l.deadline_ms <= now_ms)
            .map(|(o, _)| *o)
            .collect();
        for offset in &ended {
            if let Some(lease) = self.leased.remove(offset) {
                self.release(&lease);
                self.due.insert(*offset, lease.attempt);
            }
        }
        ended.len()
    }

    /// Takes up to `max` due offsets for delivery again, smallest first, leasing
    /// each to `stream` until `deadline_ms`. Returns `(offset, attempt)`.
    pub fn take_due(&mut self, max: usize, deadline_ms: u64, stream: StreamId) -> Vec<(u64, u32)> {
        let picked: Vec<(u64, u32)> = self.due.iter().take(max).map(|(o, a)| (*o, *a)).collect();
        let mut out = Vec::with_capacity(picked.len());
        for (offset, attempt) in picked {
            self.due.remove(&offset);
            let attempt = attempt.saturating_add(1);
            self.put_lease(offset, attempt, deadline_ms, stream);
            out.push((offset, attempt));
        }
        out
    }

    fn put_lease(&mut self, offset: u64, attempt: u32, deadline_ms: u64, stream: StreamId) {
        self.leased.insert(
            offset,
            Lease {
                attempt,
                deadline_ms,
                stream,
            },
        );
        *self.outstanding.entry(stream).or_insert(0) += 1;
    }

    /// Claims a message read at `offset` from `next` onwards: `Some(attempt)` when
    /// it is to be delivered (first delivery), `None` when it was acked or is out
    /// already (another puller read it first). Moves `next` past it.
    pub fn claim_new(&mut self, offset: u64, deadline_ms: u64, stream: StreamId) -> Option<u32> {
        if self.leased.contains_key(&offset) || self.due.contains_key(&offset) {
            return None;
        }
        self.next = self.next.max(offset + 1);
        if offset < self.floor || self.acked.contains(&offset) {
            return None;
        }
        self.put_lease(offset, 1, deadline_ms, stream);
        Some(1)
    }

    /// The reader found nothing below `first_kept` (retention removed it): offsets
    /// below it are gone, and are neither due nor leased any more.
    pub fn forget_below(&mut self, first_kept: u64) -> Option<u64> {
        if first_kept <= self.floor {
            return None;
        }
        let gone: Vec<u64> = self.leased.range(..first_kept).map(|(o, _)| *o).collect();
        for offset in gone {
            if let Some(lease) = self.leased.remove(&offset) {
                self.release(&lease);
            }
        }
        self.due = self.due.split_off(&first_kept);
        self.next = self.next.max(first_kept);
        self.advance_floor()
    }

    /// Drops one due offset the reader no longer has.
    pub fn forget(&mut self, offset: u64) -> Option<u64> {
        if let Some(lease) = self.leased.remove(&offset) {
            self.release(&lease);
        }
        self.due.remove(&offset);
        self.acked.insert(offset);
        self.advance_floor()
    }

    fn check(&self, offset: u64, attempt: u32) -> Result<Option<Lease>, Refusal> {
        if offset < self.floor || self.acked.contains(&offset) {
            return Ok(None);
        }
        match self.leased.get(&offset) {
            Some(l) if l.attempt == attempt => Ok(Some(*l)),
            Some(l) if l.attempt > attempt => Err(Refusal::Expired),
            Some(_) => Err(Refusal::Unknown),
            None if self.due.get(&offset).is_some_and(|a| *a >= attempt) => Err(Refusal::Expired),
            None => Err(Refusal::Unknown),
        }
    }

    /// Acks the delivery `(offset, attempt)`. Acking an acked message again is
    /// fine (at-least-once clients do); an ended lease is refused.
    pub fn ack(
        &mut self,
        offset: u64,
        attempt: u32,
        outcome: &mut AckOutcome,
    ) -> Result<(), Refusal> {
        let Some(lease) = self.check(offset, attempt)? else {
            return Ok(());
        };
        self.leased.remove(&offset);
        self.release(&lease);
        self.acked.insert(offset);
        outcome.acked.push(offset);
        if let Some(floor) = self.advance_floor() {
            outcome.new_floor = Some(floor);
        }
        Ok(())
    }

    /// Sets the delivery's deadline to `deadline_ms`; `None` nacks it (due again now).
    pub fn modify(
        &mut self,
        offset: u64,
        attempt: u32,
        deadline_ms: Option<u64>,
    ) -> Result<(), Refusal> {
        let Some(lease) = self.check(offset, attempt)? else {
            return Ok(());
        };
        match deadline_ms {
            Some(deadline_ms) => {
                if let Some(l) = self.leased.get_mut(&offset) {
                    l.deadline_ms = deadline_ms;
                }
            }
            None => {
                self.leased.remove(&offset);
                self.release(&lease);
                self.due.insert(offset, lease.attempt);
            }
        }
        Ok(())
    }

    /// Starts over at `floor`: nothing acked or leased at or after it (a seek).
    pub fn reset(&mut self, floor: u64) {
        *self = Ledger::new(floor, []);
    }

    /// The floor becomes the smallest offset still owed a delivery; acked offsets
    /// below it are dropped. Returns the new floor if it moved.
    fn advance_floor(&mut self) -> Option<u64> {
        let owed = [
            self.leased.keys().next().copied(),
            self.due.keys().next().copied(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.next);
        // Acked offsets at the start of the owed range are covered by the floor too.
        let mut floor = owed.max(self.floor);
        if owed >= self.next {
            floor = self.next.max(self.floor);
        }
        if floor == self.floor {
            return None;
        }
        self.acked = self.acked.split_off(&floor);
        self.floor = floor;
        Some(floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: StreamId = 1;

    fn deliver(l: &mut Ledger, offsets: std::ops::Range<u64>, deadline: u64) {
        for o in offsets {
            assert_eq!(l.claim_new(o, deadline, S), Some(1), "offset {o}");
        }
    }

    #[test]
    fn acks_in_order_move_the_floor() {
        let mut l = Ledger::new(0, []);
        deliver(&mut l, 0..3, 100);
        let mut out = AckOutcome::default();
        assert_eq!(l.ack(1, 1, &mut out), Ok(()));
        assert_eq!(out.new_floor, None, "0 is still out");
        assert_eq!(l.ack(0, 1, &mut out), Ok(()));
        assert_eq!(out.new_floor, Some(2));
        assert_eq!(l.ack(2, 1, &mut out), Ok(()));
        assert_eq!(out.new_floor, Some(3));
        assert_eq!(out.acked, vec![1, 0, 2]);
        assert_eq!(l.outstanding(S), 0);
    }

    #[test]
    fn an_expired_lease_is_due_again_and_its_old_ack_is_refused() {
        let mut l = Ledger::new(0, []);
        deliver(&mut l, 0..1, 100);
        assert_eq!(l.expire(99), 0);
        assert_eq!(l.expire(100), 1);
        let mut out = AckOutcome::default();
        assert_eq!(l.ack(0, 1, &mut out), Err(Refusal::Expired));
        assert_eq!(l.take_due(10, 200, S), vec![(0, 2)]);
        assert_eq!(l.ack(0, 1, &mut out), Err(Refusal::Expired));
        assert_eq!(l.ack(0, 2, &mut out), Ok(()));
        assert_eq!(l.floor(), 1);
        // Acking again is harmless.
        assert_eq!(l.ack(0, 2, &mut out), Ok(()));
    }

    #[test]
    fn nack_makes_a_message_due_at_once() {
        let mut l = Ledger::new(0, []);
        deliver(&mut l, 0..2, 1000);
        assert_eq!(l.modify(1, 1, None), Ok(()));
        assert_eq!(l.due(), 1);
        assert_eq!(l.take_due(10, 2000, S), vec![(1, 2)]);
        assert_eq!(l.modify(1, 2, Some(5000)), Ok(()));
        assert_eq!(l.next_deadline(), Some(1000));
    }

    #[test]
    fn a_restart_delivers_what_was_not_acked_and_skips_what_was() {
        // Persisted: floor 2, and 4 acked out of order.
        let mut l = Ledger::new(2, [4, 1]);
        assert_eq!(l.claim_new(2, 10, S), Some(1));
        assert_eq!(l.claim_new(3, 10, S), Some(1));
        assert_eq!(l.claim_new(4, 10, S), None, "acked before the restart");
        assert_eq!(l.claim_new(5, 10, S), Some(1));
        assert_eq!(l.next(), 6);
    }

    #[test]
    fn unknown_deliveries_are_refused_and_a_second_claim_loses() {
        let mut l = Ledger::new(0, []);
        let mut out = AckOutcome::default();
        assert_eq!(l.ack(7, 1, &mut out), Err(Refusal::Unknown));
        deliver(&mut l, 0..1, 10);
        assert_eq!(l.claim_new(0, 10, 2), None, "another puller has it");
        assert_eq!(l.ack(0, 3, &mut out), Err(Refusal::Unknown));
    }

    #[test]
    fn gaps_in_offsets_do_not_hold_the_floor() {
        // JetStream: this topic's offsets are 3, 7, 9.
        let mut l = Ledger::new(0, []);
        for o in [3, 7, 9] {
            assert_eq!(l.claim_new(o, 10, S), Some(1));
        }
        let mut out = AckOutcome::default();
        for o in [3, 7, 9] {
            assert_eq!(l.ack(o, 1, &mut out), Ok(()));
        }
        assert_eq!(l.floor(), 10);
    }

    #[test]
    fn a_reset_delivers_from_its_floor_again() {
        let mut l = Ledger::new(0, []);
        deliver(&mut l, 0..3, 10);
        let mut out = AckOutcome::default();
        assert_eq!(l.ack(0, 1, &mut out), Ok(()));
        l.reset(0);
        assert_eq!(l.outstanding(S), 0);
        assert_eq!(
            l.claim_new(0, 10, S),
            Some(1),
            "acked before the seek, due after it"
        );
        l.reset(5);
        assert_eq!(l.claim_new(3, 10, S), None, "before the seek point");
    }

    #[test]
    fn retention_forgets_what_it_removed() {
        let mut l = Ledger::new(0, []);
        deliver(&mut l, 0..4, 10);
        assert_eq!(l.modify(1, 1, None), Ok(()));
        assert_eq!(l.forget_below(3), Some(3));
        assert_eq!(l.due(), 0);
        assert_eq!(l.leased(), 1);
    }
}
