//! `tether serve` through an outage of its own NATS (issue 18), against a nats-server
//! process this test starts, stops and restarts:
//! - one node with `--nats`, 20 devices at 2 msg/s QoS 1, NATS down 15 s: no device is
//!   left waiting for a PUBACK (each is acknowledged again within 10 s of NATS coming
//!   back, on the same or a new connection), every acknowledged message is in the
//!   stream, and the duplicates are counted;
//! - two nodes, devices on B, the cluster's NATS down 15 s while the operator uses A: a
//!   block and a config made meanwhile reach B's devices once it is back, and a command
//!   is refused with UNAVAILABLE at once and never delivered later;
//! - the node holding a device frozen (SIGSTOP) for 11 s and for 15 s while a command
//!   goes through the other node: delivered and 200, or an error and never delivered.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::time::Instant;

use crate::common::{self, Acked, Publisher, Served};

const TOKEN: &str = "nats-outage-admin-token-0123456789";
const OUTAGE: Duration = Duration::from_secs(15);

fn tether() -> Command {
    common::tether_as(TOKEN)
}

/// A nats-server of this test's own, with JetStream on disk.
struct Nats {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
}

impl Nats {
    fn start(store: &Path) -> Option<Self> {
        tether_testkit::require(
            "nats-server (apt-get install nats-server)",
            tether_testkit::needs::tool("nats-server"),
        )?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut nats = Self {
            child: None,
            port,
            store: store.to_path_buf(),
        };
        nats.resume();
        Some(nats)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and store, and waits until it listens.
    fn resume(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nats-server did not listen on {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Registry `fleet` on `server` (telemetry to `projects/acme/topics/telemetry`) and
/// devices `ids` sharing one ES256 key; a JWT for them.
fn devices(server: &str, dir: &Path, ids: &[String]) -> String {
    let telemetry = "topic=projects/acme/topics/telemetry";
    common::fleet(
        tether,
        server,
        dir,
        ids,
        &["--event-notification-config", telemetry],
    )
}

fn options(node: &Served, device: &str, jwt: &str) -> MqttOptions {
    common::mqtt_options(&node.mqtt, &node.ca, device, jwt)
}

/// Every payload in the node's telemetry stream.
async fn stream_payloads(nats: &str) -> Vec<String> {
    let client = async_nats::connect(nats).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("TETHER_TELEMETRY").await.expect("stream");
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .expect("consumer");
    let mut out = Vec::new();
    let mut messages = consumer.messages().await.expect("messages");
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(3), messages.next()).await
    {
        out.push(String::from_utf8_lossy(&m.payload).into_owned());
        let _ = m.ack().await;
        if m.info().is_ok_and(|i| i.stream_sequence >= last) {
            break;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_node_keeps_every_device_flowing_through_a_nats_outage() {
    if !common::mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mut nats) = Nats::start(&dir.path().join("nats")) else {
        return;
    };
    let url = nats.url();
    let mut c = tether();
    c.env("TETHER_NATS", &url);
    let node = common::serve(c, &dir.path().join("data"));
    let ids: Vec<String> = (0..20).map(|i| format!("dev-{i}")).collect();
    let jwt = devices(&node.url, dir.path(), &ids);

    let stop = Arc::new(AtomicBool::new(false));
    let acked: BTreeMap<String, Arc<Mutex<Acked>>> =
        ids.iter().map(|id| (id.clone(), Arc::default())).collect();
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let publisher = Publisher {
                id: id.clone(),
                topic: format!("/devices/{id}/events"),
                pace: Duration::from_millis(500),
            };
            let opts = options(&node, id, &jwt);
            tokio::spawn(common::publish_loop(
                publisher,
                move || Some(opts.clone()),
                Arc::clone(&acked[id]),
                Arc::clone(&stop),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    nats.stop();
    tokio::time::sleep(OUTAGE).await;
    nats.resume();
    let back = Instant::now();
    tokio::time::sleep(Duration::from_secs(12)).await;
    stop.store(true, Ordering::Release);
    for task in tasks {
        let _ = task.await;
    }

    // No device wedged: each was acknowledged again within 10 s of NATS returning.
    let mut all_acked = BTreeSet::new();
    for (id, a) in &acked {
        let a = common::lock(a);
        let first_after = a.times.iter().find(|t| **t >= back).copied();
        let waited = first_after.map(|t| t - back);
        assert!(
            waited.is_some_and(|w| w <= Duration::from_secs(10)),
            "{id} was not acknowledged within 10 s of NATS returning (waited {waited:?})"
        );
        all_acked.extend(a.payloads.iter().cloned());
    }
    // Every acknowledged message is in the stream; resends after a lost PUBACK are
    // duplicates (at least once), counted here.
    let stored = stream_payloads(&url).await;
    let distinct: BTreeSet<&String> = stored.iter().collect();
    let missing: Vec<&String> = all_acked.iter().filter(|p| !distinct.contains(p)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    eprintln!(
        "nats outage, single node: {} messages acknowledged, {} stored, {} duplicates",
        all_acked.len(),
        stored.len(),
        stored.len() - distinct.len()
    );
}

/// A device on `node` that records every message it gets and whether its connection
/// is still up.
struct Listener {
    got: Arc<Mutex<Vec<(String, String)>>>,
    up: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    async fn start(node: &Served, device: &str, jwt: &str) -> Self {
        let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let up = Arc::new(AtomicBool::new(false));
        let (client, mut events) = AsyncClient::new(options(node, device, jwt), 10);
        let id = device.to_owned();
        client
            .subscribe(format!("/devices/{id}/config"), QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        client
            .subscribe(format!("/devices/{id}/commands/#"), QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let (got2, up2) = (Arc::clone(&got), Arc::clone(&up));
        let task = tokio::spawn(async move {
            let _client = client;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => up2.store(true, Ordering::Release),
                    Ok(Event::Incoming(Packet::Publish(p))) => got2
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((
                            p.topic.clone(),
                            String::from_utf8_lossy(&p.payload).into_owned(),
                        )),
                    Ok(_) => {}
                    Err(_) => {
                        // One connection only: a closed one stays closed.
                        up2.store(false, Ordering::Release);
                        return;
                    }
                }
            }
        });
        for _ in 0..100 {
            if up.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up.load(Ordering::Acquire), "{device} connected");
        Self { got, up, task }
    }

    fn received(&self, topic_part: &str, payload: &str) -> bool {
        self.got
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|(t, p)| t.contains(topic_part) && p == payload)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `tether devices commands send` through `server`: (exit code, stderr).
fn send_command(server: &str, device: &str, data: &str) -> (Option<i32>, String) {
    let out = tether()
        .args(["devices", "commands", "send", "--command-data", data])
        .args([
            "--device",
            device,
            "--registry",
            "fleet",
            "--server",
            server,
        ])
        .output()
        .expect("tether runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Two nodes on one SQLite file (in production: PostgreSQL), joined over `nats`.
fn cluster(dir: &Path, nats: &str) -> (Served, Served) {
    let database = format!("sqlite://{}", dir.join("shared.db").display());
    let node = |name: &str| {
        let mut c = tether();
        c.env("TETHER_DATABASE", &database)
            .env("TETHER_CLUSTER_NATS", nats);
        common::serve(c, &dir.join(name))
    };
    (node("a"), node("b"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_made_during_a_cluster_nats_outage_reach_the_other_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(mut nats) = Nats::start(&dir.path().join("nats")) else {
        return;
    };
    let (a, b) = cluster(dir.path(), &nats.url());
    let ids = ["blocked-1", "config-1", "command-1"].map(str::to_owned);
    let jwt = devices(&a.url, dir.path(), &ids);
    let blocked = Listener::start(&b, "blocked-1", &jwt).await;
    let config = Listener::start(&b, "config-1", &jwt).await;
    let command = Listener::start(&b, "command-1", &jwt).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    nats.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let api = ["--registry", "fleet", "--server", a.url.as_str()];
    common::run(
        tether()
            .args(["devices", "update", "blocked-1", "--blocked"])
            .args(api),
    );
    common::run(
        tether()
            .args(["devices", "configs", "update", "--device", "config-1"])
            .args(["--config-data", "fan=9"])
            .args(api),
    );
    let asked = Instant::now();
    let (code, stderr) = send_command(&a.url, "command-1", "reboot");
    let took = asked.elapsed();
    assert_eq!(code, Some(1), "refused: {stderr}");
    assert!(
        stderr.contains("UNAVAILABLE") && stderr.contains("cluster link"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    tokio::time::sleep(OUTAGE - Duration::from_secs(1)).await;
    nats.resume();

    common::eventually(
        "the blocked device disconnected",
        Duration::from_secs(35),
        || !blocked.up.load(Ordering::Acquire),
    )
    .await;
    common::eventually("the new config pushed", Duration::from_secs(35), || {
        config.received("/config", "fan=9")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !command.received("/commands", "reboot"),
        "a command answered UNAVAILABLE was delivered later"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_to_a_frozen_node_is_delivered_or_refused_never_both() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(nats) = Nats::start(&dir.path().join("nats")) else {
        return;
    };
    let (a, b) = cluster(dir.path(), &nats.url());
    let ids = ["frozen-1".to_owned()];
    let jwt = devices(&a.url, dir.path(), &ids);
    let device = Listener::start(&b, "frozen-1", &jwt).await;
    // The device's subscription is in place once a command goes through.
    common::eventually("a first command delivered", Duration::from_secs(10), || {
        send_command(&a.url, "frozen-1", "hello").0 == Some(0)
    })
    .await;

    for (round, freeze) in [(1, Duration::from_secs(11)), (2, Duration::from_secs(15))] {
        let pid = b.child.id().to_string();
        common::run(Command::new("kill").args(["-STOP", &pid]));
        let payload = format!("while-frozen-{round}");
        let url = a.url.clone();
        let sent = {
            let payload = payload.clone();
            tokio::task::spawn_blocking(move || send_command(&url, "frozen-1", &payload))
        };
        tokio::time::sleep(freeze).await;
        common::run(Command::new("kill").args(["-CONT", &pid]));
        let (code, stderr) = sent.await.expect("command thread");
        tokio::time::sleep(Duration::from_secs(20)).await;
        let delivered = device.received("/commands", &payload);
        match code {
            Some(0) => assert!(delivered, "round {round}: answered 200 but not delivered"),
            _ => assert!(
                !delivered,
                "round {round}: answered with an error ({stderr}) and delivered anyway"
            ),
        }
    }
}
