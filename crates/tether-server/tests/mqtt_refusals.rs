//! Every CONNECT refusal, driven by rumqttc over TLS: the CONNACK code (spec §1.3
//! recommendation) and the precise `lastErrorStatus` stored on the device.

mod mqtt_support;

use mqtt_support::*;
use rumqttc::{AsyncClient, ConnectReturnCode};
use tether_registry::model::{MqttState, Status, Timestamp};

async fn refusal(gw: &Gateway, client_id: &str, password: Option<&str>) -> ConnectReturnCode {
    let (_client, mut events) = AsyncClient::new(rumqttc_options(gw, client_id, password), 4);
    match connack(&mut events).await {
        Ok(()) => panic!("{client_id}: CONNECT was accepted"),
        Err(code) => code,
    }
}

fn prefixed(status: &Status) -> bool {
    status.message.starts_with("mqtt: SERVER: ")
}

#[tokio::test]
async fn malformed_client_id_is_2() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let id = format!("projects/{PROJECT}/location/{LOCATION}/registries/{REGISTRY}/devices/dev-1");
    assert_eq!(
        refusal(&gw, &id, Some(&dev.jwt())).await,
        ConnectReturnCode::BadClientId
    );
    gw.wait_no_connections().await;
    assert_eq!(gw.get_device("dev-1").await.last_error_status, None);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unknown_device_and_registry_are_2() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    assert_eq!(
        refusal(&gw, &client_id("Dev-1"), Some(&dev.jwt())).await,
        ConnectReturnCode::BadClientId,
        "device ids are case-sensitive"
    );
    // A numId in place of the id is not accepted over MQTT (docs/compatibility.md).
    assert_eq!(
        refusal(&gw, &client_id(&dev.num_id.to_string()), Some(&dev.jwt())).await,
        ConnectReturnCode::BadClientId
    );
    let other = format!("projects/{PROJECT}/locations/{LOCATION}/registries/nope/devices/dev-1");
    assert_eq!(
        refusal(&gw, &other, Some(&dev.jwt())).await,
        ConnectReturnCode::BadClientId
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn missing_or_unparsable_password_is_4() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    gw.device("dev-1").await?;
    assert_eq!(
        refusal(&gw, &client_id("dev-1"), None).await,
        ConnectReturnCode::BadUserNamePassword
    );
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("no password"))
        .await;
    assert_eq!(status.code, 16);
    assert!(prefixed(&status), "{status:?}");

    assert_eq!(
        refusal(&gw, &client_id("dev-1"), Some("not-a-jwt")).await,
        ConnectReturnCode::BadUserNamePassword
    );
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("JWT is malformed"))
        .await;
    assert_eq!(status.code, 16);
    assert!(
        !status.message.contains("not-a-jwt"),
        "the token is never stored"
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn wrong_audience_is_5_with_the_precise_reason() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let now = now_secs();
    let token = dev.jwt_with("h4nh44-1", now, now + 600);
    assert_eq!(
        refusal(&gw, &dev.client_id(), Some(&token)).await,
        ConnectReturnCode::NotAuthorized
    );
    let status = gw.wait_error("dev-1", |s| s.message.contains("aud")).await;
    assert_eq!(status.code, 16);
    assert!(
        status
            .message
            .starts_with("mqtt: SERVER: JWT `aud` is 'h4nh44-1' but the project is 'acme'"),
        "{status:?}"
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn expired_token_is_5() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let now = now_secs();
    let token = dev.jwt_with(PROJECT, now - 7200, now - 3600);
    assert_eq!(
        refusal(&gw, &dev.client_id(), Some(&token)).await,
        ConnectReturnCode::NotAuthorized
    );
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("expired"))
        .await;
    assert_eq!(status.code, 16);
    assert!(
        status
            .message
            .starts_with("mqtt: SERVER: The authorization token expired"),
        "{status:?}"
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn token_signed_with_another_key_is_5() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    gw.device("dev-1").await?;
    let impostor = gw.device("other").await?;
    let token = impostor.jwt();
    assert_eq!(
        refusal(&gw, &client_id("dev-1"), Some(&token)).await,
        ConnectReturnCode::NotAuthorized
    );
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("signature"))
        .await;
    assert_eq!(status.code, 16);
    assert!(
        status
            .message
            .contains("ES256 signature does not verify with the registered key (ES256 sha256:"),
        "{status:?}"
    );
    // Both sides of the mismatch: the impostor's key is among the two the signature
    // was recovered to.
    let signer = impostor.key.public_key().fingerprint().short().to_string();
    assert!(
        status
            .message
            .contains("if intact, the token was signed by the key sha256:")
            && status.message.contains(&signer),
        "{signer} not named in {status:?}"
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn blocked_device_is_5() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let mut device = gw.get_device("dev-1").await;
    device.blocked = true;
    gw.update_device(&device).await?;
    assert_eq!(
        refusal(&gw, &dev.client_id(), Some(&dev.jwt())).await,
        ConnectReturnCode::NotAuthorized
    );
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("blocked"))
        .await;
    assert_eq!(status.code, 7);
    assert!(prefixed(&status));
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn mqtt_disabled_registry_is_5() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    gw.set_mqtt_state(MqttState::Disabled).await;
    assert_eq!(
        refusal(&gw, &dev.client_id(), Some(&dev.jwt())).await,
        ConnectReturnCode::NotAuthorized
    );
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("MQTT_DISABLED"))
        .await;
    assert_eq!(status.code, 9);
    // MQTT_STATE_UNSPECIFIED counts as enabled.
    gw.set_mqtt_state(MqttState::Unspecified).await;
    let (_c, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&dev.jwt())), 4);
    assert_eq!(connack(&mut events).await, Ok(()));
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_unusable_stored_key_is_named_in_the_refusal() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let mut device = gw.get_device("dev-1").await;
    device.credentials[0].public_key.key =
        "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n".into();
    gw.update_device(&device).await?;
    assert_eq!(
        refusal(&gw, &dev.client_id(), Some(&dev.jwt())).await,
        ConnectReturnCode::NotAuthorized
    );
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("credentials[0]"))
        .await;
    assert!(
        status.message.contains("no registered credentials")
            && status
                .message
                .contains("credentials[0] (ES256_PEM) cannot be used"),
        "{status:?}"
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn padded_token_is_accepted_with_a_stored_warning() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    // IoT Core accepted '=' padding (esp-idf#10018); strict verifiers do not.
    let padded = format!("{}==", dev.jwt());
    let (_c, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&padded)), 4);
    assert_eq!(connack(&mut events).await, Ok(()));
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("non-canonical"))
        .await;
    assert_eq!(status.code, 0);
    assert!(
        status
            .message
            .starts_with("mqtt: SERVER: JWT accepted with a warning: non-canonical encoding accepted: '=' padding"),
        "{status:?}"
    );
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn strict_policy_refuses_a_padded_token() -> TestResult {
    let gw = Gateway::start(|o| o.jwt.encoding = tether_jwt::EncodingPolicy::Strict).await?;
    let dev = gw.device("dev-1").await?;
    let padded = format!("{}==", dev.jwt());
    assert_eq!(
        refusal(&gw, &dev.client_id(), Some(&padded)).await,
        ConnectReturnCode::NotAuthorized
    );
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("strict encoding policy"))
        .await;
    assert_eq!(status.code, 16);
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_registry_that_does_not_answer_is_3_and_the_device_may_retry() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    // The database goes away (here: its pool is closed under the running server).
    gw.store.close().await;
    assert_eq!(
        refusal(&gw, &dev.client_id(), Some(&dev.jwt())).await,
        ConnectReturnCode::ServiceUnavailable,
        "3 (server unavailable), not 5: the device's credentials were never judged"
    );
    gw.wait_no_connections().await;
    gw.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_refusal_is_stored_at_once_even_with_hourly_activity_batches() -> TestResult {
    // Activity (heartbeats, event times) waits for the hourly batch; an error must not:
    // the user running `tether doctor` reads it right after the CONNACK.
    let gw = Gateway::start(|o| o.activity_interval = std::time::Duration::from_secs(3600)).await?;
    let dev = gw.device("dev-1").await?;
    let mut device = gw.get_device("dev-1").await;
    device.blocked = true;
    gw.update_device(&device).await?;
    assert_eq!(
        refusal(&gw, &dev.client_id(), Some(&dev.jwt())).await,
        ConnectReturnCode::NotAuthorized
    );
    let mut stored = None;
    for _ in 0..50 {
        stored = gw.get_device("dev-1").await.last_error_status;
        if stored.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = stored.ok_or("no lastErrorStatus within 1 s of the refusal")?;
    assert!(status.message.contains("blocked"), "{status:?}");
    gw.shutdown().await;
    Ok(())
}

/// A device that reconnects with the same token skips the signature check; that must
/// never let it in after its key was replaced, expired or it was blocked.
#[tokio::test]
async fn a_token_accepted_before_is_refused_after_its_key_changes() -> TestResult {
    let gw = Gateway::start(|_| {}).await?;
    let dev = gw.device("dev-1").await?;
    let token = dev.jwt();
    for _ in 0..2 {
        let (_client, mut events) =
            AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&token)), 4);
        assert_eq!(connack(&mut events).await, Ok(()));
    }
    let original = gw.get_device("dev-1").await;
    let stranger = gw.device("stranger").await?;
    let mut changed = original.clone();
    changed.credentials = gw.get_device("stranger").await.credentials;
    gw.update_device(&changed).await?;
    assert_eq!(
        refusal(&gw, &dev.client_id(), Some(&token)).await,
        ConnectReturnCode::NotAuthorized
    );
    let status = gw
        .wait_error("dev-1", |s| s.message.contains("does not verify"))
        .await;
    assert!(status.message.contains("ES256 signature"), "{status:?}");
    drop(stranger);

    let mut expired = original.clone();
    expired.credentials[0].expiration_time = Some(Timestamp::from_secs(now_secs() - 1));
    gw.update_device(&expired).await?;
    assert_eq!(
        refusal(&gw, &dev.client_id(), Some(&token)).await,
        ConnectReturnCode::NotAuthorized
    );
    gw.wait_error("dev-1", |s| {
        s.message.contains("past their expiration time")
    })
    .await;

    let mut blocked = original.clone();
    blocked.blocked = true;
    gw.update_device(&blocked).await?;
    assert_eq!(
        refusal(&gw, &dev.client_id(), Some(&token)).await,
        ConnectReturnCode::NotAuthorized
    );
    gw.wait_error("dev-1", |s| s.message.contains("blocked"))
        .await;

    // Back as it was: the same token is let in again.
    gw.update_device(&original).await?;
    let (_client, mut events) =
        AsyncClient::new(rumqttc_options(&gw, &dev.client_id(), Some(&token)), 4);
    assert_eq!(connack(&mut events).await, Ok(()));
    gw.shutdown().await;
    Ok(())
}
