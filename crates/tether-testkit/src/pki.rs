//! A throwaway CA and a server certificate it signed, ready for rustls servers (the
//! fake server) and for other servers that want PEM files (Mosquitto).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tether_keys::KeyHandle;
use tether_keys::ca::Ca;
use tether_keys::cert::Validity;
use tether_keys::convert::pem_text;
use tether_keys::generate::{KeySpec, generate};

/// A test CA, and a server certificate it signed for some names, as rustls wants them.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate (PEM): what devices trust.
    pub ca_pem: String,
    /// The server's TLS configuration (leaf + CA chain, ECDSA P-256 key).
    pub server: Arc<rustls::ServerConfig>,
    /// The server certificate followed by the CA (PEM), for other servers (Mosquitto).
    pub server_chain_pem: String,
    /// The server's private key (PKCS#8 PEM).
    pub server_key_pem: String,
}

impl TestPki {
    /// A new CA named `ca_name` and a server certificate for `names`, valid from an
    /// hour before `now` for a day.
    pub fn new(ca_name: &str, names: &[&str], now: i64) -> Result<TestPki, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let validity = Validity {
            not_before: now - 3600,
            days: 1,
        };
        let ca_key = generate(KeySpec::Es256).map_err(|e| err(&e))?;
        let ca = Ca::init(
            KeyHandle::Software(ca_key),
            &format!("CN={ca_name}"),
            validity,
        )
        .map_err(|e| err(&e))?;
        let server_key = generate(KeySpec::Es256).map_err(|e| err(&e))?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = ca
            .issue_server(server_key.public_key(), &names, validity)
            .map_err(|e| err(&e))?;
        let chain = vec![
            CertificateDer::from(leaf),
            CertificateDer::from(ca.certificate().der().to_vec()),
        ];
        let server_chain_pem = format!(
            "{}{}",
            pem_text("CERTIFICATE", &chain[0]),
            pem_text("CERTIFICATE", &chain[1])
        );
        let server_key_pem = pem_text("PRIVATE KEY", &server_key.pkcs8_der());
        let key = PrivateKeyDer::Pkcs8(server_key.pkcs8_der().to_vec().into());
        // ring, the workspace's one provider, as the SDK uses.
        let server = rustls::ServerConfig::builder_with_provider(tether_device::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(&e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| err(&e))?;
        Ok(TestPki {
            ca_pem: pem_text("CERTIFICATE", ca.certificate().der()),
            server: Arc::new(server),
            server_chain_pem,
            server_key_pem,
        })
    }
}
