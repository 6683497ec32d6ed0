//! The admin REST API: IoT Core's Device Manager API v1 (`cloudiot.googleapis.com`)
//! with Google's JSON and error envelope, so Google's client libraries and old
//! scripts work with only the endpoint changed.
//!
//! ```text
//!  request ─▶ auth (bearer admin token) ─▶ call(): route template + method + :verb
//!          ─▶ registries / devices / config / gateways ─▶ dyn Store, dyn DeviceHub
//!          ◀─ json (proto3 JSON mapping)  or  ApiError (Google's envelope)
//! ```
//!
//! axum 0.8 refuses a route like `/devices/{d}:verb` ("only one parameter is allowed
//! per path segment"), so every route takes any method and [`call`] dispatches on the
//! matched template, the method and the `:verb` suffix. [`routes::OPERATIONS`] lists the methods; the OpenAPI document
//! is generated from it, and a test sends each one through the router.

pub mod auth;
mod claims;
mod config;
pub mod console;
mod credentials;
mod devices;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod gateways;
pub mod grpc;
pub(crate) mod histogram;
pub mod json;
pub mod metrics;
pub mod openapi;
mod registries;
pub mod request;
pub mod routes;
mod rules;
pub mod telemetry;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path, RawQuery, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use tether_registry::Store;
use tether_registry::model::Timestamp;
use tether_registry::names::{DeviceRef, RegistryPath};

use self::auth::AdminAuth;
use self::error::{ApiError, ApiResult};
use self::request::{Query, json_body, split_verb, unknown_method};
use self::routes::*;
use crate::bridge::Clock;
use crate::bridge::Code;
use crate::bridge::hub::DeviceHub;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The registry.
    pub store: Arc<dyn Store>,
    /// Connected devices (commands, config pushes, kicks).
    pub hub: Arc<dyn DeviceHub>,
    /// The admin token check.
    pub admin: AdminAuth,
    /// The clock config versions and credential checks are stamped with.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.store.backend())
            .field("hub", &self.hub)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// Now, from the injected clock.
    pub fn now(&self) -> Timestamp {
        self.clock.timestamp()
    }
}

/// The admin API with `/healthz` and `/openapi.json` (both without auth).
pub fn router(state: ApiState) -> Router {
    let mut api = Router::new();
    for template in TEMPLATES {
        api = api.route(template, any(call));
    }
    let api = api
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ))
        .with_state(state);
    Router::new()
        .route("/healthz", get(health))
        .route("/openapi.json", get(openapi_document))
        .merge(api)
        .fallback(fallback)
}

async fn health() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok"}))
}

async fn openapi_document() -> axum::Json<Value> {
    axum::Json(openapi::document())
}

async fn fallback(method: Method, uri: Uri) -> Response {
    unknown_method(method.as_str(), uri.path()).into_response()
}

fn param<'a>(params: &'a HashMap<String, String>, key: &str) -> &'a str {
    params.get(key).map(String::as_str).unwrap_or("")
}

/// Every API route: finds the operation, reads the query and body, runs it.
async fn call(
    State(state): State<ApiState>,
    matched: MatchedPath,
    Path(params): Path<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    RawQuery(raw_query): RawQuery,
    body: Body,
) -> Response {
    let result = dispatch(
        &state,
        matched.as_str(),
        &params,
        &method,
        uri.path(),
        raw_query.as_deref(),
        body,
    )
    .await;
    match result {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) => e.into_response(),
    }
}

fn iam_unimplemented(verb: &str) -> ApiError {
    ApiError::new(
        Code::Unimplemented,
        format!(
            "{verb} is not implemented: Tether has no IAM; the admin token grants every method"
        ),
    )
}

const IAM_VERBS: [&str; 3] = ["setIamPolicy", "getIamPolicy", "testIamPermissions"];

