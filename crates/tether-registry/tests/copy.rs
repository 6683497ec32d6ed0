//! `copy_database`: a SQLite file full of history → PostgreSQL → a new SQLite file,
//! compared through the `Store` API at each step; a non-empty target is refused and
//! left as it was; the copies keep working (new registries, config versions).
//!
//! PostgreSQL comes from `TETHER_TEST_DATABASE_URL` (a fresh schema, dropped after);
//! without it the test fails under `TETHER_TEST_REQUIRE_ALL=1` and is skipped with a
//! notice otherwise.

use std::collections::BTreeMap;

use tether_registry::model::{
    Device, DeviceConfig, DeviceCredential, DeviceRegistry, DeviceState, EventNotificationConfig,
    GatewayAuthMethod, GatewayConfig, GatewayType, LogLevel, MqttState, PublicKeyCredential,
    PublicKeyFormat, StateNotificationConfig, Status, Timestamp,
};
use tether_registry::names::{DeviceRef, LocationPath, RegistryPath};
use tether_registry::provisioning::{DeviceTemplate, PROVISIONED_BY, ProvisioningClaim};
use tether_registry::{
    Activity, ActivityKind, CopyProgress, CopyReport, DeviceFilter, PageRequest, PostgresStore,
    SqliteStore, Store, StoreError, copy_database,
};

const T0: i64 = 1_780_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(T0 + secs)
}

fn reg(id: &str) -> RegistryPath {
    RegistryPath {
        project: "acme".into(),
        location: "europe-west1".into(),
        registry: id.into(),
    }
}

