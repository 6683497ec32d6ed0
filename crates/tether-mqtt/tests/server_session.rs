//! The server session driven in memory by a client built on the same codec, with time
//! passed in: no sockets, no sleeps.

use core::time::Duration;

use tether_mqtt::session::{CloseReason, Event, SessionError};
use tether_mqtt::{
    ConnectReturnCode, DecodeError, Packet, PacketId, PacketType, Publish, QoS, ServerConfig,
    ServerSession, SubAck, SubAckCode, Subscribe, Subscription, Timestamp, TopicFilter, TopicName,
    Unsubscribe, decode,
};

fn t(millis: u64) -> Timestamp {
    Timestamp::from_millis(millis)
}

fn id(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn bytes(packet: impl Into<Packet>) -> Vec<u8> {
    packet.into().to_vec().expect("encodable")
}

fn connect(keep_alive: u16) -> Vec<u8> {
    bytes(tether_mqtt::Connect {
        keep_alive,
        username: Some("unused".into()),
        password: Some(b"jwt".to_vec()),
        ..tether_mqtt::Connect::new("projects/p/locations/l/registries/reg/devices/dev")
    })
}

/// Decodes everything the server queued for the client.
fn sent(server: &mut ServerSession) -> Vec<Packet> {
    let mut out = Vec::new();
    let Some(mut buf) = server.poll_transmit() else {
        return out;
    };
    while let Some((packet, used)) = decode(&buf, usize::MAX).expect("server sends valid MQTT") {
        out.push(packet);
        buf.drain(..used);
    }
    assert!(buf.is_empty());
    out
}

fn events(server: &mut ServerSession) -> Vec<Event> {
    core::iter::from_fn(|| server.poll_event()).collect()
}

fn accepted(error_ok: ConnectReturnCode) -> Packet {
    Packet::ConnAck(tether_mqtt::ConnAck {
        session_present: false,
        code: error_ok,
    })
}

/// A session past CONNECT/CONNACK at time 0 with the given keep-alive.
fn connected(keep_alive: u16) -> ServerSession {
    let mut server = ServerSession::new(ServerConfig::new(1 << 16), t(0));
    server.handle_input(&connect(keep_alive), t(0));
    assert!(matches!(
        events(&mut server).as_slice(),
        [Event::Connect(_)]
    ));
    server.accept(false, t(0)).expect("pending connect");
    assert_eq!(
        sent(&mut server),
        vec![accepted(ConnectReturnCode::Accepted)]
    );
    server
}

#[test]
fn connect_accept_and_ping() {
    let mut server = ServerSession::new(ServerConfig::new(1 << 16), t(0));
    // The CONNECT arrives one byte at a time.
    for b in connect(60) {
        assert!(events(&mut server).is_empty());
        server.handle_input(&[b], t(5));
    }
    match events(&mut server).as_slice() {
        [Event::Connect(c)] => {
            assert_eq!(c.keep_alive, 60);
            assert_eq!(c.password.as_deref(), Some(&b"jwt"[..]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.poll_transmit(),
        None,
        "no CONNACK before the gateway decides"
    );
    server.accept(false, t(10)).expect("pending");
    assert_eq!(
        sent(&mut server),
        vec![accepted(ConnectReturnCode::Accepted)]
    );
    assert_eq!(
        server.accept(false, t(10)),
        Err(SessionError::NoPendingConnect)
    );
    server.handle_input(&[0xc0, 0x00], t(20));
    assert_eq!(sent(&mut server), vec![Packet::PingResp]);
    assert_eq!(events(&mut server), vec![Event::Heartbeat]);
    assert!(!server.is_closed());
}

#[test]
fn first_packet_must_be_connect() {
    let mut server = ServerSession::new(ServerConfig::new(1024), t(0));
    server.handle_input(&[0xc0], t(1));
    assert_eq!(
        events(&mut server),
        vec![Event::Closed(CloseReason::FirstPacketNotConnect(
            PacketType::PingReq
        ))]
    );
    assert!(server.is_closed());
    // Input after the close is ignored.
    server.handle_input(&connect(60), t(2));
    assert!(events(&mut server).is_empty());
}

#[test]
fn connect_timeout() {
    let config = ServerConfig::new(1024).connect_timeout(Duration::from_secs(5));
    let mut server = ServerSession::new(config, t(1_000));
    assert_eq!(server.poll_timeout(), Some(t(6_000)));
    server.handle_input(&connect(60)[..3], t(2_000));
    server.handle_timeout(t(5_999));
    assert!(!server.is_closed());
    server.handle_timeout(t(6_000));
    assert_eq!(
        events(&mut server),
        vec![Event::Closed(CloseReason::ConnectTimeout)]
    );
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn keep_alive_is_one_and_a_half_times() {
    let mut server = connected(10);
    assert_eq!(server.poll_timeout(), Some(t(15_000)));
    server.handle_timeout(t(14_999));
    assert!(!server.is_closed());
    // Any packet resets the timer.
    server.handle_input(&[0xc0, 0x00], t(14_000));
    assert_eq!(server.poll_timeout(), Some(t(29_000)));
    server.handle_timeout(t(28_999));
    assert!(!server.is_closed());
    server.handle_timeout(t(29_000));
    assert!(server.is_closed());
    let closed = events(&mut server);
    assert_eq!(
        closed,
        vec![
            Event::Heartbeat,
            Event::Closed(CloseReason::KeepAliveTimeout)
        ]
    );
    assert_eq!(
        CloseReason::KeepAliveTimeout.to_string(),
        "[MQTT-3.1.2-24] the MQTT keep-alive check failed"
    );
}

#[test]
fn keep_alive_zero_means_no_timer() {
    let server = connected(0);
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn refuse_sends_connack_and_ignores_pipelined_packets() {
    let mut server = ServerSession::new(ServerConfig::new(1024), t(0));
    let mut input = connect(60);
    input.extend(bytes(Publish::at_most_once(
        TopicName::new("/devices/dev/events").expect("topic"),
        b"x".to_vec(),
    )));
    server.handle_input(&input, t(0));
    assert!(matches!(
        events(&mut server).as_slice(),
        [Event::Connect(_)]
    ));
    assert_eq!(
        server.refuse(ConnectReturnCode::Accepted),
        Err(SessionError::RefuseWithAccepted)
    );
    server
        .refuse(ConnectReturnCode::NotAuthorized)
        .expect("pending");
    assert_eq!(
        sent(&mut server),
        vec![accepted(ConnectReturnCode::NotAuthorized)]
    );
    // The PUBLISH sent after CONNECT never surfaces ([MQTT-3.1.4-5]).
    assert_eq!(
        events(&mut server),
        vec![Event::Closed(CloseReason::Refused(
            ConnectReturnCode::NotAuthorized
        ))]
    );
}

#[test]
fn pipelined_packets_are_processed_after_accept() {
    let mut server = ServerSession::new(ServerConfig::new(1024), t(0));
    let mut input = connect(60);
    input.extend(bytes(Subscribe {
        packet_id: id(1),
        subscriptions: vec![Subscription {
            filter: TopicFilter::new("/devices/dev/config").expect("filter"),
            qos: QoS::AtLeastOnce,
        }],
    }));
    server.handle_input(&input, t(0));
    assert!(matches!(
        events(&mut server).as_slice(),
        [Event::Connect(_)]
    ));
    server.accept(false, t(1)).expect("pending");
    assert!(
        matches!(events(&mut server).as_slice(), [Event::Subscribe(s)] if s.packet_id == id(1))
    );
    server
        .suback(SubAck {
            packet_id: id(1),
            codes: vec![SubAckCode::Granted(QoS::AtLeastOnce)],
        })
        .expect("connected");
    let out = sent(&mut server);
    assert_eq!(out.len(), 2);
    assert!(matches!(out[1], Packet::SubAck(_)));
}

#[test]
fn input_during_authentication_is_bounded() {
    let mut server = ServerSession::new(ServerConfig::new(128), t(0));
    server.handle_input(&connect(60), t(0));
    assert!(matches!(
        events(&mut server).as_slice(),
        [Event::Connect(_)]
    ));
    server.handle_input(&[0xc0, 0x00].repeat(64), t(1));
    assert!(events(&mut server).is_empty(), "128 bytes may wait");
    server.handle_input(&[0xc0], t(1));
    assert_eq!(
        events(&mut server),
        vec![Event::Closed(CloseReason::InputOverflow)]
    );
}

#[test]
fn unsupported_level_gets_connack_1() {
    // Level 3 is MQTT 3.1 under the wrong name, 6 does not exist; 5 is MQTT 5 (tests/v5.rs).
    for level in [3, 6] {
        let mut other = connect(60);
        other[8] = level; // protocol level byte
        let mut server = ServerSession::new(ServerConfig::new(1024), t(0));
        server.handle_input(&other, t(0));
        assert_eq!(
            sent(&mut server),
            vec![accepted(ConnectReturnCode::UnacceptableProtocolVersion)]
        );
        assert_eq!(
            events(&mut server),
            vec![Event::Closed(CloseReason::Protocol(
                DecodeError::UnsupportedProtocolLevel { level }
            ))]
        );
    }
}

#[test]
fn protocol_errors_and_forbidden_packets_close() {
    let mut server = connected(60);
    server.handle_input(&connect(60), t(1));
    assert_eq!(
        events(&mut server),
        vec![Event::Closed(CloseReason::SecondConnect)]
    );

    let mut server = connected(60);
    server.handle_input(&[0x30, 0x04, 0x00, 0x02, b'a', b'+'], t(1));
    assert!(matches!(
        events(&mut server).as_slice(),
        [Event::Closed(CloseReason::Protocol(
            DecodeError::Topic { .. }
        ))]
    ));

    let mut server = connected(60);
    server.handle_input(&[0x62, 0x02, 0x00, 0x01], t(1)); // PUBREL: no QoS 2 here
    assert_eq!(
        events(&mut server),
        vec![Event::Closed(CloseReason::UnexpectedPacket(
            PacketType::PubRel
        ))]
    );

    let mut server = connected(60);
    server.handle_input(&[0xd0, 0x00], t(1)); // PINGRESP is server → client
    assert_eq!(
        events(&mut server),
        vec![Event::Closed(CloseReason::UnexpectedPacket(
            PacketType::PingResp
        ))]
    );

    let mut server = connected(60);
    server.handle_input(&[0xe0, 0x00], t(1));
    assert_eq!(
        events(&mut server),
        vec![Event::Closed(CloseReason::ClientDisconnected)]
    );
    assert_eq!(server.puback(id(1)), Err(SessionError::NotConnected));
}

#[test]
fn device_publish_qos1_is_acked_when_the_gateway_says() {
    let mut server = connected(60);
    let topic = TopicName::new("/devices/dev/events").expect("topic");
    server.handle_input(
        &bytes(Publish::at_least_once(id(7), topic, b"t".to_vec())),
        t(1),
    );
    let evs = events(&mut server);
    let [Event::Publish(p)] = evs.as_slice() else {
        panic!("expected one publish, got {evs:?}");
    };
    assert_eq!(p.delivery.packet_id(), Some(id(7)));
    assert_eq!(
        server.poll_transmit(),
        None,
        "no PUBACK until the sink accepted it"
    );
    server.puback(id(7)).expect("connected");
    assert_eq!(sent(&mut server), vec![Packet::PubAck(id(7))]);
}

#[test]
fn unsubscribe_is_acknowledged() {
    let mut server = connected(60);
    server.handle_input(
        &bytes(Unsubscribe {
            packet_id: id(3),
            filters: vec![TopicFilter::new("/devices/dev/commands/#").expect("filter")],
        }),
        t(1),
    );
    assert!(matches!(
        events(&mut server).as_slice(),
        [Event::Unsubscribe(_)]
    ));
    assert_eq!(sent(&mut server), vec![Packet::UnsubAck(id(3))]);
}

#[test]
fn outgoing_qos1_inflight_tracking() {
    let config = ServerConfig::new(1024).max_inflight(2);
    let mut server = ServerSession::new(config, t(0));
    server.handle_input(&connect(60), t(0));
    events(&mut server);
    server.accept(false, t(0)).expect("pending");
    sent(&mut server);

    let topic = TopicName::new("/devices/dev/config").expect("topic");
    let a = server
        .publish(topic.clone(), b"v1".to_vec(), QoS::AtLeastOnce)
        .expect("room")
        .expect("qos1 id");
    let b = server
        .publish(topic.clone(), b"v2".to_vec(), QoS::AtLeastOnce)
        .expect("room")
        .expect("qos1 id");
    assert_ne!(a, b);
    assert_eq!(server.inflight(), 2);
    assert_eq!(
        server.publish(topic.clone(), b"v3".to_vec(), QoS::AtLeastOnce),
        Err(SessionError::InflightFull)
    );
    assert_eq!(
        server.publish(topic.clone(), Vec::new(), QoS::ExactlyOnce),
        Err(SessionError::Qos2NotSupported)
    );
    // QoS 0 is not limited.
    assert_eq!(
        server.publish(topic.clone(), b"c".to_vec(), QoS::AtMostOnce),
        Ok(None)
    );
    let out = sent(&mut server);
    assert_eq!(out.len(), 3);
    assert!(matches!(&out[0], Packet::Publish(p) if p.delivery.packet_id() == Some(a)));

    server.handle_input(&bytes(Packet::PubAck(a)), t(1));
    assert_eq!(events(&mut server), vec![Event::Delivered(a)]);
    assert_eq!(server.inflight(), 1);
    // An unknown or repeated PUBACK is ignored.
    server.handle_input(&bytes(Packet::PubAck(a)), t(2));
    assert!(events(&mut server).is_empty());
    // The freed slot is usable, and a still-inflight id is never reused.
    let c = server
        .publish(topic, b"v3".to_vec(), QoS::AtLeastOnce)
        .expect("room")
        .expect("qos1 id");
    assert_ne!(c, b);
    server.close();
    assert_eq!(
        events(&mut server),
        vec![Event::Closed(CloseReason::ClosedByServer)]
    );
    assert_eq!(server.inflight(), 0);
}

#[test]
fn resend_repeats_an_inflight_message_with_dup_and_forget_drops_it() {
    let mut server = connected(60);
    let topic = TopicName::new("/devices/dev/config").expect("topic");
    let first = server
        .publish(topic.clone(), b"v1".to_vec(), QoS::AtLeastOnce)
        .expect("publish")
        .expect("QoS 1 id");
    let _ = sent(&mut server);
    server
        .resend(first, topic.clone(), b"v1".to_vec())
        .expect("resend");
    match sent(&mut server).as_slice() {
        [Packet::Publish(p)] => {
            assert!(p.dup);
            assert_eq!(p.delivery.packet_id(), Some(first));
        }
        other => panic!("expected one DUP PUBLISH, got {other:?}"),
    }
    assert!(server.forget(first));
    assert_eq!(server.inflight(), 0);
    assert_eq!(
        server.resend(first, topic, b"v1".to_vec()),
        Err(SessionError::UnknownPacketId)
    );
    // A late PUBACK of a forgotten id is ignored.
    server.handle_input(&bytes(Packet::PubAck(first)), t(10));
    assert!(events(&mut server).is_empty());
}

/// Feeds `input` in pieces of `chunk` bytes, accepting the CONNECT as soon as it is
/// reported, and returns every event and every byte the server sent.
fn drive_in_chunks(input: &[u8], chunk: usize) -> (Vec<Event>, Vec<u8>) {
    let mut server = ServerSession::new(ServerConfig::new(1 << 16), t(0));
    let (mut all_events, mut out) = (Vec::new(), Vec::new());
    for piece in input.chunks(chunk) {
        server.handle_input(piece, t(1));
        for event in events(&mut server) {
            let is_connect = matches!(event, Event::Connect(_));
            all_events.push(event);
            if is_connect {
                server.accept(false, t(1)).expect("pending connect");
                all_events.extend(events(&mut server));
            }
        }
        out.extend(server.poll_transmit().unwrap_or_default());
    }
    (all_events, out)
}

#[test]
fn many_packets_in_one_read_give_the_same_events_as_any_split() {
    let topic = TopicName::new("/devices/dev/events").expect("topic");
    let mut input = connect(60);
    for i in 0..160u16 {
        // Small messages, and every 40th one past 127 bytes (a 2-byte length field).
        let payload = vec![u8::try_from(i % 256).expect("byte"); if i % 40 == 0 { 200 } else { 8 }];
        let publish = if i % 2 == 0 {
            Publish::at_most_once(topic.clone(), payload)
        } else {
            Publish::at_least_once(id(i), topic.clone(), payload)
        };
        input.extend(bytes(publish));
    }
    input.extend([0xc0, 0x00]); // PINGREQ
    input.extend(bytes(Unsubscribe {
        packet_id: id(9),
        filters: vec![TopicFilter::new("/devices/dev/commands/#").expect("filter")],
    }));

    let (whole_events, whole_out) = drive_in_chunks(&input, input.len());
    let publishes = whole_events
        .iter()
        .filter(|e| matches!(e, Event::Publish(_)))
        .count();
    assert_eq!(publishes, 160);
    assert!(
        matches!(whole_events.last(), Some(Event::Unsubscribe(u)) if u.packet_id == id(9)),
        "{:?}",
        whole_events.last()
    );
    for chunk in [1, 2, 7, 100, 4096] {
        let (split_events, split_out) = drive_in_chunks(&input, chunk);
        assert_eq!(split_events, whole_events, "{chunk}-byte reads");
        assert_eq!(split_out, whole_out, "{chunk}-byte reads");
    }
}

/// A burst (hundreds of PUBLISH packets in one read, as after a stall) queues
/// hundreds of events; once they are drained the session gives that memory back
/// instead of keeping it for as long as the connection lives.
#[test]
fn a_drained_burst_gives_its_memory_back() {
    let mut server = connected(60);
    let steady = server.buffered_bytes();
    let mut burst = Vec::new();
    for n in 1..=400u16 {
        let topic = TopicName::new("/devices/dev/events").expect("topic");
        burst.extend(bytes(Publish::at_least_once(id(n), topic, vec![7; 200])));
    }
    // Half a packet at the end stays held until its rest arrives.
    let cut = burst.len() - 100;
    server.handle_input(&burst[..cut], t(1));
    let during = server.buffered_bytes();
    assert!(during > 20 * 1024, "the burst is queued: {during} bytes");
    let drained = events(&mut server).len();
    assert_eq!(drained, 399);
    server.handle_input(&burst[cut..], t(2));
    assert_eq!(events(&mut server).len(), 1);
    let after = server.buffered_bytes();
    assert!(
        after <= steady.max(8 * 1024),
        "{after} bytes kept after the burst (steady: {steady}, during: {during})"
    );
}

/// A connection that waits for input gives back its drained event queue: the one its
/// CONNECT made would otherwise stay for the connection's lifetime.
#[test]
fn an_idle_session_releases_its_drained_event_queue() {
    let mut server = connected(60);
    assert!(
        server.buffered_bytes() > 0,
        "the CONNECT's queue is still held"
    );
    server.release_idle_memory();
    assert_eq!(server.buffered_bytes(), 0);
    let topic = TopicName::new("/devices/dev/events").expect("topic");
    server.handle_input(
        &bytes(Publish::at_least_once(id(1), topic, vec![1; 10])),
        t(1),
    );
    server.release_idle_memory();
    assert_eq!(events(&mut server).len(), 1, "a queued event is kept");
    server.release_idle_memory();
    assert_eq!(server.buffered_bytes(), 0);
}
