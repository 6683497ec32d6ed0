//! `google.protobuf.FieldMask` as the REST API takes it: a comma-separated list of
//! paths in snake_case or lowerCamelCase (`last_heartbeat_time,gatewayConfig.gatewayType`).

use serde_json::{Map, Value};

use super::reader::{camel_case, snake_case};
use crate::api::error::{ApiError, ApiResult};

/// Parsed mask paths, each as snake_case segments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldMask {
    /// `["gateway_config", "gateway_type"]`, …
    pub paths: Vec<Vec<String>>,
}

impl FieldMask {
    /// Parses `a,b.c`; every path is checked against `known` (snake_case dotted
    /// paths), and the error names the parameter, the path and the allowed ones.
    pub fn parse(param: &str, text: &str, known: &[&str]) -> ApiResult<FieldMask> {
        let mut paths = Vec::new();
        for raw in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let segments: Vec<String> = raw.split('.').map(snake_case).collect();
            let dotted = segments.join(".");
            if !known.contains(&dotted.as_str()) {
                return Err(ApiError::invalid(format!(
                    "{param}: '{raw}' is not a field of this resource; known paths: {}",
                    known.join(", ")
                )));
            }
            paths.push(segments);
        }
        Ok(FieldMask { paths })
    }

    /// Whether the mask names nothing.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The paths as snake_case dotted strings.
    pub fn dotted(&self) -> impl Iterator<Item = String> + '_ {
        self.paths.iter().map(|p| p.join("."))
    }

    /// Keeps only the masked fields of a rendered resource, plus `always` (top-level
    /// JSON names).
    pub fn filter(&self, full: Value, always: &[&str]) -> Value {
        let Value::Object(mut map) = full else {
            return full;
        };
        let mut out = Map::new();
        for key in always {
            if let Some(v) = map.get(*key) {
                out.insert((*key).to_string(), v.clone());
            }
        }
        for path in &self.paths {
            copy_path(&mut map, &mut out, path);
        }
        Value::Object(out)
    }
}

fn copy_path(from: &mut Map<String, Value>, to: &mut Map<String, Value>, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let key = camel_case(first);
    let Some(v) = from.get_mut(&key) else {
        return;
    };
    if rest.is_empty() {
        to.insert(key, v.clone());
        return;
    }
    let (Value::Object(inner_from), entry) = (
        v,
        to.entry(key).or_insert_with(|| Value::Object(Map::new())),
    ) else {
        return;
    };
    if let Value::Object(inner_to) = entry {
        copy_path(inner_from, inner_to, rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_both_spellings_and_filters() -> ApiResult<()> {
        let known = [
            "blocked",
            "gateway_config",
            "gateway_config.gateway_type",
            "last_heartbeat_time",
        ];
        let m = FieldMask::parse(
            "fieldMask",
            "lastHeartbeatTime, gateway_config.gatewayType",
            &known,
        )?;
        assert_eq!(
            m.dotted().collect::<Vec<_>>(),
            ["last_heartbeat_time", "gateway_config.gateway_type"]
        );
        let full = json!({"id": "d", "numId": "1", "blocked": true, "lastHeartbeatTime": "t",
            "gatewayConfig": {"gatewayType": "GATEWAY", "gatewayAuthMethod": "ASSOCIATION_ONLY"}});
        assert_eq!(
            m.filter(full, &["id", "numId"]),
            json!({"id": "d", "numId": "1", "lastHeartbeatTime": "t", "gatewayConfig": {"gatewayType": "GATEWAY"}})
        );
        assert!(
            FieldMask::parse("fieldMask", "colour", &known)
                .is_err_and(|e| e.message.contains("'colour' is not a field"))
        );
        Ok(())
    }
}
