//! Tether's end-to-end latency, read back from its telemetry sink (the embedded log or
//! NATS JetStream) through the admin API: for each stored message, the gateway's
//! `publishTime` minus the send time the simulator wrote into the payload's first 8
//! bytes (same host, same clock).

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::Value;

use super::stats::Histogram;
use crate::admin::client::Client;

/// Records per read (the server's maximum).
const PAGE: usize = 1000;

fn offset(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        other => other.as_u64(),
    }
}

/// The next offset of `topic` (0 if the topic holds nothing yet).
pub async fn next_offset(client: &Client, topic: &str) -> anyhow::Result<u64> {
    let topics = client
        .get("telemetry/topics", &[])
        .await
        .context("cannot list the stored telemetry's topics")?;
    Ok(topics["topics"]
        .as_array()
        .and_then(|list| list.iter().find(|t| t["topic"] == topic))
        .and_then(|t| offset(&t["nextOffset"]))
        .unwrap_or(0))
}

/// Reads `topic` from `from` to its end; returns the latencies and the records read.
pub async fn latencies(
    client: &Client,
    topic: &str,
    from: u64,
) -> anyhow::Result<(Histogram, u64)> {
    let mut hist = Histogram::default();
    let mut at = from;
    let mut records = 0u64;
    loop {
        let page = client
            .get(
                "telemetry/messages",
                &[
                    ("topic", topic.to_string()),
                    ("from", at.to_string()),
                    ("max", PAGE.to_string()),
                ],
            )
            .await
            .context("cannot read the stored telemetry")?;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in &messages {
            records += 1;
            let Some(data) = m["data"]
                .as_str()
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            else {
                continue;
            };
            let Some(stored) = m["publishTime"]
                .as_str()
                .and_then(|t| tether_iot::UnixTime::parse_rfc3339(t).ok()?.to_micros())
            else {
                continue;
            };
            if let Some(sent) = data.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                let sent = i64::try_from(u64::from_be_bytes(sent)).unwrap_or(i64::MAX);
                let age = u64::try_from(stored.saturating_sub(sent)).unwrap_or(0);
                hist.record(Duration::from_micros(age));
            }
        }
        match offset(&page["nextOffset"]) {
            Some(next) if next > at => at = next,
            _ => break,
        }
    }
    Ok((hist, records))
}
