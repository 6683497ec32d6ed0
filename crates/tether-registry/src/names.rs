//! Resource names (`projects/P/locations/L/registries/R/devices/D`) as owned values.
//! The splitting and the id rule are IoT Core's, from `tether-iot` (the MQTT side uses
//! the same ones); this module adds the project rule, numIds and the REST messages.

use std::fmt;

use tether_iot::PathError;
use tether_iot::path::split;

/// The regions IoT Core offered; other locations are accepted too (self-hosted), but
/// these are what migrated scripts use.
pub const KNOWN_REGIONS: [&str; 3] = ["us-central1", "europe-west1", "asia-east1"];

/// Why a name or id is invalid. The message names the part and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

/// `projects/{project}/locations/{location}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocationPath {
    /// Project id.
    pub project: String,
    /// Location (cloud region).
    pub location: String,
}

/// `projects/{project}/locations/{location}/registries/{registry}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RegistryPath {
    /// Project id.
    pub project: String,
    /// Location (cloud region).
    pub location: String,
    /// Registry id.
    pub registry: String,
}

/// A device named by its id or by its numeric id (IoT Core accepted both in names).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeviceRef {
    /// The user-chosen id.
    Id(String),
    /// The server-assigned numeric id.
    NumId(u64),
}

impl DeviceRef {
    /// Reads a name segment: all digits is a numId (ids must start with a letter).
    pub fn parse(segment: &str) -> Result<Self, NameError> {
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            return segment
                .parse()
                .map(DeviceRef::NumId)
                .map_err(|_| NameError(format!("device numId '{segment}' is out of range")));
        }
        validate_id("device", segment)?;
        Ok(DeviceRef::Id(segment.to_string()))
    }
}

impl fmt::Display for DeviceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceRef::Id(id) => f.write_str(id),
            DeviceRef::NumId(n) => write!(f, "{n}"),
        }
    }
}

impl fmt::Display for LocationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "projects/{}/locations/{}", self.project, self.location)
    }
}

impl fmt::Display for RegistryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "projects/{}/locations/{}/registries/{}",
            self.project, self.location, self.registry
        )
    }
}

impl RegistryPath {
    /// The parent location.
    pub fn location_path(&self) -> LocationPath {
        LocationPath {
            project: self.project.clone(),
            location: self.location.clone(),
        }
    }

    /// The full name of a device in this registry.
    pub fn device_name(&self, device: &str) -> String {
        format!("{self}/devices/{device}")
    }
}

/// A resource-name error in the REST API's words: the name, then what is wrong with it.
fn name_error(name: &str, error: PathError) -> NameError {
    NameError(format!("in '{name}', {error}"))
}

/// Parses `projects/P/locations/L`.
pub fn parse_location(name: &str) -> Result<LocationPath, NameError> {
    let [project, location] = split(name).map_err(|e| name_error(name, e))?;
    validate_project(project)?;
    Ok(LocationPath {
        project: project.into(),
        location: location.into(),
    })
}

/// Parses `projects/P/locations/L/registries/R`.
pub fn parse_registry(name: &str) -> Result<RegistryPath, NameError> {
    let [project, location, registry] = split(name).map_err(|e| name_error(name, e))?;
    validate_project(project)?;
    Ok(RegistryPath {
        project: project.into(),
        location: location.into(),
        registry: registry.into(),
    })
}

/// Parses `projects/P/locations/L/registries/R/devices/D` (D an id or a numId).
pub fn parse_device(name: &str) -> Result<(RegistryPath, DeviceRef), NameError> {
    let [project, location, registry, device] = split(name).map_err(|e| match e {
        // The commonest slip deserves a plainer message.
        PathError::Missing { segment: 7, .. } => {
            NameError(format!("'{name}' names a registry, not a device"))
        }
        e => name_error(name, e),
    })?;
    validate_project(project)?;
    let path = RegistryPath {
        project: project.into(),
        location: location.into(),
        registry: registry.into(),
    };
    Ok((path, DeviceRef::parse(device)?))
}

fn validate_project(project: &str) -> Result<(), NameError> {
    let ok = !project.is_empty()
        && project.len() <= 63
        && project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(NameError(format!(
            "project id '{project}' is invalid: 1-63 letters, digits, '-', '.', ':' or '_'"
        )))
    }
}

