//! Each RPC of `google.cloud.iot.v1.DeviceManager` as the REST operation it is:
//! the resource name becomes a [`Call`], the request's fields the query parameters
//! and body the REST method takes, and the JSON answer Google's message.

use serde_json::{Value, json};
use tether_registry::names::{self, DeviceRef, RegistryPath};
use tonic::{Request, Response, Status};

use super::generated::device_manager_server;
use super::types::{
    BindDeviceToGatewayRequest, BindDeviceToGatewayResponse, CreateDeviceRegistryRequest,
    CreateDeviceRequest, DeleteDeviceRegistryRequest, DeleteDeviceRequest, Device, DeviceConfig,
    DeviceRegistry, GetDeviceRegistryRequest, GetDeviceRequest, ListDeviceConfigVersionsRequest,
    ListDeviceConfigVersionsResponse, ListDeviceRegistriesRequest, ListDeviceRegistriesResponse,
    ListDeviceStatesRequest, ListDeviceStatesResponse, ListDevicesRequest, ListDevicesResponse,
    ModifyCloudToDeviceConfigRequest, SendCommandToDeviceRequest, SendCommandToDeviceResponse,
    UnbindDeviceFromGatewayRequest, UnbindDeviceFromGatewayResponse, UpdateDeviceRegistryRequest,
    UpdateDeviceRequest, gateway_list_options,
};
use super::{Empty, from_json, iam, status, to_json};
use crate::api::error::{ApiError, ApiResult};
use crate::api::request::Query;
use crate::api::{ApiState, Call, perform};

/// The service: the API's shared state.
#[derive(Debug, Clone)]
pub struct DeviceManager {
    pub state: ApiState,
}

/// The query string a REST client would have sent, built from a request's fields.
#[derive(Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn text(mut self, key: &str, value: &str) -> Self {
        if !value.is_empty() {
            self.0.push((key.into(), value.into()));
        }
        self
    }

    fn number(mut self, key: &str, value: i64) -> Self {
        if value != 0 {
            self.0.push((key.into(), value.to_string()));
        }
        self
    }

    /// A field mask: its paths, comma-separated, as the REST API takes them.
    fn mask(self, key: &str, mask: Option<&prost_types::FieldMask>) -> Self {
        let paths = mask.map(|m| m.paths.join(",")).unwrap_or_default();
        self.text(key, &paths)
    }

    fn query(self) -> ApiResult<Query> {
        let text = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.0)
            .finish();
        Query::parse(Some(&text))
    }
}

/// A name's error, with the request field it came in.
fn in_field(field: &str, e: names::NameError) -> ApiError {
    ApiError::invalid(format!("{field}: {}", e.0))
}

/// `projects/P/locations/L`.
fn location(field: &str, name: &str) -> ApiResult<(String, String)> {
    let path = names::parse_location(name).map_err(|e| in_field(field, e))?;
    Ok((path.project, path.location))
}

/// `projects/P/locations/L/registries/R`, or one of its `groups/G` (an alias: Tether
/// has no device groups).
fn registry(field: &str, name: &str) -> ApiResult<RegistryPath> {
    let name = without_group(name);
    names::parse_registry(&name).map_err(|e| in_field(field, e))
}

/// `…/registries/R/devices/D` (or `…/groups/G/devices/D`); D is an id or a numId.
fn device(field: &str, name: &str) -> ApiResult<(RegistryPath, DeviceRef)> {
    let name = without_group(name);
    names::parse_device(&name).map_err(|e| in_field(field, e))
}

/// Drops a `groups/G` pair after the registry.
fn without_group(name: &str) -> String {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() >= 8 && parts[6] == "groups" {
        let mut kept = parts[..6].to_vec();
        kept.extend_from_slice(&parts[8..]);
        kept.join("/")
    } else {
        name.to_string()
    }
}

impl DeviceManager {
    async fn run(&self, call: Call, params: Params, body: Value) -> Result<Value, Status> {
        let query = params.query().map_err(status)?;
        perform(&self.state, call, query, body)
            .await
            .map_err(status)
    }
}

