//! The device SDK's integration tests, one module per area, linked into one test
//! binary (one link step instead of six): against tether-testkit's fake server, and
//! against a real Mosquitto.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backoff_timing;
mod common;
mod errors;
mod failover;
mod gateway;
mod http;
mod mosquitto;
mod mqtt5;
mod refresh;
