//! `tether simulate`: a fleet of simulated devices against Tether (provisioned through
//! the admin API, TLS, ES256 JWTs) or any MQTT broker (`--target`), with a report of
//! connects/s, refusals, messages/s, latency, bytes, and the server's CPU and memory.
//!
//! ```text
//!  plan (args, ramp) ─▶ provision (registry, devices, keys, tokens) ─▶ load (ramp ─▶ publish ─▶ hold ─▶ close)
//!                                                                    │  conn: one task per device
//!  report (table | --json) ◀── stats (counters, histograms) + procstat (server CPU/RSS)
//! ```

mod conn;
mod floor;
mod load;
mod plan;
mod procstat;
mod provision;
mod readback;
mod report;
mod self_provision;
mod source_ips;
mod stats;
mod subscriber;

pub use plan::SimulateArgs;

use anyhow::{Context as _, anyhow};
use rustls_pki_types::ServerName;

use crate::admin::{Conn, Format};
use crate::exit;
use load::{RunInput, Spec};
use plan::Target;

/// Raises the open-file limit to the hard limit (one descriptor per connection).
fn raise_fd_limit(want: u64) -> u64 {
    match rlimit::increase_nofile_limit(want) {
        Ok(n) => n,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(0),
    }
}

/// Runs `tether simulate`.
pub fn run(args: SimulateArgs) -> anyhow::Result<u8> {
    if let Some(n) = args.floor {
        return floor::run(n, args.json);
    }
    let plan = args.plan()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let limit = raise_fd_limit(u64::MAX);
    let need = plan.devices as u64 + 64;
    if limit < need {
        eprintln!(
            "warning: the open-file limit is {limit}; {} connections need about {need} (raise the hard limit with `ulimit -Hn` or prlimit)",
            plan.devices
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async_run(&args, &plan))
}

/// `--provision`: a claim, then every device registers its own key through it.
async fn self_provision_phase(
    args: &SimulateArgs,
    plan: &plan::Plan,
    conn: &Conn,
    fleet: &provision::Fleet,
    keys: &[tether_keys::PrivateKey],
    progress: bool,
) -> anyhow::Result<self_provision::ProvisionRun> {
    let claim_key = self_provision::create_claim(conn, &args.registry, &args.device_prefix).await?;
    let claim_token = provision::tokens(std::slice::from_ref(&claim_key), &fleet.project)?
        .pop()
        .context("no claim token")?;
    let requests = self_provision::requests(&fleet.ids, keys, &fleet.project)?;
    let name = ServerName::try_from(args.tls_name.clone())
        .map_err(|e| anyhow!("--tls-name {}: {e}", args.tls_name))?;
    let target = self_provision::Target {
        addr: plan.addr,
        tls: (load::tls_config(&args.ca, false)?, name),
        concurrency: plan.concurrency,
        server_pid: args.server_pid,
    };
    Ok(self_provision::run(
        target,
        &fleet.registry_path,
        &fleet.ids,
        requests,
        claim_token,
        progress,
    )
    .await)
}

async fn async_run(args: &SimulateArgs, plan: &plan::Plan) -> anyhow::Result<u8> {
    let progress = !args.quiet && !args.json;
    let mut readback: Option<(crate::admin::client::Client, String, u64)> = None;
    let mut consumers: Vec<(bool, subscriber::Consumer)> = Vec::new();
    let mut provisioned = None;
    let (specs, target_name) = match plan.target {
        Target::Tether => {
            let conn = Conn {
                server: args.server.clone(),
                token_file: args.token_file.clone(),
                project: Some(args.project.clone()),
                region: args.region.clone(),
                format: Format::Table,
            };
            if progress {
                eprintln!(
                    "{} {} devices in {}",
                    if args.existing { "using" } else { "creating" },
                    plan.devices,
                    conn.registry(&args.registry)?
                );
            }
            let keys = match &args.key_file {
                Some(path) => vec![provision::key_file(path)?; plan.devices],
                None => provision::keys(plan.devices, args.shared_key)?,
            };
            let fleet = if args.existing {
                provision::existing(&conn, &args.registry, &args.device_prefix, plan.devices)?
            } else if args.provision {
                let fleet = provision::registry_only(
                    &conn,
                    &args.registry,
                    &args.device_prefix,
                    plan.devices,
                )
                .await?;
                provisioned =
                    Some(self_provision_phase(args, plan, &conn, &fleet, &keys, progress).await?);
                fleet
            } else {
                provision::provision(&conn, &args.registry, &args.device_prefix, &keys).await?
            };
            // --wrong-key: tokens from other keys than the registered ones.
            let signing = if args.wrong_key {
                provision::keys(plan.devices, args.shared_key)?
            } else {
                keys
            };
            let tokens = provision::tokens(&signing, &fleet.project)?;
            // --reauth sends fresh tokens, as a device refreshing its own does: a token
            // the server verified before would skip its signature check.
            let mut fresh = if args.reauth {
                provision::tokens(&signing, &fleet.project)?
            } else {
                Vec::new()
            }
            .into_iter();
            // Where the telemetry lands, and where its topic ends before this run.
            let topic = provision::telemetry_topic(&fleet.project, &args.registry);
            let client = crate::admin::client::Client::new(&conn)?;
            if let Some(addr) = &args.pubsub {
                let c =
                    subscriber::pubsub(addr, &fleet.project, &topic, args.pubsub_streams).await?;
                consumers.push((true, c));
            }
            if let Some(url) = &args.jetstream_consumer {
                consumers.push((false, subscriber::jetstream(url, &topic).await?));
            }
            match readback::next_offset(&client, &topic).await {
                Ok(from) => readback = Some((client, topic, from)),
                Err(e) => eprintln!("warning: no end-to-end latency: {e:#}"),
            }
            let specs: Vec<Spec> = fleet
                .ids
                .into_iter()
                .zip(tokens)
                .map(|(id, password)| Spec {
                    client_id: format!("{}/devices/{id}", fleet.registry_path),
                    id,
                    password,
                    reauth: fresh.next().unwrap_or_default(),
                })
                .collect();
            (specs, format!("tether {}", plan.addr))
        }
        Target::Mqtt => {
            // Same CONNECT as for Tether (device path, a real JWT), no registration.
            let keys = provision::keys(1, true)?;
            let token = provision::tokens(&keys, &args.project)?
                .pop()
                .context("no token")?;
            let base = format!(
                "projects/{}/locations/{}/registries/{}",
                args.project, args.region, args.registry
            );
            let specs = (0..plan.devices)
                .map(|i| {
                    let id = format!("{}{i}", args.device_prefix);
                    Spec {
                        client_id: format!("{base}/devices/{id}"),
                        id,
                        password: token.clone(),
                        reauth: Vec::new(),
                    }
                })
                .collect();
            (specs, args.target.clone().unwrap_or_default())
        }
    };
    let tls = if plan.tls {
        let cfg = load::tls_config(&args.ca, args.resume)?;
        let name = ServerName::try_from(args.tls_name.clone())
            .map_err(|e| anyhow!("--tls-name {}: {e}", args.tls_name))?;
        Some((cfg, name))
    } else {
        None
    };
    let again = args.reconnect.then(|| (specs.clone(), tls.clone()));
    let provision = provisioned.map(Box::new);
    let mut measured = load::run(
        plan,
        RunInput {
            tls,
            specs,
            server_pid: args.server_pid,
            progress,
        },
    )
    .await?;
    measured.provision = provision;
    if let Some((specs, tls)) = again {
        // The same devices, tokens and TLS client (its session cache with --resume):
        // connects only.
        let round = plan::Plan {
            publish_gap: None,
            duration: std::time::Duration::ZERO,
            hold: std::time::Duration::ZERO,
            e2e: false,
            ..plan.clone()
        };
        let input = RunInput {
            tls,
            specs,
            server_pid: args.server_pid,
            progress,
        };
        measured.reconnect = Some(Box::new(load::run(&round, input).await?));
    }
    let expected = if plan.qos1 {
        measured.acked_total
    } else {
        measured.sent_total
    };
    for (is_pubsub, consumer) in consumers {
        let got = consumer
            .finish(expected, std::time::Duration::from_secs(10))
            .await;
        if is_pubsub {
            measured.pubsub = Some(got);
        } else {
            measured.jetstream = Some(got);
        }
    }
    if let Some((client, topic, from)) = readback
        && measured.sent_total > 0
    {
        match readback::latencies(&client, &topic, from).await {
            Ok((hist, records)) => {
                measured.e2e = hist;
                measured.stored = Some(records);
            }
            Err(e) => eprintln!("warning: no end-to-end latency: {e:#}"),
        }
    }
    let text = if args.json {
        let doc = measured.to_json(&target_name, plan.qos1, plan.payload);
        format!("{}\n", serde_json::to_string_pretty(&doc)?)
    } else {
        report::table(&measured, &target_name, plan.qos1)
    };
    // A closed stdout (e.g. `| head`) is not an error of the run.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    Ok(if measured.connected > 0 {
        exit::OK
    } else {
        exit::INVALID
    })
}
