-- Provisioning claims: a registry's credential that lets devices register themselves
-- (docs/provisioning.md). A revoked claim keeps its row, so that a device using it
-- learns why it is refused; claims go with their registry.

CREATE TABLE provisioning_claims (
    registry_pk INTEGER NOT NULL REFERENCES registries (pk),
    id TEXT NOT NULL,
    key_format INTEGER NOT NULL,
    key TEXT NOT NULL,
    device_id_pattern TEXT NOT NULL,
    max_devices INTEGER,
    expiration_time INTEGER,
    template_metadata TEXT NOT NULL,
    template_log_level INTEGER NOT NULL,
    template_gateway_type INTEGER NOT NULL,
    template_gateway_auth_method INTEGER NOT NULL,
    -- How long a device's older keys stay valid after it rotates to a new one.
    rotation_grace_secs INTEGER NOT NULL,
    devices_provisioned INTEGER NOT NULL DEFAULT 0,
    last_used_time INTEGER,
    create_time INTEGER NOT NULL,
    revoke_time INTEGER,
    PRIMARY KEY (registry_pk, id)
);
