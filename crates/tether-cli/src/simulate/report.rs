//! The results: a table for people, `--json` for machines.

use std::time::Duration;

use serde_json::{Value, json};

use super::procstat::Sample;
use super::self_provision::ProvisionRun;
use super::stats::Histogram;

/// CPU and memory over one phase, of the server (if local) and of the simulator.
#[derive(Debug, Clone, Copy)]
pub struct PhaseStats {
    /// Wall time of the phase.
    pub wall: Duration,
    /// Server CPU time used in it.
    pub server_cpu: Option<Duration>,
    /// Server RSS at its end.
    pub server_rss: Option<u64>,
    /// Simulator CPU time used in it.
    pub client_cpu: Option<Duration>,
}

impl PhaseStats {
    /// From samples at the phase's start and end.
    pub fn new(
        wall: Duration,
        s0: Option<Sample>,
        s1: Option<Sample>,
        c0: Option<Sample>,
        c1: Option<Sample>,
    ) -> Self {
        let cpu = |a: Option<Sample>, b: Option<Sample>| match (a, b) {
            (Some(a), Some(b)) => Some(b.cpu.saturating_sub(a.cpu)),
            _ => None,
        };
        Self {
            wall,
            server_cpu: cpu(s0, s1),
            server_rss: s1.map(|s| s.rss),
            client_cpu: cpu(c0, c1),
        }
    }
}

/// The `--reauth` phase.
#[derive(Debug, Clone, Copy)]
pub struct Reauth {
    /// Re-authentications the server accepted.
    pub done: u64,
    /// Its CPU and wall time.
    pub phase: PhaseStats,
}

/// Everything a run measured.
#[derive(Debug)]
pub struct Measured {
    /// Devices planned.
    pub devices: u64,
    /// The `--reconnect` round: the same devices and tokens connecting again.
    pub reconnect: Option<Box<Measured>>,
    /// The `--reauth` phase: every connection re-authenticating once (MQTT 5 AUTH).
    pub reauth: Option<Reauth>,
    /// The `--provision` phase: the devices registering themselves first.
    pub provision: Option<Box<ProvisionRun>>,
    /// CONNACK 0.
    pub connected: u64,
    /// CONNACK ≠ 0.
    pub refused: u64,
    /// Other failures.
    pub failed: u64,
    /// Lost after connecting.
    pub dropped: u64,
    /// The ramp.
    pub ramp: PhaseStats,
    /// The publish phase.
    pub publish: PhaseStats,
    /// Server RSS after the hold (connections idle).
    pub idle_rss: Option<u64>,
    /// Server RSS before the first connection.
    pub rss_before: Option<u64>,
    /// Messages sent in the publish phase.
    pub sent: u64,
    /// PUBACKs received in the publish phase.
    pub acked: u64,
    /// Messages sent in all.
    pub sent_total: u64,
    /// PUBACKs in all.
    pub acked_total: u64,
    /// Sends skipped for a full window.
    pub backlogged: u64,
    /// Messages received.
    pub received: u64,
    /// MQTT bytes written.
    pub bytes_out: u64,
    /// MQTT bytes read.
    pub bytes_in: u64,
    /// TCP connect → CONNACK.
    pub connect: Histogram,
    /// PUBLISH → PUBACK.
    pub puback: Histogram,
    /// PUBACK latency of the messages sent inside `--latency-window` (empty without).
    pub puback_in_window: Histogram,
    /// PUBACK latency of the messages sent outside it.
    pub puback_outside_window: Histogram,
    /// PUBLISH → consumer.
    pub e2e: Histogram,
    /// Messages read back from Tether's stored telemetry.
    pub stored: Option<u64>,
    /// What the `--pubsub` consumer received.
    pub pubsub: Option<super::subscriber::Consumed>,
    /// What the `--jetstream-consumer` received.
    pub jetstream: Option<super::subscriber::Consumed>,
    /// Up to five distinct errors.
    pub errors: Vec<String>,
}

