//! The MQTT 5 decoder and the server session's MQTT 5 side on arbitrary bytes. The
//! first byte picks a small or unlimited maximum packet size; the rest is the
//! connection's read buffer.
//!
//! Checked: a decoded packet never claims more bytes than given or than the maximum,
//! re-encodes to a packet that decodes again to itself (MQTT 5 allows several
//! encodings of one packet: property order, the short forms of acks), and every strict
//! prefix of it asks for more bytes; the buffer decodes as a stream packet by packet.
//! Then the same bytes, after an MQTT 5 CONNECT, go to a server session that accepts
//! it: whatever it sends back is valid MQTT 5.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_mqtt::codec::v5::{self, Connect5, Packet5, Properties};
use tether_mqtt::{Connect, DecodeOptions, ServerConfig, ServerSession, Timestamp};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, buf)) = data.split_first() else {
        return;
    };
    let max = if mode & 0x01 == 0 {
        1 << 20
    } else {
        usize::from(mode >> 1) * 4 + 2
    };
    let options = DecodeOptions::new(max);
    let mut rest = buf;
    while let Ok(Some((packet, used))) = v5::decode(rest, &options) {
        assert!(used >= 2 && used <= rest.len() && used <= max);
        let bytes = &rest[..used];
        for cut in [0, 1, used / 2, used - 1] {
            assert_eq!(v5::decode(&bytes[..cut], &options), Ok(None), "cut at {cut}");
        }
        let again = packet.to_vec().expect("a decoded packet encodes");
        let unlimited = DecodeOptions::new(usize::MAX);
        let (redecoded, len) = v5::decode(&again, &unlimited)
            .expect("re-encoding decodes")
            .expect("whole");
        assert_eq!(len, again.len());
        assert_eq!(redecoded, packet);
        rest = &rest[used..];
    }

    let t = Timestamp::from_millis(0);
    let mut server = ServerSession::new(ServerConfig::new(max.max(64)), t);
    let connect = Packet5::Connect(Box::new(Connect5 {
        connect: Connect {
            protocol_level: v5::PROTOCOL_LEVEL_5,
            ..Connect::new("c")
        },
        properties: Properties {
            auth_method: Some("jwt".into()),
            auth_data: Some(b"t".to_vec()),
            ..Properties::default()
        },
        will_properties: Properties::default(),
    }));
    server.handle_input(&connect.to_vec().expect("encodes"), t);
    while server.poll_event().is_some() {}
    let _ = server.accept(false, t);
    server.handle_input(buf, t);
    while server.poll_event().is_some() {}
    let mut out = server.poll_transmit().unwrap_or_default();
    let unlimited = DecodeOptions::new(usize::MAX);
    while !out.is_empty() {
        match v5::decode(&out, &unlimited) {
            Ok(Some((_, used))) => {
                out.drain(..used);
            }
            other => panic!("the server sent invalid MQTT 5: {other:?}"),
        }
    }
});
