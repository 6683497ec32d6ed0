//! IoT Core resource names, `projects/P/locations/L[/registries/R[/devices/D]]`, split
//! into their values by one parser: MQTT client ids and REST resource names both use it.
//!
//! Segments are numbered from 1 (`projects` is segment 1, the device is segment 8);
//! errors name the segment so a firmware engineer or an API caller can find the typo.

use core::fmt;

use crate::ids::{IdError, validate_id};

/// The fixed word at each odd segment, and what the value after it is called.
const PAIRS: [(&str, &str); 4] = [
    ("projects", "project id"),
    ("locations", "location"),
    ("registries", "registry id"),
    ("devices", "device id"),
];

/// How deep a resource name goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathLevel {
    /// `projects/{project}/locations/{location}`.
    Location,
    /// `…/registries/{registry}`.
    Registry,
    /// `…/devices/{device}`.
    Device,
}

impl PathLevel {
    /// The level of a name with `pairs` keyword/value pairs (2 to 4).
    const fn of_pairs(pairs: usize) -> Self {
        match pairs {
            ..=2 => Self::Location,
            3 => Self::Registry,
            _ => Self::Device,
        }
    }

    /// The form a name of this level takes, for messages.
    #[must_use]
    pub const fn form(self) -> &'static str {
        match self {
            Self::Location => "projects/{project}/locations/{location}",
            Self::Registry => "projects/{project}/locations/{location}/registries/{registry}",
            Self::Device => {
                "projects/{project}/locations/{location}/registries/{registry}/devices/{device}"
            }
        }
    }

    /// What the last value of a name of this level is called.
    const fn last_value(self) -> &'static str {
        match self {
            Self::Location => "location",
            Self::Registry => "registry id",
            Self::Device => "device id",
        }
    }
}

/// Splits a resource name into its `N` values: 2 for a location, 3 for a registry, 4 for
/// a device. The array pattern at the call site usually fixes `N`:
/// `let [project, location, registry] = split(name)?;`.
///
/// Checks the keywords, that no value is empty, that nothing follows, and the registry
/// id (the id rule). It leaves the project, the location and the device to the caller:
/// the server compares project and location with what it knows, and the device
/// segment is an id in MQTT client ids but may be a numeric id in REST names.
///
/// # Errors
/// [`PathError`] naming the first bad segment.
pub fn split<const N: usize>(name: &str) -> Result<[&str; N], PathError> {
    const {
        assert!(
            N >= 2 && N <= 4,
            "a resource name has 2 to 4 keyword/value pairs"
        )
    };
    let level = PathLevel::of_pairs(N);
    if name.is_empty() {
        return Err(PathError::Empty { level });
    }
    if name.starts_with('/') {
        return Err(PathError::LeadingSlash { level });
    }
    let mut segments = name.split('/');
    let mut values = [""; N];
    for (i, (slot, (keyword, what))) in values.iter_mut().zip(PAIRS).enumerate() {
        let keyword_segment = 2 * i + 1;
        match segments.next() {
            Some(found) if found == keyword => {}
            Some(found) => {
                return Err(PathError::WrongKeyword {
                    segment: keyword_segment,
                    expected: keyword,
                    found: Excerpt::new(found),
                });
            }
            None => {
                return Err(PathError::Missing {
                    segment: keyword_segment,
                    expected: keyword,
                    level,
                });
            }
        }
        let segment = keyword_segment + 1;
        let value = segments.next().ok_or(PathError::Missing {
            segment,
            expected: what,
            level,
        })?;
        if value.is_empty() {
            return Err(PathError::EmptyValue { segment, what });
        }
        if keyword == "registries" {
            validate_id(value).map_err(|error| PathError::InvalidId {
                segment,
                what,
                error,
            })?;
        }
        *slot = value;
    }
    match segments.count() {
        0 => Ok(values),
        count => Err(PathError::TrailingSegments { count, level }),
    }
}

/// The start of an offending segment, copied so that errors need neither a lifetime
/// nor an allocator: up to [`Excerpt::MAX`] bytes, cut at a character boundary.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Excerpt {
    bytes: [u8; Excerpt::MAX],
    len: u8,
    cut: bool,
}

impl Excerpt {
    /// The most bytes kept.
    pub const MAX: usize = 40;

    /// Copies the start of `text`.
    #[must_use]
    pub fn new(text: &str) -> Self {
        let mut len = text.len().min(Self::MAX);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; Self::MAX];
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        Self {
            bytes,
            // At most MAX (40), so it fits.
            len: len as u8,
            cut: len < text.len(),
        }
    }

    /// The text kept.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Cut at a character boundary of a `str`, so always UTF-8.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Whether the segment was longer than what is kept.
    #[must_use]
    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())?;
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl PartialEq<&str> for Excerpt {
    fn eq(&self, other: &&str) -> bool {
        !self.cut && self.as_str() == *other
    }
}

