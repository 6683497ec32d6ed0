//! End to end against the real gateway (`tether_server::mqtt::start`, embedded CA,
//! in-memory SQLite, embedded telemetry log): the device SDK and `tether doctor`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;

use tether_device::{
    Clock, ConnectError, Device, DeviceOptions, DevicePath, Endpoint, QoS, SystemClock,
};
use tether_keys::PrivateKey;
use tether_keys::convert::pem_text;
use tether_keys::generate::{KeySpec, generate};
use tether_log::{EmbeddedLog, LogConfig};
use tether_mqtt::ConnectReturnCode;
use tether_registry::model::{
    Device as DeviceModel, DeviceCredential, DeviceRegistry, EventNotificationConfig,
    PublicKeyCredential, PublicKeyFormat, Timestamp,
};
use tether_registry::names::RegistryPath;
use tether_registry::{SqliteStore, Store};
use tether_server::bridge::BridgeDeps;
use tether_server::mqtt::MqttOptions;
use tether_server::tls::{TlsSource, setup};

const TOPIC: &str = "projects/acme/topics/telemetry";

fn now() -> i64 {
    i64::try_from(SystemClock.unix_now()).unwrap()
}

fn registry() -> RegistryPath {
    RegistryPath {
        project: "acme".into(),
        location: "europe-west1".into(),
        registry: "fleet".into(),
    }
}

struct Gateway {
    dir: tempfile::TempDir,
    ca_pem: Vec<u8>,
    port: u16,
    log: Arc<EmbeddedLog>,
    key: PrivateKey,
    _handle: tether_server::mqtt::MqttHandle,
}

async fn gateway() -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let tls = setup(
        &TlsSource::Embedded {
            data_dir: dir.path().to_path_buf(),
            host_names: vec!["localhost".into()],
        },
        now(),
    )
    .unwrap();
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    store
        .create_registry(&DeviceRegistry {
            path: registry(),
            event_notification_configs: vec![EventNotificationConfig {
                subfolder_matches: String::new(),
                pubsub_topic_name: TOPIC.into(),
            }],
            ..DeviceRegistry::default()
        })
        .await
        .unwrap();
    let key = generate(KeySpec::Es256).unwrap();
    store
        .create_device(
            &registry(),
            &DeviceModel {
                id: "dev-1".into(),
                credentials: vec![DeviceCredential {
                    public_key: PublicKeyCredential {
                        format: PublicKeyFormat::Es256Pem,
                        key: pem_text("PUBLIC KEY", key.public_key().spki_der()),
                    },
                    expiration_time: None,
                }],
                ..DeviceModel::default()
            },
            Timestamp::from_secs(now()),
        )
        .await
        .unwrap();
    let log = Arc::new(EmbeddedLog::open(LogConfig::new(dir.path())).await.unwrap());
    let mut options = MqttOptions::default();
    options.tls_addrs = vec!["127.0.0.1:0".parse().unwrap()];
    options.tls = Some(tls.config);
    let handle = tether_server::mqtt::start(options, BridgeDeps::new(store, log.clone()))
        .await
        .unwrap();
    let port = handle.tls_addrs()[0].port();
    let ca_pem = std::fs::read(tls.ca_path.unwrap()).unwrap();
    std::fs::write(
        dir.path().join("device.pem"),
        pem_text("PRIVATE KEY", &key.pkcs8_der()),
    )
    .unwrap();
    Gateway {
        dir,
        ca_pem,
        port,
        log,
        key,
        _handle: handle,
    }
}

fn options(gw: &Gateway, key: &PrivateKey) -> DeviceOptions {
    let path = DevicePath::new("acme", "europe-west1", "fleet", "dev-1");
    let mut o = DeviceOptions::new(path, Arc::from(key.signer().unwrap()))
        .ca_pem(&gw.ca_pem)
        .unwrap();
    o.endpoints = vec![Endpoint::new("localhost", gw.port)];
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_connects_publishes_and_gets_typed_refusals_from_the_gateway() {
    let gw = gateway().await;
    let device = Device::connect(options(&gw, &gw.key))
        .await
        .expect("connects");
    device
        .publish_event(Some("e2e"), "hello", QoS::AtLeastOnce)
        .await
        .expect("PUBACK: durably in the log");
    let records = gw.log.read(TOPIC, 0, 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].message.data, b"hello");
    device.disconnect().await;

    let wrong = generate(KeySpec::Es256).unwrap();
    let err = Device::connect(options(&gw, &wrong))
        .await
        .expect_err("wrong key");
    assert!(
        matches!(
            err,
            ConnectError::Refused {
                code: ConnectReturnCode::NotAuthorized,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_against_the_gateway() {
    let gw = gateway().await;
    std::fs::write(gw.dir.path().join("ca.pem"), &gw.ca_pem).unwrap();
    let dir = gw.dir.path().to_path_buf();
    let port = gw.port.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(["doctor", "--host", "localhost", "--port", &port])
            .args(["--ca", &dir.join("ca.pem").display().to_string()])
            .args([
                "--client-id",
                "projects/acme/locations/europe-west1/registries/fleet/devices/dev-1",
            ])
            .args(["--key", &dir.join("device.pem").display().to_string()])
            .args(["--wait-config", "2", "--json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
}
