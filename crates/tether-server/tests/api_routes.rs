//! Admin API route tests without a network: every method and every error status,
//! through the real router (`oneshot`) on an in-memory SQLite store.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tether_registry::model::{DeviceConfig, Timestamp};
use tether_registry::names::RegistryPath;
use tether_registry::{SqliteStore, Store};
use tether_server::api::auth::AdminAuth;
use tether_server::api::routes::{OPERATIONS, TEMPLATES};
use tether_server::api::{ApiState, router};
use tether_server::bridge::FixedClock;
use tether_server::bridge::hub::{DeviceAddress, DeviceHub, HubError};
use tower::ServiceExt as _;

const TOKEN: &str = "test-admin-token-0123456789";
const KEY1: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENxuJLM8nEPdT/SC96SPSF74qVxnA\n1oY9t0KduDT1ohy3Ig/5G1Nj3dCnmklowwSfFMJxUA02ZE4rYHkbZSxYag==\n-----END PUBLIC KEY-----\n";
const KEY2: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3z1P6fAVok0gakXvcul2zUNA7l/j\n1ZYD7vJ+bImn7LI6FXVsxuwE+kH2Y+AMpIn0/1IxZ4msDW80kjWSUErBGg==\n-----END PUBLIC KEY-----\n";
const LOC: &str = "/v1/projects/acme/locations/us-central1";
const REG: &str = "/v1/projects/acme/locations/us-central1/registries/fleet";

/// A command the hub was given: numId, device id, subfolder, payload.
type SentCommand = (u64, String, String, Vec<u8>);

/// What the hub saw, and how it answers commands.
#[derive(Debug, Default)]
struct FakeHub {
    answer: Mutex<Option<HubError>>,
    commands: Mutex<Vec<SentCommand>>,
    configs: Mutex<Vec<(u64, i64)>>,
    changed: Mutex<Vec<u64>>,
    registries_changed: Mutex<Vec<String>>,
}

#[async_trait]
impl DeviceHub for FakeHub {
    async fn send_command(
        &self,
        device: &DeviceAddress,
        device_id: &str,
        subfolder: &str,
        payload: Vec<u8>,
    ) -> Result<(), HubError> {
        if let Some(e) = self
            .answer
            .lock()
            .map_err(|_| HubError::NotConnected)?
            .clone()
        {
            return Err(e);
        }
        if let Ok(mut c) = self.commands.lock() {
            c.push((device.num_id, device_id.into(), subfolder.into(), payload));
        }
        Ok(())
    }

    async fn config_updated(&self, device: &DeviceAddress, config: &DeviceConfig) {
        if let Ok(mut c) = self.configs.lock() {
            c.push((device.num_id, config.version));
        }
    }

    async fn device_changed(&self, device: &DeviceAddress) {
        if let Ok(mut c) = self.changed.lock() {
            c.push(device.num_id);
        }
    }

    async fn registry_changed(&self, registry: &RegistryPath) {
        if let Ok(mut c) = self.registries_changed.lock() {
            c.push(registry.to_string());
        }
    }

    async fn is_connected(&self, _: &DeviceAddress) -> Result<bool, HubError> {
        Ok(false)
    }
}

struct Api {
    router: Router,
    hub: Arc<FakeHub>,
    store: Arc<dyn Store>,
}

async fn api() -> Api {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.expect("in-memory store"));
    let hub = Arc::new(FakeHub {
        answer: Mutex::new(Some(HubError::NotConnected)),
        ..FakeHub::default()
    });
    let state = ApiState {
        store: store.clone(),
        hub: hub.clone(),
        admin: AdminAuth::from_token(TOKEN, "the file ./tether-data/admin-token"),
        clock: Arc::new(FixedClock::at_secs(1_750_000_000)),
    };
    Api {
        router: router(state),
        hub,
        store,
    }
}

impl Api {
    async fn raw(
        &self,
        method: &str,
        uri: &str,
        body: Body,
        auth: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("infallible");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let body = body.map_or_else(Body::empty, |v| Body::from(v.to_string()));
        self.raw(method, uri, body, Some(&format!("Bearer {TOKEN}")))
            .await
    }

    async fn ok(&self, method: &str, uri: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, uri, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {uri}: {v}");
        v
    }

    /// Asserts an error with the envelope's status name and a message fragment.
    async fn fails(
        &self,
        method: &str,
        uri: &str,
        body: Option<Value>,
        code: u16,
        status: &str,
        fragment: &str,
    ) {
        let (got, v) = self.call(method, uri, body).await;
        assert_error(got, &v, code, status, fragment, &format!("{method} {uri}"));
    }

