//! The server's side, through its admin API: the HTTP `Date` (server time) and the
//! device's stored `lastErrorStatus` (Google's JSON).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Admin API access.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// Bearer token, when the server needs one.
    pub token: Option<String>,
}

fn client(limit: Duration) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(limit)
        .build()
        .map_err(|e| e.to_string())
}

fn date(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    let text = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let t: SystemTime = httpdate::parse_http_date(text).ok()?;
    i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()
}

impl Admin {
    /// The server's time from any HTTP response's `Date` header.
    pub async fn server_time(&self, limit: Duration) -> Result<Option<i64>, String> {
        let client = client(limit)?;
        let url = format!("{}/healthz", self.url.trim_end_matches('/'));
        let response = client.get(url).send().await.map_err(|e| e.to_string())?;
        Ok(date(response.headers()))
    }

    /// `GET /v1/{device}`: the parts of the device that explain a refusal.
    pub async fn device(&self, name: &str, limit: Duration) -> Result<Value, String> {
        let client = client(limit)?;
        let url = format!("{}/v1/{name}", self.url.trim_end_matches('/'));
        let mut request = client.get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            let message = body
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(format!("HTTP {status}: {message}"));
        }
        Ok(json!({
            "lastErrorStatus": body.get("lastErrorStatus"),
            "lastErrorTime": body.get("lastErrorTime"),
            "lastHeartbeatTime": body.get("lastHeartbeatTime"),
            "blocked": body.get("blocked"),
            "credentials": body.get("credentials").and_then(Value::as_array).map(Vec::len),
        }))
    }

    /// The device summary once its `lastErrorTime` is at or after `since` (Unix
    /// seconds, server time), polling for up to `wait`: a server stores a refusal a
    /// moment after it sends the CONNACK. The flag says whether the stored error is
    /// that recent; if not, the summary is what the server held when the wait ended.
    pub async fn error_since(
        &self,
        name: &str,
        since: i64,
        limit: Duration,
        wait: Duration,
    ) -> Result<(Value, bool), String> {
        const POLL: Duration = Duration::from_millis(100);
        let polls = wait.as_millis() / POLL.as_millis();
        let mut last = self.device(name, limit).await;
        for _ in 0..polls {
            // A failed read (a hiccup) does not end the wait; the last one decides.
            if let Ok(device) = &last
                && last_error_time(device).is_some_and(|t| t >= since)
            {
                break;
            }
            tokio::time::sleep(POLL).await;
            last = match self.device(name, limit).await {
                Err(e) if last.is_ok() && !e.starts_with("HTTP ") => last,
                read => read,
            };
        }
        let device = last?;
        let fresh = last_error_time(&device).is_some_and(|t| t >= since);
        Ok((device, fresh))
    }
}

/// The device summary's `lastErrorTime`, in Unix seconds.
pub fn last_error_time(device: &Value) -> Option<i64> {
    let text = device.get("lastErrorTime")?.as_str()?;
    tether_iot::UnixTime::parse_rfc3339(text)
        .ok()
        .map(|at| at.secs)
}

/// The `lastErrorStatus.message` of a device summary, when there is one.
pub fn last_error(device: &Value) -> Option<String> {
    device
        .pointer("/lastErrorStatus/message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
}
