//! Google Cloud IoT Core's vocabulary for Tether: resource names, MQTT client ids,
//! device topics, the id rule, the gateway errors-topic message, and the calendar that
//! its RFC 3339 timestamps need. No MQTT, no I/O, no clock.
//!
//! ```text
//!  MQTT CONNECT client id ─▶ ClientId::parse ──┐
//!  REST resource names ────▶ (tether-registry) ─┴▶ path::split ─▶ validate_id ◀─ IotTopic::parse
//!                                                                  (one id rule)  ▲
//!  PUBLISH topic / SUBSCRIBE filter ──────────────────────────────────────────────┘
//!
//!  server ─ GatewayError (serde) ─▶ /devices/{gateway}/errors ─▶ device SDK
//!  tether-jwt, REST API, CLI ─▶ calendar::Date ◀─ rfc3339::UnixTime (parse, Display)
//! ```
//!
//! * **One parser, one rule.** [`path::split`] splits every resource name; MQTT client
//!   ids ([`ClientId`]) and the registry's REST names both use it, and every id is
//!   checked by [`validate_id`], so both sides refuse the same ids in the same words.
//! * **Allocation-free** by default: names and topics borrow the input, their errors
//!   keep at most a short [`Excerpt`] of it (no lifetime to carry), and the calendar
//!   is plain arithmetic. Timestamps format through [`core::fmt::Display`], into a
//!   caller's buffer or a `String`.
//! * Features: `alloc` (the owned [`GatewayError`]; on by default), `serde` (its JSON
//!   form, read leniently as a device must).
//! * `tether-mqtt` stays pure MQTT and does not depend on this crate; servers and
//!   devices use both.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;

pub mod calendar;
pub mod client_id;
#[cfg(feature = "alloc")]
pub mod gateway_error;
pub mod ids;
pub mod iot_topic;
pub mod path;
pub mod rfc3339;

pub use calendar::Date;
pub use client_id::{ClientId, ClientIdError};
#[cfg(feature = "alloc")]
pub use gateway_error::{GatewayError, GatewayErrorType, MqttMessageInfo};
pub use ids::{IdError, validate_id};
pub use iot_topic::IotTopic;
pub use path::{Excerpt, PathError, PathLevel};
pub use rfc3339::{Rfc3339Error, UnixTime};