    async fn registry(&self) {
        self.ok(
            "POST",
            &format!("{LOC}/registries"),
            Some(json!({
                "id": "fleet",
                "eventNotificationConfigs": [{"pubsubTopicName": "projects/acme/topics/events"}],
                "mqttConfig": {"mqttEnabledState": "MQTT_ENABLED"},
            })),
        )
        .await;
    }

    async fn device(&self, id: &str, extra: Value) -> Value {
        let mut body =
            json!({"id": id, "credentials": [{"publicKey": {"format": "ES256_PEM", "key": KEY1}}]});
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        self.ok("POST", &format!("{REG}/devices"), Some(body)).await
    }
}

fn assert_error(got: StatusCode, v: &Value, code: u16, status: &str, fragment: &str, what: &str) {
    assert_eq!(got.as_u16(), code, "{what}: {v}");
    assert_eq!(v["error"]["code"], json!(code), "{what}: {v}");
    assert_eq!(v["error"]["status"], json!(status), "{what}: {v}");
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(fragment),
        "{what}: '{message}' lacks '{fragment}'"
    );
}

#[tokio::test]
async fn health_and_openapi_need_no_token_and_list_every_route() {
    let api = api().await;
    let (s, v) = api.raw("GET", "/healthz", Body::empty(), None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"status": "ok"})));
    let (s, doc) = api.raw("GET", "/openapi.json", Body::empty(), None).await;
    assert_eq!(s, StatusCode::OK);
    for op in OPERATIONS {
        let entry = &doc["paths"][op.path][op.method.to_ascii_lowercase()];
        assert_eq!(
            entry["operationId"],
            json!(op.id),
            "{} missing from the document",
            op.id
        );
        // Each documented method reaches a handler (not the "Unknown URL" answer).
        let uri = op
            .path
            .replace("{project}", "acme")
            .replace("{location}", "us-central1")
            .replace("{registry}", "fleet")
            .replace("{group}", "g-1")
            .replace("{device}", "dev-1");
        let (_, v) = api.call(op.method, &uri, Some(json!({}))).await;
        let message = v["error"]["message"].as_str().unwrap_or("");
        assert!(
            !message.starts_with("Unknown URL"),
            "{} {uri} is not routed: {v}",
            op.method
        );
    }
    // Every routed template is documented by at least one method.
    for template in TEMPLATES {
        assert!(
            OPERATIONS.iter().any(|op| op.path == template
                || op
                    .path
                    .strip_prefix(template)
                    .is_some_and(|rest| rest.starts_with(':'))),
            "{template} is routed but not in the OpenAPI document"
        );
    }
    let (s, v) = api
        .call("POST", &format!("{REG}/devices/dev-1:reboot"), None)
        .await;
    assert_error(s, &v, 404, "NOT_FOUND", "Unknown URL", "unknown verb");
    let (s, v) = api
        .call("DELETE", &format!("{REG}/groups/g-1/devices/dev-1"), None)
        .await;
    assert_error(
        s,
        &v,
        404,
        "NOT_FOUND",
        "Unknown URL",
        "delete through a group",
    );
    let (s, v) = api.raw("GET", "/v2/nothing", Body::empty(), None).await;
    assert_error(s, &v, 404, "NOT_FOUND", "Unknown URL", "unknown path");
}

#[tokio::test]
async fn admin_token_is_required() {
    let api = api().await;
    let uri = format!("{LOC}/registries");
    let (s, v) = api.raw("GET", &uri, Body::empty(), None).await;
    assert_error(
        s,
        &v,
        401,
        "UNAUTHENTICATED",
        "./tether-data/admin-token",
        "no token",
    );
    let (s, v) = api.raw("GET", &uri, Body::empty(), Some("Token abc")).await;
    assert_error(s, &v, 401, "UNAUTHENTICATED", "Bearer", "wrong scheme");
    let (s, v) = api
        .raw("GET", &uri, Body::empty(), Some("Bearer nope"))
        .await;
    assert_error(s, &v, 403, "PERMISSION_DENIED", "not valid", "wrong token");
}

