//! Describes Pub/Sub's `Publisher` and `Subscriber` services for tonic's code
//! generator. The message types come from `googleapis-tonic-google-pubsub-v1`
//! (generated from Google's .proto files by that crate); only the service
//! shapes are written here, method by method, from Google's API reference.

use tonic_build::manual::{Builder, Method, Service};

const TYPES: &str = "::googleapis_tonic_google_pubsub_v1::google::pubsub::v1";

/// `(rust name, RPC name, request, response, streaming)`.
type Rpc = (&'static str, &'static str, &'static str, &'static str, bool);

const PUBLISHER: &[Rpc] = &[
    ("create_topic", "CreateTopic", "Topic", "Topic", false),
    (
        "update_topic",
        "UpdateTopic",
        "UpdateTopicRequest",
        "Topic",
        false,
    ),
    (
        "publish",
        "Publish",
        "PublishRequest",
        "PublishResponse",
        false,
    ),
    ("get_topic", "GetTopic", "GetTopicRequest", "Topic", false),
    (
        "list_topics",
        "ListTopics",
        "ListTopicsRequest",
        "ListTopicsResponse",
        false,
    ),
    (
        "list_topic_subscriptions",
        "ListTopicSubscriptions",
        "ListTopicSubscriptionsRequest",
        "ListTopicSubscriptionsResponse",
        false,
    ),
    (
        "list_topic_snapshots",
        "ListTopicSnapshots",
        "ListTopicSnapshotsRequest",
        "ListTopicSnapshotsResponse",
        false,
    ),
    (
        "delete_topic",
        "DeleteTopic",
        "DeleteTopicRequest",
        "()",
        false,
    ),
    (
        "detach_subscription",
        "DetachSubscription",
        "DetachSubscriptionRequest",
        "DetachSubscriptionResponse",
        false,
    ),
];

const SUBSCRIBER: &[Rpc] = &[
    (
        "create_subscription",
        "CreateSubscription",
        "Subscription",
        "Subscription",
        false,
    ),
    (
        "get_subscription",
        "GetSubscription",
        "GetSubscriptionRequest",
        "Subscription",
        false,
    ),
    (
        "update_subscription",
        "UpdateSubscription",
        "UpdateSubscriptionRequest",
        "Subscription",
        false,
    ),
    (
        "list_subscriptions",
        "ListSubscriptions",
        "ListSubscriptionsRequest",
        "ListSubscriptionsResponse",
        false,
    ),
    (
        "delete_subscription",
        "DeleteSubscription",
        "DeleteSubscriptionRequest",
        "()",
        false,
    ),
    (
        "modify_ack_deadline",
        "ModifyAckDeadline",
        "ModifyAckDeadlineRequest",
        "()",
        false,
    ),
    (
        "acknowledge",
        "Acknowledge",
        "AcknowledgeRequest",
        "()",
        false,
    ),
    ("pull", "Pull", "PullRequest", "PullResponse", false),
    (
        "streaming_pull",
        "StreamingPull",
        "StreamingPullRequest",
        "StreamingPullResponse",
        true,
    ),
    (
        "modify_push_config",
        "ModifyPushConfig",
        "ModifyPushConfigRequest",
        "()",
        false,
    ),
    (
        "get_snapshot",
        "GetSnapshot",
        "GetSnapshotRequest",
        "Snapshot",
        false,
    ),
    (
        "list_snapshots",
        "ListSnapshots",
        "ListSnapshotsRequest",
        "ListSnapshotsResponse",
        false,
    ),
    (
        "create_snapshot",
        "CreateSnapshot",
        "CreateSnapshotRequest",
        "Snapshot",
        false,
    ),
    (
        "update_snapshot",
        "UpdateSnapshot",
        "UpdateSnapshotRequest",
        "Snapshot",
        false,
    ),
    (
        "delete_snapshot",
        "DeleteSnapshot",
        "DeleteSnapshotRequest",
        "()",
        false,
    ),
    ("seek", "Seek", "SeekRequest", "SeekResponse", false),
];

fn service(name: &str, rpcs: &[Rpc]) -> Service {
    let ty = |t: &str| {
        if t == "()" {
            // google.protobuf.Empty is `()` in prost; the generator wants a path.
            "crate::grpc::Empty".to_owned()
        } else {
            format!("{TYPES}::{t}")
        }
    };
    let mut builder = Service::builder().name(name).package("google.pubsub.v1");
    for &(rust, rpc, input, output, streaming) in rpcs {
        let mut method = Method::builder()
            .name(rust)
            .route_name(rpc)
            .input_type(ty(input))
            .output_type(ty(output))
            .codec_path("::tonic_prost::ProstCodec");
        if streaming {
            method = method.client_streaming().server_streaming();
        }
        builder = builder.method(method.build());
    }
    builder.build()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Clients too: `tether pubsub` and the tests speak to the server with them. No
    // transport helpers: callers bring their own channel.
    Builder::new()
        .build_client(true)
        .build_transport(false)
        .compile(&[
            service("Publisher", PUBLISHER),
            service("Subscriber", SUBSCRIBER),
        ]);
}
