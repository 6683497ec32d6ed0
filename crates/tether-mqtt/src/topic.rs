//! Topic names and topic filters (§4.7), validated once at the edge.
//!
//! A [`TopicName`] is what a PUBLISH carries: no wildcards. A [`TopicFilter`] is what
//! SUBSCRIBE and UNSUBSCRIBE carry: `+` matches one level and must fill it, `#`
//! matches any number of levels and must be the whole last level. Once a string is
//! one of these types the rest of the code never re-checks it.

use alloc::string::String;
use core::fmt;

use crate::error::TopicError;

/// What topic names and filters share: a string checked once by `$ty::check`, the
/// accessors and the conversions. `$what` names the type in the docs.
macro_rules! checked_topic {
    ($ty:ident, $what:literal) => {
        impl $ty {
            #[doc = concat!("Validates `value` as a ", $what, ".")]
            ///
            /// # Errors
            /// [`TopicError`] naming the broken rule.
            pub fn new(value: impl Into<String>) -> Result<Self, TopicError> {
                let value = value.into();
                Self::check(&value)?;
                Ok(Self(value))
            }

            #[doc = concat!("The ", $what, " as a string.")]
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            #[doc = concat!("The ", $what, "'s levels, split on `/`.")]
            pub fn levels(&self) -> core::str::Split<'_, char> {
                self.0.split('/')
            }

            /// Gives the string back.
            #[must_use]
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = TopicError;
            fn try_from(value: &str) -> Result<Self, TopicError> {
                Self::new(value)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = TopicError;
            fn try_from(value: String) -> Result<Self, TopicError> {
                Self::new(value)
            }
        }
    };
}

/// The longest topic in bytes ([MQTT-4.7.3-3]).
pub const MAX_TOPIC_LEN: usize = 65_535;

fn check_common(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: topic.len() });
    }
    if topic.contains('\0') {
        return Err(TopicError::Nul);
    }
    Ok(())
}

/// A topic name: non-empty, at most 65,535 bytes, no U+0000, no `+` or `#`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName(String);

checked_topic!(TopicName, "topic name");

impl TopicName {
    /// Checks `topic` without taking it.
    ///
    /// # Errors
    /// [`TopicError`] naming the broken rule.
    pub fn check(topic: &str) -> Result<(), TopicError> {
        check_common(topic)?;
        if topic.contains(['+', '#']) {
            return Err(TopicError::WildcardInName);
        }
        Ok(())
    }
}

/// A topic filter: a topic name in which `+` may fill a level and `#` may fill the
/// last level ([MQTT-4.7.1-2], [MQTT-4.7.1-3]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicFilter(String);

checked_topic!(TopicFilter, "topic filter");

impl TopicFilter {
    /// Checks `filter` without taking it.
    ///
    /// # Errors
    /// [`TopicError`] naming the broken rule.
    pub fn check(filter: &str) -> Result<(), TopicError> {
        check_common(filter)?;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            let is_last = levels.peek().is_none();
            if level.contains('#') && (level != "#" || !is_last) {
                return Err(TopicError::MultiLevelWildcardMisplaced);
            }
            if level.contains('+') && level != "+" {
                return Err(TopicError::SingleLevelWildcardMisplaced);
            }
        }
        Ok(())
    }

    /// Whether the filter contains `+` or `#`.
    #[must_use]
    pub fn has_wildcards(&self) -> bool {
        self.0.contains(['+', '#'])
    }

    /// Whether `topic` matches this filter (§4.7.1, §4.7.2): `+` matches exactly one
    /// level, `#` matches the parent level and any number of levels below it, and a
    /// wildcard in the first level never matches a topic starting with `$`
    /// ([MQTT-4.7.2-1]).
    #[must_use]
    pub fn matches(&self, topic: &TopicName) -> bool {
        if topic.as_str().starts_with('$') && self.0.starts_with(['+', '#']) {
            return false;
        }
        let mut filter_levels = self.levels();
        let mut topic_levels = topic.levels();
        loop {
            match (filter_levels.next(), topic_levels.next()) {
                (Some("#"), _) => return true,
                (Some(f), Some(t)) if f == "+" || f == t => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

impl From<TopicName> for TopicFilter {
    /// Every topic name is a filter that matches only itself.
    fn from(name: TopicName) -> Self {
        Self(name.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn names() {
        for ok in ["/devices/d1/events", "/"] {
            assert_eq!(TopicName::new(ok).as_ref().map(TopicName::as_str), Ok(ok));
        }
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(TopicName::new("a/+/b"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a/#"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a\0b"), Err(TopicError::Nul));
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(
            TopicName::new(long),
            Err(TopicError::TooLong {
                len: MAX_TOPIC_LEN + 1
            })
        );
        let longest = "a".repeat(MAX_TOPIC_LEN);
        assert_eq!(
            TopicName::new(longest.as_str()).map(TopicName::into_string),
            Ok(longest)
        );
    }

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "+/+",
            "/+",
            "a/#",
            "a/+/b/#",
            "/devices/d1/commands/#",
            "a//b",
        ] {
            assert_eq!(
                TopicFilter::new(ok).as_ref().map(TopicFilter::as_str),
                Ok(ok)
            );
        }
        for (bad, err) in [
            ("a/#/b", TopicError::MultiLevelWildcardMisplaced),
            ("a#", TopicError::MultiLevelWildcardMisplaced),
            ("a/b#", TopicError::MultiLevelWildcardMisplaced),
            ("##", TopicError::MultiLevelWildcardMisplaced),
            ("a+", TopicError::SingleLevelWildcardMisplaced),
            ("a/+b/c", TopicError::SingleLevelWildcardMisplaced),
            ("", TopicError::Empty),
        ] {
            assert_eq!(TopicFilter::new(bad), Err(err), "{bad}");
        }
        assert_eq!(
            TopicFilter::new("a+").expect_err("misplaced +").to_string(),
            "[MQTT-4.7.1-3] '+' must occupy a whole level of a topic filter"
        );
    }

    fn m(filter: &str, topic: &str) -> bool {
        TopicFilter::new(filter)
            .expect("filter")
            .matches(&TopicName::new(topic).expect("topic"))
    }

    #[test]
    fn matching() {
        assert!(m("/devices/d1/commands/#", "/devices/d1/commands"));
        assert!(m("/devices/d1/commands/#", "/devices/d1/commands/a/b"));
        assert!(!m("/devices/d1/commands/#", "/devices/d2/commands"));
        assert!(m("sport/+/player1", "sport/tennis/player1"));
        assert!(!m("sport/+", "sport/tennis/player1"));
        assert!(m("sport/+", "sport/"));
        assert!(m("+/+", "/finance"));
        assert!(m("/+", "/finance"));
        assert!(!m("+", "/finance"));
        assert!(m("#", "a/b/c"));
        assert!(!m("#", "$SYS/x"));
        assert!(!m("+/x", "$SYS/x"));
        assert!(m("$SYS/#", "$SYS/x"));
        assert!(m("a/b", "a/b"));
        assert!(!m("a/b", "a/b/c"));
    }
}
