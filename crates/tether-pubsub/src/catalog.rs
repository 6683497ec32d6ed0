//! What must survive a restart: created topics, subscriptions, and each
//! subscription's ack state (its floor and the acked offsets above it). One
//! SQLite database beside the telemetry log, `DATA_DIR/pubsub.db`; every ack
//! is committed to the write-ahead log before the RPC that carried it answers.
//!
//! `synchronous = NORMAL`: a commit reaches the operating system, not the disk, so a
//! killed process loses no ack, and a power cut may lose the last ones, which are
//! then delivered again. That keeps at-least-once (a lost ack costs a duplicate,
//! never a message) without an fsync per ack, which cost more CPU than the delivery.

use std::path::Path;

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRow {
    /// `projects/{p}/subscriptions/{s}`.
    pub name: String,
    /// `projects/{p}/topics/{t}`.
    pub topic: String,
    /// 10 to 600.
    pub ack_deadline_s: u32,
    /// Empty for a pull subscription.
    pub push_endpoint: String,
    /// Push retries: the first wait, doubling up to `max_backoff_ms`.
    pub min_backoff_ms: u64,
    /// The longest wait between push retries.
    pub max_backoff_ms: u64,
    /// Every offset below is acked (see `ledger`).
    pub floor: u64,
    /// Unix microseconds.
    pub created_us: i64,
}

/// The database failed.
#[derive(Debug, thiserror::Error)]
#[error("the Pub/Sub catalog ({what}): {source}")]
pub struct CatalogError {
    what: &'static str,
    #[source]
    source: sqlx::Error,
}

