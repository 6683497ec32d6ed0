//! `--source-ips`: local addresses to spread connections over, so one run is not
//! bounded by a single address's ephemeral ports (about 28k on Linux).

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context as _, bail};

/// Most addresses a range may expand to.
const MAX_ADDRS: u32 = 4096;

/// Parses `A-B` (an IPv4 range, inclusive) or a comma-separated list of addresses.
pub fn parse(text: &str) -> anyhow::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((from, to)) = part.split_once('-') {
            let from: Ipv4Addr = from
                .trim()
                .parse()
                .with_context(|| format!("--source-ips: {from} is not an IPv4 address"))?;
            let to: Ipv4Addr = to
                .trim()
                .parse()
                .with_context(|| format!("--source-ips: {to} is not an IPv4 address"))?;
            let (a, b) = (u32::from(from), u32::from(to));
            if b < a || b - a >= MAX_ADDRS {
                bail!(
                    "--source-ips: {part} must run upwards and hold at most {MAX_ADDRS} addresses"
                );
            }
            out.extend((a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
        } else {
            out.push(
                part.parse()
                    .with_context(|| format!("--source-ips: {part} is not an IP address"))?,
            );
        }
    }
    if out.is_empty() {
        bail!("--source-ips is empty");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_lists() {
        let ips = parse("127.0.0.2-127.0.0.4").unwrap_or_default();
        assert_eq!(ips.len(), 3);
        assert_eq!(ips[2].to_string(), "127.0.0.4");
        assert_eq!(parse("127.0.0.2, ::1").unwrap_or_default().len(), 2);
        assert!(parse("127.0.0.9-127.0.0.2").is_err());
        assert!(parse("x").is_err());
        assert!(parse("").is_err());
    }
}
