//! The IoT Core MQTT client id: the device's resource name,
//! `projects/{project}/locations/{location}/registries/{registry}/devices/{device}`.
//!
//! Split by the one resource-name parser ([`crate::path`]), so its errors name the
//! 1-based segment (`projects` is 1, the device id is 8) and read like the REST API's.

use core::fmt;

use crate::ids::validate_id;
use crate::path::{self, PathError};

/// A parsed client id. Borrows from the CONNECT's client id string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId<'a> {
    /// The project id (or number). Only checked to be non-empty: the server compares
    /// it with its configuration and the JWT `aud`.
    pub project: &'a str,
    /// The cloud region, e.g. `us-central1`. Only checked to be non-empty.
    pub location: &'a str,
    /// The registry id (checked against the id rules).
    pub registry: &'a str,
    /// The device id (checked against the id rules). Case-sensitive.
    pub device: &'a str,
}

impl<'a> ClientId<'a> {
    /// Parses a client id: a device's resource name whose device segment is an id
    /// (never the numeric id REST names allow).
    ///
    /// # Errors
    /// [`ClientIdError`] naming the first bad segment.
    pub fn parse(client_id: &'a str) -> Result<Self, ClientIdError> {
        let [project, location, registry, device] = path::split(client_id)?;
        validate_id(device).map_err(|error| PathError::InvalidId {
            segment: 8,
            what: "device id",
            error,
        })?;
        Ok(Self {
            project,
            location,
            registry,
            device,
        })
    }
}

impl fmt::Display for ClientId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "projects/{}/locations/{}/registries/{}/devices/{}",
            self.project, self.location, self.registry, self.device
        )
    }
}

/// Why a client id is not an IoT Core device path. The server answers CONNACK 0x02
/// (identifier rejected) and records the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIdError(pub PathError);

impl From<PathError> for ClientIdError {
    fn from(error: PathError) -> Self {
        Self(error)
    }
}

impl fmt::Display for ClientIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client id: {}", self.0)
    }
}

impl core::error::Error for ClientIdError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::PathLevel;
    use alloc::string::{String, ToString};

    #[test]
    fn parses_a_device_path() {
        let id = ClientId::parse(
            "projects/my-proj/locations/us-central1/registries/reg-1/devices/dev-1",
        )
        .expect("valid");
        assert_eq!(
            id,
            ClientId {
                project: "my-proj",
                location: "us-central1",
                registry: "reg-1",
                device: "dev-1"
            }
        );
        assert_eq!(
            id.to_string(),
            "projects/my-proj/locations/us-central1/registries/reg-1/devices/dev-1"
        );
    }

    fn err(s: &str) -> String {
        ClientId::parse(s).expect_err(s).to_string()
    }

    #[test]
    fn names_the_bad_segment() {
        assert_eq!(
            err("projects/p/location/us-central1/registries/r1x/devices/d1x"),
            "client id: expected 'locations' at segment 3, found 'location'"
        );
        assert_eq!(
            err("project/p/locations/l/registries/r1x/devices/d1x"),
            "client id: expected 'projects' at segment 1, found 'project'"
        );
        assert_eq!(
            err("projects/p/locations/l/registries/r1x/device/d1x"),
            "client id: expected 'devices' at segment 7, found 'device'"
        );
        assert!(
            err("projects/p/locations/l/registries/r1x")
                .starts_with("client id: ends before segment 7, which should be the devices;")
        );
        assert!(
            err("projects/p/locations/l/registries/r1x/devices")
                .starts_with("client id: ends before segment 8, which should be the device id;")
        );
        assert_eq!(
            err("projects//locations/l/registries/r1x/devices/d1x"),
            "client id: project id at segment 2 is empty"
        );
        assert_eq!(
            err("projects/p/locations/l/registries/r1x/devices/1dev"),
            "client id: device id at segment 8 is invalid: id must start with a letter"
        );
        assert_eq!(
            err("projects/p/locations/l/registries/r!/devices/dev"),
            "client id: registry id at segment 6 is invalid: \
             id may contain only letters, digits and - . _ + ~ %; found '!'"
        );
        assert!(
            err("projects/p/locations/l/registries/r1x/devices/d1x/extra")
                .starts_with("client id: 1 unexpected segment(s) after the device id")
        );
        assert!(
            err("/projects/p/locations/l/registries/r1x/devices/d1x")
                .starts_with("client id: must not start with '/'")
        );
        assert!(err("").starts_with("client id: empty"));
        assert_eq!(
            ClientId::parse("projects/p/locations/l/registries/r1x/devices/d1x/"),
            Err(ClientIdError(PathError::TrailingSegments {
                count: 1,
                level: PathLevel::Device
            }))
        );
        assert_eq!(
            err("projects/p/locations/l/registries/r1x/devices/12345"),
            "client id: device id at segment 8 is invalid: id must start with a letter"
        );
    }
}
