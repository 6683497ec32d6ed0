//! What the SDK tells the application: the connection [`Status`], and the [`Config`]s
//! and [`Command`]s the server sends. Plain data, shared by the handle and the driver
//! task.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::endpoints::Endpoint;
use crate::error::{ConnectError, GatewayError};

/// Where the connection is in its life cycle.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Status {
    /// Trying an endpoint.
    Connecting {
        /// The endpoint.
        endpoint: Endpoint,
    },
    /// Connected (CONNACK 0).
    Connected {
        /// Through this endpoint.
        endpoint: Endpoint,
        /// Since then (`tokio::time`, so tests can pause it).
        since: Instant,
        /// The token's `exp` (Unix seconds); the SDK reconnects before it.
        token_expires: u64,
        /// Why the last planned reconnect with a fresh token failed, while this
        /// connection lives on until `token_expires` (e.g. the key was removed from
        /// the registry: the server will cut at `exp` and refuse the next connect).
        /// `None` once a refresh succeeds.
        refresh_error: Option<Arc<ConnectError>>,
    },
    /// Every endpoint failed (or the server refused): waiting before the next round.
    Backoff {
        /// Failed rounds since the last stable connection.
        attempt: u32,
        /// How long until the next round.
        wait: Duration,
        /// Why the last round failed (a refusal keeps its CONNACK code).
        last_error: Arc<ConnectError>,
    },
    /// Shut down.
    Closed,
}

/// A configuration the server sent (QoS 1: the SDK acknowledges it once it is in the
/// latest-config watch and the config stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The device it is for (the gateway's own id, or an attached device's).
    pub device_id: String,
    /// The configuration bytes (IoT Core's `binaryData`).
    pub payload: Vec<u8>,
}

/// A command the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The device it is for.
    pub device_id: String,
    /// The subfolder after `commands/`, if any.
    pub subfolder: Option<String>,
    /// The command bytes.
    pub payload: Vec<u8>,
}

/// The receiving ends the application takes once.
#[derive(Debug)]
pub(crate) struct Streams {
    pub configs: mpsc::Receiver<Config>,
    pub commands: mpsc::Receiver<Command>,
    pub errors: mpsc::Receiver<GatewayError>,
}
