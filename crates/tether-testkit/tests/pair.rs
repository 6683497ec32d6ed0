//! The device's and the gateway's MQTT sessions against each other in memory: the
//! handshake, QoS 1 both ways, SUBSCRIBE and keep-alive, on fake time (no sockets, no
//! sleeping).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tether_mqtt::session::client::CloseReason as ClientClose;
use tether_mqtt::session::server::CloseReason as ServerClose;
use tether_mqtt::session::{ClientEvent, Event};
use tether_mqtt::{
    Connect, ConnectReturnCode, Delivery, QoS, SubAck, SubAckCode, TopicFilter, TopicName,
};
use tether_testkit::Pair;

const CLIENT_ID: &str = "projects/p/locations/l/registries/reg/devices/dev";

fn device_connect(keep_alive: u16) -> Connect {
    Connect {
        keep_alive,
        username: Some("unused".into()),
        password: Some(b"a.jwt.token".to_vec()),
        ..Connect::new(CLIENT_ID)
    }
}

fn topic(name: &str) -> TopicName {
    TopicName::new(name).expect("valid topic")
}

/// A pair past CONNECT/CONNACK with the given keep-alive.
fn connected(keep_alive: u16) -> Pair {
    let mut pair = Pair::default();
    pair.connect(&device_connect(keep_alive));
    pair
}