#[tokio::test]
async fn registries_crud_list_and_masks() {
    let api = api().await;
    api.registry().await;
    let v = api.ok("GET", REG, None).await;
    assert_eq!(v["id"], "fleet");
    assert_eq!(
        v["name"],
        "projects/acme/locations/us-central1/registries/fleet"
    );
    assert_eq!(v["mqttConfig"]["mqttEnabledState"], "MQTT_ENABLED");
    assert_eq!(
        v["eventNotificationConfigs"][0]["pubsubTopicName"],
        "projects/acme/topics/events"
    );
    api.fails(
        "POST",
        &format!("{LOC}/registries"),
        Some(json!({"id": "fleet"})),
        409,
        "ALREADY_EXISTS",
        "",
    )
    .await;
    api.fails(
        "GET",
        &format!("{LOC}/registries/nothere"),
        None,
        404,
        "NOT_FOUND",
        "",
    )
    .await;

    // Enums as numbers when Google's REST client asks for them.
    let v = api
        .ok(
            "GET",
            &format!("{REG}?%24alt=json%3Benum-encoding%3Dint"),
            None,
        )
        .await;
    assert_eq!(v["mqttConfig"]["mqttEnabledState"], json!(1));

    // Patch: camelCase, snake_case and nested mask paths.
    let v = api.ok("PATCH", &format!("{REG}?updateMask=mqttConfig.mqtt_enabled_state,log_level"),
        Some(json!({"mqtt_config": {"mqtt_enabled_state": 2}, "logLevel": "DEBUG", "httpConfig": {"httpEnabledState": "HTTP_DISABLED"}}))).await;
    assert_eq!(v["mqttConfig"]["mqttEnabledState"], "MQTT_DISABLED");
    assert_eq!(v["logLevel"], "DEBUG");
    assert_eq!(
        api.hub
            .registries_changed
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default(),
        vec!["projects/acme/locations/us-central1/registries/fleet".to_string()],
        "connected devices hear of the patch"
    );
    assert_eq!(
        v["httpConfig"],
        json!({}),
        "fields outside the mask are untouched"
    );
    let v = api.ok("PATCH", &format!("{REG}?updateMask=eventNotificationConfig,stateNotificationConfig"),
        Some(json!({"eventNotificationConfigs": [], "stateNotificationConfig": {"pubsubTopicName": "projects/acme/topics/state"}}))).await;
    assert_eq!(v.get("eventNotificationConfigs"), None);
    assert_eq!(
        v["stateNotificationConfig"]["pubsubTopicName"],
        "projects/acme/topics/state"
    );
    api.fails(
        "PATCH",
        REG,
        Some(json!({})),
        400,
        "INVALID_ARGUMENT",
        "updateMask is required",
    )
    .await;
    api.fails(
        "PATCH",
        &format!("{REG}?updateMask=id"),
        Some(json!({})),
        400,
        "INVALID_ARGUMENT",
        "'id' cannot be changed",
    )
    .await;
    // Pub/Sub's rules for topic ids: no '..' or other path tricks in a topic name.
    api.fails(
        "PATCH",
        &format!("{REG}?updateMask=eventNotificationConfigs"),
        Some(json!({"eventNotificationConfigs": [{"pubsubTopicName": "projects/acme/topics/.."}]})),
        400,
        "INVALID_ARGUMENT",
        "has an invalid topic id",
    )
    .await;
    api.fails(
        "PATCH",
        &format!("{REG}?updateMask=colour"),
        Some(json!({})),
        400,
        "INVALID_ARGUMENT",
        "'colour' is not a field",
    )
    .await;
    api.fails(
        "PATCH",
        &format!("{REG}?updateMask=stateNotificationConfig"),
        Some(json!({"stateNotificationConfig": {"pubsubTopicName": "state"}})),
        400,
        "INVALID_ARGUMENT",
        "projects/{project}/topics/{topic}",
    )
    .await;

    // Paging.
    for id in ["fleet-b", "fleet-c"] {
        api.ok(
            "POST",
            &format!("{LOC}/registries"),
            Some(json!({"id": id})),
        )
        .await;
    }
    let first = api
        .ok("GET", &format!("{LOC}/registries?pageSize=2"), None)
        .await;
    assert_eq!(first["deviceRegistries"].as_array().map(Vec::len), Some(2));
    let token = first["nextPageToken"].as_str().expect("a next page");
    let second = api
        .ok(
            "GET",
            &format!("{LOC}/registries?page_size=2&pageToken={token}"),
            None,
        )
        .await;
    assert_eq!(second["deviceRegistries"][0]["id"], "fleet-c");
    assert_eq!(second.get("nextPageToken"), None);
    api.fails(
        "GET",
        &format!("{LOC}/registries?pageSize=501"),
        None,
        400,
        "INVALID_ARGUMENT",
        "at most 500",
    )
    .await;
    api.fails(
        "GET",
        &format!("{LOC}/registries?colour=red"),
        None,
        400,
        "INVALID_ARGUMENT",
        "Unknown name \"colour\"",
    )
    .await;

    // A registry with devices cannot be deleted.
    api.device("dev-1", json!({})).await;
    api.fails("DELETE", REG, None, 400, "FAILED_PRECONDITION", "")
        .await;
    api.ok("DELETE", &format!("{REG}/devices/dev-1"), None)
        .await;
    assert_eq!(api.ok("DELETE", REG, None).await, json!({}));
    api.fails("GET", REG, None, 404, "NOT_FOUND", "").await;
}

