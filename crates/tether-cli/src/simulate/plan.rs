//! `tether simulate` arguments and the plan they resolve to: which server, how many
//! devices, how fast they connect (the ramp) and what each one publishes.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

use super::source_ips;

/// QoS of the simulated telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QosArg {
    /// At most once: no PUBACK, no latency figure.
    #[value(name = "0")]
    Zero,
    /// At least once: every message waits for its PUBACK.
    #[value(name = "1")]
    One,
}

/// Options of `tether simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Base URL of the Tether admin API (used to create the registry and devices).
    #[arg(long, env = "TETHER_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// File holding the admin token (used when TETHER_ADMIN_TOKEN is not set).
    #[arg(
        long,
        env = "TETHER_TOKEN_FILE",
        default_value = "./tether-data/admin-token"
    )]
    pub token_file: PathBuf,
    /// Tether's MQTT-over-TLS address.
    #[arg(long, default_value = "127.0.0.1:8883")]
    pub mqtt: SocketAddr,
    /// The CA certificate (PEM) that signed the server certificate.
    #[arg(long, default_value = "./tether-data/ca.pem")]
    pub ca: PathBuf,
    /// Server name for TLS (SNI and certificate check).
    #[arg(long, default_value = "localhost")]
    pub tls_name: String,
    /// Speak plain MQTT to any broker instead (`mqtt://HOST:PORT`, or `mqtts://HOST:PORT`
    /// with --ca); no devices are created, the workload is the same.
    #[arg(long)]
    pub target: Option<String>,
    /// Project id of the simulated registry.
    #[arg(long, default_value = "tether-sim")]
    pub project: String,
    /// Cloud region of the simulated registry.
    #[arg(long, default_value = "us-central1")]
    pub region: String,
    /// Registry id (created, or reused if it exists).
    #[arg(long, default_value = "sim")]
    pub registry: String,
    /// Device ids are PREFIX0, PREFIX1, …
    #[arg(long, default_value = "sim-")]
    pub device_prefix: String,
    /// Number of devices (one connection each).
    #[arg(long, short = 'n', default_value_t = 10)]
    pub devices: usize,
    /// New connections per second; 0 = as fast as --concurrency allows.
    #[arg(long, default_value_t = 0.0)]
    pub ramp: f64,
    /// Most connection attempts (TCP + TLS + CONNECT) in flight at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// How long every device publishes once all are connected, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Messages per second per device; 0 = connect and stay idle.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Telemetry QoS.
    #[arg(long, value_enum, default_value = "1")]
    pub qos: QosArg,
    /// Payload size in bytes (at least 8: the send time is in the first 8).
    #[arg(long, default_value_t = 200)]
    pub payload: usize,
    /// Most QoS 1 messages waiting for PUBACK per device; beyond it a send is skipped
    /// and counted as `backlogged`.
    #[arg(long, default_value_t = 100)]
    pub inflight: usize,
    /// Subscribe every device to its config and commands topics.
    #[arg(long)]
    pub subscribe: bool,
    /// (--target only) also run one consumer subscribed to every device's events and
    /// report end-to-end latency (publish → delivery to the consumer). Against Tether
    /// it is always read back from the stored telemetry (send → the gateway's publishTime).
    #[arg(long)]
    pub e2e: bool,
    /// (Tether only) also consume the telemetry as a backend would, through Tether's
    /// Pub/Sub API at this address (a fresh subscription, streaming pull, acks), and
    /// report send → delivery latency and deliveries/s.
    #[arg(long, value_name = "HOST:PORT")]
    pub pubsub: Option<String>,
    /// Streaming pulls the --pubsub consumer opens.
    #[arg(long, default_value_t = 1)]
    pub pubsub_streams: usize,
    /// (Tether with `serve --nats`) the reference consumer: read the same telemetry
    /// straight from the JetStream stream at this NATS URL.
    #[arg(long, value_name = "URL")]
    pub jetstream_consumer: Option<String>,
    /// Local addresses to connect from, e.g. 127.0.0.2-127.0.0.9 or 127.0.0.2,127.0.0.3
    /// (each address has its own ~28k ephemeral ports).
    #[arg(long)]
    pub source_ips: Option<String>,
    /// PID of a local server process whose CPU and RSS to report.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Register one key for every device (faster set-up); default: a key per device.
    #[arg(long)]
    pub shared_key: bool,
    /// Use the ES256 key in FILE for every device (PKCS#8 PEM; generated there, mode
    /// 0600, if the file does not exist), so that later runs can reuse the devices.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Create nothing: the registry and the devices exist already, with --key-file's
    /// key registered (from an earlier run with it). The run is then connects and
    /// messages only, with no admin API calls, e.g. for a connect flood.
    #[arg(long, requires = "key_file")]
    pub existing: bool,
    /// Sign tokens with keys that are NOT registered, to measure refusals.
    #[arg(long)]
    pub wrong_key: bool,
    /// Devices register themselves (zero-touch provisioning, docs/provisioning.md): a
    /// provisioning claim is created, every device connects with the claim's token and
    /// sends its own new key with a proof, then the usual run follows with those keys.
    /// The report adds provisions/s and the server's CPU per provision.
    #[arg(
        long,
        conflicts_with_all = ["existing", "wrong_key", "key_file", "shared_key", "target"]
    )]
    pub provision: bool,
    /// Split the PUBACK latency by when each message was sent: `FROM..TO`, seconds
    /// from the start of publishing. The report adds the latency of the messages
    /// sent in that window and of those sent outside it, e.g. to set a disturbance
    /// (a connect flood) against the same run's quiet seconds.
    #[arg(long, value_name = "FROM..TO", value_parser = parse_window)]
    pub latency_window: Option<(Duration, Duration)>,
    /// Keep the connections open (idle) this many seconds after publishing, e.g. to
    /// look at the server's memory.
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
    /// Resume TLS sessions (one shared client cache); default: a full handshake per
    /// connection, as distinct devices do.
    #[arg(long)]
    pub resume: bool,
    /// After the run, every device connects once more with the same token, as a device
    /// does after a dropped connection; the report adds that round's connect figures.
    /// With --resume it is a reconnect storm: TLS resumption and a token seen before.
    #[arg(long)]
    pub reconnect: bool,
    /// Connect with MQTT 5, the token as Authentication Data (method `jwt`), instead
    /// of MQTT 3.1.1 with the token as password.
    #[arg(long)]
    pub mqtt5: bool,
    /// (with --mqtt5) After the run, every device re-authenticates once on its live
    /// connection (AUTH 0x19 with its token); the report adds the server's CPU per
    /// re-authentication beside its CPU per connect.
    #[arg(long, requires = "mqtt5")]
    pub reauth: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Measure the crypto floor of one connect instead (in-memory TLS 1.3 ECDSA P-256
    /// handshake + one ES256 verify, ring) over this many iterations, and exit.
    #[arg(long)]
    pub floor: Option<u32>,
}

