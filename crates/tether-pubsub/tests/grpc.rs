//! The gRPC API in process, over a real embedded log and catalog, through the
//! generated clients: the happy path, and each refusal with its precise status
//! while the server stays up (issue 10, "Bad input").

use std::net::SocketAddr;
use std::sync::Arc;

use tether_log::{EmbeddedLog, LogConfig};
use tether_pubsub::grpc::types as pb;
use tether_pubsub::grpc::{PublisherClient, SubscriberClient};
use tether_pubsub::{Catalog, GrpcLimits, NoRegistries, PubSub, WallClock};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const TOPIC: &str = "projects/acme/topics/telemetry";
const SUB: &str = "projects/acme/subscriptions/backend";

#[derive(Debug)]
struct FixedClock;

impl WallClock for FixedClock {
    fn unix_micros(&self) -> i64 {
        1_767_225_600_250_000
    }
}

struct Server {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

type Error = Box<dyn std::error::Error>;

async fn start(max_streams: usize) -> Result<Server, Error> {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(EmbeddedLog::open(LogConfig::new(dir.path())).await?);
    let catalog = Catalog::open(&dir.path().join("pubsub.db")).await?;
    let pubsub = PubSub::open(
        catalog,
        log.clone(),
        log,
        Arc::new(NoRegistries),
        Arc::new(FixedClock),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(tether_pubsub::grpc::serve(
        listener,
        Arc::new(pubsub),
        GrpcLimits { max_streams },
        std::future::pending(),
    ));
    Ok(Server { addr, _dir: dir })
}

async fn channel(addr: SocketAddr) -> Result<Channel, Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

async fn setup(
    addr: SocketAddr,
) -> Result<(PublisherClient<Channel>, SubscriberClient<Channel>), Error> {
    let ch = channel(addr).await?;
    let mut publisher = PublisherClient::new(ch.clone())
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);
    let mut subscriber = SubscriberClient::new(ch);
    publisher
        .create_topic(pb::Topic {
            name: TOPIC.into(),
            ..Default::default()
        })
        .await?;
    subscriber
        .create_subscription(pb::Subscription {
            name: SUB.into(),
            topic: TOPIC.into(),
            ..Default::default()
        })
        .await?;
    Ok((publisher, subscriber))
}

fn message(data: &[u8]) -> pb::PubsubMessage {
    pb::PubsubMessage {
        data: data.to_vec(),
        ..Default::default()
    }
}

async fn publish(p: &mut PublisherClient<Channel>, data: &[&[u8]]) -> Result<Vec<String>, Error> {
    let r = p
        .publish(pb::PublishRequest {
            topic: TOPIC.into(),
            messages: data.iter().map(|d| message(d)).collect(),
        })
        .await?;
    Ok(r.into_inner().message_ids)
}

async fn pull(
    s: &mut SubscriberClient<Channel>,
    max: i32,
) -> Result<Vec<pb::ReceivedMessage>, Error> {
    #[allow(deprecated)]
    let request = pb::PullRequest {
        subscription: SUB.into(),
        max_messages: max,
        return_immediately: true,
    };
    Ok(s.pull(request).await?.into_inner().received_messages)
}

async fn ack(s: &mut SubscriberClient<Channel>, ids: &[String]) -> Result<(), tonic::Status> {
    s.acknowledge(pb::AcknowledgeRequest {
        subscription: SUB.into(),
        ack_ids: ids.to_vec(),
    })
    .await
    .map(|_| ())
}

fn status<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> tonic::Status {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(s) => s,
    }
}

#[tokio::test]
async fn publish_pull_ack_and_nothing_twice() -> Result<(), Error> {
    let server = start(10).await?;
    let (mut p, mut s) = setup(server.addr).await?;
    let ids = publish(&mut p, &[b"a", b"b", b"c"]).await?;
    assert_eq!(ids, ["0", "1", "2"]);
    let got = pull(&mut s, 10).await?;
    let data: Vec<&[u8]> = got
        .iter()
        .filter_map(|m| m.message.as_ref().map(|m| m.data.as_slice()))
        .collect();
    assert_eq!(data, [b"a", b"b", b"c"]);
    let first = got[0].message.clone().unwrap_or_default();
    assert_eq!(first.message_id, "0");
    assert_eq!(
        first.publish_time,
        Some(prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 250_000_000
        })
    );
    let ack_ids: Vec<String> = got.iter().map(|m| m.ack_id.clone()).collect();
    ack(&mut s, &ack_ids).await?;
    assert!(
        pull(&mut s, 10).await?.is_empty(),
        "acked messages do not come again"
    );
    Ok(())
}

#[tokio::test]
async fn seek_to_a_time_delivers_again_what_was_published_from_then() -> Result<(), Error> {
    let server = start(10).await?;
    let (mut p, mut s) = setup(server.addr).await?;
    publish(&mut p, &[b"a", b"b"]).await?;
    let got = pull(&mut s, 10).await?;
    ack(
        &mut s,
        &got.iter().map(|m| m.ack_id.clone()).collect::<Vec<_>>(),
    )
    .await?;
    let seek = |seconds, nanos| pb::SeekRequest {
        subscription: SUB.into(),
        target: Some(pb::seek_request::Target::Time(prost_types::Timestamp {
            seconds,
            nanos,
        })),
    };
    // Every message was published at the fixed clock's instant.
    s.seek(seek(1_767_225_600, 250_000_000)).await?;
    assert_eq!(
        pull(&mut s, 10).await?.len(),
        2,
        "at the publish time: again"
    );
    s.seek(seek(1_767_225_600, 250_001_000)).await?;
    assert!(pull(&mut s, 10).await?.is_empty(), "after it: nothing");
    let snapshot = status(
        s.seek(pb::SeekRequest {
            subscription: SUB.into(),
            target: Some(pb::seek_request::Target::Snapshot("x".into())),
        })
        .await,
    );
    assert_eq!(snapshot.code(), Code::Unimplemented);
    Ok(())
}

