//! `tether pubsub`: topics, subscriptions and messages of the gateway's
//! Pub/Sub-compatible API, for operators (backends use Google's client libraries).
//! Speaks gRPC to `--pubsub` (`PUBSUB_EMULATOR_HOST`), like those libraries.

use std::time::Duration;

use base64::Engine as _;
use clap::{Args, Subcommand};
use tether_pubsub::grpc::types as pb;
use tether_pubsub::grpc::{PublisherClient, SubscriberClient};
use tonic::transport::{Channel, Endpoint};

use crate::admin::Format;
use crate::exit;

/// Arguments of `tether pubsub`.
#[derive(Debug, Args)]
pub struct PubsubArgs {
    /// The Pub/Sub API of `tether serve` (host:port), as Google's clients take it.
    #[arg(
        long,
        env = "PUBSUB_EMULATOR_HOST",
        default_value = "127.0.0.1:8085",
        global = true
    )]
    pubsub: String,
    /// Project id, for short topic and subscription names.
    #[arg(long, env = "TETHER_PROJECT", global = true)]
    project: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table", global = true)]
    format: Format,
    #[command(subcommand)]
    command: PubsubCommand,
}

#[derive(Debug, Subcommand)]
enum PubsubCommand {
    /// List, create and delete topics (a registry's notification topics exist already).
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// List, create and delete subscriptions.
    #[command(subcommand)]
    Subscriptions(SubscriptionsCommand),
    /// Receive messages from a subscription (and ack them with --ack).
    Pull(PullArgs),
    /// Publish a message to a topic, as a backend would.
    Publish(PublishArgs),
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// The project's topics.
    List,
    /// Create a topic (NAME or projects/P/topics/NAME).
    Create { name: String },
    /// Delete a created topic.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
enum SubscriptionsCommand {
    /// The project's subscriptions.
    List,
    /// Create a subscription; it receives what is published from now on.
    Create(CreateArgs),
    /// Delete a subscription and its ack state.
    Delete { name: String },
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// NAME or projects/P/subscriptions/NAME.
    name: String,
    /// The topic (NAME or projects/P/topics/NAME).
    #[arg(long)]
    topic: String,
    /// Seconds a delivered message waits for its ack, 10 to 600 [default: 10].
    #[arg(long, value_name = "SECS")]
    ack_deadline: Option<i32>,
    /// POST each message here (Pub/Sub's push JSON) instead of waiting for pulls.
    #[arg(long, value_name = "URL")]
    push_endpoint: Option<String>,
}

#[derive(Debug, Args)]
struct PullArgs {
    /// NAME or projects/P/subscriptions/NAME.
    subscription: String,
    /// Most messages to receive.
    #[arg(long, default_value_t = 10)]
    max: i32,
    /// Ack what was received (otherwise it is delivered again after the deadline).
    #[arg(long)]
    ack: bool,
    /// Wait up to 10 s for a message when there is none.
    #[arg(long)]
    wait: bool,
}

#[derive(Debug, Args)]
struct PublishArgs {
    /// NAME or projects/P/topics/NAME.
    topic: String,
    /// The message data (text).
    #[arg(long)]
    message: String,
    /// An attribute, KEY=VALUE; repeat for more.
    #[arg(long = "attribute", value_name = "KEY=VALUE")]
    attributes: Vec<String>,
}

/// Why a command failed: a refusal from the server (exit 1) or no server (exit 2).
enum Failure {
    Refused(tonic::Status),
    Usage(String),
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        if s.code() == tonic::Code::Unavailable {
            Failure::Usage(format!("the Pub/Sub API did not answer: {}", s.message()))
        } else {
            Failure::Refused(s)
        }
    }
}

struct Ctx {
    project: Option<String>,
    format: Format,
    publisher: PublisherClient<Channel>,
    subscriber: SubscriberClient<Channel>,
}

