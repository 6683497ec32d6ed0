//! `tether registries create|list|describe|update|delete` (as `gcloud iot registries`).

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::{CliError, Client};
use super::{Conn, output};

/// Manage device registries.
#[derive(Debug, Args)]
pub struct RegistriesArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: RegistriesCommand,
}

#[derive(Debug, Subcommand)]
enum RegistriesCommand {
    /// Create a registry.
    Create {
        /// Registry id.
        registry: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// List the registries of the project and region.
    List {
        /// Stop after this many (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
    /// Show a registry.
    Describe {
        /// Registry id.
        registry: String,
    },
    /// Change the settings given as flags (the others stay).
    Update {
        /// Registry id.
        registry: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Delete a registry (it must have no devices).
    Delete {
        /// Registry id.
        registry: String,
    },
}

/// The registry settings, with gcloud's flag names.
#[derive(Debug, Args)]
struct Settings {
    /// Telemetry routing, `topic=TOPIC[,subfolder=SUBFOLDER]`, repeatable; TOPIC is a
    /// full `projects/P/topics/T` name or a topic id in the same project.
    #[arg(
        long = "event-notification-config",
        value_name = "topic=T[,subfolder=S]"
    )]
    events: Vec<String>,
    /// Topic for state notifications.
    #[arg(long)]
    state_pubsub_topic: Option<String>,
    /// Accept MQTT connections.
    #[arg(long, overrides_with = "no_enable_mqtt_config")]
    enable_mqtt_config: bool,
    /// Refuse MQTT connections.
    #[arg(long)]
    no_enable_mqtt_config: bool,
    /// Accept HTTP bridge calls.
    #[arg(long, overrides_with = "no_enable_http_config")]
    enable_http_config: bool,
    /// Refuse HTTP bridge calls.
    #[arg(long)]
    no_enable_http_config: bool,
    /// Default device log level: none, error, info, debug.
    #[arg(long)]
    log_level: Option<String>,
    /// A CA certificate (PEM) that signs device certificates, repeatable.
    #[arg(long = "public-key-path", value_name = "FILE")]
    ca_files: Vec<std::path::PathBuf>,
}

/// `topic` as a full name (`projects/P/topics/T`).
fn topic_name(conn: &Conn, topic: &str) -> Result<String, CliError> {
    if topic.starts_with("projects/") {
        return Ok(topic.to_string());
    }
    let project = conn
        .project
        .as_deref()
        .ok_or_else(|| CliError::Usage("no project for the topic: pass --project".into()))?;
    Ok(format!("projects/{project}/topics/{topic}"))
}

/// Splits `a=1,b=2` into pairs; the error names the flag.
pub fn key_values(flag: &str, text: &str) -> Result<Vec<(String, String)>, CliError> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| CliError::Usage(format!("{flag}: '{pair}' is not KEY=VALUE")))
        })
        .collect()
}

/// A log level flag as the API's enum name.
pub fn log_level(text: &str) -> Result<&'static str, CliError> {
    match text.to_ascii_lowercase().as_str() {
        "none" => Ok("NONE"),
        "error" => Ok("ERROR"),
        "info" => Ok("INFO"),
        "debug" => Ok("DEBUG"),
        other => Err(CliError::Usage(format!(
            "--log-level '{other}': use none, error, info or debug"
        ))),
    }
}