fn ok<T>(v: ApiResult<T>) -> Result<Response<T>, Status> {
    v.map(Response::new).map_err(status)
}

/// An optional message's JSON (`{}` when absent, so that the operation names what
/// is missing).
fn body<T>(message: Option<&T>, render: fn(&T) -> Value) -> Value {
    message.map_or_else(|| json!({}), render)
}

#[tonic::async_trait]
impl device_manager_server::DeviceManager for DeviceManager {
    async fn create_device_registry(
        &self,
        request: Request<CreateDeviceRegistryRequest>,
    ) -> Result<Response<DeviceRegistry>, Status> {
        let r = request.into_inner();
        let (project, location) = location("parent", &r.parent).map_err(status)?;
        let v = self
            .run(
                Call::CreateRegistry { project, location },
                Params::default(),
                body(r.device_registry.as_ref(), to_json::registry),
            )
            .await?;
        ok(from_json::registry(&v))
    }

    async fn get_device_registry(
        &self,
        request: Request<GetDeviceRegistryRequest>,
    ) -> Result<Response<DeviceRegistry>, Status> {
        let r = request.into_inner();
        let path = registry("name", &r.name).map_err(status)?;
        let v = self
            .run(Call::GetRegistry(path), Params::default(), Value::Null)
            .await?;
        ok(from_json::registry(&v))
    }

    async fn update_device_registry(
        &self,
        request: Request<UpdateDeviceRegistryRequest>,
    ) -> Result<Response<DeviceRegistry>, Status> {
        let r = request.into_inner();
        let name = r
            .device_registry
            .as_ref()
            .map(|d| d.name.as_str())
            .unwrap_or_default();
        let path = registry("device_registry.name", name).map_err(status)?;
        let params = Params::default().mask("update_mask", r.update_mask.as_ref());
        let v = self
            .run(
                Call::PatchRegistry(path),
                params,
                body(r.device_registry.as_ref(), to_json::registry),
            )
            .await?;
        ok(from_json::registry(&v))
    }

    async fn delete_device_registry(
        &self,
        request: Request<DeleteDeviceRegistryRequest>,
    ) -> Result<Response<Empty>, Status> {
        let r = request.into_inner();
        let path = registry("name", &r.name).map_err(status)?;
        self.run(Call::DeleteRegistry(path), Params::default(), Value::Null)
            .await?;
        Ok(Response::new(()))
    }

    async fn list_device_registries(
        &self,
        request: Request<ListDeviceRegistriesRequest>,
    ) -> Result<Response<ListDeviceRegistriesResponse>, Status> {
        let r = request.into_inner();
        let (project, location) = location("parent", &r.parent).map_err(status)?;
        let params = Params::default()
            .number("page_size", i64::from(r.page_size))
            .text("page_token", &r.page_token);
        let v = self
            .run(
                Call::ListRegistries { project, location },
                params,
                Value::Null,
            )
            .await?;
        ok((|| {
            Ok(ListDeviceRegistriesResponse {
                device_registries: from_json::items(&v, "deviceRegistries", from_json::registry)?,
                next_page_token: from_json::next_page_token(&v)?,
            })
        })())
    }

    async fn create_device(
        &self,
        request: Request<CreateDeviceRequest>,
    ) -> Result<Response<Device>, Status> {
        let r = request.into_inner();
        let path = registry("parent", &r.parent).map_err(status)?;
        let v = self
            .run(
                Call::CreateDevice(path),
                Params::default(),
                body(r.device.as_ref(), to_json::device),
            )
            .await?;
        ok(from_json::device(&v))
    }

    async fn get_device(
        &self,
        request: Request<GetDeviceRequest>,
    ) -> Result<Response<Device>, Status> {
        let r = request.into_inner();
        let (path, id) = device("name", &r.name).map_err(status)?;
        let params = Params::default().mask("field_mask", r.field_mask.as_ref());
        let v = self
            .run(Call::GetDevice(path, id), params, Value::Null)
            .await?;
        ok(from_json::device(&v))
    }

