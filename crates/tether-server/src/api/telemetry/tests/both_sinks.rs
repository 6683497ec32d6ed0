//! One test, both sinks: the same messages, stored in the embedded log and in NATS
//! JetStream, come back as the same JSON from `/v1/telemetry/topics` and
//! `/v1/telemetry/messages` (what `tether events` prints). Offsets differ by design
//! (0, 1, 2, … per topic against stream sequences with gaps), so the two transcripts
//! are compared without them, and the offsets' rules are checked on each sink.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tether_log::{DeviceCoordinates, EmbeddedLog, LogConfig, Message};
use tether_route::{NatsConfig, NatsSink, Sink, TelemetryReader};

use super::call;
use crate::api::auth::AdminAuth;
use crate::api::telemetry::routes;

const TOKEN: &str = "secret-token-123456";
const TELEMETRY: &str = "projects/acme/topics/telemetry";
const STATE: &str = "projects/acme/topics/state";
const BIG: &str = "projects/acme/topics/big";
const UNKNOWN: &str = "projects/acme/topics/none";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_json_from_the_embedded_log_and_from_jetstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        EmbeddedLog::open(LogConfig::new(dir.path()))
            .await
            .expect("log"),
    );
    let embedded = transcript(log.clone(), log).await;

    let Some(url) = tether_testkit::require(
        "NATS JetStream (TETHER_TEST_NATS_URL)",
        tether_testkit::needs::env("TETHER_TEST_NATS_URL"),
    ) else {
        return;
    };
    let nats = Arc::new(test_stream(&url).await);
    let jetstream = transcript(nats.clone(), nats.clone()).await;
    let _ = nats.jetstream().delete_stream(&nats.config().stream).await;
    assert_eq!(jetstream, embedded);
}

/// A sink on its own stream and subject prefix, so runs cannot collide; the stream
/// expires by itself if the test fails before deleting it.
async fn test_stream(url: &str) -> NatsSink {
    use std::hash::{BuildHasher as _, Hasher as _};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let id = format!("{:x}{random:x}", std::process::id());
    let config = NatsConfig {
        url: url.to_owned(),
        stream: format!("TETHER_TEST_READS_{id}"),
        subject_prefix: format!("tethertest.reads{id}"),
    };
    let client = async_nats::connect(url).await.expect("connect to NATS");
    async_nats::jetstream::new(client.clone())
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            max_age: Duration::from_secs(600),
            ..Default::default()
        })
        .await
        .expect("create the test stream");
    NatsSink::with_client(client, config).await.expect("sink")
}

fn device() -> DeviceCoordinates {
    DeviceCoordinates {
        project_id: "acme".into(),
        location: "europe-west1".into(),
        registry_id: "fleet".into(),
        device_id: "dev-1".into(),
        device_num_id: 2_800_000_000_001,
    }
}

/// Telemetry and state interleaved (gaps in JetStream's offsets), with binary,
/// empty and JSON payloads, subfolders, and times down to the microsecond.
fn messages() -> Vec<Message> {
    let d = device();
    vec![
        Message::event(
            TELEMETRY,
            &d,
            "alerts",
            vec![0, 1, 2, 255],
            1_790_000_000_123_456,
        ),
        Message::state(STATE, &d, b"{\"on\":true}".to_vec(), 1_790_000_001_000_000),
        Message::event(TELEMETRY, &d, "", Vec::new(), 1_790_000_002_000_000),
        Message::state(STATE, &d, b"{\"on\":false}".to_vec(), 1_790_000_003_000_000),
        Message::event(
            TELEMETRY,
            &d,
            "a/b",
            b"third".to_vec(),
            1_790_000_004_000_001,
        ),
        Message::event(
            TELEMETRY,
            &d,
            "alerts",
            b"fourth".to_vec(),
            1_790_000_005_000_000,
        ),
        Message::event(
            TELEMETRY,
            &d,
            "alerts",
            b"fifth".to_vec(),
            1_790_000_006_000_000,
        ),
    ]
}

