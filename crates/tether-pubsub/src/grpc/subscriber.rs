//! `google.pubsub.v1.Subscriber`, but for `StreamingPull` (in `streaming`).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use googleapis_tonic_google_pubsub_v1::google::pubsub::v1 as pb;
use tokio::sync::{Semaphore, watch};
use tonic::{Request, Response, Status, Streaming};

use super::generated::subscriber_server;
use super::refuse;
use super::{convert, streaming};
use crate::engine::{Commit, NewSubscription, PubSub, SubscriptionUpdate};

/// How long a unary `Pull` without `return_immediately` waits for a message.
const PULL_WAIT: Duration = Duration::from_secs(10);

pub(crate) struct Subscriber {
    pub(crate) pubsub: Arc<PubSub>,
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) max_streams: usize,
    pub(crate) stop: watch::Receiver<bool>,
}

/// A field Tether does not keep, refused rather than ignored.
fn refuse_field(set: bool, field: &str) -> Result<(), Status> {
    refuse::field(
        set,
        field,
        "docs/pubsub.md lists the fields a subscription has",
    )
}

/// Refuses every subscription field Tether does not implement, by name.
fn refuse_unsupported(s: &pb::Subscription) -> Result<(), Status> {
    refuse_field(s.bigquery_config.is_some(), "subscription.bigquery_config")?;
    refuse_field(
        s.cloud_storage_config.is_some(),
        "subscription.cloud_storage_config",
    )?;
    refuse_field(s.bigtable_config.is_some(), "subscription.bigtable_config")?;
    refuse_field(
        s.retain_acked_messages,
        "subscription.retain_acked_messages",
    )?;
    refuse_field(
        s.message_retention_duration.is_some(),
        "subscription.message_retention_duration (the telemetry log's retention applies)",
    )?;
    refuse_field(!s.labels.is_empty(), "subscription.labels")?;
    refuse_field(
        s.enable_message_ordering,
        "subscription.enable_message_ordering",
    )?;
    refuse_field(
        s.expiration_policy.is_some(),
        "subscription.expiration_policy",
    )?;
    refuse_field(!s.filter.is_empty(), "subscription.filter")?;
    refuse_field(
        s.dead_letter_policy.is_some(),
        "subscription.dead_letter_policy",
    )?;
    refuse_field(s.detached, "subscription.detached")?;
    refuse_field(
        s.enable_exactly_once_delivery,
        "subscription.enable_exactly_once_delivery (delivery is at-least-once)",
    )?;
    refuse_field(
        !s.message_transforms.is_empty(),
        "subscription.message_transforms",
    )?;
    refuse_field(!s.tags.is_empty(), "subscription.tags")?;
    if let Some(push) = &s.push_config {
        push_config(push)?;
    }
    Ok(())
}

/// The push endpoint of a push config, refusing what Tether does not implement.
fn push_config(push: &pb::PushConfig) -> Result<String, Status> {
    refuse_field(!push.attributes.is_empty(), "push_config.attributes")?;
    refuse_field(
        push.authentication_method.is_some(),
        "push_config.oidc_token (Google-signed tokens)",
    )?;
    refuse_field(
        push.wrapper.is_some(),
        "push_config.pubsub_wrapper / no_wrapper",
    )?;
    Ok(push.push_endpoint.clone())
}

#[tonic::async_trait]
impl subscriber_server::Subscriber for Subscriber {
    async fn create_subscription(
        &self,
        request: Request<pb::Subscription>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let s = request.into_inner();
        refuse_unsupported(&s)?;
        let push_endpoint = match &s.push_config {
            Some(push) => push_config(push)?,
            None => String::new(),
        };
        let backoff = s.retry_policy.as_ref().map(convert::backoff).transpose()?;
        let info = self
            .pubsub
            .create_subscription(NewSubscription {
                name: s.name,
                topic: s.topic,
                ack_deadline_s: s.ack_deadline_seconds,
                push_endpoint,
                backoff,
            })
            .await?;
        Ok(Response::new(convert::subscription(info)))
    }

    async fn get_subscription(
        &self,
        request: Request<pb::GetSubscriptionRequest>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let info = self
            .pubsub
            .get_subscription(&request.into_inner().subscription)
            .await?;
        Ok(Response::new(convert::subscription(info)))
    }

