//! Shared set-up of the MQTT bridge tests: a gateway in-process on 127.0.0.1:0 with a
//! temporary data directory (embedded CA), an in-memory SQLite store and the embedded
//! telemetry log; devices with real ES256 keys; clients that trust `DATA_DIR/ca.pem`.
#![allow(dead_code, clippy::unwrap_used)] // Each test binary uses part of it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tether_keys::PrivateKey;
use tether_keys::convert::pem_text;
use tether_keys::generate::{KeySpec, generate};
use tether_log::{EmbeddedLog, LogConfig, Record};
use tether_registry::model::{
    Device, DeviceCredential, DeviceRegistry, EventNotificationConfig, MqttState,
    PublicKeyCredential, PublicKeyFormat, StateNotificationConfig, Status, Timestamp,
};
use tether_registry::names::{DeviceRef, RegistryPath};
use tether_registry::{SqliteStore, Store};
use tether_server::bridge::{BridgeDeps, Clock, SystemClock};
use tether_server::mqtt::{MqttHandle, MqttOptions};
use tether_server::tls::{TlsSource, setup};

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub const PROJECT: &str = "acme";
pub const LOCATION: &str = "europe-west1";
pub const REGISTRY: &str = "fleet";
pub const TELEMETRY_TOPIC: &str = "projects/acme/topics/telemetry";
pub const ALERTS_TOPIC: &str = "projects/acme/topics/alerts";
pub const STATE_TOPIC: &str = "projects/acme/topics/state";

/// A running gateway and what the tests look at.
pub struct Gateway {
    pub handle: Option<MqttHandle>,
    pub store: Arc<SqliteStore>,
    pub log: Arc<EmbeddedLog>,
    pub dir: tempfile::TempDir,
    pub ca_path: PathBuf,
    pub tls_addr: SocketAddr,
    pub plain_addr: Option<SocketAddr>,
}

pub fn now_secs() -> i64 {
    SystemClock.unix_secs()
}

pub fn registry_path() -> RegistryPath {
    RegistryPath {
        project: PROJECT.into(),
        location: LOCATION.into(),
        registry: REGISTRY.into(),
    }
}

pub fn client_id(device: &str) -> String {
    format!("{}/devices/{device}", registry_path())
}

/// Options every test starts from: short timers so nothing waits long.
pub fn test_options() -> MqttOptions {
    let mut o = MqttOptions::default();
    o.tls_addrs = vec!["127.0.0.1:0".parse().unwrap()];
    o.connect_timeout = Duration::from_secs(2);
    o.activity_interval = Duration::from_millis(20);
    o.registry_refresh = Duration::from_millis(0);
    o
}

impl Gateway {
    /// Starts a gateway with a registry `fleet` (default, `alerts` and state topics).
    pub async fn start(
        tweak: impl FnOnce(&mut MqttOptions),
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Self::start_with_sink(tweak, |log| log).await
    }

    /// [`Gateway::start`] with the sink wrapped by `sink` (e.g. to make it fail).
    pub async fn start_with_sink(
        tweak: impl FnOnce(&mut MqttOptions),
        sink: impl FnOnce(Arc<EmbeddedLog>) -> Arc<dyn tether_route::Sink>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let dir = tempfile::tempdir()?;
        let tls = embedded_tls(dir.path())?;
        let store = Arc::new(SqliteStore::in_memory().await?);
        store
            .create_registry(&DeviceRegistry {
                path: registry_path(),
                event_notification_configs: vec![
                    EventNotificationConfig {
                        subfolder_matches: "alerts".into(),
                        pubsub_topic_name: ALERTS_TOPIC.into(),
                    },
                    EventNotificationConfig {
                        subfolder_matches: String::new(),
                        pubsub_topic_name: TELEMETRY_TOPIC.into(),
                    },
                ],
                state_notification_config: Some(StateNotificationConfig {
                    pubsub_topic_name: STATE_TOPIC.into(),
                }),
                ..DeviceRegistry::default()
            })
            .await?;
        let log = Arc::new(EmbeddedLog::open(LogConfig::new(dir.path())).await?);
        let mut options = test_options();
        options.tls = Some(tls.config);
        tweak(&mut options);
        let handle =
            tether_server::mqtt::start(options, BridgeDeps::new(store.clone(), sink(log.clone())))
                .await?;
        let tls_addr = *handle.tls_addrs().first().ok_or("no TLS listener")?;
        let plain_addr = handle.plain_addrs().first().copied();
        Ok(Self {
            handle: Some(handle),
            store,
            log,
            ca_path: tls.ca_path.ok_or("no CA path")?,
            dir,
            tls_addr,
            plain_addr,
        })
    }

