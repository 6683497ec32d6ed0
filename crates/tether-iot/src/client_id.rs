//! The IoT Core MQTT client id:
//! `projects/{project}/locations/{region}/registries/{registry}/devices/{device}`.
//!
//! Segments are numbered from 1, so `projects` is segment 1 and the device id is
//! segment 8; errors name the segment so a firmware engineer can find the typo.

use alloc::string::{String, ToString};
use core::fmt;

use crate::ids::{IdError, validate_id};

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

/// The fixed words at the odd segments.
const KEYWORDS: [&str; 4] = ["projects", "locations", "registries", "devices"];
/// What the value after each keyword is called in messages.
const VALUES: [&str; 4] = ["project id", "location", "registry id", "device id"];

impl<'a> ClientId<'a> {
    /// Parses a client id.
    ///
    /// # Errors
    /// [`ClientIdError`] naming the first bad segment.
    pub fn parse(client_id: &'a str) -> Result<Self, ClientIdError> {
        if client_id.is_empty() {
            return Err(ClientIdError::Empty);
        }
        if client_id.starts_with('/') {
            return Err(ClientIdError::LeadingSlash);
        }
        let mut segments = client_id.split('/');
        let mut values = [""; 4];
        for (i, (keyword, value_name)) in KEYWORDS.iter().zip(VALUES).enumerate() {
            let keyword_segment = 2 * i + 1;
            match segments.next() {
                Some(found) if found == *keyword => {}
                Some(found) => {
                    return Err(ClientIdError::WrongKeyword {
                        segment: keyword_segment,
                        expected: keyword,
                        found: found.to_string(),
                    });
                }
                None => {
                    return Err(ClientIdError::Missing {
                        segment: keyword_segment,
                        expected: keyword,
                    });
                }
            }
            let value = segments.next().ok_or(ClientIdError::Missing {
                segment: keyword_segment + 1,
                expected: value_name,
            })?;
            if value.is_empty() {
                return Err(ClientIdError::EmptyValue {
                    segment: keyword_segment + 1,
                    what: value_name,
                });
            }
            if i >= 2 {
                validate_id(value).map_err(|error| ClientIdError::InvalidId {
                    segment: keyword_segment + 1,
                    what: value_name,
                    error,
                })?;
            }
            if let Some(slot) = values.get_mut(i) {
                *slot = value;
            }
        }
        let extra = segments.count();
        if extra > 0 {
            return Err(ClientIdError::TrailingSegments { count: extra });
        }
        let [project, location, registry, device] = values;
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
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdError {
    /// The client id is empty.
    Empty,
    /// The client id starts with `/`.
    LeadingSlash,
    /// A fixed word is wrong.
    WrongKeyword {
        /// 1-based segment number.
        segment: usize,
        /// The word expected there.
        expected: &'static str,
        /// What was there instead.
        found: String,
    },
    /// The client id ends before this segment.
    Missing {
        /// 1-based segment number.
        segment: usize,
        /// What was expected there.
        expected: &'static str,
    },
    /// A value segment is empty (`//`).
    EmptyValue {
        /// 1-based segment number.
        segment: usize,
        /// Which value.
        what: &'static str,
    },
    /// The registry or device id breaks the id rules.
    InvalidId {
        /// 1-based segment number.
        segment: usize,
        /// Which id.
        what: &'static str,
        /// The rule it breaks.
        error: IdError,
    },
    /// Segments follow the device id.
    TrailingSegments {
        /// How many.
        count: usize,
    },
}

const EXPECTED_FORM: &str =
    "projects/{project}/locations/{region}/registries/{registry}/devices/{device}";

impl fmt::Display for ClientIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("client id: ")?;
        match self {
            Self::Empty => write!(f, "empty; expected {EXPECTED_FORM}"),
            Self::LeadingSlash => write!(f, "must not start with '/'; expected {EXPECTED_FORM}"),
            Self::WrongKeyword {
                segment,
                expected,
                found,
            } => write!(
                f,
                "expected '{expected}' at segment {segment}, found '{found}'"
            ),
            Self::Missing { segment, expected } => write!(
                f,
                "ends before segment {segment}, which should be the {expected}; \
                 expected {EXPECTED_FORM}"
            ),
            Self::EmptyValue { segment, what } => write!(f, "{what} at segment {segment} is empty"),
            Self::InvalidId {
                segment,
                what,
                error,
            } => write!(f, "{what} at segment {segment} is invalid: {error}"),
            Self::TrailingSegments { count } => write!(
                f,
                "{count} unexpected segment(s) after the device id; expected {EXPECTED_FORM}"
            ),
        }
    }
}

impl core::error::Error for ClientIdError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

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
            Err(ClientIdError::TrailingSegments { count: 1 })
        );
    }
}
