//! `tether serve` on its embedded storage (SQLite and the telemetry log) killed with
//! SIGKILL under load and restarted on the same data directory, five times per test
//! (issue 11). What the devices saw acknowledged is compared with what was stored:
//! - telemetry: 10 devices publish QoS 1 as fast as their quota allows; every
//!   acknowledged message is stored, and a message is stored twice only if it was in
//!   flight (sent, no PUBACK yet) at a kill;
//! - state: 5 devices report state once a second; every acknowledged state is in the
//!   device's state history;
//! - config acks: configs pushed to 5 subscribed devices, each kill moments after a
//!   device acknowledged one. An acknowledgement is recorded (`deviceAckTime`) unless it
//!   was still being written at the kill; then the device, on resubscribing, is sent
//!   its latest config again (that version, or a newer one that superseded it), and
//!   that acknowledgement is recorded.
//!
//! Devices stay away while the server is down and while the store is read after a
//! restart, so each check sees exactly what survived the kill. The kill moments come
//! from a seed printed at the start; `TETHER_CRASH_SEED=N` replays the same moments.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::common::{self, Acked, Publisher, Served, lock};

const TOKEN: &str = "crash-recovery-admin-token-0123456789";
const KILLS: usize = 5;
const TELEMETRY: &str = "projects/acme/topics/telemetry";
/// States and config versions kept per device (docs/storage.md, "What is kept").
const KEPT: usize = 10;
/// An acknowledgement this long before a kill has had ample time to be written.
const ACK_WRITTEN_WITHIN: Duration = Duration::from_secs(2);

fn tether() -> Command {
    common::tether_as(TOKEN)
}

/// Random kill moments: splitmix64 from a seed that is printed, so a failing run can
/// be replayed with `TETHER_CRASH_SEED`.
struct Moments(u64);

impl Moments {
    fn new(test: &str) -> Self {
        let seed = std::env::var("TETHER_CRASH_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(test));
        eprintln!("crash {test}: seed {seed} (replay with TETHER_CRASH_SEED={seed})");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// From `low` up to (not including) `high` milliseconds.
    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low).max(1))
    }
}

/// The server under test, and where devices and the API client find it. The MQTT
/// address is `None` while the server is down or being checked after a restart, so
/// devices stay away meanwhile.
struct Crashing {
    served: Served,
    data: PathBuf,
    mqtt: Arc<Mutex<Option<String>>>,
    admin: Arc<Mutex<String>>,
}

impl Crashing {
    fn start(data: PathBuf) -> Self {
        let served = common::serve(tether(), &data);
        Self {
            mqtt: Arc::new(Mutex::new(Some(served.mqtt.clone()))),
            admin: Arc::new(Mutex::new(served.url.clone())),
            served,
            data,
        }
    }

    fn url(&self) -> &str {
        &self.served.url
    }

    /// Connection options for `device` while devices may connect.
    fn dial(&self, device: &str, jwt: &str) -> impl Fn() -> Option<MqttOptions> + Send + 'static {
        let mqtt = Arc::clone(&self.mqtt);
        // The CA is in the data directory, so it stays the same across restarts.
        let (ca, device, jwt) = (self.served.ca.clone(), device.to_owned(), jwt.to_owned());
        move || {
            lock(&mqtt)
                .as_deref()
                .map(|addr| common::mqtt_options(addr, &ca, &device, &jwt))
        }
    }

    /// `kill -9`; devices stay away until [`Crashing::let_devices_in`].
    fn kill(&mut self) {
        *lock(&self.mqtt) = None;
        self.served.kill9();
    }

    /// Starts the server again on the same data directory.
    fn restart(&mut self) {
        let next = self.served.restart(tether, &self.data);
        if next.mqtt != self.served.mqtt {
            eprintln!(
                "a port was taken: restarted on {} and {}",
                next.url, next.mqtt
            );
        }
        self.served = next;
        *lock(&self.admin) = self.served.url.clone();
    }

    fn let_devices_in(&self) {
        *lock(&self.mqtt) = Some(self.served.mqtt.clone());
    }
}

type Devices = BTreeMap<String, Arc<Mutex<Acked>>>;