#[tokio::test]
async fn a_nacked_message_comes_again_and_its_old_ack_id_is_expired() -> Result<(), Error> {
    let server = start(10).await?;
    let (mut p, mut s) = setup(server.addr).await?;
    publish(&mut p, &[b"x"]).await?;
    let first = pull(&mut s, 1).await?;
    let old = first[0].ack_id.clone();
    s.modify_ack_deadline(pb::ModifyAckDeadlineRequest {
        subscription: SUB.into(),
        ack_ids: vec![old.clone()],
        ack_deadline_seconds: 0,
    })
    .await?;
    let again = pull(&mut s, 1).await?;
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].ack_id, old);
    let refused = status(ack(&mut s, std::slice::from_ref(&old)).await);
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("expired"),
        "{}",
        refused.message()
    );
    // The new delivery's ack id works, and the forged one is named as such.
    ack(&mut s, &[again[0].ack_id.clone()]).await?;
    let forged = status(ack(&mut s, &["0.1.000000000000000000000000".into()]).await);
    assert_eq!(forged.code(), Code::InvalidArgument);
    assert!(
        forged.message().contains("not issued by this server"),
        "{}",
        forged.message()
    );
    Ok(())
}

#[tokio::test]
async fn refusals_name_the_problem_and_the_server_stays_up() -> Result<(), Error> {
    let server = start(10).await?;
    let (mut p, mut s) = setup(server.addr).await?;

    let unknown = status(
        s.get_subscription(pb::GetSubscriptionRequest {
            subscription: "projects/acme/subscriptions/nope".into(),
        })
        .await,
    );
    assert_eq!(unknown.code(), Code::NotFound);
    let unknown_topic = status(
        p.publish(pb::PublishRequest {
            topic: "projects/acme/topics/nope".into(),
            messages: vec![message(b"x")],
        })
        .await,
    );
    assert_eq!(unknown_topic.code(), Code::NotFound);
    let range = status(
        s.create_subscription(pb::Subscription {
            name: "projects/acme/subscriptions/slow".into(),
            topic: TOPIC.into(),
            ack_deadline_seconds: 601,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(range.code(), Code::InvalidArgument);
    assert!(
        range.message().contains("ack_deadline_seconds 601"),
        "{}",
        range.message()
    );
    let bad_name = status(
        s.create_subscription(pb::Subscription {
            name: "subscriptions/x".into(),
            topic: TOPIC.into(),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(bad_name.code(), Code::InvalidArgument);
    assert!(
        bad_name
            .message()
            .contains("expected projects/{project}/subscriptions")
    );

    // 100 MB in one publish: refused before it is read, and nothing is stored.
    let huge = status(
        p.publish(pb::PublishRequest {
            topic: TOPIC.into(),
            messages: vec![message(&vec![7u8; 100 * 1024 * 1024])],
        })
        .await,
    );
    assert!(
        matches!(huge.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{huge:?}"
    );
    // 10 MB + 1 in messages within the frame limit: refused by Pub/Sub's own rule.
    let over = status(
        p.publish(pb::PublishRequest {
            topic: TOPIC.into(),
            messages: vec![
                message(&vec![1u8; 5_000_000]),
                message(&vec![1u8; 5_000_001]),
            ],
        })
        .await,
    );
    assert_eq!(over.code(), Code::InvalidArgument);
    assert!(
        over.message().contains("at most 10000000"),
        "{}",
        over.message()
    );
    assert!(pull(&mut s, 10).await?.is_empty());

    // Still serving.
    assert_eq!(publish(&mut p, &[b"after"]).await?, ["0"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streaming_pulls_get_a_bounded_answer() -> Result<(), Error> {
    const STREAMS: usize = 10_000;
    const ALLOWED: usize = 200;
    let server = start(ALLOWED).await?;
    let (mut p, _) = setup(server.addr).await?;
    // Spread over connections: HTTP/2 caps the streams one connection carries.
    let mut channels = Vec::new();
    for _ in 0..50 {
        channels.push(channel(server.addr).await?);
    }
    let mut opens = tokio::task::JoinSet::new();
    for i in 0..STREAMS {
        let mut s = SubscriberClient::new(channels[i % channels.len()].clone());
        opens.spawn(async move {
            let first = pb::StreamingPullRequest {
                subscription: SUB.into(),
                stream_ack_deadline_seconds: 10,
                ..Default::default()
            };
            // The request stream stays open as long as the response is held.
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let _ = tx.send(first).await;
            let result = s
                .streaming_pull(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await;
            (result.map(|r| (r.into_inner(), tx)), i)
        });
    }
    let (mut open, mut refused, mut held) = (0, 0, Vec::new());
    while let Some(joined) = opens.join_next().await {
        match joined?.0 {
            Ok(stream) => {
                open += 1;
                held.push(stream);
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(status.message().contains("--pubsub-max-streams"));
                refused += 1;
            }
        }
    }
    assert_eq!(open, ALLOWED);
    assert_eq!(refused, STREAMS - ALLOWED);
    // Still serving: a publish and a read of the subscription answer.
    assert_eq!(publish(&mut p, &[b"still up"]).await?, ["0"]);
    let mut s = SubscriberClient::new(channel(server.addr).await?);
    let got = s
        .get_subscription(pb::GetSubscriptionRequest {
            subscription: SUB.into(),
        })
        .await?;
    assert_eq!(got.into_inner().topic, TOPIC);
    drop(held);
    Ok(())
}
