//! Step 2: something accepts TCP connections on the port.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::report::Step;

/// Connects to the first address that answers.
pub async fn check(addrs: &[SocketAddr], limit: Duration) -> (Step, Option<TcpStream>) {
    let mut tried = Vec::new();
    let mut last_kind = None;
    for addr in addrs {
        let started = Instant::now();
        match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let ms = started.elapsed().as_millis();
                return (
                    Step::pass("tcp", format!("connected to {addr} in {ms} ms")),
                    Some(stream),
                );
            }
            Ok(Err(e)) => {
                last_kind = Some(e.kind());
                tried.push(format!("{addr}: {e}"));
            }
            Err(_) => {
                last_kind = Some(ErrorKind::TimedOut);
                tried.push(format!("{addr}: no answer within {limit:?}"));
            }
        }
    }
    let port = addrs.first().map_or(0, SocketAddr::port);
    let (cause, fix) = match last_kind {
        Some(ErrorKind::ConnectionRefused) => (
            format!(
                "nothing accepts connections on port {port} (connection refused): the server \
                 is down or listens on another port"
            ),
            "start the server (`tether serve`) or give the port it listens on (IoT Core: \
             8883, or 443 where 8883 is blocked)"
                .to_string(),
        ),
        Some(ErrorKind::TimedOut) => (
            format!("no answer on port {port}: a firewall drops the packets, or the host is down"),
            "allow outbound TCP to the port, or try --port 443".to_string(),
        ),
        _ => (
            "the network cannot reach the server".to_string(),
            "check the device's route to the server (interface, gateway, firewall)".to_string(),
        ),
    };
    (
        Step::fail("tcp", "cannot connect", cause, fix).with_details(tried),
        None,
    )
}
