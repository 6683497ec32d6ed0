//! Zero-touch provisioning, driven by rumqttc over TLS and through the HTTP bridge's
//! router: a device that does not exist connects with a claim's token, sends the key
//! its engine made (raw `x‖y`, no CSR) with a proof signed by that key, and then
//! connects as itself. Every refusal says why, and nothing is registered on one.

mod http_support;
mod mqtt_support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use mqtt_support::*;
use rumqttc::{AsyncClient, ConnectReturnCode, QoS};
use serde_json::{Value, json};
use tether_keys::PrivateKey;
use tether_keys::convert::pem_text;
use tether_keys::generate::{KeySpec, generate};
use tether_registry::Store as _;
use tether_registry::model::{PublicKeyCredential, PublicKeyFormat, Timestamp};
use tether_registry::names::{DeviceRef, RegistryPath};
use tether_registry::provisioning::{DeviceTemplate, PROVISIONED_BY, ProvisioningClaim};

const CLAIM: &str = "factory-7";

fn es256() -> PrivateKey {
    generate(KeySpec::Es256).expect("test step")
}

fn token(key: &PrivateKey, aud: &str, iat: i64, sub: Option<&str>) -> String {
    let signer = key.signer().expect("test step");
    let claims = tether_jwt::Claims {
        aud,
        iat: u64::try_from(iat).expect("test step"),
        exp: u64::try_from(iat + 3600).expect("test step"),
    };
    let mut out = vec![0u8; 2048];
    let n = match sub {
        Some(sub) => tether_jwt::mint_proof(&*signer, &claims, sub, &mut out),
        None => tether_jwt::mint(&*signer, &claims, &mut out),
    }
    .expect("test step");
    out.truncate(n);
    String::from_utf8(out).expect("test step")
}

/// A claim's token (IoT Core's claims, signed by the claim key).
fn claim_token(claim_key: &PrivateKey) -> String {
    token(claim_key, PROJECT, now_secs(), None)
}

/// The engine's raw public key: base64 of the 64-byte x‖y.
fn raw_key(key: &PrivateKey) -> String {
    let spki = key.public_key().spki_der();
    base64::engine::general_purpose::STANDARD.encode(&spki[spki.len() - 64..])
}

/// A request for `device` with `key`'s raw public key and a proof signed by `signer`.
fn request(device: &str, key: &PrivateKey, signer: &PrivateKey, sub: &str, iat: i64) -> Value {
    let _ = device;
    json!({
        "publicKey": {"format": "ES256_RAW", "key": raw_key(key)},
        "proof": token(signer, PROJECT, iat, Some(sub)),
    })
}

fn good_request(device: &str, key: &PrivateKey) -> Value {
    request(device, key, key, device, now_secs())
}

fn claim_on(registry: &RegistryPath, key: &PrivateKey) -> ProvisioningClaim {
    ProvisioningClaim {
        registry: registry.clone(),
        id: CLAIM.into(),
        credential: PublicKeyCredential {
            format: PublicKeyFormat::Es256Pem,
            key: pem_text("PUBLIC KEY", key.public_key().spki_der()),
        },
        device_id_pattern: "sensor-[0-9a-f]{8}".into(),
        max_devices: Some(100),
        expiration_time: None,
        device_template: DeviceTemplate {
            metadata: [("batch".to_string(), "2026-12".to_string())].into(),
            ..DeviceTemplate::default()
        },
        devices_provisioned: 0,
        last_used_time: None,
        create_time: None,
        revoke_time: None,
        rotation_grace_secs: 3600,
    }
}

/// Creates the test claim (tweaked) in the gateway's registry; returns its key.
async fn with_claim(gw: &Gateway, tweak: impl FnOnce(&mut ProvisioningClaim)) -> PrivateKey {
    let key = es256();
    let mut claim = claim_on(&registry_path(), &key);
    tweak(&mut claim);
    gw.store
        .create_claim(&claim, Timestamp::from_secs(now_secs()))
        .await
        .expect("test step");
    key
}

/// A provisioning session over MQTT: what connecting did, and the client.
struct Session {
    client: AsyncClient,
    events: rumqttc::EventLoop,
    device: String,
}