fn per_sec(n: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

fn per_item_us(cpu: Option<Duration>, n: u64) -> Option<f64> {
    cpu.filter(|_| n > 0)
        .map(|c| c.as_secs_f64() * 1e6 / n as f64)
}

fn hist(h: &Histogram) -> Value {
    if h.count() == 0 {
        return Value::Null;
    }
    json!({
        "count": h.count(),
        "p50_us": h.quantile(0.5),
        "p90_us": h.quantile(0.9),
        "p99_us": h.quantile(0.99),
        "p999_us": h.quantile(0.999),
        "max_us": h.max(),
        "mean_us": h.mean(),
    })
}

impl Measured {
    /// Connections that completed a handshake per second of ramp.
    pub fn connects_per_sec(&self) -> f64 {
        per_sec(self.connected + self.refused, self.ramp.wall)
    }

    /// Messages (PUBACKs for QoS 1, sends for QoS 0) per second of publishing.
    pub fn messages_per_sec(&self, qos1: bool) -> f64 {
        per_sec(if qos1 { self.acked } else { self.sent }, self.publish.wall)
    }

    /// Server RSS growth per connection, after the hold.
    pub fn rss_per_conn(&self) -> Option<f64> {
        match (self.rss_before, self.idle_rss) {
            (Some(a), Some(b)) if self.connected > 0 => {
                Some((b as f64 - a as f64) / self.connected as f64)
            }
            _ => None,
        }
    }

    /// The `--json` document.
    pub fn to_json(&self, target: &str, qos1: bool, payload: usize) -> Value {
        let handshakes = self.connected + self.refused;
        let messages = if qos1 { self.acked } else { self.sent };
        json!({
            "target": target,
            "devices": self.devices,
            "connected": self.connected,
            "refused": self.refused,
            "failed": self.failed,
            "dropped": self.dropped,
            "ramp_secs": self.ramp.wall.as_secs_f64(),
            "connects_per_sec": self.connects_per_sec(),
            "connect_latency": hist(&self.connect),
            "server_cpu_per_connect_us": per_item_us(self.ramp.server_cpu, handshakes),
            "client_cpu_per_connect_us": per_item_us(self.ramp.client_cpu, handshakes),
            "qos": u8::from(qos1),
            "payload_bytes": payload,
            "publish_secs": self.publish.wall.as_secs_f64(),
            "sent": self.sent,
            "acked": self.acked,
            "sent_total": self.sent_total,
            "acked_total": self.acked_total,
            "backlogged": self.backlogged,
            "received": self.received,
            "messages_per_sec": self.messages_per_sec(qos1),
            "puback_latency": hist(&self.puback),
            "puback_latency_in_window": hist(&self.puback_in_window),
            "puback_latency_outside_window": hist(&self.puback_outside_window),
            "e2e_latency": hist(&self.e2e),
            "stored": self.stored,
            "pubsub_consumer": self.pubsub.as_ref().map(consumed),
            "jetstream_consumer": self.jetstream.as_ref().map(consumed),
            "server_cpu_per_message_us": per_item_us(self.publish.server_cpu, messages),
            "server_cpu_publish_secs": self.publish.server_cpu.map(|d| d.as_secs_f64()),
            "client_cpu_publish_secs": self.publish.client_cpu.map(|d| d.as_secs_f64()),
            "server_rss_before": self.rss_before,
            "server_rss_connected": self.ramp.server_rss,
            "server_rss_idle": self.idle_rss,
            "server_rss_per_connection": self.rss_per_conn(),
            "bytes_out": self.bytes_out,
            "bytes_in": self.bytes_in,
            "errors": self.errors,
            "reconnect": self.reconnect.as_deref().map(Measured::reconnect_json),
            "reauth": self.reauth_json(),
            "provision": self.provision.as_deref().map(provision_json),
        })
    }

    fn reauth_json(&self) -> Option<Value> {
        let r = self.reauth?;
        Some(json!({
            "done": r.done,
            "secs": r.phase.wall.as_secs_f64(),
            "server_cpu_per_reauth_us": per_item_us(r.phase.server_cpu, r.done),
            "client_cpu_per_reauth_us": per_item_us(r.phase.client_cpu, r.done),
            "ratio_to_connect": reauth_ratio(self),
        }))
    }

    fn reconnect_json(&self) -> Value {
        let handshakes = self.connected + self.refused;
        json!({
            "connected": self.connected,
            "refused": self.refused,
            "failed": self.failed,
            "connects_per_sec": self.connects_per_sec(),
            "connect_latency": hist(&self.connect),
            "server_cpu_per_connect_us": per_item_us(self.ramp.server_cpu, handshakes),
            "client_cpu_per_connect_us": per_item_us(self.ramp.client_cpu, handshakes),
            "errors": self.errors,
        })
    }
}

/// Server CPU per re-authentication over server CPU per fresh connect (the ramp's).
fn reauth_ratio(m: &Measured) -> Option<f64> {
    let r = m.reauth?;
    let reauth = per_item_us(r.phase.server_cpu, r.done)?;
    let connect = per_item_us(m.ramp.server_cpu, m.connected + m.refused)?;
    (connect > 0.0).then(|| reauth / connect)
}

fn provision_json(p: &ProvisionRun) -> Value {
    json!({
        "devices": p.devices,
        "provisioned": p.provisioned,
        "refused": p.refused,
        "failed": p.failed,
        "secs": p.phase.wall.as_secs_f64(),
        "per_sec": p.per_sec(),
        "latency": hist(&p.latency),
        "server_cpu_per_provision_us": per_item_us(p.phase.server_cpu, p.provisioned + p.refused),
        "client_cpu_per_provision_us": per_item_us(p.phase.client_cpu, p.provisioned + p.refused),
        "errors": p.errors,
    })
}

fn consumed(c: &super::subscriber::Consumed) -> Value {
    json!({
        "received": c.received,
        "duplicates": c.duplicates,
        "per_sec": c.per_sec(),
        "latency": hist(&c.latency),
    })
}

fn us(v: Option<u64>) -> String {
    match v {
        Some(v) if v >= 10_000 => format!("{:.1} ms", v as f64 / 1000.0),
        Some(v) => format!("{v} µs"),
        None => "-".into(),
    }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1} {unit}"))
}

