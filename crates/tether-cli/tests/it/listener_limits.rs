//! One listener can never starve another: under a low open-file limit, hundreds of
//! clients that connect to the HTTPS device bridge and never finish a handshake, and
//! slow HTTP clients on the admin API, leave MQTT devices and the admin API served.
//! The caps shrink to fit the limit (with a reserve), and the slow clients are cut.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{self, DEV_1, Served, create_device, mint_jwt, run};

const TOKEN: &str = "limits-admin-token-0123456789";

fn tether() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.env("TETHER_ADMIN_TOKEN", TOKEN)
        .env("TETHER_PROJECT", "acme");
    c
}

/// `tether serve` under `ulimit -n files`.
fn start_limited(data: &Path, files: u32) -> Served {
    let mut sh = Command::new("sh");
    sh.args(["-c", &format!("ulimit -n {files} && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_tether"))
        .env("TETHER_ADMIN_TOKEN", TOKEN)
        .env("TETHER_PROJECT", "acme");
    let mut served = common::serve_with(sh, data, &["--http-header-timeout-secs", "2"]);
    served.banner.push_str("(under a low ulimit)\n");
    served
}

#[test]
fn slow_clients_on_one_listener_leave_devices_and_the_api_served() {
    if !common::mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let gw = start_limited(&dir.path().join("data"), 384);
    let private = create_device(
        tether,
        &gw.url,
        dir.path(),
        &[
            "--event-notification-config",
            "topic=projects/acme/topics/telemetry",
        ],
    );
    let jwt = mint_jwt(tether, &private);

    // 500 clients on the HTTPS bridge that never say a word (more than the whole
    // open-file limit), and 10 that send half a request head to the admin API. Past
    // the bridge's cap and the kernel's backlog, connects stall (as in a real flood):
    // give each a moment only.
    let bridge: std::net::SocketAddr = gw.https.parse().expect("address");
    let https: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect_timeout(&bridge, Duration::from_millis(20)).ok())
        .collect();
    assert!(https.len() >= 100, "{} connected", https.len());
    let admin_addr = gw.url.trim_start_matches("http://").to_owned();
    let mut slow_admin: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(&admin_addr).expect("admin connect"))
        .collect();
    for s in &mut slow_admin {
        s.write_all(b"GET /v1/projects/acme HTTP/1.1\r\nhost: x\r\n")
            .expect("partial head");
    }
    std::thread::sleep(Duration::from_millis(500));

    // A device still connects and publishes with QoS 1.
    let port = gw.mqtt.rsplit(':').next().unwrap_or_default();
    let out = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "--cafile",
            &gw.ca,
            "-i",
            DEV_1,
        ])
        .args([
            "-u",
            "unused",
            "-P",
            &jwt,
            "-q",
            "1",
            "-t",
            "/devices/dev-1/events",
        ])
        .args(["-m", "through the flood"])
        .output()
        .expect("mosquitto_pub runs");
    assert!(
        out.status.success(),
        "the device was starved: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And an API call still answers.
    let out = run(tether().args(["registries", "list", "--server", &gw.url]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("fleet"));

    // The slow admin clients are cut at the header timeout (2 s), not held forever.
    for mut s in slow_admin {
        // A read that times out (instead of seeing the server close) fails the test.
        s.set_read_timeout(Some(Duration::from_secs(8)))
            .expect("timeout");
        let mut buf = Vec::new();
        let ended = s.read_to_end(&mut buf);
        assert!(
            ended.is_ok(),
            "a slow admin client was held past 8 s: {ended:?}"
        );
    }
    // The bridge's silent clients are cut at the handshake timeout (10 s), a cap-full
    // at a time: within 20 s (80 × 250 ms) a first batch is closed by the server.
    for s in &https {
        s.set_nonblocking(true).expect("nonblocking");
    }
    let mut closed = 0;
    for _ in 0..80 {
        if closed >= 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        closed = https
            .iter()
            .filter(|s| {
                let mut stream: &TcpStream = s;
                let mut byte = [0u8; 1];
                matches!(stream.read(&mut byte), Ok(0))
            })
            .count();
    }
    assert!(closed >= 20, "only {closed} silent HTTPS clients were cut");
}