impl Session {
    async fn connect(
        gw: &Gateway,
        device: &str,
        password: &str,
    ) -> Result<Self, ConnectReturnCode> {
        let (client, mut events) =
            AsyncClient::new(rumqttc_options(gw, &client_id(device), Some(password)), 8);
        connack(&mut events).await?;
        Ok(Self {
            client,
            events,
            device: device.into(),
        })
    }

    fn result_topic(&self) -> String {
        format!("/devices/{}/provision/result", self.device)
    }

    async fn subscribe(&mut self) {
        self.client
            .subscribe(self.result_topic(), QoS::AtLeastOnce)
            .await
            .expect("test step");
        until_incoming(&mut self.events, |p| match p {
            rumqttc::Packet::SubAck(ack) => Some(ack.return_codes.clone()),
            _ => None,
        })
        .await;
    }

    async fn publish(&mut self, body: &Value) {
        self.client
            .publish(
                format!("/devices/{}/provision", self.device),
                QoS::AtLeastOnce,
                false,
                body.to_string(),
            )
            .await
            .expect("test step");
    }

    async fn reply(&mut self) -> Value {
        let topic = self.result_topic();
        until_incoming(&mut self.events, |p| match p {
            rumqttc::Packet::Publish(p) if p.topic == topic => {
                Some(serde_json::from_slice(&p.payload).expect("test step"))
            }
            _ => None,
        })
        .await
    }

    /// Subscribes, sends `body`, returns the reply.
    async fn provision(&mut self, body: &Value) -> Value {
        self.subscribe().await;
        self.publish(body).await;
        self.reply().await
    }
}

async fn provision_once(gw: &Gateway, claim_key: &PrivateKey, device: &str, body: &Value) -> Value {
    let mut session = Session::connect(gw, device, &claim_token(claim_key))
        .await
        .expect("provisioning session accepted");
    session.provision(body).await
}

