//! The OpenAPI 3.1 document served at `/openapi.json`, generated from
//! [`OPERATIONS`](super::routes::OPERATIONS) so it lists exactly what is routed.

use serde_json::{Map, Value, json};

use super::routes::{OPERATIONS, Schema};

fn schema_ref(s: Schema) -> Option<Value> {
    match s {
        Schema::None => None,
        Schema::Empty => Some(json!({"type": "object"})),
        Schema::Ref(name) => Some(json!({"$ref": format!("#/components/schemas/{name}")})),
    }
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| {
            let inner = seg.strip_prefix('{')?;
            let name = inner.split('}').next()?;
            Some(json!({
                "name": name,
                "in": "path",
                "required": true,
                "schema": {"type": "string"},
                "description": if name == "device" { "device id or numId" } else { "" },
            }))
        })
        .collect()
}

/// The document.
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for op in OPERATIONS {
        let mut parameters = path_params(op.path);
        for q in op.query {
            parameters.push(json!({"name": q, "in": "query", "schema": {"type": "string"}}));
        }
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK"},
                "default": {
                    "description": "Google's error envelope",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        });
        if let Some(schema) = schema_ref(op.response) {
            operation["responses"]["200"]["content"] =
                json!({"application/json": {"schema": schema}});
        }
        if let Some(schema) = schema_ref(op.request) {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tether Device Manager API (cloudiot v1 compatible)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Google Cloud IoT Core's Device Manager API v1 with the proto3 JSON mapping. \
                Send 'Authorization: Bearer <admin token>'. Add '$alt=json;enum-encoding=int' to get enums as numbers.",
        },
        "security": [{"adminToken": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        },
    })
}

