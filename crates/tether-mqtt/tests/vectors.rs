//! Byte-exact vectors, written by hand from the MQTT 3.1.1 specification: each packet
//! encodes to exactly these bytes, and these bytes decode to exactly this packet.

use tether_mqtt::{
    ConnAck, Connect, ConnectReturnCode, Delivery, Packet, PacketId, ProtocolLevel, Publish, QoS,
    SubAck, SubAckCode, Subscribe, Subscription, TopicFilter, TopicName, Unsubscribe, Will, decode,
    peek_connect_level,
};

fn id(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn name(s: &str) -> TopicName {
    TopicName::new(s).expect("topic name")
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).expect("topic filter")
}

/// Encodes `packet`, compares with `bytes`, feeds `bytes` to the decoder one byte at
/// a time (each prefix must ask for more), then checks the whole decodes to `packet`
/// and that trailing bytes of the next packet are left alone.
fn check(packet: Packet, bytes: &[u8]) {
    let encoded = packet.to_vec().expect("encode");
    assert_eq!(encoded, bytes, "encoding of {packet:?}");
    for cut in 0..bytes.len() {
        assert_eq!(
            decode(&bytes[..cut], usize::MAX),
            Ok(None),
            "prefix of {cut} bytes"
        );
    }
    let mut two = bytes.to_vec();
    two.extend_from_slice(&[0xc0, 0x00]); // a PINGREQ behind it
    assert_eq!(
        decode(&two, usize::MAX),
        Ok(Some((packet.clone(), bytes.len())))
    );
    assert_eq!(
        decode(bytes, usize::MAX),
        Ok(Some((packet, bytes.len()))),
        "decoding of {bytes:02x?}"
    );
}

/// The CONNECT an IoT Core device sends: clean session, keep-alive 60, user name
/// `unused`, the JWT as password.
pub fn iot_core_connect() -> (Connect, Vec<u8>) {
    let connect = Connect {
        username: Some("unused".into()),
        password: Some(b"jwt".to_vec()),
        ..Connect::new("dev")
    };
    let mut bytes = vec![0x10, 28]; // CONNECT, remaining length 10 + 5 + 8 + 5
    bytes.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T']); // protocol name
    bytes.push(0x04); // level 4 = 3.1.1
    bytes.push(0b1100_0010); // user name, password, clean session
    bytes.extend_from_slice(&[0x00, 0x3c]); // keep-alive 60
    bytes.extend_from_slice(&[0x00, 0x03, b'd', b'e', b'v']);
    bytes.extend_from_slice(&[0x00, 0x06, b'u', b'n', b'u', b's', b'e', b'd']);
    bytes.extend_from_slice(&[0x00, 0x03, b'j', b'w', b't']);
    (connect, bytes)
}

#[test]
fn connect_iot_core() {
    let (connect, bytes) = iot_core_connect();
    assert!(connect.quirks().is_empty());
    check(Packet::Connect(connect), &bytes);
}