impl Ctx {
    fn project(&self) -> Result<&str, Failure> {
        self.project
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                Failure::Usage(
                    "give a full name (projects/P/...) or --project / TETHER_PROJECT".into(),
                )
            })
    }

    /// `name` as given when it is a full name, else under the project.
    fn full(&self, name: &str, collection: &str) -> Result<String, Failure> {
        if name.contains('/') {
            Ok(name.to_owned())
        } else {
            Ok(format!("projects/{}/{collection}/{name}", self.project()?))
        }
    }
}

/// Runs `tether pubsub`.
pub fn run(args: PubsubArgs) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async move {
        let endpoint = Endpoint::from_shared(format!("http://{}", args.pubsub))
            .map_err(|e| Failure::Usage(format!("--pubsub {:?}: {e}", args.pubsub)))?
            .connect_timeout(Duration::from_secs(5));
        let channel = endpoint.connect().await.map_err(|e| {
            Failure::Usage(format!(
                "cannot reach the Pub/Sub API at {} ({e}); is `tether serve` running with \
                 --pubsub-addr there?",
                args.pubsub
            ))
        })?;
        let mut ctx = Ctx {
            project: args.project,
            format: args.format,
            publisher: PublisherClient::new(channel.clone()),
            subscriber: SubscriberClient::new(channel),
        };
        match args.command {
            PubsubCommand::Topics(c) => topics(&mut ctx, c).await,
            PubsubCommand::Subscriptions(c) => subscriptions(&mut ctx, c).await,
            PubsubCommand::Pull(p) => pull(&mut ctx, p).await,
            PubsubCommand::Publish(p) => publish(&mut ctx, p).await,
        }
    });
    Ok(match outcome {
        Ok(()) => exit::OK,
        Err(Failure::Refused(s)) => {
            eprintln!("error: {} ({:?})", s.message(), s.code());
            exit::INVALID
        }
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            exit::USAGE
        }
    })
}

async fn topics(ctx: &mut Ctx, c: TopicsCommand) -> Result<(), Failure> {
    match c {
        TopicsCommand::List => {
            let project = format!("projects/{}", ctx.project()?);
            let mut token = String::new();
            loop {
                let page = ctx
                    .publisher
                    .list_topics(pb::ListTopicsRequest {
                        project: project.clone(),
                        page_size: 1000,
                        page_token: token,
                    })
                    .await?
                    .into_inner();
                for t in &page.topics {
                    println!("{}", t.name);
                }
                if page.next_page_token.is_empty() {
                    return Ok(());
                }
                token = page.next_page_token;
            }
        }
        TopicsCommand::Create { name } => {
            let name = ctx.full(&name, "topics")?;
            ctx.publisher
                .create_topic(pb::Topic {
                    name: name.clone(),
                    ..Default::default()
                })
                .await?;
            println!("Created topic [{name}].");
            Ok(())
        }
        TopicsCommand::Delete { name } => {
            let topic = ctx.full(&name, "topics")?;
            ctx.publisher
                .delete_topic(pb::DeleteTopicRequest {
                    topic: topic.clone(),
                })
                .await?;
            println!("Deleted topic [{topic}].");
            Ok(())
        }
    }
}

fn show_subscription(format: Format, s: &pb::Subscription) {
    let push = s
        .push_config
        .as_ref()
        .map(|p| p.push_endpoint.as_str())
        .unwrap_or_default();
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "name": s.name, "topic": s.topic,
                "ackDeadlineSeconds": s.ack_deadline_seconds,
                "pushConfig": {"pushEndpoint": push},
            })
        ),
        Format::Table => println!(
            "{}  topic {}  ack deadline {} s{}",
            s.name,
            s.topic,
            s.ack_deadline_seconds,
            if push.is_empty() {
                String::new()
            } else {
                format!("  push {push}")
            }
        ),
    }
}

