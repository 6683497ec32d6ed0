//! `--floor`: the crypto floor of one device connect, measured with the server's own
//! TLS settings and crypto library: a full TLS 1.3 handshake (Tether's embedded ECDSA
//! P-256 server certificate, rustls + ring, in memory, no sockets) plus one raw ES256
//! signature check with ring. Server-side CPU per connect is what a gateway cannot go
//! below; `tether simulate` compares it with the server CPU per connect it measured.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use rustls::{ClientConnection, ServerConnection};
use rustls_pki_types::ServerName;
use serde_json::json;
use tether_server::tls::{TlsSource, setup};
use tokio::time::Instant;

use super::{load, provision};
use crate::clock::unix_micros;

/// Server-side and client-side time of one full handshake.
fn handshake(
    client_cfg: &Arc<rustls::ClientConfig>,
    server_cfg: &Arc<rustls::ServerConfig>,
) -> anyhow::Result<(Duration, Duration)> {
    let name = ServerName::try_from("localhost").map_err(|e| anyhow!("{e}"))?;
    let (mut server_t, mut client_t) = (Duration::ZERO, Duration::ZERO);
    let t = Instant::now();
    let mut client = ClientConnection::new(client_cfg.clone(), name)?;
    client_t += t.elapsed();
    let t = Instant::now();
    let mut server = ServerConnection::new(server_cfg.clone())?;
    server_t += t.elapsed();
    let mut buf = Vec::with_capacity(8192);
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok((server_t, client_t));
        }
        let t = Instant::now();
        buf.clear();
        client.write_tls(&mut buf)?;
        client_t += t.elapsed();
        let t = Instant::now();
        if !buf.is_empty() {
            server.read_tls(&mut buf.as_slice())?;
            server.process_new_packets()?;
        }
        buf.clear();
        server.write_tls(&mut buf)?;
        server_t += t.elapsed();
        let t = Instant::now();
        if !buf.is_empty() {
            client.read_tls(&mut buf.as_slice())?;
            client.process_new_packets()?;
        }
        client_t += t.elapsed();
    }
    bail!("the in-memory handshake did not finish")
}

/// Runs `iterations` handshakes + verifies and prints the per-connect figures.
pub fn run(iterations: u32, json_out: bool) -> anyhow::Result<u8> {
    let iterations = iterations.max(1);
    let dir = std::env::temp_dir().join(format!("tether-floor-{}", std::process::id()));
    let now = i64::try_from(unix_micros() / 1_000_000).unwrap_or(0);
    let tls = setup(
        &TlsSource::Embedded {
            data_dir: dir.clone(),
            host_names: vec!["localhost".into()],
        },
        now,
    )
    .map_err(|e| anyhow!("cannot make the test certificate: {e}"))?;
    let ca = tls.ca_path.clone().context("no CA path")?;
    let client_cfg = load::tls_config(&ca, false)?;
    let _ = std::fs::remove_dir_all(&dir);

    // One device key and token; verification is the raw ring check over the signing input.
    let keys = provision::keys(1, true)?;
    let token = provision::tokens(&keys, "floor")?
        .pop()
        .context("no token")?;
    let token = String::from_utf8(token).context("token")?;
    let (input, sig) = token.rsplit_once('.').context("token shape")?;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .context("signature")?;
    let spki = keys[0].public_key().spki_der();
    let point = spki
        .get(spki.len().saturating_sub(65)..)
        .context("SPKI")?
        .to_vec();
    let public =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point);

    let mut server = Duration::ZERO;
    let mut client = Duration::ZERO;
    let mut verify = Duration::ZERO;
    // Warm up once.
    handshake(&client_cfg, &tls.config)?;
    for _ in 0..iterations {
        let (s, c) = handshake(&client_cfg, &tls.config)?;
        server += s;
        client += c;
        let t = Instant::now();
        public
            .verify(input.as_bytes(), &sig)
            .map_err(|_| anyhow!("the ES256 signature did not verify"))?;
        verify += t.elapsed();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(iterations);
    let (s, c, v) = (per(server), per(client), per(verify));
    if json_out {
        let doc = json!({
            "iterations": iterations,
            "server_handshake_us": s,
            "client_handshake_us": c,
            "es256_verify_us": v,
            "server_floor_per_connect_us": s + v,
            "floor_connects_per_sec_per_core": 1e6 / (s + v),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("crypto floor of one connect ({iterations} iterations, one thread, in memory)");
        println!("  TLS 1.3 handshake, server side   {s:.1} µs");
        println!("  TLS 1.3 handshake, client side   {c:.1} µs");
        println!("  ES256 verify (ring)              {v:.1} µs");
        println!(
            "  server floor per connect         {:.1} µs  (≈ {:.0} connects/s per core)",
            s + v,
            1e6 / (s + v)
        );
    }
    Ok(crate::exit::OK)
}
