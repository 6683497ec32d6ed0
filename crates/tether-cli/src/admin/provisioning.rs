//! `tether provisioning claims create|list|describe|revoke`: the claims that let
//! devices register the key they generated (docs/provisioning.md).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tether_jwt::Algorithm;

use super::client::{CliError, Client};
use super::registries::{key_values, log_level};
use super::{Conn, output};

/// Provisioning claims: let devices register themselves.
#[derive(Debug, Args)]
pub struct ProvisioningArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: ProvisioningCommand,
}

#[derive(Debug, Subcommand)]
enum ProvisioningCommand {
    /// Manage a registry's provisioning claims.
    #[command(subcommand)]
    Claims(ClaimsCommand),
}

#[derive(Debug, Subcommand)]
enum ClaimsCommand {
    /// Create a claim: the key a batch of firmware signs its first token with.
    Create(CreateArgs),
    /// List a registry's claims, revoked ones included.
    List {
        /// Registry id.
        #[arg(long)]
        registry: String,
    },
    /// Show a claim with its count and state.
    Describe {
        /// Claim id.
        claim: String,
        /// Registry id.
        #[arg(long)]
        registry: String,
    },
    /// Revoke a claim: devices can no longer provision through it (devices it made
    /// stay).
    Revoke {
        /// Claim id.
        claim: String,
        /// Registry id.
        #[arg(long)]
        registry: String,
    },
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// Claim id.
    claim: String,
    /// Registry id.
    #[arg(long)]
    registry: String,
    /// The claim's public key (PEM key or certificate), as `tether keys gen` writes it.
    #[arg(long, value_name = "FILE", conflicts_with = "generate_key")]
    public_key_path: Option<PathBuf>,
    /// Generate the claim's ES256 key pair: `CLAIM.key.pem` (0600, for the firmware
    /// build) and `CLAIM.pub.pem` beside it, or at `--key-out` + `.key.pem`/`.pub.pem`.
    #[arg(long)]
    generate_key: bool,
    /// Where `--generate-key` writes (a path prefix).
    #[arg(long, value_name = "PREFIX", requires = "generate_key")]
    key_out: Option<PathBuf>,
    /// Overwrite existing key files.
    #[arg(long)]
    force: bool,
    /// A regular expression every device id must match (the whole id), e.g.
    /// 'sensor-[0-9a-f]{8}'.
    #[arg(long)]
    device_id_pattern: String,
    /// Provision at most this many devices.
    #[arg(long)]
    max_devices: Option<u64>,
    /// The claim stops working at this time (RFC 3339).
    #[arg(long)]
    expiration_time: Option<String>,
    /// Metadata for each device, `KEY=VALUE[,KEY=VALUE…]`.
    #[arg(long)]
    metadata: Option<String>,
    /// Log level of each device: none, error, info, debug.
    #[arg(long)]
    log_level: Option<String>,
    /// When a device rotates to a new key, its older keys stay valid this many seconds
    /// (default: a day).
    #[arg(long, value_name = "SECS")]
    key_rotation_grace: Option<u64>,
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "/id"),
    ("STATE", "/state"),
    ("PATTERN", "/deviceIdPattern"),
    ("PROVISIONED", "/devicesProvisioned"),
    ("MAX", "/maxDevices"),
    ("EXPIRES", "/expirationTime"),
    ("FINGERPRINT", "/credential/fingerprint"),
];

/// Runs `tether provisioning …`.
pub fn run(args: ProvisioningArgs) -> anyhow::Result<u8> {
    let conn = args.conn.clone();
    let ProvisioningCommand::Claims(command) = args.command;
    super::run(&args.conn, |client| async move {
        exec(&client, &conn, command).await
    })
}

fn claims_path(conn: &Conn, registry: &str) -> Result<String, CliError> {
    Ok(format!("{}/provisioningClaims", conn.registry(registry)?))
}

