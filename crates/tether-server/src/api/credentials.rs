//! Cryptographic checks of credentials before anything is stored (tether-registry's
//! `credentials` module: keys parse, formats match, certificates are valid now and
//! signed by a registry CA), with the body's field path put in front of the message.

use tether_registry::credentials::{validate_device_credentials, validate_registry_credentials};
use tether_registry::model::{DeviceCredential, DeviceRegistry, RegistryCredential, Timestamp};

use super::error::{ApiError, ApiResult};

fn at(body: &str, message: String) -> ApiError {
    if message.starts_with("credentials") {
        ApiError::invalid(format!("{body}.{message}"))
    } else {
        ApiError::invalid(format!("{body}.credentials: {message}"))
    }
}

/// Checks device credentials against IoT Core's rules and the registry's CAs.
pub fn check_device_credentials(
    body: &str,
    credentials: &[DeviceCredential],
    registry: &DeviceRegistry,
    now: Timestamp,
) -> ApiResult<()> {
    validate_device_credentials(credentials, registry, now).map_err(|m| at(body, m))
}

/// Checks registry CA certificates and fills in their `x509Details`.
pub fn check_registry_credentials(
    body: &str,
    credentials: &mut Vec<RegistryCredential>,
    now: Timestamp,
) -> ApiResult<()> {
    *credentials = validate_registry_credentials(credentials, now).map_err(|m| at(body, m))?;
    Ok(())
}
