//! NATS JetStream sink: the scale-out option (`--nats`).
//!
//! Subject mapping: the notification topic `projects/{project}/topics/{topic}`
//! is published on `{prefix}.{project}.{topic}` (prefix `tether.telemetry` by
//! default). Each of the two tokens is escaped so that it is one valid NATS
//! token and the mapping can be reversed: every byte outside `[A-Za-z0-9_-]`
//! becomes `%XX` (so `.` → `%2E`, `:` → `%3A`, `%` → `%25`). Example:
//! `projects/acme/topics/dev.events` → `tether.telemetry.acme.dev%2Eevents`.
//!
//! Attributes travel as NATS headers under their IoT Core names, plus
//! `Tether-Publish-Time` (unix µs). The durability point is JetStream's publish
//! ack: [`Sink::publish`] returns `Ok` only after every message of the batch
//! has been acked by the stream (file storage).
//!
//! The sink is also the stream's [`TelemetryReader`](crate::TelemetryReader)
//! (`reader`): offsets are the stream's sequence numbers.

pub mod durable;
mod reader;

use std::collections::BTreeMap;
use std::str::FromStr;

use async_nats::header::{HeaderMap, HeaderName, HeaderValue};
use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use tether_log::{Message, percent};

use crate::{Sink, SinkError};

/// The header carrying [`Message::publish_time`].
pub const PUBLISH_TIME_HEADER: &str = "Tether-Publish-Time";

/// Where and how to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// The JetStream stream, created if missing.
    pub stream: String,
    /// The subject prefix; the stream captures `{prefix}.>`.
    pub subject_prefix: String,
}

impl NatsConfig {
    /// Stream `TETHER_TELEMETRY`, prefix `tether.telemetry`.
    ///
    /// The stream deliberately captures `tether.telemetry.>`, not all of
    /// `tether.>`, so traffic between gateway nodes (config, commands) on other
    /// `tether.` subjects is not stored.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream: "TETHER_TELEMETRY".into(),
            subject_prefix: "tether.telemetry".into(),
        }
    }
}

/// Why the NATS sink failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The server could not be reached or refused us.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The URL tried.
        url: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// The stream could not be looked up or created.
    #[error("cannot create or find JetStream stream {stream}: {source}")]
    Stream {
        /// The stream name.
        stream: String,
        /// The client's error.
        #[source]
        source: jetstream::context::CreateStreamError,
    },
    /// The topic name is not `projects/{project}/topics/{topic}`.
    #[error("notification topic {topic:?} cannot be mapped to a NATS subject: {reason}")]
    InvalidTopic {
        /// The topic as given.
        topic: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A subject could not be mapped back to a topic.
    #[error("NATS subject {subject:?} is not a Tether telemetry subject under {prefix:?}")]
    UnknownSubject {
        /// The subject received.
        subject: String,
        /// The prefix expected.
        prefix: String,
    },
    /// An attribute cannot be carried as a NATS header.
    #[error("attribute {name:?} of a message for topic {topic} cannot be a NATS header: {reason}")]
    Header {
        /// The topic.
        topic: String,
        /// The attribute name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Sending the message failed (before any ack).
    #[error("publishing to {subject} failed: {source}")]
    Publish {
        /// The subject.
        subject: String,
        /// The client's error.
        #[source]
        source: jetstream::context::PublishError,
    },
    /// JetStream did not acknowledge the message (not stored, or timed out).
    #[error("JetStream did not acknowledge the message on {subject}: {source}")]
    Ack {
        /// The subject.
        subject: String,
        /// The client's error.
        #[source]
        source: jetstream::context::PublishError,
    },
}

/// The NATS JetStream sink.
#[derive(Debug, Clone)]
pub struct NatsSink {
    js: jetstream::Context,
    /// The stream (its cached info is not used: it goes stale).
    stream: stream::Stream,
    config: NatsConfig,
}

impl NatsSink {
    /// Connects to `config.url` and ensures the stream exists.
    pub async fn connect(config: NatsConfig) -> Result<Self, NatsError> {
        let client = async_nats::connect(config.url.as_str())
            .await
            .map_err(|source| NatsError::Connect {
                url: config.url.clone(),
                source,
            })?;
        Self::with_client(client, config).await
    }

    /// Uses an existing connection (shared with the delivery hub) and ensures
    /// the stream exists. An existing stream is used as it is configured.
    pub async fn with_client(
        client: async_nats::Client,
        config: NatsConfig,
    ) -> Result<Self, NatsError> {
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.subject_prefix)],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|source| NatsError::Stream {
                stream: config.stream.clone(),
                source,
            })?;
        Ok(Self { js, stream, config })
    }

    /// The JetStream context (for consumers: `tail`, tests).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The configuration in use.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// The subject `topic` is published on.
    pub fn subject_for(&self, topic: &str) -> Result<String, NatsError> {
        subject_for(&self.config.subject_prefix, topic)
    }
}

