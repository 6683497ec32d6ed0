//! Batched writes of device activity (last*-times, `lastErrorStatus`): connections
//! add records to a shared batch that keeps the latest per device and kind; one
//! task writes it every `interval`, and everything left on shutdown. IoT Core's
//! times were "stale by a few minutes" as well. Errors are the exception: someone is
//! usually looking at a failing device right now (`tether doctor` reads the error the
//! moment its CONNECT is refused), so a batch holding one is written within
//! [`ERROR_DELAY`]; a refusal storm still coalesces into one write per delay. A batch
//! that reaches [`FLUSH_AT`] records is written at once: a fleet larger than that,
//! active within one interval, would otherwise fill it and lose its newest devices' times.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::mem::discriminant;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tether_registry::names::RegistryPath;
use tether_registry::{Activity, ActivityKind, Store};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Most distinct records (device and kind) waiting for a write; past it new
/// ones are dropped (and counted).
const MAX_PENDING: usize = 65_536;
/// Records that make the writer write at once instead of on its tick.
pub const FLUSH_AT: usize = MAX_PENDING / 2;
/// Longest time an error waits before it is written.
pub const ERROR_DELAY: Duration = Duration::from_millis(100);

type Key = (RegistryPath, u64, std::mem::Discriminant<ActivityKind>);

/// What waits for the next write. Connections add to it under a short lock and
/// wake nobody (the writer comes by on its tick), except for a batch's first
/// error and a batch at [`FLUSH_AT`]: a wake per record was a task switch per
/// message, and from the admission threads a write to the runtime's eventfd and a
/// thread wake-up.
#[derive(Debug, Default)]
struct Pending {
    batch: Mutex<Batch>,
    /// Rung when an error joins a batch that held none.
    error: Notify,
    /// Rung when the batch reaches [`FLUSH_AT`] records.
    full: Notify,
}

#[derive(Debug, Default)]
struct Batch {
    records: HashMap<Key, Activity>,
    has_error: bool,
}

/// The sending side, cloned into every connection.
#[derive(Debug, Clone)]
pub struct ActivitySender(Arc<Pending>);

impl ActivitySender {
    /// Adds a record (the latest per device and kind is kept); never waits. A
    /// full batch drops it (counted in `tether_mqtt_activity_dropped_total`).
    pub fn record(&self, activity: Activity) {
        // Code 0 is a warning on an accepted connection (a padded JWT): nobody
        // is waiting on it.
        let error = matches!(&activity.kind, ActivityKind::Error(s) if s.code != 0);
        let key = (
            activity.registry.clone(),
            activity.num_id,
            discriminant(&activity.kind),
        );
        let (first_error, flush_now) = {
            let mut batch = self.0.batch.lock().unwrap_or_else(PoisonError::into_inner);
            let full = batch.records.len() >= MAX_PENDING;
            // One lookup: a waiting record is replaced by a newer one, a new one
            // is added unless the batch is full.
            match batch.records.entry(key) {
                Entry::Occupied(mut waiting) => {
                    if waiting.get().at <= activity.at {
                        waiting.insert(activity);
                    }
                }
                Entry::Vacant(_) if full => {
                    drop(batch);
                    metrics::counter!("tether_mqtt_activity_dropped_total").increment(1);
                    return;
                }
                Entry::Vacant(slot) => {
                    slot.insert(activity);
                }
            }
            let first = error && !batch.has_error;
            batch.has_error |= error;
            (first, batch.records.len() == FLUSH_AT)
        };
        if first_error {
            self.0.error.notify_one();
        }
        if flush_now {
            self.0.full.notify_one();
        }
    }

