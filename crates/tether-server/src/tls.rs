//! TLS for the device listeners: rustls on ring, TLS 1.2 and 1.3 only, session
//! resumption (server-side cache and TLS 1.3 tickets), any SNI accepted.
//!
//! ```text
//!  --tls-cert/--tls-key given ──▶ load them
//!  otherwise, in DATA_DIR:  ca.pem + ca.key       (created once: the CA devices trust)
//!                           server.pem + server.key (ECDSA P-256, issued by that CA for
//!                                                    the host names; reused on restart,
//!                                                    re-issued 30 days before expiry)
//! ```
//!
//! Devices only need the host name and `ca.pem` changed (IoT Core compatibility:
//! client certificates play no part in authentication, so none is requested).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::ServerSessionMemoryCache;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tether_jwt::Algorithm;
use tether_keys::ca::Ca;
use tether_keys::cert::Validity;
use tether_keys::convert::pem_text;
use tether_keys::generate::{KeySpec, generate};
use tether_keys::{Certificate, KeyHandle};

/// The embedded CA's certificate, relative to the data directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The embedded CA's private key (mode 0600).
pub const CA_KEY_FILE: &str = "ca.key";
/// The server certificate issued by the embedded CA.
pub const SERVER_CERT_FILE: &str = "server.pem";
/// The server's private key (mode 0600).
pub const SERVER_KEY_FILE: &str = "server.key";

const CA_DAYS: u32 = 3650;
const SERVER_DAYS: u32 = 397;
/// Re-issue the server certificate when it has less than this left.
const RENEW_BEFORE_SECS: i64 = 30 * 86_400;
/// Server-side TLS session cache entries (TLS 1.2 ids and 1.3 stateful resumption).
const SESSION_CACHE: usize = 4096;
/// TLS 1.3 tickets sent after each handshake. rustls sends two, for clients that open
/// connections in parallel; a device holds one connection and resumes it with one
/// ticket, and each ticket costs the server an encryption and a record per connect.
const TLS13_TICKETS: usize = 1;

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// The embedded CA in `data_dir`, issuing a certificate for `host_names`.
    Embedded {
        /// Directory of `ca.pem`, `ca.key`, `server.pem`, `server.key`.
        data_dir: PathBuf,
        /// DNS names and IP addresses for the certificate (see [`default_host_names`]).
        host_names: Vec<String>,
    },
    /// The operator's own certificate chain and key (PEM files).
    Files {
        /// Leaf first, then intermediates.
        cert: PathBuf,
        /// PKCS#8, SEC1 or PKCS#1 private key.
        key: PathBuf,
    },
}

/// A ready TLS configuration and, for the embedded CA, the file devices must trust.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    /// The rustls server configuration.
    pub config: Arc<ServerConfig>,
    /// `DATA_DIR/ca.pem` for the embedded CA; `None` for the operator's certificate.
    pub ca_path: Option<PathBuf>,
    /// Whether the CA was created by this call (first start).
    pub ca_created: bool,
}

/// Why TLS could not be set up. Messages name the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {why}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The embedded CA could not issue.
    #[error("embedded CA: {0}")]
    Ca(String),
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// This machine's host name, when it has one.
pub(crate) fn this_host() -> Option<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(host.trim().to_owned()).filter(|h| !h.is_empty())
}

/// `localhost`, this machine's host name, `127.0.0.1` and `::1`.
pub fn default_host_names() -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    if let Some(host) = this_host().filter(|h| h != "localhost") {
        names.push(host);
    }
    names.push("127.0.0.1".to_owned());
    names.push("::1".to_owned());
    names
}

/// Loads or creates the certificate and builds the rustls configuration. `now` (Unix
/// seconds) dates new certificates and decides renewal.
///
/// # Errors
/// [`TlsError`] naming the file or step that failed.
pub fn setup(source: &TlsSource, now: i64) -> Result<TlsSetup, TlsError> {
    match source {
        TlsSource::Files { cert, key } => Ok(TlsSetup {
            config: server_config(read_chain(cert)?, read_key(key)?)?,
            ca_path: None,
            ca_created: false,
        }),
        TlsSource::Embedded {
            data_dir,
            host_names,
        } => {
            std::fs::create_dir_all(data_dir).map_err(|source| TlsError::Io {
                path: data_dir.clone(),
                source,
            })?;
            let (ca, ca_created) = load_or_create_ca(data_dir, now)?;
            let cert_path = data_dir.join(SERVER_CERT_FILE);
            let key_path = data_dir.join(SERVER_KEY_FILE);
            if ca_created || !server_cert_usable(&cert_path, &key_path, &ca, now) {
                issue_server_cert(&ca, host_names, &cert_path, &key_path, now)?;
            }
            let ca_path = data_dir.join(CA_CERT_FILE);
            tracing::info!(
                ca = %ca_path.display(),
                created = ca_created,
                "embedded CA: devices must trust this certificate"
            );
            Ok(TlsSetup {
                config: server_config(read_chain(&cert_path)?, read_key(&key_path)?)?,
                ca_path: Some(ca_path),
                ca_created,
            })
        }
    }
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    config.send_tls13_tickets = TLS13_TICKETS;
    Ok(Arc::new(config))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |why: String| TlsError::Pem {
        path: path.to_path_buf(),
        why,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_err("no CERTIFICATE block".into()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        why: format!("no usable private key ({e})"),
    })
}

