//! IoT Core resource ids (registry and device): `[a-zA-Z][-a-zA-Z0-9._+~%]+`,
//! 3–255 characters, not starting with `goog` in any letter case (spec §0).
//!
//! This is the one id rule: MQTT client ids, device topics, REST resource names and
//! the REST request bodies all check ids here, so they refuse the same ids with the
//! same words.

use core::fmt;

/// Why a string is not a valid registry or device id.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdError {
    /// Fewer than 3 characters.
    TooShort {
        /// Its length.
        len: usize,
    },
    /// More than 255 characters.
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The first character is not an ASCII letter.
    FirstNotLetter,
    /// A character outside `[-a-zA-Z0-9._+~%]`.
    InvalidChar {
        /// The character.
        ch: char,
    },
    /// Starts with the reserved `goog`, in any letter case (`Goog-x`, `GOOG1`).
    GoogPrefix,
}

impl IdError {
    /// A fixed description of the rule that failed.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "id is shorter than 3 characters",
            Self::TooLong { .. } => "id is longer than 255 characters",
            Self::FirstNotLetter => "id must start with a letter",
            Self::InvalidChar { .. } => "id may contain only letters, digits and - . _ + ~ %",
            Self::GoogPrefix => "id must not start with 'goog' (in any case)",
        }
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } | Self::TooLong { len } => {
                write!(f, "{} (it has {len})", self.reason())
            }
            Self::InvalidChar { ch } => write!(f, "{}; found {ch:?}", self.reason()),
            _ => f.write_str(self.reason()),
        }
    }
}

impl core::error::Error for IdError {}

/// Checks a registry or device id.
///
/// # Errors
/// [`IdError`] naming the rule.
pub fn validate_id(id: &str) -> Result<(), IdError> {
    // All valid characters are ASCII, so bytes and characters coincide once checked;
    // the length check counts characters so that a non-ASCII id reports its character.
    if let Some(ch) = id
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+' | '~' | '%')))
    {
        return Err(IdError::InvalidChar { ch });
    }
    if id.len() < 3 {
        return Err(IdError::TooShort { len: id.len() });
    }
    if id.len() > 255 {
        return Err(IdError::TooLong { len: id.len() });
    }
    if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(IdError::FirstNotLetter);
    }
    // Google reserves the prefix whatever its case.
    if id
        .as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"goog"))
    {
        return Err(IdError::GoogPrefix);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn ids() {
        for ok in ["dev", "my-device_1", "a.b+c~d%e", "Device-42"] {
            assert_eq!(validate_id(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_id(&"a".repeat(255)), Ok(()));
        assert_eq!(validate_id("ab"), Err(IdError::TooShort { len: 2 }));
        assert_eq!(
            validate_id(&"a".repeat(256)),
            Err(IdError::TooLong { len: 256 })
        );
        assert_eq!(validate_id("1abc"), Err(IdError::FirstNotLetter));
        assert_eq!(validate_id("-abc"), Err(IdError::FirstNotLetter));
        assert_eq!(validate_id("ab/c"), Err(IdError::InvalidChar { ch: '/' }));
        assert_eq!(validate_id("abé"), Err(IdError::InvalidChar { ch: 'é' }));
        assert_eq!(validate_id("google-thing"), Err(IdError::GoogPrefix));
    }

    #[test]
    fn goog_is_reserved_in_any_case() {
        for id in ["Goog-x", "GOOG1", "goog", "gOoG.device"] {
            assert_eq!(validate_id(id), Err(IdError::GoogPrefix), "{id}");
        }
        assert_eq!(
            IdError::GoogPrefix.to_string(),
            "id must not start with 'goog' (in any case)"
        );
        for ok in ["gog-1", "go0g", "agoog", "Gooseberry"] {
            assert_eq!(validate_id(ok), Ok(()), "{ok}");
        }
    }
}
