//! `tether events`: read the telemetry the gateway stored, in its embedded log or
//! its NATS JetStream stream (the same admin API serves both).

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
            let listed = v["topics"].as_array().and_then(|l| {
                l.iter()
                    .find(|t| t["topic"].as_str() == Some(args.topic.as_str()))
            });
            match listed {
                Some(t) => {
                    let range = (offset(&t["earliestOffset"]), offset(&t["nextOffset"]));
                    start_of_last(client, &args.topic, range, args.last).await?
                }
                None => 0,
            }
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

/// The offset of the `last`-th newest message of a topic holding `earliest..next`.
///
/// Offsets may have gaps (on NATS JetStream they are stream sequence numbers shared by
/// every topic), so `next - last` is only where the search starts: the window below
/// `next` widens until it holds `last` messages or reaches `earliest`. On the embedded
/// log (no gaps) the first window is the answer.
async fn start_of_last(
    client: &Client,
    topic: &str,
    (earliest, next): (u64, u64),
    last: u64,
) -> Result<u64, CliError> {
    let mut window = last;
    loop {
        let start = next.saturating_sub(window).max(earliest);
        let offsets = offsets_between(client, topic, start, next).await?;
        let wanted = usize::try_from(last).unwrap_or(usize::MAX);
        match offsets.len().checked_sub(wanted) {
            Some(i) => return Ok(offsets.get(i).copied().unwrap_or(next)),
            None if start <= earliest => return Ok(start),
            None => window = window.saturating_mul(4).max(1),
        }
    }
}

/// The offsets of a topic's messages in `from..until`.
async fn offsets_between(
    client: &Client,
    topic: &str,
    mut from: u64,
    until: u64,
) -> Result<Vec<u64>, CliError> {
    let mut offsets = Vec::new();
    while from < until {
        let query = [
            ("topic", topic.to_string()),
            ("from", from.to_string()),
            ("max", "1000".to_string()),
        ];
        let v = client.get("telemetry/messages", &query).await?;
        let page = v["messages"].as_array().cloned().unwrap_or_default();
        offsets.extend(
            page.iter()
                .map(|m| offset(&m["offset"]))
                .filter(|o| *o < until),
        );
        let next = offset(&v["nextOffset"]);
        if page.is_empty() || next <= from {
            break;
        }
        from = next;
    }
    Ok(offsets)
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
