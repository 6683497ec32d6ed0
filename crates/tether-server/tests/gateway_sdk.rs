//! The device SDK's gateway helpers and HTTP client against the real server: attach
//! (good and bad token), publish on behalf of, the errors stream, detach; and
//! `HttpDevice` publish/state/config over HTTPS with token minting.

mod http_support;
mod mqtt_support;

use std::sync::Arc;
use std::time::Duration;

use http_support::*;
use mqtt_support::*;
use tether_device::{
    Device, DeviceOptions, DevicePath, Endpoint, HttpDevice, HttpError, PublishError, QoS,
};
use tether_registry::Store as _;
use tether_registry::model::GatewayAuthMethod;
use tether_registry::names::DeviceRef;
use tether_server::device_http::{bridge_router, serve_https};
use tether_server::listen::Cap;
use tether_server::listen::http::HttpPolicy;
use tether_server::tls::{TlsSource, setup};

fn options(gw: &Gateway, dev: &TestDevice) -> DeviceOptions {
    let key = gw.dir.path().join(format!("{}.pem", dev.id));
    std::fs::write(&key, dev.private_key_pem()).expect("key written");
    let signer = tether_device::open_signer(&key.display().to_string()).expect("signer");
    let ca = std::fs::read(&gw.ca_path).expect("CA");
    DeviceOptions::new(
        DevicePath::new(PROJECT, LOCATION, REGISTRY, dev.id.clone()),
        signer,
    )
    .endpoint(Endpoint::new("localhost", gw.port()))
    .ca_pem(&ca)
    .expect("CA parsed")
}

#[tokio::test]
async fn sdk_gateway_attaches_publishes_and_detaches() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let gateway = gateway_device(
        &gw,
        "sdk-gw",
        GatewayAuthMethod::AssociationAndDeviceAuthToken,
    )
    .await;
    let dev = gw.device("sdk-dev").await?;
    let stranger = gw.device("sdk-stranger").await?;
    gw.store
        .bind(
            &registry_path(),
            &DeviceRef::Id("sdk-gw".into()),
            &DeviceRef::Id("sdk-dev".into()),
        )
        .await?;
    let mut opts = options(&gw, &gateway);
    opts.gateway = true;
    let mut device = Device::connect(opts).await?;
    let mut errors = device.take_errors().ok_or("errors stream")?;

    let refused = device.attach("sdk-dev", Some(&stranger.jwt())).await;
    assert!(
        matches!(refused, Err(PublishError::Attach(_))),
        "{refused:?}"
    );
    let error = tokio::time::timeout(Duration::from_secs(5), errors.recv())
        .await?
        .ok_or("errors stream ended")?;
    assert_eq!(error.error_type, "GATEWAY_ATTACHMENT_ERROR");
    assert_eq!(error.device_id, "sdk-dev");

    device.attach("sdk-dev", Some(&dev.jwt())).await?;
    device
        .publish_event_for(
            "sdk-dev",
            Some("alerts"),
            b"via-sdk".to_vec(),
            QoS::AtLeastOnce,
        )
        .await?;
    device
        .set_state_for("sdk-dev", b"sdk-state".to_vec())
        .await?;
    let records = gw.wait_records(ALERTS_TOPIC, 1).await;
    assert_eq!(records[0].message.attributes["deviceId"], "sdk-dev");
    let states = gw
        .store
        .list_states(&registry_path(), &DeviceRef::Id("sdk-dev".into()), 1)
        .await?;
    assert_eq!(states[0].binary_data, b"sdk-state");
    device.detach("sdk-dev").await?;
    device.disconnect().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn sdk_http_device_over_https() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("sdk-http").await?;
    let tls = setup(
        &TlsSource::Embedded {
            data_dir: gw.dir.path().to_path_buf(),
            host_names: vec!["localhost".into(), "127.0.0.1".into()],
        },
        now_secs(),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_https(
        listener,
        Arc::clone(&tls.config),
        bridge_router(bridge(&gw)),
        Cap::new(64),
        tether_server::listen::DeviceGate::default(),
        HttpPolicy::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let http = HttpDevice::new(&format!("https://localhost:{port}"), &options(&gw, &dev))?;
    http.publish_event("", b"over-https").await?;
    http.set_state(b"https-state").await?;
    let config = http.get_config(0).await?;
    assert_eq!(config.version, 1);
    assert_eq!(config.data.as_deref(), Some(&b""[..]));
    let ahead = http.get_config(9).await;
    assert!(
        matches!(&ahead, Err(HttpError::Refused { status: 400, code, .. }) if code == "OUT_OF_RANGE"),
        "{ahead:?}"
    );
    let records = gw.wait_records(TELEMETRY_TOPIC, 1).await;
    assert_eq!(records[0].message.data, b"over-https");

    // A device whose key does not match: the refusal is typed.
    let other = gw.device("sdk-http-2").await?;
    let mut wrong = options(&gw, &other);
    wrong.device = DevicePath::new(PROJECT, LOCATION, REGISTRY, "sdk-http");
    let refused = HttpDevice::new(&format!("https://localhost:{port}"), &wrong)?
        .publish_event("", b"x")
        .await;
    assert!(
        matches!(&refused, Err(HttpError::Refused { status: 401, .. })),
        "{refused:?}"
    );
    let _ = stop.send(());
    server.await??;
    gw.shutdown().await;
    Ok(())
}
