//! The route table: axum templates and the API methods served under them.

/// `…/registries` (list, create).
pub const REGISTRIES: &str = "/v1/projects/{project}/locations/{location}/registries";
/// `…/registries/{r}` and `{r}:verb`.
pub const REGISTRY: &str = "/v1/projects/{project}/locations/{location}/registries/{registry}";
/// `…/registries/{r}/groups/{g}` and `{g}:verb`.
pub const GROUP: &str =
    "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}";
/// `…/registries/{r}/devices`.
pub const DEVICES: &str =
    "/v1/projects/{project}/locations/{location}/registries/{registry}/devices";
/// `…/groups/{g}/devices`.
pub const GROUP_DEVICES: &str =
    "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}/devices";
/// `…/devices/{d}` and `{d}:verb`.
pub const DEVICE: &str =
    "/v1/projects/{project}/locations/{location}/registries/{registry}/devices/{device}";
/// `…/groups/{g}/devices/{d}` and `{d}:verb`.
pub const GROUP_DEVICE: &str = "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}/devices/{device}";
/// `…/devices/{d}/configVersions`.
pub const CONFIG_VERSIONS: &str = "/v1/projects/{project}/locations/{location}/registries/{registry}/devices/{device}/configVersions";
/// `…/groups/{g}/devices/{d}/configVersions`.
pub const GROUP_CONFIG_VERSIONS: &str = "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}/devices/{device}/configVersions";
/// `…/devices/{d}/states`.
pub const STATES: &str =
    "/v1/projects/{project}/locations/{location}/registries/{registry}/devices/{device}/states";
/// `…/groups/{g}/devices/{d}/states`.
pub const GROUP_STATES: &str = "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}/devices/{device}/states";

/// `…/registries/{r}/provisioningClaims` (Tether's extension).
pub const CLAIMS: &str =
    "/v1/projects/{project}/locations/{location}/registries/{registry}/provisioningClaims";
/// `…/provisioningClaims/{c}`.
pub const CLAIM: &str =
    "/v1/projects/{project}/locations/{location}/registries/{registry}/provisioningClaims/{claim}";

/// Every template the router serves.
pub const TEMPLATES: [&str; 13] = [
    REGISTRIES,
    REGISTRY,
    GROUP,
    DEVICES,
    GROUP_DEVICES,
    DEVICE,
    GROUP_DEVICE,
    CONFIG_VERSIONS,
    GROUP_CONFIG_VERSIONS,
    STATES,
    GROUP_STATES,
    CLAIMS,
    CLAIM,
];

/// What a method takes and returns, for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// No body.
    None,
    /// `{}`.
    Empty,
    /// A named component schema.
    Ref(&'static str),
}

/// One API method.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// Google's method id, e.g. `devices.get`.
    pub id: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// The path (a [`TEMPLATES`] entry, with a `:verb` suffix where the method has one).
    pub path: &'static str,
    /// Query parameters.
    pub query: &'static [&'static str],
    /// Request body.
    pub request: Schema,
    /// Response body.
    pub response: Schema,
    /// One line for the document.
    pub summary: &'static str,
}

const PAGING: &[&str] = &["pageSize", "pageToken"];
const DEVICE_LIST: &[&str] = &[
    "deviceIds",
    "deviceNumIds",
    "fieldMask",
    "gatewayListOptions.gatewayType",
    "gatewayListOptions.associationsGatewayId",
    "gatewayListOptions.associationsDeviceId",
    "pageSize",
    "pageToken",
];

macro_rules! op {
    ($id:literal, $m:literal, $path:expr, $q:expr, $req:expr, $resp:expr, $summary:literal) => {
        Operation {
            id: $id,
            method: $m,
            path: $path,
            query: $q,
            request: $req,
            response: $resp,
            summary: $summary,
        }
    };
}

use Schema::{Empty, None as NoBody, Ref};

