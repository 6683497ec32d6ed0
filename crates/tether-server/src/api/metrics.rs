//! Every metric the server exports, in one table: its kind, its help text, and the
//! label sets it exists with from start-up. Registering them at start means a fresh
//! node answers `tether_mqtt_connections 0` (so "this node has no devices" can be
//! alerted on) instead of an empty page. `docs/metrics.md` lists the same names; a
//! test keeps the two in step.

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution in fixed buckets.
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The Prometheus name.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// What it counts.
    pub help: &'static str,
    /// Label sets created at 0 on start-up (empty: one series without labels;
    /// labels only known at run time, such as refusal reasons, appear when first used).
    pub at_start: &'static [&'static [(&'static str, &'static str)]],
}

const NONE: &[&[(&str, &str)]] = &[&[]];
const KINDS: &[&[(&str, &str)]] = &[&[("kind", "event")], &[("kind", "state")]];

/// The table.
pub const METRICS: &[Metric] = &[
    Metric {
        name: "tether_mqtt_connections",
        kind: Kind::Gauge,
        help: "Open MQTT device sockets, authenticated or not.",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_connections_admitting",
        kind: Kind::Gauge,
        help: "MQTT sockets on the admission threads (--connect-priority low): handshaking, authenticating, or in their device's first 2 s.",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_accepted_total",
        kind: Kind::Counter,
        help: "MQTT sockets accepted, by transport (tls, tcp).",
        at_start: &[&[("transport", "tls")], &[("transport", "tcp")]],
    },
    Metric {
        name: "tether_mqtt_tls_failures_total",
        kind: Kind::Counter,
        help: "MQTT TLS handshakes that failed or timed out.",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_connect_attempts_total",
        kind: Kind::Counter,
        help: "CONNECT packets received.",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_device_cache_total",
        kind: Kind::Counter,
        help: "CONNECT lookups by result: hit (registry and device from the cache of recently connected devices) or miss (read from the store).",
        at_start: &[],
    },
    Metric {
        name: "tether_mqtt_connects_total",
        kind: Kind::Counter,
        help: "CONNECTs accepted.",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_refusals_total",
        kind: Kind::Counter,
        help: "CONNECTs refused, by reason (jwt_expired, jwt_audience, unknown_device, ...).",
        at_start: &[],
    },
    Metric {
        name: "tether_mqtt_disconnects_total",
        kind: Kind::Counter,
        help: "Connections ended, by reason (client_disconnect, eof, idle, jwt_expired, ...).",
        at_start: &[],
    },
    Metric {
        name: "tether_mqtt_reauth_total",
        kind: Kind::Counter,
        help: "MQTT 5 re-authentications (AUTH 0x19), by result (ok, refused).",
        at_start: &[],
    },
    Metric {
        name: "tether_mqtt_messages_in_total",
        kind: Kind::Counter,
        help: "Device messages admitted, by kind (event, state).",
        at_start: KINDS,
    },
    Metric {
        name: "tether_mqtt_payload_bytes_in_total",
        kind: Kind::Counter,
        help: "Payload bytes of admitted device messages, by kind.",
        at_start: KINDS,
    },
    Metric {
        name: "tether_mqtt_messages_out_total",
        kind: Kind::Counter,
        help: "Messages sent to devices, by kind (config, command, gateway_error).",
        at_start: &[
            &[("kind", "config")],
            &[("kind", "command")],
            &[("kind", "gateway_error")],
        ],
    },
    Metric {
        name: "tether_mqtt_bytes_in_total",
        kind: Kind::Counter,
        help: "Bytes read from MQTT sockets (after TLS).",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_bytes_out_total",
        kind: Kind::Counter,
        help: "Bytes written to MQTT sockets (before TLS).",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_throttled_total",
        kind: Kind::Counter,
        help: "Packets held back by a device's rate limit, by kind (event, state, subscribe).",
        at_start: &[
            &[("kind", "event")],
            &[("kind", "state")],
            &[("kind", "subscribe")],
        ],
    },
    Metric {
        name: "tether_mqtt_duplicates_total",
        kind: Kind::Counter,
        help: "QoS 1 resends (DUP) of a message still in flight, dropped.",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_append_failures_total",
        kind: Kind::Counter,
        help: "Device messages that could not be stored (the connection was closed), by kind and cause (timeout, log, nats, store, task).",
        at_start: &[],
    },
    Metric {
        name: "tether_mqtt_subscribe_refusals_total",
        kind: Kind::Counter,
        help: "SUBSCRIBE filters refused, by reason.",
        at_start: &[],
    },
    Metric {
        name: "tether_mqtt_jwt_warnings_total",
        kind: Kind::Counter,
        help: "Tokens accepted with a warning (non-canonical base64).",
        at_start: NONE,
    },
    Metric {
        name: "tether_jwt_signature_checks_skipped_total",
        kind: Kind::Counter,
        help: "Device tokens (MQTT, gateway attach, HTTP bridge) accepted without a second signature check: the same token from the same device, verified before against the same credentials.",
        at_start: NONE,
    },
    Metric {
        name: "tether_provisioning_sessions_total",
        kind: Kind::Counter,
        help: "MQTT connections accepted as provisioning sessions (a provisioning claim's token for a device that may register itself).",
        at_start: NONE,
    },
    Metric {
        name: "tether_provisioning_requests_total",
        kind: Kind::Counter,
        help: "Provisioning requests (MQTT and HTTP), by result: created, repeated (a retry answered again) or refused.",
        at_start: NONE,
    },
    Metric {
        name: "tether_provisioning_refusals_total",
        kind: Kind::Counter,
        help: "Provisioning sessions closed for something a session may not do (another topic, too many requests), by reason.",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_config_resends_total",
        kind: Kind::Counter,
        help: "QoS 1 configs sent again for want of a PUBACK.",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_gateway_attaches_total",
        kind: Kind::Counter,
        help: "Devices attached through gateways.",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_gateway_attach_refusals_total",
        kind: Kind::Counter,
        help: "Gateway attaches refused, by reason.",
        at_start: &[],
    },
    Metric {
        name: "tether_mqtt_activity_written_total",
        kind: Kind::Counter,
        help: "Device activity records (last*-times, errors) written to the registry.",
        at_start: NONE,
    },
    Metric {
        name: "tether_mqtt_activity_dropped_total",
        kind: Kind::Counter,
        help: "Device activity records dropped (queue full or store failure).",
        at_start: NONE,
    },
    Metric {
        name: "tether_listener_accepted_total",
        kind: Kind::Counter,
        help: "Sockets accepted, by listener (mqtt, https, admin, grpc: the Device Manager and Pub/Sub over TLS, pubsub: the Pub/Sub API over TLS, pubsub_plain: the plaintext Pub/Sub API).",
        at_start: &[
            &[("listener", "mqtt")],
            &[("listener", "https")],
            &[("listener", "admin")],
        ],
    },
    Metric {
        name: "tether_listener_accept_errors_total",
        kind: Kind::Counter,
        help: "accept() failures (e.g. out of file descriptors), by listener.",
        at_start: &[
            &[("listener", "mqtt")],
            &[("listener", "https")],
            &[("listener", "admin")],
        ],
    },
    Metric {
        name: "tether_listener_tls_failures_total",
        kind: Kind::Counter,
        help: "TLS handshakes that failed or timed out, by listener.",
        at_start: &[&[("listener", "mqtt")], &[("listener", "https")]],
    },
    Metric {
        name: "tether_listener_rate_limited_total",
        kind: Kind::Counter,
        help: "Sockets closed right after accept because their source address connected faster than --connect-rate-per-ip, by listener.",
        at_start: &[&[("listener", "mqtt")], &[("listener", "https")]],
    },
    Metric {
        name: "tether_http_bridge_requests_total",
        kind: Kind::Counter,
        help: "HTTP device bridge calls, by method and answer code.",
        at_start: &[],
    },
    Metric {
        name: "tether_sink_messages_total",
        kind: Kind::Counter,
        help: "Messages handed to the telemetry sink, by sink and outcome (ok, error), \
               counted when their connection learns the outcome.",
        at_start: &[],
    },
    Metric {
        name: "tether_log_bytes",
        kind: Kind::Gauge,
        help: "Bytes the embedded telemetry log holds on disk.",
        at_start: &[],
    },
    Metric {
        name: "tether_log_bytes_limit",
        kind: Kind::Gauge,
        help: "The embedded log's total byte cap in force.",
        at_start: &[],
    },
    Metric {
        name: "tether_log_reads_total",
        kind: Kind::Counter,
        help: "Reads of the embedded log, by path: cached (near the head, from the page cache on the reader's thread) or blocking (on the blocking pool).",
        at_start: &[],
    },
    Metric {
        name: "tether_log_evicted_segments_total",
        kind: Kind::Counter,
        help: "Log segments removed by the limits, by reason (age, total cap, topic cap).",
        at_start: &[],
    },
    Metric {
        name: "tether_log_evicted_messages_total",
        kind: Kind::Counter,
        help: "Messages in the segments removed by the limits, by reason.",
        at_start: &[],
    },
    Metric {
        name: "tether_pubsub_deliveries_total",
        kind: Kind::Counter,
        help: "Messages handed to Pub/Sub subscribers (pull, streaming pull, push), by delivery (first, again).",
        at_start: &[&[("delivery", "first")], &[("delivery", "again")]],
    },
    Metric {
        name: "tether_pubsub_acks_total",
        kind: Kind::Counter,
        help: "Pub/Sub deliveries acked (by a subscriber or a push endpoint).",
        at_start: NONE,
    },
    Metric {
        name: "tether_pubsub_ack_refusals_total",
        kind: Kind::Counter,
        help: "Pub/Sub ack ids refused, by reason (expired, forged).",
        at_start: &[],
    },
    Metric {
        name: "tether_pubsub_lease_expiries_total",
        kind: Kind::Counter,
        help: "Pub/Sub deliveries whose ack deadline passed unacked (they are delivered again).",
        at_start: NONE,
    },
    Metric {
        name: "tether_pubsub_push_total",
        kind: Kind::Counter,
        help: "Pub/Sub push POSTs, by outcome (acked, refused: any other answer or none).",
        at_start: &[],
    },
    Metric {
        name: "tether_pubsub_streams",
        kind: Kind::Gauge,
        help: "Open Pub/Sub streaming pulls.",
        at_start: NONE,
    },
    Metric {
        name: "tether_pubsub_outstanding",
        kind: Kind::Gauge,
        help: "Pub/Sub messages delivered and not yet acked, or due again, over all subscriptions.",
        at_start: NONE,
    },
    Metric {
        name: "tether_sink_publish_seconds",
        kind: Kind::Histogram,
        help: "Time the sink took to make a batch durable (what a QoS 1 PUBACK waits for).",
        at_start: &[],
    },
];

