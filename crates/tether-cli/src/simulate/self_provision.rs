//! `simulate --provision`: the fleet registers itself. A provisioning claim is created
//! through the admin API; every device then connects with the claim's token, sends
//! its own new key (the raw `x‖y` an engine returns) with a proof signed by that key,
//! and waits for the reply, as firmware does on first boot (docs/provisioning.md).
//!
//! ```text
//!  claim (admin API) ─▶ requests (raw key + proof per device, before the clock starts)
//!      ─▶ N × [TCP ─▶ TLS ─▶ CONNECT(claim token) ─▶ SUBSCRIBE ─▶ PUBLISH ─▶ reply]
//!      ─▶ provisions/s, latency, server CPU / provision
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use base64::Engine as _;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tether_keys::PrivateKey;
use tether_keys::convert::pem_text;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::conn::{self, Device, Phase};
use super::procstat;
use super::report::PhaseStats;
use super::stats::{Counters, Histogram};
use crate::admin::Conn;
use crate::admin::client::Client;
use crate::clock::unix_micros;

/// What the provisioning phase measured.
#[derive(Debug)]
pub struct ProvisionRun {
    /// Devices that asked.
    pub devices: u64,
    /// Replies with a device.
    pub provisioned: u64,
    /// Replies with an error, or a refused CONNECT.
    pub refused: u64,
    /// No reply (connection, TLS or protocol failure).
    pub failed: u64,
    /// Wall time and CPU of the phase.
    pub phase: PhaseStats,
    /// Connect → reply, per device.
    pub latency: Histogram,
    /// The first few distinct errors.
    pub errors: Vec<String>,
}

impl ProvisionRun {
    /// Provisions per second of wall time.
    pub fn per_sec(&self) -> f64 {
        let secs = self.phase.wall.as_secs_f64();
        if secs > 0.0 {
            self.provisioned as f64 / secs
        } else {
            0.0
        }
    }
}