async fn get(router: &Router, uri: &str) -> Value {
    let (status, v) = call(router, uri, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {v}");
    v
}

fn offset(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an offset is a decimal string, not {v}"))
}

fn messages_uri(topic: &str, from: u64, extra: &str) -> String {
    format!("/v1/telemetry/messages?topic={topic}&from={from}{extra}")
}

/// An answer of `/v1/telemetry/messages` without its offsets.
fn without_offsets(answer: &Value) -> Value {
    let mut v = answer.clone();
    if let Some(object) = v.as_object_mut() {
        object.remove("nextOffset");
    }
    for m in v["messages"].as_array_mut().into_iter().flatten() {
        if let Some(object) = m.as_object_mut() {
            object.remove("offset");
        }
    }
    v
}

/// Stores the messages through `sink`, reads them back through the API over
/// `reader` and checks the offsets' rules; returns the answers without offsets,
/// which must be the same on every sink.
async fn transcript(sink: Arc<dyn Sink>, reader: Arc<dyn TelemetryReader>) -> Vec<Value> {
    let router = routes(AdminAuth::from_token(TOKEN, "test"), None, Some(reader));
    let mut out = Vec::new();
    sink.publish(messages()).await.expect("publish");

    // Topics, sorted, with the range each holds.
    let topics = get(&router, "/v1/telemetry/topics").await;
    let list = topics["topics"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = list.iter().filter_map(|t| t["topic"].as_str()).collect();
    assert_eq!(names, [STATE, TELEMETRY]);
    let listed = &list[1];
    let (earliest, next) = (
        offset(&listed["earliestOffset"]),
        offset(&listed["nextOffset"]),
    );
    out.push(json!(names));

    // A whole topic: offsets rise from earliestOffset, and nextOffset is one past the last.
    let all = get(&router, &messages_uri(TELEMETRY, 0, "&max=1000")).await;
    let stored = all["messages"].as_array().cloned().unwrap_or_default();
    let offsets: Vec<u64> = stored.iter().map(|m| offset(&m["offset"])).collect();
    assert_eq!(offsets.len(), 5);
    assert_eq!(offsets.first(), Some(&earliest));
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    assert_eq!(offsets.last().map(|o| o + 1), Some(next));
    assert_eq!(offset(&all["nextOffset"]), next);
    out.push(without_offsets(&all));

    // Page by page, each from the last nextOffset: the same messages.
    let (mut from, mut paged) = (0, Vec::new());
    loop {
        let page = get(&router, &messages_uri(TELEMETRY, from, "&max=2")).await;
        let got = page["messages"].as_array().cloned().unwrap_or_default();
        assert!(got.len() <= 2);
        if got.is_empty() {
            assert_eq!(offset(&page["nextOffset"]), next);
            break;
        }
        from = offset(&page["nextOffset"]);
        paged.extend(got);
    }
    assert_eq!(paged, stored);

    // At the end or past it: nothing, and nextOffset stays where the caller is.
    for from in [next, next + 1000] {
        let v = get(&router, &messages_uri(TELEMETRY, from, "")).await;
        assert_eq!(v["messages"], json!([]));
        assert_eq!(offset(&v["nextOffset"]), from);
    }
    // An unknown topic is an empty list.
    for from in [0, 7] {
        out.push(get(&router, &messages_uri(UNKNOWN, from, "")).await);
    }

    // `wait` answers as soon as a message arrives...
    let waiting = {
        let router = router.clone();
        let uri = messages_uri(TELEMETRY, next, "&wait=20");
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            (call(&router, &uri, Some(TOKEN)).await, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing to answer with yet");
    let late = Message::event(
        TELEMETRY,
        &device(),
        "late",
        b"late".to_vec(),
        1_790_000_100_000_000,
    );
    sink.publish(vec![late]).await.expect("publish");
    let ((status, woke), took) = waiting.await.expect("waiting request");
    assert_eq!(status, StatusCode::OK, "{woke}");
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    let arrived = woke["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(arrived.len(), 1, "{woke}");
    let at = offset(&arrived[0]["offset"]);
    assert!(at >= next);
    assert_eq!(offset(&woke["nextOffset"]), at + 1);
    out.push(without_offsets(&woke));
    // ...and with nothing arriving, answers empty once the wait is over.
    let start = tokio::time::Instant::now();
    let quiet = get(&router, &messages_uri(TELEMETRY, at + 1, "&wait=1")).await;
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert_eq!(quiet["messages"], json!([]));
    assert_eq!(offset(&quiet["nextOffset"]), at + 1);

    // One read holds at most 8 MiB of payload; the next goes on from its nextOffset.
    let big: Vec<Message> = (0..40)
        .map(|i| {
            Message::event(
                BIG,
                &device(),
                "",
                vec![i; 256 * 1024],
                1_790_000_200_000_000,
            )
        })
        .collect();
    sink.publish(big).await.expect("publish");
    let first = get(&router, &messages_uri(BIG, 0, "&max=1000")).await;
    let first_len = first["messages"].as_array().map_or(0, Vec::len);
    let from = offset(&first["nextOffset"]);
    let rest = get(&router, &messages_uri(BIG, from, "&max=1000")).await;
    let rest_len = rest["messages"].as_array().map_or(0, Vec::len);
    assert_eq!((first_len, rest_len), (32, 8));
    out.push(json!([first_len, rest_len]));
    out
}
