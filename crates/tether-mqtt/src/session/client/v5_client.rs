//! The MQTT 5 side of [`ClientSession`]: packets go out in MQTT 5's encoding, and the
//! server's MQTT 5 packets come back as the events a 3.1.1 session reports, plus the
//! reason codes and strings that only MQTT 5 carries.

use super::{ClientEvent, ClientSession, CloseReason, State};
use crate::codec::v5::{
    self, Ack5, Packet5, Properties, Publish5, ReasonCode, ReasonPacket, Subscribe5, Unsubscribe5,
};
use crate::codec::{ConnectReturnCode, Packet, SubAck, SubAckCode};
use crate::qos::QoS;
use crate::session::Timestamp;

/// The 3.1.1 CONNACK 0x01 that a server without MQTT 5 answers a level-5 CONNECT
/// with (MQTT 5 §3.1.2.2 allows it).
const CONNACK_UNSUPPORTED_3_1_1: [u8; 4] = [0x20, 0x02, 0x00, 0x01];

/// A packet a client sends, in MQTT 5's encoding.
pub(super) fn upgrade(packet: &Packet) -> Packet5 {
    match packet {
        Packet::Publish(p) => Packet5::Publish(Publish5::of(p.clone())),
        Packet::PubAck(id) => Packet5::PubAck(Ack5::success(*id)),
        Packet::Subscribe(s) => Packet5::Subscribe(Subscribe5 {
            subscribe: s.clone(),
            options: alloc::vec::Vec::new(),
            properties: Properties::default(),
        }),
        Packet::Unsubscribe(u) => Packet5::Unsubscribe(Unsubscribe5 {
            unsubscribe: u.clone(),
            properties: Properties::default(),
        }),
        Packet::Disconnect => Packet5::Disconnect(ReasonPacket::new(ReasonCode::SUCCESS, None)),
        // The session sends nothing else after CONNECT.
        _ => Packet5::PingReq,
    }
}

impl ClientSession {
    /// Decodes and handles one MQTT 5 packet at the front of `input`: the bytes used,
    /// `None` when more are needed or the session ended.
    pub(super) fn decode_v5(&mut self, input: &[u8], now: Timestamp) -> Option<usize> {
        if matches!(self.state, State::AwaitingConnAck { .. })
            && input.starts_with(&CONNACK_UNSUPPORTED_3_1_1)
        {
            self.close(CloseReason::Refused(
                ConnectReturnCode::UnacceptableProtocolVersion,
            ));
            return None;
        }
        let options = crate::codec::DecodeOptions::new(self.config.max_packet_size);
        match v5::decode(input, &options) {
            Ok(Some((packet, len))) => {
                self.on_packet5(packet, now);
                Some(len)
            }
            Ok(None) => None,
            Err(e) => {
                self.close(CloseReason::Protocol(e));
                None
            }
        }
    }

    fn on_packet5(&mut self, packet: Packet5, now: Timestamp) {
        match packet {
            Packet5::ConnAck(ack) if ack.reason.is_failure() => {
                self.ping_deadline = None;
                self.close(CloseReason::RefusedV5 {
                    code: ack.reason,
                    reason: ack.properties.reason_string,
                });
            }
            Packet5::ConnAck(ack) => {
                if let Some(v5) = self.v5.as_mut()
                    && let Some(max) = ack.properties.receive_maximum
                {
                    v5.receive_maximum = usize::from(max);
                }
                self.on_packet(
                    Packet::ConnAck(crate::codec::ConnAck {
                        session_present: ack.session_present,
                        code: ConnectReturnCode::Accepted,
                    }),
                    now,
                );
            }
            Packet5::Publish(p) => match p.topic.clone() {
                Some(topic) => self.on_packet(Packet::Publish(p.into_publish(topic)), now),
                // We announce no Topic Alias Maximum, so the server may not use one.
                None => self.close(CloseReason::Unexpected("a PUBLISH with a Topic Alias")),
            },
            Packet5::PubAck(a) => self.on_packet(Packet::PubAck(a.packet_id), now),
            Packet5::SubAck(a) => {
                let codes = a
                    .reasons
                    .iter()
                    .map(|r| match QoS::from_u8(r.0) {
                        Some(qos) if !r.is_failure() => SubAckCode::Granted(qos),
                        _ => SubAckCode::Failure,
                    })
                    .collect();
                self.on_packet(
                    Packet::SubAck(SubAck {
                        packet_id: a.packet_id,
                        codes,
                    }),
                    now,
                );
            }
            Packet5::UnsubAck(a) => self.on_packet(Packet::UnsubAck(a.packet_id), now),
            Packet5::PingResp => self.on_packet(Packet::PingResp, now),
            Packet5::Disconnect(d) => self.close(CloseReason::ServerDisconnected {
                code: d.reason,
                reason: d.properties.reason_string,
            }),
            Packet5::Auth(a) => {
                self.ping_deadline = None;
                let pending = self
                    .v5
                    .as_mut()
                    .is_some_and(|v5| core::mem::replace(&mut v5.reauth_pending, false));
                if pending && a.reason == ReasonCode::SUCCESS {
                    self.events.push_back(ClientEvent::Reauthenticated);
                } else {
                    self.close(CloseReason::Unexpected(
                        "an AUTH that answers no re-authentication",
                    ));
                }
            }
            _ => self.close(CloseReason::Unexpected("a packet only clients send")),
        }
    }
}