async fn exec(client: &Client, conn: &Conn, command: ClaimsCommand) -> Result<(), CliError> {
    match command {
        ClaimsCommand::Create(a) => {
            let body = create_body(&a)?;
            let created = client
                .call(
                    reqwest::Method::POST,
                    &claims_path(conn, &a.registry)?,
                    &[("claimId", a.claim.clone())],
                    Some(body),
                )
                .await?;
            eprintln!("Created provisioning claim [{}].", a.claim);
            output::resource(conn.format, &created);
        }
        ClaimsCommand::List { registry } => {
            let found = client.get(&claims_path(conn, &registry)?, &[]).await?;
            let items = found["provisioningClaims"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            output::list(conn.format, &items, COLUMNS);
        }
        ClaimsCommand::Describe { claim, registry } => {
            let path = format!("{}/{claim}", claims_path(conn, &registry)?);
            output::resource(conn.format, &client.get(&path, &[]).await?);
        }
        ClaimsCommand::Revoke { claim, registry } => {
            let path = format!("{}/{claim}", claims_path(conn, &registry)?);
            let revoked = client.delete(&path).await?;
            eprintln!("Revoked provisioning claim [{claim}].");
            output::resource(conn.format, &revoked);
        }
    }
    Ok(())
}

/// The claim's body; with `--generate-key` the key pair is written first.
fn create_body(a: &CreateArgs) -> Result<Value, CliError> {
    let (format, key) = match (&a.public_key_path, a.generate_key) {
        (Some(path), _) => read_public_key(path)?,
        (None, true) => generate(a)?,
        (None, false) => {
            return Err(CliError::Usage(
                "give the claim's key: --public-key-path FILE, or --generate-key".into(),
            ));
        }
    };
    let mut body = json!({
        "credential": {"publicKey": {"format": format, "key": key}},
        "deviceIdPattern": a.device_id_pattern,
    });
    if let Some(max) = a.max_devices {
        body["maxDevices"] = json!(max.to_string());
    }
    if let Some(at) = &a.expiration_time {
        body["expirationTime"] = json!(at);
    }
    if let Some(secs) = a.key_rotation_grace {
        body["keyRotationGracePeriod"] = json!(format!("{secs}s"));
    }
    let mut template = serde_json::Map::new();
    if let Some(text) = &a.metadata {
        let pairs: serde_json::Map<String, Value> = key_values("--metadata", text)?
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        template.insert("metadata".into(), Value::Object(pairs));
    }
    if let Some(level) = &a.log_level {
        template.insert("logLevel".into(), json!(log_level(level)?));
    }
    if !template.is_empty() {
        body["deviceTemplate"] = Value::Object(template);
    }
    Ok(body)
}

/// The API format and PEM text of a key file.
fn read_public_key(path: &PathBuf) -> Result<(&'static str, String), CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("--public-key-path {}: {e}", path.display())))?;
    let parsed = tether_keys::parse(text.as_bytes())
        .map_err(|e| CliError::Usage(format!("--public-key-path {}: {e}", path.display())))?;
    let Some(key) = parsed.public_key() else {
        return Err(CliError::Usage(format!(
            "--public-key-path {}: holds {}, not a public key",
            path.display(),
            parsed.describe()
        )));
    };
    if parsed.is_private() {
        return Err(CliError::Usage(format!(
            "--public-key-path {} is a private key; give its public key (the .pub.pem \
             beside it)",
            path.display()
        )));
    }
    let cert = parsed.certificate().is_some();
    let format = match (key.algorithm(), cert) {
        (Algorithm::Es256, false) => "ES256_PEM",
        (Algorithm::Es256, true) => "ES256_X509_PEM",
        (Algorithm::Rs256, false) => "RSA_PEM",
        (Algorithm::Rs256, true) => "RSA_X509_PEM",
    };
    Ok((format, text))
}

/// Generates an ES256 key pair for the claim and writes it (private key 0600).
fn generate(a: &CreateArgs) -> Result<(&'static str, String), CliError> {
    let prefix = a.key_out.clone().unwrap_or_else(|| PathBuf::from(&a.claim));
    let key = tether_keys::generate::generate(tether_keys::generate::KeySpec::Es256)
        .map_err(|e| CliError::Usage(format!("cannot generate a key: {e}")))?;
    let private = tether_keys::convert::pem_text("PRIVATE KEY", &key.pkcs8_der());
    let public = tether_keys::convert::pem_text("PUBLIC KEY", key.public_key().spki_der());
    let with = |suffix: &str| {
        let mut s = prefix.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let (key_path, pub_path) = (with(".key.pem"), with(".pub.pem"));
    crate::keys::write_file(&key_path, private.as_bytes(), a.force, true)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    crate::keys::write_file(&pub_path, public.as_bytes(), a.force, false)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    eprintln!(
        "claim key: {} (0600; build it into the firmware), public key: {}",
        key_path.display(),
        pub_path.display()
    );
    Ok(("ES256_PEM", public))
}