async fn subscriptions(ctx: &mut Ctx, c: SubscriptionsCommand) -> Result<(), Failure> {
    match c {
        SubscriptionsCommand::List => {
            let project = format!("projects/{}", ctx.project()?);
            let mut token = String::new();
            loop {
                let page = ctx
                    .subscriber
                    .list_subscriptions(pb::ListSubscriptionsRequest {
                        project: project.clone(),
                        page_size: 1000,
                        page_token: token,
                    })
                    .await?
                    .into_inner();
                for s in &page.subscriptions {
                    show_subscription(ctx.format, s);
                }
                if page.next_page_token.is_empty() {
                    return Ok(());
                }
                token = page.next_page_token;
            }
        }
        SubscriptionsCommand::Create(a) => {
            let created = ctx
                .subscriber
                .create_subscription(pb::Subscription {
                    name: ctx.full(&a.name, "subscriptions")?,
                    topic: ctx.full(&a.topic, "topics")?,
                    ack_deadline_seconds: a.ack_deadline.unwrap_or(0),
                    push_config: a.push_endpoint.map(|push_endpoint| pb::PushConfig {
                        push_endpoint,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await?
                .into_inner();
            show_subscription(ctx.format, &created);
            Ok(())
        }
        SubscriptionsCommand::Delete { name } => {
            let subscription = ctx.full(&name, "subscriptions")?;
            ctx.subscriber
                .delete_subscription(pb::DeleteSubscriptionRequest {
                    subscription: subscription.clone(),
                })
                .await?;
            println!("Deleted subscription [{subscription}].");
            Ok(())
        }
    }
}

async fn pull(ctx: &mut Ctx, a: PullArgs) -> Result<(), Failure> {
    let subscription = ctx.full(&a.subscription, "subscriptions")?;
    #[allow(deprecated)]
    let request = pb::PullRequest {
        subscription: subscription.clone(),
        max_messages: a.max,
        return_immediately: !a.wait,
    };
    let got = ctx.subscriber.pull(request).await?.into_inner();
    for r in &got.received_messages {
        let Some(m) = &r.message else { continue };
        let published = m
            .publish_time
            .as_ref()
            .map(|t| {
                tether_iot::UnixTime {
                    secs: t.seconds,
                    nanos: u32::try_from(t.nanos).unwrap_or(0),
                }
                .to_string()
            })
            .unwrap_or_default();
        let attributes: std::collections::BTreeMap<_, _> = m.attributes.iter().collect();
        match ctx.format {
            Format::Json => println!(
                "{}",
                serde_json::json!({
                    "ackId": r.ack_id, "messageId": m.message_id, "publishTime": published,
                    "attributes": attributes,
                    "data": base64::engine::general_purpose::STANDARD.encode(&m.data),
                })
            ),
            Format::Table => {
                let data = match std::str::from_utf8(&m.data) {
                    Ok(text) => text.escape_debug().to_string(),
                    Err(_) => format!(
                        "base64:{}",
                        base64::engine::general_purpose::STANDARD.encode(&m.data)
                    ),
                };
                let attrs: Vec<String> =
                    attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("{}  {published}  {}  {data}", m.message_id, attrs.join(" "));
            }
        }
    }
    if got.received_messages.is_empty() && ctx.format == Format::Table {
        eprintln!("no messages");
    }
    if a.ack && !got.received_messages.is_empty() {
        ctx.subscriber
            .acknowledge(pb::AcknowledgeRequest {
                subscription,
                ack_ids: got
                    .received_messages
                    .iter()
                    .map(|r| r.ack_id.clone())
                    .collect(),
            })
            .await?;
    }
    Ok(())
}

async fn publish(ctx: &mut Ctx, a: PublishArgs) -> Result<(), Failure> {
    let mut attributes = std::collections::HashMap::new();
    for kv in &a.attributes {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(Failure::Usage(format!(
                "--attribute {kv:?} is not KEY=VALUE"
            )));
        };
        attributes.insert(k.to_owned(), v.to_owned());
    }
    let topic = ctx.full(&a.topic, "topics")?;
    let ids = ctx
        .publisher
        .publish(pb::PublishRequest {
            topic,
            messages: vec![pb::PubsubMessage {
                data: a.message.into_bytes(),
                attributes,
                ..Default::default()
            }],
        })
        .await?
        .into_inner()
        .message_ids;
    println!("messageIds: {}", ids.join(", "));
    Ok(())
}