impl Settings {
    /// The body and the update mask for the flags that were given.
    fn body(&self, conn: &Conn) -> Result<(Value, Vec<&'static str>), CliError> {
        let mut body = serde_json::Map::new();
        let mut mask = Vec::new();
        if !self.events.is_empty() {
            let mut configs = Vec::new();
            for text in &self.events {
                let mut topic = None;
                let mut subfolder = String::new();
                for (k, v) in key_values("--event-notification-config", text)? {
                    match k.as_str() {
                        "topic" => topic = Some(topic_name(conn, &v)?),
                        "subfolder" => subfolder = v,
                        other => {
                            return Err(CliError::Usage(format!(
                                "--event-notification-config: unknown key '{other}' (use topic= and subfolder=)"
                            )));
                        }
                    }
                }
                let topic = topic.ok_or_else(|| {
                    CliError::Usage(format!(
                        "--event-notification-config '{text}' needs topic=TOPIC"
                    ))
                })?;
                configs.push(json!({"pubsubTopicName": topic, "subfolderMatches": subfolder}));
            }
            body.insert("eventNotificationConfigs".into(), Value::Array(configs));
            mask.push("event_notification_configs");
        }
        if let Some(t) = &self.state_pubsub_topic {
            body.insert(
                "stateNotificationConfig".into(),
                json!({"pubsubTopicName": topic_name(conn, t)?}),
            );
            mask.push("state_notification_config");
        }
        if self.enable_mqtt_config || self.no_enable_mqtt_config {
            let state = if self.enable_mqtt_config {
                "MQTT_ENABLED"
            } else {
                "MQTT_DISABLED"
            };
            body.insert("mqttConfig".into(), json!({"mqttEnabledState": state}));
            mask.push("mqtt_config");
        }
        if self.enable_http_config || self.no_enable_http_config {
            let state = if self.enable_http_config {
                "HTTP_ENABLED"
            } else {
                "HTTP_DISABLED"
            };
            body.insert("httpConfig".into(), json!({"httpEnabledState": state}));
            mask.push("http_config");
        }
        if let Some(level) = &self.log_level {
            body.insert("logLevel".into(), json!(log_level(level)?));
            mask.push("log_level");
        }
        if !self.ca_files.is_empty() {
            let mut creds = Vec::new();
            for path in &self.ca_files {
                let pem = std::fs::read_to_string(path).map_err(|e| {
                    CliError::Usage(format!("--public-key-path {}: {e}", path.display()))
                })?;
                creds.push(json!({"publicKeyCertificate": {"format": "X509_CERTIFICATE_PEM", "certificate": pem}}));
            }
            body.insert("credentials".into(), Value::Array(creds));
            mask.push("credentials");
        }
        Ok((Value::Object(body), mask))
    }
}

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "/id"),
    ("LOCATION", "/location"),
    ("MQTT_ENABLED", "/mqttConfig/mqttEnabledState"),
    ("HTTP_ENABLED", "/httpConfig/httpEnabledState"),
];

/// Runs `tether registries …`.
pub fn run(args: RegistriesArgs) -> anyhow::Result<u8> {
    let conn = args.conn.clone();
    super::run(&args.conn, |client| async move {
        exec(&client, &conn, args.command).await
    })
}

async fn exec(client: &Client, conn: &Conn, command: RegistriesCommand) -> Result<(), CliError> {
    match command {
        RegistriesCommand::Create { registry, settings } => {
            let (mut body, _) = settings.body(conn)?;
            body["id"] = json!(registry);
            let created = client
                .post(&format!("{}/registries", conn.location()?), body)
                .await?;
            eprintln!("Created registry [{registry}].");
            output::resource(conn.format, &created);
        }
        RegistriesCommand::List { limit } => {
            let mut items = client
                .list_all(
                    &format!("{}/registries", conn.location()?),
                    "deviceRegistries",
                    &[],
                    limit,
                )
                .await?;
            for item in &mut items {
                item["location"] = json!(conn.region);
            }
            output::list(conn.format, &items, COLUMNS);
        }
        RegistriesCommand::Describe { registry } => {
            let found = client.get(&conn.registry(&registry)?, &[]).await?;
            output::resource(conn.format, &found);
        }
        RegistriesCommand::Update { registry, settings } => {
            let (body, mask) = settings.body(conn)?;
            if mask.is_empty() {
                return Err(CliError::Usage(
                    "nothing to update: give at least one setting flag (see --help)".into(),
                ));
            }
            let updated = client
                .patch(&conn.registry(&registry)?, &mask, body)
                .await?;
            eprintln!("Updated registry [{registry}].");
            output::resource(conn.format, &updated);
        }
        RegistriesCommand::Delete { registry } => {
            client.delete(&conn.registry(&registry)?).await?;
            eprintln!("Deleted registry [{registry}].");
        }
    }
    Ok(())
}
