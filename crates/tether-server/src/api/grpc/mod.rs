//! The Device Manager API over gRPC (`google.cloud.iot.v1.DeviceManager`), the
//! default transport of Google's generated admin clients.
//!
//! ```text
//!  gRPC request ─▶ admin token (authorization metadata)
//!     ─▶ service: resource name ─▶ api::Call, fields ─▶ query + proto3 JSON body
//!     ─▶ api::perform (the same operation the REST route runs)
//!     ◀─ JSON answer ─▶ Google's message      or  ApiError ─▶ grpc-status
//! ```
//!
//! Each RPC is translated, as Google's own front end translated REST to gRPC, to the
//! one implementation of its operation: validation, error texts and effects cannot
//! drift between the transports. The service's shape is described in `build.rs`
//! (tonic's manual builder); the message types are Google's, from
//! `googleapis-tonic-google-cloud-iot-v1`.

mod from_json;
mod service;
pub mod to_json;

use std::sync::Arc;

use axum::http::HeaderValue;

use super::ApiState;
use super::error::ApiError;

#[allow(
    missing_docs,
    missing_debug_implementations,
    unused_qualifications,
    clippy::all,
    clippy::pedantic
)]
mod generated {
    include!(concat!(
        env!("OUT_DIR"),
        "/google.cloud.iot.v1.DeviceManager.rs"
    ));
}

pub use generated::device_manager_client::DeviceManagerClient;
pub use generated::device_manager_server::DeviceManagerServer;
/// Google's message types, as the clients take them.
pub use googleapis_tonic_google_cloud_iot_v1::google::cloud::iot::v1 as types;
/// Google's IAM message types, as the IAM methods take them.
pub use googleapis_tonic_google_cloud_iot_v1::google::iam::v1 as iam;
/// Google's `google.rpc` types (`Status` in `Device.lastErrorStatus`).
pub use googleapis_tonic_google_cloud_iot_v1::google::rpc;

/// `google.protobuf.Empty`, as prost maps it.
pub type Empty = ();

/// The largest request message: gRPC's customary 4 MiB. A larger one is answered
/// `RESOURCE_EXHAUSTED`, as Google's servers answer it.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Checks a call's `authorization` metadata; `Err` is the status it is answered with
/// (the one type every gRPC service of the server takes).
pub use tether_pubsub::grpc::Authorize;

/// The admin token check as a gRPC interceptor takes it: UNAUTHENTICATED for a
/// missing or wrong token, as Google's servers answer credentials they do not
/// accept, with the REST API's words for what is wrong.
pub fn authorize(admin: super::auth::AdminAuth) -> Authorize {
    Arc::new(move |header| {
        admin
            .check(header)
            .map_err(|e| tonic::Status::unauthenticated(e.message))
    })
}

/// An API error as a gRPC status: the same code (Google's canonical codes are the
/// gRPC ones) and the same message as the REST envelope.
pub fn status(e: ApiError) -> tonic::Status {
    if e.code == crate::bridge::Code::Internal {
        tracing::error!(message = %e.message, "admin API (gRPC) internal error");
    }
    tonic::Status::new(tonic::Code::from_i32(e.code.as_i32()), e.message)
}

/// The Device Manager service over `state`, every call checked with `authorize`.
pub fn routes(state: ApiState, authorize: Authorize) -> tonic::service::Routes {
    let check = tether_pubsub::grpc::interceptor(Some(authorize));
    let server = DeviceManagerServer::new(service::DeviceManager { state })
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let routes = tonic::service::Routes::new(tonic::service::interceptor::InterceptedService::new(
        server, check,
    ));
    oversized_is_resource_exhausted(routes)
}

/// tonic answers a message over the size limit with OUT_OF_RANGE; gRPC's other
/// implementations, Google's among them, answer RESOURCE_EXHAUSTED, and clients
/// treat the two differently (one is a bad request, the other a limit). This
/// rewrites that one answer.
fn oversized_is_resource_exhausted(routes: tonic::service::Routes) -> tonic::service::Routes {
    let router = routes
        .into_axum_router()
        .layer(axum::middleware::map_response(
            |mut response: axum::response::Response| async move {
                let headers = response.headers_mut();
                let oversized = headers.get("grpc-status").is_some_and(|s| s == "11")
                    && headers
                        .get("grpc-message")
                        .and_then(|m| m.to_str().ok())
                        .is_some_and(|m| m.contains("length%20too%20large"));
                if oversized {
                    headers.insert("grpc-status", HeaderValue::from_static("8"));
                }
                response
            },
        ));
    tonic::service::Routes::from(router)
}
