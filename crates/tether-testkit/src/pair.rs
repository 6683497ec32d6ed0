//! A [`ClientSession`] and a [`ServerSession`] joined in memory, with one fake clock
//! for both: no sockets, no tasks, no sleeping (quinn's `Pair::drive()` idea).
//!
//! ```text
//!  client ──poll_transmit──▶ link ──handle_input(now)──▶ server
//!  client ◀─handle_input(now)── link ◀──poll_transmit── server
//!          advance(d): now moves from timer to timer, both sides' handle_timeout fire
//! ```
//!
//! The test plays the application and the gateway: it takes events from each side
//! (`client_events`, `server_events`) and answers with the sessions' own verbs
//! (`pair.server.accept(..)`, `pair.client.ack(..)`), then calls [`Pair::drive`].
//! When the server session ends, the client sees its transport close, as it would
//! when a real server closes the socket. [`Pair::partition`] cuts the link: bytes
//! are lost both ways, so keep-alive timeouts can be tested.

use std::time::Duration;

use tether_mqtt::session::{ClientConfig, ClientEvent, ClientSession, Event};
use tether_mqtt::{Connect, ServerConfig, ServerSession, Timestamp};

/// Both ends of one in-memory MQTT connection. See the module docs.
#[derive(Debug)]
pub struct Pair {
    /// The client end (what the device SDK drives).
    pub client: ClientSession,
    /// The server end (what the gateway drives).
    pub server: ServerSession,
    now: Timestamp,
    linked: bool,
}

impl Default for Pair {
    fn default() -> Self {
        Self::new(ClientConfig::default(), ServerConfig::new(1 << 20))
    }
}

impl Pair {
    /// Two fresh sessions at time 0, linked.
    pub fn new(client: ClientConfig, server: ServerConfig) -> Self {
        let now = Timestamp::from_millis(0);
        Pair {
            client: ClientSession::new(client),
            server: ServerSession::new(server, now),
            now,
            linked: true,
        }
    }

    /// The shared fake time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Moves bytes both ways until neither side has anything more to send. Bytes sent
    /// while the link is cut are lost.
    pub fn drive(&mut self) {
        loop {
            let mut moved = false;
            if let Some(bytes) = self.client.poll_transmit() {
                moved = true;
                if self.linked {
                    self.server.handle_input(&bytes, self.now);
                }
            }
            if let Some(bytes) = self.server.poll_transmit() {
                moved = true;
                if self.linked {
                    self.client.handle_input(&bytes, self.now);
                }
            }
            if !moved {
                break;
            }
        }
        if self.linked && self.server.is_closed() && self.client.close_reason().is_none() {
            self.client.transport_closed();
        }
    }

    /// Moves time forward by `by`, firing every timer due on the way at its own time
    /// (a PINGREQ at the keep-alive, a timeout at its deadline) and driving after each.
    ///
    /// # Panics
    /// If a session keeps asking for a timer in the past that does nothing: a bug in
    /// the session, not in the test.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now.saturating_add(by);
        self.drive();
        while let Some(due) = self.next_timeout().filter(|due| *due <= end) {
            self.now = self.now.max(due);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
            self.drive();
            if self.next_timeout() == Some(due) && due <= self.now {
                panic!("a session's timer at {due:?} fired and is still due");
            }
        }
        self.now = end;
    }

    /// Cuts the link: from now on bytes in either direction are lost.
    pub fn partition(&mut self) {
        self.linked = false;
    }

    /// Every event the client has for the application, oldest first.
    pub fn client_events(&mut self) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    /// Every event the server has for the gateway, oldest first.
    pub fn server_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }

    /// CONNECT, accepted by the server, CONNACK 0 at the client; the events of the
    /// handshake are consumed.
    ///
    /// # Panics
    /// If either side does something else (a test-setup failure).
    pub fn connect(&mut self, connect: &Connect) {
        if let Err(e) = self.client.connect(connect, self.now) {
            panic!("the client cannot send CONNECT: {e}");
        }
        self.drive();
        match self.server_events().as_slice() {
            [Event::Connect(seen)] if seen == connect => {}
            other => panic!("the server should see the CONNECT alone: {other:?}"),
        }
        if let Err(e) = self.server.accept(false, self.now) {
            panic!("the server cannot accept: {e}");
        }
        self.drive();
        match self.client_events().as_slice() {
            [
                ClientEvent::Connected {
                    session_present: false,
                },
            ] => {}
            other => panic!("the client should see CONNACK 0 alone: {other:?}"),
        }
    }

    fn next_timeout(&self) -> Option<Timestamp> {
        [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}
