//! `tether doctor`: connect as the device would, step by step, and say which step is
//! wrong, why, and how to fix it.
//!
//! ```text
//!  dns ─▶ tcp ─▶ tls (chain, trust, host name, SNI) ─▶ token (jwt diagnose, clock)
//!      ─▶ mqtt (CONNACK) ─▶ config (SUBACK, first config) ─▶ event (PUBACK)
//! ```
//! The first ✗ stops the run (later steps show –) and gets a cause and a fix. With
//! `--admin-url` the server's `Date` and the device's stored `lastErrorStatus` are
//! added.

mod admin;
mod dns;
mod mqtt;
mod plain;
mod report;
mod tcp;
mod tls;
mod token;

use std::io::Read as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use tether_device::DevicePath;
use tether_jwt::{Claims, PublicKey, max_token_len, mint};
use tether_mqtt::ConnectReturnCode;

use crate::exit;
use report::{Report, Step};

/// Arguments of `tether doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The server's host name, as the device uses it (also the TLS name).
    #[arg(long)]
    host: String,
    /// The MQTT port.
    #[arg(long, default_value_t = 8883)]
    port: u16,
    /// The root CA file (PEM) the device trusts.
    #[arg(long, value_name = "FILE", required_unless_present = "no_tls")]
    ca: Option<std::path::PathBuf>,
    /// Plain TCP, no TLS (a development broker only; IoT Core needs TLS).
    #[arg(long)]
    no_tls: bool,
    /// Connect with MQTT 5 (the JWT as Authentication Data, method `jwt`) instead of
    /// IoT Core's 3.1.1: a server that speaks it, as Tether does, says why it refuses
    /// in a Reason String, which the report shows.
    #[arg(long)]
    mqtt5: bool,
    /// Project id.
    #[arg(long, required_unless_present = "client_id")]
    project: Option<String>,
    /// Cloud region.
    #[arg(long, default_value = "us-central1")]
    region: String,
    /// Registry id.
    #[arg(long, required_unless_present = "client_id")]
    registry: Option<String>,
    /// Device id.
    #[arg(long, required_unless_present = "client_id")]
    device: Option<String>,
    /// The whole client id instead of --project/--region/--registry/--device.
    #[arg(long, conflicts_with_all = ["project", "registry", "device"])]
    client_id: Option<String>,
    /// The device's private key (file or `pkcs11:` URI): the doctor mints a token.
    #[arg(
        long,
        value_name = "FILE|pkcs11:URI",
        required_unless_present = "token"
    )]
    key: Option<String>,
    /// The token the device sends (or `-` for stdin), instead of minting one.
    #[arg(long, value_name = "JWT")]
    token: Option<String>,
    /// Lifetime of a minted token, in seconds.
    #[arg(long, default_value_t = 1200)]
    lifetime: u64,
    /// Admin API of a `tether serve` (server time, the device's lastErrorStatus).
    #[arg(long, value_name = "URL")]
    admin_url: Option<String>,
    /// Admin API token.
    #[arg(long, env = "TETHER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Limit for each network step, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// How long to wait for the first config, in seconds.
    #[arg(long, default_value_t = 5)]
    wait_config: u64,
    /// Subfolder of the test event.
    #[arg(long, default_value = "tether-doctor")]
    event_subfolder: String,
    /// Run zero-touch provisioning instead (docs/provisioning.md): --key is the
    /// provisioning claim's key, and the device registers --new-key's public key with
    /// a proof signed by it. The last step shows the server's reply or its reason.
    #[arg(long, requires = "new_key")]
    provision: bool,
    /// (--provision) The device's new key (file or `pkcs11:` URI) to register.
    #[arg(long, value_name = "FILE|pkcs11:URI", requires = "provision")]
    new_key: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What was read from the arguments before any network step.
struct Prepared {
    path: DevicePath,
    /// (--provision) The request: the new key and its proof.
    provision: Option<Vec<u8>>,
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    token: String,
    minted: bool,
    key: Option<PublicKey>,
}

