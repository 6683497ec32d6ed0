//! The Device Manager API over gRPC (`--grpc-addr`, TLS, the admin token), against a
//! running `tether serve`: every operation through REST and through gRPC with the
//! answers compared field by field; the refusals of bad input; Google's Python client
//! and Node.js client on their default transport.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use googleapis_tonic_google_cloud_iot_v1::google::cloud::iot::v1 as iot;
use serde_json::{Value, json};
use tether_registry::model::{Device, DeviceRegistry, Timestamp};
use tether_registry::names::parse_registry;
use tether_server::api::grpc::{DeviceManagerClient, to_json};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::common::{self, Served};

const TOKEN: &str = "grpc-api-e2e-admin-token";
const PARENT: &str = "projects/acme/locations/us-central1";
const REGISTRY: &str = "projects/acme/locations/us-central1/registries/fleet";
const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENxuJLM8nEPdT/SC96SPSF74qVxnA
1oY9t0KduDT1ohy3Ig/5G1Nj3dCnmklowwSfFMJxUA02ZE4rYHkbZSxYag==
-----END PUBLIC KEY-----
";

fn tether() -> Command {
    common::tether_as(TOKEN)
}

async fn channel(served: &Served) -> Channel {
    let ca = std::fs::read(&served.ca).expect("CA file");
    Endpoint::from_shared(format!("https://{}", served.grpc))
        .expect("endpoint")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost"),
        )
        .expect("TLS config")
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("the gRPC listener answers")
}

/// A request with the admin token, as Google's clients send their credentials.
fn authed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    request
}

/// One REST call: the status name (`OK` for success) and the JSON answer.
async fn rest(served: &Served, method: &str, path: &str, body: Option<Value>) -> (String, Value) {
    // reqwest is built without a default crypto provider; ring, as everywhere.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client
        .request(method, format!("{}/v1/{path}", served.url))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the admin API answers");
    let ok = response.status().is_success();
    let v: Value = response.json().await.expect("JSON");
    if ok {
        ("OK".into(), v)
    } else {
        (
            v["error"]["status"].as_str().unwrap_or("?").to_string(),
            v["error"]["message"].clone(),
        )
    }
}

/// A gRPC answer in the same form: the status name and the message as proto3 JSON
/// (or the error text).
fn grpc<T>(
    answer: Result<tonic::Response<T>, tonic::Status>,
    json: fn(&T) -> Value,
) -> (String, Value) {
    match answer {
        Ok(r) => ("OK".into(), json(r.get_ref())),
        Err(s) => (code_name(s.code()), Value::String(s.message().to_string())),
    }
}

fn code_name(code: tonic::Code) -> String {
    // The canonical names, as Google's REST envelope spells them.
    let name = format!("{code:?}");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn empty<T>(_: &T) -> Value {
    json!({})
}

fn devices_json(r: &iot::ListDevicesResponse) -> Value {
    let mut o = serde_json::Map::new();
    if !r.devices.is_empty() {
        o.insert(
            "devices".into(),
            r.devices.iter().map(to_json::device).collect(),
        );
    }
    if !r.next_page_token.is_empty() {
        o.insert("nextPageToken".into(), r.next_page_token.clone().into());
    }
    Value::Object(o)
}

fn registries_json(r: &iot::ListDeviceRegistriesResponse) -> Value {
    let mut o = serde_json::Map::new();
    if !r.device_registries.is_empty() {
        o.insert(
            "deviceRegistries".into(),
            r.device_registries.iter().map(to_json::registry).collect(),
        );
    }
    if !r.next_page_token.is_empty() {
        o.insert("nextPageToken".into(), r.next_page_token.clone().into());
    }
    Value::Object(o)
}

fn configs_json(r: &iot::ListDeviceConfigVersionsResponse) -> Value {
    json!({"deviceConfigs": r.device_configs.iter().map(to_json::config).collect::<Vec<_>>()})
}

fn states_json(r: &iot::ListDeviceStatesResponse) -> Value {
    if r.device_states.is_empty() {
        return json!({});
    }
    json!({"deviceStates": r.device_states.iter().map(to_json::state).collect::<Vec<_>>()})
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_string()).collect(),
    })
}

