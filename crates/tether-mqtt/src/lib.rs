//! Sans-io MQTT 3.1.1 and MQTT 5 for Tether: one codec for the gateway, the device SDK
//! and the simulator. Pure MQTT: IoT Core's client ids, topics and id rules are in `tether-iot`,
//! which this crate does not depend on.
//!
//! ```text
//!  bytes from the socket                                     bytes to the socket
//!         │                                                          ▲
//!         ▼                                                          │
//!  decode(buf, max) ── Ok(None): need more bytes            Packet::encode(&mut Vec)
//!         │             Err(DecodeError): "[MQTT-x.y.z-n] …"         ▲
//!         ▼  Ok(Some((Packet, consumed)))                            │
//!  ┌──────────────────────────────────────────────────────────────────────────┐
//!  │ Packet::{Connect, ConnAck, Publish, PubAck, …, Disconnect}               │
//!  │   topics parsed once: TopicName (PUBLISH), TopicFilter (SUBSCRIBE)        │
//!  └──────────────────────────────────────────────────────────────────────────┘
//!         │ Connect.client_id              │ Publish.topic / Subscription.filter
//!         ▼                                ▼
//!  tether_iot::ClientId::parse         tether_iot::IotTopic::parse
//!  (the caller's choice: the server and the SDK read IoT Core's meaning there)
//! ```
//!
//! * **No I/O, no clock, no dependencies.** The caller owns the socket and the read
//!   buffer; this crate turns bytes into [`Packet`]s and back. It is `no_std` with
//!   `alloc`, so a device core can use it later.
//! * **Streaming and size-safe decoding.** [`decode`] returns `Ok(None)` until a whole
//!   packet is buffered. The remaining length is checked against the caller's maximum
//!   from the fixed header alone (even from a partial one), before the body is awaited
//!   or anything is allocated.
//! * **Strict validation, named clauses.** Every rule of the specification that a
//!   receiver can check is checked, and each [`DecodeError`] names its clause, e.g.
//!   `[MQTT-3.1.2-3] CONNECT reserved flag must be 0`. The one rule real IoT Core
//!   devices break (a password without the User Name flag, [MQTT-3.1.2-22]) is decoded
//!   and reported as a [`Quirk`] unless [`DecodeOptions::strict_password_flag`] is set.
//! * **Owned values.** Decoded packets own their strings and payload, so the driver can
//!   reuse its buffer immediately and pass packets between tasks. The sessions decode
//!   whole packets straight from the driver's read buffer: one copy, into the packet.
//!   Only a packet split across reads (or input waiting for a CONNECT decision) is
//!   gathered in the session first. Borrowing variants can be added later if
//!   profiling asks for them.
//! * **Both ends.** The same types encode and decode every packet, so clients (the
//!   SDK, the simulator, tests) and the server share one implementation.
//! * **Sessions are sans-io too.** [`ServerSession`] runs one connection's server side
//!   (CONNECT first and once, CONNECT timeout, keep-alive at 1.5×, QoS 1 in-flight
//!   tracking) from `handle_input(bytes, now)`, `poll_transmit()`, `poll_event()` and
//!   `poll_timeout()`; time is a [`Timestamp`] passed in, never read.
//! * **MQTT 5 beside, not inside.** [`codec::v5`] has its own `Packet5` with
//!   properties and reason codes, and reuses the 3.1.1 types for what both versions
//!   share; [`peek_connect_level`] reads the first CONNECT's level, and the sessions
//!   speak the version the CONNECT asked for, reporting the same events either way.
//!
//! Why our own codec rather than rumqttc's internal `mqttbytes` (or another crate):
//! see `docs/mqtt-codec.md` in the repository.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod codec;
pub mod error;
pub mod qos;
pub mod session;
pub mod topic;

pub use codec::{
    ConnAck, Connect, ConnectReturnCode, DecodeOptions, Delivery, Packet, PacketType,
    ProtocolLevel, Publish, Quirk, SubAck, SubAckCode, Subscribe, Subscription, Unsubscribe, Will,
    decode, decode_with, peek_connect_level,
};
pub use error::{DecodeError, EncodeError, TopicError};
pub use qos::{PacketId, QoS};
pub use session::{ServerConfig, ServerSession, Timestamp};
pub use topic::{TopicFilter, TopicName};
