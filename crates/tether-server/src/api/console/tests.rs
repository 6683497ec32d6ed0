//! The console's routes without a browser: headers, the token, each call's refusals
//! and answers. The browser tests are in tether-cli tests/it/console_e2e.rs.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tether_log::{EmbeddedLog, LogConfig};
use tether_registry::model::{
    Device, DeviceCredential, DeviceRegistry, PublicKeyCredential, PublicKeyFormat,
};
use tether_registry::names::RegistryPath;
use tether_registry::{SqliteStore, Store};
use tower::ServiceExt as _;

use super::*;
use crate::api::auth::AdminAuth;
use crate::bridge::auth::JwtPolicy;
use crate::bridge::hub::Disconnected;
use crate::bridge::{Clock as _, SystemClock};

const TOKEN: &str = "console-test-token-123456";
const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENxuJLM8nEPdT/SC96SPSF74qVxnA
1oY9t0KduDT1ohy3Ig/5G1Nj3dCnmklowwSfFMJxUA02ZE4rYHkbZSxYag==
-----END PUBLIC KEY-----
";

async fn console(reader: Option<Arc<dyn TelemetryReader>>) -> (Router, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.expect("in-memory store"));
    let state = ApiState {
        store: store.clone(),
        hub: Arc::new(Disconnected),
        admin: AdminAuth::from_token(TOKEN, "the file ./tether-data/admin-token"),
        clock: Arc::new(SystemClock),
    };
    (routes(state, reader, JwtPolicy::default()), store)
}

