//! Shared by the CLI tests that run `tether serve` as a child process.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `tether serve` and what its start-up banner said. Killed on drop.
#[derive(Debug)]
pub struct Served {
    pub child: Child,
    /// `http://127.0.0.1:PORT` of the admin API.
    pub url: String,
    /// `127.0.0.1:PORT` of the MQTT-over-TLS listener.
    pub mqtt: String,
    /// `127.0.0.1:PORT` of the HTTPS device bridge.
    pub https: String,
    /// The CA devices must trust.
    pub ca: String,
    /// Every banner line.
    pub banner: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.split(marker)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
}

/// Starts `tether serve` with every listener on a free loopback port and `data` as its
/// data directory, reads the banner (it ends with the HTTPS bridge line) and keeps
/// draining stdout so the server never blocks on a full pipe.
pub fn serve(mut tether: Command, data: &Path) -> Served {
    let mut child = tether
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--mqtt-addr",
            "127.0.0.1:0",
        ])
        .args(["--https-addr", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tether serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut url, mut mqtt, mut https, mut ca) = (None, None, None, None);
    let mut banner = String::new();
    for line in lines.by_ref().take(30) {
        let line = line.expect("banner line");
        banner.push_str(&line);
        banner.push('\n');
        url = url.or_else(|| after(&line, "admin API on ").map(str::to_owned));
        mqtt = mqtt.or_else(|| after(&line, "MQTT over TLS on ").map(str::to_owned));
        ca = ca.or_else(|| {
            line.split("devices must trust the CA in ")
                .nth(1)
                .map(str::to_owned)
        });
        https =
            https.or_else(|| after(&line, "HTTP device bridge over TLS on ").map(str::to_owned));
        if https.is_some() {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let missing = |what: &str| -> String { panic!("no {what} in the banner:\n{banner}") };
    Served {
        url: url.unwrap_or_else(|| missing("admin URL")),
        mqtt: mqtt.unwrap_or_else(|| missing("MQTT address")),
        https: https.unwrap_or_else(|| missing("HTTPS address")),
        ca: ca.unwrap_or_else(|| missing("CA path")),
        banner: banner.clone(),
        child,
    }
}

/// Runs the command `make` builds until it succeeds (e.g. `devices commands send`,
/// FAILED_PRECONDITION until the device's subscription is in place); panics with
/// `what` after 10 s.
pub fn retry_until_ok(mut make: impl FnMut() -> Command, what: &str) {
    for _ in 0..100 {
        if make().output().is_ok_and(|out| out.status.success()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{what}");
}