#[tokio::test]
async fn devices_create_get_list_patch_delete() {
    let api = api().await;
    api.registry().await;
    let d = api
        .device(
            "dev-1",
            json!({"metadata": {"site": "north"}, "config": {"binaryData": "aGVsbG8="}}),
        )
        .await;
    let num_id = d["numId"].as_str().expect("numId is a string").to_string();
    assert_eq!(
        d["name"],
        json!(format!(
            "projects/acme/locations/us-central1/registries/fleet/devices/{num_id}"
        ))
    );
    assert_eq!(d["config"]["version"], "1");
    assert_eq!(d["config"]["binaryData"], "aGVsbG8=");
    assert_eq!(d["credentials"][0]["publicKey"]["format"], "ES256_PEM");
    assert_eq!(d["metadata"]["site"], "north");

    // By id and by numId, and through a group alias.
    assert_eq!(
        api.ok("GET", &format!("{REG}/devices/dev-1"), None).await["numId"],
        json!(num_id)
    );
    assert_eq!(
        api.ok("GET", &format!("{REG}/devices/{num_id}"), None)
            .await["id"],
        "dev-1"
    );
    assert_eq!(
        api.ok(
            "GET",
            &format!("{REG}/groups/any-group/devices/dev-1"),
            None
        )
        .await["id"],
        "dev-1"
    );
    let masked = api
        .ok(
            "GET",
            &format!("{REG}/devices/dev-1?fieldMask=metadata,config.version"),
            None,
        )
        .await;
    assert_eq!(
        masked,
        json!({"id": "dev-1", "numId": num_id, "name": d["name"], "metadata": {"site": "north"}, "config": {"version": "1"}})
    );

    // List: id and numId only, unless fieldMask asks for more; filters.
    let gw = api.device("gw-1", json!({"gatewayConfig": {"gatewayType": "GATEWAY", "gatewayAuthMethod": "ASSOCIATION_ONLY"}})).await;
    // Devices come in numId order; numIds are random, so compare sorted by id.
    let all = api.ok("GET", &format!("{REG}/devices"), None).await;
    let mut listed = all["devices"].as_array().cloned().unwrap_or_default();
    listed.sort_by_key(|d| d["id"].as_str().map(str::to_string));
    assert_eq!(
        listed,
        vec![
            json!({"id": "dev-1", "numId": num_id}),
            json!({"id": "gw-1", "numId": gw["numId"]})
        ]
    );
    let v = api.ok("GET", &format!("{REG}/devices?fieldMask=blocked,gateway_config.gateway_type&gatewayListOptions.gatewayType=GATEWAY"), None).await;
    assert_eq!(
        v["devices"],
        json!([{"id": "gw-1", "numId": gw["numId"], "gatewayConfig": {"gatewayType": "GATEWAY"}}])
    );
    let v = api
        .ok(
            "GET",
            &format!("{REG}/devices?deviceIds=gw-1&deviceIds=nope"),
            None,
        )
        .await;
    assert_eq!(v["devices"].as_array().map(Vec::len), Some(1));
    let v = api
        .ok("GET", &format!("{REG}/devices?deviceNumIds={num_id}"), None)
        .await;
    assert_eq!(v["devices"][0]["id"], "dev-1");
    let v = api
        .ok("GET", &format!("{REG}/devices?pageSize=1"), None)
        .await;
    assert!(v["nextPageToken"].is_string(), "{v}");
    api.fails("GET", &format!("{REG}/devices?gatewayListOptions.gatewayType=GATEWAY&gatewayListOptions.associationsGatewayId=gw-1"),
        None, 400, "INVALID_ARGUMENT", "only one of").await;
    api.fails(
        "GET",
        &format!("{LOC}/registries/other/devices"),
        None,
        404,
        "NOT_FOUND",
        "",
    )
    .await;

    // Patch.
    let v = api.ok("PATCH", &format!("{REG}/devices/dev-1?updateMask=blocked,metadata,logLevel"),
        Some(json!({"blocked": true, "metadata": {"site": "south"}, "log_level": "ERROR", "id": "dev-1", "numId": num_id}))).await;
    assert_eq!(
        (
            v["blocked"].clone(),
            v["metadata"]["site"].clone(),
            v["logLevel"].clone()
        ),
        (json!(true), json!("south"), json!("ERROR"))
    );
    let v = api.ok("PATCH", &format!("{REG}/devices/dev-1?updateMask=credentials"),
        Some(json!({"credentials": [{"publicKey": {"format": "ES256_PEM", "key": KEY2}, "expirationTime": "2030-01-01T00:00:00Z"}]}))).await;
    assert_eq!(
        v["credentials"][0]["expirationTime"],
        "2030-01-01T00:00:00Z"
    );
    let v = api
        .ok(
            "PATCH",
            &format!("{REG}/groups/g/devices/gw-1?updateMask=gateway_config.gateway_auth_method"),
            Some(json!({"gatewayConfig": {"gatewayAuthMethod": "DEVICE_AUTH_TOKEN_ONLY"}})),
        )
        .await;
    assert_eq!(
        v["gatewayConfig"]["gatewayAuthMethod"],
        "DEVICE_AUTH_TOKEN_ONLY"
    );
    assert!(
        api.hub.changed.lock().map(|c| c.len()).unwrap_or(0) >= 3,
        "the hub hears about changes"
    );
    api.fails(
        "PATCH",
        &format!("{REG}/devices/dev-1?updateMask=numId"),
        Some(json!({})),
        400,
        "INVALID_ARGUMENT",
        "'num_id' cannot be changed",
    )
    .await;
    api.fails(
        "PATCH",
        &format!("{REG}/devices/dev-1?updateMask=config"),
        Some(json!({})),
        400,
        "INVALID_ARGUMENT",
        "'config' cannot be changed",
    )
    .await;
    api.fails(
        "PATCH",
        &format!("{REG}/devices/dev-1"),
        Some(json!({"blocked": false})),
        400,
        "INVALID_ARGUMENT",
        "updateMask is required",
    )
    .await;
    api.fails(
        "PATCH",
        &format!("{REG}/devices/gw-1?updateMask=gatewayConfig"),
        Some(json!({"gatewayConfig": {"gatewayType": "NON_GATEWAY"}})),
        400,
        "INVALID_ARGUMENT",
        "gatewayType cannot be changed",
    )
    .await;

    // Delete.
    assert_eq!(
        api.ok("DELETE", &format!("{REG}/devices/{num_id}"), None)
            .await,
        json!({})
    );
    api.fails(
        "GET",
        &format!("{REG}/devices/dev-1"),
        None,
        404,
        "NOT_FOUND",
        "",
    )
    .await;
    api.fails(
        "DELETE",
        &format!("{REG}/devices/dev-1"),
        None,
        404,
        "NOT_FOUND",
        "",
    )
    .await;
}