fn prepare(a: &DoctorArgs, local_now: i64) -> anyhow::Result<Prepared> {
    let path = match &a.client_id {
        Some(id) => DevicePath::parse(id).map_err(|e| anyhow::anyhow!("--client-id: {e}"))?,
        None => DevicePath::new(
            a.project.clone().unwrap_or_default(),
            a.region.clone(),
            a.registry.clone().unwrap_or_default(),
            a.device.clone().unwrap_or_default(),
        ),
    };
    let roots = match (&a.ca, a.no_tls) {
        (Some(ca), false) => {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            tether_device::tls::certs_from_pem(&pem).with_context(|| ca.display().to_string())?
        }
        _ => Vec::new(),
    };
    let handle = match &a.key {
        Some(spec) => Some(tether_keys::KeyHandle::open(spec).with_context(|| spec.clone())?),
        None => None,
    };
    let key = handle.as_ref().map(|h| h.public_key().clone());
    let (token, minted) = match (&a.token, &handle) {
        (Some(t), _) if t == "-" => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            (s.trim().to_string(), false)
        }
        (Some(t), _) => (t.clone(), false),
        (None, Some(h)) => {
            let signer = h.signer()?;
            let iat = u64::try_from(local_now).unwrap_or(0);
            let claims = Claims {
                aud: &path.project,
                iat,
                exp: iat + a.lifetime,
            };
            let mut buf = vec![0u8; max_token_len(signer.algorithm(), path.project.len())];
            let n = mint(&*signer, &claims, &mut buf)
                .map_err(|e| anyhow::anyhow!("minting the token: {e}"))?;
            buf.truncate(n);
            (String::from_utf8(buf)?, true)
        }
        (None, None) => bail!("give --key or --token"),
    };
    let provision = match &a.new_key {
        Some(spec) => {
            let new = tether_keys::KeyHandle::open(spec).with_context(|| spec.clone())?;
            let signer = new.signer()?;
            let iat = u64::try_from(local_now).unwrap_or(0);
            Some(
                tether_device::provision::request(&path, &*signer, new.public_key(), iat)
                    .map_err(|e| anyhow::anyhow!("--new-key {spec}: {e}"))?,
            )
        }
        None => None,
    };
    Ok(Prepared {
        path,
        provision,
        roots,
        token,
        minted,
        key,
    })
}

/// Runs `tether doctor`.
pub fn run(a: DoctorArgs) -> anyhow::Result<u8> {
    let local_now = crate::clock::unix_secs();
    let prepared = prepare(&a, local_now)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(diagnose(&a, &prepared, local_now));
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(if report.first_failure().is_some() {
        exit::INVALID
    } else {
        exit::OK
    })
}

const STEPS: [&str; 7] = ["dns", "tcp", "tls", "token", "mqtt", "config", "event"];
/// The steps of `--provision`.
const PROVISION_STEPS: [&str; 6] = ["dns", "tcp", "tls", "token", "mqtt", "provision"];
/// How long to wait for the server to store why it refused this attempt (Tether writes
/// errors within 100 ms; older servers batched them every 5 s).
const SERVER_ERROR_WAIT: Duration = Duration::from_secs(6);

fn skip_rest(report: &mut Report, provisioning: bool) {
    let done = report.steps.len();
    let steps: &[&str] = if provisioning {
        &PROVISION_STEPS
    } else {
        &STEPS
    };
    for name in steps.iter().skip(done) {
        report
            .steps
            .push(Step::skip(name, "skipped after an earlier failure"));
    }
}