fn schemas() -> Value {
    let s = json!({"type": "string"});
    let int64 = json!({"type": "string", "format": "int64"});
    let bytes = json!({"type": "string", "format": "byte"});
    let time = json!({"type": "string", "format": "date-time"});
    let level = json!({"type": "string", "enum": ["LOG_LEVEL_UNSPECIFIED", "NONE", "ERROR", "INFO", "DEBUG"]});
    let config = json!({"type": "object", "properties": {
        "version": int64, "cloudUpdateTime": time, "deviceAckTime": time, "binaryData": bytes}});
    let state = json!({"type": "object", "properties": {"updateTime": time, "binaryData": bytes}});
    json!({
        "Any": {"type": "object"},
        "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "integer"}, "message": s, "status": s}}}},
        "DeviceRegistry": {"type": "object", "properties": {
            "id": s, "name": s,
            "eventNotificationConfigs": {"type": "array", "maxItems": 10, "items": {"type": "object", "properties": {
                "subfolderMatches": s, "pubsubTopicName": s}}},
            "stateNotificationConfig": {"type": "object", "properties": {"pubsubTopicName": s}},
            "mqttConfig": {"type": "object", "properties": {"mqttEnabledState": {"type": "string", "enum": ["MQTT_STATE_UNSPECIFIED", "MQTT_ENABLED", "MQTT_DISABLED"]}}},
            "httpConfig": {"type": "object", "properties": {"httpEnabledState": {"type": "string", "enum": ["HTTP_STATE_UNSPECIFIED", "HTTP_ENABLED", "HTTP_DISABLED"]}}},
            "logLevel": level,
            "credentials": {"type": "array", "maxItems": 10, "items": {"type": "object", "properties": {
                "publicKeyCertificate": {"type": "object", "properties": {
                    "format": {"type": "string", "enum": ["UNSPECIFIED_PUBLIC_KEY_CERTIFICATE_FORMAT", "X509_CERTIFICATE_PEM"]},
                    "certificate": s,
                    "x509Details": {"type": "object", "readOnly": true}}}}}},
        }},
        "Device": {"type": "object", "properties": {
            "id": s, "name": s, "numId": int64,
            "credentials": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {
                "publicKey": {"type": "object", "properties": {
                    "format": {"type": "string", "enum": ["UNSPECIFIED_PUBLIC_KEY_FORMAT", "RSA_X509_PEM", "ES256_PEM", "RSA_PEM", "ES256_X509_PEM"]},
                    "key": s}},
                "expirationTime": time}}},
            "lastHeartbeatTime": time, "lastEventTime": time, "lastStateTime": time,
            "lastConfigAckTime": time, "lastConfigSendTime": time, "blocked": {"type": "boolean"},
            "lastErrorTime": time,
            "lastErrorStatus": {"type": "object", "properties": {"code": {"type": "integer"}, "message": s}},
            "config": config, "state": state, "logLevel": level,
            "metadata": {"type": "object", "additionalProperties": s},
            "gatewayConfig": {"type": "object", "properties": {
                "gatewayType": {"type": "string", "enum": ["GATEWAY_TYPE_UNSPECIFIED", "GATEWAY", "NON_GATEWAY"]},
                "gatewayAuthMethod": {"type": "string", "enum": ["GATEWAY_AUTH_METHOD_UNSPECIFIED", "ASSOCIATION_ONLY", "DEVICE_AUTH_TOKEN_ONLY", "ASSOCIATION_AND_DEVICE_AUTH_TOKEN"]},
                "lastAccessedGatewayId": s, "lastAccessedGatewayTime": time}},
        }},
        "DeviceConfig": config,
        "ListDeviceRegistriesResponse": {"type": "object", "properties": {
            "deviceRegistries": {"type": "array", "items": {"$ref": "#/components/schemas/DeviceRegistry"}},
            "nextPageToken": s}},
        "ListDevicesResponse": {"type": "object", "properties": {
            "devices": {"type": "array", "items": {"$ref": "#/components/schemas/Device"}},
            "nextPageToken": s}},
        "ListDeviceConfigVersionsResponse": {"type": "object", "properties": {
            "deviceConfigs": {"type": "array", "items": config}}},
        "ListDeviceStatesResponse": {"type": "object", "properties": {
            "deviceStates": {"type": "array", "items": state}}},
        "ModifyCloudToDeviceConfigRequest": {"type": "object", "properties": {
            "versionToUpdate": int64, "binaryData": bytes}},
        "SendCommandToDeviceRequest": {"type": "object", "required": ["binaryData"], "properties": {
            "binaryData": bytes, "subfolder": s}},
        "BindRequest": {"type": "object", "required": ["gatewayId", "deviceId"], "properties": {
            "gatewayId": s, "deviceId": s}},
        "ProvisioningClaim": {"type": "object", "required": ["credential", "deviceIdPattern"], "properties": {
            "name": {"type": "string", "readOnly": true}, "id": {"type": "string", "readOnly": true},
            "credential": {"type": "object", "properties": {
                "publicKey": {"type": "object", "properties": {
                    "format": {"type": "string", "enum": ["RSA_X509_PEM", "ES256_PEM", "RSA_PEM", "ES256_X509_PEM"]},
                    "key": s}},
                "fingerprint": {"type": "string", "readOnly": true}}},
            "deviceIdPattern": s, "maxDevices": int64, "expirationTime": time,
            "keyRotationGracePeriod": {"type": "string", "description": "a duration, e.g. \"86400s\" (the default)"},
            "deviceTemplate": {"type": "object", "properties": {
                "metadata": {"type": "object", "additionalProperties": s},
                "logLevel": level,
                "gatewayConfig": {"type": "object", "properties": {
                    "gatewayType": {"type": "string", "enum": ["GATEWAY_TYPE_UNSPECIFIED", "GATEWAY", "NON_GATEWAY"]},
                    "gatewayAuthMethod": {"type": "string", "enum": ["GATEWAY_AUTH_METHOD_UNSPECIFIED", "ASSOCIATION_ONLY", "DEVICE_AUTH_TOKEN_ONLY", "ASSOCIATION_AND_DEVICE_AUTH_TOKEN"]}}}}},
            "devicesProvisioned": {"type": "string", "format": "int64", "readOnly": true},
            "lastUsedTime": {"type": "string", "format": "date-time", "readOnly": true},
            "createTime": {"type": "string", "format": "date-time", "readOnly": true},
            "revokeTime": {"type": "string", "format": "date-time", "readOnly": true},
            "state": {"type": "string", "readOnly": true, "enum": ["ACTIVE", "REVOKED", "EXPIRED", "EXHAUSTED"]}}},
        "ListProvisioningClaimsResponse": {"type": "object", "properties": {
            "provisioningClaims": {"type": "array", "items": {"$ref": "#/components/schemas/ProvisioningClaim"}}}},
    })
}