fn err(what: &'static str) -> impl FnOnce(sqlx::Error) -> CatalogError {
    move |source| CatalogError { what, source }
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, created_us INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS subscriptions (
        name TEXT PRIMARY KEY,
        topic TEXT NOT NULL,
        ack_deadline_s INTEGER NOT NULL,
        push_endpoint TEXT NOT NULL,
        min_backoff_ms INTEGER NOT NULL,
        max_backoff_ms INTEGER NOT NULL,
        floor INTEGER NOT NULL,
        created_us INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS acks (
        subscription TEXT NOT NULL,
        offset INTEGER NOT NULL,
        PRIMARY KEY (subscription, offset)) WITHOUT ROWID",
];

/// Offsets are u64; SQLite keeps i64. Offsets never reach 2^63.
pub(crate) fn to_db(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

fn from_db(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The Pub/Sub catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: SqlitePool,
}

impl Catalog {
    /// Opens (creating) the database at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or the schema not created.
    pub async fn open(path: &Path) -> Result<Self, CatalogError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        // One connection: writes are serialized anyway, and reads are rare.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(err("open"))?;
        for statement in SCHEMA {
            sqlx::query(*statement)
                .execute(&pool)
                .await
                .map_err(err("create the schema"))?;
        }
        Ok(Self { pool })
    }

    /// The created topics.
    pub async fn topics(&self) -> Result<Vec<String>, CatalogError> {
        let rows = sqlx::query("SELECT name FROM topics ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(err("list topics"))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("name").map_err(err("read a topic")))
            .collect()
    }

    /// Creates a topic; `false` if it existed.
    pub async fn create_topic(&self, name: &str, now_us: i64) -> Result<bool, CatalogError> {
        let done = sqlx::query("INSERT OR IGNORE INTO topics (name, created_us) VALUES (?, ?)")
            .bind(name)
            .bind(now_us)
            .execute(&self.pool)
            .await
            .map_err(err("create a topic"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a created topic; `false` if there was none.
    pub async fn delete_topic(&self, name: &str) -> Result<bool, CatalogError> {
        let done = sqlx::query("DELETE FROM topics WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(err("delete a topic"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Every subscription, with its acked offsets above the floor.
    pub async fn subscriptions(&self) -> Result<Vec<(SubscriptionRow, Vec<u64>)>, CatalogError> {
        let rows = sqlx::query(
            "SELECT name, topic, ack_deadline_s, push_endpoint, min_backoff_ms, max_backoff_ms,
             floor, created_us FROM subscriptions ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("list subscriptions"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let read = err("read a subscription");
            let row = SubscriptionRow {
                name: r.try_get("name").map_err(err("read a subscription"))?,
                topic: r.try_get("topic").map_err(err("read a subscription"))?,
                ack_deadline_s: u32::try_from(
                    r.try_get::<i64, _>("ack_deadline_s")
                        .map_err(err("read a subscription"))?,
                )
                .unwrap_or(10),
                push_endpoint: r
                    .try_get("push_endpoint")
                    .map_err(err("read a subscription"))?,
                min_backoff_ms: from_db(
                    r.try_get("min_backoff_ms")
                        .map_err(err("read a subscription"))?,
                ),
                max_backoff_ms: from_db(
                    r.try_get("max_backoff_ms")
                        .map_err(err("read a subscription"))?,
                ),
                floor: from_db(r.try_get("floor").map_err(err("read a subscription"))?),
                created_us: r.try_get("created_us").map_err(read)?,
            };
            let acked =
                sqlx::query("SELECT offset FROM acks WHERE subscription = ? ORDER BY offset")
                    .bind(&row.name)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(err("read acks"))?
                    .iter()
                    .map(|a| a.try_get::<i64, _>("offset").map(from_db))
                    .collect::<Result<Vec<u64>, _>>()
                    .map_err(err("read acks"))?;
            out.push((row, acked));
        }
        Ok(out)
    }

    /// Creates a subscription; `false` if the name was taken.
    pub async fn create_subscription(&self, row: &SubscriptionRow) -> Result<bool, CatalogError> {
        let done = sqlx::query(
            "INSERT OR IGNORE INTO subscriptions
             (name, topic, ack_deadline_s, push_endpoint, min_backoff_ms, max_backoff_ms,
              floor, created_us)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.name)
        .bind(&row.topic)
        .bind(i64::from(row.ack_deadline_s))
        .bind(&row.push_endpoint)
        .bind(to_db(row.min_backoff_ms))
        .bind(to_db(row.max_backoff_ms))
        .bind(to_db(row.floor))
        .bind(row.created_us)
        .execute(&self.pool)
        .await
        .map_err(err("create a subscription"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Changes a subscription's ack deadline, push endpoint and push backoff
    /// (the row's other fields stay).
    pub async fn update_subscription(&self, row: &SubscriptionRow) -> Result<(), CatalogError> {
        sqlx::query(
            "UPDATE subscriptions SET ack_deadline_s = ?, push_endpoint = ?, min_backoff_ms = ?,
             max_backoff_ms = ? WHERE name = ?",
        )
        .bind(i64::from(row.ack_deadline_s))
        .bind(&row.push_endpoint)
        .bind(to_db(row.min_backoff_ms))
        .bind(to_db(row.max_backoff_ms))
        .bind(&row.name)
        .execute(&self.pool)
        .await
        .map_err(err("update a subscription"))?;
        Ok(())
    }

    /// Deletes a subscription and its ack state; `false` if there was none.
    pub async fn delete_subscription(&self, name: &str) -> Result<bool, CatalogError> {
        let mut tx = self.pool.begin().await.map_err(err("begin"))?;
        sqlx::query("DELETE FROM acks WHERE subscription = ?")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(err("delete acks"))?;
        let done = sqlx::query("DELETE FROM subscriptions WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(err("delete a subscription"))?;
        tx.commit().await.map_err(err("commit"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Runs `script` (several statements, no parameters) in one call: the ack
    /// writer's batches.
    pub async fn execute_script(&self, script: String) -> Result<(), CatalogError> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(script))
            .execute(&self.pool)
            .await
            .map_err(err("record acks"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscriptions_and_acks_survive_a_reopen() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("pubsub.db");
        {
            let c = Catalog::open(&path).await?;
            assert!(c.create_topic("projects/p/topics/t", 1).await?);
            assert!(!c.create_topic("projects/p/topics/t", 2).await?);
            let row = SubscriptionRow {
                name: "projects/p/subscriptions/s".into(),
                topic: "projects/p/topics/t".into(),
                ack_deadline_s: 10,
                push_endpoint: String::new(),
                min_backoff_ms: 10_000,
                max_backoff_ms: 600_000,
                floor: 5,
                created_us: 1,
            };
            assert!(c.create_subscription(&row).await?);
            assert!(!c.create_subscription(&row).await?);
            // Acks reach the catalog through the ack writer only.
            let log = crate::ack_log::AckLog::start(c.clone());
            log.acks(&row.name, &[7, 9], None).await?;
            log.acks(&row.name, &[5, 6], Some(8)).await?;
        }
        let c = Catalog::open(&path).await?;
        assert_eq!(c.topics().await?, vec!["projects/p/topics/t".to_owned()]);
        let subs = c.subscriptions().await?;
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].0.floor, 8);
        assert_eq!(subs[0].1, vec![9]);
        assert!(c.delete_subscription("projects/p/subscriptions/s").await?);
        assert!(c.subscriptions().await?.is_empty());
        Ok(())
    }
}
