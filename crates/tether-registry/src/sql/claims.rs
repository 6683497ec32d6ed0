//! Provisioning claims: create, read, list, revoke, and the one atomic step that
//! creates a device through a claim (its row locked, its count and state checked,
//! the device inserted and the count raised in one transaction).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe};

use super::rows::{enum_num, get, ts};
use super::{Dialect, codec, db, devices, registries, unless_taken};
use crate::model::{
    Device, GatewayAuthMethod, GatewayType, LogLevel, PublicKeyCredential, PublicKeyFormat,
    Timestamp,
};
use crate::names::{DeviceRef, RegistryPath};
use crate::provisioning::{
    CLAIMS_PER_REGISTRY, DeviceTemplate, Provisioned, ProvisioningClaim, is_same_provision,
};
use crate::store::{StoreError, StoreResult};

const COLUMNS: &str = "id, key_format, key, device_id_pattern, max_devices, expiration_time, \
     template_metadata, template_log_level, template_gateway_type, \
     template_gateway_auth_method, rotation_grace_secs, devices_provisioned, \
     last_used_time, create_time, revoke_time";

fn not_found(registry: &RegistryPath, id: &str) -> StoreError {
    StoreError::NotFound(format!("provisioning claim '{id}' not found in {registry}"))
}

fn from_row(registry: &RegistryPath, row: &AnyRow) -> StoreResult<ProvisioningClaim> {
    let format = PublicKeyFormat::from_number(
        i32::try_from(get::<i64>(row, "key_format")?).unwrap_or(-1),
    )
    .ok_or_else(|| StoreError::corrupt("provisioning_claims.key_format: unknown key format"))?;
    let max: Option<i64> = get(row, "max_devices")?;
    Ok(ProvisioningClaim {
        registry: registry.clone(),
        id: get(row, "id")?,
        credential: PublicKeyCredential {
            format,
            key: get(row, "key")?,
        },
        device_id_pattern: get(row, "device_id_pattern")?,
        max_devices: max.map(|n| u64::try_from(n).unwrap_or(0)),
        expiration_time: ts(get(row, "expiration_time")?),
        device_template: DeviceTemplate {
            metadata: codec::decode_metadata(&get::<String>(row, "template_metadata")?)?,
            log_level: enum_num(get(row, "template_log_level")?, LogLevel::from_number),
            gateway_type: enum_num(get(row, "template_gateway_type")?, GatewayType::from_number),
            gateway_auth_method: enum_num(
                get(row, "template_gateway_auth_method")?,
                GatewayAuthMethod::from_number,
            ),
        },
        rotation_grace_secs: u64::try_from(get::<i64>(row, "rotation_grace_secs")?).unwrap_or(0),
        devices_provisioned: u64::try_from(get::<i64>(row, "devices_provisioned")?).unwrap_or(0),
        last_used_time: ts(get(row, "last_used_time")?),
        create_time: ts(get(row, "create_time")?),
        revoke_time: ts(get(row, "revoke_time")?),
    })
}

async fn load(
    conn: &mut AnyConnection,
    pk: i64,
    registry: &RegistryPath,
    id: &str,
    suffix: &str,
) -> StoreResult<ProvisioningClaim> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM provisioning_claims WHERE registry_pk = $1 AND id = $2{suffix}"
    )))
    .bind(pk)
    .bind(id.to_owned())
    .fetch_optional(conn)
    .await
    .map_err(db)?
    .ok_or_else(|| not_found(registry, id))?;
    from_row(registry, &row)
}

