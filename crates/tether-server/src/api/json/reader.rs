//! Strict reading of request JSON into the model, with Google's error wording.
//!
//! Every field is looked up by its lowerCamelCase JSON name and by its proto
//! snake_case name; what is left over at the end is an unknown field (400, as Google
//! rejected them). `null` is the same as absent, as in proto3 JSON.

use base64::Engine as _;
use serde_json::{Map, Value};
use tether_registry::model::Timestamp;

use super::ProtoEnum;
use super::time;
use crate::api::error::{ApiError, ApiResult};

/// `logLevel` → `log_level`.
pub fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `log_level` → `logLevel`.
pub fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn shown(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// A type error at a field: `Invalid value at 'device.blocked' (TYPE_BOOL), "yes": …`.
pub fn invalid_value(at: &str, proto_type: &str, v: &Value, rule: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid value at '{at}' ({proto_type}), {}: {rule}",
        shown(v)
    ))
}

/// A JSON object being read; `at` is its path for messages (`device.credentials[0]`).
#[derive(Debug)]
pub struct Obj {
    at: String,
    map: Map<String, Value>,
}

impl Obj {
    /// Reads `value` as an object (`null` is an empty one).
    pub fn new(value: Value, at: &str) -> ApiResult<Obj> {
        match value {
            Value::Object(map) => Ok(Obj {
                at: at.to_string(),
                map,
            }),
            Value::Null => Ok(Obj {
                at: at.to_string(),
                map: Map::new(),
            }),
            other => Err(invalid_value(
                if at.is_empty() { "(request body)" } else { at },
                "TYPE_MESSAGE",
                &other,
                "expected a JSON object",
            )),
        }
    }

    /// The path of a field of this object.
    pub fn path(&self, camel: &str) -> String {
        if self.at.is_empty() {
            camel.to_string()
        } else {
            format!("{}.{camel}", self.at)
        }
    }

    /// Takes a field by either spelling; `None` when absent or null.
    pub fn take(&mut self, camel: &str) -> ApiResult<Option<(Value, String)>> {
        let snake = snake_case(camel);
        let a = self.map.remove(camel);
        let b = if snake != camel {
            self.map.remove(&snake)
        } else {
            None
        };
        let v = match (a, b) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(format!(
                    "Invalid JSON payload received. Field '{}' is given twice, as '{camel}' and as '{snake}'",
                    self.path(camel)
                )));
            }
            (Some(v), None) | (None, Some(v)) => v,
            (None, None) => return Ok(None),
        };
        if v.is_null() {
            return Ok(None);
        }
        Ok(Some((v, self.path(camel))))
    }

    /// Drops an output-only field: accepted and ignored, as Google did (clients send
    /// back what they read).
    pub fn ignore(&mut self, camel: &str) {
        self.map.remove(camel);
        self.map.remove(&snake_case(camel));
    }

    /// A string field.
    pub fn string(&mut self, camel: &str) -> ApiResult<Option<String>> {
        match self.take(camel)? {
            Some((Value::String(s), _)) => Ok(Some(s)),
            Some((v, at)) => Err(invalid_value(&at, "TYPE_STRING", &v, "expected a string")),
            None => Ok(None),
        }
    }

    /// A bool field.
    pub fn boolean(&mut self, camel: &str) -> ApiResult<Option<bool>> {
        match self.take(camel)? {
            Some((Value::Bool(b), _)) => Ok(Some(b)),
            Some((v, at)) => Err(invalid_value(
                &at,
                "TYPE_BOOL",
                &v,
                "expected true or false",
            )),
            None => Ok(None),
        }
    }

    /// An int64 field: a JSON number or a decimal string (proto3 JSON writes strings).
    pub fn int64(&mut self, camel: &str) -> ApiResult<Option<i64>> {
        match self.take(camel)? {
            Some((v, at)) => int64_value(&v, &at).map(Some),
            None => Ok(None),
        }
    }

    /// A bytes field in base64 (standard or URL-safe, padded or not).
    pub fn bytes(&mut self, camel: &str) -> ApiResult<Option<Vec<u8>>> {
        match self.take(camel)? {
            Some((Value::String(s), at)) => decode_base64(&s)
                .map(Some)
                .map_err(|rule| invalid_value(&at, "TYPE_BYTES", &Value::String(s), &rule)),
            Some((v, at)) => Err(invalid_value(
                &at,
                "TYPE_BYTES",
                &v,
                "expected a base64 string",
            )),
            None => Ok(None),
        }
    }

    /// A `google.protobuf.Timestamp` field.
    pub fn timestamp(&mut self, camel: &str) -> ApiResult<Option<Timestamp>> {
        match self.take(camel)? {
            Some((Value::String(s), at)) => time::parse(&s).map(Some).map_err(|rule| {
                invalid_value(&at, "google.protobuf.Timestamp", &Value::String(s), &rule)
            }),
            Some((v, at)) => Err(invalid_value(
                &at,
                "google.protobuf.Timestamp",
                &v,
                "expected an RFC 3339 string",
            )),
            None => Ok(None),
        }
    }

    /// An enum field, by name or by number.
    pub fn enumeration<E: ProtoEnum>(&mut self, camel: &str) -> ApiResult<Option<E>> {
        match self.take(camel)? {
            Some((v, at)) => enum_value(&v, &at).map(Some),
            None => Ok(None),
        }
    }

    /// A message field.
    pub fn object(&mut self, camel: &str) -> ApiResult<Option<Obj>> {
        match self.take(camel)? {
            Some((v, at)) => Obj::new(v, &at).map(Some),
            None => Ok(None),
        }
    }

    /// A repeated field: each element with its path (`field[3]`).
    pub fn array(&mut self, camel: &str) -> ApiResult<Vec<(Value, String)>> {
        match self.take(camel)? {
            Some((Value::Array(items), at)) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (v, format!("{at}[{i}]")))
                .collect()),
            Some((v, at)) => Err(invalid_value(&at, "TYPE_MESSAGE", &v, "expected a list")),
            None => Ok(Vec::new()),
        }
    }

    /// A `map<string, string>` field, in key order.
    pub fn string_map(&mut self, camel: &str) -> ApiResult<Option<Vec<(String, String)>>> {
        match self.take(camel)? {
            Some((Value::Object(map), at)) => map
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    other => Err(invalid_value(
                        &format!("{at}[{k}]"),
                        "TYPE_STRING",
                        &other,
                        "map values must be strings",
                    )),
                })
                .collect::<ApiResult<Vec<_>>>()
                .map(Some),
            Some((v, at)) => Err(invalid_value(
                &at,
                "TYPE_MESSAGE",
                &v,
                "expected an object of string values",
            )),
            None => Ok(None),
        }
    }

    /// Fails on any field not taken: Google's "Unknown name" error.
    pub fn finish(self) -> ApiResult<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) if self.at.is_empty() => Err(ApiError::invalid(format!(
                "Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."
            ))),
            Some(k) => Err(ApiError::invalid(format!(
                "Invalid JSON payload received. Unknown name \"{k}\" at '{}': Cannot find field.",
                self.at
            ))),
        }
    }
}

