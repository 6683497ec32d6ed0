//! The token debugger: `tether jwt diagnose` on the server, against the registered keys
//! of a device when one is named. The token is neither logged nor stored.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use serde_json::{Value, json};
use tether_jwt::{Context, Diagnosis, Finding, PublicKey};
use tether_registry::names::parse_device;

use super::ConsoleState;
use crate::api::error::{ApiError, ApiResult};
use crate::api::request::json_body_limited;

/// Largest request: a token is at most a few KiB (an RS256 one with big claims).
const BODY_LIMIT: usize = 64 * 1024;

/// One finding as `tether jwt diagnose --json` prints it.
pub fn finding_json(f: &Finding) -> Value {
    json!({
        "code": f.code.as_str(),
        "severity": f.severity.as_str(),
        "segment": f.segment.map(|s| s.as_str()),
        "offset": f.offset,
        "message": f.message,
        "fix": f.fix,
    })
}

/// A diagnosis as `tether jwt diagnose --json` prints it.
pub fn diagnosis_json(d: &Diagnosis) -> Value {
    json!({
        "valid": d.is_valid(),
        "algorithm": d.algorithm.map(|a| a.as_str()),
        "header": d.header,
        "claims": d.claims,
        "verified_with_key": d.verified_with.map(|i| i + 1),
        "findings": d.findings.iter().map(finding_json).collect::<Vec<_>>(),
    })
}

fn text<'a>(body: &'a Value, key: &str) -> ApiResult<Option<&'a str>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(format!("{key} must be a string"))),
    }
}

/// `{"token": "…", "device": "projects/p/locations/l/registries/r/devices/d"}`
/// (`device` optional; without it `project` may name the expected `aud`): the
/// diagnosis, and the keys the signature was checked against.
pub(super) async fn diagnose(
    State(state): State<ConsoleState>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let body = json_body_limited(body, BODY_LIMIT, "the token debugger's limit of").await?;
    if let Some(unknown) = body.as_object().and_then(|o| {
        o.keys()
            .find(|k| !matches!(k.as_str(), "token" | "device" | "project"))
    }) {
        return Err(ApiError::invalid(format!(
            "unknown field '{unknown}' (known: token, device, project)"
        )));
    }
    let token = match body.get("token") {
        Some(Value::String(t)) => t.as_str(),
        _ => {
            return Err(ApiError::invalid(
                "token is required: paste the device's JWT",
            ));
        }
    };
    let mut project = text(&body, "project")?.map(str::to_owned);
    let mut keys: Vec<PublicKey> = Vec::new();
    let mut listed = Vec::new();
    let mut skipped = Vec::new();
    if let Some(name) = text(&body, "device")? {
        let (registry, device_ref) = parse_device(name)?;
        let device = state.api.store.get_device(&registry, &device_ref).await?;
        project = Some(registry.project.clone());
        let now = state.api.now().secs();
        for (i, c) in device.credentials.iter().enumerate() {
            // The gateway ignores an expired key: so does the debugger.
            if let Some(expired) = c.expiration_time.filter(|t| t.secs() <= now) {
                skipped.push(format!(
                    "credentials[{i}] ({}) expired at {}: the gateway no longer accepts it",
                    c.public_key.format.name(),
                    crate::api::json::time::format(expired)
                ));
                continue;
            }
            match tether_registry::parse_key(&c.public_key.key) {
                Ok(key) => {
                    listed.push(json!({
                        "credential": i,
                        "label": key.label(),
                        "fingerprint": key.fingerprint().to_string(),
                    }));
                    keys.push(key);
                }
                Err(why) => skipped.push(format!(
                    "credentials[{i}] ({}) cannot be used: {why}",
                    c.public_key.format.name()
                )),
            }
        }
    }
    let ctx = Context {
        project: project.as_deref(),
        now: Some(state.api.now().secs()),
        keys: &keys,
        skew_secs: state.jwt.skew_secs,
        encoding: state.jwt.encoding,
        ..Context::default()
    };
    let d = tether_jwt::diagnose(token, &ctx);
    let mut out = diagnosis_json(&d);
    if let Value::Object(o) = &mut out {
        o.insert("project".into(), json!(project));
        o.insert("device".into(), json!(text(&body, "device")?));
        o.insert("keys".into(), Value::Array(listed));
        o.insert("skippedKeys".into(), json!(skipped));
    }
    Ok(Json(out))
}
