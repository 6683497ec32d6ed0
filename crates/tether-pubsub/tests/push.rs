//! Push delivery against a real HTTP endpoint: an endpoint that is down loses
//! nothing, across a restart of the Pub/Sub layer too, and once it answers 204 the
//! message arrives exactly once (issue 10, push subscriptions).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tether_log::{EmbeddedLog, LogConfig};
use tether_pubsub::engine::{Backoff, NewSubscription};
use tether_pubsub::{Catalog, NoRegistries, PubSub, PushOptions, WallClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Error = Box<dyn std::error::Error>;

#[derive(Debug)]
struct FixedClock;

impl WallClock for FixedClock {
    fn unix_micros(&self) -> i64 {
        1_767_225_600_000_000
    }
}

const TOPIC: &str = "projects/acme/topics/telemetry";
const SUB: &str = "projects/acme/subscriptions/pushed";

async fn open(dir: &std::path::Path, log: &Arc<EmbeddedLog>) -> Result<Arc<PubSub>, Error> {
    let catalog = Catalog::open(&dir.join("pubsub.db")).await?;
    let pubsub = PubSub::open(
        catalog,
        log.clone(),
        log.clone(),
        Arc::new(NoRegistries),
        Arc::new(FixedClock),
    )
    .await?;
    Ok(Arc::new(pubsub))
}

/// A minimal HTTP/1.1 endpoint answering 204 and keeping each request body.
async fn endpoint(
    listener: tokio::net::TcpListener,
    bodies: Arc<std::sync::Mutex<Vec<String>>>,
    hits: Arc<AtomicUsize>,
) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let (bodies, hits) = (Arc::clone(&bodies), Arc::clone(&hits));
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let Ok(n) = socket.read(&mut buf).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).into_owned();
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    continue;
                };
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() < length {
                    continue;
                }
                hits.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut b) = bodies.lock() {
                    b.push(body.to_owned());
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    .await;
                request.clear();
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_endpoint_loses_nothing_across_a_restart() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(EmbeddedLog::open(LogConfig::new(dir.path())).await?);
    // A port with nothing listening: every push is refused until the endpoint starts.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?
        .port();
    let first = open(dir.path(), &log).await?;
    first.create_topic(TOPIC).await?;
    first
        .create_subscription(NewSubscription {
            name: SUB.into(),
            topic: TOPIC.into(),
            ack_deadline_s: 10,
            push_endpoint: format!("http://127.0.0.1:{port}/push"),
            backoff: Some(Backoff::new(100, 200)?),
        })
        .await?;
    let pusher = tether_pubsub::push::spawn(Arc::clone(&first), PushOptions::default());
    first
        .publish(TOPIC, vec![(b"kept".to_vec(), Default::default())])
        .await?;
    // Several refused attempts, then the "restart".
    tokio::time::sleep(Duration::from_millis(800)).await;
    pusher.abort();
    let _ = pusher.await;
    drop(first);

    let second = open(dir.path(), &log).await?;
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tokio::spawn(endpoint(listener, Arc::clone(&bodies), Arc::clone(&hits)));
    let pusher = tether_pubsub::push::spawn(Arc::clone(&second), PushOptions::default());
    for _ in 0..100 {
        if hits.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Longer than the backoff: an unacked message would come again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    pusher.abort();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "pushed once after the endpoint came up"
    );
    let body = bodies.lock().map(|b| b[0].clone()).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(
        v["message"]["data"], "a2VwdA==",
        "the message published before the restart"
    );
    assert_eq!(v["subscription"], SUB);
    Ok(())
}