/// Why a string is not the resource name expected.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The name is empty.
    Empty {
        /// The level expected.
        level: PathLevel,
    },
    /// The name starts with `/`.
    LeadingSlash {
        /// The level expected.
        level: PathLevel,
    },
    /// A fixed word is wrong.
    WrongKeyword {
        /// 1-based segment number.
        segment: usize,
        /// The word expected there.
        expected: &'static str,
        /// What was there instead.
        found: Excerpt,
    },
    /// The name ends before this segment.
    Missing {
        /// 1-based segment number.
        segment: usize,
        /// What was expected there.
        expected: &'static str,
        /// The level expected.
        level: PathLevel,
    },
    /// A value segment is empty (`//`).
    EmptyValue {
        /// 1-based segment number.
        segment: usize,
        /// Which value.
        what: &'static str,
    },
    /// An id breaks the id rule.
    InvalidId {
        /// 1-based segment number.
        segment: usize,
        /// Which id.
        what: &'static str,
        /// The rule it breaks.
        error: IdError,
    },
    /// Segments follow the last value.
    TrailingSegments {
        /// How many.
        count: usize,
        /// The level expected.
        level: PathLevel,
    },
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty { level } => write!(f, "empty; expected {}", level.form()),
            Self::LeadingSlash { level } => {
                write!(f, "must not start with '/'; expected {}", level.form())
            }
            Self::WrongKeyword {
                segment,
                expected,
                found,
            } => write!(
                f,
                "expected '{expected}' at segment {segment}, found '{found}'"
            ),
            Self::Missing {
                segment,
                expected,
                level,
            } => write!(
                f,
                "ends before segment {segment}, which should be the {expected}; expected {}",
                level.form()
            ),
            Self::EmptyValue { segment, what } => write!(f, "{what} at segment {segment} is empty"),
            Self::InvalidId {
                segment,
                what,
                error,
            } => write!(f, "{what} at segment {segment} is invalid: {error}"),
            Self::TrailingSegments { count, level } => write!(
                f,
                "{count} unexpected segment(s) after the {}; expected {}",
                level.last_value(),
                level.form()
            ),
        }
    }
}

impl core::error::Error for PathError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};

    fn err<const N: usize>(name: &str) -> String {
        split::<N>(name).expect_err(name).to_string()
    }

    #[test]
    fn splits_each_level() {
        assert_eq!(
            split("projects/p/locations/us-central1"),
            Ok(["p", "us-central1"])
        );
        assert_eq!(
            split("projects/p/locations/l/registries/reg"),
            Ok(["p", "l", "reg"])
        );
        assert_eq!(
            split("projects/p/locations/l/registries/reg/devices/12345"),
            Ok(["p", "l", "reg", "12345"])
        );
    }

    #[test]
    fn errors_name_the_segment_and_the_level() {
        assert_eq!(
            err::<3>("projects/acme/location/us/registries/r1x"),
            "expected 'locations' at segment 3, found 'location'"
        );
        assert_eq!(
            err::<4>("projects/p/locations/l/registries/reg"),
            "ends before segment 7, which should be the devices; expected \
             projects/{project}/locations/{location}/registries/{registry}/devices/{device}"
        );
        assert_eq!(
            err::<2>("projects/p/locations/l/registries"),
            "1 unexpected segment(s) after the location; expected \
             projects/{project}/locations/{location}"
        );
        assert_eq!(
            err::<3>("projects/p/locations/l/registries/ab"),
            "registry id at segment 6 is invalid: id is shorter than 3 characters (it has 2)"
        );
        assert_eq!(
            err::<2>("projects/p/locations/"),
            "location at segment 4 is empty"
        );
        assert!(err::<3>("").starts_with("empty; expected projects/"));
        assert!(err::<3>("/projects/p").starts_with("must not start with '/'"));
        let long = "x".repeat(50);
        assert_eq!(
            err::<2>(&long),
            alloc::format!("expected 'projects' at segment 1, found '{}…'", &long[..40])
        );
        let Err(PathError::WrongKeyword { found, .. }) = split::<2>("é".repeat(30).as_str())
        else {
            panic!("a wrong keyword");
        };
        assert_eq!((found.as_str().len(), found.is_cut()), (40, true));
        assert_eq!(
            split::<4>("projects/p/locations/l/registries/r1x/devices/d1x/"),
            Err(PathError::TrailingSegments {
                count: 1,
                level: PathLevel::Device
            })
        );
    }
}
