//! Batched writes of device activity (last*-times, `lastErrorStatus`): connections
//! hand records to a channel; one task coalesces them (latest per device and kind)
//! and writes a batch every `interval`, and everything left on shutdown. IoT Core's
//! times were "stale by a few minutes" as well. Errors are the exception: someone is
//! usually looking at a failing device right now (`tether doctor` reads the error the
//! moment its CONNECT is refused), so a batch holding one is written within
//! [`ERROR_DELAY`]; a refusal storm still coalesces into one write per delay.

use std::collections::HashMap;
use std::mem::discriminant;
use std::sync::Arc;
use std::time::Duration;

use tether_registry::names::RegistryPath;
use tether_registry::{Activity, ActivityKind, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Records waiting in the channel before new ones are dropped (and counted).
const CHANNEL: usize = 65_536;
/// Longest time an error waits before it is written.
pub const ERROR_DELAY: Duration = Duration::from_millis(100);

type Key = (RegistryPath, u64, std::mem::Discriminant<ActivityKind>);

/// The sending side, cloned into every connection.
#[derive(Debug, Clone)]
pub struct ActivitySender(mpsc::Sender<Activity>);

impl ActivitySender {
    /// Queues a record; never waits. A full queue drops it (counted in
    /// `tether_mqtt_activity_dropped_total`).
    pub fn record(&self, activity: Activity) {
        if self.0.try_send(activity).is_err() {
            metrics::counter!("tether_mqtt_activity_dropped_total").increment(1);
        }
    }
}

/// The writer task.
#[derive(Debug)]
pub struct ActivityWriter {
    task: JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl ActivityWriter {
    /// Starts the writer.
    pub fn start(store: Arc<dyn Store>, interval: Duration) -> (Self, ActivitySender) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run(store, interval, rx, stopped));
        (Self { task, stop }, ActivitySender(tx))
    }

    /// Writes what is queued and stops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn run(
    store: Arc<dyn Store>,
    interval: Duration,
    mut rx: mpsc::Receiver<Activity>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut pending: HashMap<Key, Activity> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Set while the pending batch holds an error: when it must be written.
    let mut error_due: Option<tokio::time::Instant> = None;
    loop {
        let error_timer = async {
            match error_due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            record = rx.recv() => match record {
                Some(a) => {
                    // Code 0 is a warning on an accepted connection (a padded JWT):
                    // nobody is waiting on it.
                    let error = matches!(&a.kind, ActivityKind::Error(s) if s.code != 0);
                    if error_due.is_none() && error {
                        error_due = Some(tokio::time::Instant::now() + ERROR_DELAY);
                    }
                    add(&mut pending, a);
                }
                None => break,
            },
            () = error_timer => {
                error_due = None;
                flush(&*store, &mut pending).await;
            }
            _ = tick.tick() => {
                error_due = None;
                flush(&*store, &mut pending).await;
            }
            _ = &mut stopped => break,
        }
    }
    while let Ok(a) = rx.try_recv() {
        add(&mut pending, a);
    }
    flush(&*store, &mut pending).await;
}

fn add(pending: &mut HashMap<Key, Activity>, a: Activity) {
    let key = (a.registry.clone(), a.num_id, discriminant(&a.kind));
    match pending.get(&key) {
        Some(old) if old.at > a.at => {}
        _ => {
            pending.insert(key, a);
        }
    }
}

async fn flush(store: &dyn Store, pending: &mut HashMap<Key, Activity>) {
    if pending.is_empty() {
        return;
    }
    let batch: Vec<Activity> = pending.drain().map(|(_, a)| a).collect();
    match store.record_activity(&batch).await {
        Ok(()) => {
            metrics::counter!("tether_mqtt_activity_written_total").increment(batch.len() as u64)
        }
        Err(e) => {
            metrics::counter!("tether_mqtt_activity_dropped_total").increment(batch.len() as u64);
            tracing::warn!(error = %e, records = batch.len(), "could not record device activity");
        }
    }
}
