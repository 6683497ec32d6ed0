//! A client of the HTTP device bridge (IoT Core's `cloudiotdevice` API) for devices
//! that only speak HTTP: `publishEvent`, `setState` and `getConfig`, each carrying the
//! device's JWT as `authorization: Bearer`. The token is minted from the same
//! [`DeviceOptions`] as the MQTT device and reused until the [`RefreshPlan`] says to
//! renew it.
//!
//! ```text
//!  HttpDevice::publish_event ─▶ token (cached, renewed at exp − margin)
//!      ─▶ POST {base}/v1/{device}:publishEvent {binaryData, subFolder}
//!      ◀─ 200 {}  |  HttpError::Refused {status, code, message}
//! ```
//!
//! [`RefreshPlan`]: crate::RefreshPlan

use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::options::{DeviceOptions, DevicePath, SharedSigner};
use crate::refresh::RefreshPlan;
use crate::transport::Security;

/// Why an HTTP bridge call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The client could not be set up (base URL, TLS).
    #[error("HTTP client set-up: {0}")]
    Setup(String),
    /// The JWT could not be minted.
    #[error("cannot mint the device token: {0}")]
    Token(tether_jwt::MintError),
    /// The request did not get an answer (DNS, TCP, TLS, timeout). The text gives the
    /// whole chain of causes, and for a TLS failure what to do about it.
    #[error("HTTP request failed: {}", transport_text(.0))]
    Transport(#[from] reqwest::Error),
    /// The server answered with an error in Google's envelope.
    #[error("{status} {code}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The `google.rpc.Code` name (`UNAUTHENTICATED`, `OUT_OF_RANGE`…).
        code: String,
        /// What the server said.
        message: String,
    },
    /// A success answer that is not what the API returns.
    #[error("unexpected response: {0}")]
    Response(String),
}

/// reqwest's own text names only the URL ("error sending request for url …"): the
/// causes beneath it are what tell a wrong CA from a refused port or a hang-up, so
/// they are joined in, with the TLS cause's fix when there is one.
fn transport_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut hint = None;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        if hint.is_none()
            && let Some(io) = c.downcast_ref::<std::io::Error>()
        {
            hint = tls_hint(io);
        }
        if hint.is_none()
            && let Some(tls) = c.downcast_ref::<rustls::Error>()
        {
            hint = Some(crate::tls::classify(tls).hint());
        }
        cause = c.source();
    }
    if e.is_timeout() {
        text.push_str(
            " (no answer within DeviceOptions::request_timeout: the server or the network \
             is stalled)",
        );
    } else if let Some(hint) = hint {
        text.push_str(&format!(" ({hint})"));
    }
    text
}

/// The fix for a TLS failure carried by `io`, looking through I/O errors wrapped in
/// I/O errors (reqwest wraps tokio-rustls' error once more; `source()` skips both).
fn tls_hint(io: &std::io::Error) -> Option<&'static str> {
    let mut io = io;
    loop {
        let (cause, _) = crate::tls::classify_io(io);
        if cause != crate::TlsCause::Other {
            return Some(cause.hint());
        }
        io = io.get_ref()?.downcast_ref::<std::io::Error>()?;
    }
}

/// A config as `getConfig` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// The server's latest version.
    pub version: i64,
    /// The data, when newer than the local version asked with (or that was 0).
    pub data: Option<Vec<u8>>,
}

/// A device talking to the HTTP bridge.
pub struct HttpDevice {
    base: String,
    device: DevicePath,
    signer: SharedSigner,
    clock: Arc<dyn Clock>,
    refresh: RefreshPlan,
    client: reqwest::Client,
    /// The current token and when to renew it (Unix seconds).
    token: Mutex<Option<(String, u64)>>,
}

