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
mod config;
mod credentials;
mod devices;
pub mod error;
mod gateways;
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

async fn dispatch(
    state: &ApiState,
    template: &str,
    params: &HashMap<String, String>,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
    body: Body,
) -> ApiResult<Value> {
    let unknown = || unknown_method(method.as_str(), path);
    let query = Query::parse(raw_query)?;
    let project = param(params, "project");
    let location = param(params, "location");
    let is_post = *method == Method::POST;
    let with_body = is_post || *method == Method::PATCH;
    let body = if with_body {
        json_body(body).await?
    } else {
        Value::Null
    };

    if template == REGISTRIES {
        return match *method {
            Method::GET => registries::list(state, project, location, query).await,
            Method::POST => registries::create(state, project, location, query, body).await,
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
            (Method::POST, Some("bindDeviceToGateway")) => {
                gateways::bind(state, &registry, query, body).await
            }
            (Method::POST, Some("unbindDeviceFromGateway")) => {
                gateways::unbind(state, &registry, query, body).await
            }
            (Method::POST, Some(v)) if IAM_VERBS.contains(&v) => Err(iam_unimplemented(v)),
            (Method::GET, None) if template == REGISTRY => {
                registries::get(state, &registry, query).await
            }
            (Method::PATCH, None) if template == REGISTRY => {
                registries::patch(state, &registry, query, body).await
            }
            (Method::DELETE, None) if template == REGISTRY => {
                registries::delete(state, &registry, query).await
            }
            _ => Err(unknown()),
        };
    }
    if registry_verb.is_some() || group_verb.is_some() {
        return Err(unknown());
    }

    if template == DEVICES || template == GROUP_DEVICES {
        return match *method {
            Method::GET => devices::list(state, &registry, query).await,
            Method::POST if template == DEVICES => {
                devices::create(state, &registry, query, body).await
            }
            _ => Err(unknown()),
        };
    }

    let (device_segment, device_verb) = split_verb(param(params, "device"));
    let device = request::device(device_segment)?;
    let in_group = template.contains("/groups/");
    match (template, method.clone(), device_verb) {
        (DEVICE | GROUP_DEVICE, Method::GET, None) => {
            devices::get(state, &registry, &device, query).await
        }
        (DEVICE | GROUP_DEVICE, Method::PATCH, None) => {
            devices::patch(state, &registry, &device, query, body).await
        }
        (DEVICE, Method::DELETE, None) if !in_group => {
            devices::delete(state, &registry, &device, query).await
        }
        (DEVICE | GROUP_DEVICE, Method::POST, Some("modifyCloudToDeviceConfig")) => {
            config::modify(state, &registry, &device, query, body).await
        }
        (DEVICE | GROUP_DEVICE, Method::POST, Some("sendCommandToDevice")) => {
            config::send_command(state, &registry, &device, query, body).await
        }
        (CONFIG_VERSIONS | GROUP_CONFIG_VERSIONS, Method::GET, None) => {
            config::list_versions(state, &registry, &device, query).await
        }
        (STATES | GROUP_STATES, Method::GET, None) => {
            config::list_states(state, &registry, &device, query).await
        }
        _ => Err(unknown()),
    }
}
