//! First boot: register the device's own key through a provisioning claim
//! (docs/provisioning.md), then connect with that key as usual.
//!
//! ```text
//!  claim options (the new device's path, the CLAIM's signer, endpoints, CA)
//!    ─▶ CONNECT with the claim's token ─▶ SUBSCRIBE /devices/D/provision/result
//!    ─▶ PUBLISH /devices/D/provision {publicKey: raw x‖y or PEM, proof: JWT by the NEW key}
//!    ─▶ the reply: Provisioned, or the server's precise refusal ─▶ DISCONNECT
//! ```
//!
//! A lost reply is harmless: the same request again answers the same success, and a
//! device that was provisioned can simply connect with its own key. The usual pattern:
//!
//! ```no_run
//! # async fn boot(own: tether_device::DeviceOptions, claim: tether_device::DeviceOptions,
//! #   key: tether_device::SharedSigner, public: tether_jwt::PublicKey)
//! #   -> Result<tether_device::Device, Box<dyn std::error::Error>> {
//! use tether_device::{ConnectError, Device, provision};
//! use tether_mqtt::ConnectReturnCode;
//! let device = match Device::connect(own.clone()).await {
//!     // Not registered yet (CONNACK 2): register the key, then connect.
//!     Err(ConnectError::Refused { code: ConnectReturnCode::IdentifierRejected, .. }) => {
//!         provision(&claim, &key, &public).await?;
//!         Device::connect(own).await?
//!     }
//!     other => other?,
//! };
//! # Ok(device) }
//! ```

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tether_jwt::{Claims, KeyType, PublicKey, Signer};
use tether_mqtt::session::Timestamp;
use tether_mqtt::session::client::{ClientConfig, ClientEvent, ClientSession, CloseReason};
use tether_mqtt::{Connect, QoS, TopicFilter, TopicName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use crate::error::{ConnectError, Stage};
use crate::options::{DeviceOptions, DevicePath, SharedSigner};
use crate::transport::{self, BoxIo};

/// How long the proof of possession is valid: it is used at once.
const PROOF_SECS: u64 = 600;
/// How long to wait for the reply after publishing the request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A provisioned device, as the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// The device id.
    pub device_id: String,
    /// Its numId.
    pub num_id: u64,
    /// Its resource name.
    pub name: String,
    /// The registered key's format (`ES256_PEM` for a raw key).
    pub format: String,
    /// The registered key's fingerprint, `sha256:…`: compare it with the key's own.
    pub fingerprint: String,
}

/// Why provisioning did not register the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// The claim's connection failed: network, TLS, or refused (CONNACK 2: no claim of
    /// the registry signed the token; 5: the claim token breaks IoT Core's rules).
    #[error("the provisioning connection failed: {0}")]
    Connect(#[from] ConnectError),
    /// The server refused the request, and said why.
    #[error("provisioning refused ({code}): {message}")]
    Refused {
        /// Google's code name, e.g. `PERMISSION_DENIED`, `ALREADY_EXISTS`.
        code: String,
        /// The precise reason.
        message: String,
    },
    /// The request could not be made (the new key or its proof).
    #[error("cannot make the provisioning request: {0}")]
    Request(String),
    /// No reply in time, or the connection ended first.
    #[error("no provisioning reply: {0}")]
    NoReply(String),
}

