//! MQTT 5: every packet survives encode → decode, arbitrary bytes never panic the
//! decoder and what it accepts decodes again to itself, properties are refused by
//! name when unknown, misplaced or repeated; and the server session's MQTT 5 side
//! (CONNACK properties, reason strings, Topic Aliases, AUTH).

use proptest::collection::vec;
use proptest::prelude::*;
use tether_mqtt::codec::v5::{
    self, Ack5, ConnAck5, Connect5, Packet5, Properties, PropertyError, Publish5, ReasonCode,
    ReasonPacket, SubAck5, Subscribe5, SubscriptionOptions, Unsubscribe5,
};
use tether_mqtt::session::{CloseReason, Event};
use tether_mqtt::{
    Connect, ConnectReturnCode, DecodeError, DecodeOptions, Delivery, PacketId, QoS, ServerConfig,
    ServerSession, SubAck, SubAckCode, Subscribe, Subscription, Timestamp, TopicFilter, TopicName,
    Unsubscribe,
};

const OPTIONS: DecodeOptions = DecodeOptions::new(1 << 20);

fn id(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 /:._-]{0,12}"
}

fn user_properties() -> impl Strategy<Value = Vec<(String, String)>> {
    vec((text(), text()), 0..3)
}

/// Properties a PUBLISH may carry.
fn publish_properties() -> impl Strategy<Value = Properties> {
    (
        proptest::option::of(0u8..=1),
        proptest::option::of(any::<u32>()),
        proptest::option::of(text()),
        proptest::option::of(1u16..),
        proptest::option::of(vec(any::<u8>(), 0..8)),
        user_properties(),
    )
        .prop_map(
            |(format, expiry, content_type, alias, correlation, user)| Properties {
                payload_format: format,
                message_expiry: expiry,
                content_type,
                topic_alias: alias,
                correlation_data: correlation,
                user_properties: user,
                ..Properties::default()
            },
        )
}

/// Properties a CONNACK may carry.
fn connack_properties() -> impl Strategy<Value = Properties> {
    (
        proptest::option::of(1u16..),
        proptest::option::of(0u8..=1),
        proptest::option::of(1u32..),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(any::<u32>()),
        user_properties(),
    )
        .prop_map(
            |(receive, qos, max, reason, method, expiry, user)| Properties {
                receive_maximum: receive,
                maximum_qos: qos,
                maximum_packet_size: max,
                reason_string: reason,
                auth_method: method,
                session_expiry: expiry,
                user_properties: user,
                ..Properties::default()
            },
        )
}

fn reason_properties() -> impl Strategy<Value = Properties> {
    (proptest::option::of(text()), user_properties()).prop_map(|(reason, user)| Properties {
        reason_string: reason,
        user_properties: user,
        ..Properties::default()
    })
}

fn topic() -> impl Strategy<Value = TopicName> {
    "/[a-z0-9/-]{1,20}".prop_map(|t| TopicName::new(t).expect("topic"))
}

fn filter() -> impl Strategy<Value = TopicFilter> {
    "/[a-z0-9-]{1,8}(/#)?".prop_map(|t| TopicFilter::new(t).expect("filter"))
}

fn defined_reason() -> impl Strategy<Value = ReasonCode> {
    any::<u8>().prop_filter_map("undefined", |v| ReasonCode(v).name().map(|_| ReasonCode(v)))
}

