//! Subscriptions on NATS JetStream (`--nats`), issue 10: a subscription is a durable
//! consumer whose AckWait is the ack deadline, and two nodes on the same NATS serve
//! it alike (created on one, pulled on the other, acked on either). Each test has a
//! stream of its own on the NATS of `TETHER_TEST_NATS_URL`, deleted at the end.

use std::hash::BuildHasher as _;
use std::sync::Arc;
use std::time::Duration;

use tether_pubsub::grpc::types as pb;
use tether_pubsub::grpc::{PublisherClient, SubscriberClient};
use tether_pubsub::{Catalog, GrpcLimits, NoRegistries, PubSub, WallClock};
use tether_route::{NatsConfig, NatsSink};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const TOPIC: &str = "projects/acme/topics/telemetry";
const SUB: &str = "projects/acme/subscriptions/backend";

type Error = Box<dyn std::error::Error>;

#[derive(Debug)]
struct FixedClock;

impl WallClock for FixedClock {
    fn unix_micros(&self) -> i64 {
        1_767_225_600_250_000
    }
}

/// A stream and subject prefix nobody else uses.
fn private_config() -> Option<NatsConfig> {
    let url = tether_testkit::needs::env("TETHER_TEST_NATS_URL");
    let url = tether_testkit::require("NATS JetStream (TETHER_TEST_NATS_URL)", url)?;
    // Random per call (std's hasher keys), so concurrent tests and runs never meet.
    let tag = format!(
        "{:x}",
        std::collections::hash_map::RandomState::new().hash_one(std::process::id())
    );
    let mut config = NatsConfig::new(url);
    config.stream = format!("TEST_PUBSUB_{tag}");
    config.subject_prefix = format!("test.pubsub.{tag}");
    Some(config)
}

/// One gateway node's Pub/Sub: its own catalog directory, its own NATS connection.
struct Node {
    publisher: PublisherClient<Channel>,
    subscriber: SubscriberClient<Channel>,
    _dir: tempfile::TempDir,
}

async fn node(config: &NatsConfig) -> Result<Node, Error> {
    let dir = tempfile::tempdir()?;
    let nats = Arc::new(NatsSink::connect(config.clone()).await?);
    let catalog = Catalog::open(&dir.path().join("pubsub.db")).await?;
    let pubsub = PubSub::open(
        catalog,
        nats.clone(),
        nats.clone(),
        Arc::new(NoRegistries),
        Arc::new(FixedClock),
    )
    .await?
    .use_jetstream(NatsSink::clone(&nats))
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(tether_pubsub::grpc::serve(
        listener,
        Arc::new(pubsub),
        GrpcLimits { max_streams: 10 },
        std::future::pending(),
    ));
    let ch = Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    Ok(Node {
        publisher: PublisherClient::new(ch.clone()),
        subscriber: SubscriberClient::new(ch),
        _dir: dir,
    })
}

async fn drop_stream(config: &NatsConfig) {
    if let Ok(sink) = NatsSink::connect(config.clone()).await {
        let _ = sink.jetstream().delete_stream(&config.stream).await;
    }
}