fn mib(v: Option<u64>) -> String {
    v.map_or_else(
        || "-".into(),
        |v| format!("{:.1} MiB", v as f64 / 1048576.0),
    )
}

/// The human-readable table.
pub fn table(m: &Measured, target: &str, qos1: bool) -> String {
    let handshakes = m.connected + m.refused;
    let messages = if qos1 { m.acked } else { m.sent };
    let lat = |h: &Histogram| {
        format!(
            "p50 {}  p90 {}  p99 {}  max {}",
            us(h.quantile(0.5)),
            us(h.quantile(0.9)),
            us(h.quantile(0.99)),
            us(h.max())
        )
    };
    let mut rows: Vec<(&str, String)> = vec![("target", target.to_string())];
    if let Some(p) = &m.provision {
        rows.extend([
            (
                "provisioned",
                format!(
                    "{} of {} (claim → own key), {} refused, {} failed, {:.0}/s in {:.2} s",
                    p.provisioned,
                    p.devices,
                    p.refused,
                    p.failed,
                    p.per_sec(),
                    p.phase.wall.as_secs_f64()
                ),
            ),
            ("provision latency", lat(&p.latency)),
            (
                "server CPU / provision",
                opt(
                    per_item_us(p.phase.server_cpu, p.provisioned + p.refused),
                    "µs",
                ),
            ),
        ]);
    }
    rows.extend([
        (
            "connections",
            format!(
                "{} of {} connected, {} refused, {} failed, {} dropped",
                m.connected, m.devices, m.refused, m.failed, m.dropped
            ),
        ),
        (
            "connects/s",
            format!(
                "{:.0} (ramp {:.2} s)",
                m.connects_per_sec(),
                m.ramp.wall.as_secs_f64()
            ),
        ),
        ("connect latency", lat(&m.connect)),
        (
            "server CPU / connect",
            opt(per_item_us(m.ramp.server_cpu, handshakes), "µs"),
        ),
        (
            "client CPU / connect",
            opt(per_item_us(m.ramp.client_cpu, handshakes), "µs"),
        ),
        (
            "messages",
            format!(
                "{} sent, {} acked in {:.1} s (QoS {}), {} backlogged, {} received",
                m.sent,
                m.acked,
                m.publish.wall.as_secs_f64(),
                u8::from(qos1),
                m.backlogged,
                m.received
            ),
        ),
        ("messages/s", format!("{:.0}", m.messages_per_sec(qos1))),
    ]);
    if m.puback.count() > 0 {
        rows.push(("PUBACK latency", lat(&m.puback)));
    }
    if m.e2e.count() > 0 {
        rows.push(("end-to-end latency", lat(&m.e2e)));
    }
    if let Some(n) = m.stored {
        rows.push(("read back from log", format!("{n} messages")));
    }
    for (name, c) in [
        ("Pub/Sub consumer", &m.pubsub),
        ("JetStream consumer", &m.jetstream),
    ] {
        if let Some(c) = c {
            rows.push((
                name,
                format!(
                    "{} received, {} duplicates, {:.0}/s; {}",
                    c.received,
                    c.duplicates,
                    c.per_sec(),
                    lat(&c.latency)
                ),
            ));
        }
    }
    rows.extend([
        (
            "server CPU / message",
            opt(per_item_us(m.publish.server_cpu, messages), "µs"),
        ),
        (
            "server RSS",
            format!(
                "{} before, {} connected, {} idle",
                mib(m.rss_before),
                mib(m.ramp.server_rss),
                mib(m.idle_rss)
            ),
        ),
        (
            "server RSS / connection",
            opt(m.rss_per_conn().map(|b| b / 1024.0), "KiB"),
        ),
        (
            "bytes (MQTT)",
            format!("{} out, {} in", m.bytes_out, m.bytes_in),
        ),
    ]);
    if let Some(r) = &m.reconnect {
        rows.push((
            "reconnect",
            format!(
                "{} connected, {} refused, {} failed, {:.0}/s; {}",
                r.connected,
                r.refused,
                r.failed,
                r.connects_per_sec(),
                lat(&r.connect)
            ),
        ));
        rows.push((
            "server CPU / reconnect",
            opt(
                per_item_us(r.ramp.server_cpu, r.connected + r.refused),
                "µs",
            ),
        ));
    }
    if let Some(r) = &m.reauth {
        rows.push((
            "re-auth (AUTH)",
            format!(
                "{} of {} connections in {:.2} s",
                r.done,
                m.connected,
                r.phase.wall.as_secs_f64()
            ),
        ));
        rows.push((
            "server CPU / re-auth",
            match (per_item_us(r.phase.server_cpu, r.done), reauth_ratio(m)) {
                (Some(us), Some(ratio)) => format!("{us:.1} µs ({ratio:.2}× a connect)"),
                (us, _) => opt(us, "µs"),
            },
        ));
    }
    for e in m
        .provision
        .iter()
        .flat_map(|p| &p.errors)
        .chain(&m.errors)
        .chain(m.reconnect.iter().flat_map(|r| &r.errors))
    {
        rows.push(("error", e.clone()));
    }
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("{k:<width$}  {v}\n"));
    }
    out
}
