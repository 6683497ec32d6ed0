//! Reading requests: query parameters, JSON bodies with a size limit, `:verb`
//! suffixes and resource names.

use axum::body::Body;
use axum::response::IntoResponse as _;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde_json::Value;
use tether_registry::names::{self, DeviceRef, LocationPath, RegistryPath};

use super::error::{ApiError, ApiResult};

use super::json::Enc;

/// The admin API takes bodies up to 1 MiB (a 256 KB command is ~342 KB of base64).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Google's "system parameters": accepted on every method and not otherwise used.
const SYSTEM_PARAMS: &[&str] = &[
    "$alt",
    "alt",
    "$.xgafv",
    "prettyPrint",
    "$prettyPrint",
    "fields",
    "$fields",
    "key",
    "access_token",
    "quotaUser",
    "callback",
    "upload_protocol",
    "uploadType",
];

/// The query string, decoded, with the parameters a method reads taken out one by one;
/// any left over is refused, as Google's front end refused them.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
    enc: Enc,
}

impl Query {
    /// Decodes `a=1&b=2&b=3`.
    pub fn parse(raw: Option<&str>) -> ApiResult<Query> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut enc = Enc::default();
        for (k, v) in &pairs {
            if k == "$alt" || k == "alt" {
                let mut parts = v.split(';');
                let format = parts.next().unwrap_or("");
                if format != "json" {
                    return Err(ApiError::invalid(format!(
                        "{k}={v}: only JSON is served (use '$alt=json' or leave it out)"
                    )));
                }
                for part in parts {
                    match part.trim() {
                        "enum-encoding=int" => enc.enum_ints = true,
                        "enum-encoding=string" | "" => {}
                        other => {
                            return Err(ApiError::invalid(format!(
                                "{k}={v}: unknown option '{other}' (known: enum-encoding=int)"
                            )));
                        }
                    }
                }
            }
        }
        Ok(Query { pairs, enc })
    }

    /// How enums are written in the response.
    pub fn enc(&self) -> Enc {
        self.enc
    }

    /// All values of a parameter under any of its spellings (repeated keys, as
    /// Google's clients send repeated fields).
    pub fn take_all(&mut self, names: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        self.pairs.retain(|(k, v)| {
            if names.contains(&k.as_str()) {
                out.push(v.clone());
                false
            } else {
                true
            }
        });
        out
    }

    /// One parameter (the last one wins if repeated), empty counted as absent.
    pub fn take(&mut self, names: &[&str]) -> Option<String> {
        self.take_all(names).into_iter().rfind(|v| !v.is_empty())
    }

    /// A non-negative integer parameter.
    pub fn take_count(&mut self, names: &[&str], max: usize) -> ApiResult<usize> {
        let Some(text) = self.take(names) else {
            return Ok(0);
        };
        let n: i64 = text.trim().parse().map_err(|_| {
            ApiError::invalid(format!(
                "Invalid value at '{}' (TYPE_INT32), \"{text}\": expected an integer",
                names[0]
            ))
        })?;
        if n < 0 {
            return Err(ApiError::invalid(format!(
                "{} must not be negative (got {n})",
                names[0]
            )));
        }
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > max {
            return Err(ApiError::invalid(format!(
                "{} must be at most {max} (got {n})",
                names[0]
            )));
        }
        Ok(n)
    }

    /// Fails on any parameter the method does not take.
    pub fn finish(self) -> ApiResult<()> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !SYSTEM_PARAMS.contains(&k.as_str()))
        {
            None => Ok(()),
            Some((k, _)) => Err(ApiError::invalid(format!(
                "Invalid JSON payload received. Unknown name \"{k}\": Cannot bind query parameter. Field '{k}' could not be found in request message."
            ))),
        }
    }
}

/// Reads a JSON body (≤ [`BODY_LIMIT`]); an empty body is `{}`.
pub async fn json_body(body: Body) -> ApiResult<Value> {
    json_body_limited(body, BODY_LIMIT, "the admin API's limit of").await
}

/// [`json_body`] with another size limit (`what` names it in the error).
pub async fn json_body_limited(body: Body, limit: usize, what: &str) -> ApiResult<Value> {
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ApiError::too_large(format!(
                "the request body is larger than {what} {limit} bytes"
            )));
        }
        Err(e) => {
            return Err(ApiError::invalid(format!(
                "the request body could not be read: {e}"
            )));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))
}

/// Splits `dev-1:modifyCloudToDeviceConfig` into the resource and the verb (axum
/// routes the whole segment: it allows one parameter per segment, so `{d}:verb` cannot
/// be a route).
pub fn split_verb(segment: &str) -> (&str, Option<&str>) {
    match segment.split_once(':') {
        Some((id, verb)) => (id, Some(verb)),
        None => (segment, None),
    }
}

/// The error for a URL or verb that is not an API method.
pub fn unknown_method(method: &str, path: &str) -> ApiError {
    ApiError::not_found(format!(
        "Unknown URL: {method} {path} is not a method of the Device Manager API v1 (see /openapi.json)"
    ))
}

/// `projects/P/locations/L`, validated.
pub fn location(project: &str, location: &str) -> ApiResult<LocationPath> {
    Ok(names::parse_location(&format!(
        "projects/{project}/locations/{location}"
    ))?)
}

/// `projects/P/locations/L/registries/R`, validated.
pub fn registry(project: &str, location: &str, registry: &str) -> ApiResult<RegistryPath> {
    Ok(names::parse_registry(&format!(
        "projects/{project}/locations/{location}/registries/{registry}"
    ))?)
}

/// A device segment: an id or a numId.
pub fn device(segment: &str) -> ApiResult<DeviceRef> {
    Ok(DeviceRef::parse(segment)?)
}

/// `router` with every request bounded to `limit`, body reading included: a client that
/// trickles its body, or a handler stuck on a dead store, gets 504 DEADLINE_EXCEEDED
/// instead of holding the connection forever.
pub fn with_deadline(router: axum::Router, limit: std::time::Duration) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| async move {
            match tokio::time::timeout(limit, next.run(request)).await {
                Ok(response) => response,
                Err(_) => ApiError::new(
                    crate::bridge::Code::DeadlineExceeded,
                    format!(
                        "the request did not complete within {} s (the body was sent too \
                         slowly, or the server is overloaded)",
                        limit.as_secs()
                    ),
                )
                .into_response(),
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_int_and_repeated_params() -> ApiResult<()> {
        let mut q = Query::parse(Some(
            "deviceIds=a&deviceIds=b&%24alt=json%3Benum-encoding%3Dint&pageSize=3",
        ))?;
        assert!(q.enc().enum_ints);
        assert_eq!(q.take_all(&["deviceIds", "device_ids"]), ["a", "b"]);
        assert_eq!(q.take_count(&["pageSize", "page_size"], 500)?, 3);
        q.finish()?;
        let mut q = Query::parse(Some("pageSize=501&colour=red"))?;
        assert!(
            q.take_count(&["pageSize"], 500)
                .is_err_and(|e| e.message.contains("at most 500"))
        );
        assert!(
            q.finish()
                .is_err_and(|e| e.message.contains("Unknown name \"colour\""))
        );
        assert!(Query::parse(Some("$alt=proto")).is_err());
        Ok(())
    }

    #[test]
    fn verbs() {
        assert_eq!(
            split_verb("d:modifyCloudToDeviceConfig"),
            ("d", Some("modifyCloudToDeviceConfig"))
        );
        assert_eq!(split_verb("d"), ("d", None));
    }
}
