//! What the admin listener serves beside the Device Manager API: `/metrics`
//! (Prometheus text) and the admin-only telemetry reads `/v1/telemetry/topics` and
//! `/v1/telemetry/messages`, through the sink's [`TelemetryReader`] (the embedded
//! log or JetStream: the same JSON from either).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};
use tether_route::{ReadError, ReadLimits, TelemetryReader};

use super::auth::AdminAuth;
use super::error::ApiError;
use super::json::time;
use crate::bridge::Code;

/// Longest a follow read waits for new messages.
const WAIT_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct TelemetryState {
    admin: AdminAuth,
    metrics_token: Option<AdminAuth>,
    reader: Option<Arc<dyn TelemetryReader>>,
}

/// Bucket bounds (seconds) of every latency histogram: fixed buckets keep a histogram's
/// memory constant however many samples it takes.
pub(crate) const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];
/// How often the recorder folds recorded samples into its buckets. Without it every
/// sample stays queued until the next scrape: memory grows without bound on a server
/// nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

fn metrics_handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
                .inspect(|_| super::metrics::register())
        })
        .as_ref()
}

/// Installs the Prometheus recorder and creates every series at 0. Call it before
/// anything can count: a metric recorded before the recorder exists is lost.
pub fn install_recorder() {
    let _ = metrics_handle();
}

/// The Prometheus text `/metrics` serves, or `None` when another recorder is installed
/// in this process.
pub(crate) fn render_metrics() -> Option<String> {
    let mut text = metrics_handle().map(PrometheusHandle::render)?;
    super::histogram::render(&mut text, super::metrics::help);
    Some(text)
}

/// Runs the recorder's upkeep every few seconds, so memory stays flat whether or not
/// anything scrapes `/metrics`.
pub fn spawn_metrics_upkeep() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        let Some(handle) = metrics_handle() else {
            return;
        };
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            handle.run_upkeep();
        }
    })
}

/// `/metrics` (Prometheus text; open, or behind `metrics_token` when one is set) and
/// the admin-only telemetry reads through `reader` (`None`: nothing to read from, and
/// the reads say so).
pub fn routes(
    admin: AdminAuth,
    metrics_token: Option<AdminAuth>,
    reader: Option<Arc<dyn TelemetryReader>>,
) -> Router {
    // Install the recorder now so connections counted before the first scrape show.
    let _ = metrics_handle();
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/telemetry/topics", get(topics))
        .route("/v1/telemetry/messages", get(messages))
        .with_state(TelemetryState {
            admin,
            metrics_token,
            reader,
        })
}

async fn metrics(State(state): State<TelemetryState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token
        && let Err(e) = token.check(headers.get("authorization").and_then(|v| v.to_str().ok()))
    {
        return e.into_response();
    }
    match render_metrics() {
        Some(text) => text.into_response(),
        None => ApiError::new(
            Code::Unavailable,
            "another metrics recorder is installed in this process",
        )
        .into_response(),
    }
}

fn reader(
    state: &TelemetryState,
    headers: &HeaderMap,
) -> Result<Arc<dyn TelemetryReader>, ApiError> {
    state
        .admin
        .check(headers.get("authorization").and_then(|v| v.to_str().ok()))?;
    state.reader.clone().ok_or_else(|| {
        ApiError::new(
            Code::FailedPrecondition,
            "this server has no telemetry sink to read from",
        )
    })
}

/// A failed read: the caller's topic name, or the store behind the reader.
pub(crate) fn read_error(e: ReadError) -> ApiError {
    let code = match &e {
        ReadError::InvalidTopic { .. } => Code::InvalidArgument,
        ReadError::Nats { .. } => Code::Unavailable,
        _ => Code::Internal,
    };
    ApiError::new(code, e.to_string())
}

async fn topics(
    State(state): State<TelemetryState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers)?;
    let topics: Vec<Value> = reader
        .topics()
        .await
        .map_err(read_error)?
        .into_iter()
        .map(|t| {
            json!({
                "topic": t.topic,
                "earliestOffset": t.offsets.earliest.to_string(),
                "nextOffset": t.offsets.next.to_string(),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "topics": topics })).into_response())
}

