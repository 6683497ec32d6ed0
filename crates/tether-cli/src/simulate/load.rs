//! The run: open the connections at the planned ramp, let everyone publish for the
//! planned time, hold, close; sample the server process around each phase.
//!
//! ```text
//!  Ramp (connect all, paced) ─▶ Publish (duration) ─▶ Hold (PUBACKs drain, --hold) ─▶ Close
//!   │ server CPU/RSS sampled at each boundary; counters feed the progress bar
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::conn::{self, Device, Phase, Shared};
use super::plan::Plan;
use super::procstat::{self, Sample};
use super::report::{Measured, PhaseStats, Reauth};
use super::stats::{ConnResult, Counters, Histogram};

/// Longest wait for outstanding PUBACKs after the publish phase.
const DRAIN: Duration = Duration::from_secs(10);

/// TLS client settings trusting `ca` (PEM); resumption only if asked (distinct devices
/// do not share a session cache, so the default measures full handshakes).
pub fn tls_config(ca: &std::path::Path, resume: bool) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("cannot read the CA file {}", ca.display()))?
    {
        let cert = cert.with_context(|| format!("{} holds a bad certificate", ca.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{} holds an unusable CA certificate", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// One connection to open.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Device id.
    pub id: String,
    /// MQTT client id.
    pub client_id: String,
    /// CONNECT password.
    pub password: Vec<u8>,
    /// The fresh token `--reauth` sends (empty: the CONNECT's).
    pub reauth: Vec<u8>,
}

/// Inputs of a run besides the plan.
#[derive(Debug)]
pub struct RunInput {
    /// TLS settings when the plan says TLS.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// The devices.
    pub specs: Vec<Spec>,
    /// The server process to sample.
    pub server_pid: Option<u32>,
    /// Show a progress bar.
    pub progress: bool,
}

fn sample(pid: Option<u32>) -> Option<Sample> {
    pid.and_then(|p| procstat::sample(Some(p)))
}

fn bar(show: bool, len: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb
}

fn status(c: &Counters) -> String {
    format!(
        "connected {} refused {} failed {} | sent {} acked {}",
        Counters::get(&c.connected),
        Counters::get(&c.refused),
        Counters::get(&c.failed),
        Counters::get(&c.sent),
        Counters::get(&c.acked),
    )
}

fn done(c: &Counters) -> u64 {
    Counters::get(&c.connected) + Counters::get(&c.refused) + Counters::get(&c.failed)
}

/// Runs the plan and returns what was measured.
pub async fn run(plan: &Plan, input: RunInput) -> anyhow::Result<Measured> {
    let (phase_tx, phase_rx) = watch::channel(Phase::Ramp);
    let devices = input.specs.len();
    let shared = Arc::new(Shared {
        addr: plan.addr,
        tls: input
            .tls
            .map(|(cfg, name)| (tokio_rustls::TlsConnector::from(cfg), name)),
        publish_gap: plan.publish_gap,
        qos1: plan.qos1,
        payload: plan.payload,
        inflight: plan.inflight,
        subscribe: plan.subscribe,
        devices,
        counters: Counters::default(),
        phase: phase_rx,
        epoch: Instant::now(),
        mqtt5: plan.mqtt5,
        latency_window: plan.latency_window,
    });
    let counters = &shared.counters;
    let gate = Arc::new(Semaphore::new(plan.concurrency));
    let mut tasks: JoinSet<(bool, ConnResult)> = JoinSet::new();
    let source = |i: usize| -> Option<IpAddr> {
        (!plan.source_ips.is_empty()).then(|| plan.source_ips[i % plan.source_ips.len()])
    };

    // The e2e consumer connects first and is not counted as a device.
    let mut consumer_ok = true;
    if plan.e2e {
        let permit = gate.clone().acquire_owned().await.context("semaphore")?;
        let consumer = Device {
            index: 0,
            id: "tether-sim-consumer".into(),
            client_id: "tether-sim-consumer".into(),
            password: Vec::new(),
            reauth: Vec::new(),
            source: source(0),
            consumer: true,
        };
        let run = conn::run(shared.clone(), consumer, permit);
        tasks.spawn(async move { (false, run.await) });
        let deadline = Instant::now() + Duration::from_secs(10);
        while done(counters) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        consumer_ok = Counters::get(&counters.connected) == 1;
        anyhow::ensure!(consumer_ok, "the --e2e consumer could not connect");
    }
    let base = done(counters);
    let pb = bar(input.progress, devices as u64);
    pb.set_message("connecting");

    let server0 = sample(input.server_pid);
    let client0 = procstat::sample(None);
    let ramp_start = Instant::now();
    let mut next = ramp_start;
    for (index, spec) in input.specs.into_iter().enumerate() {
        if !plan.ramp_gap.is_zero() {
            tokio::time::sleep_until(next).await;
            next += plan.ramp_gap;
        }
        let permit = gate.clone().acquire_owned().await.context("semaphore")?;
        let device = Device {
            index,
            id: spec.id,
            client_id: spec.client_id,
            password: spec.password,
            reauth: spec.reauth,
            source: source(index),
            consumer: false,
        };
        let run = conn::run(shared.clone(), device, permit);
        tasks.spawn(async move { (true, run.await) });
        if index % 64 == 0 {
            pb.set_position(done(counters) - base);
            pb.set_message(status(counters));
        }
    }
    while done(counters) - base < devices as u64 {
        pb.set_position(done(counters) - base);
        pb.set_message(status(counters));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp_time = ramp_start.elapsed();
    let server1 = sample(input.server_pid);
    let client1 = procstat::sample(None);
    pb.set_position(devices as u64);
    let connected = Counters::get(&counters.connected) - u64::from(consumer_ok && plan.e2e);
    let refused = Counters::get(&counters.refused);
    let failed = Counters::get(&counters.failed);

    // Publish.
    let (sent0, acked0) = (
        Counters::get(&counters.sent),
        Counters::get(&counters.acked),
    );
    let publish_start = Instant::now();
    let _ = phase_tx.send(Phase::Publish(publish_start));
    let pb2 = bar(
        input.progress && plan.publish_gap.is_some(),
        plan.duration.as_millis() as u64,
    );
    pb.finish_and_clear();
    if plan.publish_gap.is_some() && connected > 0 {
        while publish_start.elapsed() < plan.duration {
            pb2.set_position(publish_start.elapsed().as_millis() as u64);
            pb2.set_message(status(counters));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let publish_time = publish_start.elapsed();
    let (sent1, acked1) = (
        Counters::get(&counters.sent),
        Counters::get(&counters.acked),
    );
    let server2 = sample(input.server_pid);
    let client2 = procstat::sample(None);
    let _ = phase_tx.send(Phase::Hold);
    pb2.finish_and_clear();

    // Drain PUBACKs, then hold idle.
    let drain_start = Instant::now();
    while plan.qos1
        && Counters::get(&counters.acked) < Counters::get(&counters.sent)
        && drain_start.elapsed() < DRAIN
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !plan.hold.is_zero() {
        tokio::time::sleep(plan.hold).await;
    }
    let server3 = sample(input.server_pid);

    // Every live connection re-authenticates once: the server's CPU for it alone.
    let reauth = if plan.reauth && connected > 0 {
        let (s0, c0, start) = (
            sample(input.server_pid),
            procstat::sample(None),
            Instant::now(),
        );
        let _ = phase_tx.send(Phase::Reauth);
        // Until every connection still up has its answer (a refused one is dropped).
        while Counters::get(&counters.reauthed)
            < connected.saturating_sub(Counters::get(&counters.dropped))
            && start.elapsed() < DRAIN
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (s1, c1) = (sample(input.server_pid), procstat::sample(None));
        Some(Reauth {
            done: Counters::get(&counters.reauthed),
            phase: PhaseStats::new(start.elapsed(), s0, s1, c0, c1),
        })
    } else {
        None
    };

    let _ = phase_tx.send(Phase::Close);
    let mut connect = Histogram::default();
    let mut puback = Histogram::default();
    let mut puback_in_window = Histogram::default();
    let mut puback_outside_window = Histogram::default();
    let mut e2e = Histogram::default();
    let mut errors: Vec<String> = Vec::new();
    let close_deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(Some(joined)) = tokio::time::timeout_at(close_deadline, tasks.join_next()).await {
        let Ok((is_device, r)) = joined else { continue };
        if let (true, Some(d)) = (is_device, r.connect) {
            connect.record(d);
        }
        if let Some(h) = &r.puback {
            puback.merge(h);
        }
        if let Some(h) = &r.puback_in_window {
            puback_in_window.merge(h);
        }
        if let Some(h) = &r.puback_outside_window {
            puback_outside_window.merge(h);
        }
        if let Some(h) = &r.e2e {
            e2e.merge(h);
        }
        if let Some(e) = r.error
            && errors.len() < 5
            && !errors.contains(&e)
        {
            errors.push(e);
        }
    }
    tasks.abort_all();

    Ok(Measured {
        devices: devices as u64,
        connected,
        refused,
        failed,
        dropped: Counters::get(&counters.dropped),
        ramp: PhaseStats::new(ramp_time, server0, server1, client0, client1),
        publish: PhaseStats::new(publish_time, server1, server2, client1, client2),
        idle_rss: server3.map(|s| s.rss),
        rss_before: server0.map(|s| s.rss),
        sent: sent1 - sent0,
        acked: acked1 - acked0,
        sent_total: Counters::get(&counters.sent),
        acked_total: Counters::get(&counters.acked),
        backlogged: Counters::get(&counters.backlogged),
        received: Counters::get(&counters.received),
        bytes_out: Counters::get(&counters.bytes_out),
        bytes_in: Counters::get(&counters.bytes_in),
        connect,
        puback,
        puback_in_window,
        puback_outside_window,
        e2e,
        stored: None,
        reconnect: None,
        reauth,
        provision: None,
        pubsub: None,
        jetstream: None,
        errors,
    })
}