    pub fn handle(&self) -> &MqttHandle {
        self.handle.as_ref().unwrap()
    }

    pub fn port(&self) -> u16 {
        self.tls_addr.port()
    }

    /// Creates a device with a fresh ES256 key.
    pub async fn device(
        &self,
        id: &str,
    ) -> Result<TestDevice, Box<dyn std::error::Error + Send + Sync>> {
        self.device_with(id, |_| {}).await
    }

    /// Creates a device with a fresh ES256 key, changed by `tweak` first (e.g. a
    /// gateway config).
    pub async fn device_with(
        &self,
        id: &str,
        tweak: impl FnOnce(&mut Device),
    ) -> Result<TestDevice, Box<dyn std::error::Error + Send + Sync>> {
        let key = generate(KeySpec::Es256)?;
        let mut device = Device {
            id: id.into(),
            credentials: vec![DeviceCredential {
                public_key: PublicKeyCredential {
                    format: PublicKeyFormat::Es256Pem,
                    key: pem_text("PUBLIC KEY", key.public_key().spki_der()),
                },
                expiration_time: None,
            }],
            ..Device::default()
        };
        tweak(&mut device);
        let device = self
            .store
            .create_device(&registry_path(), &device, Timestamp::from_secs(now_secs()))
            .await?;
        Ok(TestDevice {
            id: id.into(),
            num_id: device.num_id,
            key,
        })
    }

    pub async fn get_device(&self, id: &str) -> Device {
        self.store
            .get_device(&registry_path(), &DeviceRef::Id(id.into()))
            .await
            .unwrap()
    }

