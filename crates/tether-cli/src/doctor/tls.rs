//! Step 3: the TLS handshake, and whether the server's chain is trusted by `--ca` and
//! valid for the host name.
//!
//! The handshake runs with a verifier that records the chain and the verdict of
//! rustls' own WebPKI verifier, then lets the handshake finish so the protocol version
//! and cipher can be shown. Nothing is sent over an untrusted connection: an
//! untrusted verdict fails the step, and every later step is skipped.

use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tether_device::TlsCause;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::report::Step;

/// What the verifier saw.
#[derive(Debug, Default)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    verdict: Option<Result<(), rustls::Error>>,
}

#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Seen>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .map(|_| ());
        if let Ok(mut seen) = self.seen.lock() {
            seen.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            seen.verdict = Some(verdict);
        }
        // Finish the handshake to learn the version and cipher; the verdict decides.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A short description of a certificate: subject, and SHA-256 of the DER.
fn describe(der: &[u8]) -> String {
    let subject = tether_keys::Certificate::from_der(der)
        .map(|c| c.subject().to_string())
        .unwrap_or_else(|_| "(unparsable certificate)".into());
    format!("'{subject}' (sha256:{})", fingerprint(der))
}

fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The DNS names and IP addresses a certificate is valid for.
fn names(der: &[u8]) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_string()),
            GeneralName::IPAddress(ip) => match ip.len() {
                4 => <[u8; 4]>::try_from(*ip)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*ip)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The outcome: the step, and the stream when the server is trusted.
pub async fn check(
    tcp: TcpStream,
    host: &str,
    roots: &[CertificateDer<'static>],
    local_now: i64,
    limit: std::time::Duration,
) -> (Step, Option<TlsStream<TcpStream>>) {
    let mut store = RootCertStore::empty();
    for r in roots {
        let _ = store.add(r.clone());
    }
    let provider = tether_device::tls::provider();
    let inner = match WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
    {
        Ok(v) => v,
        Err(e) => {
            let step = Step::fail(
                "tls",
                "--ca holds no usable root certificate",
                e.to_string(),
                "give --ca the PEM file of the root CA that signed the server's certificate",
            );
            return (step, None);
        }
    };
    let recorder = Arc::new(Recorder {
        inner,
        seen: Mutex::new(Seen::default()),
    });
    let config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth(),
        Err(e) => {
            return (
                Step::fail("tls", "TLS set-up failed", e.to_string(), "-"),
                None,
            );
        }
    };
    let server_name = match ServerName::try_from(host.to_string()) {
        Ok(n) => n,
        Err(e) => {
            let step = Step::fail(
                "tls",
                format!("'{host}' is not a TLS server name"),
                e.to_string(),
                "use a DNS name or an IP address as --host",
            );
            return (step, None);
        }
    };
    let sni = match &server_name {
        ServerName::DnsName(_) => format!("SNI: sent '{host}'"),
        _ => "SNI: not sent (the host is an IP address; a server that picks its certificate \
              by name needs a DNS name)"
            .to_string(),
    };
    let peer = tcp.peer_addr().ok();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let Ok(handshake) = tokio::time::timeout(limit, connector.connect(server_name, tcp)).await
    else {
        let step = Step::fail(
            "tls",
            "no answer to the TLS handshake",
            format!(
                "the server took the TCP connection but sent nothing back within {} s",
                limit.as_secs()
            ),
            "a server at its connection cap keeps new connections waiting (Tether: \
             --max-connections), as does a hung server or a proxy that forwards nowhere: \
             check the server's log and its connection count (tether_mqtt_connections in \
             /metrics); --timeout waits longer",
        )
        .with_details(vec![sni]);
        return (step, None);
    };
    let (chain, verdict) = match recorder.seen.lock() {
        Ok(mut s) => (std::mem::take(&mut s.chain), s.verdict.take()),
        Err(_) => (Vec::new(), None),
    };
    let stream = match handshake {
        Ok(s) => s,
        Err(e) => {
            let (cause, detail) = tether_device::tls::classify_io(&e);
            if cause == TlsCause::Closed
                && let Some(peer) = peer
                && super::plain::speaks_plain_mqtt(peer, limit).await
            {
                let step = Step::fail(
                    "tls",
                    "the port speaks MQTT without TLS",
                    format!(
                        "{detail}; a plain MQTT CONNECT on a new connection got a CONNACK: \
                         this port takes MQTT without TLS"
                    ),
                    "IoT Core devices and Tether use MQTT over TLS, on 8883 (or 443); 1883 is \
                     the usual port without TLS (Mosquitto's default listener): give --port \
                     the server's TLS port",
                )
                .with_details(vec![sni]);
                return (step, None);
            }
            let (summary, text) = match cause {
                TlsCause::Closed => ("the server hung up before TLS", detail),
                _ => (
                    "handshake failed",
                    format!("{detail}: the server ended the handshake"),
                ),
            };
            let step = Step::fail("tls", summary, text, cause.hint()).with_details(vec![sni]);
            return (step, None);
        }
    };
    let (_, conn) = stream.get_ref();
    let version = conn
        .protocol_version()
        .map_or("?".into(), |v| format!("{v:?}").replace('_', "."));
    let cipher = conn
        .negotiated_cipher_suite()
        .map_or("?".into(), |c| format!("{:?}", c.suite()));
    let chain_text: Vec<String> = chain.iter().map(|c| describe(c)).collect();
    let mut details = vec![
        format!("{version}, {cipher}"),
        sni,
        format!("chain: {}", chain_text.join(" ← ")),
    ];
    match verdict {
        Some(Ok(())) => {
            details.push(format!("trusted by --ca; valid for '{host}'"));
            (
                Step::pass("tls", format!("{version}, certificate trusted")).with_details(details),
                Some(stream),
            )
        }
        Some(Err(e)) => (untrusted(&e, host, &chain, roots, local_now, details), None),
        None => (
            Step::fail(
                "tls",
                "the server sent no certificate",
                "the handshake finished without a server certificate",
                TlsCause::Handshake.hint(),
            ),
            None,
        ),
    }
}

