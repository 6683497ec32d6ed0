//! Describes IoT Core's `google.cloud.iot.v1.DeviceManager` service for tonic's code
//! generator. The message types come from `googleapis-tonic-google-cloud-iot-v1`
//! (generated from Google's .proto files by that crate); only the service's shape is
//! written here, method by method, from Google's API reference.

use tonic_build::manual::{Builder, Method, Service};

const IOT: &str = "::googleapis_tonic_google_cloud_iot_v1::google::cloud::iot::v1";
const IAM: &str = "::googleapis_tonic_google_cloud_iot_v1::google::iam::v1";

/// `(rust name, RPC name, request, response)`; `iam.` names a `google.iam.v1` type,
/// `()` is `google.protobuf.Empty`.
type Rpc = (&'static str, &'static str, &'static str, &'static str);

const DEVICE_MANAGER: &[Rpc] = &[
    (
        "create_device_registry",
        "CreateDeviceRegistry",
        "CreateDeviceRegistryRequest",
        "DeviceRegistry",
    ),
    (
        "get_device_registry",
        "GetDeviceRegistry",
        "GetDeviceRegistryRequest",
        "DeviceRegistry",
    ),
    (
        "update_device_registry",
        "UpdateDeviceRegistry",
        "UpdateDeviceRegistryRequest",
        "DeviceRegistry",
    ),
    (
        "delete_device_registry",
        "DeleteDeviceRegistry",
        "DeleteDeviceRegistryRequest",
        "()",
    ),
    (
        "list_device_registries",
        "ListDeviceRegistries",
        "ListDeviceRegistriesRequest",
        "ListDeviceRegistriesResponse",
    ),
    (
        "create_device",
        "CreateDevice",
        "CreateDeviceRequest",
        "Device",
    ),
    ("get_device", "GetDevice", "GetDeviceRequest", "Device"),
    (
        "update_device",
        "UpdateDevice",
        "UpdateDeviceRequest",
        "Device",
    ),
    ("delete_device", "DeleteDevice", "DeleteDeviceRequest", "()"),
    (
        "list_devices",
        "ListDevices",
        "ListDevicesRequest",
        "ListDevicesResponse",
    ),
    (
        "modify_cloud_to_device_config",
        "ModifyCloudToDeviceConfig",
        "ModifyCloudToDeviceConfigRequest",
        "DeviceConfig",
    ),
    (
        "list_device_config_versions",
        "ListDeviceConfigVersions",
        "ListDeviceConfigVersionsRequest",
        "ListDeviceConfigVersionsResponse",
    ),
    (
        "list_device_states",
        "ListDeviceStates",
        "ListDeviceStatesRequest",
        "ListDeviceStatesResponse",
    ),
    (
        "set_iam_policy",
        "SetIamPolicy",
        "iam.SetIamPolicyRequest",
        "iam.Policy",
    ),
    (
        "get_iam_policy",
        "GetIamPolicy",
        "iam.GetIamPolicyRequest",
        "iam.Policy",
    ),
    (
        "test_iam_permissions",
        "TestIamPermissions",
        "iam.TestIamPermissionsRequest",
        "iam.TestIamPermissionsResponse",
    ),
    (
        "send_command_to_device",
        "SendCommandToDevice",
        "SendCommandToDeviceRequest",
        "SendCommandToDeviceResponse",
    ),
    (
        "bind_device_to_gateway",
        "BindDeviceToGateway",
        "BindDeviceToGatewayRequest",
        "BindDeviceToGatewayResponse",
    ),
    (
        "unbind_device_from_gateway",
        "UnbindDeviceFromGateway",
        "UnbindDeviceFromGatewayRequest",
        "UnbindDeviceFromGatewayResponse",
    ),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let ty = |t: &str| match t {
        // google.protobuf.Empty is `()` in prost; the generator wants a path.
        "()" => "crate::api::grpc::Empty".to_owned(),
        t => match t.strip_prefix("iam.") {
            Some(iam) => format!("{IAM}::{iam}"),
            None => format!("{IOT}::{t}"),
        },
    };
    let mut service = Service::builder()
        .name("DeviceManager")
        .package("google.cloud.iot.v1");
    for &(rust, rpc, input, output) in DEVICE_MANAGER {
        service = service.method(
            Method::builder()
                .name(rust)
                .route_name(rpc)
                .input_type(ty(input))
                .output_type(ty(output))
                .codec_path("::tonic_prost::ProstCodec")
                .build(),
        );
    }
    // The client too: the tests call the server with it. No transport helpers.
    Builder::new()
        .build_client(true)
        .build_transport(false)
        .compile(&[service.build()]);
}
