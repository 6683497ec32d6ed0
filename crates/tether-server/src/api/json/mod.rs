//! The proto3 JSON mapping of `google.cloud.iot.v1` resources.
//!
//! Output: lowerCamelCase names, int64 as strings, bytes as standard base64, RFC 3339
//! `Z` times, enums as names (or numbers when the caller sent
//! `$alt=json;enum-encoding=int`, as Google's REST clients do), default values omitted.
//! Input: either name spelling, int64 as string or number, either base64 alphabet,
//! enums as names or numbers; unknown fields are refused (see [`reader`]).

pub mod claim;
pub mod device;
pub mod mask;
pub mod reader;
pub mod registry;
pub mod time;

use base64::Engine as _;
use serde_json::{Map, Value};
use tether_registry::model::{
    CertificateFormat, GatewayAuthMethod, GatewayType, HttpState, LogLevel, MqttState,
    PublicKeyFormat, Timestamp,
};

/// The model's proto enums, for generic reading and writing.
pub trait ProtoEnum: Copy + PartialEq + Default + 'static {
    /// All values.
    fn all() -> &'static [Self];
    /// The proto number.
    fn proto_number(self) -> i32;
    /// The proto name.
    fn proto_name(self) -> &'static str;
    /// From a name.
    fn from_name(s: &str) -> Option<Self>;
    /// From a number.
    fn from_number(n: i32) -> Option<Self>;
}

macro_rules! proto_enums {
    ($($t:ty),*) => {$(
        impl ProtoEnum for $t {
            fn all() -> &'static [Self] { <$t>::ALL }
            fn proto_number(self) -> i32 { self.number() }
            fn proto_name(self) -> &'static str { self.name() }
            fn from_name(s: &str) -> Option<Self> { <$t>::from_name(s) }
            fn from_number(n: i32) -> Option<Self> { <$t>::from_number(n) }
        }
    )*};
}

proto_enums!(
    MqttState,
    HttpState,
    LogLevel,
    PublicKeyFormat,
    CertificateFormat,
    GatewayType,
    GatewayAuthMethod
);

/// How a response writes enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Enc {
    /// Numbers instead of names (`$alt=json;enum-encoding=int`).
    pub enum_ints: bool,
}

/// Builds a JSON object, leaving out proto3 default values.
#[derive(Debug, Default)]
pub struct Out {
    map: Map<String, Value>,
    enc: Enc,
}

impl Out {
    /// An empty object written with `enc`.
    pub fn new(enc: Enc) -> Out {
        Out {
            map: Map::new(),
            enc,
        }
    }

    /// A string, unless empty.
    pub fn string(mut self, key: &str, v: &str) -> Out {
        if !v.is_empty() {
            self.map.insert(key.into(), Value::String(v.into()));
        }
        self
    }

    /// An int64/uint64 as a decimal string, unless zero.
    pub fn int64(mut self, key: &str, v: impl Into<i128>) -> Out {
        let v = v.into();
        if v != 0 {
            self.map.insert(key.into(), Value::String(v.to_string()));
        }
        self
    }

    /// An int64 that is always written (config versions are never "unset").
    pub fn int64_always(mut self, key: &str, v: i64) -> Out {
        self.map.insert(key.into(), Value::String(v.to_string()));
        self
    }

    /// A bool, unless false.
    pub fn boolean(mut self, key: &str, v: bool) -> Out {
        if v {
            self.map.insert(key.into(), Value::Bool(true));
        }
        self
    }

    /// An int32, unless zero.
    pub fn int32(mut self, key: &str, v: i32) -> Out {
        if v != 0 {
            self.map.insert(key.into(), Value::from(v));
        }
        self
    }

    /// Bytes as standard base64, unless empty.
    pub fn bytes(mut self, key: &str, v: &[u8]) -> Out {
        if !v.is_empty() {
            self.map.insert(key.into(), Value::String(encode_base64(v)));
        }
        self
    }

    /// A timestamp, if set.
    pub fn time(mut self, key: &str, v: Option<Timestamp>) -> Out {
        if let Some(t) = v {
            self.map.insert(key.into(), Value::String(time::format(t)));
        }
        self
    }

    /// An enum as a name or number, unless it is the zero value.
    pub fn enumeration<E: ProtoEnum>(mut self, key: &str, v: E) -> Out {
        if v.proto_number() != 0 {
            let value = if self.enc.enum_ints {
                Value::from(v.proto_number())
            } else {
                Value::String(v.proto_name().into())
            };
            self.map.insert(key.into(), value);
        }
        self
    }

    /// A nested message (written even when empty, as a set message field is).
    pub fn message(mut self, key: &str, v: Value) -> Out {
        self.map.insert(key.into(), v);
        self
    }

    /// A nested message if present.
    pub fn message_opt(self, key: &str, v: Option<Value>) -> Out {
        match v {
            Some(v) => self.message(key, v),
            None => self,
        }
    }

    /// A repeated field, unless empty.
    pub fn list(mut self, key: &str, items: Vec<Value>) -> Out {
        if !items.is_empty() {
            self.map.insert(key.into(), Value::Array(items));
        }
        self
    }

    /// The encoding this object is written with.
    pub fn enc(&self) -> Enc {
        self.enc
    }

    /// The finished object.
    pub fn build(self) -> Value {
        Value::Object(self.map)
    }
}

/// Standard base64 with padding, as proto3 JSON writes bytes.
pub fn encode_base64(v: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}
