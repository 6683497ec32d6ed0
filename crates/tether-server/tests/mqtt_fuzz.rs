//! Hundreds of damaged inputs against a live gateway (before and after CONNECT):
//! no task panics and every socket is closed or still served, none leaked.

mod mqtt_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mqtt_support::*;
use tether_mqtt::{
    Packet, PacketId, Publish, QoS, Subscribe, Subscription, TopicFilter, TopicName,
};

/// A small deterministic generator (no extra dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next()).unwrap_or(0) % n.max(1)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() & 0xff) as u8).collect()
    }
}

fn valid_packets(device: &str) -> Vec<Vec<u8>> {
    let id = PacketId::new(7).unwrap_or_else(|| unreachable!());
    let packets = [
        Packet::Publish(Publish::at_least_once(
            id,
            TopicName::new(format!("/devices/{device}/events/a"))
                .unwrap_or_else(|_| unreachable!()),
            b"payload".to_vec(),
        )),
        Packet::Publish(Publish::at_most_once(
            TopicName::new(format!("/devices/{device}/state")).unwrap_or_else(|_| unreachable!()),
            b"state".to_vec(),
        )),
        Packet::Subscribe(Subscribe {
            packet_id: id,
            subscriptions: vec![Subscription {
                filter: TopicFilter::new(format!("/devices/{device}/config"))
                    .unwrap_or_else(|_| unreachable!()),
                qos: QoS::AtLeastOnce,
            }],
        }),
        Packet::PingReq,
        Packet::PubAck(id),
    ];
    packets.iter().filter_map(|p| p.to_vec().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_input_never_panics_or_leaks() -> TestResult {
    let panics = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&panics);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let gw = Gateway::start(|o| {
        o.plain_addrs = vec!["127.0.0.1:0".parse().expect("an address")];
        o.connect_timeout = Duration::from_millis(500);
        o.idle_timeout = Duration::from_secs(1);
    })
    .await?;
    let addr = gw.plain_addr.ok_or("plain")?;
    let dev = gw.device("dev-1").await?;
    let valid = valid_packets(&dev.id);
    let mut rng = Lcg(0x5eed);
    for round in 0..30 {
        let mut clients = Vec::new();
        for _ in 0..10 {
            let mut input = Vec::new();
            let connected = rng.below(2) == 0;
            let mut client = if connected {
                RawClient::connect_device(addr, &dev, 1).await
            } else {
                RawClient::connect(addr).await
            };
            for _ in 0..=rng.below(4) {
                let mut packet = valid[rng.below(valid.len())].clone();
                match rng.below(4) {
                    0 => {
                        let i = rng.below(packet.len());
                        packet[i] ^= 1 << rng.below(8);
                    }
                    1 => packet.truncate(rng.below(packet.len())),
                    2 => {
                        let n = rng.below(64);
                        packet = rng.bytes(n);
                    }
                    _ => {}
                }
                input.extend(packet);
            }
            // Write in random-sized pieces.
            let mut rest = input.as_slice();
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len());
                let (piece, tail) = rest.split_at(n);
                use tokio::io::AsyncWriteExt as _;
                if client.stream.write_all(piece).await.is_err() {
                    break;
                }
                rest = tail;
            }
            // Half of them hang up right away; the rest stay silent.
            if rng.below(2) == 0 {
                drop(client);
            } else {
                clients.push(client);
            }
        }
        drop(clients);
        assert_eq!(
            panics.load(Ordering::SeqCst),
            0,
            "a task panicked in round {round}"
        );
    }
    gw.wait_no_connections().await;
    assert_eq!(gw.handle().connected_devices(), 0);
    assert_eq!(panics.load(Ordering::SeqCst), 0);
    gw.shutdown().await;
    Ok(())
}
