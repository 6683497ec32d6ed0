//! What a client can make `tether serve` write is bounded: 10,000 refused CONNECTs make
//! a bounded number of log lines (the log budget), while `/metrics` counts every one.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::common;

const TOKEN: &str = "log-budget-admin-token-0123";

/// A CONNECT (MQTT 3.1.1, clean session, keep-alive 60) with client id `bad`: refused
/// with CONNACK 2 before any crypto.
const BAD_CONNECT: &[u8] = &[
    0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 3, b'b', b'a', b'd',
];

/// The `/metrics` text of the server at `url`.
fn metrics(url: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("admin connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("response");
    out
}

#[test]
fn ten_thousand_refused_connects_make_a_bounded_log_and_are_all_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("serve.log");
    let mut tether = Command::new(env!("CARGO_BIN_EXE_tether"));
    tether.env("TETHER_ADMIN_TOKEN", TOKEN);
    let gw = common::serve_logged(
        tether,
        &dir.path().join("data"),
        &[
            "--mqtt-plain-addr",
            "127.0.0.1:0",
            "--connect-rate-per-ip",
            "0",
        ],
        Some(&log),
    );
    let plain = gw
        .banner
        .lines()
        .find_map(|l| l.split("MQTT without TLS on ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("plain listener in the banner")
        .to_owned();

    const ATTEMPTS: usize = 10_000;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let plain = plain.clone();
            std::thread::spawn(move || {
                let mut refused = 0;
                for _ in (t..ATTEMPTS).step_by(8) {
                    let Ok(mut s) = TcpStream::connect(&plain) else {
                        continue;
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    if s.write_all(BAD_CONNECT).is_err() {
                        continue;
                    }
                    let mut connack = [0u8; 4];
                    if s.read_exact(&mut connack).is_ok() && connack == [0x20, 2, 0, 2] {
                        refused += 1;
                    }
                }
                refused
            })
        })
        .collect();
    let refused: usize = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .sum();
    assert_eq!(refused, ATTEMPTS, "every CONNECT got CONNACK 2");

    let text = metrics(&gw.url);
    assert!(
        text.contains(&format!(
            "tether_mqtt_refusals_total{{reason=\"client_id\"}} {ATTEMPTS}"
        )),
        "every refusal is counted:\n{}",
        text.lines()
            .filter(|l| l.contains("refusals"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let written = std::fs::read_to_string(&log).expect("log");
    let refusal_lines = written
        .lines()
        .filter(|l| l.contains("CONNECT refused"))
        .count();
    assert!(
        refusal_lines <= 120,
        "{refusal_lines} refusal lines for {ATTEMPTS} refused connects"
    );
    assert!(
        written.len() < 64 * 1024,
        "the log grew to {} bytes",
        written.len()
    );
}