fn load_or_create_ca(dir: &Path, now: i64) -> Result<(Ca, bool), TlsError> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    if cert_path.exists() && key_path.exists() {
        let cert = read_chain(&cert_path)?
            .into_iter()
            .next()
            .ok_or_else(|| TlsError::Ca("empty CA file".into()))?;
        let cert = Certificate::from_der(&cert).map_err(|e| TlsError::Pem {
            path: cert_path.clone(),
            why: e.to_string(),
        })?;
        let key = KeyHandle::open(&key_path.to_string_lossy()).map_err(|e| TlsError::Pem {
            path: key_path.clone(),
            why: e.to_string(),
        })?;
        let ca = Ca::new(cert, key).map_err(|e| TlsError::Ca(e.to_string()))?;
        return Ok((ca, false));
    }
    let key = generate(KeySpec::Es256).map_err(|e| TlsError::Ca(e.to_string()))?;
    write_file(
        &key_path,
        pem_text("PRIVATE KEY", &key.pkcs8_der()).as_bytes(),
        true,
    )?;
    let ca = Ca::init(
        KeyHandle::Software(key),
        "CN=Tether device CA,O=Tether",
        Validity {
            not_before: now - 3600,
            days: CA_DAYS,
        },
    )
    .map_err(|e| TlsError::Ca(e.to_string()))?;
    write_file(
        &cert_path,
        pem_text("CERTIFICATE", ca.certificate().der()).as_bytes(),
        false,
    )?;
    Ok((ca, true))
}

/// The existing server certificate is kept if it was issued by this CA, matches its
/// key and is not about to expire.
fn server_cert_usable(cert_path: &Path, key_path: &Path, ca: &Ca, now: i64) -> bool {
    let Ok(chain) = read_chain(cert_path) else {
        return false;
    };
    let Some(Ok(cert)) = chain.first().map(|c| Certificate::from_der(c)) else {
        return false;
    };
    let Ok(key) = KeyHandle::open(&key_path.to_string_lossy()) else {
        return false;
    };
    cert.is_signed_by(ca.certificate())
        && cert.public_key() == key.public_key()
        && cert.not_after() > now + RENEW_BEFORE_SECS
}

fn issue_server_cert(
    ca: &Ca,
    names: &[String],
    cert_path: &Path,
    key_path: &Path,
    now: i64,
) -> Result<(), TlsError> {
    let key =
        generate(KeySpec::new(Algorithm::Es256, None).map_err(|e| TlsError::Ca(e.to_string()))?)
            .map_err(|e| TlsError::Ca(e.to_string()))?;
    let der = ca
        .issue_server(
            key.public_key(),
            names,
            Validity {
                not_before: now - 3600,
                days: SERVER_DAYS,
            },
        )
        .map_err(|e| TlsError::Ca(e.to_string()))?;
    write_file(
        key_path,
        pem_text("PRIVATE KEY", &key.pkcs8_der()).as_bytes(),
        true,
    )?;
    write_file(cert_path, pem_text("CERTIFICATE", &der).as_bytes(), false)
}

/// Writes through a temporary file and a rename, so a crash never leaves half a key;
/// secrets get mode 0600 from the start.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let _ = secret;
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        1_790_000_000
    }

    #[test]
    fn embedded_ca_is_created_once_and_reused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let source = TlsSource::Embedded {
            data_dir: dir.path().to_path_buf(),
            host_names: vec!["localhost".into(), "127.0.0.1".into()],
        };
        let first = setup(&source, now())?;
        assert!(first.ca_created);
        assert!(
            first.config.ticketer.enabled(),
            "TLS 1.3 resumption tickets"
        );
        assert_eq!(
            first.config.send_tls13_tickets, 1,
            "one ticket per handshake"
        );
        assert_eq!(
            first.ca_path.as_deref(),
            Some(dir.path().join("ca.pem").as_path())
        );
        let ca_before = std::fs::read(dir.path().join(CA_CERT_FILE))?;
        let server_before = std::fs::read(dir.path().join(SERVER_CERT_FILE))?;
        #[cfg(unix)]
        for secret in [CA_KEY_FILE, SERVER_KEY_FILE] {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(secret))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{secret}");
        }
        let second = setup(&source, now() + 86_400)?;
        assert!(!second.ca_created);
        assert_eq!(std::fs::read(dir.path().join(CA_CERT_FILE))?, ca_before);
        assert_eq!(
            std::fs::read(dir.path().join(SERVER_CERT_FILE))?,
            server_before
        );
        // Close to expiry the server certificate is re-issued by the same CA.
        let later = setup(&source, now() + 380 * 86_400)?;
        assert!(!later.ca_created);
        assert_ne!(
            std::fs::read(dir.path().join(SERVER_CERT_FILE))?,
            server_before
        );
        Ok(())
    }

    #[test]
    fn operator_files_are_loaded() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        setup(
            &TlsSource::Embedded {
                data_dir: dir.path().to_path_buf(),
                host_names: vec!["mqtt.example.com".into()],
            },
            now(),
        )?;
        // The operator's own certificate: no CA is created or reported.
        let own = setup(
            &TlsSource::Files {
                cert: dir.path().join(SERVER_CERT_FILE),
                key: dir.path().join(SERVER_KEY_FILE),
            },
            now(),
        )?;
        assert_eq!(own.ca_path, None);
        assert!(!own.ca_created);
        Ok(())
    }

    #[test]
    fn missing_operator_files_are_named() {
        let err = setup(
            &TlsSource::Files {
                cert: "/nonexistent/cert.pem".into(),
                key: "/nonexistent/key.pem".into(),
            },
            now(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }
}
