//! IoT Core's resources (`google.cloud.iot.v1` `resources.proto`) as plain types.
//!
//! Times are [`Timestamp`]s (microseconds since the Unix epoch). Enum discriminants are
//! the proto numbers, so the REST layer can print either names or numbers.

use std::collections::BTreeMap;

use crate::names::RegistryPath;

/// Microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From whole seconds.
    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000))
    }

    /// Whole seconds (floor).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
}

macro_rules! proto_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $num:literal => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// All values, in proto order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The proto enum number.
            pub const fn number(self) -> i32 {
                match self { $($name::$variant => $num,)* }
            }

            /// The proto enum name, as JSON prints it.
            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// From the proto number.
            pub fn from_number(n: i32) -> Option<Self> {
                match n { $($num => Some($name::$variant),)* _ => None }
            }

            /// From the proto name.
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }
    };
}

proto_enum!(
    /// Whether a registry accepts MQTT connections (`UNSPECIFIED` counts as enabled).
    MqttState {
        #[default]
        Unspecified = 0 => "MQTT_STATE_UNSPECIFIED",
        Enabled = 1 => "MQTT_ENABLED",
        Disabled = 2 => "MQTT_DISABLED",
    }
);

proto_enum!(
    /// Whether a registry accepts HTTP bridge calls (`UNSPECIFIED` counts as enabled).
    HttpState {
        #[default]
        Unspecified = 0 => "HTTP_STATE_UNSPECIFIED",
        Enabled = 1 => "HTTP_ENABLED",
        Disabled = 2 => "HTTP_DISABLED",
    }
);

proto_enum!(
    /// Device activity logging level.
    LogLevel {
        #[default]
        Unspecified = 0 => "LOG_LEVEL_UNSPECIFIED",
        None = 10 => "NONE",
        Error = 20 => "ERROR",
        Info = 30 => "INFO",
        Debug = 40 => "DEBUG",
    }
);

proto_enum!(
    /// The format of a device public key credential.
    PublicKeyFormat {
        #[default]
        Unspecified = 0 => "UNSPECIFIED_PUBLIC_KEY_FORMAT",
        RsaX509Pem = 1 => "RSA_X509_PEM",
        Es256Pem = 2 => "ES256_PEM",
        RsaPem = 3 => "RSA_PEM",
        Es256X509Pem = 4 => "ES256_X509_PEM",
    }
);

proto_enum!(
    /// The format of a registry CA certificate.
    CertificateFormat {
        #[default]
        Unspecified = 0 => "UNSPECIFIED_PUBLIC_KEY_CERTIFICATE_FORMAT",
        X509Pem = 1 => "X509_CERTIFICATE_PEM",
    }
);

proto_enum!(
    /// Whether a device is a gateway.
    GatewayType {
        #[default]
        Unspecified = 0 => "GATEWAY_TYPE_UNSPECIFIED",
        Gateway = 1 => "GATEWAY",
        NonGateway = 2 => "NON_GATEWAY",
    }
);

proto_enum!(
    /// How a gateway's attached devices authenticate.
    GatewayAuthMethod {
        #[default]
        Unspecified = 0 => "GATEWAY_AUTH_METHOD_UNSPECIFIED",
        AssociationOnly = 1 => "ASSOCIATION_ONLY",
        DeviceAuthTokenOnly = 2 => "DEVICE_AUTH_TOKEN_ONLY",
        AssociationAndDeviceAuthToken = 3 => "ASSOCIATION_AND_DEVICE_AUTH_TOKEN",
    }
);

/// Routes telemetry with a given subfolder to a notification topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventNotificationConfig {
    /// Exact subfolder to match; empty matches everything (the default config).
    pub subfolder_matches: String,
    /// `projects/{project}/topics/{topic}`.
    pub pubsub_topic_name: String,
}

/// Where state notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateNotificationConfig {
    /// `projects/{project}/topics/{topic}`.
    pub pubsub_topic_name: String,
}

/// Details of a parsed X.509 certificate, as IoT Core reported them (output only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct X509Details {
    /// Issuer DN.
    pub issuer: String,
    /// Subject DN.
    pub subject: String,
    /// Not before.
    pub start_time: Option<Timestamp>,
    /// Not after.
    pub expiry_time: Option<Timestamp>,
    /// E.g. `SHA256_WITH_RSA` or `ECDSA_WITH_SHA256`.
    pub signature_algorithm: String,
    /// E.g. `RSA_2048` or `ECDSA_P256`.
    pub public_key_type: String,
}

/// A registry CA certificate: device certificates must be signed by one of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistryCredential {
    /// Always `X509Pem`.
    pub format: CertificateFormat,
    /// The PEM text.
    pub certificate: String,
    /// Parsed details (output only).
    pub x509_details: Option<X509Details>,
}