/// Where the connections go.
#[derive(Debug, Clone)]
pub enum Target {
    /// Tether: devices provisioned through the admin API, TLS, JWT passwords.
    Tether,
    /// Any MQTT broker (`--target`), plain or TLS.
    Mqtt,
}

/// The resolved plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where to connect.
    pub target: Target,
    /// Address connections go to.
    pub addr: SocketAddr,
    /// Whether to use TLS.
    pub tls: bool,
    /// Devices (= connections).
    pub devices: usize,
    /// Gap between connection starts (zero = no pacing).
    pub ramp_gap: Duration,
    /// Handshakes in flight at most.
    pub concurrency: usize,
    /// Publishing phase.
    pub duration: Duration,
    /// Gap between one device's messages (`None` = idle).
    pub publish_gap: Option<Duration>,
    /// QoS 1?
    pub qos1: bool,
    /// Payload bytes.
    pub payload: usize,
    /// In-flight window per device.
    pub inflight: usize,
    /// Subscribe to config and commands.
    pub subscribe: bool,
    /// Run an end-to-end consumer.
    pub e2e: bool,
    /// Source addresses (empty = let the OS choose).
    pub source_ips: Vec<IpAddr>,
    /// Idle time after publishing.
    pub hold: Duration,
    /// PUBACK latency split by send time (from, to after the publish start).
    pub latency_window: Option<(Duration, Duration)>,
    /// MQTT 5 with the token as Authentication Data.
    pub mqtt5: bool,
    /// Re-authenticate every connection once after the run.
    pub reauth: bool,
}

/// `FROM..TO` in seconds, `FROM < TO`.
fn parse_window(text: &str) -> Result<(Duration, Duration), String> {
    let usage = || format!("'{text}' is not a window: use FROM..TO in seconds, e.g. 9..21");
    let (from, to) = text.split_once("..").ok_or_else(usage)?;
    let secs = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .and_then(|v| Duration::try_from_secs_f64(v).ok())
            .ok_or_else(usage)
    };
    let (from, to) = (secs(from)?, secs(to)?);
    if from >= to {
        return Err(format!("'{text}': the window must end after it starts"));
    }
    Ok((from, to))
}