impl Node {
    async fn create(&mut self, ack_deadline_seconds: i32) -> Result<(), Error> {
        let topic = self
            .publisher
            .create_topic(pb::Topic {
                name: TOPIC.into(),
                ..Default::default()
            })
            .await;
        if let Err(s) = topic
            && s.code() != Code::AlreadyExists
        {
            return Err(s.into());
        }
        self.subscriber
            .create_subscription(pb::Subscription {
                name: SUB.into(),
                topic: TOPIC.into(),
                ack_deadline_seconds,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    async fn publish(&mut self, data: &[&[u8]]) -> Result<Vec<String>, Error> {
        let r = self
            .publisher
            .publish(pb::PublishRequest {
                topic: TOPIC.into(),
                messages: data
                    .iter()
                    .map(|d| pb::PubsubMessage {
                        data: d.to_vec(),
                        ..Default::default()
                    })
                    .collect(),
            })
            .await?;
        Ok(r.into_inner().message_ids)
    }

    /// Up to `max` messages, waiting up to the server's pull wait for the first.
    async fn pull(&mut self, max: i32, wait: bool) -> Result<Vec<pb::ReceivedMessage>, Error> {
        #[allow(deprecated)]
        let request = pb::PullRequest {
            subscription: SUB.into(),
            max_messages: max,
            return_immediately: !wait,
        };
        Ok(self
            .subscriber
            .pull(request)
            .await?
            .into_inner()
            .received_messages)
    }

    async fn ack(&mut self, ids: &[String]) -> Result<(), tonic::Status> {
        self.subscriber
            .acknowledge(pb::AcknowledgeRequest {
                subscription: SUB.into(),
                ack_ids: ids.to_vec(),
            })
            .await
            .map(|_| ())
    }

    async fn modify(&mut self, ids: &[String], seconds: i32) -> Result<(), tonic::Status> {
        self.subscriber
            .modify_ack_deadline(pb::ModifyAckDeadlineRequest {
                subscription: SUB.into(),
                ack_ids: ids.to_vec(),
                ack_deadline_seconds: seconds,
            })
            .await
            .map(|_| ())
    }

    async fn ack_deadline(&mut self) -> Result<i32, tonic::Status> {
        let s = self
            .subscriber
            .get_subscription(pb::GetSubscriptionRequest {
                subscription: SUB.into(),
            })
            .await?;
        Ok(s.into_inner().ack_deadline_seconds)
    }
}

fn data(got: &[pb::ReceivedMessage]) -> Vec<Vec<u8>> {
    got.iter()
        .filter_map(|m| m.message.as_ref().map(|m| m.data.clone()))
        .collect()
}

fn ack_ids(got: &[pb::ReceivedMessage]) -> Vec<String> {
    got.iter().map(|m| m.ack_id.clone()).collect()
}

fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> tonic::Status {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(s) => s,
    }
}

#[tokio::test]
async fn two_nodes_serve_one_subscription_kept_by_jetstream() -> Result<(), Error> {
    let Some(config) = private_config() else {
        return Ok(());
    };
    let result = two_nodes(&config).await;
    drop_stream(&config).await;
    result
}

async fn two_nodes(config: &NatsConfig) -> Result<(), Error> {
    let mut a = node(config).await?;
    let mut b = node(config).await?;
    a.create(20).await?;

    // The subscription is a durable consumer of the stream, its AckWait the deadline.
    let sink = NatsSink::connect(config.clone()).await?;
    let durables = sink.durables().await?;
    assert_eq!(durables.len(), 1, "one consumer: {durables:?}");
    assert_eq!(durables[0].ack_wait, Duration::from_secs(20));
    assert!(durables[0].description.contains(SUB), "{durables:?}");

    // Published on A, pulled on B, which never saw the subscription before.
    let ids = a.publish(&[b"one", b"two", b"three"]).await?;
    let got = b.pull(10, true).await?;
    assert_eq!(
        data(&got),
        [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    let message_ids: Vec<String> = got
        .iter()
        .filter_map(|m| m.message.as_ref().map(|m| m.message_id.clone()))
        .collect();
    assert_eq!(message_ids, ids, "messageId is the stream sequence");
    assert!(a.pull(10, false).await?.is_empty(), "leased to B's pull");

    // B's ack ids settle on A; a nack on B delivers the last one again, on A.
    let issued = ack_ids(&got);
    a.ack(&issued[..2]).await?;
    b.modify(&issued[2..], 0).await?;
    let again = a.pull(10, true).await?;
    assert_eq!(data(&again), [b"three".to_vec()]);
    a.ack(&ack_ids(&again)).await?;
    assert!(a.pull(10, false).await?.is_empty());
    assert!(b.pull(10, false).await?.is_empty());

    // An ack id of another consumer, or none at all, is refused by name.
    let stream = &config.stream;
    for forged in [
        format!("$JS.ACK.{stream}.ps_other.1.1.1.1.0"),
        "not-an-ack-id".to_owned(),
        format!("$JS.ACK.{stream}.ps_x.1.1.1.1.0 >"),
    ] {
        let status = refused(a.ack(std::slice::from_ref(&forged)).await);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("not issued"), "{status:?}");
    }

    // Changed on B: A and JetStream see it.
    b.subscriber
        .update_subscription(pb::UpdateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                name: SUB.into(),
                topic: TOPIC.into(),
                ack_deadline_seconds: 30,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["ack_deadline_seconds".into()],
            }),
        })
        .await?;
    assert_eq!(a.ack_deadline().await?, 30);
    assert_eq!(sink.durables().await?[0].ack_wait, Duration::from_secs(30));
    let listed = b
        .subscriber
        .list_subscriptions(pb::ListSubscriptionsRequest {
            project: "projects/acme".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .subscriptions;
    assert_eq!(listed.len(), 1);

    // A second node cannot create it again; deleted on B, it is gone on A too.
    let twice = refused(
        b.subscriber
            .create_subscription(pb::Subscription {
                name: SUB.into(),
                topic: TOPIC.into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(twice.code(), Code::AlreadyExists);
    b.subscriber
        .delete_subscription(pb::DeleteSubscriptionRequest {
            subscription: SUB.into(),
        })
        .await?;
    assert!(sink.durables().await?.is_empty());
    let gone = refused(
        a.pull(1, false)
            .await
            .map_err(|e| match e.downcast::<tonic::Status>() {
                Ok(s) => *s,
                Err(e) => tonic::Status::unknown(e.to_string()),
            }),
    );
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    Ok(())
}

#[tokio::test]
async fn a_changed_deadline_delivers_again_when_it_ends_and_an_ack_before_it_holds()
-> Result<(), Error> {
    let Some(config) = private_config() else {
        return Ok(());
    };
    let result = deadlines(&config).await;
    drop_stream(&config).await;
    result
}

async fn deadlines(config: &NatsConfig) -> Result<(), Error> {
    let mut a = node(config).await?;
    a.create(600).await?;
    a.publish(&[b"late", b"settled"]).await?;
    let got = a.pull(10, true).await?;
    assert_eq!(got.len(), 2);
    let ids = ack_ids(&got);
    // Both leases cut to 1 s; the second is acked before that ends.
    a.modify(&ids, 1).await?;
    a.ack(&ids[1..]).await?;
    assert!(a.pull(10, false).await?.is_empty(), "still leased");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = a.pull(10, true).await?;
    assert_eq!(
        data(&again),
        [b"late".to_vec()],
        "only the unacked one comes again"
    );
    a.ack(&ack_ids(&again)).await?;

    // Seek to the (fixed) publish time: both again; past it: nothing.
    let seek = |nanos| pb::SeekRequest {
        subscription: SUB.into(),
        target: Some(pb::seek_request::Target::Time(prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos,
        })),
    };
    a.subscriber.seek(seek(250_000_000)).await?;
    assert_eq!(
        a.pull(10, true).await?.len(),
        2,
        "at the publish time: again"
    );
    a.subscriber.seek(seek(250_001_000)).await?;
    assert!(a.pull(10, false).await?.is_empty(), "after it: nothing");

    let out_of_range = refused(a.modify(&ids, 601).await);
    assert_eq!(out_of_range.code(), Code::InvalidArgument);
    Ok(())
}

#[tokio::test]
async fn a_subscription_kept_in_the_catalog_moves_to_jetstream() -> Result<(), Error> {
    let Some(config) = private_config() else {
        return Ok(());
    };
    let result = moves(&config).await;
    drop_stream(&config).await;
    result
}

async fn moves(config: &NatsConfig) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let nats = Arc::new(NatsSink::connect(config.clone()).await?);
    let open = || async {
        PubSub::open(
            Catalog::open(&dir.path().join("pubsub.db")).await?,
            nats.clone(),
            nats.clone(),
            Arc::new(NoRegistries),
            Arc::new(FixedClock),
        )
        .await
        .map_err(Error::from)
    };
    // As an earlier version kept it: in the node's catalog.
    let old = open().await?;
    old.create_topic(TOPIC).await?;
    old.create_subscription(tether_pubsub::engine::NewSubscription {
        name: SUB.into(),
        topic: TOPIC.into(),
        ack_deadline_s: 45,
        push_endpoint: String::new(),
        backoff: None,
    })
    .await?;
    drop(old);
    let moved = open().await?.use_jetstream(NatsSink::clone(&nats)).await?;
    let info = moved.get_subscription(SUB).await?;
    assert_eq!(info.settings.ack_deadline_s, 45);
    assert_eq!(nats.durables().await?.len(), 1);
    drop(moved);
    // Once moved, it is JetStream's alone: opened again, nothing moves twice.
    let again = open().await?.use_jetstream(NatsSink::clone(&nats)).await?;
    assert_eq!(again.list_subscriptions("projects/acme").await?.len(), 1);
    Ok(())
}
