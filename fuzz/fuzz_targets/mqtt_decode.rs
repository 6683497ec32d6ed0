//! The MQTT 3.1.1 decoder on arbitrary bytes. The first byte picks the options
//! (strict password flag, a small or unlimited maximum packet size); the rest is
//! the connection's read buffer.
//!
//! Checked: a decoded packet never claims more bytes than given or than the
//! maximum, re-encodes to exactly the bytes it consumed (only canonical encodings
//! are accepted), decodes again to itself, and every strict prefix of it asks for
//! more bytes; a CONNECT is seen as MQTT 3.1.1 by `peek_connect_level`; the buffer
//! decodes as a stream packet by packet until it is used up or refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_mqtt::{DecodeOptions, Packet, ProtocolLevel, decode_with, peek_connect_level};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, buf)) = data.split_first() else {
        return;
    };
    let max = if mode & 0x02 == 0 {
        usize::MAX
    } else {
        usize::from(mode >> 2) * 4
    };
    let options = DecodeOptions::new(max).strict_password_flag(mode & 0x01 != 0);

    let mut rest = buf;
    // Bounded by the input: each round consumes at least the 2-byte fixed header.
    while let Ok(Some((packet, used))) = decode_with(rest, &options) {
        assert!(used >= 2 && used <= rest.len() && used <= max);
        let bytes = &rest[..used];
        let encoded = packet.to_vec().expect("a decoded packet encodes");
        assert_eq!(encoded, bytes, "re-encoding of {packet:?}");
        assert_eq!(
            decode_with(bytes, &options),
            Ok(Some((packet.clone(), used)))
        );
        for cut in [0, 1, used / 2, used - 1] {
            assert_eq!(
                decode_with(&bytes[..cut], &options),
                Ok(None),
                "cut at {cut}"
            );
        }
        if let Packet::Connect(_) = packet {
            assert_eq!(peek_connect_level(bytes), Ok(Some(ProtocolLevel::V3_1_1)));
        }
        rest = &rest[used..];
    }
    let _ = peek_connect_level(buf);
});
