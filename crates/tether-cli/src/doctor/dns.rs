//! Step 1: the host name resolves.

use std::net::SocketAddr;
use std::time::Duration;

use super::report::Step;

/// Resolves `host:port`.
pub async fn check(host: &str, port: u16, limit: Duration) -> (Step, Vec<SocketAddr>) {
    let fail = |cause: String| {
        Step::fail(
            "dns",
            format!("cannot resolve '{host}'"),
            cause,
            "check the host name (the server's DNS name, as written in its certificate), the \
             device's DNS server, or use an IP address",
        )
    };
    match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
        Err(_) => (fail(format!("no DNS answer within {limit:?}")), Vec::new()),
        Ok(Err(e)) => (fail(format!("'{host}' does not resolve: {e}")), Vec::new()),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                return (fail(format!("'{host}' has no address")), addrs);
            }
            let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            (
                Step::pass("dns", format!("{host} → {}", list.join(", "))),
                addrs,
            )
        }
    }
}
