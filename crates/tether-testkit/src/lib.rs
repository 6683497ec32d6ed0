//! Test support shared by the Tether crates; never shipped (`publish = false`).
//!
//! ```text
//!  needs ───── a missing service or tool: skip with a reason, or fail under
//!              TETHER_TEST_REQUIRE_ALL=1 (CI)
//!  Pair ────── ClientSession ⇄ ServerSession in memory, one fake clock (no sockets)
//!  FakeServer ─ an IoT Core-like MQTT server on a real socket, for the device SDK and
//!              `tether doctor`; its protocol core is tether-mqtt's ServerSession
//!  TestPki ─── a throwaway CA and a server certificate (rustls config and PEM files)
//!  threads ─── the nice value of a process's threads, from /proc (Linux)
//! ```
//!
//! `FakeServer` and `TestPki` need the default feature `fake-server` (TLS, tokio and
//! the SDK's clock); crates that only use `require` or `Pair` turn it off.

pub mod needs;
pub mod pair;
#[cfg(target_os = "linux")]
pub mod threads;

#[cfg(feature = "fake-server")]
pub mod fake_server;
#[cfg(feature = "fake-server")]
pub mod pki;

pub use needs::{REQUIRE_ALL, require, require_ok};
pub use pair::Pair;

#[cfg(feature = "fake-server")]
pub use fake_server::{ConnRecord, Ended, FakeServer, FakeServerOptions, Received};
#[cfg(feature = "fake-server")]
pub use pki::TestPki;
