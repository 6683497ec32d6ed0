//! `tether devices …` (as `gcloud iot devices`): create, list, describe, update,
//! delete, block, unblock, and the `credentials`, `configs`, `states` and `commands`
//! groups.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tether_keys::register::{PublicKeyFormat, registration};

use super::client::{CliError, Client};
use super::registries::{key_values, log_level};
use super::{Conn, output};

/// Manage devices.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: DevicesCommand,
}

/// The device and its registry.
#[derive(Debug, Args)]
struct Target {
    /// Device id (or numId).
    #[arg(long)]
    device: String,
    /// Registry id.
    #[arg(long)]
    registry: String,
}

#[derive(Debug, Subcommand)]
enum DevicesCommand {
    /// Create a device.
    Create {
        /// Device id.
        device: String,
        /// Registry id.
        #[arg(long)]
        registry: String,
        /// A credential: `path=FILE[,type=es256|rs256|es256-x509-pem|rsa-x509-pem][,expiration-time=RFC3339]`
        /// (repeatable, up to 3; type is detected when left out).
        #[arg(long = "public-key", value_name = "path=FILE,type=TYPE")]
        public_keys: Vec<String>,
        /// Metadata, `KEY=VALUE[,KEY=VALUE…]`.
        #[arg(long)]
        metadata: Option<String>,
        /// Metadata values read from files, `KEY=FILE[,…]`.
        #[arg(long)]
        metadata_from_file: Option<String>,
        /// Create it blocked (refusing connections).
        #[arg(long)]
        blocked: bool,
        /// Log level: none, error, info, debug.
        #[arg(long)]
        log_level: Option<String>,
        /// gateway or non-gateway.
        #[arg(long)]
        device_type: Option<String>,
        /// For gateways: association-only, device-auth-token-only or
        /// association-and-device-auth-token.
        #[arg(long)]
        auth_method: Option<String>,
    },
    /// List a registry's devices.
    List {
        /// Registry id.
        #[arg(long)]
        registry: String,
        /// Only these ids (comma-separated).
        #[arg(long)]
        device_ids: Option<String>,
        /// Only these numIds (comma-separated).
        #[arg(long)]
        device_num_ids: Option<String>,
        /// Only gateway or non-gateway devices.
        #[arg(long)]
        device_type: Option<String>,
        /// Only devices bound to this gateway.
        #[arg(long)]
        associations_gateway_id: Option<String>,
        /// Only gateways this device is bound to.
        #[arg(long)]
        associations_device_id: Option<String>,
        /// Stop after this many (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
    /// Show a device.
    Describe {
        /// Device id or numId.
        device: String,
        /// Registry id.
        #[arg(long)]
        registry: String,
    },
    /// Change the settings given as flags.
    Update {
        /// Device id or numId.
        device: String,
        /// Registry id.
        #[arg(long)]
        registry: String,
        /// Refuse connections.
        #[arg(long, overrides_with = "no_blocked")]
        blocked: bool,
        /// Accept connections again.
        #[arg(long)]
        no_blocked: bool,
        /// Replace all metadata with `KEY=VALUE[,…]`.
        #[arg(long)]
        metadata: Option<String>,
        /// Log level: none, error, info, debug.
        #[arg(long)]
        log_level: Option<String>,
        /// Gateway auth method (see `create`).
        #[arg(long)]
        auth_method: Option<String>,
    },
    /// Delete a device.
    Delete {
        /// Device id or numId.
        device: String,
        /// Registry id.
        #[arg(long)]
        registry: String,
    },
    /// Refuse the device's connections.
    Block {
        /// Device id or numId.
        device: String,
        /// Registry id.
        #[arg(long)]
        registry: String,
    },
    /// Accept the device's connections again.
    Unblock {
        /// Device id or numId.
        device: String,
        /// Registry id.
        #[arg(long)]
        registry: String,
    },
    /// A device's public keys.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// A device's configuration versions.
    #[command(subcommand)]
    Configs(ConfigsCommand),
    /// States the device reported.
    #[command(subcommand)]
    States(StatesCommand),
    /// Commands to a connected device.
    #[command(subcommand)]
    Commands(CommandsCommand),
}

#[derive(Debug, Subcommand)]
enum CredentialsCommand {
    /// Add a public key (a device has at most 3).
    #[command(visible_alias = "create")]
    Add {
        #[command(flatten)]
        target: Target,
        /// The key or certificate file.
        #[arg(long)]
        path: PathBuf,
        /// es256, rs256, es256-x509-pem or rsa-x509-pem (detected when left out).
        #[arg(long = "type")]
        key_type: Option<String>,
        /// When the key stops being accepted (RFC 3339).
        #[arg(long)]
        expiration_time: Option<String>,
    },
    /// Remove the credential at INDEX (as `credentials list` numbers them).
    #[command(visible_alias = "delete")]
    Remove {
        /// Index from `credentials list`.
        index: usize,
        #[command(flatten)]
        target: Target,
    },
    /// List the device's credentials.
    List {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigsCommand {
    /// Store a new config version (pushed to the device if it is connected).
    Update {
        #[command(flatten)]
        target: Target,
        /// Read the config from this file.
        #[arg(long, conflicts_with = "config_data")]
        config_file: Option<PathBuf>,
        /// The config as text.
        #[arg(long)]
        config_data: Option<String>,
        /// Only if the current version is this one (0 = unconditionally).
        #[arg(long, default_value_t = 0)]
        version_to_update: i64,
    },
    /// List the last config versions, newest first.
    List {
        #[command(flatten)]
        target: Target,
        /// At most this many (0 = all kept).
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
enum StatesCommand {
    /// List the last states, newest first.
    List {
        #[command(flatten)]
        target: Target,
        /// At most this many (0 = all kept).
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
enum CommandsCommand {
    /// Send a command to a connected device.
    Send {
        #[command(flatten)]
        target: Target,
        /// Read the command from this file.
        #[arg(long, conflicts_with = "command_data")]
        command_file: Option<PathBuf>,
        /// The command as text.
        #[arg(long)]
        command_data: Option<String>,
        /// Subfolder: the device receives it on /devices/{id}/commands/SUBFOLDER.
        #[arg(long)]
        subfolder: Option<String>,
    },
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::Usage(format!("{flag} {}: {e}", path.display())))
}

fn payload(
    file_flag: &str,
    file: Option<PathBuf>,
    data: Option<String>,
    required: bool,
) -> Result<Vec<u8>, CliError> {
    match (file, data) {
        (Some(path), _) => read_file(file_flag, &path),
        (None, Some(text)) => Ok(text.into_bytes()),
        (None, None) if required => Err(CliError::Usage(format!(
            "give the payload with {file_flag} FILE or {}",
            file_flag.replace("-file", "-data")
        ))),
        (None, None) => Ok(Vec::new()),
    }
}

/// Reads a key or certificate file into a `DeviceCredential`, detecting the format and
/// checking it against `type` when given.
fn credential(
    path: &Path,
    key_type: Option<&str>,
    expiration: Option<&str>,
) -> Result<Value, CliError> {
    let shown = path.display().to_string();
    let parsed = tether_keys::load(path)
        .map_err(|e| CliError::Usage(format!("--public-key {shown}: {e}")))?;
    let reg = registration(&parsed, crate::clock::unix_secs())
        .map_err(|e| CliError::Usage(format!("--public-key {shown}: {}", e.message_for(&shown))))?;
    if let Some(t) = key_type {
        let wanted = match t.to_ascii_lowercase().as_str() {
            "es256" | "es256-pem" => PublicKeyFormat::Es256Pem,
            "rs256" | "rsa-pem" => PublicKeyFormat::RsaPem,
            "es256-x509-pem" | "es256-x509" => PublicKeyFormat::Es256X509Pem,
            "rsa-x509-pem" | "rs256-x509-pem" => PublicKeyFormat::RsaX509Pem,
            other => {
                return Err(CliError::Usage(format!(
                    "type={other}: use es256, rs256, es256-x509-pem or rsa-x509-pem (or leave it out)"
                )));
            }
        };
        if wanted != reg.format {
            return Err(CliError::Usage(format!(
                "{shown} is {} and registers as {}, not as {wanted}: fix type= or leave it out",
                parsed.describe(),
                reg.format
            )));
        }
    }
    if reg.converted {
        eprintln!(
            "note: {shown} ({}) is sent as PEM {}",
            parsed.describe(),
            reg.format
        );
    }
    let mut c = json!({"publicKey": {"format": reg.format.as_str(), "key": reg.key}});
    if let Some(t) = expiration {
        c["expirationTime"] = json!(t);
    }
    Ok(c)
}

/// Parses `--public-key path=FILE,type=es256,expiration-time=T` (or just `FILE`).
fn public_key_flag(text: &str) -> Result<Value, CliError> {
    let mut path = None;
    let mut key_type = None;
    let mut expiration = None;
    // A bare file name is the common case: `--public-key dev-1.pub.pem`.
    let text = if text.contains('=') {
        text.to_owned()
    } else {
        format!("path={text}")
    };
    for (k, v) in key_values("--public-key", &text)? {
        match k.as_str() {
            "path" => path = Some(PathBuf::from(v)),
            "type" => key_type = Some(v),
            "expiration-time" => expiration = Some(v),
            other => {
                return Err(CliError::Usage(format!(
                    "--public-key: unknown key '{other}' (use path=, type=, expiration-time=)"
                )));
            }
        }
    }
    let path =
        path.ok_or_else(|| CliError::Usage(format!("--public-key '{text}' needs path=FILE")))?;
    credential(&path, key_type.as_deref(), expiration.as_deref())
}

fn device_type(text: &str) -> Result<&'static str, CliError> {
    match text.to_ascii_lowercase().as_str() {
        "gateway" => Ok("GATEWAY"),
        "non-gateway" | "non_gateway" => Ok("NON_GATEWAY"),
        other => Err(CliError::Usage(format!(
            "--device-type '{other}': use gateway or non-gateway"
        ))),
    }
}

fn auth_method(text: &str) -> Result<&'static str, CliError> {
    match text.to_ascii_lowercase().replace('_', "-").as_str() {
        "association-only" => Ok("ASSOCIATION_ONLY"),
        "device-auth-token-only" => Ok("DEVICE_AUTH_TOKEN_ONLY"),
        "association-and-device-auth-token" => Ok("ASSOCIATION_AND_DEVICE_AUTH_TOKEN"),
        other => Err(CliError::Usage(format!(
            "--auth-method '{other}': use association-only, device-auth-token-only or association-and-device-auth-token"
        ))),
    }
}

fn metadata(inline: Option<&str>, from_files: Option<&str>) -> Result<Option<Value>, CliError> {
    let mut map = serde_json::Map::new();
    if let Some(text) = inline {
        for (k, v) in key_values("--metadata", text)? {
            map.insert(k, json!(v));
        }
    }
    if let Some(text) = from_files {
        for (k, file) in key_values("--metadata-from-file", text)? {
            let bytes = read_file("--metadata-from-file", Path::new(&file))?;
            let value = String::from_utf8(bytes).map_err(|_| {
                CliError::Usage(format!("--metadata-from-file {file}: not UTF-8 text"))
            })?;
            map.insert(k, json!(value));
        }
    }
    Ok((inline.is_some() || from_files.is_some()).then_some(Value::Object(map)))
}

const LIST_COLUMNS: &[(&str, &str)] = &[
    ("ID", "/id"),
    ("NUM_ID", "/numId"),
    ("BLOCKED", "/blocked"),
    ("GATEWAY_TYPE", "/gatewayConfig/gatewayType"),
];

/// Runs `tether devices …`.
pub fn run(args: DevicesArgs) -> anyhow::Result<u8> {
    let conn = args.conn.clone();
    super::run(&args.conn, |client| async move {
        exec(&client, &conn, args.command).await
    })
}

async fn set_blocked(
    client: &Client,
    conn: &Conn,
    registry: &str,
    device: &str,
    blocked: bool,
) -> Result<(), CliError> {
    let updated = client
        .patch(
            &conn.device(registry, device)?,
            &["blocked"],
            json!({"blocked": blocked}),
        )
        .await?;
    eprintln!(
        "{} device [{device}].",
        if blocked { "Blocked" } else { "Unblocked" }
    );
    output::resource(conn.format, &updated);
    Ok(())
}

async fn exec(client: &Client, conn: &Conn, command: DevicesCommand) -> Result<(), CliError> {
    match command {
        DevicesCommand::Create {
            device,
            registry,
            public_keys,
            metadata: md,
            metadata_from_file,
            blocked,
            log_level: level,
            device_type: dtype,
            auth_method: auth,
        } => {
            let mut body = json!({"id": device});
            let creds = public_keys
                .iter()
                .map(|t| public_key_flag(t))
                .collect::<Result<Vec<_>, _>>()?;
            if !creds.is_empty() {
                body["credentials"] = Value::Array(creds);
            }
            if let Some(m) = metadata(md.as_deref(), metadata_from_file.as_deref())? {
                body["metadata"] = m;
            }
            if blocked {
                body["blocked"] = json!(true);
            }
            if let Some(l) = level {
                body["logLevel"] = json!(log_level(&l)?);
            }
            let mut gateway = serde_json::Map::new();
            if let Some(t) = dtype {
                gateway.insert("gatewayType".into(), json!(device_type(&t)?));
            }
            if let Some(a) = auth {
                gateway.insert("gatewayAuthMethod".into(), json!(auth_method(&a)?));
            }
            if !gateway.is_empty() {
                body["gatewayConfig"] = Value::Object(gateway);
            }
            let created = client
                .post(&format!("{}/devices", conn.registry(&registry)?), body)
                .await?;
            eprintln!("Created device [{device}].");
            output::resource(conn.format, &created);
        }
        DevicesCommand::List {
            registry,
            device_ids,
            device_num_ids,
            device_type: dtype,
            associations_gateway_id,
            associations_device_id,
            limit,
        } => {
            let mut query: Vec<(&str, String)> =
                vec![("fieldMask", "blocked,gateway_config.gateway_type".into())];
            for id in device_ids.iter().flat_map(|s| s.split(',')) {
                query.push(("deviceIds", id.trim().to_string()));
            }
            for id in device_num_ids.iter().flat_map(|s| s.split(',')) {
                query.push(("deviceNumIds", id.trim().to_string()));
            }
            if let Some(t) = dtype {
                query.push(("gatewayListOptions.gatewayType", device_type(&t)?.into()));
            }
            if let Some(g) = associations_gateway_id {
                query.push(("gatewayListOptions.associationsGatewayId", g));
            }
            if let Some(d) = associations_device_id {
                query.push(("gatewayListOptions.associationsDeviceId", d));
            }
            let path = format!("{}/devices", conn.registry(&registry)?);
            let items = client.list_all(&path, "devices", &query, limit).await?;
            output::list(conn.format, &items, LIST_COLUMNS);
        }
        DevicesCommand::Describe { device, registry } => {
            let found = client.get(&conn.device(&registry, &device)?, &[]).await?;
            output::resource(conn.format, &found);
        }
        DevicesCommand::Update {
            device,
            registry,
            blocked,
            no_blocked,
            metadata: md,
            log_level: level,
            auth_method: auth,
        } => {
            let mut body = serde_json::Map::new();
            let mut mask = Vec::new();
            if blocked || no_blocked {
                body.insert("blocked".into(), json!(blocked));
                mask.push("blocked");
            }
            if let Some(m) = metadata(md.as_deref(), None)? {
                body.insert("metadata".into(), m);
                mask.push("metadata");
            }
            if let Some(l) = level {
                body.insert("logLevel".into(), json!(log_level(&l)?));
                mask.push("log_level");
            }
            if let Some(a) = auth {
                body.insert(
                    "gatewayConfig".into(),
                    json!({"gatewayAuthMethod": auth_method(&a)?}),
                );
                mask.push("gateway_config.gateway_auth_method");
            }
            if mask.is_empty() {
                return Err(CliError::Usage(
                    "nothing to update: give at least one flag (see --help)".into(),
                ));
            }
            let updated = client
                .patch(
                    &conn.device(&registry, &device)?,
                    &mask,
                    Value::Object(body),
                )
                .await?;
            eprintln!("Updated device [{device}].");
            output::resource(conn.format, &updated);
        }
        DevicesCommand::Delete { device, registry } => {
            client.delete(&conn.device(&registry, &device)?).await?;
            eprintln!("Deleted device [{device}].");
        }
        DevicesCommand::Block { device, registry } => {
            set_blocked(client, conn, &registry, &device, true).await?;
        }
        DevicesCommand::Unblock { device, registry } => {
            set_blocked(client, conn, &registry, &device, false).await?;
        }
        DevicesCommand::Credentials(c) => credentials(client, conn, c).await?,
        DevicesCommand::Configs(ConfigsCommand::Update {
            target,
            config_file,
            config_data,
            version_to_update,
        }) => {
            let data = payload("--config-file", config_file, config_data, true)?;
            let name = conn.device(&target.registry, &target.device)?;
            let config = client
                .post(
                    &format!("{name}:modifyCloudToDeviceConfig"),
                    json!({"versionToUpdate": version_to_update.to_string(), "binaryData": b64(&data)}),
                )
                .await?;
            eprintln!(
                "Stored config version {} for device [{}].",
                output::cell(&config["version"]),
                target.device
            );
            output::resource(conn.format, &config);
        }
        DevicesCommand::Configs(ConfigsCommand::List { target, limit }) => {
            let name = conn.device(&target.registry, &target.device)?;
            let v = client
                .get(
                    &format!("{name}/configVersions"),
                    &[("numVersions", limit.to_string())],
                )
                .await?;
            let items = v["deviceConfigs"].as_array().cloned().unwrap_or_default();
            output::list(
                conn.format,
                &with_text(items),
                &[
                    ("VERSION", "/version"),
                    ("CLOUD_UPDATE_TIME", "/cloudUpdateTime"),
                    ("DEVICE_ACK_TIME", "/deviceAckTime"),
                    ("DATA", "/text"),
                ],
            );
        }
        DevicesCommand::States(StatesCommand::List { target, limit }) => {
            let name = conn.device(&target.registry, &target.device)?;
            let v = client
                .get(
                    &format!("{name}/states"),
                    &[("numStates", limit.to_string())],
                )
                .await?;
            let items = v["deviceStates"].as_array().cloned().unwrap_or_default();
            output::list(
                conn.format,
                &with_text(items),
                &[("UPDATE_TIME", "/updateTime"), ("DATA", "/text")],
            );
        }
        DevicesCommand::Commands(CommandsCommand::Send {
            target,
            command_file,
            command_data,
            subfolder,
        }) => {
            let data = payload("--command-file", command_file, command_data, true)?;
            let name = conn.device(&target.registry, &target.device)?;
            let mut body = json!({"binaryData": b64(&data)});
            if let Some(s) = subfolder {
                body["subfolder"] = json!(s);
            }
            client
                .post(&format!("{name}:sendCommandToDevice"), body)
                .await?;
            eprintln!("Sent the command to device [{}].", target.device);
        }
    }
    Ok(())
}

/// Adds a `text` column: the payload decoded when it is printable UTF-8 (table output
/// only; JSON output keeps the API's fields).
fn with_text(items: Vec<Value>) -> Vec<Value> {
    items
        .into_iter()
        .map(|mut item| {
            let text = item["binaryData"]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .filter(|s| !s.chars().any(char::is_control))
                .unwrap_or_else(|| {
                    item["binaryData"]
                        .as_str()
                        .map(|b| format!("base64:{b}"))
                        .unwrap_or_default()
                });
            if let Value::Object(m) = &mut item {
                m.insert("text".into(), json!(text));
            }
            item
        })
        .collect()
}

async fn credentials(
    client: &Client,
    conn: &Conn,
    command: CredentialsCommand,
) -> Result<(), CliError> {
    let target = match &command {
        CredentialsCommand::Add { target, .. }
        | CredentialsCommand::Remove { target, .. }
        | CredentialsCommand::List { target } => target,
    };
    let name = conn.device(&target.registry, &target.device)?;
    let current = client
        .get(&name, &[("fieldMask", "credentials".into())])
        .await?;
    let mut creds = current["credentials"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match &command {
        CredentialsCommand::List { .. } => {
            let rows: Vec<Value> = creds
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let mut c = c.clone();
                    c["index"] = json!(i);
                    c
                })
                .collect();
            match conn.format {
                super::Format::Json => output::json(&Value::Array(creds)),
                super::Format::Table => output::list(
                    conn.format,
                    &rows,
                    &[
                        ("INDEX", "/index"),
                        ("FORMAT", "/publicKey/format"),
                        ("EXPIRATION_TIME", "/expirationTime"),
                    ],
                ),
            }
            return Ok(());
        }
        CredentialsCommand::Add {
            path,
            key_type,
            expiration_time,
            ..
        } => {
            creds.push(credential(
                path,
                key_type.as_deref(),
                expiration_time.as_deref(),
            )?);
        }
        CredentialsCommand::Remove { index, .. } => {
            let index = *index;
            if index >= creds.len() {
                return Err(CliError::Usage(format!(
                    "device [{}] has {} credentials; index {index} does not exist (see `credentials list`)",
                    target.device,
                    creds.len()
                )));
            }
            creds.remove(index);
        }
    }
    let updated = client
        .patch(&name, &["credentials"], json!({"credentials": creds}))
        .await?;
    let count = updated["credentials"].as_array().map_or(0, Vec::len);
    eprintln!("Device [{}] now has {count} credential(s).", target.device);
    Ok(())
}