/// An int64 from a JSON number or decimal string.
pub fn int64_value(v: &Value, at: &str) -> ApiResult<i64> {
    let parsed = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| invalid_value(at, "TYPE_INT64", v, "expected an integer"))
}

/// A uint64 from a JSON number or decimal string.
pub fn uint64_value(v: &Value, at: &str) -> ApiResult<u64> {
    let parsed = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| invalid_value(at, "TYPE_UINT64", v, "expected an unsigned integer"))
}

/// An enum by proto name or number.
pub fn enum_value<E: ProtoEnum>(v: &Value, at: &str) -> ApiResult<E> {
    let found = match v {
        Value::String(s) => E::from_name(s).or_else(|| s.parse().ok().and_then(E::from_number)),
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .and_then(E::from_number),
        _ => None,
    };
    found.ok_or_else(|| {
        let names: Vec<String> = E::all()
            .iter()
            .map(|e| format!("{} ({})", e.proto_name(), e.proto_number()))
            .collect();
        invalid_value(
            at,
            "TYPE_ENUM",
            v,
            &format!("expected one of {}", names.join(", ")),
        )
    })
}

/// Decodes base64 in the standard or URL-safe alphabet, with or without `=` padding.
pub fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    let lenient =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, lenient);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient);
    let text = s.trim();
    standard
        .decode(text)
        .or_else(|_| url_safe.decode(text))
        .map_err(|e| format!("not valid base64 (standard or URL-safe alphabet): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_variants_decode_alike() {
        let data = [0xfbu8, 0xff, 0xfe, 0x01];
        for text in ["+//+AQ==", "+//+AQ", "-__-AQ==", "-__-AQ"] {
            assert_eq!(decode_base64(text).as_deref(), Ok(&data[..]), "{text}");
        }
        assert!(decode_base64("not base64!").is_err());
    }

    #[test]
    fn both_spellings_and_unknown_names() -> ApiResult<()> {
        let mut o = Obj::new(json!({"log_level": "INFO", "foo": 1}), "device")?;
        assert_eq!(o.string("logLevel")?.as_deref(), Some("INFO"));
        assert_eq!(
            o.finish().err().map(|e| e.message).as_deref(),
            Some(
                "Invalid JSON payload received. Unknown name \"foo\" at 'device': Cannot find field."
            )
        );
        let mut o = Obj::new(json!({"logLevel": 1, "log_level": 2}), "device")?;
        assert!(
            o.int64("logLevel")
                .is_err_and(|e| e.message.contains("given twice"))
        );
        Ok(())
    }

    #[test]
    fn int64_and_type_errors() {
        assert_eq!(int64_value(&json!("42"), "x").ok(), Some(42));
        assert_eq!(int64_value(&json!(42), "x").ok(), Some(42));
        let e =
            Obj::new(json!({"blocked": "yes"}), "device").and_then(|mut o| o.boolean("blocked"));
        assert_eq!(
            e.err().map(|e| e.message).as_deref(),
            Some("Invalid value at 'device.blocked' (TYPE_BOOL), \"yes\": expected true or false")
        );
    }
}