/// One operation of the Device Manager API, with the resource it acts on: what the
/// REST routes and the gRPC service both resolve a request to, so that each operation
/// has one implementation whatever the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `registries.list` under `projects/P/locations/L`.
    ListRegistries {
        /// Project id.
        project: String,
        /// Location id.
        location: String,
    },
    /// `registries.create` under `projects/P/locations/L`.
    CreateRegistry {
        /// Project id.
        project: String,
        /// Location id.
        location: String,
    },
    /// `registries.get`.
    GetRegistry(RegistryPath),
    /// `registries.patch`.
    PatchRegistry(RegistryPath),
    /// `registries.delete`.
    DeleteRegistry(RegistryPath),
    /// `registries.bindDeviceToGateway`.
    Bind(RegistryPath),
    /// `registries.unbindDeviceFromGateway`.
    Unbind(RegistryPath),
    /// `setIamPolicy`, `getIamPolicy` or `testIamPermissions`: Tether has no IAM.
    Iam(&'static str),
    /// `devices.list`.
    ListDevices(RegistryPath),
    /// `devices.create`.
    CreateDevice(RegistryPath),
    /// `devices.get`.
    GetDevice(RegistryPath, DeviceRef),
    /// `devices.patch`.
    PatchDevice(RegistryPath, DeviceRef),
    /// `devices.delete`.
    DeleteDevice(RegistryPath, DeviceRef),
    /// `devices.modifyCloudToDeviceConfig`.
    ModifyConfig(RegistryPath, DeviceRef),
    /// `devices.sendCommandToDevice`.
    SendCommand(RegistryPath, DeviceRef),
    /// `devices.configVersions.list`.
    ListConfigVersions(RegistryPath, DeviceRef),
    /// `devices.states.list`.
    ListStates(RegistryPath, DeviceRef),
    /// `provisioningClaims.list` (Tether's extension).
    ListClaims(RegistryPath),
    /// `provisioningClaims.create`.
    CreateClaim(RegistryPath),
    /// `provisioningClaims.get`.
    GetClaim(RegistryPath, String),
    /// `provisioningClaims.delete`: revokes the claim.
    RevokeClaim(RegistryPath, String),
}

/// Runs one operation: `query` holds its parameters (as the REST query string
/// spells them), `body` its request message in the proto3 JSON mapping.
///
/// # Errors
/// The operation's refusal, in Google's codes and words.
pub async fn perform(state: &ApiState, call: Call, query: Query, body: Value) -> ApiResult<Value> {
    match call {
        Call::ListRegistries { project, location } => {
            registries::list(state, &project, &location, query).await
        }
        Call::CreateRegistry { project, location } => {
            registries::create(state, &project, &location, query, body).await
        }
        Call::GetRegistry(r) => registries::get(state, &r, query).await,
        Call::PatchRegistry(r) => registries::patch(state, &r, query, body).await,
        Call::DeleteRegistry(r) => registries::delete(state, &r, query).await,
        Call::Bind(r) => gateways::bind(state, &r, query, body).await,
        Call::Unbind(r) => gateways::unbind(state, &r, query, body).await,
        Call::Iam(verb) => Err(iam_unimplemented(verb)),
        Call::ListDevices(r) => devices::list(state, &r, query).await,
        Call::CreateDevice(r) => devices::create(state, &r, query, body).await,
        Call::GetDevice(r, d) => devices::get(state, &r, &d, query).await,
        Call::PatchDevice(r, d) => devices::patch(state, &r, &d, query, body).await,
        Call::DeleteDevice(r, d) => devices::delete(state, &r, &d, query).await,
        Call::ModifyConfig(r, d) => config::modify(state, &r, &d, query, body).await,
        Call::SendCommand(r, d) => config::send_command(state, &r, &d, query, body).await,
        Call::ListConfigVersions(r, d) => config::list_versions(state, &r, &d, query).await,
        Call::ListStates(r, d) => config::list_states(state, &r, &d, query).await,
        Call::ListClaims(r) => claims::list(state, &r, query).await,
        Call::CreateClaim(r) => claims::create(state, &r, query, body).await,
        Call::GetClaim(r, c) => claims::get(state, &r, &c, query).await,
        Call::RevokeClaim(r, c) => claims::revoke(state, &r, &c, query).await,
    }
}

async fn dispatch(
    state: &ApiState,
    template: &str,
    params: &HashMap<String, String>,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
    body: Body,
) -> ApiResult<Value> {
    let query = Query::parse(raw_query)?;
    let call = resolve(template, params, method, path)?;
    let with_body = *method == Method::POST || *method == Method::PATCH;
    let body = if with_body {
        json_body(body).await?
    } else {
        Value::Null
    };
    perform(state, call, query, body).await
}