/// The help text of metric `name`, if it is one of ours.
pub(crate) fn help(name: &str) -> Option<&'static str> {
    METRICS.iter().find(|m| m.name == name).map(|m| m.help)
}

/// Describes every metric to the recorder and creates its start-up series at 0.
pub fn register() {
    for m in METRICS {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.help),
        }
        for labels in m.at_start {
            let labels: Vec<metrics::Label> = labels
                .iter()
                .map(|(k, v)| metrics::Label::new(*k, *v))
                .collect();
            match m.kind {
                Kind::Counter => metrics::counter!(m.name, labels).increment(0),
                Kind::Gauge => metrics::gauge!(m.name, labels).increment(0.0),
                Kind::Histogram => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_list_every_metric_and_no_other() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/metrics.md"),
        )
        .expect("docs/metrics.md");
        let documented: std::collections::BTreeSet<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|n| n.starts_with("tether_"))
            .collect();
        let table: std::collections::BTreeSet<&str> = METRICS.iter().map(|m| m.name).collect();
        assert_eq!(
            documented, table,
            "docs/metrics.md and api::metrics::METRICS differ"
        );
    }

    #[test]
    fn every_metric_the_code_uses_is_in_the_table() {
        // The server's code and the Pub/Sub layer's, which records into the same
        // recorder.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut used = std::collections::BTreeSet::new();
        let mut stack = vec![root.join("src"), root.join("../tether-pubsub/src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("src").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("read");
                    for macro_name in ["counter!(", "gauge!(", "histogram!("] {
                        for (i, _) in text.match_indices(macro_name) {
                            let rest = text[i + macro_name.len()..].trim_start();
                            if let Some(name) =
                                rest.strip_prefix('"').and_then(|r| r.split('"').next())
                                && name.starts_with("tether_")
                            {
                                used.insert(name.to_owned());
                            }
                        }
                    }
                }
            }
        }
        let table: std::collections::BTreeSet<String> =
            METRICS.iter().map(|m| m.name.to_owned()).collect();
        let missing: Vec<_> = used.difference(&table).collect();
        assert!(
            missing.is_empty(),
            "metrics used but not in METRICS: {missing:?}"
        );
    }
}
