//! `tether events`: read the telemetry the gateway stored in its embedded log.

use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::admin::client::{CliError, Client};
use crate::admin::{self, Conn, Format};

/// Arguments of `tether events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// List the notification topics that hold telemetry, with their offsets.
    Topics,
    /// Print a topic's messages; with --follow, keep printing new ones as they arrive.
    Tail(TailArgs),
}

#[derive(Debug, Args)]
struct TailArgs {
    /// The notification topic, e.g. projects/my-project/topics/telemetry.
    #[arg(long)]
    topic: String,
    /// Start at this offset [default: the last --last messages].
    #[arg(long)]
    from: Option<u64>,
    /// How many of the newest messages to show when --from is not given.
    #[arg(long, default_value_t = 10)]
    last: u64,
    /// Keep waiting for new messages (Ctrl-C to stop).
    #[arg(short, long)]
    follow: bool,
}

/// Runs `tether events`.
pub fn run(args: EventsArgs) -> anyhow::Result<u8> {
    let format = args.conn.format;
    admin::run(&args.conn, move |client| async move {
        match args.command {
            EventsCommand::Topics => topics(&client, format).await,
            EventsCommand::Tail(t) => tail(&client, format, t).await,
        }
    })
}

async fn topics(client: &Client, format: Format) -> Result<(), CliError> {
    let v = client.get("telemetry/topics", &[]).await?;
    if matches!(format, Format::Json) {
        println!("{v:#}");
        return Ok(());
    }
    let list = v["topics"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no telemetry stored yet");
    }
    for t in list {
        let (first, next) = (
            t["earliestOffset"].as_str().unwrap_or("0"),
            t["nextOffset"].as_str().unwrap_or("0"),
        );
        println!(
            "{}  offsets {first}..{next}",
            t["topic"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn offset(v: &Value) -> u64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
}

async fn tail(client: &Client, format: Format, args: TailArgs) -> Result<(), CliError> {
    let mut from = match args.from {
        Some(f) => f,
        None => {
            let v = client.get("telemetry/topics", &[]).await?;
            let next = v["topics"]
                .as_array()
                .and_then(|l| {
                    l.iter()
                        .find(|t| t["topic"].as_str() == Some(args.topic.as_str()))
                })
                .map_or(0, |t| offset(&t["nextOffset"]));
            next.saturating_sub(args.last)
        }
    };
    loop {
        let wait = if args.follow { "25" } else { "0" };
        let query = [
            ("topic", args.topic.clone()),
            ("from", from.to_string()),
            ("max", "500".to_string()),
            ("wait", wait.to_string()),
        ];
        let v = client.get("telemetry/messages", &query).await?;
        for m in v["messages"].as_array().cloned().unwrap_or_default() {
            print_message(&m, format);
        }
        let next = offset(&v["nextOffset"]);
        let caught_up = next == from;
        from = next;
        if !args.follow && caught_up {
            return Ok(());
        }
        if !args.follow && v["messages"].as_array().is_none_or(|m| m.len() < 500) {
            return Ok(());
        }
    }
}

fn print_message(m: &Value, format: Format) {
    if matches!(format, Format::Json) {
        println!("{m}");
        return;
    }
    let attrs = &m["attributes"];
    let data = m["data"]
        .as_str()
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .unwrap_or_default();
    let text = match std::str::from_utf8(&data) {
        Ok(t) if t.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => t.to_string(),
        _ => format!("base64:{}", m["data"].as_str().unwrap_or("")),
    };
    let sub = attrs["subFolder"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(|s| format!("/{s}"))
        .unwrap_or_default();
    println!(
        "{:>6}  {}  {}{sub}  {text}",
        m["offset"].as_str().unwrap_or("?"),
        m["publishTime"].as_str().unwrap_or(""),
        attrs["deviceId"].as_str().unwrap_or("?"),
    );
}