    async fn update_device(
        &self,
        request: Request<UpdateDeviceRequest>,
    ) -> Result<Response<Device>, Status> {
        let r = request.into_inner();
        let name = r
            .device
            .as_ref()
            .map(|d| d.name.as_str())
            .unwrap_or_default();
        let (path, id) = device("device.name", name).map_err(status)?;
        let params = Params::default().mask("update_mask", r.update_mask.as_ref());
        let v = self
            .run(
                Call::PatchDevice(path, id),
                params,
                body(r.device.as_ref(), to_json::device),
            )
            .await?;
        ok(from_json::device(&v))
    }

    async fn delete_device(
        &self,
        request: Request<DeleteDeviceRequest>,
    ) -> Result<Response<Empty>, Status> {
        let r = request.into_inner();
        let (path, id) = device("name", &r.name).map_err(status)?;
        self.run(Call::DeleteDevice(path, id), Params::default(), Value::Null)
            .await?;
        Ok(Response::new(()))
    }

    async fn list_devices(
        &self,
        request: Request<ListDevicesRequest>,
    ) -> Result<Response<ListDevicesResponse>, Status> {
        let r = request.into_inner();
        let path = registry("parent", &r.parent).map_err(status)?;
        let mut params = Params::default();
        for id in &r.device_ids {
            params.0.push(("device_ids".into(), id.clone()));
        }
        for num in &r.device_num_ids {
            params.0.push(("device_num_ids".into(), num.to_string()));
        }
        params = params.mask("field_mask", r.field_mask.as_ref());
        use gateway_list_options::Filter;
        match r.gateway_list_options.and_then(|o| o.filter) {
            Some(Filter::GatewayType(t)) => {
                let name = super::types::GatewayType::try_from(t)
                    .map_or_else(|_| t.to_string(), |t| t.as_str_name().to_string());
                params
                    .0
                    .push(("gateway_list_options.gateway_type".into(), name));
            }
            Some(Filter::AssociationsGatewayId(id)) => {
                params = params.text("gateway_list_options.associations_gateway_id", &id);
            }
            Some(Filter::AssociationsDeviceId(id)) => {
                params = params.text("gateway_list_options.associations_device_id", &id);
            }
            None => {}
        }
        params = params
            .number("page_size", i64::from(r.page_size))
            .text("page_token", &r.page_token);
        let v = self
            .run(Call::ListDevices(path), params, Value::Null)
            .await?;
        ok((|| {
            Ok(ListDevicesResponse {
                devices: from_json::items(&v, "devices", from_json::device)?,
                next_page_token: from_json::next_page_token(&v)?,
            })
        })())
    }

    async fn modify_cloud_to_device_config(
        &self,
        request: Request<ModifyCloudToDeviceConfigRequest>,
    ) -> Result<Response<DeviceConfig>, Status> {
        let r = request.into_inner();
        let (path, id) = device("name", &r.name).map_err(status)?;
        let v = self
            .run(
                Call::ModifyConfig(path, id),
                Params::default(),
                to_json::modify_config(&r),
            )
            .await?;
        ok(from_json::config(&v))
    }

    async fn list_device_config_versions(
        &self,
        request: Request<ListDeviceConfigVersionsRequest>,
    ) -> Result<Response<ListDeviceConfigVersionsResponse>, Status> {
        let r = request.into_inner();
        let (path, id) = device("name", &r.name).map_err(status)?;
        let params = Params::default().number("num_versions", i64::from(r.num_versions));
        let v = self
            .run(Call::ListConfigVersions(path, id), params, Value::Null)
            .await?;
        ok(from_json::items(&v, "deviceConfigs", from_json::config)
            .map(|device_configs| ListDeviceConfigVersionsResponse { device_configs }))
    }