#[async_trait]
impl Sink for NatsSink {
    async fn publish(&self, batch: Vec<Message>) -> Result<(), SinkError> {
        self.append(batch).await.map(|_| ())
    }

    async fn append(&self, batch: Vec<Message>) -> Result<Vec<u64>, SinkError> {
        // Send everything first, then wait for the acks: the messages are
        // pipelined on one connection, so per-topic order is kept and the
        // batch costs about one round trip.
        let mut acks = Vec::with_capacity(batch.len());
        for m in batch {
            let subject = subject_for(&self.config.subject_prefix, &m.topic)?;
            let headers = headers_for(&m)?;
            let ack = self
                .js
                .publish_with_headers(subject.clone(), headers, m.data.into())
                .await
                .map_err(|source| NatsError::Publish {
                    subject: subject.clone(),
                    source,
                })?;
            acks.push((subject, ack));
        }
        let mut offsets = Vec::with_capacity(acks.len());
        for (subject, ack) in acks {
            let ack = ack
                .await
                .map_err(|source| NatsError::Ack { subject, source })?;
            // The reader's offsets are the stream's sequence numbers.
            offsets.push(ack.sequence);
        }
        Ok(offsets)
    }

    fn name(&self) -> &str {
        "nats-jetstream"
    }
}

/// Maps a notification topic to its subject (see the module docs).
pub fn subject_for(prefix: &str, topic: &str) -> Result<String, NatsError> {
    let invalid = |reason| NatsError::InvalidTopic {
        topic: topic.to_owned(),
        reason,
    };
    let rest = topic
        .strip_prefix("projects/")
        .ok_or_else(|| invalid("it does not start with projects/"))?;
    let (project, topic_id) = rest
        .split_once("/topics/")
        .ok_or_else(|| invalid("it has no /topics/ segment"))?;
    if project.is_empty() || project.contains('/') {
        return Err(invalid("the project id is empty or contains '/'"));
    }
    if topic_id.is_empty() || topic_id.contains('/') {
        return Err(invalid("the topic id is empty or contains '/'"));
    }
    Ok(format!("{prefix}.{}.{}", escape(project), escape(topic_id)))
}

/// Maps a subject back to its notification topic.
pub fn topic_for(prefix: &str, subject: &str) -> Result<String, NatsError> {
    let unknown = || NatsError::UnknownSubject {
        subject: subject.to_owned(),
        prefix: prefix.to_owned(),
    };
    let rest = subject
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('.'))
        .ok_or_else(unknown)?;
    let (project, topic_id) = rest.split_once('.').ok_or_else(unknown)?;
    let project = unescape(project).ok_or_else(unknown)?;
    let topic_id = unescape(topic_id).ok_or_else(unknown)?;
    Ok(format!("projects/{project}/topics/{topic_id}"))
}

