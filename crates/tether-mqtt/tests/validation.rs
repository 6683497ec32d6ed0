//! Every decode and encode error, each hit by a packet built by hand, with the clause
//! its message must name.

use tether_mqtt::{
    ConnectReturnCode, DecodeError, DecodeOptions, EncodeError, Packet, PacketId, PacketType,
    Publish, SubAck, Subscribe, TopicError, TopicName, Unsubscribe, decode, decode_with,
    peek_connect_level,
};

/// A packet with a one-byte remaining length.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let len = u8::try_from(body.len()).expect("short body");
    assert!(len < 128);
    let mut bytes = vec![first, len];
    bytes.extend_from_slice(body);
    bytes
}

/// A CONNECT body with the given protocol name, level and flags, keep-alive 60,
/// followed by `payload`.
fn connect_body(name: &[u8], level: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0, u8::try_from(name.len()).expect("short")];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, flags, 0x00, 0x3c]);
    body.extend_from_slice(payload);
    body
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0, u8::try_from(s.len()).expect("short")];
    out.extend_from_slice(s);
    out
}

/// Decodes `bytes`, expects `expected`, and checks the message starts with `[clause]`.
fn expect(bytes: &[u8], expected: DecodeError, clause: &str) {
    expect_with(bytes, &DecodeOptions::new(1 << 20), expected, clause);
}

fn expect_with(bytes: &[u8], options: &DecodeOptions, expected: DecodeError, clause: &str) {
    let error = decode_with(bytes, options).expect_err("must fail");
    assert_eq!(error, expected, "bytes {bytes:02x?}");
    assert_eq!(error.clause(), Some(clause));
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("[{clause}] ")),
        "{message:?} should start with [{clause}]"
    );
}

const CLIENT: &[u8] = &[0x00, 0x03, b'd', b'e', b'v'];

#[test]
fn packet_too_large_fails_from_the_fixed_header() {
    // 256 MB remaining length: fails with only the 5 header bytes, no body awaited.
    let header = [0x30, 0xff, 0xff, 0xff, 0x7f];
    let error = decode(&header, 1 << 20).expect_err("too large");
    assert_eq!(
        error,
        DecodeError::PacketTooLarge {
            size: 5 + 268_435_455,
            max: 1 << 20
        }
    );
    assert_eq!(error.clause(), None);
    assert_eq!(
        error.to_string(),
        "packet of 268435460 bytes or more exceeds the maximum packet size of 1048576 bytes"
    );
    // Even before the length is complete: 3 continuation bytes mean ≥ 2 MB.
    assert!(matches!(
        decode(&[0x30, 0xff, 0xff, 0xff], 1 << 20),
        Err(DecodeError::PacketTooLarge { .. })
    ));
    assert!(matches!(
        decode(&[0x30, 0x80], 100),
        Err(DecodeError::PacketTooLarge {
            size: 131,
            max: 100
        })
    ));
    // The limit counts the whole packet: a 4-byte PUBACK fits in 4, not in 3.
    let puback = [0x40, 0x02, 0x00, 0x01];
    let id = PacketId::new(1).expect("non-zero");
    assert_eq!(decode(&puback, 4), Ok(Some((Packet::PubAck(id), 4))));
    assert_eq!(
        decode(&puback, 3),
        Err(DecodeError::PacketTooLarge { size: 4, max: 3 })
    );
}

#[test]
fn reserved_packet_types() {
    expect(
        &[0x00, 0x00],
        DecodeError::ReservedPacketType { value: 0 },
        "§2.2.1",
    );
    expect(
        &[0xf0, 0x00],
        DecodeError::ReservedPacketType { value: 15 },
        "§2.2.1",
    );
    // Known from the first byte alone.
    assert_eq!(
        decode(&[0xf0], 1024),
        Err(DecodeError::ReservedPacketType { value: 15 })
    );
}