/// Devices publishing, each in a [`common::publish_loop`].
struct Publishing {
    devices: Devices,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Publishing {
    /// Stops the devices and waits for them.
    async fn stop(self) -> Devices {
        self.stop.store(true, Ordering::Release);
        for task in self.tasks {
            let _ = task.await;
        }
        self.devices
    }
}

/// What each test starts from: the server on a fresh data directory with registry
/// `fleet` (telemetry to [`TELEMETRY`]) and devices `dev-0`…, and its kill moments.
struct Scene {
    moments: Moments,
    server: Crashing,
    ids: Vec<String>,
    jwt: String,
    /// Removed after the server (fields drop in order).
    _dir: tempfile::TempDir,
}

impl Scene {
    fn new(test: &str, devices: usize) -> Self {
        let moments = Moments::new(test);
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Crashing::start(dir.path().join("data"));
        let ids: Vec<String> = (0..devices).map(|i| format!("dev-{i}")).collect();
        let telemetry = format!("topic={TELEMETRY}");
        let jwt = common::fleet(
            tether,
            server.url(),
            dir.path(),
            &ids,
            &["--event-notification-config", &telemetry],
        );
        Self {
            moments,
            server,
            ids,
            jwt,
            _dir: dir,
        }
    }

    /// Every device publishing on `/devices/{id}/{kind}`, pausing `pace` after each
    /// PUBACK.
    fn publish(&self, kind: &str, pace: Duration) -> Publishing {
        let stop = Arc::new(AtomicBool::new(false));
        let devices: Devices = self
            .ids
            .iter()
            .map(|id| (id.clone(), Arc::default()))
            .collect();
        let tasks = self
            .ids
            .iter()
            .map(|id| {
                let publisher = Publisher {
                    id: id.clone(),
                    topic: format!("/devices/{id}/{kind}"),
                    pace,
                };
                tokio::spawn(common::publish_loop(
                    publisher,
                    self.server.dial(id, &self.jwt),
                    Arc::clone(&devices[id]),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        Publishing {
            devices,
            stop,
            tasks,
        }
    }
}

/// Waits until every device has had a PUBACK after `since`: all are back and flowing.
async fn flowing(devices: &Devices, since: Instant) {
    common::eventually(
        "every device acknowledged again after the restart",
        Duration::from_secs(20),
        || {
            devices
                .values()
                .all(|a| lock(a).times.last().is_some_and(|t| *t >= since))
        },
    )
    .await;
}

/// The payloads devices sent and are still waiting to have acknowledged.
fn waiting(devices: &Devices) -> BTreeSet<String> {
    devices
        .values()
        .filter_map(|a| lock(a).waiting.clone())
        .collect()
}

fn text(data: &Value) -> String {
    let bytes = data
        .as_str()
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The sequence number of a `dev:seq` payload.
fn seq(payload: &str) -> Option<u64> {
    payload.rsplit(':').next().and_then(|n| n.parse().ok())
}

/// Every telemetry payload stored, read back with `tether events tail`.
fn stored_telemetry(url: &str) -> Vec<String> {
    let out = common::run(
        tether()
            .args(["events", "tail", "--topic", TELEMETRY, "--from", "0"])
            .args(["--format", "json", "--server", url]),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let m: Value = serde_json::from_str(line).expect("one JSON message per line");
            text(&m["data"])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_telemetry_acknowledged_is_stored_and_only_in_flight_is_duplicated() {
    let mut scene = Scene::new("telemetry", 10);
    let run = scene.publish("events", Duration::ZERO);

    // How many kills each payload was in flight at.
    let mut in_flight: BTreeMap<String, usize> = BTreeMap::new();
    let mut since = Instant::now();
    for _ in 0..KILLS {
        flowing(&run.devices, since).await;
        tokio::time::sleep(scene.moments.millis(200, 2500)).await;
        // A message sent between the two looks is still unacknowledged in the second.
        let before = waiting(&run.devices);
        scene.server.kill();
        for payload in before.union(&waiting(&run.devices)) {
            *in_flight.entry(payload.clone()).or_default() += 1;
        }
        scene.server.restart();
        scene.server.let_devices_in();
        since = Instant::now();
    }
    flowing(&run.devices, since).await;
    let devices = run.stop().await;
    for payload in waiting(&devices) {
        *in_flight.entry(payload).or_default() += 1;
    }

    let acked: BTreeSet<String> = devices
        .values()
        .flat_map(|a| lock(a).payloads.clone())
        .collect();
    let stored = stored_telemetry(scene.server.url());
    let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
    for payload in &stored {
        *copies.entry(payload).or_default() += 1;
    }
    let lost: Vec<&String> = acked
        .iter()
        .filter(|p| !copies.contains_key(p.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    let allowed = |p: &str| in_flight.get(p).copied().unwrap_or(0);
    let unexplained: Vec<(&str, usize)> = copies
        .iter()
        .filter(|(p, n)| **n - 1 > allowed(p) || (!acked.contains(**p) && allowed(p) == 0))
        .map(|(p, n)| (*p, *n))
        .collect();
    assert!(
        unexplained.is_empty(),
        "stored more often than in flight at the kills, or stored and never sent \
         (payload, copies): {unexplained:?}"
    );
    let duplicates = stored.len() - copies.len();
    eprintln!(
        "crash safety, telemetry: {KILLS} kills, {} devices: {} acknowledged, {} stored, \
         0 lost, {duplicates} duplicates ({} messages in flight at the kills)",
        scene.ids.len(),
        acked.len(),
        stored.len(),
        in_flight.values().sum::<usize>(),
    );
}

/// `tether devices {what} list` for `device` (states or configs): newest first.
fn device_list(url: &str, what: &str, device: &str) -> Vec<Value> {
    let out = common::run(
        tether()
            .args(["devices", what, "list", "--device", device])
            .args(["--registry", "fleet", "--format", "json", "--server", url]),
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("a JSON list");
    list.as_array().cloned().unwrap_or_default()
}

/// `device`'s state history, newest first.
fn state_history(url: &str, device: &str) -> Vec<String> {
    device_list(url, "states", device)
        .iter()
        .map(|s| text(&s["binaryData"]))
        .collect()
}

/// The acknowledged states missing from `history`. States are stored in sequence (one
/// at a time per device) and the newest [`KEPT`] are kept, so an acknowledged state
/// must be there unless the history is full of newer ones.
fn missing_states(acked: &[String], history: &[String]) -> Vec<String> {
    let kept: BTreeSet<u64> = history.iter().filter_map(|p| seq(p)).collect();
    let oldest = kept.first().copied().unwrap_or(0);
    let full = history.len() >= KEPT;
    acked
        .iter()
        .filter(|p| seq(p).is_some_and(|s| !kept.contains(&s) && (!full || s > oldest)))
        .cloned()
        .collect()
}

/// Reads every device's history: the states seen in one, and those missing.
fn check_states(url: &str, devices: &Devices, seen: &mut BTreeSet<String>, lost: &mut Vec<String>) {
    for (id, acked) in devices {
        let history = state_history(url, id);
        lost.extend(missing_states(&lock(acked).payloads, &history));
        seen.extend(history);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_state_acknowledged_is_in_the_history() {
    let mut scene = Scene::new("state", 5);
    // One state a second: the quota.
    let run = scene.publish("state", Duration::from_secs(1));

    let (mut seen, mut lost) = (BTreeSet::new(), Vec::new());
    let mut since = Instant::now();
    for _ in 0..KILLS {
        flowing(&run.devices, since).await;
        tokio::time::sleep(scene.moments.millis(1000, 4000)).await;
        scene.server.kill();
        scene.server.restart();
        check_states(scene.server.url(), &run.devices, &mut seen, &mut lost);
        scene.server.let_devices_in();
        since = Instant::now();
    }
    flowing(&run.devices, since).await;
    let devices = run.stop().await;
    check_states(scene.server.url(), &devices, &mut seen, &mut lost);

    assert!(
        lost.is_empty(),
        "acknowledged but not in the history: {lost:?}"
    );
    let acked: Vec<String> = devices
        .values()
        .flat_map(|a| lock(a).payloads.clone())
        .collect();
    // Each kill's check must reach back to every state acknowledged since the last one.
    let unchecked: Vec<&String> = acked.iter().filter(|p| !seen.contains(*p)).collect();
    assert!(
        unchecked.is_empty(),
        "acknowledged states no check saw (pushed out of the history by newer ones): \
         {unchecked:?}"
    );
    eprintln!(
        "crash safety, state: {KILLS} kills, {} devices: {} acknowledged, all in the \
         history, 0 lost",
        scene.ids.len(),
        acked.len()
    );
}

/// What one device got on its config topic.
#[derive(Debug, Default)]
struct Configs {
    /// Every delivery, resends too: payload and when it arrived.
    received: Vec<(String, Instant)>,
    /// Every acknowledgement the device sent: payload and when.
    acked: Vec<(String, Instant)>,
}

impl Configs {
    /// The newest config (by its push number) the device got after `since`.
    fn newest_since(&self, since: Instant) -> Option<u64> {
        self.received
            .iter()
            .filter(|(_, at)| *at >= since)
            .filter_map(|(p, _)| seq(p))
            .max()
    }
}

/// A device subscribed to its config with QoS 1 that acknowledges every delivery and
/// reconnects after any failure; `acked` is notified after each acknowledgement.
async fn config_device(
    id: String,
    dial: impl Fn() -> Option<MqttOptions>,
    configs: Arc<Mutex<Configs>>,
    acked: Arc<Notify>,
) {
    loop {
        let Some(mut options) = dial() else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        options.set_manual_acks(true);
        let (client, mut events) = AsyncClient::new(options, 10);
        if !common::connected(&mut events).await
            || client
                .subscribe(format!("/devices/{id}/config"), QoS::AtLeastOnce)
                .await
                .is_err()
        {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        while let Ok(event) = events.poll().await {
            let Event::Incoming(Packet::Publish(publish)) = event else {
                continue;
            };
            let payload = String::from_utf8_lossy(&publish.payload).into_owned();
            lock(&configs)
                .received
                .push((payload.clone(), Instant::now()));
            // Queued here; the event loop writes it on its next poll, just below.
            if client.ack(&publish).await.is_err() {
                break;
            }
            lock(&configs).acked.push((payload, Instant::now()));
            acked.notify_waiters();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Pushes `cfg:{id}:{n}`, n = 0, 1, … to device `id` through the API every `every`
/// until `stop`. A push that fails while the server is down is not repeated.
async fn push_configs(
    admin: Arc<Mutex<String>>,
    id: String,
    every: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        tokio::time::sleep(every).await;
        let url = lock(&admin).clone();
        let mut push = tether();
        push.args(["devices", "configs", "update", "--device", &id])
            .args(["--registry", "fleet", "--server", &url])
            .args(["--config-data", &format!("cfg:{id}:{n}")]);
        let _ = tokio::task::spawn_blocking(move || push.output()).await;
        n += 1;
    }
}

/// A device's stored config versions: payload → whether `deviceAckTime` is set.
fn config_acks(url: &str, device: &str) -> BTreeMap<String, bool> {
    device_list(url, "configs", device)
        .iter()
        .map(|v| {
            let acked = v["deviceAckTime"].as_str().is_some_and(|t| !t.is_empty());
            (text(&v["binaryData"]), acked)
        })
        .collect()
}

/// What became of the acknowledgements sent before one kill.
#[derive(Debug, Default)]
struct AckOutcomes {
    /// `deviceAckTime` was set when the server came back.
    recorded: usize,
    /// Not recorded (still being written at the kill); the device got that config
    /// again after the restart.
    sent_again: usize,
    /// Not recorded; a newer version superseded it and reached the device.
    superseded: usize,
    /// Not recorded and not made good: what the test exists to catch.
    lost: Vec<String>,
}

impl AckOutcomes {
    fn judge(
        &mut self,
        ack: &(String, Instant),
        stored: &BTreeMap<String, bool>,
        killed_at: Instant,
        after: &Configs,
        restarted: Instant,
    ) {
        let (payload, at) = ack;
        let again = || {
            after
                .received
                .iter()
                .any(|(p, t)| p == payload && *t >= restarted)
        };
        match stored.get(payload) {
            Some(true) => self.recorded += 1,
            None => self.lost.push(format!("{payload}: no longer stored")),
            Some(false) if *at + ACK_WRITTEN_WITHIN < killed_at => self.lost.push(format!(
                "{payload}: acknowledged {:?} before the kill, not recorded",
                killed_at - *at
            )),
            Some(false) if again() => self.sent_again += 1,
            Some(false) if after.newest_since(restarted) > seq(payload) => self.superseded += 1,
            Some(false) => self
                .lost
                .push(format!("{payload}: not recorded and not sent again")),
        }
    }
}

/// Waits until every device got a config after `since` (the latest is sent again on
/// every subscription).
async fn resubscribed(devices: &BTreeMap<String, Arc<Mutex<Configs>>>, since: Instant) {
    common::eventually(
        "every device got its config after the restart",
        Duration::from_secs(20),
        || {
            devices
                .values()
                .all(|c| lock(c).newest_since(since).is_some())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_config_acks_are_recorded_or_the_config_is_sent_again() {
    let mut scene = Scene::new("config acks", 5);
    let ids = scene.ids.clone();
    let acked = Arc::new(Notify::new());
    let stop = Arc::new(AtomicBool::new(false));
    let devices: BTreeMap<String, Arc<Mutex<Configs>>> =
        ids.iter().map(|id| (id.clone(), Arc::default())).collect();
    let mut tasks = Vec::new();
    for (i, id) in (0u64..).zip(&ids) {
        tasks.push(tokio::spawn(config_device(
            id.clone(),
            scene.server.dial(id, &scene.jwt),
            Arc::clone(&devices[id]),
            Arc::clone(&acked),
        )));
        // Around the 1 config/s quota: some pushes collapse into a newer one.
        tasks.push(tokio::spawn(push_configs(
            Arc::clone(&scene.server.admin),
            id.clone(),
            Duration::from_millis(800 + 150 * i),
            Arc::clone(&stop),
        )));
    }

    let mut outcomes = AckOutcomes::default();
    let mut since = Instant::now();
    for _ in 0..KILLS {
        resubscribed(&devices, since).await;
        tokio::time::sleep(scene.moments.millis(1000, 3000)).await;
        // Kill moments after a device acknowledged a config: its write may be under way.
        let _ = tokio::time::timeout(Duration::from_secs(3), acked.notified()).await;
        tokio::time::sleep(scene.moments.millis(0, 25)).await;
        let killed_at = Instant::now();
        scene.server.kill();
        scene.server.restart();
        let stored: BTreeMap<String, BTreeMap<String, bool>> = ids
            .iter()
            .map(|id| (id.clone(), config_acks(scene.server.url(), id)))
            .collect();
        let restarted = Instant::now();
        scene.server.let_devices_in();
        resubscribed(&devices, restarted).await;
        for (id, configs) in &devices {
            let configs = lock(configs);
            for ack in configs
                .acked
                .iter()
                .filter(|(_, t)| *t >= since && *t <= killed_at)
            {
                outcomes.judge(ack, &stored[id], killed_at, &configs, restarted);
            }
        }
        since = killed_at;
    }
    stop.store(true, Ordering::Release);
    // Quiet now: the newest version of every device ends acknowledged and recorded.
    tokio::time::sleep(Duration::from_secs(2)).await;
    common::eventually(
        "every device's newest config acknowledged and recorded",
        Duration::from_secs(20),
        || {
            ids.iter().all(|id| {
                let stored = config_acks(scene.server.url(), id);
                let newest = stored.keys().filter_map(|p| seq(p)).max();
                stored.iter().any(|(p, acked)| *acked && seq(p) == newest)
            })
        },
    )
    .await;
    for task in tasks {
        task.abort();
    }
    assert!(
        outcomes.lost.is_empty(),
        "lost acknowledgements: {:?}",
        outcomes.lost
    );
    // No kill came after these: every one still stored is recorded.
    let mut after_last = 0;
    for (id, configs) in &devices {
        let stored = config_acks(scene.server.url(), id);
        for (payload, _) in lock(configs).acked.iter().filter(|(_, t)| *t > since) {
            assert_ne!(stored.get(payload), Some(&false), "{payload} not recorded");
            after_last += 1;
        }
    }
    eprintln!(
        "crash safety, config acks: {KILLS} kills, {} devices: {} acknowledged before a \
         kill: {} recorded, {} sent again after the restart, {} superseded by a newer \
         version, 0 lost; {after_last} more after the last kill, all recorded",
        ids.len(),
        outcomes.recorded + outcomes.sent_again + outcomes.superseded,
        outcomes.recorded,
        outcomes.sent_again,
        outcomes.superseded,
    );
}