/// Two registries; a gateway with a bound device; keys, metadata, blocked, configs
/// past the 10 kept, states, a stored error.
async fn fill(store: &dyn Store) -> Vec<(RegistryPath, u64)> {
    let fleet = DeviceRegistry {
        path: reg("fleet"),
        event_notification_configs: vec![
            EventNotificationConfig {
                subfolder_matches: "alerts".into(),
                pubsub_topic_name: "projects/acme/topics/alerts".into(),
            },
            EventNotificationConfig {
                subfolder_matches: String::new(),
                pubsub_topic_name: "projects/acme/topics/telemetry".into(),
            },
        ],
        state_notification_config: Some(StateNotificationConfig {
            pubsub_topic_name: "projects/acme/topics/state".into(),
        }),
        mqtt_state: MqttState::Enabled,
        log_level: LogLevel::Info,
        ..DeviceRegistry::default()
    };
    store.create_registry(&fleet).await.expect("fleet");
    store
        .create_registry(&DeviceRegistry {
            path: reg("lab"),
            ..DeviceRegistry::default()
        })
        .await
        .expect("lab");
    let sensor = Device {
        id: "sensor-1".into(),
        credentials: vec![DeviceCredential {
            public_key: PublicKeyCredential {
                format: PublicKeyFormat::Es256Pem,
                key: "-----BEGIN PUBLIC KEY-----\nnot checked by the store\n-----END PUBLIC KEY-----\n".into(),
            },
            expiration_time: Some(at(86_400)),
        }],
        metadata: BTreeMap::from([("site".into(), "berlin".into())]),
        ..Device::default()
    };
    let gateway = Device {
        id: "gw-1".into(),
        gateway_config: GatewayConfig {
            gateway_type: GatewayType::Gateway,
            gateway_auth_method: GatewayAuthMethod::AssociationOnly,
            ..GatewayConfig::default()
        },
        ..Device::default()
    };
    let blocked = Device {
        id: "old-1".into(),
        blocked: true,
        ..Device::default()
    };
    let mut made = vec![];
    for (path, device) in [
        (reg("fleet"), sensor),
        (reg("fleet"), gateway),
        (reg("lab"), blocked),
    ] {
        let d = store
            .create_device(&path, &device, at(0))
            .await
            .expect("device");
        made.push((path, d.num_id));
    }
    let (fleet_path, sensor_id) = made[0].clone();
    let sensor_ref = DeviceRef::NumId(sensor_id);
    for v in 0..12 {
        store
            .modify_config(
                &fleet_path,
                &sensor_ref,
                0,
                format!("fan={v}").as_bytes(),
                at(10 + v),
            )
            .await
            .expect("config");
    }
    store
        .ack_config(&fleet_path, sensor_id, 13, at(30))
        .await
        .expect("ack");
    for s in 0..3 {
        store
            .record_state(
                &fleet_path,
                sensor_id,
                &[0, 1, s, 255],
                at(40 + i64::from(s)),
            )
            .await
            .expect("state");
    }
    store
        .bind(&fleet_path, &DeviceRef::Id("gw-1".into()), &sensor_ref)
        .await
        .expect("bind");
    store
        .record_activity(&[
            Activity {
                registry: fleet_path.clone(),
                num_id: sensor_id,
                kind: ActivityKind::Error(Status {
                    code: 16,
                    message: "mqtt: SERVER: the token expired".into(),
                }),
                at: at(50),
            },
            Activity {
                registry: fleet_path.clone(),
                num_id: sensor_id,
                kind: ActivityKind::Heartbeat,
                at: at(51),
            },
        ])
        .await
        .expect("activity");
    // A claim that provisioned one device and was then revoked: its counters, times
    // and the device it made all move.
    let claim = ProvisioningClaim {
        registry: fleet_path.clone(),
        id: "factory-1".into(),
        credential: PublicKeyCredential {
            format: PublicKeyFormat::Es256Pem,
            key: "-----BEGIN PUBLIC KEY-----\nclaim\n-----END PUBLIC KEY-----\n".into(),
        },
        device_id_pattern: "^made-[0-9]+$".into(),
        max_devices: Some(5),
        expiration_time: Some(at(10_000)),
        device_template: DeviceTemplate {
            metadata: BTreeMap::from([("batch".into(), "7".into())]),
            log_level: LogLevel::Debug,
            ..DeviceTemplate::default()
        },
        devices_provisioned: 0,
        last_used_time: None,
        create_time: None,
        revoke_time: None,
        rotation_grace_secs: 3600,
    };
    store.create_claim(&claim, at(60)).await.expect("claim");
    let made_device = Device {
        id: "made-1".into(),
        credentials: vec![DeviceCredential {
            public_key: PublicKeyCredential {
                format: PublicKeyFormat::Es256Pem,
                key: "made-1 key".into(),
            },
            expiration_time: None,
        }],
        metadata: BTreeMap::from([(PROVISIONED_BY.into(), "factory-1".into())]),
        ..Device::default()
    };
    store
        .provision_device(&fleet_path, "factory-1", &made_device, at(61))
        .await
        .expect("provision");
    store
        .revoke_claim(&fleet_path, "factory-1", at(62))
        .await
        .expect("revoke");
    made
}

/// Everything the API can read back, in a comparable form.
async fn everything(
    store: &dyn Store,
) -> (
    Vec<DeviceRegistry>,
    Vec<Device>,
    Vec<Vec<DeviceConfig>>,
    Vec<Vec<DeviceState>>,
    Vec<ProvisioningClaim>,
) {
    let parent = LocationPath {
        project: "acme".into(),
        location: "europe-west1".into(),
    };
    let registries = store
        .list_registries(&parent, &PageRequest::default())
        .await
        .expect("registries")
        .items;
    let (mut devices, mut configs, mut states, mut claims) = (vec![], vec![], vec![], vec![]);
    for r in &registries {
        claims.extend(store.list_claims(&r.path).await.expect("claims"));
        let page = store
            .list_devices(&r.path, &DeviceFilter::default(), &PageRequest::default())
            .await
            .expect("devices");
        for d in page.items {
            let full = store
                .get_device(&r.path, &DeviceRef::NumId(d.num_id))
                .await
                .expect("device");
            let here = DeviceRef::NumId(d.num_id);
            configs.push(
                store
                    .list_config_versions(&r.path, &here, 0)
                    .await
                    .expect("configs"),
            );
            states.push(store.list_states(&r.path, &here, 0).await.expect("states"));
            devices.push(full);
        }
    }
    (registries, devices, configs, states, claims)
}