fn number<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    key: &str,
    default: T,
) -> Result<T, ApiError> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            ApiError::new(
                Code::InvalidArgument,
                format!("{key} = '{v}' is not a non-negative number"),
            )
        }),
    }
}

/// A stored message as the telemetry reads and the console's stream show it.
pub(crate) fn record_json(r: &tether_log::Record) -> Value {
    json!({
        "offset": r.offset.to_string(),
        "data": base64::engine::general_purpose::STANDARD.encode(&r.message.data),
        "attributes": &*r.message.attributes,
        "publishTime": time::format(tether_registry::model::Timestamp(r.message.publish_time)),
    })
}

/// `?topic=T&from=N&max=M&wait=S`: messages from offset N; with `wait`, blocks up to S
/// seconds for the first new message (how `tether events tail --follow` streams).
async fn messages(
    State(state): State<TelemetryState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers)?;
    let topic = q.get("topic").cloned().ok_or_else(|| {
        ApiError::new(
            Code::InvalidArgument,
            "topic is required, e.g. ?topic=projects/p/topics/t",
        )
    })?;
    if let Some(unknown) = q
        .keys()
        .find(|k| !matches!(k.as_str(), "topic" | "from" | "max" | "wait"))
    {
        return Err(ApiError::new(
            Code::InvalidArgument,
            format!("unknown query parameter '{unknown}' (known: topic, from, max, wait)"),
        ));
    }
    let from: u64 = number(&q, "from", 0)?;
    let limits = ReadLimits::new(number(&q, "max", 100usize)?);
    let wait = Duration::from_secs(number(&q, "wait", 0u64)?).min(WAIT_MAX);
    let mut records = reader
        .read(&topic, from, limits)
        .await
        .map_err(read_error)?;
    if records.is_empty()
        && !wait.is_zero()
        && reader.wait(&topic, from, wait).await.map_err(read_error)?
    {
        records = reader
            .read(&topic, from, limits)
            .await
            .map_err(read_error)?;
    }
    // Past the last record read; with none, past the topic's end (or `from` if later).
    let next = match records.last() {
        Some(r) => r.offset + 1,
        None => reader
            .offsets(&topic)
            .await
            .map_err(read_error)?
            .map_or(from, |o| o.next.max(from)),
    };
    let messages: Vec<Value> = records.iter().map(record_json).collect();
    Ok(
        axum::Json(json!({ "topic": topic, "messages": messages, "nextOffset": next.to_string() }))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    // The same reads on the embedded log and on JetStream.
    mod both_sinks;

    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt as _;
    use tether_log::{EmbeddedLog, LogConfig};
    use tower::ServiceExt as _;

    async fn call(router: &Router, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::get(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = router
            .clone()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn a_fresh_server_already_exports_its_series_at_zero() {
        let router = routes(
            AdminAuth::from_token("secret-token-123456", "test"),
            None,
            None,
        );
        let resp = router
            .oneshot(
                Request::get("/metrics")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&body);
        for line in [
            "tether_mqtt_connections 0",
            "tether_mqtt_connects_total 0",
            "tether_mqtt_messages_in_total{kind=\"event\"} 0",
            "# HELP tether_mqtt_connections Open MQTT device sockets",
        ] {
            assert!(text.contains(line), "no '{line}' in:\n{text}");
        }
    }

    #[tokio::test]
    async fn a_metrics_token_closes_metrics_to_everyone_else() {
        let router = routes(
            AdminAuth::from_token("secret-token-123456", "test"),
            Some(AdminAuth::from_token(
                "scrape-token-0000001",
                "--metrics-token",
            )),
            None,
        );
        let (status, _) = call(&router, "/metrics", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = call(&router, "/metrics", Some("secret-token-123456")).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "the admin token is not the scrape token"
        );
        let req = Request::get("/metrics")
            .header("authorization", "Bearer scrape-token-0000001")
            .body(Body::empty())
            .expect("request");
        let resp = router.clone().oneshot(req).await.expect("infallible");
        assert_ne!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_ne!(resp.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn one_read_is_capped_in_bytes_and_the_next_offset_goes_on_from_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = EmbeddedLog::open(LogConfig::new(dir.path()))
            .await
            .expect("log");
        let device = tether_log::DeviceCoordinates {
            project_id: "acme".into(),
            location: "us-central1".into(),
            registry_id: "fleet".into(),
            device_id: "dev-1".into(),
            device_num_id: 7,
        };
        let topic = "projects/acme/topics/big";
        let big = vec![b'x'; 256 * 1024];
        let msgs = (0..40)
            .map(|_| tether_log::Message::event(topic, &device, "", big.clone(), 1_000_000))
            .collect();
        log.append(msgs).await.expect("append");
        let router = routes(
            AdminAuth::from_token("secret-token-123456", "test"),
            None,
            Some(Arc::new(log)),
        );
        let ok = Some("secret-token-123456");
        let (status, v) = call(
            &router,
            "/v1/telemetry/messages?topic=projects/acme/topics/big&max=1000",
            ok,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let got = v["messages"].as_array().map_or(0, Vec::len);
        assert_eq!(
            got,
            tether_route::reader::MAX_PAYLOAD_BYTES / big.len(),
            "8 MiB of 256 KiB messages"
        );
        assert_eq!(v["nextOffset"], got.to_string());
        let (_, v) = call(
            &router,
            &format!("/v1/telemetry/messages?topic=projects/acme/topics/big&max=1000&from={got}"),
            ok,
        )
        .await;
        assert_eq!(v["messages"].as_array().map_or(0, Vec::len), 40 - got);
        assert_eq!(v["nextOffset"], "40");
    }

    #[tokio::test]
    async fn telemetry_reads_need_the_token_and_valid_parameters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = EmbeddedLog::open(LogConfig::new(dir.path()))
            .await
            .expect("log");
        let device = tether_log::DeviceCoordinates {
            project_id: "acme".into(),
            location: "us-central1".into(),
            registry_id: "fleet".into(),
            device_id: "dev-1".into(),
            device_num_id: 7,
        };
        let topic = "projects/acme/topics/t";
        let msgs = (0..3)
            .map(|i| tether_log::Message::event(topic, &device, "a", vec![b'0' + i], 1_000_000))
            .collect();
        log.append(msgs).await.expect("append");
        let router = routes(
            AdminAuth::from_token("secret-token-123456", "test"),
            None,
            Some(Arc::new(log)),
        );

        let (status, _) = call(&router, "/v1/telemetry/topics", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = call(&router, "/metrics", None).await;
        assert_ne!(
            status,
            StatusCode::UNAUTHORIZED,
            "open without --metrics-token"
        );
        let (status, _) = call(
            &router,
            "/v1/telemetry/topics",
            Some("wrong-token-00000000"),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, v) = call(&router, "/v1/telemetry/topics", Some("secret-token-123456")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["topics"][0]["nextOffset"], "3");

        let ok = Some("secret-token-123456");
        let (status, v) = call(
            &router,
            "/v1/telemetry/messages?topic=projects/acme/topics/t&from=1",
            ok,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["messages"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["messages"][0]["attributes"]["deviceId"], "dev-1");
        assert_eq!(v["messages"][0]["data"], "MQ==");
        assert_eq!(v["nextOffset"], "3");
        let (status, v) = call(
            &router,
            "/v1/telemetry/messages?topic=projects/acme/topics/none",
            ok,
        )
        .await;
        assert_eq!(
            (status, v["messages"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(0))
        );
        let (status, v) = call(&router, "/v1/telemetry/messages", ok).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("topic is required")
        );
        let (status, v) = call(&router, "/v1/telemetry/messages?topic=t&colour=red", ok).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("'colour'")
        );
        let (status, _) = call(&router, "/v1/telemetry/messages?topic=t&from=-1", ok).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
