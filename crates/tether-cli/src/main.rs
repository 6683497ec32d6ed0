//! `tether`: the IoT Core-compatible device gateway and its device-side tools.

mod admin;
mod ca;
mod clock;
mod doctor;
mod events;
mod jwt;
mod keys;
mod pubsub;
mod serve;
mod simulate;
mod storage;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tether: a self-hosted gateway that speaks Google Cloud IoT Core's device protocol,
/// and the tools that get a device's side of it right.
#[derive(Debug, Parser)]
#[command(name = "tether", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mint, decode, verify and diagnose device JWTs.
    Jwt(jwt::JwtArgs),
    /// Generate, inspect, convert and export keys; make CSRs and certificates.
    Keys(keys::KeysArgs),
    /// A small certificate authority for device and server certificates.
    Ca(ca::CaArgs),
    /// Run the gateway: MQTT over TLS on :8883, admin API on 127.0.0.1:8080, data in
    /// ./tether-data.
    #[command(after_help = serve::EXIT_CODES)]
    Serve(Box<tether_server::serve::ServeOptions>),
    /// Manage device registries on a running server (as `gcloud iot registries`).
    Registries(admin::registries::RegistriesArgs),
    /// Manage devices on a running server (as `gcloud iot devices`).
    Devices(admin::devices::DevicesArgs),
    /// Bind devices to gateways on a running server.
    Gateways(admin::gateways::GatewaysArgs),
    /// Provisioning claims on a running server: devices register the key they
    /// generated, with proof that they hold it (docs/provisioning.md).
    Provisioning(admin::provisioning::ProvisioningArgs),
    /// Check a device's connection step by step (DNS, TCP, TLS, token, MQTT) and say
    /// what to fix.
    ///
    /// Exit code 0 when every step passed, 1 when one failed, 2 on usage errors.
    Doctor(doctor::DoctorArgs),
    /// Read the telemetry stored in the gateway's embedded log (`events tail --follow`).
    Events(events::EventsArgs),
    /// Topics, subscriptions and messages of the Pub/Sub-compatible API (backends use
    /// Google's client libraries with PUBSUB_EMULATOR_HOST).
    Pubsub(pubsub::PubsubArgs),
    /// Simulate a fleet of devices against Tether or any MQTT broker (`--target`) and
    /// report connects/s, refusals, messages/s, latency and the server's CPU and memory.
    Simulate(simulate::SimulateArgs),
    /// Move the registry database between backends (SQLite → PostgreSQL).
    Storage(storage::StorageArgs),
}

/// Exit codes shared by every subcommand.
pub mod exit {
    /// Success: the thing checked is valid.
    pub const OK: u8 = 0;
    /// The input was examined and is invalid (findings printed).
    pub const INVALID: u8 = 1;
    /// Usage error: bad arguments, unreadable files.
    pub const USAGE: u8 = 2;
}

/// The error and its causes, each once (wrapped errors often repeat their source).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let result = match cli.command {
        Command::Jwt(args) => jwt::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Ca(args) => ca::run(args),
        Command::Serve(options) => serve::run(*options),
        Command::Registries(args) => admin::registries::run(args),
        Command::Devices(args) => admin::devices::run(args),
        Command::Gateways(args) => admin::gateways::run(args),
        Command::Provisioning(args) => admin::provisioning::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Events(args) => events::run(args),
        Command::Pubsub(args) => pubsub::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Storage(args) => storage::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(exit::USAGE)
        }
    }
}