fn packet() -> impl Strategy<Value = Packet5> {
    prop_oneof![
        (
            any::<bool>(),
            any::<u16>(),
            text(),
            proptest::option::of(vec(any::<u8>(), 0..40)),
            proptest::option::of(text()),
            connack_properties().prop_map(|mut p| {
                // Only what a CONNECT may carry.
                p.maximum_qos = None;
                p.reason_string = None;
                p
            })
        )
            .prop_map(
                |(clean, keep_alive, client_id, password, username, properties)| {
                    Packet5::Connect(Box::new(Connect5 {
                        connect: Connect {
                            protocol_level: v5::PROTOCOL_LEVEL_5,
                            clean_session: clean,
                            keep_alive,
                            client_id,
                            will: None,
                            username,
                            password,
                        },
                        properties,
                        will_properties: Properties::default(),
                    }))
                }
            ),
        (any::<bool>(), defined_reason(), connack_properties()).prop_map(
            |(present, reason, properties)| {
                Packet5::ConnAck(ConnAck5 {
                    session_present: present && !reason.is_failure(),
                    reason,
                    properties,
                })
            }
        ),
        (
            topic(),
            any::<bool>(),
            0u8..=2,
            1u16..,
            publish_properties(),
            vec(any::<u8>(), 0..64),
            any::<bool>()
        )
            .prop_map(|(topic, retain, qos, pid, properties, payload, dup)| {
                let delivery = match qos {
                    0 => Delivery::AtMostOnce,
                    1 => Delivery::AtLeastOnce(id(pid)),
                    _ => Delivery::ExactlyOnce(id(pid)),
                };
                Packet5::Publish(Publish5 {
                    dup: dup && qos > 0,
                    delivery,
                    retain,
                    topic: Some(topic),
                    properties,
                    payload,
                })
            }),
        (1u16.., defined_reason(), reason_properties(), 0u8..4).prop_map(
            |(pid, reason, properties, kind)| {
                let ack = Ack5 {
                    packet_id: id(pid),
                    reason,
                    properties,
                };
                match kind {
                    0 => Packet5::PubAck(ack),
                    1 => Packet5::PubRec(ack),
                    2 => Packet5::PubRel(ack),
                    _ => Packet5::PubComp(ack),
                }
            }
        ),
        (
            1u16..,
            vec(
                (filter(), 0u8..=2, any::<bool>(), any::<bool>(), 0u8..=2),
                1..4
            ),
            user_properties()
        )
            .prop_map(|(pid, subs, user)| {
                let subscriptions = subs
                    .iter()
                    .map(|(filter, qos, ..)| Subscription {
                        filter: filter.clone(),
                        qos: QoS::from_u8(*qos).expect("qos"),
                    })
                    .collect();
                let options = subs
                    .iter()
                    .map(|(_, _, no_local, rap, handling)| SubscriptionOptions {
                        no_local: *no_local,
                        retain_as_published: *rap,
                        retain_handling: *handling,
                    })
                    .collect();
                Packet5::Subscribe(Subscribe5 {
                    subscribe: Subscribe {
                        packet_id: id(pid),
                        subscriptions,
                    },
                    options,
                    properties: Properties {
                        user_properties: user,
                        ..Properties::default()
                    },
                })
            }),
        (
            1u16..,
            reason_properties(),
            vec(defined_reason(), 1..4),
            any::<bool>()
        )
            .prop_map(|(pid, properties, reasons, sub)| {
                let ack = SubAck5 {
                    packet_id: id(pid),
                    properties,
                    reasons,
                };
                if sub {
                    Packet5::SubAck(ack)
                } else {
                    Packet5::UnsubAck(ack)
                }
            }),
        (1u16.., vec(filter(), 1..4)).prop_map(|(pid, filters)| {
            Packet5::Unsubscribe(Unsubscribe5 {
                unsubscribe: Unsubscribe {
                    packet_id: id(pid),
                    filters,
                },
                properties: Properties::default(),
            })
        }),
        Just(Packet5::PingReq),
        Just(Packet5::PingResp),
        (defined_reason(), reason_properties()).prop_map(|(reason, properties)| {
            Packet5::Disconnect(ReasonPacket { reason, properties })
        }),
        (
            prop_oneof![
                Just(ReasonCode::SUCCESS),
                Just(ReasonCode::CONTINUE_AUTHENTICATION),
                Just(ReasonCode::REAUTHENTICATE)
            ],
            proptest::option::of(text()),
            proptest::option::of(vec(any::<u8>(), 0..16))
        )
            .prop_map(|(reason, method, data)| {
                Packet5::Auth(ReasonPacket {
                    reason,
                    properties: Properties {
                        auth_method: method,
                        auth_data: data,
                        ..Properties::default()
                    },
                })
            }),
    ]
}