fn untrusted(
    e: &rustls::Error,
    host: &str,
    chain: &[CertificateDer<'static>],
    roots: &[CertificateDer<'static>],
    local_now: i64,
    details: Vec<String>,
) -> Step {
    let cause = tether_device::tls::classify(e);
    let leaf = chain.first().map(|c| c.as_ref()).unwrap_or_default();
    let text = match cause {
        TlsCause::UnknownIssuer => unknown_issuer(chain, roots),
        TlsCause::HostnameMismatch => {
            let names = names(leaf);
            format!(
                "host name mismatch: the certificate is for [{}], not '{host}'",
                names.join(", ")
            )
        }
        TlsCause::Expired | TlsCause::NotYetValid => {
            let validity = tether_keys::Certificate::from_der(leaf)
                .map(|c| {
                    format!(
                        "valid {} to {}",
                        tether_jwt::time::Utc(c.not_before()),
                        tether_jwt::time::Utc(c.not_after())
                    )
                })
                .unwrap_or_default();
            format!(
                "{e}: the certificate is {validity}; this machine's clock says {}",
                tether_jwt::time::Utc(local_now)
            )
        }
        _ => e.to_string(),
    };
    let fix = match cause {
        TlsCause::HostnameMismatch => {
            let names = names(leaf);
            format!(
                "connect with --host {} (a name in the certificate), or reissue the server \
                 certificate with '{host}' among its names",
                names
                    .first()
                    .map_or("<a name in the certificate>", String::as_str)
            )
        }
        other => other.hint().to_string(),
    };
    let summary = match cause {
        TlsCause::UnknownIssuer => "certificate signed by an unknown issuer",
        TlsCause::HostnameMismatch => "certificate not valid for this host name",
        TlsCause::Expired => "certificate expired",
        TlsCause::NotYetValid => "certificate not valid yet",
        _ => "certificate refused",
    };
    Step::fail("tls", summary, text, fix).with_details(details)
}

fn unknown_issuer(chain: &[CertificateDer<'static>], roots: &[CertificateDer<'static>]) -> String {
    let top = chain.last().map(|c| c.as_ref()).unwrap_or_default();
    let top_cert = tether_keys::Certificate::from_der(top).ok();
    let ends_at = match &top_cert {
        Some(c) if c.is_self_signed() => describe(top),
        Some(c) => format!("'{}' (not sent by the server)", c.issuer()),
        None => "an unparsable certificate".into(),
    };
    let wanted = top_cert.as_ref().map(|c| c.issuer().to_string());
    let ca: Vec<String> = roots.iter().map(|r| describe(r)).collect();
    let same_name = roots.iter().any(|r| {
        tether_keys::Certificate::from_der(r).is_ok_and(|c| Some(c.subject().to_string()) == wanted)
    });
    let mut text = format!(
        "certificate signed by an unknown issuer: the server's chain ends at {ends_at}, \
         which is not in --ca (which holds {})",
        ca.join(", ")
    );
    if same_name {
        text.push_str(
            "; --ca has a CA of the same name but another key: the server's CA was \
             regenerated, or the device has an old copy",
        );
    }
    text
}
