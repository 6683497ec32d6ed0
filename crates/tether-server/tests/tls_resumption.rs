//! TLS session resumption on the MQTT listener: a device that reconnects (every token
//! refresh does) skips the certificate signature and key exchange of a full
//! handshake. TLS 1.3 with the server's tickets, TLS 1.2 with its session cache.

mod mqtt_support;

use std::sync::Arc;
use std::time::Duration;

use mqtt_support::*;
use rustls::HandshakeKind;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Handshakes with `config` and returns what kind of handshake it was and the version.
async fn handshake(
    gw: &Gateway,
    config: &Arc<rustls::ClientConfig>,
) -> (Option<HandshakeKind>, Option<rustls::ProtocolVersion>) {
    let tcp = TcpStream::connect(("127.0.0.1", gw.port()))
        .await
        .expect("tcp");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let (_, conn) = tls.get_ref();
    let kind = conn.handshake_kind();
    let version = conn.protocol_version();
    // TLS 1.3 tickets arrive after the handshake: read until the server goes quiet
    // (it waits for a CONNECT) so the client stores them.
    let mut buf = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_millis(300), tls.read(&mut buf)).await;
    (kind, version)
}

/// A client of one TLS version that trusts the gateway's CA (rustls clients keep a
/// session cache by default).
fn limited_to(
    ca: &std::path::Path,
    version: &'static rustls::SupportedProtocolVersion,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA cert")).expect("CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .expect("version")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[tokio::test]
async fn a_reconnecting_device_resumes_its_tls_session() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    for (label, config) in [
        ("TLS 1.3", limited_to(&gw.ca_path, &rustls::version::TLS13)),
        ("TLS 1.2", limited_to(&gw.ca_path, &rustls::version::TLS12)),
    ] {
        let (first, version) = handshake(&gw, &config).await;
        assert_eq!(
            first,
            Some(HandshakeKind::Full),
            "{label}: first connection"
        );
        let expected = if label == "TLS 1.3" {
            rustls::ProtocolVersion::TLSv1_3
        } else {
            rustls::ProtocolVersion::TLSv1_2
        };
        assert_eq!(version, Some(expected));
        let (second, _) = handshake(&gw, &config).await;
        assert_eq!(
            second,
            Some(HandshakeKind::Resumed),
            "{label}: the reconnect resumes"
        );
    }
    // A client without the session (a new device, or one that rebooted) still works.
    let fresh = limited_to(&gw.ca_path, &rustls::version::TLS13);
    assert_eq!(handshake(&gw, &fresh).await.0, Some(HandshakeKind::Full));
    gw.shutdown().await;
    Ok(())
}
