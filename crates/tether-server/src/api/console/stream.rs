//! Live telemetry as server-sent events: `GET /console/api/stream?topic=T[&registry=R]
//! [&device=D]` streams every new message of topic `T` (of registry `R` and device `D`
//! only, when given) as
//! `event: message` with the JSON of `/v1/telemetry/messages`, and a comment every
//! [`IDLE`] so proxies keep the stream open. The page reads it with `fetch` (an
//! `EventSource` cannot send the admin token).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tether_log::Record;
use tether_route::{ReadLimits, TelemetryReader};

use super::ConsoleState;
use crate::api::error::{ApiError, ApiResult};
use crate::api::telemetry::{read_error, record_json};
use crate::bridge::Code;

/// Longest the stream stays silent: a keep-alive comment follows.
const IDLE: Duration = Duration::from_secs(15);
/// Messages read per step.
const BATCH: usize = 100;

/// Where one stream is.
struct Cursor {
    reader: Arc<dyn TelemetryReader>,
    topic: String,
    /// Only messages with these attributes (`deviceRegistryId`, `deviceId`).
    only: Vec<(&'static str, String)>,
    next: u64,
    ended: bool,
}

/// One message as an SSE event (`id` is its offset).
fn event(record: &Record) -> String {
    format!(
        "event: message\nid: {}\ndata: {}\n\n",
        record.offset,
        record_json(record)
    )
}

/// A failure as the stream's last event.
fn failure(e: &ApiError) -> String {
    format!(
        "event: failure\ndata: {}\n\n",
        json!({ "message": e.to_string() })
    )
}

impl Cursor {
    /// The next chunk of the stream: new messages, a keep-alive, or the failure that
    /// ends it.
    async fn step(&mut self) -> String {
        // Silent for at most IDLE, also while every message read is filtered out.
        let silent_until = tokio::time::Instant::now() + IDLE;
        loop {
            let records = match self
                .reader
                .read(&self.topic, self.next, ReadLimits::new(BATCH))
                .await
            {
                Ok(records) => records,
                Err(e) => {
                    self.ended = true;
                    return failure(&read_error(e));
                }
            };
            if let Some(last) = records.last() {
                self.next = last.offset + 1;
                let chunk: String = records
                    .iter()
                    .filter(|r| {
                        self.only.iter().all(|(key, want)| {
                            r.message.attributes.get(*key).is_some_and(|v| v == want)
                        })
                    })
                    .map(event)
                    .collect();
                if !chunk.is_empty() {
                    return chunk;
                }
                if tokio::time::Instant::now() >= silent_until {
                    return ": idle\n\n".into();
                }
                continue;
            }
            let left = silent_until.saturating_duration_since(tokio::time::Instant::now());
            match self.reader.wait(&self.topic, self.next, left).await {
                Ok(true) => {}
                Ok(false) => return ": idle\n\n".into(),
                Err(e) => {
                    self.ended = true;
                    return failure(&read_error(e));
                }
            }
        }
    }
}

pub(super) async fn stream(
    State(state): State<ConsoleState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let reader = state.reader.clone().ok_or_else(|| {
        ApiError::new(
            Code::FailedPrecondition,
            "this server has no telemetry sink to read from",
        )
    })?;
    if let Some(unknown) = q
        .keys()
        .find(|k| !matches!(k.as_str(), "topic" | "registry" | "device" | "from"))
    {
        return Err(ApiError::invalid(format!(
            "unknown query parameter '{unknown}' (known: topic, registry, device, from)"
        )));
    }
    let topic = q
        .get("topic")
        .cloned()
        .ok_or_else(|| ApiError::invalid("topic is required, e.g. ?topic=projects/p/topics/t"))?;
    let next = match q.get("from") {
        Some(v) => v.parse::<u64>().map_err(|_| {
            ApiError::invalid(format!(
                "from = '{v}' is not an offset (a non-negative number)"
            ))
        })?,
        // From now on: the topic's end (an unknown topic starts empty).
        None => reader
            .offsets(&topic)
            .await
            .map_err(read_error)?
            .map_or(0, |o| o.next),
    };
    let cursor = Cursor {
        reader,
        topic,
        only: [("deviceRegistryId", "registry"), ("deviceId", "device")]
            .into_iter()
            .filter_map(|(attribute, param)| {
                q.get(param)
                    .filter(|v| !v.is_empty())
                    .map(|v| (attribute, v.clone()))
            })
            .collect(),
        next,
        ended: false,
    };
    // The first chunk says where the stream starts, so the page knows it is live.
    let opened = format!(
        "event: open\ndata: {}\n\n",
        json!({ "from": next.to_string() })
    );
    let head = futures_util::stream::once(async move { Ok::<_, Infallible>(opened) });
    let rest = futures_util::stream::unfold(cursor, |mut cursor| async move {
        if cursor.ended {
            return None;
        }
        let chunk = cursor.step().await;
        Some((Ok::<_, Infallible>(chunk), cursor))
    });
    let body = Body::from_stream(futures_util::StreamExt::chain(head, rest));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // A reverse proxy (nginx) must pass events on as they come.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response())
}
