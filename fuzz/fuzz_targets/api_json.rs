//! The admin API's request readers on arbitrary input, on both transports: JSON
//! bodies as REST receives them, and protobuf messages as gRPC receives them
//! (decoded by prost, mapped to proto3 JSON, then read by the same readers).
//!
//! The properties live in `tether_server::api::fuzzing::check`, which the crate's
//! property tests (`tests/api_json_props.rs`) run too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tether_server::api::fuzzing::check(data));
