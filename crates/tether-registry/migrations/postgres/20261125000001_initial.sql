-- Tether registry schema (PostgreSQL). Times are microseconds since the Unix epoch;
-- enums are proto numbers; lists and maps are JSON text. Every integer is BIGINT and
-- ids sort with the "C" collation, so both stores order and decode identically.

CREATE TABLE registries (
    pk BIGSERIAL PRIMARY KEY,
    project TEXT COLLATE "C" NOT NULL,
    location TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    event_notification_configs TEXT NOT NULL,
    state_notification_topic TEXT,
    mqtt_state BIGINT NOT NULL,
    http_state BIGINT NOT NULL,
    log_level BIGINT NOT NULL,
    credentials TEXT NOT NULL,
    UNIQUE (project, location, id)
);

CREATE TABLE devices (
    num_id BIGINT PRIMARY KEY,
    registry_pk BIGINT NOT NULL REFERENCES registries (pk),
    id TEXT COLLATE "C" NOT NULL,
    credentials TEXT NOT NULL,
    blocked BIGINT NOT NULL,
    log_level BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    gateway_type BIGINT NOT NULL,
    gateway_auth_method BIGINT NOT NULL,
    last_accessed_gateway_id TEXT NOT NULL DEFAULT '',
    last_accessed_gateway_time BIGINT,
    last_heartbeat_time BIGINT,
    last_event_time BIGINT,
    last_state_time BIGINT,
    last_config_ack_time BIGINT,
    last_config_send_time BIGINT,
    last_error_time BIGINT,
    last_error_code BIGINT,
    last_error_message TEXT,
    -- The highest config version ever issued: it only grows, so pruned versions are
    -- never reused. The row with this version is always kept.
    config_version BIGINT NOT NULL,
    -- Sequence of the latest state (0 = none yet).
    state_seq BIGINT NOT NULL DEFAULT 0,
    UNIQUE (registry_pk, id)
);

CREATE TABLE device_configs (
    num_id BIGINT NOT NULL REFERENCES devices (num_id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    cloud_update_time BIGINT NOT NULL,
    device_ack_time BIGINT,
    binary_data BYTEA NOT NULL,
    PRIMARY KEY (num_id, version)
);

CREATE TABLE device_states (
    num_id BIGINT NOT NULL REFERENCES devices (num_id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    binary_data BYTEA NOT NULL,
    PRIMARY KEY (num_id, seq)
);

CREATE TABLE gateway_bindings (
    gateway_num_id BIGINT NOT NULL REFERENCES devices (num_id),
    device_num_id BIGINT NOT NULL REFERENCES devices (num_id) ON DELETE CASCADE,
    PRIMARY KEY (gateway_num_id, device_num_id)
);

CREATE INDEX gateway_bindings_by_device ON gateway_bindings (device_num_id);