    /// Takes what waits.
    fn take(&self) -> Vec<Activity> {
        let mut batch = self.0.batch.lock().unwrap_or_else(PoisonError::into_inner);
        batch.has_error = false;
        batch.records.drain().map(|(_, a)| a).collect()
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
        let sender = ActivitySender(Arc::new(Pending::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run(store, interval, sender.clone(), stopped));
        (Self { task, stop }, sender)
    }

    /// Writes what is waiting and stops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn run(
    store: Arc<dyn Store>,
    interval: Duration,
    pending: ActivitySender,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Set while the batch holds an error: when it must be written.
    let mut error_due: Option<tokio::time::Instant> = None;
    loop {
        let error_timer = async {
            match error_due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // An error starts its delay; its timer, a full batch and the tick write.
        let write = tokio::select! {
            () = pending.0.error.notified(), if error_due.is_none() => {
                error_due = Some(tokio::time::Instant::now() + ERROR_DELAY);
                false
            }
            () = error_timer => true,
            () = pending.0.full.notified() => true,
            _ = tick.tick() => true,
            _ = &mut stopped => break,
        };
        if write {
            error_due = None;
            flush(&*store, pending.take()).await;
        }
    }
    flush(&*store, pending.take()).await;
}

async fn flush(store: &dyn Store, batch: Vec<Activity>) {
    if batch.is_empty() {
        return;
    }
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

#[cfg(test)]
mod tests {
    use tether_registry::model::{Device, Status, Timestamp};
    use tether_registry::names::DeviceRef;

    use super::*;

    async fn device() -> (Arc<dyn Store>, RegistryPath, u64) {
        let (store, path) = crate::testing::store_with_registry().await;
        let device = Device {
            id: "d".into(),
            ..Device::default()
        };
        let device = store
            .create_device(&path, &device, Timestamp(1))
            .await
            .expect("device");
        (store, path, device.num_id)
    }

    /// A writer with an hour-long interval, past its first tick (which comes at once).
    async fn started(store: &Arc<dyn Store>) -> (ActivityWriter, ActivitySender) {
        let started = ActivityWriter::start(Arc::clone(store), Duration::from_secs(3600));
        tokio::time::sleep(Duration::from_millis(20)).await;
        started
    }

    fn activity(path: &RegistryPath, num_id: u64, kind: ActivityKind, at: i64) -> Activity {
        Activity {
            registry: path.clone(),
            num_id,
            kind,
            at: Timestamp(at),
        }
    }

    async fn read(store: &Arc<dyn Store>, path: &RegistryPath) -> Device {
        store
            .get_device(path, &DeviceRef::Id("d".into()))
            .await
            .expect("read")
    }

    /// Reads the device every 20 ms until `field` has a value, for at most `limit`.
    async fn written_within<T>(
        store: &Arc<dyn Store>,
        path: &RegistryPath,
        limit: Duration,
        field: impl Fn(Device) -> Option<T>,
    ) -> Option<T> {
        let step = Duration::from_millis(20);
        for _ in 0..limit.as_millis() / step.as_millis() {
            tokio::time::sleep(step).await;
            if let Some(value) = field(read(store, path).await) {
                return Some(value);
            }
        }
        None
    }

    #[tokio::test]
    async fn the_latest_record_per_kind_is_written_on_the_tick_and_on_shutdown() {
        let (store, path, num_id) = device().await;
        let (writer, sender) = started(&store).await;
        sender.record(activity(&path, num_id, ActivityKind::Heartbeat, 30));
        sender.record(activity(&path, num_id, ActivityKind::Heartbeat, 10));
        sender.record(activity(&path, num_id, ActivityKind::Event, 20));
        // Nothing wakes the writer for these: they wait for its tick.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(read(&store, &path).await.last_event_time, None);
        writer.shutdown().await;
        let device = read(&store, &path).await;
        assert_eq!(
            device.last_heartbeat_time,
            Some(Timestamp(30)),
            "the latest"
        );
        assert_eq!(device.last_event_time, Some(Timestamp(20)));
    }

    #[tokio::test]
    async fn an_error_is_written_within_the_error_delay_whatever_the_interval() {
        let (store, path, num_id) = device().await;
        let (writer, sender) = started(&store).await;
        let status = Status {
            code: 16,
            message: "the token expired".into(),
        };
        sender.record(activity(
            &path,
            num_id,
            ActivityKind::Error(status.clone()),
            5,
        ));
        let written = written_within(&store, &path, Duration::from_secs(2), |d| {
            d.last_error_status
        })
        .await;
        assert_eq!(written, Some(status));
        writer.shutdown().await;
    }

    #[tokio::test]
    async fn a_batch_at_its_flush_size_is_written_at_once_whatever_the_interval() {
        let (store, path, num_id) = device().await;
        let (writer, sender) = started(&store).await;
        sender.record(activity(&path, num_id, ActivityKind::Event, 9));
        // Devices this store does not have: only the batch's size matters.
        for other in 1..FLUSH_AT as u64 {
            sender.record(activity(&path, 1_000_000 + other, ActivityKind::Event, 9));
        }
        let written =
            written_within(&store, &path, Duration::from_secs(5), |d| d.last_event_time).await;
        assert_eq!(written, Some(Timestamp(9)), "written long before the tick");
        assert!(sender.0.batch.lock().expect("lock").records.is_empty());
        writer.shutdown().await;
    }

    #[tokio::test]
    async fn a_full_batch_drops_new_devices_but_still_updates_waiting_ones() {
        let (store, path, num_id) = device().await;
        let (writer, sender) = started(&store).await;
        sender.record(activity(&path, num_id, ActivityKind::Heartbeat, 1));
        for other in 0..MAX_PENDING as u64 {
            sender.record(activity(
                &path,
                1_000_000 + other,
                ActivityKind::Heartbeat,
                1,
            ));
        }
        assert_eq!(
            sender.0.batch.lock().expect("lock").records.len(),
            MAX_PENDING
        );
        // The waiting device's newer record still replaces its old one.
        sender.record(activity(&path, num_id, ActivityKind::Heartbeat, 7));
        assert_eq!(
            sender.0.batch.lock().expect("lock").records.len(),
            MAX_PENDING
        );
        writer.shutdown().await;
        assert_eq!(
            read(&store, &path).await.last_heartbeat_time,
            Some(Timestamp(7))
        );
    }
}