async fn diagnose(a: &DoctorArgs, p: &Prepared, local_now: i64) -> Report {
    let limit = Duration::from_secs(a.timeout.max(1));
    let mut report = Report {
        provisioning: p.provision.is_some(),
        client_id: p.path.client_id(),
        target: format!("{}:{}", a.host, a.port),
        ..Report::default()
    };
    let admin = a.admin_url.as_ref().map(|url| admin::Admin {
        url: url.clone(),
        token: a.admin_token.clone(),
    });
    let mut server_now = None;
    if let Some(admin) = &admin {
        match admin.server_time(limit).await {
            Ok(Some(t)) => server_now = Some(t),
            Ok(None) => report
                .notes
                .push("admin: the server sent no Date header; clock compared locally".into()),
            Err(e) => report
                .notes
                .push(format!("admin: cannot reach {}: {e}", admin.url)),
        }
    }

    let (step, addrs) = dns::check(&a.host, a.port, limit).await;
    if !push(&mut report, step) {
        return finish(report, admin.as_ref(), &p.path, limit).await;
    }
    let (step, tcp) = tcp::check(&addrs, limit).await;
    let ok = push(&mut report, step);
    let Some(tcp) = tcp.filter(|_| ok) else {
        return finish(report, admin.as_ref(), &p.path, limit).await;
    };
    let io: Box<dyn mqtt::Io> = if a.no_tls {
        report.steps.push(Step::skip(
            "tls",
            "plain TCP (--no-tls); IoT Core devices always use TLS",
        ));
        Box::new(tcp)
    } else {
        let (step, stream) = tls::check(tcp, &a.host, &p.roots, local_now, limit).await;
        let ok = push(&mut report, step);
        match stream.filter(|_| ok) {
            Some(s) => Box::new(s),
            None => return finish(report, admin.as_ref(), &p.path, limit).await,
        }
    };

    let step = token::check(&token::Input {
        token: &p.token,
        minted: p.minted,
        project: &p.path.project,
        local_now,
        server_now,
        key: p.key.as_ref(),
    });
    if !push(&mut report, step) {
        return finish(report, admin.as_ref(), &p.path, limit).await;
    }

    let key_hint = p.key.as_ref().map(|k| k.fingerprint().to_string());
    let client = mqtt::Client::new(io, limit);
    let mut refused = false;
    let login = mqtt::Login {
        client_id: &p.path.client_id(),
        token: &p.token,
        v5: a.mqtt5,
    };
    let (mut step, client) = mqtt::connect(client, &login, limit, |code| {
        refused = true;
        if p.provision.is_some() {
            claim_refusal(code, &p.path)
        } else {
            refusal(code, &p.path, key_hint.as_deref())
        }
    })
    .await;
    // Only a CONNACK refusal is recorded by the server; a timeout or a reset is not.
    if refused && let Some(admin) = &admin {
        // The server's Date has whole seconds, so an error stored in the second the
        // admin API was first asked counts as this attempt's.
        let since = server_now.unwrap_or(local_now) - 1;
        let wait = SERVER_ERROR_WAIT.min(limit);
        match admin
            .error_since(&p.path.client_id(), since, limit, wait)
            .await
        {
            Ok((device, true)) => {
                if let Some(message) = admin::last_error(&device) {
                    step.cause = Some(format!(
                        "{}; the server recorded: {message}",
                        step.cause.unwrap_or_default()
                    ));
                }
            }
            Ok((_, false)) => report.notes.push(format!(
                "server: recorded no error for this attempt within {} s (the stored \
                 lastErrorStatus, if any, is from an earlier one)",
                wait.as_secs()
            )),
            Err(e) => report
                .notes
                .push(format!("server: cannot read the device: {e}")),
        }
    }
    let ok = push(&mut report, step);
    let Some(mut client) = client.filter(|_| ok) else {
        return finish(report, admin.as_ref(), &p.path, limit).await;
    };
    if let Some(request) = &p.provision {
        let step = mqtt::provision(&mut client, &p.path.device, request.clone(), limit).await;
        if push(&mut report, step) {
            report.notes.push(format!(
                "next: the device connects with its own key: tether doctor --key NEW_KEY \
                 --client-id {}",
                p.path.client_id()
            ));
        }
        client.disconnect().await;
        return finish(report, admin.as_ref(), &p.path, limit).await;
    }
    let step = mqtt::config(
        &mut client,
        &p.path.device,
        Duration::from_secs(a.wait_config),
    )
    .await;
    if push(&mut report, step) {
        let step = mqtt::event(&mut client, &p.path.device, &a.event_subfolder, limit).await;
        push(&mut report, step);
    }
    client.disconnect().await;
    finish(report, admin.as_ref(), &p.path, limit).await
}