/// The operation a REST route, method and `:verb` name.
fn resolve(
    template: &str,
    params: &HashMap<String, String>,
    method: &Method,
    path: &str,
) -> ApiResult<Call> {
    let unknown = || unknown_method(method.as_str(), path);
    let project = param(params, "project");
    let location = param(params, "location");
    if template == REGISTRIES {
        let (project, location) = (project.to_string(), location.to_string());
        return match *method {
            Method::GET => Ok(Call::ListRegistries { project, location }),
            Method::POST => Ok(Call::CreateRegistry { project, location }),
            _ => Err(unknown()),
        };
    }

    // Everything below names a registry; a `groups/{g}` segment is an alias that
    // does not filter (Tether has no device groups).
    let (registry_segment, registry_verb) = split_verb(param(params, "registry"));
    let (group_segment, group_verb) = split_verb(param(params, "group"));
    if params.contains_key("group") && group_segment.is_empty() {
        return Err(unknown());
    }
    let registry = request::registry(project, location, registry_segment)?;

    if template == REGISTRY || template == GROUP {
        let verb = if template == GROUP {
            group_verb
        } else {
            registry_verb
        };
        if template == GROUP && registry_verb.is_some() {
            return Err(unknown());
        }
        return match (method.clone(), verb) {
            (Method::POST, Some("bindDeviceToGateway")) => Ok(Call::Bind(registry)),
            (Method::POST, Some("unbindDeviceFromGateway")) => Ok(Call::Unbind(registry)),
            (Method::POST, Some(v)) => match IAM_VERBS.iter().find(|known| **known == v) {
                Some(known) => Ok(Call::Iam(known)),
                None => Err(unknown()),
            },
            (Method::GET, None) if template == REGISTRY => Ok(Call::GetRegistry(registry)),
            (Method::PATCH, None) if template == REGISTRY => Ok(Call::PatchRegistry(registry)),
            (Method::DELETE, None) if template == REGISTRY => Ok(Call::DeleteRegistry(registry)),
            _ => Err(unknown()),
        };
    }
    if registry_verb.is_some() || group_verb.is_some() {
        return Err(unknown());
    }

    if template == CLAIMS {
        return match *method {
            Method::GET => Ok(Call::ListClaims(registry)),
            Method::POST => Ok(Call::CreateClaim(registry)),
            _ => Err(unknown()),
        };
    }
    if template == CLAIM {
        let claim = param(params, "claim").to_string();
        if claim.is_empty() || claim.contains(':') {
            return Err(unknown());
        }
        return match *method {
            Method::GET => Ok(Call::GetClaim(registry, claim)),
            Method::DELETE => Ok(Call::RevokeClaim(registry, claim)),
            _ => Err(unknown()),
        };
    }

    if template == DEVICES || template == GROUP_DEVICES {
        return match *method {
            Method::GET => Ok(Call::ListDevices(registry)),
            Method::POST if template == DEVICES => Ok(Call::CreateDevice(registry)),
            _ => Err(unknown()),
        };
    }

    let (device_segment, device_verb) = split_verb(param(params, "device"));
    let device = request::device(device_segment)?;
    let in_group = template.contains("/groups/");
    match (template, method.clone(), device_verb) {
        (DEVICE | GROUP_DEVICE, Method::GET, None) => Ok(Call::GetDevice(registry, device)),
        (DEVICE | GROUP_DEVICE, Method::PATCH, None) => Ok(Call::PatchDevice(registry, device)),
        (DEVICE, Method::DELETE, None) if !in_group => Ok(Call::DeleteDevice(registry, device)),
        (DEVICE | GROUP_DEVICE, Method::POST, Some("modifyCloudToDeviceConfig")) => {
            Ok(Call::ModifyConfig(registry, device))
        }
        (DEVICE | GROUP_DEVICE, Method::POST, Some("sendCommandToDevice")) => {
            Ok(Call::SendCommand(registry, device))
        }
        (CONFIG_VERSIONS | GROUP_CONFIG_VERSIONS, Method::GET, None) => {
            Ok(Call::ListConfigVersions(registry, device))
        }
        (STATES | GROUP_STATES, Method::GET, None) => Ok(Call::ListStates(registry, device)),
        _ => Err(unknown()),
    }
}
