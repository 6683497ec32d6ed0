//! `google.pubsub.v1.Publisher`.

use std::sync::Arc;

use googleapis_tonic_google_pubsub_v1::google::pubsub::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert;
use super::generated::publisher_server;
use super::refuse;
use crate::engine::PubSub;
use crate::error::PubSubError;

pub(crate) struct Publisher {
    pub(crate) pubsub: Arc<PubSub>,
}

/// A field Tether does not keep, refused rather than ignored.
fn refuse_field(set: bool, field: &str) -> Result<(), Status> {
    refuse::field(set, field, "topics have only a name")
}

#[tonic::async_trait]
impl publisher_server::Publisher for Publisher {
    async fn create_topic(
        &self,
        request: Request<pb::Topic>,
    ) -> Result<Response<pb::Topic>, Status> {
        let t = request.into_inner();
        refuse_field(!t.labels.is_empty(), "topic.labels")?;
        refuse_field(
            t.message_storage_policy.is_some(),
            "topic.message_storage_policy",
        )?;
        refuse_field(!t.kms_key_name.is_empty(), "topic.kms_key_name")?;
        refuse_field(t.schema_settings.is_some(), "topic.schema_settings")?;
        refuse_field(
            t.message_retention_duration.is_some(),
            "topic.message_retention_duration (retention is the telemetry log's, see docs/telemetry.md)",
        )?;
        refuse_field(
            t.ingestion_data_source_settings.is_some(),
            "topic.ingestion_data_source_settings",
        )?;
        refuse_field(!t.message_transforms.is_empty(), "topic.message_transforms")?;
        refuse_field(!t.tags.is_empty(), "topic.tags")?;
        self.pubsub.create_topic(&t.name).await?;
        Ok(Response::new(convert::topic(t.name)))
    }

    async fn update_topic(
        &self,
        _request: Request<pb::UpdateTopicRequest>,
    ) -> Result<Response<pb::Topic>, Status> {
        Err(refuse::method(
            "UpdateTopic",
            "topics have no settings to change",
        ))
    }

    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let r = request.into_inner();
        let mut messages = Vec::with_capacity(r.messages.len());
        for (i, m) in r.messages.into_iter().enumerate() {
            if !m.ordering_key.is_empty() {
                return Err(PubSubError::Invalid(format!(
                    "messages[{i}].ordering_key is set: Tether has no message ordering; \
                     publish without an ordering key"
                ))
                .into());
            }
            messages.push((m.data, m.attributes.into_iter().collect()));
        }
        let message_ids = self.pubsub.publish(&r.topic, messages).await?;
        Ok(Response::new(pb::PublishResponse { message_ids }))
    }

    async fn get_topic(
        &self,
        request: Request<pb::GetTopicRequest>,
    ) -> Result<Response<pb::Topic>, Status> {
        let name = request.into_inner().topic;
        self.pubsub.get_topic(&name).await?;
        Ok(Response::new(convert::topic(name)))
    }

    async fn list_topics(
        &self,
        request: Request<pb::ListTopicsRequest>,
    ) -> Result<Response<pb::ListTopicsResponse>, Status> {
        let r = request.into_inner();
        let all = self.pubsub.list_topics(&r.project).await?;
        let (names, next_page_token) =
            convert::page(all, |s| s.as_str(), r.page_size, &r.page_token);
        Ok(Response::new(pb::ListTopicsResponse {
            topics: names.into_iter().map(convert::topic).collect(),
            next_page_token,
        }))
    }

    async fn list_topic_subscriptions(
        &self,
        request: Request<pb::ListTopicSubscriptionsRequest>,
    ) -> Result<Response<pb::ListTopicSubscriptionsResponse>, Status> {
        let r = request.into_inner();
        let all = self.pubsub.topic_subscriptions(&r.topic).await?;
        let (subscriptions, next_page_token) =
            convert::page(all, |s| s.as_str(), r.page_size, &r.page_token);
        Ok(Response::new(pb::ListTopicSubscriptionsResponse {
            subscriptions,
            next_page_token,
        }))
    }

    async fn list_topic_snapshots(
        &self,
        _request: Request<pb::ListTopicSnapshotsRequest>,
    ) -> Result<Response<pb::ListTopicSnapshotsResponse>, Status> {
        Err(refuse::method(
            "ListTopicSnapshots",
            "Tether has no snapshots",
        ))
    }

    async fn delete_topic(
        &self,
        request: Request<pb::DeleteTopicRequest>,
    ) -> Result<Response<()>, Status> {
        self.pubsub
            .delete_topic(&request.into_inner().topic)
            .await?;
        Ok(Response::new(()))
    }

    async fn detach_subscription(
        &self,
        _request: Request<pb::DetachSubscriptionRequest>,
    ) -> Result<Response<pb::DetachSubscriptionResponse>, Status> {
        Err(refuse::method(
            "DetachSubscription",
            "delete the subscription instead (DeleteSubscription)",
        ))
    }
}
