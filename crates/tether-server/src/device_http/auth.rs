//! Who is calling the HTTP bridge: the bearer JWT checked by the shared device-auth
//! steps, the registry's HTTP switch, and `gatewayInfo` for calls made by or through
//! a gateway. Refusals are recorded as the device's `lastErrorStatus`.

use tether_registry::model::{Device, DeviceRegistry, GatewayType, HttpState};
use tether_registry::names::DeviceRef;
use tether_registry::{Activity, ActivityKind};

use super::{DeviceBridge, Target};
use crate::api::error::ApiError;
use crate::bridge::auth::{self as device_auth, Denied, DeniedKind};
use crate::bridge::gateway_rules;
use crate::bridge::hub::DeviceAddress;
use crate::bridge::{Code, Reason, Transport};

/// `gatewayInfo` of a request (at most one is set).
#[derive(Debug, Clone, Default)]
pub(super) struct GatewayInfo {
    /// The path and token are the gateway's; the call is for this device.
    pub(super) delegated_device_id: Option<String>,
    /// The path and token are the device's; a gateway relays the call.
    pub(super) gateway_id: Option<String>,
}

/// The device a call acts for.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    pub(super) registry: DeviceRegistry,
    pub(super) device: Device,
    pub(super) address: DeviceAddress,
    /// The gateway the call came through, if any.
    pub(super) gateway_id: Option<String>,
}

/// Authorizes a bridge call.
///
/// # Errors
/// The API error to answer with (401, 403, 404, 503).
pub(super) async fn authorize(
    bridge: &DeviceBridge,
    target: &Target,
    authorization: Option<&str>,
    info: GatewayInfo,
) -> Result<Caller, ApiError> {
    let result = check(bridge, target, authorization, info).await;
    if let Err(denied) = &result
        && let Some(device) = &denied.device
    {
        record_error(bridge, device, &denied.reason);
    }
    result.map_err(|d| api_error(&d))
}

async fn check(
    bridge: &DeviceBridge,
    target: &Target,
    authorization: Option<&str>,
    info: GatewayInfo,
) -> Result<Caller, Denied> {
    let inner = &bridge.inner;
    let token = bearer(authorization)?;
    let path = &target.registry;
    let (registry, device) = device_auth::lookup(&*inner.store, path, &target.device).await?;
    let address = DeviceAddress {
        registry: path.clone(),
        num_id: device.num_id,
    };
    if registry.http_state == HttpState::Disabled {
        return Err(forbidden(
            Code::FailedPrecondition,
            "http_disabled",
            format!(
                "HTTP is disabled for registry '{path}' (httpConfig.httpEnabledState is \
                 HTTP_DISABLED)"
            ),
        )
        .on(&address));
    }
    device_auth::check_not_blocked(&device, &address)?;
    device_auth::verify_token(
        token,
        &path.project,
        path,
        &device,
        &*inner.credentials,
        inner.jwt,
        inner.clock.unix_secs(),
    )
    .await?;
    match (info.delegated_device_id, info.gateway_id) {
        (None, None) => Ok(Caller {
            registry,
            device,
            address,
            gateway_id: None,
        }),
        (Some(_), Some(_)) => Err(Denied::new(
            DeniedKind::Malformed,
            Reason::new(
                Code::InvalidArgument,
                "gateway_info_both",
                "gatewayInfo must set delegatedDeviceId or gatewayId, not both",
            ),
        )),
        (Some(delegated), None) => {
            // The path and the token are the gateway's.
            let (gateway_device, gateway_address) = (device, address);
            let method = gateway_method(&gateway_device, &gateway_address)?;
            if method.token {
                return Err(forbidden(
                    Code::PermissionDenied,
                    "gateway_needs_device_token",
                    format!(
                        "the gateway's auth method requires the device's own JWT: call with \
                         the device's path and token and gatewayInfo.gatewayId = '{}'",
                        gateway_device.id
                    ),
                )
                .on(&gateway_address));
            }
            let (_, device) =
                device_auth::lookup(&*inner.store, path, &DeviceRef::Id(delegated)).await?;
            let address = DeviceAddress {
                registry: path.clone(),
                num_id: device.num_id,
            };
            behind_gateway(bridge, &gateway_device, &device, &address, method).await?;
            Ok(Caller {
                registry,
                device,
                address,
                gateway_id: Some(gateway_device.id),
            })
        }
        (None, Some(gateway_id)) => {
            // The path and the token are the device's; the gateway relays.
            let (_, gateway_device) =
                device_auth::lookup(&*inner.store, path, &DeviceRef::Id(gateway_id)).await?;
            let gateway_address = DeviceAddress {
                registry: path.clone(),
                num_id: gateway_device.num_id,
            };
            let method = gateway_method(&gateway_device, &gateway_address)?;
            behind_gateway(bridge, &gateway_device, &device, &address, method).await?;
            Ok(Caller {
                registry,
                device,
                address,
                gateway_id: Some(gateway_device.id),
            })
        }
    }
}