#[test]
fn fixed_header_flags() {
    let flags = |packet, flags| DecodeError::InvalidFlags { packet, flags };
    expect(
        &[0x41, 0x02, 0, 1],
        flags(PacketType::PubAck, 1),
        "MQTT-2.2.2-1",
    );
    expect(&[0x18, 0x00], flags(PacketType::Connect, 8), "MQTT-2.2.2-1");
    expect(
        &[0x22, 0x02, 0, 0],
        flags(PacketType::ConnAck, 2),
        "MQTT-2.2.2-1",
    );
    expect(
        &[0x60, 0x02, 0, 1],
        flags(PacketType::PubRel, 0),
        "MQTT-3.6.1-1",
    );
    expect(
        &[0x80, 0x02, 0, 1],
        flags(PacketType::Subscribe, 0),
        "MQTT-3.8.1-1",
    );
    expect(
        &[0xa3, 0x02, 0, 1],
        flags(PacketType::Unsubscribe, 3),
        "MQTT-3.10.1-1",
    );
    expect(
        &[0xe1, 0x00],
        flags(PacketType::Disconnect, 1),
        "MQTT-3.14.1-1",
    );
    expect(&[0xc2, 0x00], flags(PacketType::PingReq, 2), "MQTT-2.2.2-1");
    assert_eq!(
        decode(&[0x62, 0x02, 0, 1], 64).map(|_| ()),
        Ok(()),
        "PUBREL with 0010 is fine"
    );
    let message = decode(&[0x60, 0x02, 0, 1], 64)
        .expect_err("bad")
        .to_string();
    assert_eq!(
        message,
        "[MQTT-3.6.1-1] PUBREL fixed-header flags must be 0b0010, found 0b0000"
    );
}

#[test]
fn remaining_length_encoding() {
    expect(
        &[0x30, 0x80, 0x80, 0x80, 0x80, 0x01],
        DecodeError::RemainingLengthTooLong,
        "§2.2.3",
    );
    expect(
        &[0xc0, 0x80, 0x00],
        DecodeError::RemainingLengthNotMinimal,
        "§2.2.3",
    );
}

#[test]
fn fixed_size_bodies() {
    let wrong = |packet, expected, found| DecodeError::WrongRemainingLength {
        packet,
        expected,
        found,
    };
    expect(
        &packet(0x40, &[0, 1, 0]),
        wrong(PacketType::PubAck, 2, 3),
        "§2.2.3",
    );
    expect(
        &packet(0x50, &[0]),
        wrong(PacketType::PubRec, 2, 1),
        "§2.2.3",
    );
    expect(
        &packet(0x70, &[]),
        wrong(PacketType::PubComp, 2, 0),
        "§2.2.3",
    );
    expect(
        &packet(0xb0, &[0, 1, 2]),
        wrong(PacketType::UnsubAck, 2, 3),
        "§2.2.3",
    );
    expect(
        &packet(0x20, &[0]),
        wrong(PacketType::ConnAck, 2, 1),
        "§2.2.3",
    );
    expect(
        &packet(0xc0, &[0]),
        wrong(PacketType::PingReq, 0, 1),
        "§2.2.3",
    );
    expect(
        &packet(0xd0, &[0]),
        wrong(PacketType::PingResp, 0, 1),
        "§2.2.3",
    );
    expect(
        &packet(0xe0, &[0, 0]),
        wrong(PacketType::Disconnect, 0, 2),
        "§2.2.3",
    );
}

#[test]
fn truncated_and_trailing() {
    expect(
        &packet(0x10, &[0x00, 0x04, b'M', b'Q']),
        DecodeError::Truncated {
            packet: PacketType::Connect,
            field: "protocol name",
        },
        "§2.2.3",
    );
    expect(
        &packet(0x10, &connect_body(b"MQTT", 4, 0x02, &[0x00, 0x05, b'd'])),
        DecodeError::Truncated {
            packet: PacketType::Connect,
            field: "client identifier",
        },
        "§2.2.3",
    );
    expect(
        &packet(0x32, &[0x00, 0x01, b'a', 0x00]),
        DecodeError::Truncated {
            packet: PacketType::Publish,
            field: "packet identifier",
        },
        "§2.2.3",
    );
    let mut body = connect_body(b"MQTT", 4, 0x02, CLIENT);
    body.push(0xff);
    expect(
        &packet(0x10, &body),
        DecodeError::TrailingBytes {
            packet: PacketType::Connect,
            count: 1,
        },
        "§2.2.3",
    );
}

