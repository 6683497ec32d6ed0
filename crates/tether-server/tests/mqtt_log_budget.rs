//! What a client can make the server write to its log is bounded: refused SUBSCRIBE
//! filters make at most one line per packet (and the log budget's few per device a
//! minute), a SUBSCRIBE over the filter cap closes the connection, and an
//! attacker-sized client id or topic is cut and escaped in every line. The server's own
//! log is captured in this test binary.

mod mqtt_support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use mqtt_support::*;
use rumqttc::{AsyncClient, QoS, SubscribeFilter};

/// Everything the server logs in this process.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || Capture(Arc::clone(&sink)))
            .try_init();
        log
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_lines(containing: &str) -> Vec<String> {
    let log = captured()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| l.contains(containing))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_filters_make_one_line_per_subscribe_and_too_many_close() -> TestResult {
    captured();
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 64);
    connack(&mut events).await.expect("accepted");
    // Five SUBSCRIBEs of 100 filters on other devices' topics: all refused.
    for packet in 0..5 {
        let filters = (0..100).map(|i| {
            SubscribeFilter::new(
                format!("/devices/other-{packet}-{i}/config"),
                QoS::AtLeastOnce,
            )
        });
        client.subscribe_many(filters).await?;
        until_incoming(&mut events, |p| match p {
            rumqttc::Packet::SubAck(ack) => {
                assert_eq!(ack.return_codes.len(), 100);
                Some(())
            }
            _ => None,
        })
        .await;
    }
    let lines = log_lines("SUBSCRIBE refused");
    // At most one line per packet, and at most 3 a minute about one device (the log
    // budget): 500 refused filters make 3 lines.
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].contains("100 of 100 filter(s)"), "{}", lines[0]);
    assert!(lines.iter().all(|l| l.len() < 2048), "{lines:#?}");
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("other-"))
        .await;
    assert!(
        status.message.contains("may only use its own topics"),
        "{status:?}"
    );

    // One SUBSCRIBE over the cap closes the connection with the reason.
    let filters =
        (0..129).map(|i| SubscribeFilter::new(format!("/devices/x{i}/config"), QoS::AtLeastOnce));
    client.subscribe_many(filters).await?;
    until_closed(&mut events).await;
    let status = gw
        .wait_error("dev-1", |s| {
            s.message.contains("SUBSCRIBE carried 129 filters")
        })
        .await;
    assert_eq!(status.code, 3, "{status:?}");
    gw.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_sized_client_id_is_cut_and_escaped_in_the_log() -> TestResult {
    captured();
    let gw = Gateway::start(|_| {}).await?;
    // 65,001 bytes with a forged log line inside.
    let client_id = format!(
        "{}\nERROR forged line{}",
        "x".repeat(32_000),
        "y".repeat(32_983)
    );
    let (_client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &client_id, Some("not-a-jwt")), 8);
    let refused = connack(&mut events).await;
    assert_eq!(refused, Err(rumqttc::ConnectReturnCode::BadClientId));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let lines = log_lines("CONNECT refused");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].len() < 3000,
        "the line is {} bytes",
        lines[0].len()
    );
    let whole = format!("({} bytes in all)", client_id.len());
    assert!(lines[0].contains(&whole), "{}", lines[0]);
    assert!(
        log_lines("ERROR forged")
            .iter()
            .all(|l| !l.starts_with("ERROR")),
        "no forged line starts a log line"
    );
    gw.shutdown().await;
    Ok(())
}