fn postgres_url() -> Option<String> {
    let url = tether_testkit::needs::env("TETHER_TEST_DATABASE_URL");
    tether_testkit::require("PostgreSQL (TETHER_TEST_DATABASE_URL)", url)
}

async fn drop_schema(url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(url)
        .await
        .expect("connect for cleanup");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&pool)
    .await
    .expect("drop test schema");
    pool.close().await;
}

#[tokio::test]
async fn sqlite_to_postgres_and_back_keeps_everything() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = format!("copy_{}", std::process::id());
    drop_schema(&url, &schema).await;
    let dir = tempfile::tempdir().expect("tmp");

    let sqlite = SqliteStore::open(&dir.path().join("tether.db"))
        .await
        .expect("sqlite");
    let made = fill(&sqlite).await;
    let before = everything(&sqlite).await;
    assert_eq!(before.1.len(), 4);
    assert_eq!(before.4.len(), 1, "the claim");
    assert_eq!(before.4[0].devices_provisioned, 1);
    let sensor_at = before
        .1
        .iter()
        .position(|d| d.id == "sensor-1")
        .expect("sensor-1");
    assert_eq!(
        before.2[sensor_at].len(),
        10,
        "the last 10 config versions are kept"
    );
    assert_eq!(before.3[sensor_at].len(), 3);

    let postgres = PostgresStore::connect_with_schema(&url, Some(&schema))
        .await
        .expect("PostgreSQL at TETHER_TEST_DATABASE_URL");
    let mut seen = vec![];
    let report = copy_database(&sqlite, &postgres, &mut |p| seen.push(p))
        .await
        .expect("copy to PostgreSQL");
    assert_eq!(
        report,
        CopyReport {
            registries: 2,
            devices: 4,
            configs: 13, // 10 kept for sensor-1, 1 each for the other three
            states: 3,
            bindings: 1,
            claims: 1,
        }
    );
    assert!(
        seen.contains(&CopyProgress::Table("devices", 4)),
        "{seen:?}"
    );
    assert!(seen.contains(&CopyProgress::Rows(4)), "{seen:?}");
    let pg_store: &dyn Store = &postgres;
    assert_eq!(
        everything(pg_store).await,
        before,
        "PostgreSQL holds the same"
    );
    let (fleet, sensor) = made[0].clone();
    let (_, gateway) = made[1].clone();
    assert!(
        pg_store
            .is_bound(&fleet, gateway, sensor)
            .await
            .expect("bound")
    );

    // A refused copy: the target is not empty, and stays as it was.
    let refused = copy_database(&sqlite, &postgres, &mut |_| {}).await;
    match refused {
        Err(StoreError::FailedPrecondition(m)) => {
            assert!(m.contains("already holds 2 registries"), "{m}")
        }
        other => panic!("a copy into a non-empty database: {other:?}"),
    }
    assert_eq!(everything(pg_store).await, before);

    // The copy keeps working: versions continue, new registries get new keys.
    let next = pg_store
        .modify_config(&fleet, &DeviceRef::NumId(sensor), 13, b"fan=next", at(60))
        .await
        .expect("config on the copy");
    assert_eq!(next.version, 14);
    pg_store
        .create_registry(&DeviceRegistry {
            path: reg("new-after-copy"),
            ..DeviceRegistry::default()
        })
        .await
        .expect("a registry made after the copy does not collide with a copied key");
    pg_store
        .create_device(
            &reg("new-after-copy"),
            &Device {
                id: "d".into(),
                ..Device::default()
            },
            at(61),
        )
        .await
        .expect("device in it");

    // And back into a fresh SQLite file.
    let back = SqliteStore::open(&dir.path().join("back.db"))
        .await
        .expect("sqlite");
    let report = copy_database(&postgres, &back, &mut |_| {})
        .await
        .expect("copy back to SQLite");
    assert_eq!(report.registries, 3);
    assert_eq!(everything(&back).await, everything(pg_store).await);
    back.create_registry(&DeviceRegistry {
        path: reg("made-in-sqlite"),
        ..DeviceRegistry::default()
    })
    .await
    .expect("SQLite keys continue after the copied ones");

    postgres.close().await;
    drop_schema(&url, &schema).await;
}
