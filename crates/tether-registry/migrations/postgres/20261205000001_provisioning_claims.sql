-- Provisioning claims: a registry's credential that lets devices register themselves
-- (docs/provisioning.md). A revoked claim keeps its row, so that a device using it
-- learns why it is refused; claims go with their registry.

CREATE TABLE provisioning_claims (
    registry_pk BIGINT NOT NULL REFERENCES registries (pk),
    id TEXT COLLATE "C" NOT NULL,
    key_format BIGINT NOT NULL,
    key TEXT NOT NULL,
    device_id_pattern TEXT NOT NULL,
    max_devices BIGINT,
    expiration_time BIGINT,
    template_metadata TEXT NOT NULL,
    template_log_level BIGINT NOT NULL,
    template_gateway_type BIGINT NOT NULL,
    template_gateway_auth_method BIGINT NOT NULL,
    -- How long a device's older keys stay valid after it rotates to a new one.
    rotation_grace_secs BIGINT NOT NULL,
    devices_provisioned BIGINT NOT NULL DEFAULT 0,
    last_used_time BIGINT,
    create_time BIGINT NOT NULL,
    revoke_time BIGINT,
    PRIMARY KEY (registry_pk, id)
);