/// Drops what two twin resources must differ in (ids, names, times) before
/// comparing them.
fn twin(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "id" | "name" | "numId") && !k.ends_with("Time")
                })
                .map(|(k, v)| (k.clone(), twin(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(twin).collect()),
        Value::String(s) => Value::String(s.replace("-grpc", "-rest")),
        other => other.clone(),
    }
}

/// Registry `registry` with device `dev-state` and two states, written into the
/// data directory's database before the server starts: a state can otherwise only
/// come from a device.
async fn seed(data: &Path, registry: &str) {
    std::fs::create_dir_all(data).expect("data dir");
    let store = tether_registry::open_store(None, data)
        .await
        .expect("store");
    let path = parse_registry(registry).expect("name");
    store
        .create_registry(&DeviceRegistry {
            path: path.clone(),
            ..DeviceRegistry::default()
        })
        .await
        .expect("registry");
    let device = store
        .create_device(
            &path,
            &Device {
                id: "dev-state".into(),
                ..Device::default()
            },
            Timestamp::from_secs(1_750_000_000),
        )
        .await
        .expect("device");
    for (i, payload) in [&b"state-1"[..], b"state-2"].into_iter().enumerate() {
        store
            .record_state(
                &path,
                device.num_id,
                payload,
                Timestamp::from_secs(1_750_000_100 + i as i64),
            )
            .await
            .expect("state");
    }
}