    /// Waits until the device's lastErrorStatus satisfies `check`.
    pub async fn wait_error(&self, id: &str, check: impl Fn(&Status) -> bool) -> Status {
        let mut last = None;
        for _ in 0..250 {
            let device = self.get_device(id).await;
            if let Some(status) = device.last_error_status {
                if check(&status) {
                    return status;
                }
                last = Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("lastErrorStatus of {id} never matched; last seen: {last:?}");
    }

    /// Waits until `topic` in the telemetry log holds at least `n` records.
    pub async fn wait_records(&self, topic: &str, n: usize) -> Vec<Record> {
        for _ in 0..250 {
            if let Ok(records) = self.log.read(topic, 0, 1000).await
                && records.len() >= n
            {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{topic} never held {n} records");
    }

    /// Waits until no socket is open any more.
    pub async fn wait_no_connections(&self) {
        for _ in 0..250 {
            if self.handle().open_connections() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{} connections still open",
            self.handle().open_connections()
        );
    }

    pub async fn set_mqtt_state(&self, state: MqttState) {
        let mut registry = self.store.get_registry(&registry_path()).await.unwrap();
        registry.mqtt_state = state;
        self.update_registry(&registry).await.unwrap();
    }

    /// Stores `device` and tells the hub, as the API's update does.
    pub async fn update_device(
        &self,
        device: &tether_registry::model::Device,
    ) -> Result<tether_registry::model::Device, tether_registry::StoreError> {
        let updated = self.store.update_device(&registry_path(), device).await?;
        self.handle()
            .hub()
            .device_changed(&tether_server::bridge::hub::DeviceAddress {
                registry: registry_path(),
                num_id: updated.num_id,
            })
            .await;
        Ok(updated)
    }

    /// Stores `registry` and tells the hub, as the API's update does.
    pub async fn update_registry(
        &self,
        registry: &tether_registry::model::DeviceRegistry,
    ) -> Result<tether_registry::model::DeviceRegistry, tether_registry::StoreError> {
        let updated = self.store.update_registry(registry).await?;
        self.handle().hub().registry_changed(&updated.path).await;
        Ok(updated)
    }

    /// A second node on the same store, telemetry log and certificate (a cluster of
    /// two, as behind one load balancer).
    pub async fn second_node(
        &self,
    ) -> Result<MqttHandle, Box<dyn std::error::Error + Send + Sync>> {
        let tls = embedded_tls(self.dir.path())?;
        let mut options = test_options();
        options.tls = Some(tls.config);
        let store: Arc<dyn Store> = self.store.clone();
        let sink: Arc<dyn tether_route::Sink> = self.log.clone();
        Ok(tether_server::mqtt::start(options, BridgeDeps::new(store, sink)).await?)
    }

    pub async fn shutdown(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown(Duration::from_secs(5)).await;
        }
    }
}

/// A registered device and its private key.
pub struct TestDevice {
    pub id: String,
    pub num_id: u64,
    pub key: PrivateKey,
}

impl TestDevice {
    /// An ES256 JWT for `aud` valid from `iat` to `exp`.
    pub fn jwt_with(&self, aud: &str, iat: i64, exp: i64) -> String {
        let signer = self.key.signer().unwrap();
        let mut buf = vec![0u8; 2048];
        let claims = tether_jwt::Claims {
            aud,
            iat: u64::try_from(iat).unwrap(),
            exp: u64::try_from(exp).unwrap(),
        };
        let n = tether_jwt::mint(&*signer, &claims, &mut buf).unwrap();
        buf.truncate(n);
        String::from_utf8(buf).unwrap()
    }

    /// A valid one-hour token for the project.
    pub fn jwt(&self) -> String {
        let now = now_secs();
        self.jwt_with(PROJECT, now, now + 3600)
    }

    pub fn client_id(&self) -> String {
        client_id(&self.id)
    }

    pub fn private_key_pem(&self) -> String {
        pem_text("PRIVATE KEY", &self.key.pkcs8_der())
    }

    pub fn address(&self) -> tether_server::bridge::hub::DeviceAddress {
        tether_server::bridge::hub::DeviceAddress {
            registry: registry_path(),
            num_id: self.num_id,
        }
    }
}

/// The embedded CA and server certificate in `dir` (created on first use, loaded after).
fn embedded_tls(
    dir: &std::path::Path,
) -> Result<tether_server::tls::TlsSetup, Box<dyn std::error::Error + Send + Sync>> {
    Ok(setup(
        &TlsSource::Embedded {
            data_dir: dir.to_path_buf(),
            host_names: vec!["localhost".into(), "127.0.0.1".into()],
        },
        now_secs(),
    )?)
}

/// A rustls client configuration on ring that trusts only the gateway's CA.
pub fn client_tls(ca_path: &std::path::Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_path).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// rumqttc options for `client_id` with `password`, TLS to the gateway.
pub fn rumqttc_options(
    gw: &Gateway,
    client_id: &str,
    password: Option<&str>,
) -> rumqttc::MqttOptions {
    rumqttc_options_on(gw, gw.port(), client_id, password)
}

/// [`rumqttc_options`] for the node listening on `port` (a second node serves the same
/// certificate).
pub fn rumqttc_options_on(
    gw: &Gateway,
    port: u16,
    client_id: &str,
    password: Option<&str>,
) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(client_id, "localhost", port);
    if let Some(password) = password {
        o.set_credentials("unused", password);
    }
    o.set_keep_alive(Duration::from_secs(60));
    o.set_max_packet_size(512 * 1024, 512 * 1024);
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(client_tls(&gw.ca_path)),
    ));
    o
}

/// Polls the event loop until CONNACK (Ok) or the refusal code (Err).
pub async fn connack(eventloop: &mut rumqttc::EventLoop) -> Result<(), rumqttc::ConnectReturnCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)))) => {
                return match ack.code {
                    rumqttc::ConnectReturnCode::Success => Ok(()),
                    code => Err(code),
                };
            }
            Ok(Ok(_)) => {}
            Ok(Err(rumqttc::ConnectionError::ConnectionRefused(code))) => return Err(code),
            Ok(Err(e)) => panic!("connection failed before CONNACK: {e:?}"),
            Err(_) => panic!("no CONNACK within 10 s"),
        }
    }
}

