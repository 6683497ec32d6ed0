//! Property tests: every packet survives encode → decode, decoding arbitrary or
//! damaged bytes never panics, a truncated packet asks for more bytes, and a byte
//! stream cut at arbitrary points decodes to the same packets.

use proptest::collection::vec;
use proptest::prelude::*;
use tether_mqtt::{
    ConnAck, Connect, ConnectReturnCode, Delivery, Packet, PacketId, ProtocolLevel, Publish, QoS,
    SubAck, SubAckCode, Subscribe, Subscription, TopicFilter, TopicName, Unsubscribe, Will, decode,
    peek_connect_level,
};

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|v| PacketId::new(v).expect("non-zero"))
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

/// Any string without U+0000 (forbidden in MQTT strings), with extra weight on `/`
/// and on a control character (legal, if discouraged).
fn mqtt_string(max: usize) -> impl Strategy<Value = String> {
    let max = max.max(1);
    vec(
        prop_oneof![
            8 => any::<char>().prop_filter("no NUL", |&c| c != '\0'),
            1 => Just('/'),
            1 => Just('\u{1}'),
        ],
        0..max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    mqtt_string(24).prop_filter_map("not a topic name", |s| TopicName::new(s).ok())
}

fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    (
        vec(prop_oneof![Just("+".to_string()), "[a-z0-9 $]{0,6}"], 1..5),
        any::<bool>(),
    )
        .prop_map(|(mut levels, hash)| {
            if hash {
                levels.push("#".into());
            }
            levels.join("/")
        })
        .prop_filter_map("not a filter", |s| TopicFilter::new(s).ok())
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn connect() -> impl Strategy<Value = Connect> {
    let will = (topic_name(), bytes(16), qos(), any::<bool>()).prop_map(
        |(topic, message, qos, retain)| Will {
            topic,
            message,
            qos,
            retain,
        },
    );
    (
        any::<bool>(),
        any::<u16>(),
        mqtt_string(40),
        proptest::option::of(will),
        proptest::option::of(mqtt_string(12)),
        proptest::option::of(bytes(40)),
    )
        .prop_map(
            |(clean_session, keep_alive, client_id, will, username, password)| Connect {
                clean_session,
                keep_alive,
                will,
                username,
                password,
                ..Connect::new(client_id)
            },
        )
}

fn connack() -> impl Strategy<Value = ConnAck> {
    (any::<bool>(), 0u8..=5).prop_map(|(session_present, code)| {
        let code = ConnectReturnCode::from_u8(code).expect("0..=5");
        ConnAck {
            session_present: session_present && code == ConnectReturnCode::Accepted,
            code,
        }
    })
}

fn publish() -> impl Strategy<Value = Publish> {
    let delivery = prop_oneof![
        Just(Delivery::AtMostOnce),
        packet_id().prop_map(Delivery::AtLeastOnce),
        packet_id().prop_map(Delivery::ExactlyOnce),
    ];
    (
        delivery,
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        bytes(300),
    )
        .prop_map(|(delivery, dup, retain, topic, payload)| Publish {
            dup: dup && delivery != Delivery::AtMostOnce,
            delivery,
            retain,
            topic,
            payload,
        })
}

fn suback_code() -> impl Strategy<Value = SubAckCode> {
    prop_oneof![
        qos().prop_map(SubAckCode::Granted),
        Just(SubAckCode::Failure)
    ]
}

fn packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        connect().prop_map(Packet::Connect),
        connack().prop_map(Packet::ConnAck),
        publish().prop_map(Packet::Publish),
        packet_id().prop_map(Packet::PubAck),
        packet_id().prop_map(Packet::PubRec),
        packet_id().prop_map(Packet::PubRel),
        packet_id().prop_map(Packet::PubComp),
        (packet_id(), vec((topic_filter(), qos()), 1..4)).prop_map(|(packet_id, subs)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                subscriptions: subs
                    .into_iter()
                    .map(|(filter, qos)| Subscription { filter, qos })
                    .collect(),
            })
        }),
        (packet_id(), vec(suback_code(), 1..6))
            .prop_map(|(packet_id, codes)| Packet::SubAck(SubAck { packet_id, codes })),
        (packet_id(), vec(topic_filter(), 1..4)).prop_map(|(packet_id, filters)| {
            Packet::Unsubscribe(Unsubscribe { packet_id, filters })
        }),
        packet_id().prop_map(Packet::UnsubAck),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        Just(Packet::Disconnect),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    /// encode ∘ decode is the identity, and the whole encoding is consumed.
    #[test]
    fn round_trip(packet in packet()) {
        let bytes = packet.to_vec().expect("encodable");
        prop_assert_eq!(decode(&bytes, usize::MAX), Ok(Some((packet.clone(), bytes.len()))));
        if let Packet::Connect(_) = packet {
            prop_assert_eq!(peek_connect_level(&bytes), Ok(Some(ProtocolLevel::V3_1_1)));
        }
    }

    /// Every strict prefix of a valid packet asks for more bytes.
    #[test]
    fn truncated_packet_needs_more(packet in packet(), cut in any::<prop::sample::Index>()) {
        let bytes = packet.to_vec().expect("encodable");
        let cut = cut.index(bytes.len());
        prop_assert_eq!(decode(&bytes[..cut], usize::MAX), Ok(None));
    }

    /// Two packets in one buffer, then the stream fed in arbitrary chunks as a
    /// connection driver would: the same packets come out, in order.
    #[test]
    fn stream_in_chunks(
        packets in vec(packet(), 1..6),
        chunks in vec(1usize..40, 1..50),
    ) {
        let mut stream = Vec::new();
        for p in &packets {
            p.encode(&mut stream).expect("encodable");
        }
        let mut buffer = Vec::new();
        let mut decoded = Vec::new();
        let mut offset = 0;
        let mut sizes = chunks.iter().cycle();
        while offset < stream.len() {
            let n = (*sizes.next().expect("cycle")).min(stream.len() - offset);
            buffer.extend_from_slice(&stream[offset..offset + n]);
            offset += n;
            while let Some((packet, used)) = decode(&buffer, usize::MAX).expect("valid stream") {
                decoded.push(packet);
                buffer.drain(..used);
            }
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(decoded, packets);
    }

    /// Arbitrary bytes never panic, never claim more bytes than given, and whatever
    /// is accepted re-encodes to exactly the bytes consumed (the decoder accepts only
    /// canonical encodings).
    #[test]
    fn arbitrary_bytes(bytes in bytes(200), max in 0usize..300) {
        check_decoded(&bytes, max)?;
        let _ = peek_connect_level(&bytes);
    }

    /// Valid packets with a few bytes changed: the interesting inputs for a decoder.
    #[test]
    fn damaged_packets(
        packet in packet(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = packet.to_vec().expect("encodable");
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        check_decoded(&bytes, usize::MAX)?;
        let _ = peek_connect_level(&bytes);
    }
}

fn check_decoded(bytes: &[u8], max: usize) -> Result<(), TestCaseError> {
    if let Ok(Some((packet, used))) = decode(bytes, max) {
        prop_assert!(used <= bytes.len());
        prop_assert!(used <= max);
        prop_assert_eq!(
            packet.to_vec().expect("decoded packets encode"),
            &bytes[..used]
        );
    }
    Ok(())
}
