/// Clock skew IoT Core allowed on `iat` and `exp`: 10 minutes.
pub const DEFAULT_SKEW_SECS: i64 = 600;
/// Longest token lifetime (`exp − iat`) IoT Core allowed: 24 hours.
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 86_400;

/// How strictly the base64url of a token is read. Claims rules are never lenient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EncodingPolicy {
    /// Refuse `=` padding, the standard `+/` alphabet and non-zero trailing bits.
    Strict,
    /// Accept them as IoT Core did, verify the signature over the bytes exactly as
    /// sent, and report a warning.
    #[default]
    Lenient,
}

/// The IoT Core rules a device token is checked against. Time is always given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules<'a> {
    /// The project id `aud` must equal.
    pub project: &'a str,
    /// The current time, seconds since the epoch.
    pub now: i64,
    /// Allowed clock difference for `iat` in the future and `exp` in the past.
    pub skew_secs: i64,
    /// Longest allowed `exp − iat`.
    pub max_lifetime_secs: i64,
    /// Base64 strictness.
    pub encoding: EncodingPolicy,
}

impl<'a> Rules<'a> {
    /// IoT Core's rules for `project` at time `now`: 10 min skew, 24 h lifetime,
    /// lenient encoding.
    pub fn new(project: &'a str, now: i64) -> Self {
        Rules {
            project,
            now,
            skew_secs: DEFAULT_SKEW_SECS,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
            encoding: EncodingPolicy::Lenient,
        }
    }

    /// The same rules with another encoding policy.
    pub fn with_encoding(self, encoding: EncodingPolicy) -> Self {
        Rules { encoding, ..self }
    }
}
