//! Why a connection could not be made or a message not sent, split by who can fix it:
//! the network path ([`ConnectError::Dns`], [`ConnectError::Tcp`], timeouts), the TLS
//! trust set-up ([`ConnectError::Tls`]), the device's credentials
//! ([`ConnectError::Refused`], [`ConnectError::Token`]) or the options
//! ([`ConnectError::Options`]); plus what a gateway hears on its errors topic
//! ([`GatewayError`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tether_jwt::MintError;
use tether_mqtt::ConnectReturnCode;
use tether_mqtt::codec::v5::ReasonCode;

use crate::endpoints::Endpoint;

/// Which part of connecting ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Resolving the host name.
    Dns,
    /// The TCP handshake.
    Tcp,
    /// The TLS handshake.
    Tls,
    /// Waiting for CONNACK after CONNECT.
    ConnAck,
}

impl Stage {
    /// What waiting at this stage usually means, and what to check.
    pub fn hint(self) -> &'static str {
        match self {
            Stage::Dns => "the resolver did not answer: check the device's DNS server and route",
            Stage::Tcp => {
                "no answer to the TCP handshake: a firewall drops the packets, or the host is \
                 down; try port 443 where 8883 is blocked"
            }
            Stage::Tls => {
                "the server took the TCP connection but did not answer the TLS handshake: a \
                 server at its connection cap keeps new connections waiting (Tether: \
                 --max-connections), as does a hung server or a proxy that forwards nowhere"
            }
            Stage::ConnAck => {
                "the server did not answer CONNECT: it is overloaded, or the port is not an \
                 MQTT server"
            }
        }
    }
}

/// What went wrong in the TLS handshake, classified from rustls' error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsCause {
    /// The server's chain does not end at a CA in the configured roots: wrong CA.
    UnknownIssuer,
    /// The certificate is not valid for the host name connected to.
    HostnameMismatch,
    /// The certificate has expired (or the device clock is far ahead).
    Expired,
    /// The certificate is not valid yet (or the device clock is behind).
    NotYetValid,
    /// The certificate is malformed, revoked, or not meant for a TLS server.
    BadCertificate,
    /// The host is not a valid TLS server name.
    InvalidServerName,
    /// No common protocol version or cipher suite, or the server sent an alert.
    Handshake,
    /// The server closed the connection (or reset it) before the handshake finished,
    /// without a TLS alert: what a server shedding connects does (Tether, when an
    /// address connects faster than its per-address limit), and what a port that does
    /// not speak TLS does.
    Closed,
    /// Anything else.
    Other,
}