fn error_message(reply: &Value) -> String {
    reply["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("an error reply: {reply}"))
        .to_string()
}

/// How many devices the test claim has made.
async fn provisioned_count(gw: &Gateway) -> u64 {
    gw.store
        .get_claim(&registry_path(), CLAIM)
        .await
        .expect("the claim")
        .devices_provisioned
}

async fn device_exists(gw: &Gateway, id: &str) -> bool {
    gw.store
        .get_device(&registry_path(), &DeviceRef::Id(id.into()))
        .await
        .is_ok()
}

/// Connects with the device's own key and publishes one event (QoS 1).
async fn connect_and_publish(gw: &Gateway, device: &str, key: &PrivateKey) {
    let jwt = token(key, PROJECT, now_secs(), None);
    let (client, mut events) =
        AsyncClient::new(rumqttc_options(gw, &client_id(device), Some(&jwt)), 8);
    connack(&mut events)
        .await
        .expect("the device connects with its own key");
    client
        .publish(
            format!("/devices/{device}/events"),
            QoS::AtLeastOnce,
            false,
            "hello",
        )
        .await
        .expect("test step");
    until_incoming(&mut events, |p| {
        matches!(p, rumqttc::Packet::PubAck(_)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_raw_engine_key_is_provisioned_over_mqtt_and_then_connects_as_itself() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let claim_key = with_claim(&gw, |_| {}).await;
    let device_key = es256();
    let reply = provision_once(
        &gw,
        &claim_key,
        "sensor-0a1b2c3d",
        &good_request("sensor-0a1b2c3d", &device_key),
    )
    .await;
    assert_eq!(reply["device"]["id"], "sensor-0a1b2c3d", "{reply}");
    assert_eq!(
        reply["device"]["name"],
        format!("{}/devices/sensor-0a1b2c3d", registry_path())
    );
    assert_eq!(reply["credential"]["format"], "ES256_PEM");
    assert_eq!(
        reply["credential"]["fingerprint"],
        device_key.public_key().fingerprint().to_string()
    );
    let stored = gw.get_device("sensor-0a1b2c3d").await;
    assert_eq!(reply["device"]["numId"], stored.num_id.to_string());
    assert_eq!(
        stored.metadata.get(PROVISIONED_BY).map(String::as_str),
        Some(CLAIM)
    );
    assert_eq!(
        stored.metadata.get("batch").map(String::as_str),
        Some("2026-12")
    );
    assert!(stored.metadata.contains_key("tether.provisionedTime"));
    assert_eq!(stored.credentials.len(), 1);
    let claim = gw.store.get_claim(&registry_path(), CLAIM).await?;
    assert_eq!(claim.devices_provisioned, 1);
    assert!(claim.last_used_time.is_some());

    connect_and_publish(&gw, "sensor-0a1b2c3d", &device_key).await;
    let records = gw.wait_records(TELEMETRY_TOPIC, 1).await;
    assert_eq!(records[0].message.data, b"hello");
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_proof_signed_by_another_key_registers_nothing() -> TestResult {
    // The founding story: the public key copied into the registry was not the one
    // the device held. Here the device's proof exposes the mismatch at once.
    let gw = Gateway::start(|_| {}).await?;
    let claim_key = with_claim(&gw, |_| {}).await;
    let (submitted, held) = (es256(), es256());
    let body = request(
        "sensor-00000001",
        &submitted,
        &held,
        "sensor-00000001",
        now_secs(),
    );
    let reply = provision_once(&gw, &claim_key, "sensor-00000001", &body).await;
    let message = error_message(&reply);
    assert_eq!(reply["error"]["code"], "PERMISSION_DENIED");
    assert!(
        message.contains(&format!(
            "the proof is not signed by the submitted ES256 key ({})",
            submitted.public_key().fingerprint()
        )),
        "{message}"
    );
    assert!(!device_exists(&gw, "sensor-00000001").await);
    assert_eq!(provisioned_count(&gw).await, 0);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn each_refused_request_says_why_and_creates_nothing() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let claim_key = with_claim(&gw, |_| {}).await;
    let key = es256();
    let device = "sensor-00000002";
    let cases = [
        (
            request(device, &key, &key, "sensor-00000003", now_secs()),
            "the proof's sub is 'sensor-00000003'",
        ),
        (
            request(device, &key, &key, device, now_secs() - 3 * 3600),
            "the proof is refused: ",
        ),
        (
            json!({"publicKey": {"format": "ES256_RAW", "key": "AAAA"}, "proof": "x"}),
            "not a P-256 point",
        ),
        (json!({"proof": "x"}), "no 'publicKey'"),
    ];
    let mut session = Session::connect(&gw, device, &claim_token(&claim_key))
        .await
        .expect("session");
    session.subscribe().await;
    for (body, expected) in cases {
        session.publish(&body).await;
        let message = error_message(&session.reply().await);
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
    }
    assert!(!device_exists(&gw, device).await);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_claim_that_cannot_provision_a_device_says_why_in_the_reply() -> TestResult {
    // MQTT 3.1.1's CONNACK cannot carry a reason, so the session is accepted and every
    // request is answered with it: the device can log the exact cause.
    let gw = Gateway::start(|_| {}).await?;
    let claim_key = with_claim(&gw, |c| c.max_devices = Some(1)).await;
    let stray = es256();
    let reply = provision_once(
        &gw,
        &claim_key,
        "thermostat-1",
        &good_request("thermostat-1", &stray),
    )
    .await;
    assert_eq!(reply["error"]["code"], "PERMISSION_DENIED", "{reply}");
    assert!(
        error_message(&reply).contains(
            "device id 'thermostat-1' does not match the pattern 'sensor-[0-9a-f]{8}' of \
             provisioning claim 'factory-7'"
        ),
        "{reply}"
    );
    assert!(!device_exists(&gw, "thermostat-1").await);
    // The claim's one device, then the maximum.
    let first = es256();
    let reply = provision_once(
        &gw,
        &claim_key,
        "sensor-00000010",
        &good_request("sensor-00000010", &first),
    )
    .await;
    assert!(reply.get("device").is_some(), "{reply}");
    let key = es256();
    let reply = provision_once(
        &gw,
        &claim_key,
        "sensor-00000011",
        &good_request("sensor-00000011", &key),
    )
    .await;
    assert_eq!(reply["error"]["code"], "RESOURCE_EXHAUSTED", "{reply}");
    assert!(
        error_message(&reply).contains("has provisioned its maximum of 1 devices"),
        "{reply}"
    );
    // Revoked: refused with when, and the devices it made keep working.
    gw.store
        .revoke_claim(&registry_path(), CLAIM, Timestamp::from_secs(now_secs()))
        .await?;
    let reply = provision_once(
        &gw,
        &claim_key,
        "sensor-00000012",
        &good_request("sensor-00000012", &key),
    )
    .await;
    assert!(error_message(&reply).contains("was revoked at"), "{reply}");
    assert!(!device_exists(&gw, "sensor-00000011").await);
    assert!(!device_exists(&gw, "sensor-00000012").await);
    connect_and_publish(&gw, "sensor-00000010", &first).await;
    // A claim token that breaks IoT Core's rules is refused at CONNECT, as any token.
    let stale = token(&claim_key, PROJECT, now_secs() - 3 * 3600, None);
    assert_eq!(
        Session::connect(&gw, "sensor-00000013", &stale).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_expired_claim_and_another_registry_s_claim_are_refused() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let expired_key = with_claim(&gw, |c| {
        c.id = "old-batch".into();
        c.expiration_time = Some(Timestamp::from_secs(now_secs() + 1));
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let key = es256();
    let reply = provision_once(
        &gw,
        &expired_key,
        "sensor-00000020",
        &good_request("sensor-00000020", &key),
    )
    .await;
    assert!(
        error_message(&reply).contains("provisioning claim 'old-batch' expired at"),
        "{reply}"
    );
    // A claim of registry `other` is not a claim of `fleet`: the unknown device is
    // refused as ever (CONNACK 2), with a word about claims.
    let other = RegistryPath {
        registry: "other".into(),
        ..registry_path()
    };
    gw.store
        .create_registry(&tether_registry::model::DeviceRegistry {
            path: other.clone(),
            ..Default::default()
        })
        .await?;
    let other_key = es256();
    gw.store
        .create_claim(
            &claim_on(&other, &other_key),
            Timestamp::from_secs(now_secs()),
        )
        .await?;
    assert_eq!(
        Session::connect(&gw, "sensor-00000021", &claim_token(&other_key))
            .await
            .err(),
        Some(ConnectReturnCode::BadClientId)
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_provisioning_session_may_not_publish_telemetry_or_subscribe_elsewhere() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let claim_key = with_claim(&gw, |_| {}).await;
    let mut session = Session::connect(&gw, "sensor-00000030", &claim_token(&claim_key))
        .await
        .expect("session");
    session
        .client
        .subscribe("/devices/sensor-00000030/config", QoS::AtLeastOnce)
        .await?;
    let codes = until_incoming(&mut session.events, |p| match p {
        rumqttc::Packet::SubAck(ack) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(codes, vec![rumqttc::SubscribeReasonCode::Failure]);
    session
        .client
        .publish(
            "/devices/sensor-00000030/events",
            QoS::AtLeastOnce,
            false,
            "x",
        )
        .await?;
    until_closed(&mut session.events).await;
    let stored = gw
        .log
        .read(TELEMETRY_TOPIC, 0, 10)
        .await
        .unwrap_or_default();
    assert!(stored.is_empty(), "nothing was stored: {stored:?}");
    assert!(!device_exists(&gw, "sensor-00000030").await);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_retry_gets_the_same_answer_and_a_late_subscriber_its_reply() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let claim_key = with_claim(&gw, |_| {}).await;
    let key = es256();
    let device = "sensor-00000040";
    // Published before subscribing (AWS's pitfall): the reply waits for the SUBSCRIBE.
    let mut session = Session::connect(&gw, device, &claim_token(&claim_key))
        .await
        .expect("session");
    session.publish(&good_request(device, &key)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    session.subscribe().await;
    let first = session.reply().await;
    assert!(first.get("device").is_some(), "{first}");
    drop(session);
    // The reply was lost: the device asks again (its claim token no longer fits the
    // device's keys, which is fine) and gets the same answer; nothing is counted twice.
    let again = provision_once(&gw, &claim_key, device, &good_request(device, &key)).await;
    assert_eq!(again["device"], first["device"]);
    assert_eq!(provisioned_count(&gw).await, 1);
    // The same id with another key is refused, and the device keeps its key.
    let thief = es256();
    let refused = provision_once(&gw, &claim_key, device, &good_request(device, &thief)).await;
    assert_eq!(refused["error"]["code"], "ALREADY_EXISTS", "{refused}");
    assert!(error_message(&refused).contains("already exists"));
    assert_eq!(gw.get_device(device).await.credentials.len(), 1);
    connect_and_publish(&gw, device, &key).await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn two_sessions_provisioning_one_id_at_once_create_one_device() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let claim_key = with_claim(&gw, |_| {}).await;
    let device = "sensor-00000050";
    let (a, b) = (es256(), es256());
    let (body_a, body_b) = (good_request(device, &a), good_request(device, &b));
    let (ra, rb) = tokio::join!(
        provision_once(&gw, &claim_key, device, &body_a),
        provision_once(&gw, &claim_key, device, &body_b),
    );
    let created: Vec<&Value> = [&ra, &rb]
        .into_iter()
        .filter(|r| r.get("device").is_some())
        .collect();
    assert_eq!(created.len(), 1, "{ra} / {rb}");
    assert_eq!(provisioned_count(&gw).await, 1);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn without_claims_an_unknown_device_is_refused_exactly_as_before() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let stranger = es256();
    let code = Session::connect(&gw, "sensor-00000060", &claim_token(&stranger))
        .await
        .err();
    assert_eq!(code, Some(ConnectReturnCode::BadClientId));
    // With a claim, the same stranger's token is still refused the same way.
    with_claim(&gw, |_| {}).await;
    let code = Session::connect(&gw, "sensor-00000060", &claim_token(&stranger))
        .await
        .err();
    assert_eq!(code, Some(ConnectReturnCode::BadClientId));
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_http_bridge_provisions_with_the_same_body_and_reply() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let app = http_support::app(&gw);
    let uri = |d: &str| format!("/v1/{}:provision", http_support::device_name(d));
    // No claims yet: refused, saying so.
    let key = es256();
    let (status, body, _) = http_support::call(
        &app,
        Method::POST,
        &uri("sensor-000000a0"),
        Some(&claim_token(&key)),
        Some(good_request("sensor-000000a0", &key)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("test step")
            .contains("no provisioning claims")
    );

    let claim_key = with_claim(&gw, |_| {}).await;
    let (status, body, _) = http_support::call(
        &app,
        Method::POST,
        &uri("sensor-000000a0"),
        Some(&claim_token(&claim_key)),
        Some(good_request("sensor-000000a0", &key)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device"]["id"], "sensor-000000a0");
    assert_eq!(
        body["credential"]["fingerprint"],
        key.public_key().fingerprint().to_string()
    );
    // The device then uses its own key, over HTTP too.
    let (status, body, _) = http_support::call(
        &app,
        Method::POST,
        &format!(
            "/v1/{}:publishEvent",
            http_support::device_name("sensor-000000a0")
        ),
        Some(&token(&key, PROJECT, now_secs(), None)),
        Some(json!({"binaryData": "aGk="})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The story's mistake over HTTP: Google's envelope with the precise message.
    let other = es256();
    let (status, body, _) = http_support::call(
        &app,
        Method::POST,
        &uri("sensor-000000a1"),
        Some(&claim_token(&claim_key)),
        Some(request(
            "sensor-000000a1",
            &key,
            &other,
            "sensor-000000a1",
            now_secs(),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("test step")
            .contains("not signed by the submitted"),
        "{body}"
    );
    // A token that no claim signed.
    let (status, body, _) = http_support::call(
        &app,
        Method::POST,
        &uri("sensor-000000a2"),
        Some(&claim_token(&other)),
        Some(good_request("sensor-000000a2", &other)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!device_exists(&gw, "sensor-000000a1").await);
    assert!(!device_exists(&gw, "sensor-000000a2").await);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn claims_are_managed_through_the_admin_api() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let app = http_support::app(&gw);
    let admin = Some(http_support::ADMIN_TOKEN);
    let base = format!("/v1/{}/provisioningClaims", registry_path());
    let key = es256();
    let body = json!({
        "credential": {"publicKey": {"format": "ES256_PEM", "key": pem_text("PUBLIC KEY", key.public_key().spki_der())}},
        "deviceIdPattern": "^sensor-[0-9a-f]{8}$",
        "maxDevices": 100,
        "deviceTemplate": {"metadata": {"site": "lyon"}, "logLevel": "INFO"},
    });
    let (status, created, _) = http_support::call(
        &app,
        Method::POST,
        &format!("{base}?claimId=line-1"),
        admin,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(
        created["name"],
        format!("{}/provisioningClaims/line-1", registry_path())
    );
    assert_eq!(created["state"], "ACTIVE");
    assert_eq!(created["devicesProvisioned"], "0");
    assert_eq!(created["maxDevices"], "100");
    assert_eq!(
        created["credential"]["fingerprint"],
        key.public_key().fingerprint().to_string()
    );
    let (status, again, _) = http_support::call(
        &app,
        Method::POST,
        &format!("{base}?claimId=line-1"),
        admin,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    // Each bad field is named.
    for (tweak, expected) in [
        (
            json!({"deviceIdPattern": "sensor-("}),
            "deviceIdPattern is not a usable",
        ),
        (json!({"maxDevices": 0}), "maxDevices is 0"),
        (
            json!({"expirationTime": "2001-01-01T00:00:00Z"}),
            "expirationTime is in the past",
        ),
        (
            json!({"deviceTemplate": {"metadata": {"tether.provisionedBy": "x"}}}),
            "must not set",
        ),
        (
            json!({"credential": {"publicKey": {"format": "RSA_PEM", "key": pem_text("PUBLIC KEY", key.public_key().spki_der())}}}),
            "credential",
        ),
        (json!({"color": "red"}), "color"),
    ] {
        let mut bad = body.clone();
        for (k, v) in tweak.as_object().expect("test step") {
            bad[k] = v.clone();
        }
        let (status, refused, _) = http_support::call(
            &app,
            Method::POST,
            &format!("{base}?claimId=bad-1"),
            admin,
            Some(bad),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{expected}: {refused}");
        let message = refused["error"]["message"].as_str().expect("test step");
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
    }

    let (status, listed, _) = http_support::call(&app, Method::GET, &base, admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed["provisioningClaims"].as_array().map(Vec::len),
        Some(1)
    );
    let (status, revoked, _) =
        http_support::call(&app, Method::DELETE, &format!("{base}/line-1"), admin, None).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["state"], "REVOKED");
    assert!(revoked["revokeTime"].is_string());
    let (status, got, _) =
        http_support::call(&app, Method::GET, &format!("{base}/line-1"), admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["state"], "REVOKED");
    let (status, _, _) =
        http_support::call(&app, Method::GET, &format!("{base}/nope"), admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The admin token is required, as for every other resource.
    let (status, _, _) = http_support::call(&app, Method::GET, &base, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    gw.shutdown().await;
    Ok(())
}

/// SDK options for `device` signed by `key` (a claim's or the device's own).
fn sdk_options(gw: &Gateway, device: &str, key: &PrivateKey) -> tether_device::DeviceOptions {
    let path = gw
        .dir
        .path()
        .join(format!("{device}-{}.pem", key.public_key().fingerprint()));
    std::fs::write(&path, pem_text("PRIVATE KEY", &key.pkcs8_der())).expect("key written");
    let signer = tether_device::open_signer(&path.display().to_string()).expect("signer");
    let ca = std::fs::read(&gw.ca_path).expect("CA");
    tether_device::DeviceOptions::new(
        tether_device::DevicePath::new(PROJECT, LOCATION, REGISTRY, device.to_string()),
        signer,
    )
    .endpoint(tether_device::Endpoint::new("localhost", gw.port()))
    .ca_pem(&ca)
    .expect("CA parsed")
}

#[tokio::test]
async fn the_device_sdk_provisions_on_first_boot_then_connects_with_its_own_key() -> TestResult {
    use tether_device::{ConnectError, Device, ProvisionError, provision};
    use tether_mqtt::ConnectReturnCode;

    let gw = Gateway::start(|_| {}).await?;
    let claim_key = with_claim(&gw, |_| {}).await;
    let device = "sensor-5d000001";
    let own_key = es256();
    let own = sdk_options(&gw, device, &own_key);
    let claim = sdk_options(&gw, device, &claim_key);
    let new_signer = own.signer.clone();

    // First boot: not registered yet, so the SDK provisions, then connects.
    let first = Device::connect(own.clone()).await;
    assert!(
        matches!(
            first,
            Err(ConnectError::Refused {
                code: ConnectReturnCode::IdentifierRejected,
                ..
            })
        ),
        "{first:?}"
    );
    let done = provision(&claim, &new_signer, own_key.public_key()).await?;
    assert_eq!(done.device_id, device);
    assert_eq!(
        done.fingerprint,
        own_key.public_key().fingerprint().to_string()
    );
    let connected = Device::connect(own).await?;
    connected
        .publish_event(None, b"booted".to_vec(), tether_device::QoS::AtLeastOnce)
        .await?;
    connected.disconnect().await;

    // A device whose proof key is not the key it sends gets the server's reason.
    let other = es256();
    let wrong = sdk_options(&gw, "sensor-5d000002", &other).signer;
    match provision(
        &sdk_options(&gw, "sensor-5d000002", &claim_key),
        &wrong,
        own_key.public_key(),
    )
    .await
    {
        Err(ProvisionError::Request(message)) => panic!("made no request: {message}"),
        Err(ProvisionError::Refused { code, message }) => {
            assert_eq!(code, "PERMISSION_DENIED");
            assert!(
                message.contains("not signed by the submitted ES256 key"),
                "{message}"
            );
        }
        other => panic!("the proof must be refused: {other:?}"),
    }
    // A device id the claim does not cover: the server's reason reaches the device.
    let outside = provision(
        &sdk_options(&gw, "thermostat-9", &claim_key),
        &new_signer,
        own_key.public_key(),
    )
    .await;
    assert!(
        matches!(
            &outside,
            Err(ProvisionError::Refused { message, .. })
                if message.contains("does not match the pattern")
        ),
        "{outside:?}"
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_device_rotates_to_a_new_key_and_the_old_one_expires_after_the_grace() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let claim_key = with_claim(&gw, |c| c.rotation_grace_secs = 2).await;
    let device = "sensor-00000070";
    let old = es256();
    let reply = provision_once(&gw, &claim_key, device, &good_request(device, &old)).await;
    assert!(reply.get("device").is_some(), "{reply}");

    // Connected with its own key, the device asks for a new one.
    let mut own = Session::connect(&gw, device, &token(&old, PROJECT, now_secs(), None))
        .await
        .expect("the device's own key");
    own.subscribe().await;
    let new = es256();
    // A proof by another key changes nothing.
    own.publish(&request(device, &new, &es256(), device, now_secs()))
        .await;
    let refused = own.reply().await;
    assert!(
        error_message(&refused).contains("not signed by the submitted"),
        "{refused}"
    );
    assert_eq!(gw.get_device(device).await.credentials.len(), 1);
    own.publish(&good_request(device, &new)).await;
    let rotated = own.reply().await;
    assert_eq!(
        rotated["credential"]["fingerprint"],
        new.public_key().fingerprint().to_string(),
        "{rotated}"
    );
    let stored = gw.get_device(device).await;
    assert_eq!(stored.credentials.len(), 2);
    assert!(
        stored.credentials[0].expiration_time.is_some(),
        "the old key expires"
    );
    assert_eq!(stored.credentials[1].expiration_time, None);
    drop(own);

    // Both keys work during the grace; then only the new one.
    connect_and_publish(&gw, device, &old).await;
    connect_and_publish(&gw, device, &new).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        Session::connect(&gw, device, &token(&old, PROJECT, now_secs(), None))
            .await
            .err(),
        Some(ConnectReturnCode::NotAuthorized),
        "the old key expired"
    );
    connect_and_publish(&gw, device, &new).await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn two_nodes_provisioning_one_id_at_once_create_one_device() -> TestResult {
    // Two nodes on one store (a cluster behind a load balancer); PostgreSQL's row lock
    // on the claim is covered by the store conformance suite.
    let gw = Gateway::start(|_| {}).await?;
    let second = gw.second_node().await?;
    let port = *second.tls_addrs().first().ok_or("no TLS listener")?;
    let claim_key = with_claim(&gw, |_| {}).await;
    let device = "sensor-000000c1";
    let (a, b) = (es256(), es256());
    let on = |port: u16, key: &PrivateKey| {
        let options = rumqttc_options_on(
            &gw,
            port,
            &client_id(device),
            Some(&claim_token(&claim_key)),
        );
        let body = good_request(device, key);
        async move {
            let (client, events) = AsyncClient::new(options, 8);
            let mut session = Session {
                client,
                events,
                device: device.into(),
            };
            connack(&mut session.events).await.expect("claim session");
            session.provision(&body).await
        }
    };
    let (ra, rb) = tokio::join!(on(gw.port(), &a), on(port.port(), &b));
    let created = [&ra, &rb]
        .iter()
        .filter(|r| r.get("device").is_some())
        .count();
    assert_eq!(created, 1, "{ra} / {rb}");
    assert_eq!(provisioned_count(&gw).await, 1);
    second.shutdown(Duration::from_secs(5)).await;
    gw.shutdown().await;
    Ok(())
}