#[test]
fn connect_reaches_the_gateway_and_its_decision_reaches_the_device() {
    let mut pair = Pair::default();
    let connect = device_connect(60);
    pair.client.connect(&connect, pair.now()).unwrap();
    pair.drive();
    let events = pair.server_events();
    let [Event::Connect(seen)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(seen.client_id, CLIENT_ID);
    assert_eq!(seen.password.as_deref(), Some(&b"a.jwt.token"[..]));
    assert!(
        pair.client_events().is_empty(),
        "no CONNACK before the gateway decides"
    );

    pair.server.accept(false, pair.now()).unwrap();
    pair.drive();
    assert_eq!(
        pair.client_events(),
        [ClientEvent::Connected {
            session_present: false
        }]
    );
    assert!(pair.client.is_connected());
}

#[test]
fn a_refused_connect_closes_both_ends_with_the_code() {
    let mut pair = Pair::default();
    pair.client
        .connect(&device_connect(60), pair.now())
        .unwrap();
    pair.drive();
    assert!(matches!(
        pair.server_events().as_slice(),
        [Event::Connect(_)]
    ));
    pair.server
        .refuse(ConnectReturnCode::NotAuthorized)
        .unwrap();
    pair.drive();
    assert_eq!(
        pair.client_events(),
        [ClientEvent::Closed(ClientClose::Refused(
            ConnectReturnCode::NotAuthorized
        ))]
    );
    assert_eq!(
        pair.server_events(),
        [Event::Closed(ServerClose::Refused(
            ConnectReturnCode::NotAuthorized
        ))]
    );
}

#[test]
fn qos1_from_the_device_is_done_only_when_the_gateway_acknowledges() {
    let mut pair = connected(60);
    let now = pair.now();
    let id = pair
        .client
        .publish(
            topic("/devices/dev/events"),
            b"21.5".to_vec(),
            QoS::AtLeastOnce,
            now,
        )
        .unwrap()
        .expect("a packet id for QoS 1");
    pair.drive();
    let events = pair.server_events();
    let [Event::Publish(publish)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(publish.topic.as_str(), "/devices/dev/events");
    assert_eq!(publish.payload, b"21.5");
    assert_eq!(publish.delivery, Delivery::AtLeastOnce(id));
    assert_eq!(pair.client.inflight(), 1, "waiting for the PUBACK");
    assert!(pair.client_events().is_empty());

    // The gateway acknowledges once its sink has the message.
    pair.server.puback(id).unwrap();
    pair.drive();
    assert_eq!(pair.client_events(), [ClientEvent::Published(id)]);
    assert_eq!(pair.client.inflight(), 0);
}

#[test]
fn qos1_from_the_gateway_is_delivered_when_the_device_acknowledges() {
    let mut pair = connected(60);
    let id = pair
        .server
        .publish(
            topic("/devices/dev/config"),
            b"{\"led\":1}".to_vec(),
            QoS::AtLeastOnce,
        )
        .unwrap()
        .expect("a packet id for QoS 1");
    pair.drive();
    assert_eq!(
        pair.client_events(),
        [ClientEvent::Message {
            topic: topic("/devices/dev/config"),
            payload: b"{\"led\":1}".to_vec(),
            ack: Some(id),
            dup: false,
        }]
    );
    assert_eq!(pair.server.inflight(), 1);
    assert!(
        pair.server_events().is_empty(),
        "no PUBACK until the app takes it"
    );

    let now = pair.now();
    pair.client.ack(id, now);
    pair.drive();
    assert_eq!(pair.server_events(), [Event::Delivered(id)]);
    assert_eq!(pair.server.inflight(), 0);
}

#[test]
fn subscribe_is_answered_with_the_granted_qos_and_then_delivers() {
    let mut pair = connected(60);
    let filters = vec![
        (
            TopicFilter::new("/devices/dev/config").unwrap(),
            QoS::AtLeastOnce,
        ),
        (
            TopicFilter::new("/devices/dev/commands/#").unwrap(),
            QoS::ExactlyOnce,
        ),
    ];
    let now = pair.now();
    let id = pair.client.subscribe(filters.clone(), now).unwrap();
    pair.drive();
    let events = pair.server_events();
    let [Event::Subscribe(subscribe)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(subscribe.packet_id, id);
    let asked: Vec<_> = subscribe
        .subscriptions
        .iter()
        .map(|s| (s.filter.clone(), s.qos))
        .collect();
    assert_eq!(asked, filters);

    // IoT Core grants at most QoS 1.
    let codes = vec![
        SubAckCode::Granted(QoS::AtLeastOnce),
        SubAckCode::Granted(QoS::AtLeastOnce),
    ];
    pair.server
        .suback(SubAck {
            packet_id: id,
            codes: codes.clone(),
        })
        .unwrap();
    pair.server
        .publish(
            topic("/devices/dev/commands/reboot"),
            b"now".to_vec(),
            QoS::AtMostOnce,
        )
        .unwrap();
    pair.drive();
    assert_eq!(
        pair.client_events(),
        [
            ClientEvent::Subscribed { id, codes },
            ClientEvent::Message {
                topic: topic("/devices/dev/commands/reboot"),
                payload: b"now".to_vec(),
                ack: None,
                dup: false,
            },
        ]
    );
}

#[test]
fn keep_alive_holds_while_both_talk_and_times_out_at_one_and_a_half_when_cut() {
    let mut pair = connected(10);

    // An hour of silence from the application: the client pings every 10 s and the
    // gateway sees each ping.
    pair.advance(Duration::from_secs(3600));
    let heartbeats = pair
        .server_events()
        .into_iter()
        .filter(|e| *e == Event::Heartbeat)
        .count();
    assert_eq!(heartbeats, 360);
    assert!(pair.client.is_connected());
    assert!(!pair.server.is_closed());

    // The link drops right after a PINGREQ/PINGRESP at 3600 s: the gateway gives up
    // 15 s (1.5 × 10 s) after the last packet it received, not a millisecond earlier.
    pair.partition();
    pair.advance(Duration::from_millis(14_999));
    assert!(!pair.server.is_closed());
    pair.advance(Duration::from_millis(1));
    assert_eq!(
        pair.server_events(),
        [Event::Closed(ServerClose::KeepAliveTimeout)]
    );

    // The device pinged at 3610 s and heard nothing back within its 10 s ping timeout.
    assert!(pair.client.is_connected(), "still waiting at 3615 s");
    pair.advance(Duration::from_secs(5));
    assert_eq!(
        pair.client_events(),
        [ClientEvent::Closed(ClientClose::KeepAliveTimeout)]
    );
}

#[test]
fn the_device_sees_its_transport_close_when_the_gateway_closes() {
    let mut pair = connected(60);
    pair.server.close();
    pair.drive();
    assert_eq!(
        pair.server_events(),
        [Event::Closed(ServerClose::ClosedByServer)]
    );
    assert_eq!(
        pair.client_events(),
        [ClientEvent::Closed(ClientClose::TransportClosed)]
    );
}
