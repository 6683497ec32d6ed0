//! Opening the byte stream to one endpoint: DNS, TCP (bound to the endpoint's local
//! address when it names one, to pick Wi-Fi or the cellular modem), then TLS.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use crate::endpoints::Endpoint;
use crate::error::{ConnectError, Stage, TlsCause};

/// How the bytes are protected.
#[derive(Debug, Clone)]
pub enum Security {
    /// TLS with this configuration (IoT Core: always).
    Tls(Arc<rustls::ClientConfig>),
    /// Plain TCP: only for a local broker in development and tests.
    Plain,
}

/// A connected byte stream, TLS or plain.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub(crate) type BoxIo = Box<dyn Io>;

/// Opens a stream to `endpoint`; every step is bounded by `limit`.
pub(crate) async fn open(
    endpoint: &Endpoint,
    security: &Security,
    limit: Duration,
) -> Result<(BoxIo, SocketAddr), ConnectError> {
    let tcp = connect_tcp(endpoint, limit).await?;
    let peer = tcp.peer_addr().map_err(|source| ConnectError::Tcp {
        addr: SocketAddr::from(([0, 0, 0, 0], endpoint.port)),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    match security {
        Security::Plain => Ok((Box::new(tcp), peer)),
        Security::Tls(config) => {
            let name =
                ServerName::try_from(endpoint.host.clone()).map_err(|e| ConnectError::Tls {
                    cause: TlsCause::InvalidServerName,
                    detail: e.to_string(),
                })?;
            let connector = TlsConnector::from(Arc::clone(config));
            let tls = timeout(limit, connector.connect(name, tcp))
                .await
                .map_err(|_| ConnectError::Timeout { stage: Stage::Tls })?
                .map_err(|e| {
                    let (cause, detail) = crate::tls::classify_io(&e);
                    ConnectError::Tls { cause, detail }
                })?;
            Ok((Box::new(tls), peer))
        }
    }
}

/// Resolves the endpoint's host to addresses, keeping those of the bound address'
/// family.
pub(crate) async fn resolve(
    endpoint: &Endpoint,
    limit: Duration,
) -> Result<Vec<SocketAddr>, ConnectError> {
    let dns_err = |source| ConnectError::Dns {
        host: endpoint.host.clone(),
        source,
    };
    let found = timeout(
        limit,
        tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port)),
    )
    .await
    .map_err(|_| ConnectError::Timeout { stage: Stage::Dns })?
    .map_err(dns_err)?;
    let addrs: Vec<SocketAddr> = found
        .filter(|a| endpoint.bind.is_none_or(|b| b.is_ipv4() == a.is_ipv4()))
        .collect();
    if addrs.is_empty() {
        return Err(dns_err(io::Error::new(
            io::ErrorKind::NotFound,
            "no address of the bound interface's IP version",
        )));
    }
    Ok(addrs)
}

/// Connects to the first address that answers.
pub(crate) async fn connect_tcp(
    endpoint: &Endpoint,
    limit: Duration,
) -> Result<TcpStream, ConnectError> {
    let addrs = resolve(endpoint, limit).await?;
    let mut last = None;
    for addr in addrs {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|source| ConnectError::Tcp { addr, source })?;
        if let Some(local) = endpoint.bind {
            socket
                .bind(SocketAddr::new(local, 0))
                .map_err(|source| ConnectError::Bind { local, source })?;
        }
        match timeout(limit, socket.connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(source)) => last = Some(ConnectError::Tcp { addr, source }),
            Err(_) => last = Some(ConnectError::Timeout { stage: Stage::Tcp }),
        }
    }
    Err(last.unwrap_or(ConnectError::Timeout { stage: Stage::Tcp }))
}