/// Registers the key of `new_signer` (whose public key is `new_key`) for the device of
/// `claim.device`, connecting to `claim`'s endpoints with a token signed by
/// `claim.signer` (the provisioning claim's key).
///
/// # Errors
/// [`ProvisionError`]: the connection, the server's refusal with its reason, or no reply.
pub async fn provision(
    claim: &DeviceOptions,
    new_signer: &SharedSigner,
    new_key: &PublicKey,
) -> Result<Provisioned, ProvisionError> {
    let request = request(
        &claim.device,
        &**new_signer,
        new_key,
        claim.clock.unix_now(),
    )?;
    let endpoint = claim
        .endpoints
        .first()
        .ok_or_else(|| ConnectError::Options("no endpoint: add one to the options".into()))?;
    let (token, _) = crate::token::mint_token(
        &*claim.signer,
        &claim.device.project,
        claim.clock.unix_now(),
        claim.refresh.lifetime().as_secs(),
    )
    .map_err(ConnectError::Token)?;
    let (mut io, _) = transport::open(endpoint, &claim.security, claim.connect_timeout).await?;
    let epoch = Instant::now();
    let now = || Timestamp::from_millis(u64::try_from(epoch.elapsed().as_millis()).unwrap_or(0));
    let mut cfg = ClientConfig::default();
    cfg.connack_timeout = claim.connect_timeout;
    let mut session = ClientSession::new(cfg);
    let mut connect = Connect::new(claim.device.client_id());
    connect.keep_alive = claim.keep_alive;
    connect.username = Some("unused".into());
    connect.password = Some(token.into_bytes());
    session
        .connect(&connect, now())
        .map_err(|e| ConnectError::Protocol(e.to_string()))?;
    let device = &claim.device.device;
    let result_topic = format!("/devices/{device}/provision/result");
    let mut exchange = Exchange {
        io: &mut io,
        session: &mut session,
        buf: vec![0; 8192],
    };
    let deadline = Instant::now() + claim.connect_timeout + REPLY_TIMEOUT;
    let mut sent = false;
    loop {
        let event = exchange.next(deadline, &now).await?;
        match event {
            ClientEvent::Connected { .. } if !sent => {
                sent = true;
                let filter = TopicFilter::new(result_topic.clone())
                    .map_err(|e| ProvisionError::Request(e.to_string()))?;
                let topic = TopicName::new(format!("/devices/{device}/provision"))
                    .map_err(|e| ProvisionError::Request(e.to_string()))?;
                exchange
                    .session
                    .subscribe(vec![(filter, QoS::AtLeastOnce)], now())
                    .map_err(|e| ProvisionError::NoReply(e.to_string()))?;
                exchange
                    .session
                    .publish(topic, request.clone(), QoS::AtLeastOnce, now())
                    .map_err(|e| ProvisionError::NoReply(e.to_string()))?;
            }
            ClientEvent::Message {
                topic,
                payload,
                ack,
                ..
            } if topic.as_str() == result_topic => {
                if let Some(id) = ack {
                    exchange.session.ack(id, now());
                }
                exchange.session.disconnect();
                let _ = exchange.flush().await;
                return reply(&payload);
            }
            ClientEvent::Closed(CloseReason::Refused(code)) => {
                return Err(ConnectError::refused(code).into());
            }
            ClientEvent::Closed(CloseReason::ConnAckTimeout) => {
                return Err(ConnectError::Timeout {
                    stage: Stage::ConnAck,
                }
                .into());
            }
            ClientEvent::Closed(other) => {
                return Err(ProvisionError::NoReply(format!(
                    "the server closed the provisioning session: {other}"
                )));
            }
            _ => {}
        }
    }
}

/// The request's JSON for `device`: the new key (raw `x‖y` for P-256, PEM for RSA) and
/// its proof, signed by `signer` at `iat` (Unix seconds).
///
/// # Errors
/// [`ProvisionError::Request`]: the signer does not fit the key, or failed.
pub fn request(
    device: &DevicePath,
    signer: &dyn Signer,
    key: &PublicKey,
    iat: u64,
) -> Result<Vec<u8>, ProvisionError> {
    let spki = key.spki_der();
    let public_key = match key.key_type() {
        KeyType::EcP256 => json!({
            "format": "ES256_RAW",
            "key": base64::engine::general_purpose::STANDARD.encode(spki.get(spki.len().saturating_sub(64)..).unwrap_or_default()),
        }),
        KeyType::Rsa => json!({
            "format": "RSA_PEM",
            "key": tether_keys::convert::pem_text("PUBLIC KEY", spki),
        }),
    };
    if signer.algorithm() != key.algorithm() {
        return Err(ProvisionError::Request(format!(
            "the new signer makes {} signatures but the new key is for {}",
            signer.algorithm(),
            key.algorithm()
        )));
    }
    let claims = Claims {
        aud: &device.project,
        iat,
        exp: iat + PROOF_SECS,
    };
    let id = &device.device;
    let len = tether_jwt::max_proof_len(signer.algorithm(), device.project.len(), id.len());
    let mut buf = vec![0u8; len];
    let n = tether_jwt::mint_proof(signer, &claims, id, &mut buf)
        .map_err(|e| ProvisionError::Request(format!("cannot sign the proof: {e}")))?;
    buf.truncate(n);
    let proof = String::from_utf8_lossy(&buf).into_owned();
    Ok(json!({"publicKey": public_key, "proof": proof})
        .to_string()
        .into_bytes())
}