#[test]
fn utf8_strings() {
    // 0xC3 0x28: an invalid two-byte sequence.
    let mut body = string(&[b'a', 0xc3, 0x28]);
    body.push(b'x');
    expect(
        &packet(0x30, &body),
        DecodeError::InvalidUtf8 {
            field: "topic name",
        },
        "MQTT-1.5.3-1",
    );
    // 0xED 0xA0 0x80: the surrogate U+D800, forbidden in UTF-8.
    expect(
        &packet(
            0x10,
            &connect_body(b"MQTT", 4, 0x02, &string(&[0xed, 0xa0, 0x80])),
        ),
        DecodeError::InvalidUtf8 {
            field: "client identifier",
        },
        "MQTT-1.5.3-1",
    );
    expect(
        &packet(0x30, &string(b"a\0b")),
        DecodeError::NulInString {
            field: "topic name",
        },
        "MQTT-1.5.3-2",
    );
    // A user name with U+0000.
    let mut payload = CLIENT.to_vec();
    payload.extend_from_slice(&string(b"u\0"));
    expect(
        &packet(0x10, &connect_body(b"MQTT", 4, 0x82, &payload)),
        DecodeError::NulInString { field: "user name" },
        "MQTT-1.5.3-2",
    );
    // U+FEFF is an ordinary character and is kept ([MQTT-1.5.3-3]).
    let bom = packet(0x30, &string("\u{feff}t".as_bytes()));
    match decode(&bom, 64) {
        Ok(Some((Packet::Publish(p), _))) => assert_eq!(p.topic.as_str(), "\u{feff}t"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn connect_variable_header() {
    expect(
        &packet(0x10, &connect_body(b"MQTX", 4, 0x02, CLIENT)),
        DecodeError::ProtocolName,
        "MQTT-3.1.2-1",
    );
    let level5 =
        decode(&packet(0x10, &connect_body(b"MQTT", 5, 0x02, CLIENT)), 1024).expect_err("level 5");
    assert_eq!(level5, DecodeError::UnsupportedProtocolLevel { level: 5 });
    assert_eq!(
        level5.connack_code(),
        Some(ConnectReturnCode::UnacceptableProtocolVersion)
    );
    assert!(level5.to_string().starts_with("[MQTT-3.1.2-2] "));
    expect(
        &packet(0x10, &connect_body(b"MQIsdp", 3, 0x02, CLIENT)),
        DecodeError::UnsupportedProtocolLevel { level: 3 },
        "MQTT-3.1.2-2",
    );
    assert_eq!(DecodeError::ProtocolName.connack_code(), None);
    let reserved = packet(0x10, &connect_body(b"MQTT", 4, 0x03, CLIENT));
    expect(&reserved, DecodeError::ConnectReservedFlag, "MQTT-3.1.2-3");
    assert_eq!(
        decode(&reserved, 1024).expect_err("x").to_string(),
        "[MQTT-3.1.2-3] CONNECT reserved flag must be 0"
    );
    expect(
        &packet(0x10, &connect_body(b"MQTT", 4, 0x0a, CLIENT)),
        DecodeError::WillQosWithoutWill,
        "MQTT-3.1.2-13",
    );
    expect(
        &packet(0x10, &connect_body(b"MQTT", 4, 0x22, CLIENT)),
        DecodeError::WillRetainWithoutWill,
        "MQTT-3.1.2-15",
    );
    expect(
        &packet(0x10, &connect_body(b"MQTT", 4, 0x1e, CLIENT)),
        DecodeError::InvalidQos {
            packet: PacketType::Connect,
            value: 3,
        },
        "MQTT-3.1.2-14",
    );
    // A will topic with a wildcard.
    let mut payload = CLIENT.to_vec();
    payload.extend_from_slice(&string(b"w/#"));
    payload.extend_from_slice(&string(b"m"));
    expect(
        &packet(0x10, &connect_body(b"MQTT", 4, 0x06, &payload)),
        DecodeError::Topic {
            packet: PacketType::Connect,
            error: TopicError::WildcardInName,
        },
        "MQTT-3.3.2-2",
    );
}

#[test]
fn password_without_username_is_configurable() {
    let mut payload = CLIENT.to_vec();
    payload.extend_from_slice(&string(b"eyJ.jwt"));
    let bytes = packet(0x10, &connect_body(b"MQTT", 4, 0x42, &payload));
    // Tolerant by default: decoded, and the quirk is visible.
    match decode(&bytes, 1024) {
        Ok(Some((Packet::Connect(c), n))) => {
            assert_eq!(n, bytes.len());
            assert_eq!(c.username, None);
            assert_eq!(c.password.as_deref(), Some(&b"eyJ.jwt"[..]));
            assert_eq!(
                c.quirks(),
                vec![tether_mqtt::Quirk::PasswordWithoutUsername]
            );
        }
        other => panic!("{other:?}"),
    }
    // Strict on request.
    expect_with(
        &bytes,
        &DecodeOptions::new(1024).strict_password_flag(true),
        DecodeError::PasswordWithoutUsername,
        "MQTT-3.1.2-22",
    );
}

#[test]
fn publish_rules() {
    expect(
        &packet(0x36, &[0x00, 0x01, b'a', 0x00, 0x01]),
        DecodeError::InvalidQos {
            packet: PacketType::Publish,
            value: 3,
        },
        "MQTT-3.3.1-4",
    );
    // QoS 3 is refused from the first byte.
    assert_eq!(
        decode(&[0x36], 1024),
        Err(DecodeError::InvalidQos {
            packet: PacketType::Publish,
            value: 3,
        })
    );
    expect(
        &packet(0x38, &[0x00, 0x01, b'a']),
        DecodeError::DupWithQos0,
        "MQTT-3.3.1-2",
    );
    for (topic, error, clause) in [
        (&b"a/+"[..], TopicError::WildcardInName, "MQTT-3.3.2-2"),
        (&b"#"[..], TopicError::WildcardInName, "MQTT-3.3.2-2"),
        (&b""[..], TopicError::Empty, "MQTT-4.7.3-1"),
    ] {
        expect(
            &packet(0x30, &string(topic)),
            DecodeError::Topic {
                packet: PacketType::Publish,
                error,
            },
            clause,
        );
    }
    assert_eq!(
        decode(&packet(0x30, &string(b"a/+")), 64)
            .expect_err("wildcard")
            .to_string(),
        "[MQTT-3.3.2-2] PUBLISH: topic name must not contain the wildcards '+' or '#'"
    );
}

#[test]
fn zero_packet_ids() {
    let zero = |packet| DecodeError::ZeroPacketId { packet };
    expect(
        &packet(0x32, &[0x00, 0x01, b'a', 0x00, 0x00]),
        zero(PacketType::Publish),
        "MQTT-2.3.1-1",
    );
    expect(
        &packet(0x40, &[0, 0]),
        zero(PacketType::PubAck),
        "MQTT-2.3.1-1",
    );
    expect(
        &packet(0x62, &[0, 0]),
        zero(PacketType::PubRel),
        "MQTT-2.3.1-1",
    );
    expect(
        &packet(0x82, &[0, 0, 0, 1, b'a', 0]),
        zero(PacketType::Subscribe),
        "MQTT-2.3.1-1",
    );
    expect(
        &packet(0x90, &[0, 0, 0]),
        zero(PacketType::SubAck),
        "MQTT-2.3.1-1",
    );
    expect(
        &packet(0xa2, &[0, 0, 0, 1, b'a']),
        zero(PacketType::Unsubscribe),
        "MQTT-2.3.1-1",
    );
    expect(
        &packet(0xb0, &[0, 0]),
        zero(PacketType::UnsubAck),
        "MQTT-2.3.1-1",
    );
}

#[test]
fn subscribe_rules() {
    expect(
        &packet(0x82, &[0, 1]),
        DecodeError::NoTopicFilters {
            packet: PacketType::Subscribe,
        },
        "MQTT-3.8.3-3",
    );
    expect(
        &packet(0xa2, &[0, 1]),
        DecodeError::NoTopicFilters {
            packet: PacketType::Unsubscribe,
        },
        "MQTT-3.10.3-2",
    );
    expect(
        &packet(0x82, &[0, 1, 0, 1, b'a', 0x04]),
        DecodeError::SubscribeReservedBits { value: 0x04 },
        "MQTT-3-8.3-4",
    );
    expect(
        &packet(0x82, &[0, 1, 0, 1, b'a', 0x03]),
        DecodeError::InvalidQos {
            packet: PacketType::Subscribe,
            value: 3,
        },
        "MQTT-3-8.3-4",
    );
    expect(
        &packet(0x82, &[0, 1, 0, 1, b'a']),
        DecodeError::Truncated {
            packet: PacketType::Subscribe,
            field: "requested QoS",
        },
        "§2.2.3",
    );
    expect(
        &packet(0x82, &[0, 1, 0, 2, b'a', b'#', 0]),
        DecodeError::Topic {
            packet: PacketType::Subscribe,
            error: TopicError::MultiLevelWildcardMisplaced,
        },
        "MQTT-4.7.1-2",
    );
    expect(
        &packet(0xa2, &[0, 1, 0, 3, b'a', b'+', b'/']),
        DecodeError::Topic {
            packet: PacketType::Unsubscribe,
            error: TopicError::SingleLevelWildcardMisplaced,
        },
        "MQTT-4.7.1-3",
    );
    expect(
        &packet(0x90, &[0, 1]),
        DecodeError::NoReturnCodes,
        "MQTT-3.8.4-5",
    );
    expect(
        &packet(0x90, &[0, 1, 0x03]),
        DecodeError::InvalidSubAckCode { value: 0x03 },
        "MQTT-3.9.3-2",
    );
    expect(
        &packet(0x90, &[0, 1, 0x81]),
        DecodeError::InvalidSubAckCode { value: 0x81 },
        "MQTT-3.9.3-2",
    );
}

#[test]
fn connack_rules() {
    expect(
        &[0x20, 0x02, 0x02, 0x00],
        DecodeError::ConnAckReservedFlags { value: 0x02 },
        "§3.2.2.1",
    );
    expect(
        &[0x20, 0x02, 0x00, 0x06],
        DecodeError::InvalidConnectReturnCode { value: 6 },
        "§3.2.2.3",
    );
    expect(
        &[0x20, 0x02, 0x01, 0x05],
        DecodeError::SessionPresentOnRefusal,
        "MQTT-3.2.2-4",
    );
}

#[test]
fn peek_refuses_what_is_not_a_connect() {
    let error = peek_connect_level(&[0x30, 0x00]).expect_err("not connect");
    assert_eq!(
        error,
        DecodeError::NotConnect {
            packet: PacketType::Publish
        }
    );
    assert_eq!(
        error.to_string(),
        "[MQTT-3.1.0-1] the first packet must be CONNECT, found PUBLISH"
    );
    assert_eq!(
        peek_connect_level(&packet(0x10, &connect_body(b"HTTP", 4, 0, CLIENT))),
        Err(DecodeError::ProtocolName)
    );
    assert_eq!(
        peek_connect_level(&[0x10, 0x02, 0x00, 0x04]),
        Err(DecodeError::Truncated {
            packet: PacketType::Connect,
            field: "protocol name"
        })
    );
    assert_eq!(
        peek_connect_level(&[0x00]),
        Err(DecodeError::ReservedPacketType { value: 0 })
    );
}

fn pid(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

#[test]
fn encode_errors() {
    let topic = TopicName::new("t").expect("topic");
    let mut out = vec![0xee];
    let dup0 = Publish {
        dup: true,
        ..Publish::at_most_once(topic.clone(), Vec::new())
    };
    assert_eq!(dup0.encode(&mut out), Err(EncodeError::DupWithQos0));
    let no_filters = Subscribe {
        packet_id: pid(1),
        subscriptions: Vec::new(),
    };
    assert_eq!(
        no_filters.encode(&mut out),
        Err(EncodeError::NoTopicFilters {
            packet: PacketType::Subscribe
        })
    );
    let no_filters = Unsubscribe {
        packet_id: pid(1),
        filters: Vec::new(),
    };
    let error = no_filters.encode(&mut out).expect_err("empty");
    assert_eq!(error.clause(), "MQTT-3.10.3-2");
    let no_codes = SubAck {
        packet_id: pid(1),
        codes: Vec::new(),
    };
    assert_eq!(no_codes.encode(&mut out), Err(EncodeError::NoReturnCodes));
    let long_id = tether_mqtt::Connect::new("x".repeat(65_536));
    let error = long_id.encode(&mut out).expect_err("too long");
    assert_eq!(
        error,
        EncodeError::FieldTooLong {
            field: "client identifier",
            len: 65_536
        }
    );
    assert_eq!(
        error.to_string(),
        "[§1.5.3] client identifier is 65536 bytes; at most 65535 fit"
    );
    // A payload that would need a fifth remaining-length byte. `vec![0; n]` maps
    // zeroed pages lazily, so this costs no real memory.
    let huge = Publish::at_most_once(topic, vec![0u8; 268_435_455]);
    assert_eq!(
        huge.encode(&mut out),
        Err(EncodeError::PacketTooLarge {
            remaining: 268_435_455 + 3
        })
    );
    // Failed encodes leave the output untouched.
    assert_eq!(out, vec![0xee]);
}