/// Rebuilds a [`Message`] from a message read from the stream.
pub fn message_from_nats(prefix: &str, msg: &async_nats::Message) -> Result<Message, NatsError> {
    let topic = topic_for(prefix, msg.subject.as_str())?;
    let mut attributes = BTreeMap::new();
    let mut publish_time = 0;
    if let Some(headers) = &msg.headers {
        for (name, values) in headers.iter() {
            let Some(value) = values.first() else {
                continue;
            };
            if name.as_ref() as &str == PUBLISH_TIME_HEADER {
                publish_time = value.as_str().parse().unwrap_or(0);
            } else {
                attributes.insert(name.to_string(), value.to_string());
            }
        }
    }
    Ok(Message {
        topic,
        data: msg.payload.to_vec(),
        attributes: attributes.into(),
        publish_time,
    })
}

fn headers_for(m: &Message) -> Result<HeaderMap, NatsError> {
    let bad = |name: &str, reason: String| NatsError::Header {
        topic: m.topic.clone(),
        name: name.to_owned(),
        reason,
    };
    let mut headers = HeaderMap::new();
    for (k, v) in m.attributes.iter() {
        let lower = k.to_ascii_lowercase();
        // JetStream acts on Nats-* headers (dedup ids, expectations); ours are reserved.
        if lower.starts_with("nats-") || lower.starts_with("tether-") {
            return Err(bad(
                k,
                "names starting with Nats- or Tether- are reserved".into(),
            ));
        }
        let name = HeaderName::from_str(k).map_err(|e| bad(k, e.to_string()))?;
        let value = HeaderValue::from_str(v).map_err(|e| bad(k, e.to_string()))?;
        headers.insert(name, value);
    }
    headers.insert(PUBLISH_TIME_HEADER, HeaderValue::from(m.publish_time));
    Ok(headers)
}

/// Bytes a subject token keeps as they are (see the module docs).
fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn escape(token: &str) -> String {
    percent::encode(token, |_, b| token_byte(b))
}

fn unescape(token: &str) -> Option<String> {
    percent::decode(token, token_byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_documented_and_reversible() {
        let p = "tether.telemetry";
        assert_eq!(
            subject_for(p, "projects/acme/topics/dev.events")
                .ok()
                .as_deref(),
            Some("tether.telemetry.acme.dev%2Eevents")
        );
        for topic in [
            "projects/acme/topics/t",
            "projects/example.com:proj/topics/a~b+c%d",
            "projects/p/topics/*>",
            "projects/p/topics/sp ace",
        ] {
            let s = subject_for(p, topic).expect("valid topic");
            let tokens: Vec<&str> = s.split('.').collect();
            assert_eq!(tokens.len(), 4, "{s}");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>')
            );
            assert_eq!(topic_for(p, &s).ok().as_deref(), Some(topic));
        }
    }

    #[test]
    fn unmappable_topics_and_subjects_are_refused() {
        for bad in [
            "t",
            "projects/p",
            "projects//topics/t",
            "projects/p/topics/",
            "projects/p/topics/a/b",
        ] {
            assert!(subject_for("x", bad).is_err(), "{bad}");
        }
        for bad in ["x.p", "y.p.t", "x.p.t%2", "x.p.t%zz"] {
            assert!(topic_for("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reserved_and_invalid_headers_are_refused() {
        let mut m = Message {
            topic: "projects/p/topics/t".into(),
            data: vec![],
            attributes: BTreeMap::from([("Nats-Msg-Id".into(), "x".into())]).into(),
            publish_time: 1,
        };
        assert!(headers_for(&m).is_err());
        m.attributes = BTreeMap::from([("deviceId".into(), "a\r\nb".into())]).into();
        assert!(headers_for(&m).is_err());
        m.attributes = BTreeMap::from([("bad:name".into(), "v".into())]).into();
        assert!(headers_for(&m).is_err());
    }
}