/// What the gateway's auth method demands; refuses a device that is not a gateway.
fn gateway_method(
    gateway: &Device,
    address: &DeviceAddress,
) -> Result<gateway_rules::Demands, Denied> {
    if gateway.gateway_config.gateway_type != GatewayType::Gateway {
        return Err(forbidden(
            Code::PermissionDenied,
            "not_a_gateway",
            format!(
                "'{}' is not a gateway (gatewayConfig.gatewayType must be GATEWAY)",
                gateway.id
            ),
        )
        .on(address));
    }
    gateway_rules::demands(gateway.gateway_config.gateway_auth_method)
        .map_err(|r| Denied::new(DeniedKind::Forbidden, r).on(address))
}

/// The device behind a gateway: not a gateway itself, not blocked, bound when the
/// auth method needs it.
async fn behind_gateway(
    bridge: &DeviceBridge,
    gateway: &Device,
    device: &Device,
    address: &DeviceAddress,
    demands: gateway_rules::Demands,
) -> Result<(), Denied> {
    if device.gateway_config.gateway_type == GatewayType::Gateway {
        return Err(forbidden(
            Code::FailedPrecondition,
            "attach_gateway",
            format!(
                "'{}' is a gateway; gateways cannot act for gateways",
                device.id
            ),
        )
        .on(address));
    }
    device_auth::check_not_blocked(device, address)?;
    if demands.association {
        let bound = bridge
            .inner
            .store
            .is_bound(&address.registry, gateway.num_id, device.num_id)
            .await
            .map_err(|e| device_auth::unavailable(&e))?;
        if !bound {
            return Err(forbidden(
                Code::PermissionDenied,
                "not_bound",
                format!(
                    "device '{}' is not bound to gateway '{}', and the gateway's auth method \
                     requires it; bind it with bindDeviceToGateway",
                    device.id, gateway.id
                ),
            )
            .on(address));
        }
    }
    Ok(())
}

fn forbidden(code: Code, label: &'static str, message: String) -> Denied {
    Denied::new(DeniedKind::Forbidden, Reason::new(code, label, message))
}

pub(super) fn bearer(header: Option<&str>) -> Result<&str, Denied> {
    let refuse = |label, message: &str| {
        Denied::new(
            DeniedKind::Malformed,
            Reason::new(Code::Unauthenticated, label, message),
        )
    };
    let header = header.ok_or_else(|| {
        refuse(
            "no_authorization",
            "the request has no authorization header; send 'authorization: Bearer <device JWT>'",
        )
    })?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            refuse(
                "authorization_not_bearer",
                "the authorization header must be 'Bearer <device JWT>'",
            )
        })?;
    if token.is_empty() {
        return Err(refuse(
            "no_authorization",
            "the bearer token is empty; send the device's JWT",
        ));
    }
    Ok(token)
}

/// The HTTP answer to a refusal.
fn api_error(denied: &Denied) -> ApiError {
    let code = match (denied.kind, denied.reason.code) {
        (_, Code::InvalidArgument) => Code::InvalidArgument,
        (DeniedKind::UnknownDevice, _) => Code::NotFound,
        (DeniedKind::Malformed | DeniedKind::BadToken, _) => Code::Unauthenticated,
        (DeniedKind::Unavailable, _) => Code::Unavailable,
        _ => Code::PermissionDenied,
    };
    ApiError::new(code, denied.reason.message.clone())
}

/// Records `reason` as the device's `lastErrorStatus` (best effort, off the request).
pub(super) fn record_error(bridge: &DeviceBridge, device: &DeviceAddress, reason: &Reason) {
    record(
        bridge,
        device,
        ActivityKind::Error(reason.status(Transport::Http)),
    );
}

/// Records activity on a device (best effort, off the request).
pub(super) fn record(bridge: &DeviceBridge, device: &DeviceAddress, kind: ActivityKind) {
    let activity = Activity {
        registry: device.registry.clone(),
        num_id: device.num_id,
        kind,
        at: tether_registry::model::Timestamp(bridge.inner.clock.unix_micros()),
    };
    let store = std::sync::Arc::clone(&bridge.inner.store);
    tokio::spawn(async move {
        if let Err(e) = store.record_activity(&[activity]).await {
            tracing::warn!(error = %e, "HTTP bridge activity not recorded");
        }
    });
}
