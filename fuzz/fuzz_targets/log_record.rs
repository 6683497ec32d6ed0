//! Telemetry-log recovery on arbitrary segment bytes: the start-up scan
//! (format 1 or 2, by the first bytes), the header-only scan of sealed
//! segments, and the sequential reader. The first byte picks the base offset
//! and whether CRCs are fixed up first, so mutations reach the body decoders.
//!
//! The properties live in `tether_log::fuzzing::check`, which the crate's
//! property tests run too: recovery is idempotent, the header-only scan agrees
//! with the full one, the reader returns what the scan counted (also from each
//! index entry), and every record read survives encode → decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_log::fuzzing::check;

fuzz_target!(|data: &[u8]| check(data));
