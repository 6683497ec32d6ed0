//! Load for BENCHMARKS.md: `GetDevice` on a running `tether serve`, over REST and
//! over gRPC one after the other, each for the same time with the same concurrency;
//! prints calls/s and, with `--server-pid`, the server's CPU per call.
//!
//! ```sh
//! cargo run --release -p tether-cli --example admin_load -- \
//!   --rest http://127.0.0.1:8080 --grpc 127.0.0.1:8081 --ca tether-data/ca.pem \
//!   --token "$(cat tether-data/admin-token)" \
//!   --device projects/acme/locations/us-central1/registries/fleet/devices/dev-1 \
//!   --concurrency 32 --seconds 20 --server-pid "$(pidof tether)"
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use anyhow::{Context as _, Result, bail};
use googleapis_tonic_google_cloud_iot_v1::google::cloud::iot::v1::GetDeviceRequest;
use tether_server::api::grpc::DeviceManagerClient;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

#[derive(Debug)]
struct Args {
    rest: String,
    grpc: String,
    ca: String,
    token: String,
    device: String,
    concurrency: usize,
    seconds: u64,
    server_pid: Option<u32>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        rest: String::new(),
        grpc: String::new(),
        ca: String::new(),
        token: String::new(),
        device: String::new(),
        concurrency: 32,
        seconds: 20,
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rest" => a.rest = value,
            "--grpc" => a.grpc = value,
            "--ca" => a.ca = value,
            "--token" => a.token = value,
            "--device" => a.device = value,
            "--concurrency" => a.concurrency = value.parse()?,
            "--seconds" => a.seconds = value.parse()?,
            "--server-pid" => a.server_pid = Some(value.parse()?),
            other => bail!("unknown flag {other}"),
        }
    }
    if a.rest.is_empty() || a.grpc.is_empty() || a.device.is_empty() || a.token.is_empty() {
        bail!("--rest, --grpc, --ca, --token and --device are required");
    }
    Ok(a)
}

/// User + system CPU time of a process, in clock ticks (100 Hz on Linux).
fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

struct Outcome {
    calls: u64,
    errors: u64,
    elapsed: Duration,
    cpu_secs: Option<f64>,
}

fn report(what: &str, o: &Outcome) {
    let rate = o.calls as f64 / o.elapsed.as_secs_f64();
    print!(
        "{what:5}  {:>8} calls  {:>4} errors  {rate:>9.0} calls/s",
        o.calls, o.errors
    );
    if let Some(cpu) = o.cpu_secs {
        let us = cpu * 1e6 / o.calls.max(1) as f64;
        let per_core = o.calls as f64 / cpu.max(1e-9);
        print!("  server CPU {cpu:.1} s = {us:.1} µs/call = {per_core:.0} calls per core-second");
    }
    println!();
}

async fn run<F, Fut>(args: &Args, call: F) -> Outcome
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let (calls, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    // Warm up: connections open, caches filled.
    for _ in 0..50 {
        call().await;
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let cpu_before = cpu_ticks(args.server_pid);
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (call, calls, errors) = (Arc::clone(&call), Arc::clone(&calls), Arc::clone(&errors));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if call().await {
                    calls.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed();
    let cpu_secs = match (cpu_before, cpu_ticks(args.server_pid)) {
        (Some(a), Some(b)) => Some((b - a) as f64 / 100.0),
        _ => None,
    };
    Outcome {
        calls: calls.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        cpu_secs,
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!(
        "GetDevice, {} concurrent callers, {} s per transport",
        args.concurrency, args.seconds
    );

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let url = format!("{}/v1/{}", args.rest, args.device);
    let token = args.token.clone();
    let rest = run(&args, move || {
        let request = http.get(&url).bearer_auth(&token).send();
        async move {
            match request.await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    report("REST", &rest);

    let ca = std::fs::read(&args.ca).with_context(|| format!("reading {}", args.ca))?;
    let channel = Endpoint::from_shared(format!("https://{}", args.grpc))?
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost"),
        )?
        .connect()
        .await?;
    let client = DeviceManagerClient::new(channel);
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {}", args.token).parse()?;
    let device = args.device.clone();
    let grpc = run(&args, move || {
        let mut client = client.clone();
        let mut request = tonic::Request::new(GetDeviceRequest {
            name: device.clone(),
            field_mask: None,
        });
        request
            .metadata_mut()
            .insert("authorization", bearer.clone());
        async move { client.get_device(request).await.is_ok() }
    })
    .await;
    report("gRPC", &grpc);
    if let (Some(r), Some(g)) = (rest.cpu_secs, grpc.cpu_secs) {
        let per = |o: &Outcome, cpu: f64| cpu * 1e6 / o.calls.max(1) as f64;
        println!(
            "server CPU per call, gRPC / REST: {:.2}",
            per(&grpc, g) / per(&rest, r)
        );
    }
    Ok(())
}