proptest! {
    #[test]
    fn every_packet_survives_encode_then_decode(packet in packet()) {
        let bytes = packet.to_vec().expect("encodes");
        let decoded = v5::decode(&bytes, &OPTIONS).expect("decodes");
        prop_assert_eq!(decoded, Some((packet, bytes.len())));
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            prop_assert_eq!(v5::decode(&bytes[..cut], &OPTIONS), Ok(None));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_what_decodes_is_stable(bytes in vec(any::<u8>(), 0..200)) {
        if let Ok(Some((packet, used))) = v5::decode(&bytes, &OPTIONS) {
            prop_assert!(used <= bytes.len());
            let again = packet.to_vec().expect("a decoded packet encodes");
            let (redecoded, len) = v5::decode(&again, &OPTIONS).expect("re-decodes").expect("whole");
            prop_assert_eq!(len, again.len());
            prop_assert_eq!(redecoded, packet);
        }
    }
}

fn property_error(bytes: &[u8]) -> PropertyError {
    match v5::decode(bytes, &OPTIONS) {
        Err(DecodeError::Property { error, .. }) => error,
        other => panic!("expected a property error, got {other:?}"),
    }
}

#[test]
fn properties_are_refused_by_name() {
    // PUBLISH "/a" QoS 0 with properties (length, then pairs).
    let publish = |props: &[u8]| {
        let mut b = vec![0x30, 0, 0x00, 0x02, b'/', b'a'];
        b.push(u8::try_from(props.len()).expect("short"));
        b.extend_from_slice(props);
        b[1] = u8::try_from(b.len() - 2).expect("short");
        b
    };
    assert_eq!(
        property_error(&publish(&[0x7f, 0])),
        PropertyError::Unknown(0x7f)
    );
    assert_eq!(
        property_error(&publish(&[0x11, 0, 0, 0, 1])),
        PropertyError::NotAllowed("Session Expiry Interval")
    );
    assert_eq!(
        property_error(&publish(&[0x01, 0, 0x01, 1])),
        PropertyError::Duplicate("Payload Format Indicator")
    );
    assert_eq!(
        property_error(&publish(&[0x01, 2])),
        PropertyError::BadValue("Payload Format Indicator", 2)
    );
    let error = v5::decode(
        &publish(&[0x26, 0, 1, b'k', 0, 1, b'v', 0x26, 0, 1, b'k', 0, 1, b'w']),
        &OPTIONS,
    );
    let Ok(Some((Packet5::Publish(p), _))) = error else {
        panic!("user properties repeat freely: {error:?}");
    };
    assert_eq!(p.properties.user_properties.len(), 2);
    let shown = DecodeError::Property {
        place: v5::PropertyPlace::Packet(tether_mqtt::PacketType::Publish),
        error: PropertyError::Duplicate("Topic Alias"),
    }
    .to_string();
    assert_eq!(
        shown,
        "[MQTT 5 §2.2.2.2] PUBLISH properties: Topic Alias is included more than once"
    );
}

#[test]
fn auth_is_a_packet_type_only_in_mqtt5() {
    assert!(matches!(
        tether_mqtt::decode(&[0xf0, 0x00], 16),
        Err(DecodeError::ReservedPacketType { value: 15 })
    ));
    assert!(matches!(
        v5::decode(&[0xf0, 0x00], &OPTIONS),
        Ok(Some((
            Packet5::Auth(ReasonPacket {
                reason: ReasonCode::SUCCESS,
                ..
            }),
            2
        )))
    ));
    // AUTH may only carry 0x00, 0x18 and 0x19.
    assert!(matches!(
        v5::decode(&[0xf0, 0x01, 0x87], &OPTIONS),
        Err(DecodeError::InvalidReasonCode { value: 0x87, .. })
    ));
}

// --- the server session ---

const T0: Timestamp = Timestamp::from_millis(1_000);

fn session() -> ServerSession {
    ServerSession::new(ServerConfig::new(4096).topic_alias_maximum(4), T0)
}

fn feed(s: &mut ServerSession, packet: &Packet5) {
    s.handle_input(&packet.to_vec().expect("encodes"), T0);
}

fn sent(s: &mut ServerSession) -> Vec<Packet5> {
    let mut bytes = s.poll_transmit().unwrap_or_default();
    let mut out = Vec::new();
    while let Ok(Some((p, used))) = v5::decode(&bytes, &OPTIONS) {
        out.push(p);
        bytes.drain(..used);
    }
    assert!(bytes.is_empty(), "undecodable output");
    out
}

fn one(s: &mut ServerSession) -> Packet5 {
    let mut out = sent(s);
    assert_eq!(out.len(), 1, "{out:?}");
    out.remove(0)
}

fn events(s: &mut ServerSession) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn connect_with(properties: Properties) -> Packet5 {
    Packet5::Connect(Box::new(Connect5 {
        connect: Connect {
            protocol_level: v5::PROTOCOL_LEVEL_5,
            password: Some(b"token".to_vec()),
            ..Connect::new("c")
        },
        properties,
        will_properties: Properties::default(),
    }))
}

fn connected(properties: Properties) -> ServerSession {
    let mut s = session();
    feed(&mut s, &connect_with(properties));
    assert!(
        matches!(events(&mut s).as_slice(), [Event::Connect(c)] if c.password.as_deref() == Some(b"token".as_slice()))
    );
    assert!(s.is_v5());
    s.accept(false, T0).expect("pending");
    s
}

#[test]
fn connack_announces_what_the_server_supports() {
    let mut s = session();
    feed(
        &mut s,
        &connect_with(Properties {
            session_expiry: Some(3600),
            auth_method: Some("jwt".into()),
            auth_data: Some(b"t".to_vec()),
            ..Properties::default()
        }),
    );
    let _ = events(&mut s);
    assert_eq!(
        s.connect_properties().and_then(|p| p.auth_data.clone()),
        Some(b"t".to_vec())
    );
    s.accept(false, T0).expect("pending");
    let Packet5::ConnAck(ack) = one(&mut s) else {
        panic!("CONNACK");
    };
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    let p = ack.properties;
    assert_eq!(p.maximum_qos, Some(1));
    assert_eq!(p.retain_available, Some(0));
    assert_eq!(p.topic_alias_maximum, Some(4));
    assert_eq!(p.maximum_packet_size, Some(4096));
    assert_eq!(p.session_expiry, Some(0), "no session is kept");
    assert_eq!(p.auth_method.as_deref(), Some("jwt"));
    assert!(s.connect_properties().is_none(), "released once decided");
}

#[test]
fn a_refusal_carries_its_reason_string_cut_to_size() {
    let mut s = session();
    feed(&mut s, &connect_with(Properties::default()));
    let _ = events(&mut s);
    let long = "é".repeat(400);
    s.refuse_with(ConnectReturnCode::NotAuthorized, None, &long)
        .expect("pending");
    let Packet5::ConnAck(ack) = one(&mut s) else {
        panic!("CONNACK");
    };
    assert_eq!(ack.reason, ReasonCode::NOT_AUTHORIZED);
    let text = ack.properties.reason_string.expect("reason string");
    assert!(text.len() <= tether_mqtt::session::server::MAX_REASON_STRING);
    assert!(long.starts_with(&text));
    assert!(matches!(
        events(&mut s).as_slice(),
        [Event::Closed(CloseReason::Refused(_))]
    ));
}

#[test]
fn a_client_maximum_packet_size_drops_the_reason_string_then_refuses_the_publish() {
    let mut s = connected(Properties {
        maximum_packet_size: Some(40),
        ..Properties::default()
    });
    let _ = sent(&mut s);
    let topic = TopicName::new("/devices/d/config").expect("topic");
    let big = s.publish(topic.clone(), vec![0; 64], QoS::AtMostOnce);
    assert!(matches!(
        big,
        Err(tether_mqtt::session::SessionError::TooLargeForClient { .. })
    ));
    s.publish(topic, vec![0; 4], QoS::AtMostOnce).expect("fits");
    assert_eq!(sent(&mut s).len(), 1);
    s.close_with_reason(ReasonCode::ADMINISTRATIVE_ACTION, &"x".repeat(100));
    let Packet5::Disconnect(d) = one(&mut s) else {
        panic!("DISCONNECT");
    };
    assert_eq!(d.reason, ReasonCode::ADMINISTRATIVE_ACTION);
    assert_eq!(d.properties.reason_string, None, "dropped to fit 40 bytes");
}

#[test]
fn the_client_receive_maximum_bounds_messages_in_flight() {
    let mut s = connected(Properties {
        receive_maximum: Some(2),
        ..Properties::default()
    });
    let topic = TopicName::new("/devices/d/config").expect("topic");
    for _ in 0..2 {
        s.publish(topic.clone(), b"c".to_vec(), QoS::AtLeastOnce)
            .expect("room");
    }
    assert!(matches!(
        s.publish(topic, b"c".to_vec(), QoS::AtLeastOnce),
        Err(tether_mqtt::session::SessionError::InflightFull)
    ));
}

#[test]
fn topic_aliases_resolve_and_out_of_range_ones_close() {
    let mut s = connected(Properties::default());
    let _ = sent(&mut s);
    let with_alias = |topic: Option<&str>, alias: u16| {
        Packet5::Publish(Publish5 {
            dup: false,
            delivery: Delivery::AtMostOnce,
            retain: false,
            topic: topic.map(|t| TopicName::new(t).expect("topic")),
            properties: Properties {
                topic_alias: Some(alias),
                ..Properties::default()
            },
            payload: b"p".to_vec(),
        })
    };
    feed(&mut s, &with_alias(Some("/devices/d/events"), 4));
    feed(&mut s, &with_alias(None, 4));
    let topics: Vec<String> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Publish(p) => Some(p.topic.as_str().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, ["/devices/d/events", "/devices/d/events"]);
    feed(&mut s, &with_alias(Some("/devices/d/events"), 5));
    let Packet5::Disconnect(d) = one(&mut s) else {
        panic!("DISCONNECT");
    };
    assert_eq!(d.reason, ReasonCode::TOPIC_ALIAS_INVALID);
    assert!(matches!(
        events(&mut s).as_slice(),
        [Event::Closed(CloseReason::Violation {
            code: ReasonCode::TOPIC_ALIAS_INVALID,
            ..
        })]
    ));
}

#[test]
fn auth_re_authenticates_under_the_connect_s_method() {
    let mut s = connected(Properties {
        auth_method: Some("jwt".into()),
        auth_data: Some(b"first".to_vec()),
        ..Properties::default()
    });
    let _ = sent(&mut s);
    assert!(matches!(
        s.reauthenticated(),
        Err(tether_mqtt::session::SessionError::NoPendingAuth)
    ));
    let auth = |method: &str, data: &[u8], reason| {
        Packet5::Auth(ReasonPacket {
            reason,
            properties: Properties {
                auth_method: Some(method.into()),
                auth_data: Some(data.to_vec()),
                ..Properties::default()
            },
        })
    };
    feed(&mut s, &auth("jwt", b"second", ReasonCode::REAUTHENTICATE));
    assert_eq!(events(&mut s), [Event::Reauthenticate(b"second".to_vec())]);
    s.reauthenticated().expect("pending");
    let Packet5::Auth(ok) = one(&mut s) else {
        panic!("AUTH");
    };
    assert_eq!(ok.reason, ReasonCode::SUCCESS);
    assert_eq!(ok.properties.auth_method.as_deref(), Some("jwt"));
    // Another method: Bad authentication method.
    feed(&mut s, &auth("SCRAM", b"x", ReasonCode::REAUTHENTICATE));
    let Packet5::Disconnect(d) = one(&mut s) else {
        panic!("DISCONNECT");
    };
    assert_eq!(d.reason, ReasonCode::BAD_AUTHENTICATION_METHOD);
}

#[test]
fn subscribe_and_unsubscribe_answer_with_reason_codes() {
    let mut s = connected(Properties::default());
    let _ = sent(&mut s);
    let subscribe = Subscribe {
        packet_id: id(9),
        subscriptions: vec![
            Subscription {
                filter: TopicFilter::new("/devices/d/config").expect("f"),
                qos: QoS::AtLeastOnce,
            },
            Subscription {
                filter: TopicFilter::new("/devices/x/config").expect("f"),
                qos: QoS::AtLeastOnce,
            },
        ],
    };
    feed(
        &mut s,
        &Packet5::Subscribe(Subscribe5 {
            subscribe: subscribe.clone(),
            options: Vec::new(),
            properties: Properties::default(),
        }),
    );
    assert_eq!(events(&mut s), [Event::Subscribe(subscribe)]);
    s.suback(SubAck {
        packet_id: id(9),
        codes: vec![SubAckCode::Granted(QoS::AtLeastOnce), SubAckCode::Failure],
    })
    .expect("connected");
    feed(
        &mut s,
        &Packet5::Unsubscribe(Unsubscribe5 {
            unsubscribe: Unsubscribe {
                packet_id: id(10),
                filters: vec![TopicFilter::new("/a").expect("f")],
            },
            properties: Properties::default(),
        }),
    );
    let out = sent(&mut s);
    assert!(
        matches!(&out[0], Packet5::SubAck(a) if a.reasons == [ReasonCode::GRANTED_QOS_1, ReasonCode::NOT_AUTHORIZED])
    );
    assert!(
        matches!(&out[1], Packet5::UnsubAck(a) if a.packet_id == id(10) && a.reasons == [ReasonCode::SUCCESS])
    );
    // A Subscription Identifier, which the CONNACK said is not supported.
    feed(
        &mut s,
        &Packet5::Subscribe(Subscribe5 {
            subscribe: Subscribe {
                packet_id: id(11),
                subscriptions: vec![Subscription {
                    filter: TopicFilter::new("/a").expect("f"),
                    qos: QoS::AtMostOnce,
                }],
            },
            options: Vec::new(),
            properties: Properties {
                subscription_ids: vec![7],
                ..Properties::default()
            },
        }),
    );
    assert!(
        matches!(sent(&mut s).as_slice(), [Packet5::Disconnect(d)] if d.reason == ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED)
    );
}

#[test]
fn a_3_1_1_session_is_closed_without_a_packet() {
    let mut s = session();
    s.handle_input(
        &tether_mqtt::Packet::Connect(Connect::new("c"))
            .to_vec()
            .expect("encodes"),
        T0,
    );
    let _ = events(&mut s);
    assert!(!s.is_v5());
    s.accept(false, T0).expect("pending");
    let _ = s.poll_transmit();
    s.close_with_reason(ReasonCode::SESSION_TAKEN_OVER, "taken over");
    assert_eq!(s.poll_transmit(), None);
    assert!(s.is_closed());
}

proptest! {
    /// What the `mqtt5_decode` fuzz target checks on a server session: whatever a
    /// client sends after an accepted MQTT 5 CONNECT, the session answers in valid
    /// MQTT 5 (a DISCONNECT with a reason for what it refuses) and never panics.
    #[test]
    fn a_session_answers_any_input_in_valid_mqtt5(bytes in vec(any::<u8>(), 0..300)) {
        let mut s = connected(Properties {
            auth_method: Some("jwt".into()),
            auth_data: Some(b"t".to_vec()),
            ..Properties::default()
        });
        let _ = sent(&mut s);
        s.handle_input(&bytes, T0);
        let _ = events(&mut s);
        let _ = sent(&mut s);
    }
}

#[test]
fn the_fuzz_seeds_decode() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/mqtt5_decode");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("entry").path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        {
            continue;
        }
        let data = std::fs::read(&path).expect("seed");
        let (packet, used) = v5::decode(&data[1..], &OPTIONS)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .unwrap_or_else(|| panic!("{}: incomplete", path.display()));
        assert_eq!(used, data.len() - 1, "{}", path.display());
        let again = packet.to_vec().expect("encodes");
        assert_eq!(
            v5::decode(&again, &OPTIONS),
            Ok(Some((packet, again.len())))
        );
        seen += 1;
    }
    assert!(seen >= 10, "seeds found: {seen}");
}
