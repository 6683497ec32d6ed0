//! The fleet view's numbers, read from the same recorder `/metrics` renders: the page
//! polls them and charts the differences, so the console and a Prometheus scrape never
//! disagree.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::ConsoleState;
use crate::api::error::{ApiError, ApiResult};
use crate::api::telemetry::render_metrics;
use crate::bridge::Code;

/// The counters and gauges the fleet view shows, summed over their labels, with the
/// refusals kept by reason.
#[derive(Debug, Default, PartialEq)]
pub struct FleetNumbers {
    /// Open MQTT device sockets (`tether_mqtt_connections`).
    pub connections: f64,
    /// CONNECTs accepted (`tether_mqtt_connects_total`).
    pub connects: f64,
    /// Device messages admitted (`tether_mqtt_messages_in_total`).
    pub messages_in: f64,
    /// HTTP bridge requests (`tether_http_bridge_requests_total`).
    pub http_requests: f64,
    /// Messages sent to devices (`tether_mqtt_messages_out_total`).
    pub messages_out: f64,
    /// CONNECTs refused, by reason (`tether_mqtt_refusals_total{reason}`).
    pub refusals: BTreeMap<String, f64>,
}

/// Reads [`FleetNumbers`] from Prometheus text.
pub fn parse(text: &str) -> FleetNumbers {
    let mut n = FleetNumbers::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        match name {
            "tether_mqtt_connections" => n.connections += value,
            "tether_mqtt_connects_total" => n.connects += value,
            "tether_mqtt_messages_in_total" => n.messages_in += value,
            "tether_http_bridge_requests_total" => n.http_requests += value,
            "tether_mqtt_messages_out_total" => n.messages_out += value,
            "tether_mqtt_refusals_total" => {
                *n.refusals.entry(label(labels, "reason")).or_default() += value;
            }
            _ => {}
        }
    }
    n
}

/// The value of `key` in `a="x",b="y"` (label values this server writes hold no
/// quotes or commas).
fn label(labels: &str, key: &str) -> String {
    labels
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map_or_else(
            || "unlabelled".into(),
            |(_, v)| v.trim_matches('"').to_owned(),
        )
}

pub(super) async fn fleet(State(state): State<ConsoleState>) -> ApiResult<Json<Value>> {
    let text = render_metrics().ok_or_else(|| {
        ApiError::new(
            Code::Unavailable,
            "another metrics recorder is installed in this process",
        )
    })?;
    let n = parse(&text);
    Ok(Json(json!({
        "atMillis": state.api.clock.unix_millis(),
        "connections": n.connections,
        "connects": n.connects,
        "messagesIn": n.messages_in,
        "httpRequests": n.http_requests,
        "messagesOut": n.messages_out,
        "refusals": n.refusals,
    })))
}
