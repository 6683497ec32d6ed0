//! IoT Core's limits on resource fields (spec §0 and §4), checked before anything is
//! written. Each message names the field and the rule.

use tether_registry::model::{Device, DeviceRegistry, PublicKeyFormat, limits};

use super::error::{ApiError, ApiResult};

/// Largest command payload (spec §1.8).
pub const COMMAND_BYTES: usize = 256 * 1024;
/// Longest command subfolder.
pub const SUBFOLDER_BYTES: usize = 256;

/// Metadata keys: `[a-zA-Z][-a-zA-Z0-9._+~%]*`, 1–128 characters.
fn check_metadata_key(at: &str, key: &str) -> ApiResult<()> {
    let rule = "keys match [a-zA-Z][-a-zA-Z0-9._+~%]*, 1 to 128 characters";
    let ok_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+' | '~' | '%');
    let valid = !key.is_empty()
        && key.len() <= limits::METADATA_KEY_BYTES
        && key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key.chars().all(ok_char);
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{at}: metadata key '{key}' is invalid ({rule})"
        )))
    }
}

/// Checks the fields a caller sets on a device (create and patch).
pub fn check_device(at: &str, d: &Device) -> ApiResult<()> {
    if d.credentials.len() > limits::DEVICE_CREDENTIALS {
        return Err(ApiError::invalid(format!(
            "{at}.credentials has {} entries; a device has at most {}",
            d.credentials.len(),
            limits::DEVICE_CREDENTIALS
        )));
    }
    for (i, c) in d.credentials.iter().enumerate() {
        if c.public_key.format == PublicKeyFormat::Unspecified {
            return Err(ApiError::invalid(format!(
                "{at}.credentials[{i}].publicKey.format is required: RSA_PEM, RSA_X509_PEM, ES256_PEM or ES256_X509_PEM"
            )));
        }
        if c.public_key.key.trim().is_empty() {
            return Err(ApiError::invalid(format!(
                "{at}.credentials[{i}].publicKey.key is empty: put the PEM text of the public key or certificate"
            )));
        }
    }
    if d.metadata.len() > limits::METADATA_PAIRS {
        return Err(ApiError::invalid(format!(
            "{at}.metadata has {} pairs; at most {} are allowed",
            d.metadata.len(),
            limits::METADATA_PAIRS
        )));
    }
    let mut total = 0usize;
    for (k, v) in &d.metadata {
        check_metadata_key(&format!("{at}.metadata"), k)?;
        if v.len() > limits::METADATA_VALUE_BYTES {
            return Err(ApiError::invalid(format!(
                "{at}.metadata['{k}'] is {} bytes; a value is at most {} bytes",
                v.len(),
                limits::METADATA_VALUE_BYTES
            )));
        }
        total += k.len() + v.len();
    }
    if total > limits::METADATA_TOTAL_BYTES {
        return Err(ApiError::invalid(format!(
            "{at}.metadata is {total} bytes in all; the limit is {} bytes",
            limits::METADATA_TOTAL_BYTES
        )));
    }
    check_config_size(
        &format!("{at}.config.binaryData"),
        d.config.binary_data.len(),
    )
}

/// Config payloads are at most 64 KB.
pub fn check_config_size(at: &str, len: usize) -> ApiResult<()> {
    if len > limits::CONFIG_BYTES {
        Err(ApiError::invalid(format!(
            "{at} is {len} bytes; a device config is at most {} bytes",
            limits::CONFIG_BYTES
        )))
    } else {
        Ok(())
    }
}

/// `projects/{project}/topics/{topic}`, with Pub/Sub's rules for each id.
fn check_topic(at: &str, topic: &str) -> ApiResult<()> {
    let shown = crate::bridge::shown(topic);
    tether_pubsub::names::parse(topic, tether_pubsub::names::Kind::Topic)
        .map(|_| ())
        .map_err(|why| ApiError::invalid(format!("{at} '{shown}' {why}")))
}

/// Checks the fields a caller sets on a registry (create and patch).
pub fn check_registry(at: &str, r: &DeviceRegistry) -> ApiResult<()> {
    let events = &r.event_notification_configs;
    if events.len() > limits::EVENT_NOTIFICATION_CONFIGS {
        return Err(ApiError::invalid(format!(
            "{at}.eventNotificationConfigs has {} entries; at most {} are allowed",
            events.len(),
            limits::EVENT_NOTIFICATION_CONFIGS
        )));
    }
    for (i, e) in events.iter().enumerate() {
        let here = format!("{at}.eventNotificationConfigs[{i}]");
        check_topic(&format!("{here}.pubsubTopicName"), &e.pubsub_topic_name)?;
        if e.subfolder_matches.starts_with('/') {
            return Err(ApiError::invalid(format!(
                "{here}.subfolderMatches '{}' must not start with '/'",
                e.subfolder_matches
            )));
        }
    }
    if let Some(s) = &r.state_notification_config
        && !s.pubsub_topic_name.is_empty()
    {
        check_topic(
            &format!("{at}.stateNotificationConfig.pubsubTopicName"),
            &s.pubsub_topic_name,
        )?;
    }
    if r.credentials.len() > limits::REGISTRY_CREDENTIALS {
        return Err(ApiError::invalid(format!(
            "{at}.credentials has {} certificates; a registry has at most {}",
            r.credentials.len(),
            limits::REGISTRY_CREDENTIALS
        )));
    }
    Ok(())
}

/// A command subfolder: at most 256 bytes, no MQTT wildcards, no NUL, no leading `/`.
pub fn check_subfolder(subfolder: &str) -> ApiResult<()> {
    if subfolder.len() > SUBFOLDER_BYTES {
        return Err(ApiError::invalid(format!(
            "subfolder is {} bytes; at most {SUBFOLDER_BYTES} are allowed",
            subfolder.len()
        )));
    }
    if let Some(bad) = subfolder.chars().find(|c| matches!(c, '+' | '#' | '\0')) {
        return Err(ApiError::invalid(format!(
            "subfolder '{}' contains {bad:?}, which cannot appear in an MQTT topic",
            subfolder.escape_debug()
        )));
    }
    if subfolder.starts_with('/') {
        return Err(ApiError::invalid(format!(
            "subfolder '{subfolder}' must not start with '/': it is appended to /devices/{{id}}/commands/"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_pub_sub_s_rules() {
        for ok in [
            "projects/acme/topics/telemetry",
            "projects/my-project-42/topics/a.b~c+d%20_e-f",
            "projects/example.com:fleet/topics/events",
        ] {
            assert_eq!(check_topic("t", ok), Ok(()), "{ok}");
        }
        let refused = |topic: &str| {
            check_topic("at", topic)
                .err()
                .map(|e| e.message)
                .unwrap_or_default()
        };
        assert!(refused("projects/p/topics/..").contains("3 to 255"));
        assert!(refused("projects/p/topics/../x").contains("expected projects/{project}/topics"));
        assert!(refused("projects/p/topics/...").contains("must start with a letter"));
        assert!(refused("projects/p/topics/ab").contains("3 to 255"));
        assert!(refused("projects/p/topics/Goog-x").contains("must not start with 'goog'"));
        assert!(refused("projects/p/topics/a/b").contains("expected projects/{project}/topics"));
        assert!(refused("projects/P/topics/abc").contains("invalid project id"));
        assert!(refused("projects/../topics/abc").contains("invalid project id"));
        assert!(refused("projects/p-/topics/abc").contains("must not end with '-'"));
        assert!(refused("projects/p/topics/a\nb").contains("'\\n' is not allowed"));
        assert!(refused("topics/abc").contains("is not a topic name"));
    }
}
