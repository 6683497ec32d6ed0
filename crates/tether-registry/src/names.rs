//! Resource names (`projects/P/locations/L/registries/R/devices/D`) and id rules.

use std::fmt;

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

fn expect_segment<'a>(
    parts: &mut impl Iterator<Item = &'a str>,
    keyword: &str,
    position: usize,
    name: &str,
) -> Result<&'a str, NameError> {
    match parts.next() {
        Some(k) if k == keyword => {}
        Some(k) => {
            return Err(NameError(format!(
                "in '{name}', expected '{keyword}' at segment {position}, found '{k}'"
            )));
        }
        None => {
            return Err(NameError(format!(
                "'{name}' ends early: expected '{keyword}/…' at segment {position}"
            )));
        }
    }
    match parts.next() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(NameError(format!(
            "in '{name}', the value after '{keyword}' is missing"
        ))),
    }
}

/// Parses `projects/P/locations/L`.
pub fn parse_location(name: &str) -> Result<LocationPath, NameError> {
    let mut parts = name.split('/');
    let project = expect_segment(&mut parts, "projects", 1, name)?;
    let location = expect_segment(&mut parts, "locations", 3, name)?;
    if let Some(extra) = parts.next() {
        return Err(NameError(format!(
            "'{name}' has extra segments after the location: '{extra}…'"
        )));
    }
    validate_project(project)?;
    Ok(LocationPath {
        project: project.into(),
        location: location.into(),
    })
}

/// Parses `projects/P/locations/L/registries/R`.
pub fn parse_registry(name: &str) -> Result<RegistryPath, NameError> {
    let (path, rest) = split_registry(name)?;
    if let Some(extra) = rest {
        return Err(NameError(format!(
            "'{name}' has extra segments after the registry: '{extra}'"
        )));
    }
    Ok(path)
}

/// Parses `projects/P/locations/L/registries/R/devices/D` (D an id or a numId).
pub fn parse_device(name: &str) -> Result<(RegistryPath, DeviceRef), NameError> {
    let (path, rest) = split_registry(name)?;
    let rest = rest.ok_or_else(|| NameError(format!("'{name}' names a registry, not a device")))?;
    let mut parts = rest.split('/');
    let device = expect_segment(&mut parts, "devices", 7, name)?;
    if let Some(extra) = parts.next() {
        return Err(NameError(format!(
            "'{name}' has extra segments after the device: '{extra}…'"
        )));
    }
    Ok((path, DeviceRef::parse(device)?))
}

fn split_registry(name: &str) -> Result<(RegistryPath, Option<&str>), NameError> {
    let mut parts = name.splitn(7, '/');
    let project = expect_segment(&mut parts, "projects", 1, name)?;
    let location = expect_segment(&mut parts, "locations", 3, name)?;
    let registry = expect_segment(&mut parts, "registries", 5, name)?;
    validate_project(project)?;
    validate_id("registry", registry)?;
    let path = RegistryPath {
        project: project.into(),
        location: location.into(),
        registry: registry.into(),
    };
    Ok((path, parts.next()))
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

/// Checks a registry id, device id or metadata key against IoT Core's rule:
/// `[a-zA-Z][-a-zA-Z0-9._+~%]+`, 3–255 characters, not starting with `goog`.
pub fn validate_id(what: &str, id: &str) -> Result<(), NameError> {
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'+' | b'~' | b'%');
    let rule = "[a-zA-Z][-a-zA-Z0-9._+~%]+, 3 to 255 characters, not starting with 'goog'";
    if id.len() < 3 || id.len() > 255 {
        return Err(NameError(format!(
            "{what} id '{id}' is {} characters long; allowed: {rule}",
            id.len()
        )));
    }
    if !id.as_bytes()[0].is_ascii_alphabetic() {
        return Err(NameError(format!(
            "{what} id '{id}' must start with a letter ({rule})"
        )));
    }
    if let Some(bad) = id.chars().find(|c| !c.is_ascii() || !allowed(*c as u8)) {
        return Err(NameError(format!(
            "{what} id '{id}' contains '{bad}', which is not allowed ({rule})"
        )));
    }
    if id.to_ascii_lowercase().starts_with("goog") {
        return Err(NameError(format!(
            "{what} id '{id}' must not start with 'goog'"
        )));
    }
    Ok(())
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
                .is_err_and(|e| e.0.contains("2 characters long"))
        );
        assert!(
            validate_id("device", "1dev").is_err_and(|e| e.0.contains("must start with a letter"))
        );
        assert!(validate_id("device", "dev 1").is_err_and(|e| e.0.contains("contains ' '")));
        assert!(validate_id("device", "google-1").is_err_and(|e| e.0.contains("goog")));
        assert!(
            parse_device("projects/acme/locations/us/registries/reg")
                .is_err_and(|e| e.0.contains("names a registry"))
        );
        assert!(validate_id("device", "dev-1.a_b+c~d%e").is_ok());
    }
}