    async fn update_subscription(
        &self,
        request: Request<pb::UpdateSubscriptionRequest>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let r = request.into_inner();
        let s = r.subscription.ok_or_else(|| {
            Status::invalid_argument("subscription is missing: send the fields to change")
        })?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Status::invalid_argument(
                "update_mask is empty: name the fields to change (ack_deadline_seconds, push_config, retry_policy)",
            ));
        }
        let mut update = SubscriptionUpdate::default();
        for path in &paths {
            match path.as_str() {
                "ack_deadline_seconds" => update.ack_deadline_s = Some(s.ack_deadline_seconds),
                "push_config" => {
                    update.push_endpoint =
                        Some(push_config(&s.push_config.clone().unwrap_or_default())?);
                }
                "retry_policy" => {
                    update.backoff =
                        Some(s.retry_policy.as_ref().map(convert::backoff).transpose()?);
                }
                other => {
                    return Err(Status::invalid_argument(format!(
                        "update_mask path {other:?} cannot be changed on Tether: only \
                         ack_deadline_seconds, push_config and retry_policy can"
                    )));
                }
            }
        }
        let info = self.pubsub.update_subscription(&s.name, update).await?;
        Ok(Response::new(convert::subscription(info)))
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let r = request.into_inner();
        let all = self.pubsub.list_subscriptions(&r.project).await?;
        let (page, next_page_token) =
            convert::page(all, |s| s.name.as_str(), r.page_size, &r.page_token);
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: page.into_iter().map(convert::subscription).collect(),
            next_page_token,
        }))
    }

    async fn delete_subscription(
        &self,
        request: Request<pb::DeleteSubscriptionRequest>,
    ) -> Result<Response<()>, Status> {
        self.pubsub
            .delete_subscription(&request.into_inner().subscription)
            .await?;
        Ok(Response::new(()))
    }

    async fn modify_ack_deadline(
        &self,
        request: Request<pb::ModifyAckDeadlineRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        let sub = self.pubsub.subscription(&r.subscription).await?;
        self.pubsub
            .modify_ack_deadline(&sub, &r.ack_ids, r.ack_deadline_seconds)
            .await?
            .into_result("change the deadline of")?;
        Ok(Response::new(()))
    }

    async fn acknowledge(
        &self,
        request: Request<pb::AcknowledgeRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        let sub = self.pubsub.subscription(&r.subscription).await?;
        if r.ack_ids.is_empty() {
            return Err(Status::invalid_argument(
                "ack_ids is empty: name the messages to ack",
            ));
        }
        self.pubsub
            .acknowledge(&sub, &r.ack_ids, Commit::Wait)
            .await?
            .into_result("ack")?;
        Ok(Response::new(()))
    }

    async fn pull(
        &self,
        request: Request<pb::PullRequest>,
    ) -> Result<Response<pb::PullResponse>, Status> {
        #[allow(deprecated)]
        let (name, max, immediately) = {
            let r = request.into_inner();
            (r.subscription, r.max_messages, r.return_immediately)
        };
        let sub = self.pubsub.subscription(&name).await?;
        let max = usize::try_from(max)
            .ok()
            .filter(|m| *m > 0)
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "max_messages is {max}: ask for 1 to 1000 messages"
                ))
            })?;
        let until = (!immediately).then(|| Instant::now() + PULL_WAIT);
        let stream = self.pubsub.stream_id();
        let deliveries = self
            .pubsub
            .pull(&sub, max, stream, sub.ack_deadline_s(), until)
            .await?;
        Ok(Response::new(pb::PullResponse {
            received_messages: deliveries.into_iter().map(convert::received).collect(),
        }))
    }

    type StreamingPullStream = streaming::ResponseStream;

    async fn streaming_pull(
        &self,
        request: Request<Streaming<pb::StreamingPullRequest>>,
    ) -> Result<Response<Self::StreamingPullStream>, Status> {
        streaming::start(
            Arc::clone(&self.pubsub),
            Arc::clone(&self.streams),
            self.max_streams,
            self.stop.clone(),
            request.into_inner(),
        )
        .await
        .map(Response::new)
    }

    async fn modify_push_config(
        &self,
        request: Request<pb::ModifyPushConfigRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        let endpoint = push_config(&r.push_config.unwrap_or_default())?;
        let update = SubscriptionUpdate {
            push_endpoint: Some(endpoint),
            ..SubscriptionUpdate::default()
        };
        self.pubsub
            .update_subscription(&r.subscription, update)
            .await?;
        Ok(Response::new(()))
    }

    async fn get_snapshot(
        &self,
        _request: Request<pb::GetSnapshotRequest>,
    ) -> Result<Response<pb::Snapshot>, Status> {
        Err(refuse::method("GetSnapshot", "Tether has no snapshots"))
    }

    async fn list_snapshots(
        &self,
        _request: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        Err(refuse::method("ListSnapshots", "Tether has no snapshots"))
    }

    async fn create_snapshot(
        &self,
        _request: Request<pb::CreateSnapshotRequest>,
    ) -> Result<Response<pb::Snapshot>, Status> {
        Err(refuse::method("CreateSnapshot", "Tether has no snapshots"))
    }

    async fn update_snapshot(
        &self,
        _request: Request<pb::UpdateSnapshotRequest>,
    ) -> Result<Response<pb::Snapshot>, Status> {
        Err(refuse::method("UpdateSnapshot", "Tether has no snapshots"))
    }

    async fn delete_snapshot(
        &self,
        _request: Request<pb::DeleteSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        Err(refuse::method("DeleteSnapshot", "Tether has no snapshots"))
    }

    async fn seek(
        &self,
        request: Request<pb::SeekRequest>,
    ) -> Result<Response<pb::SeekResponse>, Status> {
        let r = request.into_inner();
        let sub = self.pubsub.subscription(&r.subscription).await?;
        match r.target {
            Some(pb::seek_request::Target::Time(t)) => {
                let micros = t
                    .seconds
                    .saturating_mul(1_000_000)
                    .saturating_add(i64::from(t.nanos / 1000));
                self.pubsub.seek_to_time(&sub, micros).await?;
                Ok(Response::new(pb::SeekResponse {}))
            }
            Some(pb::seek_request::Target::Snapshot(_)) => Err(refuse::method(
                "Seek to a snapshot",
                "Tether has no snapshots; seek to a time instead",
            )),
            None => Err(Status::invalid_argument(
                "seek needs a target: time (or snapshot, which Tether does not have)",
            )),
        }
    }
}