/// What a reply on `/devices/D/provision/result` says.
///
/// # Errors
/// [`ProvisionError::Refused`] with the server's reason, or
/// [`ProvisionError::NoReply`] for a payload that is not a reply.
pub fn reply(payload: &[u8]) -> Result<Provisioned, ProvisionError> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| ProvisionError::NoReply(format!("the reply is not JSON: {e}")))?;
    if let Some(error) = value.get("error") {
        return Err(ProvisionError::Refused {
            code: error["code"].as_str().unwrap_or("UNKNOWN").to_owned(),
            message: error["message"].as_str().unwrap_or("").to_owned(),
        });
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let device = &value["device"];
    Ok(Provisioned {
        device_id: text(&device["id"]),
        num_id: device["numId"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or_default(),
        name: text(&device["name"]),
        format: text(&value["credential"]["format"]),
        fingerprint: text(&value["credential"]["fingerprint"]),
    })
}

/// The socket and the session of the exchange.
struct Exchange<'a> {
    io: &'a mut BoxIo,
    session: &'a mut ClientSession,
    buf: Vec<u8>,
}

impl Exchange<'_> {
    async fn flush(&mut self) -> std::io::Result<()> {
        while let Some(bytes) = self.session.poll_transmit() {
            self.io.write_all(&bytes).await?;
        }
        self.io.flush().await
    }

    /// Writes what is queued and waits for the session's next event.
    async fn next(
        &mut self,
        deadline: Instant,
        now: &impl Fn() -> Timestamp,
    ) -> Result<ClientEvent, ProvisionError> {
        loop {
            self.flush()
                .await
                .map_err(|e| ProvisionError::NoReply(format!("write: {e}")))?;
            if let Some(event) = self.session.poll_event() {
                return Ok(event);
            }
            let n = tokio::time::timeout_at(deadline, self.io.read(&mut self.buf))
                .await
                .map_err(|_| ProvisionError::NoReply("no reply in time".into()))?
                .map_err(|e| ProvisionError::NoReply(format!("read: {e}")))?;
            if n == 0 {
                return Err(ProvisionError::NoReply(
                    "the server closed the connection".into(),
                ));
            }
            self.session.handle_input(&self.buf[..n], now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_read_as_success_or_the_server_s_reason() {
        let ok = br#"{"device":{"id":"sensor-1","numId":"42","name":"projects/p/locations/l/registries/r/devices/sensor-1"},"credential":{"format":"ES256_PEM","fingerprint":"sha256:ab"}}"#;
        let p = reply(ok).expect("success");
        assert_eq!((p.device_id.as_str(), p.num_id), ("sensor-1", 42));
        assert_eq!(p.fingerprint, "sha256:ab");
        let refused = br#"{"error":{"code":"PERMISSION_DENIED","message":"the proof is not signed by the submitted ES256 key"}}"#;
        match reply(refused) {
            Err(ProvisionError::Refused { code, message }) => {
                assert_eq!(code, "PERMISSION_DENIED");
                assert!(message.contains("not signed"));
            }
            other => panic!("a refusal: {other:?}"),
        }
        assert!(matches!(reply(b"nope"), Err(ProvisionError::NoReply(_))));
    }
}