    async fn list_device_states(
        &self,
        request: Request<ListDeviceStatesRequest>,
    ) -> Result<Response<ListDeviceStatesResponse>, Status> {
        let r = request.into_inner();
        let (path, id) = device("name", &r.name).map_err(status)?;
        let params = Params::default().number("num_states", i64::from(r.num_states));
        let v = self
            .run(Call::ListStates(path, id), params, Value::Null)
            .await?;
        ok(from_json::items(&v, "deviceStates", from_json::state)
            .map(|device_states| ListDeviceStatesResponse { device_states }))
    }

    async fn set_iam_policy(
        &self,
        request: Request<iam::SetIamPolicyRequest>,
    ) -> Result<Response<iam::Policy>, Status> {
        registry("resource", &request.into_inner().resource).map_err(status)?;
        Err(self.iam("setIamPolicy").await)
    }

    async fn get_iam_policy(
        &self,
        request: Request<iam::GetIamPolicyRequest>,
    ) -> Result<Response<iam::Policy>, Status> {
        registry("resource", &request.into_inner().resource).map_err(status)?;
        Err(self.iam("getIamPolicy").await)
    }

    async fn test_iam_permissions(
        &self,
        request: Request<iam::TestIamPermissionsRequest>,
    ) -> Result<Response<iam::TestIamPermissionsResponse>, Status> {
        registry("resource", &request.into_inner().resource).map_err(status)?;
        Err(self.iam("testIamPermissions").await)
    }

    async fn send_command_to_device(
        &self,
        request: Request<SendCommandToDeviceRequest>,
    ) -> Result<Response<SendCommandToDeviceResponse>, Status> {
        let r = request.into_inner();
        let (path, id) = device("name", &r.name).map_err(status)?;
        self.run(
            Call::SendCommand(path, id),
            Params::default(),
            to_json::command(&r),
        )
        .await?;
        Ok(Response::new(SendCommandToDeviceResponse {}))
    }

    async fn bind_device_to_gateway(
        &self,
        request: Request<BindDeviceToGatewayRequest>,
    ) -> Result<Response<BindDeviceToGatewayResponse>, Status> {
        let r = request.into_inner();
        let path = registry("parent", &r.parent).map_err(status)?;
        self.run(
            Call::Bind(path),
            Params::default(),
            to_json::binding(&r.gateway_id, &r.device_id),
        )
        .await?;
        Ok(Response::new(BindDeviceToGatewayResponse {}))
    }

    async fn unbind_device_from_gateway(
        &self,
        request: Request<UnbindDeviceFromGatewayRequest>,
    ) -> Result<Response<UnbindDeviceFromGatewayResponse>, Status> {
        let r = request.into_inner();
        let path = registry("parent", &r.parent).map_err(status)?;
        self.run(
            Call::Unbind(path),
            Params::default(),
            to_json::binding(&r.gateway_id, &r.device_id),
        )
        .await?;
        Ok(Response::new(UnbindDeviceFromGatewayResponse {}))
    }
}

impl DeviceManager {
    /// The IAM methods' answer, from the same operation REST runs.
    async fn iam(&self, verb: &'static str) -> Status {
        match self
            .run(Call::Iam(verb), Params::default(), Value::Null)
            .await
        {
            Err(s) => s,
            Ok(_) => Status::internal("an IAM method answered; this is a bug in Tether"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_aliases_name_the_registry() {
        assert_eq!(
            without_group("projects/p/locations/l/registries/r/groups/g/devices/d"),
            "projects/p/locations/l/registries/r/devices/d"
        );
        assert_eq!(
            without_group("projects/p/locations/l/registries/r/groups/g"),
            "projects/p/locations/l/registries/r"
        );
        assert_eq!(
            without_group("projects/p/locations/l/registries/r/devices/d"),
            "projects/p/locations/l/registries/r/devices/d"
        );
        assert!(
            device("name", "projects/p/locations/l/registries/r")
                .is_err_and(
                    |e| e.message.starts_with("name: ") && e.message.contains("registries/r")
                )
        );
    }
}
