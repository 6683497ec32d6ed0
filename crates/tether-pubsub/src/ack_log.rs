//! Ack state on its way to the catalog: one writer task gathers the changes (acks,
//! floors, seeks) of all subscriptions for up to [`WINDOW`] after the first one,
//! commits them in one SQLite transaction sent as one statement string, then
//! answers each caller. A caller still waits for its own commit, but a thousand
//! acks a second cost about fifty commits instead of a thousand: per-commit
//! handoffs to the database thread cost more CPU than delivering the message.
//!
//! The floor only moves up in SQL (`MAX`), so batches applied in any order never
//! lower it; a seek is a reset, applied in queue order.

use tokio::sync::{mpsc, oneshot};

use crate::catalog::{Catalog, to_db};
use crate::error::{PubSubError, PubSubResult};

/// Changes taken into one transaction at most.
const BATCH: usize = 4096;
/// How long the writer gathers changes after the first: what an ack call waits
/// at most beyond its commit.
pub const WINDOW: std::time::Duration = std::time::Duration::from_millis(20);

/// One change to a subscription's ack state.
#[derive(Debug)]
enum Change {
    /// Offsets acked, and the floor if it moved.
    Acks { acked: Vec<u64>, floor: Option<u64> },
    /// A seek: nothing acked, the floor at `floor`.
    Reset { floor: u64 },
}

#[derive(Debug)]
struct Pending {
    subscription: String,
    change: Change,
    done: oneshot::Sender<Result<(), String>>,
}

/// The queue to the writer task.
#[derive(Debug, Clone)]
pub struct AckLog {
    tx: mpsc::Sender<Pending>,
}

impl AckLog {
    /// Starts the writer on `catalog`.
    pub fn start(catalog: Catalog) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(write(catalog, rx));
        Self { tx }
    }

    /// Queues a change now (so changes reach the writer in the order they were
    /// made) and returns where its commit will be reported.
    fn enqueue(&self, subscription: &str, change: Change) -> oneshot::Receiver<Result<(), String>> {
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            subscription: subscription.to_owned(),
            change,
            done,
        };
        if let Err(mpsc::error::TrySendError::Full(pending)) = self.tx.try_send(pending) {
            // The writer is a whole queue behind: wait for room off this task.
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(pending).await;
            });
        }
        answer
    }

    async fn send(&self, subscription: &str, change: Change) -> PubSubResult<()> {
        let stopped = || PubSubError::Unavailable("the ack writer stopped".into());
        self.enqueue(subscription, change)
            .await
            .map_err(|_| stopped())?
            .map_err(PubSubError::Unavailable)
    }

    /// Queues acks without waiting for their commit (a streaming pull's acks, which
    /// have no answer): a crash before the commit delivers them again.
    pub fn acks_queued(&self, subscription: &str, acked: &[u64], floor: Option<u64>) {
        if acked.is_empty() && floor.is_none() {
            return;
        }
        let change = Change::Acks {
            acked: acked.to_vec(),
            floor,
        };
        drop(self.enqueue(subscription, change));
    }

    /// Records acks (and the new floor); durable in the WAL on return.
    pub async fn acks(
        &self,
        subscription: &str,
        acked: &[u64],
        floor: Option<u64>,
    ) -> PubSubResult<()> {
        if acked.is_empty() && floor.is_none() {
            return Ok(());
        }
        let change = Change::Acks {
            acked: acked.to_vec(),
            floor,
        };
        self.send(subscription, change).await
    }

    /// Moves the subscription to `floor` with nothing acked after it.
    pub async fn reset(&self, subscription: &str, floor: u64) -> PubSubResult<()> {
        self.send(subscription, Change::Reset { floor }).await
    }
}

/// A string literal for SQLite. Subscription names cannot hold quotes (Pub/Sub's
/// rules), but the writer does not rely on that.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The statements of one batch, in queue order.
fn statements(batch: &[Pending]) -> String {
    let mut sql = String::from("BEGIN;\n");
    for p in batch {
        let name = literal(&p.subscription);
        match &p.change {
            Change::Acks { acked, floor } => {
                if !acked.is_empty() {
                    let rows: Vec<String> = acked
                        .iter()
                        .map(|o| format!("({name},{})", to_db(*o)))
                        .collect();
                    sql.push_str(&format!(
                        "INSERT OR IGNORE INTO acks (subscription, offset) VALUES {};\n",
                        rows.join(",")
                    ));
                }
                if let Some(floor) = floor {
                    sql.push_str(&format!(
                        "UPDATE subscriptions SET floor = MAX(floor, {f}) WHERE name = {name};\n\
                         DELETE FROM acks WHERE subscription = {name} AND offset < \
                         (SELECT floor FROM subscriptions WHERE name = {name});\n",
                        f = to_db(*floor)
                    ));
                }
            }
            Change::Reset { floor } => sql.push_str(&format!(
                "DELETE FROM acks WHERE subscription = {name};\n\
                 UPDATE subscriptions SET floor = {f} WHERE name = {name};\n",
                f = to_db(*floor)
            )),
        }
    }
    sql.push_str("COMMIT;\n");
    sql
}

async fn write(catalog: Catalog, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let until = tokio::time::Instant::now() + WINDOW;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(p)) => batch.push(p),
                Ok(None) | Err(_) => break,
            }
        }
        let result = catalog
            .execute_script(statements(&batch))
            .await
            .map_err(|e| e.to_string());
        for p in batch {
            let _ = p.done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batched_acks_and_resets_land_in_order() -> Result<(), Box<dyn std::error::Error>> {
        use crate::catalog::SubscriptionRow;
        let dir = tempfile::tempdir()?;
        let catalog = Catalog::open(&dir.path().join("pubsub.db")).await?;
        let row = SubscriptionRow {
            name: "projects/p/subscriptions/it's".into(),
            topic: "projects/p/topics/t".into(),
            ack_deadline_s: 10,
            push_endpoint: String::new(),
            min_backoff_ms: 10_000,
            max_backoff_ms: 600_000,
            floor: 0,
            created_us: 0,
        };
        catalog.create_subscription(&row).await?;
        let log = AckLog::start(catalog.clone());
        let (a, b) = tokio::join!(
            log.acks(&row.name, &[0, 1, 5], Some(2)),
            log.acks(&row.name, &[7], None)
        );
        a?;
        b?;
        // A stale floor never lowers it.
        log.acks(&row.name, &[], Some(1)).await?;
        let subs = catalog.subscriptions().await?;
        assert_eq!(subs[0].0.floor, 2);
        assert_eq!(subs[0].1, vec![5, 7]);
        log.reset(&row.name, 1).await?;
        let subs = catalog.subscriptions().await?;
        assert_eq!((subs[0].0.floor, subs[0].1.len()), (1, 0));
        Ok(())
    }
}