#[tokio::test]
async fn device_create_rules_write_nothing_on_failure() {
    let api = api().await;
    api.registry().await;
    let uri = format!("{REG}/devices");
    let cases = [
        (
            json!({"id": "d-1", "config": {"version": "1"}}),
            "config.version must be 0",
        ),
        (
            json!({"id": "d-1", "metadata": {"1bad": "x"}}),
            "metadata key '1bad' is invalid",
        ),
        (
            json!({"id": "d-1", "metadata": {"big": "x".repeat(32 * 1024 + 1)}}),
            "a value is at most 32768 bytes",
        ),
        (
            json!({"id": "d-1", "config": {"binaryData": base64(&vec![0u8; 64 * 1024 + 1])}}),
            "at most 65536 bytes",
        ),
        (
            json!({"id": "d-1", "credentials": [{"publicKey": {"key": KEY1}}]}),
            "publicKey.format is required",
        ),
        (
            json!({"id": "d-1", "credentials": vec![json!({"publicKey": {"format": "ES256_PEM", "key": KEY1}}); 4]}),
            "at most 3",
        ),
        (
            json!({"id": "x"}),
            "device id 'x' is invalid: id is shorter than 3 characters (it has 1)",
        ),
        (json!({"id": "goog-1"}), "must not start with 'goog'"),
        (
            json!({"id": "GOOG-1"}),
            "must not start with 'goog' (in any case)",
        ),
        (json!({}), "device.id is required"),
        (
            json!({"id": "d-1", "colour": "red"}),
            "Unknown name \"colour\" at 'device'",
        ),
        (
            json!({"id": "d-1", "blocked": "yes"}),
            "Invalid value at 'device.blocked' (TYPE_BOOL)",
        ),
        (
            json!({"id": "d-1", "logLevel": "LOUD"}),
            "Invalid value at 'device.logLevel' (TYPE_ENUM)",
        ),
        (
            json!({"id": "d-1", "config": {"binaryData": "%%%"}}),
            "not valid base64",
        ),
        (
            json!({"id": "d-1", "credentials": [{"publicKey": {"format": "ES256_PEM", "key": KEY1}, "expirationTime": "tomorrow"}]}),
            "RFC 3339",
        ),
        (json!(["d-1"]), "expected a JSON object"),
        (
            json!({"id": "d-1", "credentials": [{"publicKey": {"format": "ES256_PEM", "key": "not a key"}}]}),
            "device.credentials[0]",
        ),
        (
            json!({"id": "d-1", "credentials": [{"publicKey": {"format": "RSA_PEM", "key": KEY1}}]}),
            "device.credentials[0]",
        ),
    ];
    for (body, fragment) in cases {
        api.fails("POST", &uri, Some(body), 400, "INVALID_ARGUMENT", fragment)
            .await;
    }
    let (s, v) = api
        .raw(
            "POST",
            &uri,
            Body::from("{\"id\": \"d-1\","),
            Some(&format!("Bearer {TOKEN}")),
        )
        .await;
    assert_error(
        s,
        &v,
        400,
        "INVALID_ARGUMENT",
        "Invalid JSON payload received",
        "malformed JSON",
    );
    let big = format!(
        "{{\"id\": \"d-1\", \"metadata\": {{\"k\": \"{}\"}}}}",
        "x".repeat(1024 * 1024)
    );
    let (s, v) = api
        .raw(
            "POST",
            &uri,
            Body::from(big),
            Some(&format!("Bearer {TOKEN}")),
        )
        .await;
    assert_error(
        s,
        &v,
        413,
        "INVALID_ARGUMENT",
        "larger than",
        "oversize body",
    );
    // Nothing was half-written.
    assert_eq!(api.ok("GET", &uri, None).await, json!({}));
    api.fails(
        "POST",
        &format!("{LOC}/registries/nothere/devices"),
        Some(json!({"id": "d-1"})),
        404,
        "NOT_FOUND",
        "",
    )
    .await;
    api.device("d-1", json!({})).await;
    api.fails(
        "POST",
        &uri,
        Some(json!({"id": "d-1"})),
        409,
        "ALREADY_EXISTS",
        "",
    )
    .await;
}

fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::test]
async fn configs_states_and_version_conflicts() {
    let api = api().await;
    api.registry().await;
    let d = api.device("dev-1", json!({})).await;
    let modify = format!("{REG}/devices/dev-1:modifyCloudToDeviceConfig");
    let v = api
        .ok("POST", &modify, Some(json!({"binaryData": "djI="})))
        .await;
    assert_eq!(
        (v["version"].clone(), v["binaryData"].clone()),
        (json!("2"), json!("djI="))
    );
    assert_eq!(v["cloudUpdateTime"], "2025-06-15T15:06:40Z");
    // snake_case, int64 as a number, URL-safe base64 without padding.
    let v = api
        .ok(
            "POST",
            &modify,
            Some(json!({"version_to_update": 2, "binary_data": "-_8"})),
        )
        .await;
    assert_eq!(
        (v["version"].clone(), v["binaryData"].clone()),
        (json!("3"), json!("+/8="))
    );
    api.fails(
        "POST",
        &modify,
        Some(json!({"versionToUpdate": "2", "binaryData": "eA=="})),
        409,
        "ABORTED",
        "",
    )
    .await;
    api.fails(
        "POST",
        &modify,
        Some(json!({"binaryData": base64(&vec![1u8; 64 * 1024 + 1])})),
        400,
        "INVALID_ARGUMENT",
        "at most 65536 bytes",
    )
    .await;
    api.fails(
        "POST",
        &modify,
        Some(json!({"data": "eA=="})),
        400,
        "INVALID_ARGUMENT",
        "Unknown name \"data\"",
    )
    .await;
    let num_id: u64 = d["numId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("numId");
    assert_eq!(
        api.hub
            .configs
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default(),
        vec![(num_id, 2), (num_id, 3)]
    );
    let v = api
        .ok(
            "POST",
            &format!("{REG}/groups/g/devices/{num_id}:modifyCloudToDeviceConfig"),
            Some(json!({"binaryData": "eA=="})),
        )
        .await;
    assert_eq!(v["version"], "4");

    let versions = api
        .ok(
            "GET",
            &format!("{REG}/devices/dev-1/configVersions?numVersions=2"),
            None,
        )
        .await;
    assert_eq!(
        versions["deviceConfigs"]
            .as_array()
            .map(|a| a.iter().map(|c| c["version"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("4"), json!("3")])
    );
    let all = api
        .ok(
            "GET",
            &format!("{REG}/groups/g/devices/dev-1/configVersions"),
            None,
        )
        .await;
    assert_eq!(all["deviceConfigs"].as_array().map(Vec::len), Some(4));
    api.fails(
        "GET",
        &format!("{REG}/devices/dev-1/configVersions?numVersions=-1"),
        None,
        400,
        "INVALID_ARGUMENT",
        "must not be negative",
    )
    .await;
    api.fails(
        "GET",
        &format!("{REG}/devices/nope/configVersions"),
        None,
        404,
        "NOT_FOUND",
        "",
    )
    .await;

    assert_eq!(
        api.ok("GET", &format!("{REG}/devices/dev-1/states"), None)
            .await,
        json!({})
    );
    let registry = RegistryPath {
        project: "acme".into(),
        location: "us-central1".into(),
        registry: "fleet".into(),
    };
    for (i, payload) in [b"s1", b"s2"].iter().enumerate() {
        api.store
            .record_state(
                &registry,
                num_id,
                *payload,
                Timestamp::from_secs(1_750_000_000 + i as i64),
            )
            .await
            .expect("state");
    }
    let states = api
        .ok(
            "GET",
            &format!("{REG}/devices/dev-1/states?numStates=1"),
            None,
        )
        .await;
    assert_eq!(
        states,
        json!({"deviceStates": [{"updateTime": "2025-06-15T15:06:41Z", "binaryData": "czI="}]})
    );
    let states = api
        .ok("GET", &format!("{REG}/groups/g/devices/dev-1/states"), None)
        .await;
    assert_eq!(states["deviceStates"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn commands_need_a_connected_device() {
    let api = api().await;
    api.registry().await;
    api.device("dev-1", json!({})).await;
    let send = format!("{REG}/devices/dev-1:sendCommandToDevice");
    api.fails(
        "POST",
        &send,
        Some(json!({"binaryData": "b24="})),
        400,
        "FAILED_PRECONDITION",
        "not connected",
    )
    .await;
    if let Ok(mut a) = api.hub.answer.lock() {
        *a = Some(HubError::NotSubscribed("dev-1".into()));
    }
    api.fails(
        "POST",
        &send,
        Some(json!({"binaryData": "b24="})),
        400,
        "FAILED_PRECONDITION",
        "not subscribed",
    )
    .await;
    if let Ok(mut a) = api.hub.answer.lock() {
        *a = Some(HubError::Unavailable(
            "the connection's queue is full".into(),
        ));
    }
    api.fails(
        "POST",
        &send,
        Some(json!({"binaryData": "b24="})),
        429,
        "RESOURCE_EXHAUSTED",
        "queue is full",
    )
    .await;
    if let Ok(mut a) = api.hub.answer.lock() {
        *a = None;
    }
    assert_eq!(
        api.ok(
            "POST",
            &send,
            Some(json!({"binaryData": "b24=", "subfolder": "lights/front"}))
        )
        .await,
        json!({})
    );
    let sent = api
        .hub
        .commands
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].1.as_str(), sent[0].2.as_str(), sent[0].3.as_slice()),
        ("dev-1", "lights/front", &b"on"[..])
    );
    api.ok(
        "POST",
        &format!("{REG}/groups/g/devices/dev-1:sendCommandToDevice"),
        Some(json!({"binary_data": "b24"})),
    )
    .await;
    api.fails(
        "POST",
        &send,
        Some(json!({"binaryData": "b24=", "subfolder": "a/+/b"})),
        400,
        "INVALID_ARGUMENT",
        "'+'",
    )
    .await;
    api.fails(
        "POST",
        &send,
        Some(json!({"binaryData": "b24=", "subfolder": "x".repeat(257)})),
        400,
        "INVALID_ARGUMENT",
        "at most 256",
    )
    .await;
    api.fails(
        "POST",
        &send,
        Some(json!({})),
        400,
        "INVALID_ARGUMENT",
        "binaryData is required",
    )
    .await;
    api.fails(
        "POST",
        &send,
        Some(json!({"binaryData": base64(&vec![0u8; 256 * 1024 + 1])})),
        400,
        "INVALID_ARGUMENT",
        "at most 262144 bytes",
    )
    .await;
    api.fails(
        "POST",
        &format!("{REG}/devices/nope:sendCommandToDevice"),
        Some(json!({"binaryData": "b24="})),
        404,
        "NOT_FOUND",
        "",
    )
    .await;
}

#[tokio::test]
async fn gateways_bind_and_unbind() {
    let api = api().await;
    api.registry().await;
    let gw = api.device("gw-1", json!({"gatewayConfig": {"gatewayType": "GATEWAY", "gatewayAuthMethod": "ASSOCIATION_ONLY"}})).await;
    api.device("dev-1", json!({})).await;
    let gw_num = gw["numId"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        api.ok(
            "POST",
            &format!("{REG}:bindDeviceToGateway"),
            Some(json!({"gatewayId": gw_num, "deviceId": "dev-1"}))
        )
        .await,
        json!({})
    );
    let bound = api
        .ok(
            "GET",
            &format!("{REG}/devices?gatewayListOptions.associationsGatewayId=gw-1"),
            None,
        )
        .await;
    assert_eq!(bound["devices"][0]["id"], "dev-1");
    let gateways = api
        .ok(
            "GET",
            &format!("{REG}/groups/g/devices?gateway_list_options.associations_device_id=dev-1"),
            None,
        )
        .await;
    assert_eq!(gateways["devices"][0]["id"], "gw-1");
    api.fails(
        "POST",
        &format!("{REG}:bindDeviceToGateway"),
        Some(json!({"gatewayId": "dev-1", "deviceId": "gw-1"})),
        400,
        "FAILED_PRECONDITION",
        "",
    )
    .await;
    api.fails(
        "POST",
        &format!("{REG}:bindDeviceToGateway"),
        Some(json!({"gatewayId": "gw-1"})),
        400,
        "INVALID_ARGUMENT",
        "deviceId is required",
    )
    .await;
    api.fails(
        "POST",
        &format!("{REG}:bindDeviceToGateway"),
        Some(json!({"gatewayId": "gw-1", "deviceId": "nope"})),
        404,
        "NOT_FOUND",
        "",
    )
    .await;
    api.ok(
        "POST",
        &format!("{REG}/groups/g:unbindDeviceFromGateway"),
        Some(json!({"gateway_id": "gw-1", "device_id": "dev-1"})),
    )
    .await;
    api.fails(
        "POST",
        &format!("{REG}:unbindDeviceFromGateway"),
        Some(json!({"gatewayId": "gw-1", "deviceId": "dev-1"})),
        404,
        "NOT_FOUND",
        "",
    )
    .await;
}

#[tokio::test]
async fn iam_methods_are_unimplemented() {
    let api = api().await;
    api.registry().await;
    for uri in [
        format!("{REG}:setIamPolicy"),
        format!("{REG}:getIamPolicy"),
        format!("{REG}/groups/g:testIamPermissions"),
    ] {
        api.fails(
            "POST",
            &uri,
            Some(json!({})),
            501,
            "UNIMPLEMENTED",
            "no IAM",
        )
        .await;
    }
}

#[tokio::test]
async fn mangled_bodies_get_an_envelope_never_a_crash() {
    let api = api().await;
    api.registry().await;
    let seeds = [
        json!({"id": "d-1", "credentials": [{"publicKey": {"format": "ES256_PEM", "key": KEY1}, "expirationTime": "2030-01-01T00:00:00Z"}], "metadata": {"k": "v"}, "gatewayConfig": {"gatewayType": 1}}).to_string(),
        json!({"versionToUpdate": "1", "binaryData": "aGVsbG8="}).to_string(),
    ];
    let targets = [
        format!("{REG}/devices"),
        format!("{REG}/devices/d-1:modifyCloudToDeviceConfig"),
    ];
    let replacements = [
        "",
        "\"",
        "{",
        "]",
        "-1",
        "null",
        "1e999",
        "\u{0}",
        "é",
        "18446744073709551616",
    ];
    for (seed, uri) in seeds.iter().zip(&targets) {
        let chars: Vec<char> = seed.chars().collect();
        for i in (0..chars.len()).step_by(3) {
            for r in replacements {
                let body: String = chars[..i].iter().collect::<String>()
                    + r
                    + &chars[(i + 1).min(chars.len())..].iter().collect::<String>();
                let (status, v) = api
                    .raw(
                        "POST",
                        uri,
                        Body::from(body.clone()),
                        Some(&format!("Bearer {TOKEN}")),
                    )
                    .await;
                assert!(
                    status.is_success()
                        || (status.is_client_error() && v["error"]["message"].is_string()),
                    "{status} for {body}: {v}"
                );
                if status.is_success() && uri.ends_with("/devices") {
                    let id = v["id"].as_str().unwrap_or_default();
                    api.ok("DELETE", &format!("{REG}/devices/{id}"), None).await;
                }
            }
        }
    }
}