/// Each operation through REST and through gRPC: the same code, the same message,
/// the same resource, field by field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_grpc_answer_alike() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    seed(&data, REGISTRY).await;
    let served = common::serve(tether(), &data);
    let mut dm = DeviceManagerClient::new(channel(&served).await);
    let device = |id: &str| format!("{REGISTRY}/devices/{id}");
    let mut compared = 0;
    let mut same = |what: &str, r: (String, Value), g: (String, Value)| {
        assert_eq!(r, g, "{what}: REST (left) and gRPC (right) differ");
        compared += 1;
    };

    // Twin creations: one per transport, with the same body.
    let body = |id: &str| {
        json!({
            "id": id,
            "credentials": [{"publicKey": {"format": "ES256_PEM", "key": KEY}}],
            "metadata": {"site": "north"},
            "logLevel": "DEBUG",
        })
    };
    let r = rest(
        &served,
        "POST",
        &format!("{REGISTRY}/devices"),
        Some(body("dev-rest")),
    )
    .await;
    let g = grpc(
        dm.create_device(authed(iot::CreateDeviceRequest {
            parent: REGISTRY.into(),
            device: Some(iot::Device {
                id: "dev-grpc".into(),
                credentials: vec![iot::DeviceCredential {
                    expiration_time: None,
                    credential: Some(iot::device_credential::Credential::PublicKey(
                        iot::PublicKeyCredential {
                            format: iot::PublicKeyFormat::Es256Pem as i32,
                            key: KEY.into(),
                        },
                    )),
                }],
                metadata: [("site".to_string(), "north".to_string())].into(),
                log_level: iot::LogLevel::Debug as i32,
                ..Default::default()
            }),
        }))
        .await,
        to_json::device,
    );
    assert_eq!(r.0, "OK", "{r:?}");
    same("devices.create", (r.0, twin(&r.1)), (g.0, twin(&g.1)));
    let r = rest(
        &served,
        "POST",
        &format!("{REGISTRY}/devices"),
        Some(json!({"id": "gw-1", "gatewayConfig": {"gatewayType": "GATEWAY", "gatewayAuthMethod": "ASSOCIATION_ONLY"}})),
    )
    .await;
    assert_eq!(r.0, "OK", "{r:?}");

    // Twin mutations.
    let r = rest(
        &served,
        "POST",
        &format!("{}:modifyCloudToDeviceConfig", device("dev-rest")),
        Some(json!({"binaryData": "djI=", "versionToUpdate": "1"})),
    )
    .await;
    let g = grpc(
        dm.modify_cloud_to_device_config(authed(iot::ModifyCloudToDeviceConfigRequest {
            name: device("dev-grpc"),
            version_to_update: 1,
            binary_data: b"v2".to_vec(),
        }))
        .await,
        to_json::config,
    );
    same(
        "modifyCloudToDeviceConfig",
        (r.0, twin(&r.1)),
        (g.0, twin(&g.1)),
    );
    let r = rest(
        &served,
        "PATCH",
        &format!("{}?updateMask=blocked,metadata", device("dev-rest")),
        Some(json!({"blocked": true, "metadata": {"site": "south"}})),
    )
    .await;
    let g = grpc(
        dm.update_device(authed(iot::UpdateDeviceRequest {
            device: Some(iot::Device {
                name: device("dev-grpc"),
                blocked: true,
                metadata: [("site".to_string(), "south".to_string())].into(),
                ..Default::default()
            }),
            update_mask: mask(&["blocked", "metadata"]),
        }))
        .await,
        to_json::device,
    );
    same("devices.patch", (r.0, twin(&r.1)), (g.0, twin(&g.1)));

    // Reads of the same resources.
    let r = rest(&served, "GET", REGISTRY, None).await;
    let g = grpc(
        dm.get_device_registry(authed(iot::GetDeviceRegistryRequest {
            name: REGISTRY.into(),
        }))
        .await,
        to_json::registry,
    );
    same("registries.get", r, g);
    let r = rest(&served, "GET", &format!("{PARENT}/registries"), None).await;
    let g = grpc(
        dm.list_device_registries(authed(iot::ListDeviceRegistriesRequest {
            parent: PARENT.into(),
            ..Default::default()
        }))
        .await,
        registries_json,
    );
    same("registries.list", r, g);
    for id in ["dev-rest", "dev-grpc", "dev-state"] {
        let r = rest(&served, "GET", &device(id), None).await;
        let g = grpc(
            dm.get_device(authed(iot::GetDeviceRequest {
                name: device(id),
                field_mask: None,
            }))
            .await,
            to_json::device,
        );
        same("devices.get", r, g);
    }
    let r = rest(
        &served,
        "GET",
        &format!(
            "{}?fieldMask=blocked,lastHeartbeatTime,config",
            device("dev-rest")
        ),
        None,
    )
    .await;
    let g = grpc(
        dm.get_device(authed(iot::GetDeviceRequest {
            name: device("dev-rest"),
            field_mask: mask(&["blocked", "last_heartbeat_time", "config"]),
        }))
        .await,
        to_json::device,
    );
    same("devices.get with a field mask", r, g);
    let lists: [(&str, iot::ListDevicesRequest); 4] = [
        (
            "fieldMask=metadata,gatewayConfig",
            iot::ListDevicesRequest {
                field_mask: mask(&["metadata", "gateway_config"]),
                ..Default::default()
            },
        ),
        (
            "gatewayListOptions.gatewayType=GATEWAY",
            iot::ListDevicesRequest {
                gateway_list_options: Some(iot::GatewayListOptions {
                    filter: Some(iot::gateway_list_options::Filter::GatewayType(
                        iot::GatewayType::Gateway as i32,
                    )),
                }),
                ..Default::default()
            },
        ),
        (
            "deviceIds=dev-rest&deviceIds=nope",
            iot::ListDevicesRequest {
                device_ids: vec!["dev-rest".into(), "nope".into()],
                ..Default::default()
            },
        ),
        (
            "pageSize=2",
            iot::ListDevicesRequest {
                page_size: 2,
                ..Default::default()
            },
        ),
    ];
    for (query, request) in lists {
        let r = rest(&served, "GET", &format!("{REGISTRY}/devices?{query}"), None).await;
        let g = grpc(
            dm.list_devices(authed(iot::ListDevicesRequest {
                parent: REGISTRY.into(),
                ..request
            }))
            .await,
            devices_json,
        );
        same(&format!("devices.list {query}"), r, g);
    }
    let r = rest(
        &served,
        "GET",
        &format!("{}/configVersions?numVersions=5", device("dev-rest")),
        None,
    )
    .await;
    let g = grpc(
        dm.list_device_config_versions(authed(iot::ListDeviceConfigVersionsRequest {
            name: device("dev-rest"),
            num_versions: 5,
        }))
        .await,
        configs_json,
    );
    same("configVersions.list", r, g);
    let r = rest(
        &served,
        "GET",
        &format!("{}/states", device("dev-state")),
        None,
    )
    .await;
    let g = grpc(
        dm.list_device_states(authed(iot::ListDeviceStatesRequest {
            name: device("dev-state"),
            num_states: 0,
        }))
        .await,
        states_json,
    );
    assert!(
        r.1["deviceStates"].as_array().is_some_and(|s| s.len() == 2),
        "{r:?}"
    );
    same("states.list", r, g);

    // Bind, then the association filter, then unbind.
    let r = rest(
        &served,
        "POST",
        &format!("{REGISTRY}:bindDeviceToGateway"),
        Some(json!({"gatewayId": "gw-1", "deviceId": "dev-rest"})),
    )
    .await;
    let g = grpc(
        dm.bind_device_to_gateway(authed(iot::BindDeviceToGatewayRequest {
            parent: REGISTRY.into(),
            gateway_id: "gw-1".into(),
            device_id: "dev-grpc".into(),
        }))
        .await,
        empty,
    );
    same("bindDeviceToGateway", r, g);
    let r = rest(
        &served,
        "GET",
        &format!("{REGISTRY}/devices?gatewayListOptions.associationsGatewayId=gw-1"),
        None,
    )
    .await;
    let g = grpc(
        dm.list_devices(authed(iot::ListDevicesRequest {
            parent: REGISTRY.into(),
            gateway_list_options: Some(iot::GatewayListOptions {
                filter: Some(iot::gateway_list_options::Filter::AssociationsGatewayId(
                    "gw-1".into(),
                )),
            }),
            ..Default::default()
        }))
        .await,
        devices_json,
    );
    assert_eq!(r.1["devices"].as_array().map(Vec::len), Some(2), "{r:?}");
    same("devices.list by gateway", r, g);
    let r = rest(
        &served,
        "POST",
        &format!("{REGISTRY}:unbindDeviceFromGateway"),
        Some(json!({"gatewayId": "gw-1", "deviceId": "dev-rest"})),
    )
    .await;
    let g = grpc(
        dm.unbind_device_from_gateway(authed(iot::UnbindDeviceFromGatewayRequest {
            parent: REGISTRY.into(),
            gateway_id: "gw-1".into(),
            device_id: "dev-grpc".into(),
        }))
        .await,
        empty,
    );
    same("unbindDeviceFromGateway", r, g);

    // Refusals: the same code and the same words.
    let r = rest(&served, "GET", &device("nope"), None).await;
    let g = grpc(
        dm.get_device(authed(iot::GetDeviceRequest {
            name: device("nope"),
            field_mask: None,
        }))
        .await,
        to_json::device,
    );
    assert_eq!(r.0, "NOT_FOUND");
    same("devices.get unknown", r, g);
    let r = rest(
        &served,
        "POST",
        &format!("{REGISTRY}/devices"),
        Some(json!({"id": "gw-1"})),
    )
    .await;
    let g = grpc(
        dm.create_device(authed(iot::CreateDeviceRequest {
            parent: REGISTRY.into(),
            device: Some(iot::Device {
                id: "gw-1".into(),
                ..Default::default()
            }),
        }))
        .await,
        to_json::device,
    );
    assert_eq!(r.0, "ALREADY_EXISTS");
    same("devices.create duplicate", r, g);
    let r = rest(
        &served,
        "POST",
        &format!("{}:modifyCloudToDeviceConfig", device("dev-rest")),
        Some(json!({"binaryData": "eA==", "versionToUpdate": "1"})),
    )
    .await;
    let g = grpc(
        dm.modify_cloud_to_device_config(authed(iot::ModifyCloudToDeviceConfigRequest {
            name: device("dev-rest"),
            version_to_update: 1,
            binary_data: b"x".to_vec(),
        }))
        .await,
        to_json::config,
    );
    assert_eq!(r.0, "ABORTED");
    same("modifyCloudToDeviceConfig stale version", r, g);
    let r = rest(
        &served,
        "POST",
        &format!("{}:sendCommandToDevice", device("dev-state")),
        Some(json!({"binaryData": "cmVib290"})),
    )
    .await;
    let g = grpc(
        dm.send_command_to_device(authed(iot::SendCommandToDeviceRequest {
            name: device("dev-state"),
            binary_data: b"reboot".to_vec(),
            subfolder: String::new(),
        }))
        .await,
        empty,
    );
    assert_eq!(r.0, "FAILED_PRECONDITION");
    same("sendCommandToDevice, not connected", r, g);
    let r = rest(
        &served,
        "PATCH",
        &device("dev-rest"),
        Some(json!({"blocked": false})),
    )
    .await;
    let g = grpc(
        dm.update_device(authed(iot::UpdateDeviceRequest {
            device: Some(iot::Device {
                name: device("dev-rest"),
                ..Default::default()
            }),
            update_mask: None,
        }))
        .await,
        to_json::device,
    );
    assert_eq!(r.0, "INVALID_ARGUMENT");
    same("devices.patch without updateMask", r, g);
    let r = rest(
        &served,
        "GET",
        &format!("{}?fieldMask=colour", device("dev-rest")),
        None,
    )
    .await;
    let g = grpc(
        dm.get_device(authed(iot::GetDeviceRequest {
            name: device("dev-rest"),
            field_mask: mask(&["colour"]),
        }))
        .await,
        to_json::device,
    );
    assert_eq!(r.0, "INVALID_ARGUMENT");
    assert!(
        g.1.as_str().is_some_and(|m| m.contains("'colour'")),
        "{g:?}"
    );
    same("devices.get unknown field mask path", r, g);
    let r = rest(
        &served,
        "POST",
        &format!("{REGISTRY}:getIamPolicy"),
        Some(json!({})),
    )
    .await;
    let g = grpc(
        dm.get_iam_policy(authed(
            googleapis_tonic_google_cloud_iot_v1::google::iam::v1::GetIamPolicyRequest {
                resource: REGISTRY.into(),
                options: None,
            },
        ))
        .await,
        empty,
    );
    assert_eq!(r.0, "UNIMPLEMENTED");
    same("getIamPolicy", r, g);
    let r = rest(&served, "DELETE", REGISTRY, None).await;
    let g = grpc(
        dm.delete_device_registry(authed(iot::DeleteDeviceRegistryRequest {
            name: REGISTRY.into(),
        }))
        .await,
        empty,
    );
    assert_eq!(r.0, "FAILED_PRECONDITION");
    same("registries.delete with devices", r, g);

    // Deletes, then both see the device gone.
    let g = grpc(
        dm.delete_device(authed(iot::DeleteDeviceRequest {
            name: device("dev-grpc"),
        }))
        .await,
        empty,
    );
    let r = rest(&served, "DELETE", &device("dev-rest"), None).await;
    same("devices.delete", r, g);
    let r = rest(&served, "GET", &device("dev-grpc"), None).await;
    let g = grpc(
        dm.get_device(authed(iot::GetDeviceRequest {
            name: device("dev-rest"),
            field_mask: None,
        }))
        .await,
        to_json::device,
    );
    assert_eq!((r.0.as_str(), g.0.as_str()), ("NOT_FOUND", "NOT_FOUND"));
    assert!(compared >= 25, "{compared} comparisons");
}