/// Polls until `pred` accepts an incoming packet (returned), or panics after 10 s.
pub async fn until_incoming<T>(
    eventloop: &mut rumqttc::EventLoop,
    mut pred: impl FnMut(&rumqttc::Packet) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, eventloop.poll()).await {
            Ok(Ok(rumqttc::Event::Incoming(packet))) => {
                if let Some(t) = pred(&packet) {
                    return t;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("connection ended while waiting: {e:?}"),
            Err(_) => panic!("timed out waiting for an incoming packet"),
        }
    }
}

/// Polls until the connection ends; returns the error that ended it.
pub async fn until_closed(eventloop: &mut rumqttc::EventLoop) -> rumqttc::ConnectionError {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, eventloop.poll()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return e,
            Err(_) => panic!("the server did not close the connection"),
        }
    }
}

/// A bare MQTT client on the gateway's plain-TCP listener, built on the shared codec,
/// for what real clients will not do (stay silent, send garbage, skip PUBACKs).
pub struct RawClient {
    pub stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: tokio::net::TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt as _;
        self.stream.write_all(bytes).await.unwrap();
    }

    pub async fn send(&mut self, packet: tether_mqtt::Packet) {
        let bytes = packet.to_vec().unwrap();
        self.send_bytes(&bytes).await;
    }

    /// CONNECT with the device's token and `keep_alive`; expects CONNACK 0.
    pub async fn connect_device(addr: SocketAddr, dev: &TestDevice, keep_alive: u16) -> Self {
        let mut c = Self::connect(addr).await;
        c.send(tether_mqtt::Packet::Connect(tether_mqtt::Connect {
            keep_alive,
            username: Some("unused".into()),
            password: Some(dev.jwt().into_bytes()),
            ..tether_mqtt::Connect::new(dev.client_id())
        }))
        .await;
        match c.recv(Duration::from_secs(5)).await {
            Some(tether_mqtt::Packet::ConnAck(ack))
                if ack.code == tether_mqtt::ConnectReturnCode::Accepted => {}
            other => panic!("expected CONNACK 0, got {other:?}"),
        }
        c
    }

    /// The next packet, or `None` when the server closed the connection. Panics on
    /// timeout.
    pub async fn recv(&mut self, timeout: Duration) -> Option<tether_mqtt::Packet> {
        use tokio::io::AsyncReadExt as _;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tether_mqtt::decode(&self.buf, 1 << 20) {
                Ok(Some((packet, used))) => {
                    self.buf.drain(..used);
                    return Some(packet);
                }
                Ok(None) => {}
                Err(e) => panic!("server sent invalid MQTT: {e}"),
            }
            let mut chunk = [0u8; 4096];
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Ok(Ok(0) | Err(_)) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => panic!("nothing from the server within {timeout:?}"),
            }
        }
    }

    /// Reads until the server closes; panics if it stays open past `timeout`.
    pub async fn expect_closed(&mut self, timeout: Duration) {
        while let Some(packet) = self.recv(timeout).await {
            let _ = packet;
        }
    }
}

/// Mosquitto's client options for the gateway's TLS port, as IoT Core's docs showed
/// them (`-u unused -P <jwt>`), with the protocol `version` (`mqttv311`, `5`).
pub fn mosquitto_args(gw: &Gateway, version: &str, client_id: &str, password: &str) -> Vec<String> {
    [
        "-h",
        "localhost",
        "-p",
        &gw.port().to_string(),
        "--cafile",
        &gw.ca_path.to_string_lossy(),
        "-V",
        version,
        "-i",
        client_id,
        "-u",
        "unused",
        "-P",
        password,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Whether an external tool is installed. Missing: a failure under
/// `TETHER_TEST_REQUIRE_ALL=1`, otherwise a skip with a notice.
pub fn tool_available(tool: &str) -> bool {
    tether_testkit::require(tool, tether_testkit::needs::tool(tool)).is_some()
}

/// Runs a command to completion off the async runtime: (exit code, stdout, stderr).
pub async fn run_tool(program: &str, args: Vec<String>) -> (Option<i32>, String, String) {
    let program = program.to_owned();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(&program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}
