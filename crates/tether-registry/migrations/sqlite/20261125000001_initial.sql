-- Tether registry schema (SQLite). Times are microseconds since the Unix epoch;
-- enums are proto numbers; lists and maps are JSON text.

CREATE TABLE registries (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    location TEXT NOT NULL,
    id TEXT NOT NULL,
    event_notification_configs TEXT NOT NULL,
    state_notification_topic TEXT,
    mqtt_state INTEGER NOT NULL,
    http_state INTEGER NOT NULL,
    log_level INTEGER NOT NULL,
    credentials TEXT NOT NULL,
    UNIQUE (project, location, id)
);

CREATE TABLE devices (
    num_id INTEGER PRIMARY KEY,
    registry_pk INTEGER NOT NULL REFERENCES registries (pk),
    id TEXT NOT NULL,
    credentials TEXT NOT NULL,
    blocked INTEGER NOT NULL,
    log_level INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    gateway_type INTEGER NOT NULL,
    gateway_auth_method INTEGER NOT NULL,
    last_accessed_gateway_id TEXT NOT NULL DEFAULT '',
    last_accessed_gateway_time INTEGER,
    last_heartbeat_time INTEGER,
    last_event_time INTEGER,
    last_state_time INTEGER,
    last_config_ack_time INTEGER,
    last_config_send_time INTEGER,
    last_error_time INTEGER,
    last_error_code INTEGER,
    last_error_message TEXT,
    -- The highest config version ever issued: it only grows, so pruned versions are
    -- never reused. The row with this version is always kept.
    config_version INTEGER NOT NULL,
    -- Sequence of the latest state (0 = none yet).
    state_seq INTEGER NOT NULL DEFAULT 0,
    UNIQUE (registry_pk, id)
);

CREATE TABLE device_configs (
    num_id INTEGER NOT NULL REFERENCES devices (num_id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    cloud_update_time INTEGER NOT NULL,
    device_ack_time INTEGER,
    binary_data BLOB NOT NULL,
    PRIMARY KEY (num_id, version)
);

CREATE TABLE device_states (
    num_id INTEGER NOT NULL REFERENCES devices (num_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    binary_data BLOB NOT NULL,
    PRIMARY KEY (num_id, seq)
);

CREATE TABLE gateway_bindings (
    gateway_num_id INTEGER NOT NULL REFERENCES devices (num_id),
    device_num_id INTEGER NOT NULL REFERENCES devices (num_id) ON DELETE CASCADE,
    PRIMARY KEY (gateway_num_id, device_num_id)
);

CREATE INDEX gateway_bindings_by_device ON gateway_bindings (device_num_id);