/// Bad input on the gRPC listener gets a precise refusal, and the server stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_bad_input_precisely() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    seed(&data, REGISTRY).await;
    let served = common::serve(tether(), &data);
    let mut dm = DeviceManagerClient::new(channel(&served).await);
    let get = |name: &str| iot::GetDeviceRegistryRequest { name: name.into() };

    let no_token = dm
        .get_device_registry(tonic::Request::new(get(REGISTRY)))
        .await
        .expect_err("no token");
    assert_eq!(no_token.code(), tonic::Code::Unauthenticated);
    assert!(no_token.message().contains("admin token"), "{no_token:?}");
    let mut wrong = tonic::Request::new(get(REGISTRY));
    wrong.metadata_mut().insert(
        "authorization",
        "Bearer not-the-token".parse().expect("header"),
    );
    let wrong = dm
        .get_device_registry(wrong)
        .await
        .expect_err("wrong token");
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated, "{wrong:?}");

    let bad_name = dm
        .get_device(authed(iot::GetDeviceRequest {
            name: format!("{REGISTRY}/devices"),
            field_mask: None,
        }))
        .await
        .expect_err("a malformed name");
    assert_eq!(bad_name.code(), tonic::Code::InvalidArgument);
    assert!(bad_name.message().starts_with("name: "), "{bad_name:?}");
    let bad_parent = dm
        .list_devices(authed(iot::ListDevicesRequest {
            parent: "projects/acme/regions/x".into(),
            ..Default::default()
        }))
        .await
        .expect_err("a malformed parent");
    assert_eq!(bad_parent.code(), tonic::Code::InvalidArgument);
    assert!(
        bad_parent.message().starts_with("parent: "),
        "{bad_parent:?}"
    );
    let bad_mask = dm
        .update_device_registry(authed(iot::UpdateDeviceRegistryRequest {
            device_registry: Some(iot::DeviceRegistry {
                name: REGISTRY.into(),
                ..Default::default()
            }),
            update_mask: mask(&["mqtt_config.colour"]),
        }))
        .await
        .expect_err("an unknown mask path");
    assert_eq!(bad_mask.code(), tonic::Code::InvalidArgument);
    assert!(
        bad_mask.message().contains("mqtt_config.colour"),
        "{bad_mask:?}"
    );

    let huge = dm
        .send_command_to_device(authed(iot::SendCommandToDeviceRequest {
            name: format!("{REGISTRY}/devices/dev-state"),
            binary_data: vec![0x5a; 5 * 1024 * 1024],
            subfolder: String::new(),
        }))
        .await
        .expect_err("5 MB");
    assert_eq!(huge.code(), tonic::Code::ResourceExhausted, "{huge:?}");

    // A plaintext HTTP/2 client on the TLS port: the handshake fails, nothing else.
    let mut plain = tokio::net::TcpStream::connect(&served.grpc)
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    plain
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(15), plain.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(_)) | Ok(Err(_))),
        "the server closes a plaintext connection"
    );
    let after = dm
        .get_device_registry(authed(get(REGISTRY)))
        .await
        .expect("the server still answers");
    assert_eq!(after.get_ref().id, "fleet");
}