impl TlsCause {
    /// What to do about it.
    pub fn hint(self) -> &'static str {
        match self {
            TlsCause::UnknownIssuer => {
                "give the device the root CA that signed the server's certificate (a `tether \
                 serve` prints its CA path at start: DATA_DIR/ca.pem)"
            }
            TlsCause::HostnameMismatch => {
                "connect with a host name listed in the server certificate, or reissue the \
                 certificate with this name"
            }
            TlsCause::Expired | TlsCause::NotYetValid => {
                "check the device clock (SNTP); otherwise renew the server certificate"
            }
            TlsCause::BadCertificate => "reissue the server certificate for TLS server use",
            TlsCause::InvalidServerName => "use a DNS name or an IP address as the host",
            TlsCause::Handshake => {
                "the server and device share no TLS version or cipher suite (TLS 1.2+ with \
                 ECDHE is needed)"
            }
            TlsCause::Closed => {
                "the server hung up before TLS: it may be shedding connects (Tether closes \
                 those from an address that connects faster than its --connect-rate-per-ip, \
                 100 a second by default, which many devices behind one NAT or proxy share); \
                 retry with backoff, and check that the port speaks TLS (8883 or 443)"
            }
            TlsCause::Other => "check that the port speaks TLS (8883 or 443)",
        }
    }
}

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The options cannot work (no endpoints, a bad plan).
    #[error("configuration: {0}")]
    Options(String),
    /// The host name did not resolve.
    #[error("DNS: cannot resolve '{host}': {source}")]
    Dns {
        /// The host.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// Binding the local address failed (the interface is down or has no such address).
    #[error("cannot bind the local address {local}: {source}")]
    Bind {
        /// The address.
        local: std::net::IpAddr,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The TCP connection failed (refused, unreachable).
    #[error("TCP: cannot connect to {addr}: {source}")]
    Tcp {
        /// The address tried last.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A step took too long.
    #[error("timed out during {stage:?} ({})", stage.hint())]
    Timeout {
        /// The step.
        stage: Stage,
    },
    /// The TLS handshake failed.
    #[error("TLS: {detail} ({})", cause.hint())]
    Tls {
        /// The classified cause.
        cause: TlsCause,
        /// rustls' description.
        detail: String,
    },
    /// The server refused the CONNECT.
    #[error("refused with CONNACK {}: {meaning}{}; {hint}", code.as_u8(), said(server_reason.as_deref()))]
    Refused {
        /// The return code (for an MQTT 5 refusal, the 3.1.1 code closest to its
        /// reason code).
        code: ConnectReturnCode,
        /// What the code means.
        meaning: &'static str,
        /// What usually causes it with an IoT Core server, and the fix.
        hint: &'static str,
        /// MQTT 5: the server's reason code and Reason String, e.g. `0x87 (Not
        /// authorized): the JWT's aud is 'other', expected the project 'acme'`.
        server_reason: Option<String>,
        /// MQTT 5: the Connect Reason Code itself.
        reason_code: Option<ReasonCode>,
    },
    /// The token could not be minted (key, signer or clock problem).
    #[error("cannot mint the token: {0}")]
    Token(MintError),
    /// The server closed the connection or broke the protocol before CONNACK.
    #[error("MQTT: {0}")]
    Protocol(String),
    /// Every endpoint failed; one error per endpoint, in order of preference.
    #[error("every endpoint failed: {}", list(.0))]
    AllEndpoints(Vec<(Endpoint, ConnectError)>),
}

fn said(reason: Option<&str>) -> String {
    reason.map_or_else(String::new, |r| format!(" (the server says {r})"))
}

fn list(errors: &[(Endpoint, ConnectError)]) -> String {
    errors
        .iter()
        .map(|(e, err)| format!("{}:{}: {err}", e.host, e.port))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ConnectError {
    /// A refusal for a CONNACK code, with its meaning and the usual IoT Core cause.
    pub fn refused(code: ConnectReturnCode) -> Self {
        let (meaning, hint) = connack_meaning(code);
        ConnectError::Refused {
            code,
            meaning,
            hint,
            server_reason: None,
            reason_code: None,
        }
    }

    /// A refusal by an MQTT 5 server: its reason code and Reason String, filed under
    /// the closest 3.1.1 code.
    pub fn refused_v5(code: ReasonCode, reason: Option<&str>) -> Self {
        let closest = match code {
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION => {
                ConnectReturnCode::UnacceptableProtocolVersion
            }
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => ConnectReturnCode::IdentifierRejected,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD | ReasonCode::BAD_AUTHENTICATION_METHOD => {
                ConnectReturnCode::BadUserNameOrPassword
            }
            ReasonCode::SERVER_UNAVAILABLE
            | ReasonCode::SERVER_BUSY
            | ReasonCode::SERVER_SHUTTING_DOWN
            | ReasonCode::CONNECTION_RATE_EXCEEDED => ConnectReturnCode::ServerUnavailable,
            _ => ConnectReturnCode::NotAuthorized,
        };
        let (meaning, hint) = connack_meaning(closest);
        let server_reason = match reason {
            Some(text) => format!("{code}: {text}"),
            None => code.to_string(),
        };
        ConnectError::Refused {
            code: closest,
            meaning,
            hint,
            server_reason: Some(server_reason),
            reason_code: Some(code),
        }
    }

    /// True when another endpoint might do better (network and TLS failures), false
    /// when the server answered (a refusal) or the device itself is at fault.
    pub fn is_endpoint_failure(&self) -> bool {
        matches!(
            self,
            ConnectError::Dns { .. }
                | ConnectError::Bind { .. }
                | ConnectError::Tcp { .. }
                | ConnectError::Timeout { .. }
                | ConnectError::Tls { .. }
                | ConnectError::Protocol(_)
                | ConnectError::AllEndpoints(_)
        )
    }
}

/// What a CONNACK code means, and what usually causes it on an IoT Core server.
pub fn connack_meaning(code: ConnectReturnCode) -> (&'static str, &'static str) {
    match code {
        ConnectReturnCode::Accepted => ("connection accepted", ""),
        ConnectReturnCode::UnacceptableProtocolVersion => (
            "unacceptable protocol version",
            "the server speaks only MQTT 3.1.1 (protocol level 4)",
        ),
        ConnectReturnCode::IdentifierRejected => (
            "identifier rejected",
            "the client id is malformed or names a device the server does not know: check \
             projects/P/locations/L/registries/R/devices/D (the device id is case-sensitive)",
        ),
        ConnectReturnCode::ServerUnavailable => (
            "server unavailable",
            "the server's back end is down; retry later",
        ),
        ConnectReturnCode::BadUserNameOrPassword => (
            "bad user name or password",
            "the password must be the JWT; send a user name (e.g. 'unused') so libraries \
             do not drop the password",
        ),
        ConnectReturnCode::NotAuthorized => (
            "not authorized",
            "the JWT was refused: aud must be the project id, iat/exp within 10 min of the \
             server's clock, signed by a key registered for the device; run `tether doctor` \
             and see the device's lastErrorStatus",
        ),
    }
}

/// Why a message could not be published.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// QoS 0 needs a connection; QoS 1 messages wait for one instead.
    #[error("not connected")]
    NotConnected,
    /// The device was shut down before the message was acknowledged.
    #[error("the device is shut down")]
    Closed,
    /// The topic or subfolder is invalid.
    #[error("invalid topic: {0}")]
    Topic(String),
    /// The MQTT session refused the request (QoS 2, too many in flight).
    #[error("{0}")]
    Session(String),
    /// The gateway could not attach the device (the server's errors topic said why).
    #[error("attach refused: {0}")]
    Attach(Arc<GatewayError>),
}

pub use tether_iot::{GatewayError, GatewayErrorType, MqttMessageInfo};

/// Reads a message of the gateway's `/devices/{gateway}/errors` topic; a payload that
/// is not the documented JSON is kept as the description (type `UNPARSED`).
pub(crate) fn parse_gateway_error(payload: &[u8]) -> GatewayError {
    serde_json::from_slice(payload).unwrap_or_else(|_| GatewayError::unparsed(payload))
}