/// Adds the step; false when it failed (stop).
fn push(report: &mut Report, step: Step) -> bool {
    let ok = step.status != report::Status::Fail;
    report.steps.push(step);
    ok
}

async fn finish(
    mut report: Report,
    admin: Option<&admin::Admin>,
    path: &DevicePath,
    limit: Duration,
) -> Report {
    let provisioning = report.provisioning;
    skip_rest(&mut report, provisioning);
    if let Some(admin) = admin {
        match admin.device(&path.client_id(), limit).await {
            Ok(device) => {
                let at = admin::last_error_time(&device)
                    .map(|t| format!(" (at {})", tether_jwt::time::Utc(t)))
                    .unwrap_or_default();
                let line = match admin::last_error(&device) {
                    Some(m) => format!("server: lastErrorStatus{at}: {m}"),
                    None => "server: no lastErrorStatus stored for the device".into(),
                };
                report.notes.push(line);
                report.server = Some(device);
            }
            Err(e) => report
                .notes
                .push(format!("server: cannot read the device: {e}")),
        }
    }
    report
}

/// The cause and fix for a refused claim CONNECT (`--provision`).
fn claim_refusal(code: ConnectReturnCode, path: &DevicePath) -> (String, String) {
    let (meaning, _) = tether_device::connack_meaning(code);
    match code {
        ConnectReturnCode::IdentifierRejected => (
            format!(
                "CONNACK 2 ({meaning}): device '{}' does not exist and no provisioning claim \
                 of registry '{}' signed the token (or the registry has none)",
                path.device, path.registry
            ),
            "--key must be the claim's private key: `tether provisioning claims list \
             --registry R` shows each claim's fingerprint; check the project, region and \
             registry"
                .into(),
        ),
        ConnectReturnCode::NotAuthorized => (
            format!(
                "CONNACK 5 ({meaning}): a claim's key signed the token, but the token breaks \
                 IoT Core's rules for '{}' (aud must be the project id, iat/exp within the \
                 server's clock and skew, at most 24 h apart)",
                path.project
            ),
            "see the token step's findings; the server's log has the exact reason".into(),
        ),
        other => refusal(other, path, None),
    }
}

/// The cause and fix for a CONNACK refusal, given that DNS, TLS and the token passed.
fn refusal(code: ConnectReturnCode, path: &DevicePath, key: Option<&str>) -> (String, String) {
    let (meaning, _) = tether_device::connack_meaning(code);
    match code {
        ConnectReturnCode::IdentifierRejected => (
            format!(
                "CONNACK 2 ({meaning}): the server does not know the device '{}' in registry \
                 '{}' of project '{}' ({})",
                path.device, path.registry, path.project, path.region
            ),
            "create the device on the server, or correct --project/--region/--registry/--device \
             (ids are case-sensitive)"
                .into(),
        ),
        ConnectReturnCode::NotAuthorized => {
            let key = key.map_or(String::new(), |k| {
                format!(" (the key given has fingerprint {k})")
            });
            (
                format!(
                    "CONNACK 5 ({meaning}): the token passed every check the doctor can make \
                     (format, aud, iat/exp, signature with the given key), so the server most \
                     likely has another public key registered for the device{key}, or the \
                     device is blocked"
                ),
                "register the public key of --key for the device (`tether keys convert --to \
                 spki KEY` prints it; add it to the device's credentials); --admin-url shows \
                 the server's reason"
                    .into(),
            )
        }
        ConnectReturnCode::BadUserNameOrPassword => (
            format!("CONNACK 4 ({meaning}): the server could not read the password as a JWT"),
            "send the JWT as the MQTT password, with a user name such as 'unused'".into(),
        ),
        ConnectReturnCode::UnacceptableProtocolVersion => (
            format!("CONNACK 1 ({meaning})"),
            "use MQTT 3.1.1 (protocol level 4)".into(),
        ),
        ConnectReturnCode::ServerUnavailable | ConnectReturnCode::Accepted => (
            format!("CONNACK {} ({meaning})", code.as_u8()),
            "retry later; check the server's logs".into(),
        ),
    }
}
