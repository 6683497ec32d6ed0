//! After a hang-up before TLS: whether the port takes MQTT without TLS.
//!
//! A plain MQTT listener (Mosquitto's default, 1883) reads a TLS ClientHello as a
//! malformed packet and closes the connection, just as a server shedding connects
//! does (Tether past `--connect-rate-per-ip`). A plain CONNECT on a new connection
//! tells them apart: only the first answers it with a CONNACK.

use std::net::SocketAddr;
use std::time::Duration;

use tether_mqtt::{Connect, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest wait for the probe's answer, whatever `--timeout` says: a server that
/// just hung up on us answers at once or not at all.
const MAX_WAIT: Duration = Duration::from_secs(3);

/// Whether `addr` answers a plain MQTT 3.1.1 CONNECT with a CONNACK (accepted or
/// not), within `limit`. The probe disconnects at once; its client id is its own, so
/// it cannot take over a device's session.
pub async fn speaks_plain_mqtt(addr: SocketAddr, limit: Duration) -> bool {
    tokio::time::timeout(limit.min(MAX_WAIT), probe(addr))
        .await
        .unwrap_or(false)
}

async fn probe(addr: SocketAddr) -> bool {
    let Ok(mut tcp) = TcpStream::connect(addr).await else {
        return false;
    };
    let connect = Connect {
        protocol_level: 4, // MQTT 3.1.1
        clean_session: true,
        keep_alive: 10,
        client_id: probe_client_id(),
        will: None,
        username: None,
        password: None,
    };
    let mut out = Vec::new();
    if connect.encode(&mut out).is_err() || tcp.write_all(&out).await.is_err() {
        return false;
    }
    // A CONNACK is 4 bytes (MQTT 5's a few more); anything else is not one.
    let mut buf = [0u8; 64];
    let mut got = 0;
    loop {
        match tcp.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
        match tether_mqtt::decode(&buf[..got], buf.len()) {
            Ok(Some((Packet::ConnAck(_), _))) => {
                let mut bye = Vec::new();
                if Packet::Disconnect.encode(&mut bye).is_ok() {
                    let _ = tcp.write_all(&bye).await;
                }
                return true;
            }
            Ok(None) if got < buf.len() => {}
            _ => return false,
        }
    }
}

fn probe_client_id() -> String {
    let mut nonce = [0u8; 6];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce);
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    format!("tether-doctor-probe-{hex}")
}