/// Where and how the devices connect.
pub struct Target {
    /// Tether's MQTT address.
    pub addr: SocketAddr,
    /// TLS client and server name.
    pub tls: (Arc<rustls::ClientConfig>, ServerName<'static>),
    /// Exchanges in flight at once.
    pub concurrency: usize,
    /// The server's PID, for its CPU time.
    pub server_pid: Option<u32>,
}

/// Creates a claim on `registry` for ids `PREFIX<n>`; returns its key.
pub async fn create_claim(conn: &Conn, registry: &str, prefix: &str) -> anyhow::Result<PrivateKey> {
    let key = tether_keys::generate::generate(tether_keys::generate::KeySpec::Es256)
        .map_err(|e| anyhow!("cannot generate the claim key: {e}"))?;
    let claim_id = format!("sim-{}", unix_micros());
    let body = json!({
        "credential": {"publicKey": {
            "format": "ES256_PEM",
            "key": pem_text("PUBLIC KEY", key.public_key().spki_der()),
        }},
        "deviceIdPattern": format!("{}[0-9]+", regex_escape(prefix)),
    });
    let client = Client::new(conn)?;
    client
        .call(
            reqwest::Method::POST,
            &format!("{}/provisioningClaims", conn.registry(registry)?),
            &[("claimId", claim_id.clone())],
            Some(body),
        )
        .await
        .with_context(|| format!("cannot create the provisioning claim {claim_id}"))?;
    Ok(key)
}

/// `text` with the regular expression metacharacters escaped.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One request per device: its raw public key and a proof for its id.
pub fn requests(
    ids: &[String],
    keys: &[PrivateKey],
    project: &str,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let iat = unix_micros() / 1_000_000;
    let claims = tether_jwt::Claims {
        aud: project,
        iat,
        exp: iat + 3600,
    };
    let mut buf = vec![0u8; 2048];
    ids.iter()
        .zip(keys)
        .map(|(id, key)| {
            let signer = key.signer().map_err(|e| anyhow!("key: {e}"))?;
            let n = tether_jwt::mint_proof(&signer, &claims, id, &mut buf)
                .map_err(|e| anyhow!("cannot mint a proof: {e}"))?;
            let proof = String::from_utf8_lossy(&buf[..n]).into_owned();
            let spki = key.public_key().spki_der();
            let raw = base64::engine::general_purpose::STANDARD.encode(&spki[spki.len() - 64..]);
            Ok(
                json!({"publicKey": {"format": "ES256_RAW", "key": raw}, "proof": proof})
                    .to_string()
                    .into_bytes(),
            )
        })
        .collect()
}

/// Runs every device's provisioning exchange.
pub async fn run(
    target: Target,
    registry_path: &str,
    ids: &[String],
    requests: Vec<Vec<u8>>,
    claim_token: Vec<u8>,
    progress: bool,
) -> ProvisionRun {
    let (_phase_tx, phase) = watch::channel(Phase::Ramp);
    let shared = Arc::new(conn::Shared {
        addr: target.addr,
        tls: Some((tokio_rustls::TlsConnector::from(target.tls.0), target.tls.1)),
        publish_gap: None,
        qos1: true,
        payload: 0,
        inflight: 4,
        subscribe: false,
        devices: ids.len(),
        counters: Counters::default(),
        phase,
        epoch: Instant::now(),
        // Provisioning speaks IoT Core's 3.1.1, as a factory-fresh device does.
        mqtt5: false,
        latency_window: None,
    });
    if progress {
        eprintln!("{} devices provision themselves through a claim", ids.len());
    }
    let gate = Arc::new(Semaphore::new(target.concurrency.max(1)));
    let s0 = procstat::sample(target.server_pid);
    let c0 = procstat::sample(None);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (index, (id, request)) in ids.iter().zip(requests).enumerate() {
        let device = Device {
            index,
            id: id.clone(),
            client_id: format!("{registry_path}/devices/{id}"),
            password: claim_token.clone(),
            reauth: Vec::new(),
            source: None,
            consumer: false,
        };
        let (shared, gate) = (Arc::clone(&shared), Arc::clone(&gate));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let at = Instant::now();
            let reply = tokio::time::timeout(
                Duration::from_secs(60),
                conn::provision(&shared, &device, request),
            )
            .await
            .unwrap_or_else(|_| Err("no reply within 60 s".into()));
            (at.elapsed(), reply)
        });
    }
    let mut run = ProvisionRun {
        devices: ids.len() as u64,
        provisioned: 0,
        refused: 0,
        failed: 0,
        phase: PhaseStats::new(Duration::ZERO, None, None, None, None),
        latency: Histogram::default(),
        errors: Vec::new(),
    };
    let note = |run: &mut ProvisionRun, e: String| {
        if run.errors.len() < 5 && !run.errors.contains(&e) {
            run.errors.push(e);
        }
    };
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((took, Ok(reply))) if reply.get("device").is_some() => {
                run.provisioned += 1;
                run.latency.record(took);
            }
            Ok((_, Ok(reply))) => {
                run.refused += 1;
                note(
                    &mut run,
                    format!("provision refused: {}", error_text(&reply)),
                );
            }
            Ok((_, Err(e))) if e.starts_with("CONNACK") => {
                run.refused += 1;
                note(&mut run, format!("provisioning CONNECT refused: {e}"));
            }
            Ok((_, Err(e))) => {
                run.failed += 1;
                note(&mut run, format!("provisioning failed: {e}"));
            }
            Err(e) => {
                run.failed += 1;
                note(&mut run, format!("provisioning task: {e}"));
            }
        }
    }
    run.phase = PhaseStats::new(
        started.elapsed(),
        s0,
        procstat::sample(target.server_pid),
        c0,
        procstat::sample(None),
    );
    run
}

fn error_text(reply: &Value) -> String {
    reply["error"]["message"]
        .as_str()
        .map_or_else(|| reply.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_matched_literally() {
        assert_eq!(regex_escape("sim-"), "sim-");
        assert_eq!(regex_escape("a.b+"), "a\\.b\\+");
    }
}