/// The methods of the Device Manager API v1, and the `groups/*` aliases the spec
/// lists (IAM methods answer UNIMPLEMENTED).
pub const OPERATIONS: &[Operation] = &[
    op!(
        "registries.create",
        "POST",
        REGISTRIES,
        &[],
        Ref("DeviceRegistry"),
        Ref("DeviceRegistry"),
        "Creates a device registry."
    ),
    op!(
        "registries.list",
        "GET",
        REGISTRIES,
        PAGING,
        NoBody,
        Ref("ListDeviceRegistriesResponse"),
        "Lists the registries of a location."
    ),
    op!(
        "registries.get",
        "GET",
        REGISTRY,
        &[],
        NoBody,
        Ref("DeviceRegistry"),
        "Gets a registry."
    ),
    op!(
        "registries.patch",
        "PATCH",
        REGISTRY,
        &["updateMask"],
        Ref("DeviceRegistry"),
        Ref("DeviceRegistry"),
        "Updates the fields of a registry named in updateMask."
    ),
    op!(
        "registries.delete",
        "DELETE",
        REGISTRY,
        &[],
        NoBody,
        Empty,
        "Deletes a registry that has no devices."
    ),
    op!(
        "registries.bindDeviceToGateway",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}",
            ":bindDeviceToGateway"
        ),
        &[],
        Ref("BindRequest"),
        Empty,
        "Binds a device to a gateway."
    ),
    op!(
        "registries.unbindDeviceFromGateway",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}",
            ":unbindDeviceFromGateway"
        ),
        &[],
        Ref("BindRequest"),
        Empty,
        "Removes a device's binding to a gateway."
    ),
    op!(
        "registries.setIamPolicy",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}",
            ":setIamPolicy"
        ),
        &[],
        Ref("Any"),
        Ref("Error"),
        "Not implemented (UNIMPLEMENTED)."
    ),
    op!(
        "registries.getIamPolicy",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}",
            ":getIamPolicy"
        ),
        &[],
        Ref("Any"),
        Ref("Error"),
        "Not implemented (UNIMPLEMENTED)."
    ),
    op!(
        "registries.testIamPermissions",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}",
            ":testIamPermissions"
        ),
        &[],
        Ref("Any"),
        Ref("Error"),
        "Not implemented (UNIMPLEMENTED)."
    ),
    op!(
        "registries.groups.bindDeviceToGateway",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}",
            ":bindDeviceToGateway"
        ),
        &[],
        Ref("BindRequest"),
        Empty,
        "Alias of registries.bindDeviceToGateway."
    ),
    op!(
        "registries.groups.unbindDeviceFromGateway",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}",
            ":unbindDeviceFromGateway"
        ),
        &[],
        Ref("BindRequest"),
        Empty,
        "Alias of registries.unbindDeviceFromGateway."
    ),
    op!(
        "registries.groups.setIamPolicy",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}",
            ":setIamPolicy"
        ),
        &[],
        Ref("Any"),
        Ref("Error"),
        "Not implemented (UNIMPLEMENTED)."
    ),
    op!(
        "registries.groups.getIamPolicy",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}",
            ":getIamPolicy"
        ),
        &[],
        Ref("Any"),
        Ref("Error"),
        "Not implemented (UNIMPLEMENTED)."
    ),
    op!(
        "registries.groups.testIamPermissions",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}",
            ":testIamPermissions"
        ),
        &[],
        Ref("Any"),
        Ref("Error"),
        "Not implemented (UNIMPLEMENTED)."
    ),
    op!(
        "devices.create",
        "POST",
        DEVICES,
        &[],
        Ref("Device"),
        Ref("Device"),
        "Creates a device (config version 1)."
    ),
    op!(
        "devices.list",
        "GET",
        DEVICES,
        DEVICE_LIST,
        NoBody,
        Ref("ListDevicesResponse"),
        "Lists devices: id and numId, plus the fields in fieldMask."
    ),
    op!(
        "registries.groups.devices.list",
        "GET",
        GROUP_DEVICES,
        DEVICE_LIST,
        NoBody,
        Ref("ListDevicesResponse"),
        "Alias of devices.list."
    ),
    op!(
        "devices.get",
        "GET",
        DEVICE,
        &["fieldMask"],
        NoBody,
        Ref("Device"),
        "Gets a device by id or numId."
    ),
    op!(
        "devices.patch",
        "PATCH",
        DEVICE,
        &["updateMask"],
        Ref("Device"),
        Ref("Device"),
        "Updates the fields of a device named in updateMask."
    ),
    op!(
        "devices.delete",
        "DELETE",
        DEVICE,
        &[],
        NoBody,
        Empty,
        "Deletes a device with its history and bindings."
    ),
    op!(
        "devices.modifyCloudToDeviceConfig",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}/devices/{device}",
            ":modifyCloudToDeviceConfig"
        ),
        &[],
        Ref("ModifyCloudToDeviceConfigRequest"),
        Ref("DeviceConfig"),
        "Stores a new config version and pushes it to the device if connected."
    ),
    op!(
        "devices.sendCommandToDevice",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}/devices/{device}",
            ":sendCommandToDevice"
        ),
        &[],
        Ref("SendCommandToDeviceRequest"),
        Empty,
        "Sends a command to a connected, subscribed device (else 400 FAILED_PRECONDITION)."
    ),
    op!(
        "devices.configVersions.list",
        "GET",
        CONFIG_VERSIONS,
        &["numVersions"],
        NoBody,
        Ref("ListDeviceConfigVersionsResponse"),
        "Lists the last config versions, newest first."
    ),
    op!(
        "devices.states.list",
        "GET",
        STATES,
        &["numStates"],
        NoBody,
        Ref("ListDeviceStatesResponse"),
        "Lists the last states, newest first."
    ),
    op!(
        "registries.groups.devices.get",
        "GET",
        GROUP_DEVICE,
        &["fieldMask"],
        NoBody,
        Ref("Device"),
        "Alias of devices.get."
    ),
    op!(
        "registries.groups.devices.patch",
        "PATCH",
        GROUP_DEVICE,
        &["updateMask"],
        Ref("Device"),
        Ref("Device"),
        "Alias of devices.patch."
    ),
    op!(
        "registries.groups.devices.modifyCloudToDeviceConfig",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}/devices/{device}",
            ":modifyCloudToDeviceConfig"
        ),
        &[],
        Ref("ModifyCloudToDeviceConfigRequest"),
        Ref("DeviceConfig"),
        "Alias of devices.modifyCloudToDeviceConfig."
    ),
    op!(
        "registries.groups.devices.sendCommandToDevice",
        "POST",
        concat!(
            "/v1/projects/{project}/locations/{location}/registries/{registry}/groups/{group}/devices/{device}",
            ":sendCommandToDevice"
        ),
        &[],
        Ref("SendCommandToDeviceRequest"),
        Empty,
        "Alias of devices.sendCommandToDevice."
    ),
    op!(
        "registries.groups.devices.configVersions.list",
        "GET",
        GROUP_CONFIG_VERSIONS,
        &["numVersions"],
        NoBody,
        Ref("ListDeviceConfigVersionsResponse"),
        "Alias of devices.configVersions.list."
    ),
    op!(
        "registries.groups.devices.states.list",
        "GET",
        GROUP_STATES,
        &["numStates"],
        NoBody,
        Ref("ListDeviceStatesResponse"),
        "Alias of devices.states.list."
    ),
    op!(
        "provisioningClaims.create",
        "POST",
        CLAIMS,
        &["claimId"],
        Ref("ProvisioningClaim"),
        Ref("ProvisioningClaim"),
        "Creates a provisioning claim (Tether's extension; docs/provisioning.md)."
    ),
    op!(
        "provisioningClaims.list",
        "GET",
        CLAIMS,
        &[],
        NoBody,
        Ref("ListProvisioningClaimsResponse"),
        "Lists a registry's provisioning claims, revoked ones included."
    ),
    op!(
        "provisioningClaims.get",
        "GET",
        CLAIM,
        &[],
        NoBody,
        Ref("ProvisioningClaim"),
        "Gets a provisioning claim with its count and state."
    ),
    op!(
        "provisioningClaims.delete",
        "DELETE",
        CLAIM,
        &[],
        NoBody,
        Ref("ProvisioningClaim"),
        "Revokes a provisioning claim; it stays listed as REVOKED."
    ),
];