fn seconds(what: &str, value: f64) -> anyhow::Result<Duration> {
    if !value.is_finite() || value < 0.0 {
        bail!("{what} must be a number of seconds ≥ 0 (got {value})");
    }
    Ok(Duration::from_secs_f64(value))
}

/// Parses `mqtt://HOST:PORT` / `mqtts://HOST:PORT` (HOST an IP address or localhost).
pub fn parse_target(url: &str) -> anyhow::Result<(SocketAddr, bool)> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("mqtt://") {
        (false, rest)
    } else {
        bail!(
            "--target must look like mqtt://127.0.0.1:1883 or mqtts://127.0.0.1:8883 (got {url})"
        );
    };
    let rest = rest.trim_end_matches('/');
    let rest = rest
        .strip_prefix("localhost:")
        .map(|port| format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| rest.to_string());
    let addr = rest
        .parse()
        .with_context(|| format!("--target {url}: expected IP:PORT after the scheme"))?;
    Ok((addr, tls))
}

impl SimulateArgs {
    /// Checks the options and resolves them into a plan.
    pub fn plan(&self) -> anyhow::Result<Plan> {
        if self.devices == 0 {
            bail!("--devices must be at least 1");
        }
        if self.payload < 8 {
            bail!("--payload must be at least 8 bytes (the send time travels in the first 8)");
        }
        if self.concurrency == 0 || self.inflight == 0 {
            bail!("--concurrency and --inflight must be at least 1");
        }
        let (target, addr, tls) = match &self.target {
            Some(url) => {
                let (addr, tls) = parse_target(url)?;
                (Target::Mqtt, addr, tls)
            }
            None => (Target::Tether, self.mqtt, true),
        };
        if self.e2e && matches!(target, Target::Tether) {
            bail!(
                "--e2e needs --target (Tether's telemetry goes to its sinks, not to MQTT subscribers)"
            );
        }
        let ramp = if self.ramp.is_finite() && self.ramp > 0.0 {
            Duration::from_secs_f64(1.0 / self.ramp)
        } else if self.ramp == 0.0 {
            Duration::ZERO
        } else {
            bail!("--ramp must be ≥ 0 connections per second");
        };
        let publish_gap = if self.rate.is_finite() && self.rate > 0.0 {
            Some(Duration::from_secs_f64(1.0 / self.rate))
        } else if self.rate == 0.0 {
            None
        } else {
            bail!("--rate must be ≥ 0 messages per second");
        };
        let source_ips = match &self.source_ips {
            Some(text) => source_ips::parse(text)?,
            None => Vec::new(),
        };
        Ok(Plan {
            target,
            addr,
            tls,
            devices: self.devices,
            ramp_gap: ramp,
            concurrency: self.concurrency,
            duration: seconds("--duration", self.duration)?,
            publish_gap,
            qos1: self.qos == QosArg::One,
            payload: self.payload,
            inflight: self.inflight,
            subscribe: self.subscribe,
            e2e: self.e2e,
            source_ips,
            hold: seconds("--hold", self.hold)?,
            latency_window: self.latency_window,
            mqtt5: self.mqtt5,
            reauth: self.reauth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_windows_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_window("9..21"),
            Ok((Duration::from_secs(9), Duration::from_secs(21)))
        );
        assert_eq!(
            parse_window("0.5..2"),
            Ok((Duration::from_millis(500), Duration::from_secs(2)))
        );
        assert_eq!(
            parse_window("9-21"),
            Err("'9-21' is not a window: use FROM..TO in seconds, e.g. 9..21".to_owned())
        );
        assert_eq!(
            parse_window("-1..2"),
            Err("'-1..2' is not a window: use FROM..TO in seconds, e.g. 9..21".to_owned())
        );
        assert_eq!(
            parse_window("5..5"),
            Err("'5..5': the window must end after it starts".to_owned())
        );
    }

    #[test]
    fn targets_parse() {
        let (addr, tls) = parse_target("mqtt://127.0.0.1:1883").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(addr.port(), 1883);
        assert!(!tls);
        let (addr, tls) = parse_target("mqtts://localhost:8883/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(addr.to_string(), "127.0.0.1:8883");
        assert!(tls);
        assert!(parse_target("http://127.0.0.1:1").is_err());
        assert!(parse_target("mqtt://nohost").is_err());
    }
}