#[test]
fn connect_with_will_and_no_credentials() {
    let connect = Connect {
        keep_alive: 10,
        will: Some(Will {
            topic: name("w/t"),
            message: b"bye".to_vec(),
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        ..Connect::new("c")
    };
    let bytes = [
        0x10,
        23, // CONNECT, 10 + 3 + 5 + 5
        0x00,
        0x04,
        b'M',
        b'Q',
        b'T',
        b'T',
        0x04,        //
        0b0010_1110, // will retain, will QoS 1, will flag, clean session
        0x00,
        0x0a, // keep-alive 10
        0x00,
        0x01,
        b'c', // client id
        0x00,
        0x03,
        b'w',
        b'/',
        b't', // will topic
        0x00,
        0x03,
        b'b',
        b'y',
        b'e', // will message
    ];
    check(Packet::Connect(connect), &bytes);
}

#[test]
fn connect_password_without_username_is_a_quirk() {
    let connect = Connect {
        clean_session: false,
        keep_alive: 0,
        password: Some(vec![0xff, 0x00]),
        ..Connect::new("")
    };
    let bytes = [
        0x10,
        16, // 10 + 2 + 4
        0x00,
        0x04,
        b'M',
        b'Q',
        b'T',
        b'T',
        0x04,        //
        0b0100_0000, // password flag only
        0x00,
        0x00, // keep-alive off
        0x00,
        0x00, // empty client id
        0x00,
        0x02,
        0xff,
        0x00, // password bytes, not UTF-8
    ];
    assert_eq!(
        connect.quirks(),
        vec![tether_mqtt::Quirk::PasswordWithoutUsername]
    );
    assert_eq!(
        connect.quirks()[0].to_string(),
        "[MQTT-3.1.2-22] CONNECT has a password but no user name (tolerated)"
    );
    check(Packet::Connect(connect), &bytes);
}

#[test]
fn connack() {
    let ack = |session_present, code| {
        Packet::ConnAck(ConnAck {
            session_present,
            code,
        })
    };
    check(
        ack(false, ConnectReturnCode::Accepted),
        &[0x20, 0x02, 0x00, 0x00],
    );
    check(
        ack(true, ConnectReturnCode::Accepted),
        &[0x20, 0x02, 0x01, 0x00],
    );
    check(
        ack(false, ConnectReturnCode::UnacceptableProtocolVersion),
        &[0x20, 0x02, 0x00, 0x01],
    );
    check(
        ack(false, ConnectReturnCode::IdentifierRejected),
        &[0x20, 0x02, 0x00, 0x02],
    );
    check(
        ack(false, ConnectReturnCode::ServerUnavailable),
        &[0x20, 0x02, 0x00, 0x03],
    );
    check(
        ack(false, ConnectReturnCode::BadUserNameOrPassword),
        &[0x20, 0x02, 0x00, 0x04],
    );
    check(
        ack(false, ConnectReturnCode::NotAuthorized),
        &[0x20, 0x02, 0x00, 0x05],
    );
    // Session Present is never sent with a refusal ([MQTT-3.2.2-4]).
    let refused = ack(true, ConnectReturnCode::NotAuthorized);
    assert_eq!(refused.to_vec(), Ok(vec![0x20, 0x02, 0x00, 0x05]));
}

#[test]
fn publish_qos0() {
    let p = Publish::at_most_once(name("a/b"), b"hi".to_vec());
    check(
        Packet::Publish(p),
        &[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'],
    );
}

#[test]
fn publish_qos1_dup_retain() {
    let p = Publish {
        dup: true,
        retain: true,
        ..Publish::at_least_once(id(10), name("a/b"), b"hi".to_vec())
    };
    check(
        Packet::Publish(p),
        &[
            0x3b, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, b'h', b'i',
        ],
    );
}

#[test]
fn publish_qos2_empty_payload() {
    let p = Publish {
        delivery: Delivery::ExactlyOnce(id(0x1234)),
        ..Publish::at_most_once(name("a/b"), Vec::new())
    };
    check(
        Packet::Publish(p),
        &[0x34, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x12, 0x34],
    );
}

#[test]
fn publish_with_two_byte_remaining_length() {
    let payload = vec![0xaa; 200];
    let p = Publish::at_most_once(name("t"), payload.clone());
    let mut bytes = vec![0x30, 0xcb, 0x01, 0x00, 0x01, b't']; // 203 = 0x4b + 1 * 128
    bytes.extend_from_slice(&payload);
    check(Packet::Publish(p), &bytes);
}

#[test]
fn acknowledgements() {
    check(Packet::PubAck(id(10)), &[0x40, 0x02, 0x00, 0x0a]);
    check(Packet::PubRec(id(0x0102)), &[0x50, 0x02, 0x01, 0x02]);
    check(Packet::PubRel(id(0xffff)), &[0x62, 0x02, 0xff, 0xff]);
    check(Packet::PubComp(id(1)), &[0x70, 0x02, 0x00, 0x01]);
    check(Packet::UnsubAck(id(2)), &[0xb0, 0x02, 0x00, 0x02]);
}

#[test]
fn subscribe() {
    let s = Subscribe {
        packet_id: id(1),
        subscriptions: vec![
            Subscription {
                filter: filter("a/+"),
                qos: QoS::AtLeastOnce,
            },
            Subscription {
                filter: filter("#"),
                qos: QoS::AtMostOnce,
            },
        ],
    };
    check(
        Packet::Subscribe(s),
        &[
            0x82, 0x0c, 0x00, 0x01, // SUBSCRIBE (flags 0010), 12, id 1
            0x00, 0x03, b'a', b'/', b'+', 0x01, // a/+ at QoS 1
            0x00, 0x01, b'#', 0x00, // # at QoS 0
        ],
    );
}

#[test]
fn suback() {
    let s = SubAck {
        packet_id: id(1),
        codes: vec![
            SubAckCode::Granted(QoS::AtLeastOnce),
            SubAckCode::Failure,
            SubAckCode::Granted(QoS::AtMostOnce),
            SubAckCode::Granted(QoS::ExactlyOnce),
        ],
    };
    check(
        Packet::SubAck(s),
        &[0x90, 0x06, 0x00, 0x01, 0x01, 0x80, 0x00, 0x02],
    );
}

#[test]
fn unsubscribe() {
    let u = Unsubscribe {
        packet_id: id(2),
        filters: vec![filter("a/+"), filter("#")],
    };
    check(
        Packet::Unsubscribe(u),
        &[
            0xa2, 0x0a, 0x00, 0x02, 0x00, 0x03, b'a', b'/', b'+', 0x00, 0x01, b'#',
        ],
    );
}

#[test]
fn empty_packets() {
    check(Packet::PingReq, &[0xc0, 0x00]);
    check(Packet::PingResp, &[0xd0, 0x00]);
    check(Packet::Disconnect, &[0xe0, 0x00]);
}

#[test]
fn peek_protocol_level() {
    let (_, v311) = iot_core_connect();
    assert_eq!(peek_connect_level(&v311), Ok(Some(ProtocolLevel::V3_1_1)));
    // Enough of the CONNECT to see the level: fixed header + name + level.
    assert_eq!(
        peek_connect_level(&v311[..9]),
        Ok(Some(ProtocolLevel::V3_1_1))
    );
    for cut in 0..9 {
        assert_eq!(peek_connect_level(&v311[..cut]), Ok(None), "cut {cut}");
    }
    // A minimal MQTT 5 CONNECT: level 5, clean start, no properties, empty client id.
    let v5 = [
        0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3c, 0x00, 0x00, 0x00,
    ];
    assert_eq!(peek_connect_level(&v5), Ok(Some(ProtocolLevel::V5)));
    let v31 = [
        0x10, 0x0c, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03,
    ];
    assert_eq!(peek_connect_level(&v31), Ok(Some(ProtocolLevel::Other(3))));
}
