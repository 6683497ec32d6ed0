//! The queue from the log's handles to its writer thread: bounded (an `append` waits
//! for room, a `submit` is refused when full), and without an allocation per
//! command. A tokio channel allocates a block of slots every 32 messages, and on
//! glibc each such allocation, being over 1 KiB, first consolidates every freed
//! small chunk: at saturation that was a twentieth of the server's CPU.
//!
//! The writer sleeps on a condition variable only when the queue is empty; senders
//! notify it only then.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::Semaphore;

use super::Command;

struct State {
    commands: VecDeque<Command>,
    /// The sender or the receiver is gone.
    closed: bool,
    /// The writer waits for a command.
    asleep: bool,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    /// One permit per free slot.
    room: Semaphore,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere with the lock held leaves a queue that is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, command: Command) -> Result<(), Command> {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            self.room.add_permits(1);
            return Err(command);
        }
        state.commands.push_back(command);
        let wake = std::mem::replace(&mut state.asleep, false);
        drop(state);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.room.close();
        self.ready.notify_all();
    }
}

/// The handle's end. Dropping it closes the queue: the writer takes what is left,
/// then stops.
pub(crate) struct Sender(Arc<Shared>);

/// The writer's end.
pub(crate) struct Receiver(Arc<Shared>);

/// A queue of at most `capacity` commands.
pub(crate) fn channel(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            commands: VecDeque::with_capacity(capacity.min(1024)),
            closed: false,
            asleep: false,
        }),
        ready: Condvar::new(),
        room: Semaphore::new(capacity),
    });
    (Sender(Arc::clone(&shared)), Receiver(shared))
}

impl Sender {
    /// Takes a slot if there is one now, for [`send_reserved`](Self::send_reserved).
    pub(crate) fn try_reserve(&self) -> bool {
        match self.0.room.try_acquire() {
            Ok(permit) => {
                permit.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Queues `command` in the slot [`try_reserve`](Self::try_reserve) took. If the
    /// writer has stopped meanwhile the command is dropped, and its reply with it:
    /// the caller learns that the writer stopped.
    pub(crate) fn send_reserved(&self, command: Command) {
        let _ = self.0.push(command);
    }

    /// Queues `command` if there is room now.
    ///
    /// # Errors
    /// The command back when the queue is full or the writer has stopped.
    #[cfg(test)]
    pub(crate) fn try_send(&self, command: Command) -> Result<(), Command> {
        if !self.try_reserve() {
            return Err(command);
        }
        self.0.push(command)
    }

    /// Queues `command`, waiting for room.
    ///
    /// # Errors
    /// The command back when the writer has stopped.
    pub(crate) async fn send(&self, command: Command) -> Result<(), Command> {
        match self.0.room.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return Err(command),
        }
        self.0.push(command)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("room", &self.0.room.available_permits())
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// The next command, waiting for one; `None` once the queue is closed and empty.
    pub(crate) fn blocking_recv(&mut self) -> Option<Command> {
        let mut state = self.0.lock();
        loop {
            if let Some(command) = state.commands.pop_front() {
                drop(state);
                self.0.room.add_permits(1);
                return Some(command);
            }
            if state.closed {
                return None;
            }
            state.asleep = true;
            state = self
                .0
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The next command if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<Command> {
        let command = self.0.lock().commands.pop_front()?;
        self.0.room.add_permits(1);
        Some(command)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retain(now: i64) -> Command {
        let (reply, _) = tokio::sync::oneshot::channel();
        Command::Retain { now, reply }
    }

    fn now_of(command: Option<Command>) -> Option<i64> {
        match command? {
            Command::Retain { now, .. } => Some(now),
            Command::Append { .. } => None,
        }
    }

    #[test]
    fn commands_come_out_in_order_and_a_full_queue_refuses() {
        let (tx, mut rx) = channel(2);
        assert!(tx.try_send(retain(1)).is_ok());
        assert!(tx.try_send(retain(2)).is_ok());
        assert!(tx.try_send(retain(3)).is_err(), "full");
        assert_eq!(now_of(rx.try_recv()), Some(1));
        assert!(tx.try_send(retain(3)).is_ok(), "room again");
        assert_eq!(now_of(rx.blocking_recv()), Some(2));
        assert_eq!(now_of(rx.try_recv()), Some(3));
        assert!(rx.try_recv().is_none());
    }

    #[test]
    fn the_writer_takes_what_is_left_after_the_sender_is_dropped() {
        let (tx, mut rx) = channel(4);
        assert!(tx.try_send(retain(1)).is_ok());
        drop(tx);
        assert_eq!(now_of(rx.blocking_recv()), Some(1));
        assert!(rx.blocking_recv().is_none(), "closed and empty");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sender_waits_for_room_and_the_sleeping_writer_wakes() {
        let (tx, mut rx) = channel(1);
        assert!(tx.try_send(retain(1)).is_ok());
        let writer = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while let Some(command) = rx.blocking_recv() {
                seen.extend(now_of(Some(command)));
            }
            seen
        });
        for now in 2..=50 {
            assert!(tx.send(retain(now)).await.is_ok(), "waits for room");
        }
        drop(tx);
        let seen = writer.join().expect("writer");
        assert_eq!(seen, (1..=50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn sends_fail_once_the_writer_is_gone() {
        let (tx, rx) = channel(1);
        drop(rx);
        assert!(tx.try_send(retain(1)).is_err());
        assert!(tx.send(retain(2)).await.is_err());
    }
}