impl std::fmt::Debug for HttpDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDevice")
            .field("base", &self.base)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl HttpDevice {
    /// A client for the bridge at `base_url` (e.g. `https://tether.example:8443`),
    /// with the device, signer, clock, refresh plan and root CA of `opts`.
    ///
    /// # Errors
    /// [`HttpError::Setup`] when the client cannot be built.
    pub fn new(base_url: &str, opts: &DeviceOptions) -> Result<Self, HttpError> {
        let tls = match &opts.security {
            Security::Tls(config) => (**config).clone(),
            // Plain: only http:// URLs make sense; an https:// one will not verify.
            Security::Plain => {
                crate::tls::client_config(&[]).map_err(|e| HttpError::Setup(e.to_string()))?
            }
        };
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.request_timeout)
            .build()
            .map_err(|e| HttpError::Setup(e.to_string()))?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            device: opts.device.clone(),
            signer: Arc::clone(&opts.signer),
            clock: Arc::clone(&opts.clock),
            refresh: opts.refresh,
            client,
            token: Mutex::new(None),
        })
    }

    /// Sends telemetry to `subfolder` (empty for none); returns once the server has
    /// durably accepted it.
    ///
    /// # Errors
    /// [`HttpError`].
    pub async fn publish_event(&self, subfolder: &str, payload: &[u8]) -> Result<(), HttpError> {
        let mut body = json!({ "binaryData": STANDARD.encode(payload) });
        if !subfolder.is_empty() {
            body["subFolder"] = json!(subfolder);
        }
        self.post("publishEvent", body).await
    }

    /// Reports the device's state.
    ///
    /// # Errors
    /// [`HttpError`].
    pub async fn set_state(&self, payload: &[u8]) -> Result<(), HttpError> {
        let body = json!({ "state": { "binaryData": STANDARD.encode(payload) } });
        self.post("setState", body).await
    }

    /// The latest config; its data only when newer than `local_version` (0: always).
    ///
    /// # Errors
    /// [`HttpError`] (`OUT_OF_RANGE` when `local_version` is ahead of the server).
    pub async fn get_config(&self, local_version: i64) -> Result<HttpConfig, HttpError> {
        let url = format!(
            "{}/v1/{}/config?localVersion={local_version}",
            self.base, self.device
        );
        let value = self.send(self.client.get(url)).await?;
        let version = value
            .get("version")
            .and_then(|v| match v {
                Value::String(s) => s.parse().ok(),
                other => other.as_i64(),
            })
            .ok_or_else(|| HttpError::Response(format!("no version in {value}")))?;
        // proto3 JSON leaves out empty bytes, so a newer empty config has no field.
        let newer = local_version == 0 || version > local_version;
        let b64 = value
            .get("binaryData")
            .and_then(Value::as_str)
            .unwrap_or("");
        let data = if newer {
            let bytes = STANDARD
                .decode(b64)
                .map_err(|e| HttpError::Response(format!("binaryData: {e}")))?;
            Some(bytes)
        } else {
            None
        };
        Ok(HttpConfig { version, data })
    }

    async fn post(&self, verb: &str, body: Value) -> Result<(), HttpError> {
        let url = format!("{}/v1/{}:{verb}", self.base, self.device);
        self.send(self.client.post(url).json(&body)).await.map(drop)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, HttpError> {
        let token = self.token()?;
        let response = request
            .bearer_auth(token)
            .header("cache-control", "no-cache")
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = if text.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&text).map_err(|e| HttpError::Response(format!("{e}: {text}")))?
        };
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["error"];
        Err(HttpError::Refused {
            status: status.as_u16(),
            code: error["status"].as_str().unwrap_or("UNKNOWN").to_owned(),
            message: error["message"].as_str().unwrap_or(&text).to_owned(),
        })
    }

    /// The cached token, or a new one when it is due for renewal.
    fn token(&self) -> Result<String, HttpError> {
        let now = self.clock.unix_now();
        let mut cached = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((token, renew_at)) = cached.as_ref()
            && now < *renew_at
        {
            return Ok(token.clone());
        }
        let (token, _exp) = crate::token::mint_token(
            &*self.signer,
            &self.device.project,
            now,
            self.refresh.lifetime().as_secs(),
        )
        .map_err(HttpError::Token)?;
        let renew_at = now + self.refresh.reconnect_after().as_secs();
        *cached = Some((token.clone(), renew_at));
        Ok(token)
    }
}