/// A device registry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceRegistry {
    /// Where it lives and its id.
    pub path: RegistryPath,
    /// Telemetry routing, first exact subfolder match wins (≤ 10).
    pub event_notification_configs: Vec<EventNotificationConfig>,
    /// State notifications.
    pub state_notification_config: Option<StateNotificationConfig>,
    /// MQTT bridge on or off.
    pub mqtt_state: MqttState,
    /// HTTP bridge on or off.
    pub http_state: HttpState,
    /// Default device log level.
    pub log_level: LogLevel,
    /// Registry CA certificates (≤ 10).
    pub credentials: Vec<RegistryCredential>,
}

/// A device public key as registered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublicKeyCredential {
    /// Declared format.
    pub format: PublicKeyFormat,
    /// PEM text (public key or certificate).
    pub key: String,
}

/// One of a device's (≤ 3) credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceCredential {
    /// The key.
    pub public_key: PublicKeyCredential,
    /// After this the credential is ignored; `None` never expires.
    pub expiration_time: Option<Timestamp>,
}

/// A configuration version sent to the device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceConfig {
    /// Starts at 1, only ever grows.
    pub version: i64,
    /// When the cloud stored this version.
    pub cloud_update_time: Option<Timestamp>,
    /// When the device acknowledged it (QoS 1), if it did.
    pub device_ack_time: Option<Timestamp>,
    /// The payload.
    pub binary_data: Vec<u8>,
}

/// A state reported by the device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceState {
    /// When it was received.
    pub update_time: Option<Timestamp>,
    /// The payload.
    pub binary_data: Vec<u8>,
}

/// `google.rpc.Status` as kept in `lastErrorStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// A `google.rpc.Code` number (0 = OK).
    pub code: i32,
    /// What went wrong and how to fix it.
    pub message: String,
}

/// Gateway settings of a device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayConfig {
    /// Gateway or not (immutable after create).
    pub gateway_type: GatewayType,
    /// How attached devices authenticate.
    pub gateway_auth_method: GatewayAuthMethod,
    /// Last gateway this device was reached through (output only).
    pub last_accessed_gateway_id: String,
    /// When (output only).
    pub last_accessed_gateway_time: Option<Timestamp>,
}

/// A device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    /// User-chosen id, unique in the registry.
    pub id: String,
    /// Server-assigned, globally unique (output only).
    pub num_id: u64,
    /// Public keys (≤ 3).
    pub credentials: Vec<DeviceCredential>,
    /// Last MQTT PINGREQ.
    pub last_heartbeat_time: Option<Timestamp>,
    /// Last telemetry event.
    pub last_event_time: Option<Timestamp>,
    /// Last state message.
    pub last_state_time: Option<Timestamp>,
    /// Last config acknowledgement.
    pub last_config_ack_time: Option<Timestamp>,
    /// Last config sent to the device.
    pub last_config_send_time: Option<Timestamp>,
    /// Refuses connections while true.
    pub blocked: bool,
    /// When the last error happened.
    pub last_error_time: Option<Timestamp>,
    /// The last error (code 0 when none).
    pub last_error_status: Option<Status>,
    /// The latest configuration.
    pub config: DeviceConfig,
    /// The latest state, if any.
    pub state: Option<DeviceState>,
    /// Log level.
    pub log_level: LogLevel,
    /// Free-form metadata (≤ 500 pairs).
    pub metadata: BTreeMap<String, String>,
    /// Gateway settings.
    pub gateway_config: GatewayConfig,
}

impl Device {
    /// Whether the device is a gateway.
    pub fn is_gateway(&self) -> bool {
        self.gateway_config.gateway_type == GatewayType::Gateway
    }
}

/// IoT Core's limits, enforced by the API and the bridges.
pub mod limits {
    /// Credentials per device.
    pub const DEVICE_CREDENTIALS: usize = 3;
    /// CA certificates per registry.
    pub const REGISTRY_CREDENTIALS: usize = 10;
    /// Event notification configs per registry.
    pub const EVENT_NOTIFICATION_CONFIGS: usize = 10;
    /// Config versions and states kept per device.
    pub const HISTORY: usize = 10;
    /// Config payload bytes.
    pub const CONFIG_BYTES: usize = 64 * 1024;
    /// State payload bytes.
    pub const STATE_BYTES: usize = 64 * 1024;
    /// Metadata pairs per device.
    pub const METADATA_PAIRS: usize = 500;
    /// Metadata key bytes (keys are 1–128 characters).
    pub const METADATA_KEY_BYTES: usize = 128;
    /// Metadata value bytes.
    pub const METADATA_VALUE_BYTES: usize = 32 * 1024;
    /// Metadata bytes in total.
    pub const METADATA_TOTAL_BYTES: usize = 256 * 1024;
    /// Largest page of a list call.
    pub const PAGE_SIZE_MAX: usize = 500;
    /// Gateways a device can be bound to.
    pub const GATEWAYS_PER_DEVICE: usize = 10;
}
