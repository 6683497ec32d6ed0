//! The HTTP client of the admin commands: bearer token, JSON in and out, Google's
//! error envelope turned into [`CliError::Api`].

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::Conn;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server refused the call (exit 1).
    #[error("{message} ({status} {code})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Google status name, e.g. NOT_FOUND.
        code: String,
        /// The server's message.
        message: String,
    },
    /// Bad arguments or unreadable files (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached (exit 2).
    #[error("{0}")]
    Connect(String),
}

/// Talks to one server with one token.
#[derive(Debug)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

fn read_token(conn: &Conn) -> Result<String, CliError> {
    if let Ok(token) = std::env::var("TETHER_ADMIN_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_string());
    }
    let path = &conn.token_file;
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!(
            "no admin token: set TETHER_ADMIN_TOKEN or point --token-file at the file `tether serve` wrote \
             (cannot read {}: {e})",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::Usage(format!("{} is empty", path.display())));
    }
    Ok(token.to_string())
}

impl Client {
    /// A client for `conn.server` with the admin token from the environment or file.
    pub fn new(conn: &Conn) -> Result<Client, CliError> {
        // reqwest is built without a bundled provider; ring is the project's one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let token = read_token(conn)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| CliError::Usage(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            base: conn.server.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    /// Calls `METHOD /v1/{path}` with query parameters and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}/v1/{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            CliError::Connect(format!(
                "cannot reach the server at {} — is `tether serve` running? ({e})",
                self.base
            ))
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| {
            CliError::Connect(format!(
                "the server at {} closed the response: {e}",
                self.base
            ))
        })?;
        let value: Value = if text.trim().is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_str(&text).map_err(|_| {
                CliError::Connect(format!(
                    "{} answered {status} with something that is not JSON — is it a Tether server?",
                    self.base
                ))
            })?
        };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let error = &value["error"];
        Err(CliError::Api {
            status,
            code: error["status"].as_str().unwrap_or("UNKNOWN").to_string(),
            message: error["message"]
                .as_str()
                .unwrap_or("the server gave no message")
                .to_string(),
        })
    }

    /// GET.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, CliError> {
        self.call(Method::GET, path, query, None).await
    }

    /// POST with a body.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, CliError> {
        self.call(Method::POST, path, &[], Some(body)).await
    }

    /// PATCH with `updateMask`.
    pub async fn patch(&self, path: &str, mask: &[&str], body: Value) -> Result<Value, CliError> {
        self.call(
            Method::PATCH,
            path,
            &[("updateMask", mask.join(","))],
            Some(body),
        )
        .await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::DELETE, path, &[], None).await
    }

    /// Follows `nextPageToken` until `limit` items (0 = all) are read from `field`.
    pub async fn list_all(
        &self,
        path: &str,
        field: &str,
        query: &[(&str, String)],
        limit: usize,
    ) -> Result<Vec<Value>, CliError> {
        let mut items = Vec::new();
        let mut token = String::new();
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            if !token.is_empty() {
                q.push(("pageToken", token.clone()));
            }
            let page = self.get(path, &q).await?;
            if let Some(list) = page[field].as_array() {
                items.extend(list.iter().cloned());
            }
            token = page["nextPageToken"].as_str().unwrap_or("").to_string();
            if token.is_empty() || (limit > 0 && items.len() >= limit) {
                break;
            }
        }
        if limit > 0 {
            items.truncate(limit);
        }
        Ok(items)
    }
}
