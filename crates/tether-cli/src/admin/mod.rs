//! Admin commands (`tether registries|devices|gateways|provisioning …`), modelled on
//! `gcloud iot`: each one is a call to a running server's Device Manager API.
//!
//! ```text
//!  clap args ─▶ request (path, query, JSON body) ─▶ Client (bearer token) ─▶ tether serve
//!  exit 0 + table/JSON  ◀─ response        exit 1 ◀─ API refusal (Google's message)
//!                                          exit 2 ◀─ usage or connection problem
//! ```

pub mod client;
pub mod devices;
pub mod gateways;
pub mod output;
pub mod provisioning;
pub mod registries;

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use self::client::{CliError, Client};
use crate::exit;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns (lists) or `key: value` lines (one resource).
    Table,
    /// The API's JSON, pretty-printed.
    Json,
}

/// Where the server is and which project/region to address.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// Base URL of `tether serve`'s admin API.
    #[arg(
        long,
        env = "TETHER_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// File holding the admin token (used when TETHER_ADMIN_TOKEN is not set).
    #[arg(
        long,
        env = "TETHER_TOKEN_FILE",
        default_value = "./tether-data/admin-token",
        global = true
    )]
    pub token_file: PathBuf,
    /// Project id (the `projects/P` of resource names).
    #[arg(long, env = "TETHER_PROJECT", global = true)]
    pub project: Option<String>,
    /// Cloud region (the `locations/L` of resource names).
    #[arg(
        long,
        env = "TETHER_REGION",
        default_value = "us-central1",
        global = true
    )]
    pub region: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub format: Format,
}

impl Conn {
    /// `projects/P/locations/L`.
    pub fn location(&self) -> Result<String, CliError> {
        let project = self
            .project
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                CliError::Usage("no project: pass --project PROJECT or set TETHER_PROJECT".into())
            })?;
        Ok(format!("projects/{project}/locations/{}", self.region))
    }

    /// `projects/P/locations/L/registries/R`.
    pub fn registry(&self, registry: &str) -> Result<String, CliError> {
        Ok(format!("{}/registries/{registry}", self.location()?))
    }

    /// `…/registries/R/devices/D`.
    pub fn device(&self, registry: &str, device: &str) -> Result<String, CliError> {
        Ok(format!("{}/devices/{device}", self.registry(registry)?))
    }
}

/// Runs an admin command future on a runtime and turns its outcome into an exit code.
pub fn run<F>(conn: &Conn, body: impl FnOnce(Client) -> F) -> anyhow::Result<u8>
where
    F: std::future::Future<Output = Result<(), CliError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = match Client::new(conn) {
        Ok(client) => runtime.block_on(body(client)),
        Err(e) => Err(e),
    };
    Ok(match outcome {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                CliError::Api { .. } => exit::INVALID,
                CliError::Usage(_) | CliError::Connect(_) => exit::USAGE,
            }
        }
    })
}