async fn send(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let resp = router
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("infallible");
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

async fn json_call(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, _, bytes) = send(router, method, uri, body, Some(TOKEN)).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn registry_with_device(store: &Arc<dyn Store>) -> RegistryPath {
    let path = RegistryPath {
        project: "acme".into(),
        location: "us-central1".into(),
        registry: "fleet".into(),
    };
    store
        .create_registry(&DeviceRegistry {
            path: path.clone(),
            ..DeviceRegistry::default()
        })
        .await
        .expect("registry");
    let device = Device {
        id: "dev-1".into(),
        credentials: vec![DeviceCredential {
            public_key: PublicKeyCredential {
                format: PublicKeyFormat::Es256Pem,
                key: KEY.into(),
            },
            expiration_time: None,
        }],
        ..Device::default()
    };
    store
        .create_device(&path, &device, tether_registry::model::Timestamp(0))
        .await
        .expect("device");
    path
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let (router, _) = console(None).await;
    for uri in [
        "/console/",
        "/console/assets/app.js",
        "/console/assets/nope.js",
        "/console/api/fleet",
    ] {
        let (_, headers, _) = send(&router, "GET", uri, None, None).await;
        let csp = headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{uri}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{uri}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{uri}: {csp}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{uri}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
    }
    let (status, headers, body) = send(&router, "GET", "/console/", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let page = String::from_utf8_lossy(&body);
    assert!(page.contains(r#"<script type="module" src="assets/app.js">"#));
    let (status, headers, _) = send(&router, "GET", "/console/assets/app.js", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let (status, _, body) = send(&router, "GET", "/console/assets/nope.js", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, b"the console has no file 'nope.js'");
    let (status, headers, _) = send(&router, "GET", "/console", None, None).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "/console/");
}

/// The page's own defences, checked on its source: no inline script in the page, and
/// the script never turns text into markup.
#[test]
fn the_page_never_parses_server_text_as_markup() {
    let page = include_str!("../../../console/index.html");
    for (i, _) in page.match_indices("<script") {
        let tag = &page[i..page[i..].find('>').map_or(page.len(), |e| i + e)];
        assert!(tag.contains(" src="), "inline script in index.html: {tag}");
    }
    let script = include_str!("../../../console/app.js");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
}

#[tokio::test]
async fn calls_without_the_admin_token_get_no_data() {
    let (router, store) = console(None).await;
    let registry = registry_with_device(&store).await;
    let name = registry.device_name("dev-1");
    let calls = [
        (
            "GET",
            format!("/console/api/presence?registry={registry}&numIds=1"),
        ),
        ("GET", format!("/console/api/device?name={name}")),
        ("POST", "/console/api/diagnose".to_string()),
        ("GET", "/console/api/fleet".to_string()),
        (
            "GET",
            "/console/api/stream?topic=projects/acme/topics/t".to_string(),
        ),
    ];
    for (method, uri) in &calls {
        for token in [None, Some("wrong-token-123456")] {
            let body = (*method == "POST").then(|| json!({"token": "a.b.c", "device": name}));
            let (status, _, bytes) = send(&router, method, uri, body, token).await;
            let v: Value = serde_json::from_slice(&bytes).expect("JSON error");
            let expected = match token {
                None => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
                Some(_) => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
            };
            assert_eq!(
                (status, v["error"]["status"].as_str().unwrap_or("")),
                expected,
                "{method} {uri}"
            );
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("dev-1") && !text.contains("sha256:"),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn presence_and_device_answer_and_refuse_bad_input() {
    let (router, store) = console(None).await;
    let registry = registry_with_device(&store).await;
    let (status, v) = json_call(
        &router,
        "GET",
        &format!("/console/api/presence?registry={registry}&numIds=1,2"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, json!({"online": {"1": false, "2": false}}));
    let too_many = (0..=device::PRESENCE_MAX)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    for (query, message) in [
        (format!("registry={registry}"), "numIds is required"),
        ("numIds=1".to_string(), "registry is required"),
        (
            format!("registry={registry}&numIds=1,x"),
            "'x' is not a device numId",
        ),
        (
            format!("registry={registry}&numIds={too_many}"),
            "at most 500 per call",
        ),
        ("registry=nonsense&numIds=1".to_string(), "nonsense"),
    ] {
        let (status, v) = json_call(
            &router,
            "GET",
            &format!("/console/api/presence?{query}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {v}");
        let got = v["error"]["message"].as_str().unwrap_or_default();
        assert!(got.contains(message), "{query}: {got}");
    }

    let name = registry.device_name("dev-1");
    let (status, v) = json_call(
        &router,
        "GET",
        &format!("/console/api/device?name={name}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["online"], false);
    let key = &v["credentials"][0];
    assert_eq!(key["format"], "ES256_PEM");
    let fingerprint = key["fingerprint"].as_str().unwrap_or_default();
    assert!(
        fingerprint.starts_with("sha256:") && fingerprint.len() == 71,
        "{key}"
    );
    let missing = registry.device_name("nobody");
    let (status, v) = json_call(
        &router,
        "GET",
        &format!("/console/api/device?name={missing}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn the_debugger_diagnoses_against_the_devices_keys() {
    let (router, store) = console(None).await;
    let registry = registry_with_device(&store).await;
    let name = registry.device_name("dev-1");
    // A token signed by another key, with padded base64 in its signature.
    let other =
        tether_keys::generate::generate(tether_keys::generate::KeySpec::Es256).expect("key");
    let signer = other.signer().expect("signer");
    let now = u64::try_from(SystemClock.unix_secs()).unwrap_or(0);
    let claims = tether_jwt::Claims {
        aud: "acme",
        iat: now,
        exp: now + 600,
    };
    let mut buf = vec![0u8; 2048];
    let n = tether_jwt::mint(&*signer, &claims, &mut buf).expect("token");
    let token = String::from_utf8_lossy(&buf[..n]).into_owned();
    let padded = format!("{token}==");
    let (status, v) = json_call(
        &router,
        "POST",
        "/console/api/diagnose",
        Some(json!({"token": padded, "device": name})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["code"].as_str()).collect())
        .unwrap_or_default();
    assert!(codes.contains(&"base64-padding"), "{codes:?}");
    assert!(codes.contains(&"wrong-key"), "{codes:?}");
    assert_eq!(v["valid"], false);
    assert_eq!(v["project"], "acme");
    assert_eq!(v["keys"][0]["credential"], 0);
    assert_eq!(v["device"], name);

    // An expired key is left out, as the gateway leaves it out.
    let mut device = store
        .get_device(
            &registry,
            &tether_registry::names::DeviceRef::Id("dev-1".into()),
        )
        .await
        .expect("device");
    let mut expired = device.credentials[0].clone();
    expired.expiration_time = Some(tether_registry::model::Timestamp::from_secs(1));
    device.credentials.push(expired);
    store
        .update_device(&registry, &device)
        .await
        .expect("update");
    let (_, v) = json_call(
        &router,
        "POST",
        "/console/api/diagnose",
        Some(json!({"token": token, "device": name})),
    )
    .await;
    assert_eq!(v["keys"].as_array().map(Vec::len), Some(1), "{v}");
    let skipped = v["skippedKeys"][0].as_str().unwrap_or_default();
    assert!(
        skipped.starts_with("credentials[1] (ES256_PEM) expired at 1970-01-01T00:00:01"),
        "{skipped}"
    );

    for (body, status, message) in [
        (json!({}), StatusCode::BAD_REQUEST, "token is required"),
        (
            json!({"token": "x", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "unknown field 'colour'",
        ),
        (
            json!({"token": "x", "device": registry.device_name("nobody")}),
            StatusCode::NOT_FOUND,
            "nobody",
        ),
        (
            json!({"token": "x", "device": 7}),
            StatusCode::BAD_REQUEST,
            "device must be a string",
        ),
    ] {
        let (got, v) = json_call(&router, "POST", "/console/api/diagnose", Some(body)).await;
        assert_eq!(got, status, "{v}");
        let text = v["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{text}");
    }
}

#[test]
fn fleet_numbers_are_read_from_prometheus_text() {
    let text = "# HELP tether_mqtt_connections Open sockets.\n\
        # TYPE tether_mqtt_connections gauge\n\
        tether_mqtt_connections 3\n\
        tether_mqtt_connects_total 10\n\
        tether_mqtt_messages_in_total{kind=\"event\"} 7\n\
        tether_mqtt_messages_in_total{kind=\"state\"} 2\n\
        tether_mqtt_refusals_total{reason=\"jwt_wrong_key\"} 4\n\
        tether_mqtt_refusals_total{reason=\"unknown_device\"} 1\n\
        tether_http_bridge_requests_total{kind=\"event\",code=\"200\"} 5\n\
        garbage line\n";
    let n = fleet::parse(text);
    assert_eq!(n.connections, 3.0);
    assert_eq!(n.connects, 10.0);
    assert_eq!(n.messages_in, 9.0);
    assert_eq!(n.http_requests, 5.0);
    assert_eq!(n.refusals.get("jwt_wrong_key"), Some(&4.0));
    assert_eq!(n.refusals.get("unknown_device"), Some(&1.0));
}

#[tokio::test]
async fn the_stream_sends_new_messages_of_a_device() {
    let (router, _) = console(None).await;
    let (status, v) = json_call(
        &router,
        "GET",
        "/console/api/stream?topic=projects/acme/topics/t",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["status"], "FAILED_PRECONDITION");

    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        EmbeddedLog::open(LogConfig::new(dir.path()))
            .await
            .expect("log"),
    );
    let (router, _) = console(Some(log.clone())).await;
    let coordinates = |id: &str| tether_log::DeviceCoordinates {
        project_id: "acme".into(),
        location: "us-central1".into(),
        registry_id: "fleet".into(),
        device_id: id.into(),
        device_num_id: 7,
    };
    let topic = "projects/acme/topics/t";
    let old = tether_log::Message::event(topic, &coordinates("dev-1"), "", b"old".to_vec(), 1);
    log.append(vec![old]).await.expect("append");
    for (query, message) in [
        ("topic=t&colour=red", "unknown query parameter 'colour'"),
        ("device=dev-1", "topic is required"),
        ("topic=t&from=-1", "is not an offset"),
    ] {
        let (status, v) = json_call(
            &router,
            "GET",
            &format!("/console/api/stream?{query}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let text = v["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{text}");
    }

    let req = Request::get(format!(
        "/console/api/stream?topic={topic}&registry=fleet&device=dev-1"
    ))
    .header("authorization", format!("Bearer {TOKEN}"))
    .body(Body::empty())
    .expect("request");
    let resp = router.oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/event-stream; charset=utf-8"
    );
    let mut body = resp.into_body();
    let mut seen = String::new();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a chunk in time")
            .and_then(|f| f.ok())
            .and_then(|f| f.into_data().ok())
            .map(|d| String::from_utf8_lossy(&d).into_owned())
            .unwrap_or_default()
    };
    seen.push_str(&next().await);
    assert!(
        seen.starts_with("event: open\ndata: {\"from\":\"1\"}"),
        "{seen}"
    );
    let other = tether_log::Message::event(topic, &coordinates("dev-2"), "", b"x".to_vec(), 2);
    let mut elsewhere = coordinates("dev-1");
    elsewhere.registry_id = "another".into();
    let same_id = tether_log::Message::event(topic, &elsewhere, "", b"y".to_vec(), 2);
    let mine = tether_log::Message::event(topic, &coordinates("dev-1"), "a", b"<b>".to_vec(), 3);
    log.append(vec![other, same_id, mine])
        .await
        .expect("append");
    while !seen.contains("event: message") {
        seen.push_str(&next().await);
    }
    assert!(seen.contains("id: 3\n"), "{seen}");
    assert!(
        !seen.contains("id: 2\n"),
        "another registry's dev-1: {seen}"
    );
    assert!(
        !seen.contains("id: 1\n") && !seen.contains("\"old\""),
        "{seen}"
    );
    assert!(seen.contains("\"data\":\"PGI+\""), "{seen}");
}
