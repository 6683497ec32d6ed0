//! Between the engine's types and Google's messages.

use googleapis_tonic_google_pubsub_v1::google::pubsub::v1 as pb;

use crate::engine::{Backoff, Delivery, SubscriptionInfo};
use crate::error::PubSubError;

/// A delivery as a `ReceivedMessage`: `messageId` is the offset, `publishTime`
/// the gateway's time, the attributes IoT Core's.
pub(crate) fn received(d: Delivery) -> pb::ReceivedMessage {
    let us = d.record.message.publish_time;
    let publish_time = prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: i32::try_from(us.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    };
    pb::ReceivedMessage {
        ack_id: d.ack_id,
        message: Some(pb::PubsubMessage {
            data: d.record.message.data,
            attributes: wire_attributes(d.record.message.attributes),
            message_id: d.record.offset.to_string(),
            publish_time: Some(publish_time),
            ordering_key: String::new(),
        }),
        // Pub/Sub sets it only with a dead-letter policy, which Tether has not.
        delivery_attempt: 0,
    }
}

/// A message's attributes as Google's map: moved out when the message holds the
/// only reference, else copied entry by entry (the log's reader shares a set
/// between records: cloning the map first would copy it twice).
fn wire_attributes(
    attributes: tether_log::Attributes,
) -> std::collections::HashMap<String, String> {
    match std::sync::Arc::try_unwrap(attributes) {
        Ok(map) => map.into_iter().collect(),
        Err(shared) => shared.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

/// A subscription as Google's message.
pub(crate) fn subscription(info: SubscriptionInfo) -> pb::Subscription {
    let settings = info.settings;
    let retry_policy = (settings.backoff != Backoff::DEFAULT).then(|| pb::RetryPolicy {
        minimum_backoff: Some(duration(settings.backoff.min_ms)),
        maximum_backoff: Some(duration(settings.backoff.max_ms)),
    });
    pb::Subscription {
        name: info.name,
        topic: info.topic,
        push_config: Some(pb::PushConfig {
            push_endpoint: settings.push_endpoint,
            ..pb::PushConfig::default()
        }),
        ack_deadline_seconds: i32::try_from(settings.ack_deadline_s).unwrap_or(10),
        retry_policy,
        state: pb::subscription::State::Active as i32,
        ..pb::Subscription::default()
    }
}

fn duration(ms: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    }
}

/// Pub/Sub's `RetryPolicy` as a [`Backoff`]; an unset bound takes the default.
pub(crate) fn backoff(policy: &pb::RetryPolicy) -> Result<Backoff, PubSubError> {
    let ms = |d: &Option<prost_types::Duration>, default: u64, field: &str| match d {
        None => Ok(default),
        Some(d) if d.seconds >= 0 && d.nanos >= 0 => Ok(u64::try_from(d.seconds)
            .unwrap_or(u64::MAX)
            .saturating_mul(1000)
            .saturating_add(u64::try_from(d.nanos / 1_000_000).unwrap_or(0))),
        Some(_) => Err(PubSubError::Invalid(format!(
            "retry_policy.{field} is negative"
        ))),
    };
    Backoff::new(
        ms(
            &policy.minimum_backoff,
            Backoff::DEFAULT.min_ms,
            "minimum_backoff",
        )?,
        ms(
            &policy.maximum_backoff,
            Backoff::DEFAULT.max_ms,
            "maximum_backoff",
        )?,
    )
}

/// A topic as Google's message (Tether keeps only its name).
pub(crate) fn topic(name: String) -> pb::Topic {
    pb::Topic {
        name,
        state: pb::topic::State::Active as i32,
        ..pb::Topic::default()
    }
}

/// One page of `items` after `page_token` (the last name of the previous page).
pub(crate) fn page<T>(
    items: Vec<T>,
    name: impl Fn(&T) -> &str,
    page_size: i32,
    page_token: &str,
) -> (Vec<T>, String) {
    let size = usize::try_from(page_size)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(100)
        .min(1000);
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|i| page_token.is_empty() || name(i) > page_token)
        .collect();
    let more = rest.len() > size;
    rest.truncate(size);
    let token = if more {
        rest.last().map(|i| name(i).to_owned()).unwrap_or_default()
    } else {
        String::new()
    };
    (rest, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_continue_after_the_token() {
        let all: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
        let (first, token) = page(all.clone(), |s| s.as_str(), 2, "");
        assert_eq!(first, ["n0", "n1"]);
        let (second, token) = page(all.clone(), |s| s.as_str(), 2, &token);
        assert_eq!(second, ["n2", "n3"]);
        let (last, token) = page(all, |s| s.as_str(), 2, &token);
        assert_eq!(last, ["n4"]);
        assert!(token.is_empty());
    }
}
