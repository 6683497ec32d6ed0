//! Device activity from the bridges (last*-times, last error, last gateway), applied in
//! batches: each time only moves forward, and records for deleted devices are ignored.

use sqlx::AnyConnection;

use super::db;
use super::rows::to_db_num_id;
use crate::store::{Activity, ActivityKind, StoreResult};

/// One activity record: each time only moves forward; unknown devices match no row.
pub(super) async fn apply(conn: &mut AnyConnection, a: &Activity) -> StoreResult<()> {
    let Some(num_id) = to_db_num_id(a.num_id) else {
        return Ok(());
    };
    // $1 time, $2 numId, $3–$5 registry path; extra values follow.
    macro_rules! where_device {
        ($column:literal) => {
            concat!(
                " WHERE num_id = $2 AND registry_pk = (SELECT pk FROM registries \
                 WHERE project = $3 AND location = $4 AND id = $5) AND (",
                $column,
                " IS NULL OR ",
                $column,
                " < $1)"
            )
        };
    }
    macro_rules! touch {
        ($column:literal) => {
            concat!(
                "UPDATE devices SET ",
                $column,
                " = $1",
                where_device!($column)
            )
        };
    }
    let query = match &a.kind {
        ActivityKind::Heartbeat => sqlx::query(touch!("last_heartbeat_time")),
        ActivityKind::Event => sqlx::query(touch!("last_event_time")),
        ActivityKind::State => sqlx::query(touch!("last_state_time")),
        ActivityKind::ConfigSent => sqlx::query(touch!("last_config_send_time")),
        ActivityKind::Error(_) => sqlx::query(concat!(
            "UPDATE devices SET last_error_time = $1, last_error_code = $6, \
             last_error_message = $7",
            where_device!("last_error_time")
        )),
        ActivityKind::GatewayAccess { .. } => sqlx::query(concat!(
            "UPDATE devices SET last_accessed_gateway_time = $1, last_accessed_gateway_id = $6",
            where_device!("last_accessed_gateway_time")
        )),
    };
    let query = query
        .bind(a.at.0)
        .bind(num_id)
        .bind(a.registry.project.clone())
        .bind(a.registry.location.clone())
        .bind(a.registry.registry.clone());
    let query = match &a.kind {
        ActivityKind::Error(status) => query
            .bind(i64::from(status.code))
            .bind(status.message.clone()),
        ActivityKind::GatewayAccess { gateway_id } => query.bind(gateway_id.clone()),
        _ => query,
    };
    query.execute(conn).await.map_err(db)?;
    Ok(())
}