pub(super) async fn create(
    conn: &mut AnyConnection,
    dialect: Dialect,
    claim: &ProvisioningClaim,
    now: Timestamp,
) -> StoreResult<ProvisioningClaim> {
    let registry = &claim.registry;
    let pk = registries::pk_locked(conn, registry, dialect.for_update()).await?;
    let exists = || {
        StoreError::AlreadyExists(format!(
            "provisioning claim '{}' already exists in {registry}",
            claim.id
        ))
    };
    let row = sqlx::query("SELECT COUNT(*) AS n FROM provisioning_claims WHERE registry_pk = $1")
        .bind(pk)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let count: i64 = get(&row, "n")?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= CLAIMS_PER_REGISTRY {
        return Err(StoreError::FailedPrecondition(format!(
            "registry '{registry}' has {count} provisioning claims (revoked ones included); \
             at most {CLAIMS_PER_REGISTRY} are allowed"
        )));
    }
    let t = &claim.device_template;
    sqlx::query(
        "INSERT INTO provisioning_claims (registry_pk, id, key_format, key, \
         device_id_pattern, max_devices, expiration_time, template_metadata, \
         template_log_level, template_gateway_type, template_gateway_auth_method, \
         rotation_grace_secs, devices_provisioned, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13)",
    )
    .bind(pk)
    .bind(claim.id.clone())
    .bind(i64::from(claim.credential.format.number()))
    .bind(claim.credential.key.clone())
    .bind(claim.device_id_pattern.clone())
    .bind(
        claim
            .max_devices
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
    )
    .bind(claim.expiration_time.map(|t| t.0))
    .bind(codec::encode_metadata(&t.metadata))
    .bind(i64::from(t.log_level.number()))
    .bind(i64::from(t.gateway_type.number()))
    .bind(i64::from(t.gateway_auth_method.number()))
    .bind(i64::try_from(claim.rotation_grace_secs).unwrap_or(i64::MAX))
    .bind(now.0)
    .execute(&mut *conn)
    .await
    .map_err(|e| unless_taken(e, exists))?;
    load(conn, pk, registry, &claim.id, "").await
}

pub(super) async fn get_one(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    id: &str,
) -> StoreResult<ProvisioningClaim> {
    let pk = registries::pk(conn, registry).await?;
    load(conn, pk, registry, id, "").await
}

pub(super) async fn list(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
) -> StoreResult<Vec<ProvisioningClaim>> {
    let pk = registries::pk(conn, registry).await?;
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM provisioning_claims WHERE registry_pk = $1 ORDER BY id"
    )))
    .bind(pk)
    .fetch_all(conn)
    .await
    .map_err(db)?;
    rows.iter().map(|row| from_row(registry, row)).collect()
}

pub(super) async fn revoke(
    conn: &mut AnyConnection,
    registry: &RegistryPath,
    id: &str,
    now: Timestamp,
) -> StoreResult<ProvisioningClaim> {
    let pk = registries::pk(conn, registry).await?;
    // The first revocation's time stays: revoking twice changes nothing.
    sqlx::query(
        "UPDATE provisioning_claims SET revoke_time = $1 \
         WHERE registry_pk = $2 AND id = $3 AND revoke_time IS NULL",
    )
    .bind(now.0)
    .bind(pk)
    .bind(id.to_owned())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    load(conn, pk, registry, id, "").await
}

/// Removes a registry's claims (the registry is being deleted).
pub(super) async fn delete_all(conn: &mut AnyConnection, pk: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM provisioning_claims WHERE registry_pk = $1")
        .bind(pk)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn provision(
    conn: &mut AnyConnection,
    dialect: Dialect,
    registry: &RegistryPath,
    claim_id: &str,
    device: &Device,
    now: Timestamp,
) -> StoreResult<Provisioned> {
    let pk = registries::pk_locked(conn, registry, dialect.for_share()).await?;
    // The claim's row is locked until the device is in: two provisions through one
    // claim (on any node) take turns, so the count and the idempotency check hold.
    let claim = load(conn, pk, registry, claim_id, dialect.for_update()).await?;
    if let Some(why) = claim.unusable(now) {
        return Err(StoreError::FailedPrecondition(why));
    }
    let key = device
        .credentials
        .first()
        .map(|c| c.public_key.clone())
        .ok_or_else(|| StoreError::InvalidArgument("a provisioned device needs a key".into()))?;
    match devices::get_one(conn, registry, &DeviceRef::Id(device.id.clone())).await {
        Ok(existing) if is_same_provision(&existing, claim_id, &key) => {
            return Ok(Provisioned {
                device: existing,
                created: false,
            });
        }
        Ok(_) => {
            return Err(StoreError::AlreadyExists(format!(
                "device '{}' already exists in {registry}; a provisioning claim never \
                 changes an existing device",
                device.id
            )));
        }
        Err(StoreError::NotFound(_)) => {}
        Err(other) => return Err(other),
    }
    if let Some(why) = claim.full() {
        return Err(StoreError::FailedPrecondition(why));
    }
    let created = devices::create(conn, dialect, registry, device, now).await?;
    sqlx::query(
        "UPDATE provisioning_claims SET devices_provisioned = devices_provisioned + 1, \
         last_used_time = $1 WHERE registry_pk = $2 AND id = $3",
    )
    .bind(now.0)
    .bind(pk)
    .bind(claim_id.to_owned())
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(Provisioned {
        device: created,
        created: true,
    })
}