/// Google's Python client on its default transport (gRPC), with only the endpoint,
/// the token and the CA given: the same script as the REST suite's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_python_client_on_grpc() {
    let ready = tether_testkit::needs::python_modules(&[
        "google.cloud.iot_v1",
        "google.oauth2.credentials",
        "grpc",
    ]);
    if tether_testkit::require_ok("Google's Python client", ready).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    seed(
        &data,
        "projects/acme/locations/us-central1/registries/seeded",
    )
    .await;
    let served = common::serve(tether(), &data);
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tether-server/tests/python/test_google_client.py");
    let out = Command::new("python3")
        .arg(script)
        .env("TETHER_TRANSPORT", "grpc")
        .env("TETHER_ENDPOINT", &served.grpc)
        .env("TETHER_TOKEN", TOKEN)
        .env("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", &served.ca)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "Google's client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

/// Google's Node.js client (`@google-cloud/iot`) on its default transport: creates a
/// registry and a device, sets a config and lists devices (tests/node/admin.js).
/// Needs `node` and `npm ci` run in tests/node (`.ci/run` does it).
#[test]
fn google_node_client_on_grpc() {
    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let ready = if tether_testkit::needs::tool("node").is_none() {
        Err("node is not installed".to_string())
    } else if !node_dir.join("node_modules/@google-cloud/iot").is_dir() {
        Err(format!(
            "@google-cloud/iot is not installed: run `npm ci` in {}",
            node_dir.display()
        ))
    } else {
        Ok(())
    };
    if tether_testkit::require_ok("Google's Node.js client", ready).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let served = common::serve(tether(), &dir.path().join("data"));
    let out = Command::new("node")
        .arg("admin.js")
        .current_dir(&node_dir)
        .env("TETHER_GRPC", &served.grpc)
        .env("TETHER_TOKEN", TOKEN)
        .env("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", &served.ca)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "Google's Node.js client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("node client: all passed"), "{stdout}");
}