/// Checks a registry or device id against IoT Core's rule ([`tether_iot::validate_id`]:
/// `[a-zA-Z][-a-zA-Z0-9._+~%]+`, 3–255 characters, not starting with `goog` in any
/// case). The message ends with the rule's own words, as the MQTT side's does.
pub fn validate_id(what: &str, id: &str) -> Result<(), NameError> {
    tether_iot::validate_id(id).map_err(|e| NameError(format!("{what} id '{id}' is invalid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_refs() {
        let (r, d) =
            parse_device("projects/acme/locations/us-central1/registries/fleet/devices/dev-1")
                .expect("valid");
        assert_eq!(
            r.to_string(),
            "projects/acme/locations/us-central1/registries/fleet"
        );
        assert_eq!(d, DeviceRef::Id("dev-1".into()));
        let (_, d) = parse_device("projects/acme/locations/l/registries/fleet/devices/2718281828")
            .expect("valid");
        assert_eq!(d, DeviceRef::NumId(2_718_281_828));
        assert_eq!(
            parse_location("projects/acme/locations/europe-west1").map(|l| l.location),
            Ok("europe-west1".into())
        );
    }

    #[test]
    fn errors_name_the_segment_and_rule() {
        let e = parse_registry("projects/acme/location/us/registries/r1")
            .err()
            .map(|e| e.0);
        assert_eq!(
            e.as_deref(),
            Some(
                "in 'projects/acme/location/us/registries/r1', expected 'locations' at segment 3, found 'location'"
            )
        );
        assert!(
            parse_registry("projects/acme/locations/us/registries/ab")
                .is_err_and(|e| e.0.contains("shorter than 3 characters (it has 2)"))
        );
        assert!(
            validate_id("device", "1dev").is_err_and(|e| e.0.contains("must start with a letter"))
        );
        assert!(validate_id("device", "dev 1").is_err_and(|e| e.0.contains("found ' '")));
        assert!(validate_id("device", "google-1").is_err_and(|e| e.0.contains("goog")));
        assert!(
            parse_device("projects/acme/locations/us/registries/reg")
                .is_err_and(|e| e.0.contains("names a registry"))
        );
        assert!(
            parse_device("projects/acme/locations/us/registries/reg/devices/1dev")
                .is_err_and(|e| e.0.contains("device id '1dev' is invalid"))
        );
        assert!(
            parse_location("projects/a b/locations/us").is_err_and(|e| e.0.contains("project id"))
        );
        assert!(validate_id("device", "dev-1.a_b+c~d%e").is_ok());
    }

    /// One `goog` rule, case-insensitive, refused in the same words over REST (names and
    /// bodies) and over MQTT (client ids and topics).
    #[test]
    fn goog_is_refused_alike_by_the_registry_and_mqtt() {
        let rule = tether_iot::IdError::GoogPrefix.to_string();
        for id in ["Goog-x", "GOOG1", "goog"] {
            let rest = validate_id("device", id).err().map(|e| e.0);
            assert_eq!(rest, Some(format!("device id '{id}' is invalid: {rule}")));
            let name = format!("projects/p/locations/l/registries/{id}");
            let rest_name = parse_registry(&name).err().map(|e| e.0);
            assert_eq!(
                rest_name,
                Some(format!(
                    "in '{name}', registry id at segment 6 is invalid: {rule}"
                ))
            );
            let client_id = format!("projects/p/locations/l/registries/reg/devices/{id}");
            let mqtt = tether_iot::ClientId::parse(&client_id)
                .err()
                .map(|e| e.to_string());
            assert_eq!(
                mqtt,
                Some(format!(
                    "client id: device id at segment 8 is invalid: {rule}"
                ))
            );
            let topic = format!("/devices/{id}/events");
            assert_eq!(
                tether_iot::IotTopic::parse(&topic),
                tether_iot::IotTopic::Other {
                    reason: "device id must not start with 'goog' (in any case)"
                }
            );
            assert!(rule.ends_with("must not start with 'goog' (in any case)"));
        }
    }
}
