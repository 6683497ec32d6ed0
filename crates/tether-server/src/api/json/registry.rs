//! `DeviceRegistry` in proto3 JSON.

use serde_json::Value;
use tether_registry::model::{
    DeviceRegistry, EventNotificationConfig, RegistryCredential, StateNotificationConfig,
};

use super::reader::Obj;
use super::{Enc, Out};
use crate::api::error::ApiResult;

/// A `DeviceRegistry` as read from a request body.
#[derive(Debug, Clone, Default)]
pub struct RegistryInput {
    /// `id` as given.
    pub id: String,
    /// `name` as given (ignored: the URL names the registry).
    pub name: Option<String>,
    /// The fields that were given (`path` is left empty).
    pub registry: DeviceRegistry,
}

/// Reads a `DeviceRegistry` body; `x509Details` is output only and ignored.
pub fn parse_registry(body: Value, at: &str) -> ApiResult<RegistryInput> {
    let mut o = Obj::new(body, at)?;
    let mut input = RegistryInput {
        id: o.string("id")?.unwrap_or_default(),
        name: o.string("name")?,
        ..RegistryInput::default()
    };
    let r = &mut input.registry;
    for (v, at) in o.array("eventNotificationConfigs")? {
        let mut e = Obj::new(v, &at)?;
        r.event_notification_configs.push(EventNotificationConfig {
            subfolder_matches: e.string("subfolderMatches")?.unwrap_or_default(),
            pubsub_topic_name: e.string("pubsubTopicName")?.unwrap_or_default(),
        });
        e.finish()?;
    }
    if let Some(mut s) = o.object("stateNotificationConfig")? {
        r.state_notification_config = Some(StateNotificationConfig {
            pubsub_topic_name: s.string("pubsubTopicName")?.unwrap_or_default(),
        });
        s.finish()?;
    }
    if let Some(mut m) = o.object("mqttConfig")? {
        r.mqtt_state = m.enumeration("mqttEnabledState")?.unwrap_or_default();
        m.finish()?;
    }
    if let Some(mut h) = o.object("httpConfig")? {
        r.http_state = h.enumeration("httpEnabledState")?.unwrap_or_default();
        h.finish()?;
    }
    r.log_level = o.enumeration("logLevel")?.unwrap_or_default();
    for (v, at) in o.array("credentials")? {
        let mut c = Obj::new(v, &at)?;
        let mut credential = RegistryCredential::default();
        if let Some(mut p) = c.object("publicKeyCertificate")? {
            credential.format = p.enumeration("format")?.unwrap_or_default();
            credential.certificate = p.string("certificate")?.unwrap_or_default();
            p.ignore("x509Details");
            p.finish()?;
        }
        c.finish()?;
        r.credentials.push(credential);
    }
    o.finish()?;
    Ok(input)
}

fn render_credential(c: &RegistryCredential, enc: Enc) -> Value {
    let details = c.x509_details.as_ref().map(|x| {
        Out::new(enc)
            .string("issuer", &x.issuer)
            .string("subject", &x.subject)
            .time("startTime", x.start_time)
            .time("expiryTime", x.expiry_time)
            .string("signatureAlgorithm", &x.signature_algorithm)
            .string("publicKeyType", &x.public_key_type)
            .build()
    });
    let cert = Out::new(enc)
        .enumeration("format", c.format)
        .string("certificate", &c.certificate)
        .message_opt("x509Details", details)
        .build();
    Out::new(enc).message("publicKeyCertificate", cert).build()
}

/// A whole `DeviceRegistry`.
pub fn render_registry(r: &DeviceRegistry, enc: Enc) -> Value {
    let events = r
        .event_notification_configs
        .iter()
        .map(|e| {
            Out::new(enc)
                .string("subfolderMatches", &e.subfolder_matches)
                .string("pubsubTopicName", &e.pubsub_topic_name)
                .build()
        })
        .collect();
    let state = r.state_notification_config.as_ref().map(|s| {
        Out::new(enc)
            .string("pubsubTopicName", &s.pubsub_topic_name)
            .build()
    });
    Out::new(enc)
        .string("id", &r.path.registry)
        .string("name", &r.path.to_string())
        .list("eventNotificationConfigs", events)
        .message_opt("stateNotificationConfig", state)
        .message(
            "mqttConfig",
            Out::new(enc)
                .enumeration("mqttEnabledState", r.mqtt_state)
                .build(),
        )
        .message(
            "httpConfig",
            Out::new(enc)
                .enumeration("httpEnabledState", r.http_state)
                .build(),
        )
        .enumeration("logLevel", r.log_level)
        .list(
            "credentials",
            r.credentials
                .iter()
                .map(|c| render_credential(c, enc))
                .collect(),
        )
        .build()
}
