//! TLS set-up on rustls with ring, and rustls errors turned into a [`TlsCause`].

use std::io;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::error::TlsCause;

/// Why root CAs could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// No `-----BEGIN CERTIFICATE-----` block in the input.
    #[error("no PEM certificate found in the root CA file")]
    Empty,
    /// A PEM block could not be read.
    #[error("root CA PEM: {0}")]
    Pem(String),
    /// rustls refused a certificate as a trust anchor.
    #[error("root CA certificate refused: {0}")]
    Refused(rustls::Error),
    /// rustls refused the protocol versions (cannot happen with ring's defaults).
    #[error("TLS set-up: {0}")]
    Setup(rustls::Error),
}

/// The certificates in a PEM bundle.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(CaError::Empty);
    }
    Ok(certs)
}

/// A client configuration trusting exactly the given roots, on ring, TLS 1.2 and 1.3.
pub fn client_config(roots: &[CertificateDer<'static>]) -> Result<ClientConfig, CaError> {
    let mut store = RootCertStore::empty();
    for cert in roots {
        store.add(cert.clone()).map_err(CaError::Refused)?;
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(CaError::Setup)?
        .with_root_certificates(store)
        .with_no_client_auth())
}

/// ring, the one crypto provider (never aws-lc-rs).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Classifies a rustls error.
pub fn classify(e: &rustls::Error) -> TlsCause {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => TlsCause::UnknownIssuer,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsCause::HostnameMismatch
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsCause::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsCause::NotYetValid
            }
            _ => TlsCause::BadCertificate,
        },
        rustls::Error::AlertReceived(_)
        | rustls::Error::PeerIncompatible(_)
        | rustls::Error::NoCertificatesPresented => TlsCause::Handshake,
        _ => TlsCause::Other,
    }
}

/// Classifies the `io::Error` tokio-rustls returns from a handshake.
pub fn classify_io(e: &io::Error) -> (TlsCause, String) {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => (classify(tls), tls.to_string()),
        None if closed_by_peer(e.kind()) => (
            TlsCause::Closed,
            format!("the server closed the connection during the handshake ({e})"),
        ),
        None => (TlsCause::Other, e.to_string()),
    }
}

/// Whether an I/O error means the peer hung up: a FIN before the handshake ended
/// (tokio-rustls' "tls handshake eof") or a reset (data of ours it never read).
fn closed_by_peer(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hang_up_during_the_handshake_is_closed_not_other() {
        for kind in [io::ErrorKind::UnexpectedEof, io::ErrorKind::ConnectionReset] {
            let (cause, detail) = classify_io(&io::Error::new(kind, "tls handshake eof"));
            assert_eq!(cause, TlsCause::Closed, "{kind:?}");
            assert!(detail.contains("closed the connection"), "{detail}");
        }
        assert!(TlsCause::Closed.hint().contains("--connect-rate-per-ip"));
        let (cause, _) = classify_io(&io::Error::other("something else"));
        assert_eq!(cause, TlsCause::Other);
        // rustls' own verdicts keep their cause, whatever the I/O error's kind.
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(classify_io(&wrapped).0, TlsCause::UnknownIssuer);
    }
}
