//! One conformance suite for every `Store`: each `check_*` function below runs against
//! SQLite in memory, a SQLite file and PostgreSQL.
//!
//! PostgreSQL is found only through `TETHER_TEST_DATABASE_URL`
//! (e.g. `postgres://postgres@127.0.0.1:5432/test`); each test works in a fresh schema
//! that is dropped afterwards. Without the variable the PostgreSQL tests print a notice
//! and pass, unless `TETHER_TEST_REQUIRE_ALL=1` (CI): then they fail, so CI never skips
//! them silently.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use tether_registry::model::{
    CertificateFormat, Device, DeviceCredential, DeviceRegistry, EventNotificationConfig,
    GatewayAuthMethod, GatewayConfig, GatewayType, HttpState, LogLevel, MqttState,
    PublicKeyCredential, PublicKeyFormat, RegistryCredential, StateNotificationConfig, Status,
    Timestamp, X509Details,
};
use tether_registry::names::{DeviceRef, LocationPath, RegistryPath};
use tether_registry::provisioning::{DeviceTemplate, PROVISIONED_BY, ProvisioningClaim};
use tether_registry::{
    Activity, ActivityKind, DeviceFilter, PageRequest, PostgresStore, SqliteStore, Store,
    StoreError,
};

type DynStore = Arc<dyn Store>;

const T0: i64 = 1_780_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(T0 + secs)
}

fn location(project: &str, loc: &str) -> LocationPath {
    LocationPath {
        project: project.into(),
        location: loc.into(),
    }
}

fn reg_path(id: &str) -> RegistryPath {
    RegistryPath {
        project: "p".into(),
        location: "l".into(),
        registry: id.into(),
    }
}

fn registry(id: &str) -> DeviceRegistry {
    DeviceRegistry {
        path: reg_path(id),
        ..DeviceRegistry::default()
    }
}

fn device(id: &str) -> Device {
    Device {
        id: id.into(),
        ..Device::default()
    }
}

fn gateway(id: &str) -> Device {
    Device {
        id: id.into(),
        gateway_config: GatewayConfig {
            gateway_type: GatewayType::Gateway,
            gateway_auth_method: GatewayAuthMethod::AssociationOnly,
            ..GatewayConfig::default()
        },
        ..Device::default()
    }
}

fn id(s: &str) -> DeviceRef {
    DeviceRef::Id(s.into())
}

fn page(size: usize, token: &str) -> PageRequest {
    PageRequest {
        page_size: size,
        page_token: token.into(),
    }
}

async fn with_registry(store: &DynStore, id: &str) -> RegistryPath {
    store
        .create_registry(&registry(id))
        .await
        .expect("create registry");
    reg_path(id)
}

async fn create(store: &DynStore, r: &RegistryPath, d: Device) -> Device {
    store
        .create_device(r, &d, at(0))
        .await
        .expect("create device")
}

// ---------------------------------------------------------------- registries

async fn check_registry_crud(store: DynStore) {
    let full = DeviceRegistry {
        path: reg_path("fleet"),
        event_notification_configs: vec![
            EventNotificationConfig {
                subfolder_matches: "alerts".into(),
                pubsub_topic_name: "projects/p/topics/alerts".into(),
            },
            EventNotificationConfig {
                subfolder_matches: String::new(),
                pubsub_topic_name: "projects/p/topics/all".into(),
            },
        ],
        state_notification_config: Some(StateNotificationConfig {
            pubsub_topic_name: "projects/p/topics/state".into(),
        }),
        mqtt_state: MqttState::Enabled,
        http_state: HttpState::Disabled,
        log_level: LogLevel::Debug,
        credentials: vec![RegistryCredential {
            format: CertificateFormat::X509Pem,
            certificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            x509_details: Some(X509Details {
                issuer: "CN=ca".into(),
                subject: "CN=ca".into(),
                start_time: Some(at(-10)),
                expiry_time: Some(at(1000)),
                signature_algorithm: "ECDSA_WITH_SHA256".into(),
                public_key_type: "ECDSA_P256".into(),
            }),
        }],
    };
    let created = store.create_registry(&full).await.expect("create");
    assert_eq!(created, full);
    assert_eq!(store.get_registry(&full.path).await, Ok(full.clone()));

    assert_eq!(
        store.create_registry(&registry("fleet")).await,
        Err(StoreError::AlreadyExists(
            "registry 'fleet' already exists in projects/p/locations/l".into()
        ))
    );
    // The same id in another location is another registry.
    let other = DeviceRegistry {
        path: RegistryPath {
            location: "l2".into(),
            ..reg_path("fleet")
        },
        ..DeviceRegistry::default()
    };
    assert_eq!(store.create_registry(&other).await, Ok(other.clone()));
    // The Pub/Sub API serves every topic a registry names, each once.
    assert_eq!(
        store.notification_topics().await,
        Ok(vec![
            "projects/p/topics/alerts".to_owned(),
            "projects/p/topics/all".to_owned(),
            "projects/p/topics/state".to_owned(),
        ])
    );

    let updated = DeviceRegistry {
        event_notification_configs: vec![],
        state_notification_config: None,
        mqtt_state: MqttState::Disabled,
        http_state: HttpState::Enabled,
        log_level: LogLevel::None,
        credentials: vec![],
        ..full.clone()
    };
    assert_eq!(store.update_registry(&updated).await, Ok(updated.clone()));
    assert_eq!(store.get_registry(&full.path).await, Ok(updated));
    assert_eq!(store.get_registry(&other.path).await, Ok(other.clone()));

    let missing = reg_path("nope");
    let not_found = Err(StoreError::NotFound(
        "registry 'nope' not found in projects/p/locations/l".into(),
    ));
    assert_eq!(store.get_registry(&missing).await, not_found);
    assert_eq!(store.update_registry(&registry("nope")).await, not_found);
    assert_eq!(
        store.delete_registry(&missing).await,
        Err(not_found_err("nope"))
    );

    assert_eq!(store.delete_registry(&full.path).await, Ok(()));
    assert!(matches!(
        store.get_registry(&full.path).await,
        Err(StoreError::NotFound(_))
    ));
    // The id can be used again after a delete.
    assert!(store.create_registry(&registry("fleet")).await.is_ok());
}

fn not_found_err(registry: &str) -> StoreError {
    StoreError::NotFound(format!(
        "registry '{registry}' not found in projects/p/locations/l"
    ))
}

async fn check_registry_list_paging(store: DynStore) {
    // Byte order (upper case before lower case, '-' before digits), on both stores.
    let ids = [
        "reg-b", "Reg-Z", "reg-a", "reg-10", "reg-9", "reg.x", "reg_y",
    ];
    for i in ids {
        store.create_registry(&registry(i)).await.expect("create");
    }
    let elsewhere = DeviceRegistry {
        path: RegistryPath {
            project: "p".into(),
            location: "other".into(),
            registry: "reg-other".into(),
        },
        ..DeviceRegistry::default()
    };
    store.create_registry(&elsewhere).await.expect("create");
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort();

    let all = store
        .list_registries(&location("p", "l"), &PageRequest::default())
        .await
        .expect("list");
    let got: Vec<_> = all.items.iter().map(|r| r.path.registry.as_str()).collect();
    assert_eq!(got, expected);
    assert_eq!(all.next_page_token, "");

    let mut token = String::new();
    let mut pages = Vec::new();
    loop {
        let p = store
            .list_registries(&location("p", "l"), &page(3, &token))
            .await
            .expect("page");
        pages.push(
            p.items
                .iter()
                .map(|r| r.path.registry.clone())
                .collect::<Vec<_>>(),
        );
        if p.next_page_token.is_empty() {
            break;
        }
        token = p.next_page_token;
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    assert_eq!(pages.concat(), expected);

    // Exactly a page: no token for an empty next page.
    let exact = store
        .list_registries(&location("p", "l"), &page(7, ""))
        .await
        .expect("page");
    assert_eq!((exact.items.len(), exact.next_page_token.as_str()), (7, ""));

    let empty = store
        .list_registries(&location("p", "none"), &PageRequest::default())
        .await
        .expect("list");
    assert!(empty.items.is_empty());

    assert_eq!(
        store
            .list_registries(&location("p", "l"), &page(3, "garbage"))
            .await,
        Err(StoreError::InvalidArgument(
            "pageToken 'garbage' is not one this server issued".into()
        ))
    );
}

async fn check_delete_registry_with_devices(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    create(&store, &r, device("dev-1")).await;
    assert_eq!(
        store.delete_registry(&r).await,
        Err(StoreError::FailedPrecondition(
            "registry 'projects/p/locations/l/registries/fleet' still has 1 device(s); delete \
             them first"
                .into()
        ))
    );
    assert!(store.get_registry(&r).await.is_ok());
    store.delete_device(&r, &id("dev-1")).await.expect("delete");
    assert_eq!(store.delete_registry(&r).await, Ok(()));
}

// ---------------------------------------------------------------- devices

fn full_device(id: &str) -> Device {
    Device {
        id: id.into(),
        credentials: vec![
            DeviceCredential {
                public_key: PublicKeyCredential {
                    format: PublicKeyFormat::Es256Pem,
                    key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
                },
                expiration_time: Some(at(3600)),
            },
            DeviceCredential {
                public_key: PublicKeyCredential {
                    format: PublicKeyFormat::RsaX509Pem,
                    key: "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n".into(),
                },
                expiration_time: None,
            },
        ],
        blocked: true,
        log_level: LogLevel::Info,
        metadata: BTreeMap::from([
            ("site".to_string(), "berlin".to_string()),
            ("rack".to_string(), "7 \"a\" ünï".to_string()),
        ]),
        gateway_config: GatewayConfig {
            gateway_type: GatewayType::NonGateway,
            gateway_auth_method: GatewayAuthMethod::DeviceAuthTokenOnly,
            ..GatewayConfig::default()
        },
        config: tether_registry::model::DeviceConfig {
            binary_data: b"\x00\x01cfg\xff".to_vec(),
            ..Default::default()
        },
        ..Device::default()
    }
}

async fn check_device_crud(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let input = full_device("dev-1");
    let created = store
        .create_device(&r, &input, at(5))
        .await
        .expect("create");
    assert!(created.num_id > 0 && created.num_id < (1 << 63));
    assert_eq!(created.config.version, 1);
    assert_eq!(created.config.cloud_update_time, Some(at(5)));
    assert_eq!(created.config.device_ack_time, None);
    assert_eq!(created.config.binary_data, input.config.binary_data);
    assert_eq!(created.state, None);
    assert_eq!(created.last_error_status, None);
    let expected = Device {
        num_id: created.num_id,
        config: created.config.clone(),
        ..input.clone()
    };
    assert_eq!(created, expected);

    assert_eq!(
        store.get_device(&r, &id("dev-1")).await,
        Ok(expected.clone())
    );
    assert_eq!(
        store
            .get_device(&r, &DeviceRef::NumId(created.num_id))
            .await,
        Ok(expected.clone())
    );

    // An empty config is version 1 too.
    let plain = create(&store, &r, device("dev-2")).await;
    assert_eq!(plain.config.version, 1);
    assert!(plain.config.binary_data.is_empty());
    assert_ne!(plain.num_id, created.num_id);

    assert_eq!(
        store.create_device(&r, &device("dev-1"), at(6)).await,
        Err(StoreError::AlreadyExists(
            "device 'dev-1' already exists in projects/p/locations/l/registries/fleet".into()
        ))
    );
    // Same id, other registry: a different device with its own numId.
    let r2 = with_registry(&store, "fleet-2").await;
    let twin = create(&store, &r2, device("dev-1")).await;
    assert_ne!(twin.num_id, created.num_id);
    // A numId is only found in its own registry.
    assert_eq!(
        store
            .get_device(&r2, &DeviceRef::NumId(created.num_id))
            .await,
        Err(StoreError::NotFound(format!(
            "device '{}' not found in projects/p/locations/l/registries/fleet-2",
            created.num_id
        )))
    );

    assert_eq!(
        store.get_device(&r, &id("dev-9")).await,
        Err(StoreError::NotFound(
            "device 'dev-9' not found in projects/p/locations/l/registries/fleet".into()
        ))
    );
    assert_eq!(
        store.get_device(&r, &DeviceRef::NumId(u64::MAX)).await,
        Err(StoreError::NotFound(format!(
            "device '{}' not found in projects/p/locations/l/registries/fleet",
            u64::MAX
        )))
    );
    assert_eq!(
        store
            .create_device(&reg_path("nope"), &device("d-1"), at(0))
            .await,
        Err(not_found_err("nope"))
    );
    assert_eq!(
        store.get_device(&reg_path("nope"), &id("dev-1")).await,
        Err(not_found_err("nope"))
    );

    // The registry and a device in one read (CONNECT's lookup): the same values as
    // the two reads; a missing device is `None`, only a missing registry an error.
    let fleet = store.get_registry(&r).await.expect("registry");
    for by in [id("dev-1"), DeviceRef::NumId(created.num_id)] {
        assert_eq!(
            store.get_registry_and_device(&r, &by).await,
            Ok((fleet.clone(), Some(expected.clone())))
        );
    }
    let fleet_2 = store.get_registry(&r2).await.expect("registry");
    for missing in [
        id("dev-9"),
        DeviceRef::NumId(created.num_id),
        DeviceRef::NumId(u64::MAX),
    ] {
        assert_eq!(
            store.get_registry_and_device(&r2, &missing).await,
            Ok((fleet_2.clone(), None))
        );
    }
    assert_eq!(
        store
            .get_registry_and_device(&reg_path("nope"), &id("dev-1"))
            .await,
        Err(not_found_err("nope"))
    );

    // update_device: mutable fields change; id, gateway type, config and times do not.
    let patch = Device {
        id: "ignored".into(),
        num_id: created.num_id,
        credentials: vec![],
        blocked: false,
        log_level: LogLevel::Error,
        metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
        gateway_config: GatewayConfig {
            gateway_type: GatewayType::Gateway,
            gateway_auth_method: GatewayAuthMethod::AssociationAndDeviceAuthToken,
            ..GatewayConfig::default()
        },
        config: Default::default(),
        ..Device::default()
    };
    let updated = store.update_device(&r, &patch).await.expect("update");
    let want = Device {
        credentials: vec![],
        blocked: false,
        log_level: LogLevel::Error,
        metadata: patch.metadata.clone(),
        gateway_config: GatewayConfig {
            gateway_type: GatewayType::NonGateway,
            gateway_auth_method: GatewayAuthMethod::AssociationAndDeviceAuthToken,
            ..GatewayConfig::default()
        },
        ..expected.clone()
    };
    assert_eq!(updated, want);
    assert_eq!(store.get_device(&r, &id("dev-1")).await, Ok(want));
    assert!(matches!(
        store
            .update_device(&r, &Device { num_id: 42, ..Device::default() })
            .await,
        Err(StoreError::NotFound(m)) if m == "device '42' not found in projects/p/locations/l/registries/fleet"
    ));
    // The numId of a device of another registry is not found here.
    assert!(matches!(
        store
            .update_device(
                &r2,
                &Device {
                    num_id: created.num_id,
                    ..Device::default()
                }
            )
            .await,
        Err(StoreError::NotFound(_))
    ));

    assert_eq!(store.delete_device(&r, &id("dev-1")).await, Ok(()));
    assert!(matches!(
        store
            .get_device(&r, &DeviceRef::NumId(created.num_id))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_device(&r, &id("dev-1")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .delete_device(&r, &DeviceRef::NumId(plain.num_id))
            .await,
        Ok(())
    );
    // The twin in the other registry is untouched.
    assert_eq!(store.get_device(&r2, &id("dev-1")).await, Ok(twin));
}

async fn check_failed_calls_change_nothing(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let first = create(&store, &r, full_device("dev-1")).await;
    let dup = Device {
        blocked: false,
        config: tether_registry::model::DeviceConfig {
            binary_data: b"other".to_vec(),
            ..Default::default()
        },
        ..device("dev-1")
    };
    assert!(matches!(
        store.create_device(&r, &dup, at(9)).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store
            .create_device(&reg_path("nope"), &device("dev-2"), at(9))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let listed = store
        .list_devices(&r, &DeviceFilter::default(), &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.items, vec![first.clone()]);
    assert_eq!(
        store.list_config_versions(&r, &id("dev-1"), 0).await,
        Ok(vec![first.config.clone()])
    );
    // A lost compare-and-set stores nothing.
    assert!(matches!(
        store.modify_config(&r, &id("dev-1"), 5, b"x", at(10)).await,
        Err(StoreError::Aborted(_))
    ));
    assert_eq!(store.get_device(&r, &id("dev-1")).await, Ok(first));
    assert_eq!(
        store
            .list_registries(&location("p", "l"), &PageRequest::default())
            .await
            .map(|p| p.items.len()),
        Ok(1)
    );
}

async fn check_num_ids_unique(store: DynStore) {
    let mut seen = BTreeSet::new();
    for reg in ["reg-a", "reg-b"] {
        let r = with_registry(&store, reg).await;
        for i in 0..40 {
            let d = create(&store, &r, device(&format!("dev-{i}"))).await;
            assert!(d.num_id >= 1_000_000_000_000, "numIds look like IoT Core's");
            assert!(d.num_id < (1 << 63));
            assert!(seen.insert(d.num_id), "numId {} issued twice", d.num_id);
        }
    }
}

async fn check_list_devices(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let other = with_registry(&store, "other").await;
    create(&store, &other, device("dev-0")).await;
    let mut all = Vec::new();
    for i in 0..9 {
        all.push(create(&store, &r, device(&format!("dev-{i}"))).await);
    }
    for i in 0..3 {
        all.push(create(&store, &r, gateway(&format!("gw-{i}"))).await);
    }
    all.sort_by_key(|d| d.num_id);
    let num_ids = |items: &[Device]| items.iter().map(|d| d.num_id).collect::<Vec<_>>();
    let ids = |items: &[Device]| {
        let mut v: Vec<String> = items.iter().map(|d| d.id.clone()).collect();
        v.sort();
        v
    };
    let list = |filter: DeviceFilter| {
        let store = store.clone();
        let r = r.clone();
        async move {
            store
                .list_devices(&r, &filter, &PageRequest::default())
                .await
                .map(|p| p.items)
        }
    };

    let everything = list(DeviceFilter::default()).await.expect("list");
    assert_eq!(everything, all, "ordered by numId, with config and state");

    // Paging by 5: 5, 5, 2, stable and complete.
    let mut token = String::new();
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    loop {
        let p = store
            .list_devices(&r, &DeviceFilter::default(), &page(5, &token))
            .await
            .expect("page");
        sizes.push(p.items.len());
        seen.extend(p.items);
        if p.next_page_token.is_empty() {
            break;
        }
        token = p.next_page_token;
    }
    assert_eq!(sizes, vec![5, 5, 2]);
    assert_eq!(num_ids(&seen), num_ids(&all));
    assert_eq!(
        store
            .list_devices(&r, &DeviceFilter::default(), &page(5, "bm9wZQ"))
            .await,
        Err(StoreError::InvalidArgument(
            "pageToken 'bm9wZQ' is not one this server issued".into()
        ))
    );
    // A registry-list token is not a device-list token.
    store
        .create_registry(&registry("zzz"))
        .await
        .expect("create");
    let reg_token = store
        .list_registries(&location("p", "l"), &page(1, ""))
        .await
        .expect("list")
        .next_page_token;
    assert!(matches!(
        store
            .list_devices(&r, &DeviceFilter::default(), &page(5, &reg_token))
            .await,
        Err(StoreError::InvalidArgument(_))
    ));

    // By ids and numIds.
    let f = DeviceFilter {
        device_ids: vec!["dev-1".into(), "gw-2".into(), "missing".into()],
        ..DeviceFilter::default()
    };
    assert_eq!(ids(&list(f).await.expect("list")), vec!["dev-1", "gw-2"]);
    let f = DeviceFilter {
        device_num_ids: vec![all[0].num_id, all[3].num_id, u64::MAX],
        ..DeviceFilter::default()
    };
    assert_eq!(
        num_ids(&list(f).await.expect("list")),
        vec![all[0].num_id, all[3].num_id]
    );
    let f = DeviceFilter {
        device_num_ids: vec![u64::MAX],
        ..DeviceFilter::default()
    };
    assert_eq!(list(f).await, Ok(vec![]));
    let f = DeviceFilter {
        device_ids: vec!["dev-1".into(), "dev-2".into()],
        device_num_ids: vec![all.iter().find(|d| d.id == "dev-2").map_or(0, |d| d.num_id)],
        ..DeviceFilter::default()
    };
    assert_eq!(ids(&list(f).await.expect("list")), vec!["dev-2"]);

    // By gateway type (unspecified counts as a non-gateway).
    let f = DeviceFilter {
        gateway_type: Some(GatewayType::Gateway),
        ..DeviceFilter::default()
    };
    assert_eq!(
        ids(&list(f).await.expect("list")),
        vec!["gw-0", "gw-1", "gw-2"]
    );
    let f = DeviceFilter {
        gateway_type: Some(GatewayType::NonGateway),
        ..DeviceFilter::default()
    };
    assert_eq!(list(f).await.map(|v| v.len()), Ok(9));

    // By associations, the other side given as an id or a numId.
    for dev in ["dev-1", "dev-2"] {
        store.bind(&r, &id("gw-0"), &id(dev)).await.expect("bind");
    }
    store
        .bind(&r, &id("gw-1"), &id("dev-1"))
        .await
        .expect("bind");
    let gw0 = all.iter().find(|d| d.id == "gw-0").map_or(0, |d| d.num_id);
    let dev1 = all.iter().find(|d| d.id == "dev-1").map_or(0, |d| d.num_id);
    for gw in [id("gw-0"), DeviceRef::NumId(gw0)] {
        let f = DeviceFilter {
            associations_gateway: Some(gw),
            ..DeviceFilter::default()
        };
        assert_eq!(ids(&list(f).await.expect("list")), vec!["dev-1", "dev-2"]);
    }
    for dev in [id("dev-1"), DeviceRef::NumId(dev1)] {
        let f = DeviceFilter {
            associations_device: Some(dev),
            ..DeviceFilter::default()
        };
        assert_eq!(ids(&list(f).await.expect("list")), vec!["gw-0", "gw-1"]);
    }
    let f = DeviceFilter {
        associations_gateway: Some(id("gw-0")),
        device_ids: vec!["dev-2".into()],
        ..DeviceFilter::default()
    };
    assert_eq!(ids(&list(f).await.expect("list")), vec!["dev-2"]);
    let f = DeviceFilter {
        associations_gateway: Some(id("gw-2")),
        ..DeviceFilter::default()
    };
    assert_eq!(list(f).await, Ok(vec![]));
    let f = DeviceFilter {
        associations_gateway: Some(id("gw-9")),
        ..DeviceFilter::default()
    };
    assert_eq!(
        list(f).await,
        Err(StoreError::NotFound(
            "device 'gw-9' not found in projects/p/locations/l/registries/fleet".into()
        ))
    );
    // Paging with a filter.
    let f = DeviceFilter {
        gateway_type: Some(GatewayType::NonGateway),
        ..DeviceFilter::default()
    };
    let first = store
        .list_devices(&r, &f, &page(4, ""))
        .await
        .expect("page");
    let second = store
        .list_devices(&r, &f, &page(4, &first.next_page_token))
        .await
        .expect("page");
    let third = store
        .list_devices(&r, &f, &page(4, &second.next_page_token))
        .await
        .expect("page");
    assert_eq!(
        (first.items.len(), second.items.len(), third.items.len()),
        (4, 4, 1)
    );
    assert_eq!(third.next_page_token, "");
    assert!(matches!(
        store
            .list_devices(
                &reg_path("nope"),
                &DeviceFilter::default(),
                &PageRequest::default()
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
}

// ---------------------------------------------------------------- configs and states

async fn check_config_cas_and_history(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let d = create(&store, &r, device("dev-1")).await;
    let dev = id("dev-1");

    let v2 = store
        .modify_config(&r, &dev, 0, b"two", at(2))
        .await
        .expect("unconditional");
    assert_eq!(
        v2,
        tether_registry::model::DeviceConfig {
            version: 2,
            cloud_update_time: Some(at(2)),
            device_ack_time: None,
            binary_data: b"two".to_vec(),
        }
    );
    let v3 = store
        .modify_config(&r, &DeviceRef::NumId(d.num_id), 2, b"three", at(3))
        .await
        .expect("compare-and-set");
    assert_eq!(v3.version, 3);
    assert_eq!(
        store.modify_config(&r, &dev, 2, b"late", at(4)).await,
        Err(StoreError::Aborted(
            "the config version to update is 2 but the current version is 3".into()
        ))
    );
    assert_eq!(
        store.modify_config(&r, &dev, 9, b"ahead", at(4)).await,
        Err(StoreError::Aborted(
            "the config version to update is 9 but the current version is 3".into()
        ))
    );
    let got = store.get_device(&r, &dev).await.expect("get");
    assert_eq!(got.config, v3);

    // 15 more: history keeps the newest 10, newest first.
    for v in 4..=18 {
        let c = store
            .modify_config(&r, &dev, v - 1, format!("v{v}").as_bytes(), at(v))
            .await
            .expect("modify");
        assert_eq!(c.version, v);
    }
    let kept = store.list_config_versions(&r, &dev, 0).await.expect("list");
    assert_eq!(
        kept.iter().map(|c| c.version).collect::<Vec<_>>(),
        (9..=18).rev().collect::<Vec<_>>()
    );
    assert_eq!(kept[0].binary_data, b"v18");
    assert_eq!(kept[0].cloud_update_time, Some(at(18)));
    let three = store.list_config_versions(&r, &dev, 3).await.expect("list");
    assert_eq!(
        three.iter().map(|c| c.version).collect::<Vec<_>>(),
        vec![18, 17, 16]
    );
    assert_eq!(
        store
            .list_config_versions(&r, &dev, 50)
            .await
            .map(|v| v.len()),
        Ok(10)
    );
    // Versions keep growing after pruning: never reused.
    assert_eq!(
        store
            .modify_config(&r, &dev, 0, b"next", at(30))
            .await
            .map(|c| c.version),
        Ok(19)
    );
    assert!(matches!(
        store.modify_config(&r, &dev, 1, b"old", at(31)).await,
        Err(StoreError::Aborted(_))
    ));
    assert_eq!(
        store.get_device(&r, &dev).await.map(|d| d.config.version),
        Ok(19)
    );

    // Unknown device, unknown registry.
    assert_eq!(
        store.modify_config(&r, &id("dev-9"), 0, b"", at(1)).await,
        Err(StoreError::NotFound(
            "device 'dev-9' not found in projects/p/locations/l/registries/fleet".into()
        ))
    );
    assert!(matches!(
        store.list_config_versions(&r, &id("dev-9"), 0).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .modify_config(&reg_path("nope"), &dev, 0, b"", at(1))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn check_ack_config(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let d = create(&store, &r, device("dev-1")).await;
    let dev = id("dev-1");
    store
        .modify_config(&r, &dev, 0, b"v2", at(2))
        .await
        .expect("modify");
    store.ack_config(&r, d.num_id, 2, at(5)).await.expect("ack");
    // A repeated ack keeps the first device ack time.
    store.ack_config(&r, d.num_id, 2, at(6)).await.expect("ack");
    let got = store.get_device(&r, &dev).await.expect("get");
    assert_eq!(got.config.device_ack_time, Some(at(5)));
    assert_eq!(got.last_config_ack_time, Some(at(6)));
    let v1 = store.list_config_versions(&r, &dev, 0).await.expect("list");
    assert_eq!(v1[1].version, 1);
    assert_eq!(v1[1].device_ack_time, None);

    for v in 3..=14 {
        store
            .modify_config(&r, &dev, 0, b"x", at(v))
            .await
            .expect("modify");
    }
    // Version 2 is no longer kept: the ack is ignored.
    assert_eq!(store.ack_config(&r, d.num_id, 2, at(20)).await, Ok(()));
    assert_eq!(store.ack_config(&r, d.num_id, 99, at(21)).await, Ok(()));
    let got = store.get_device(&r, &dev).await.expect("get");
    assert_eq!(got.last_config_ack_time, Some(at(6)));
    assert_eq!(got.config.device_ack_time, None);

    assert!(matches!(
        store.ack_config(&r, 12345, 1, at(1)).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn check_states(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let d = create(&store, &r, device("dev-1")).await;
    let dev = id("dev-1");
    assert_eq!(store.list_states(&r, &dev, 0).await, Ok(vec![]));
    for i in 1..=12 {
        let s = store
            .record_state(&r, d.num_id, format!("s{i}").as_bytes(), at(i))
            .await
            .expect("state");
        assert_eq!(s.update_time, Some(at(i)));
    }
    let states = store.list_states(&r, &dev, 0).await.expect("list");
    assert_eq!(states.len(), 10);
    assert_eq!(states[0].binary_data, b"s12");
    assert_eq!(states[9].binary_data, b"s3");
    assert_eq!(states[9].update_time, Some(at(3)));
    let two = store
        .list_states(&r, &DeviceRef::NumId(d.num_id), 2)
        .await
        .expect("list");
    assert_eq!(
        two.iter()
            .map(|s| s.binary_data.clone())
            .collect::<Vec<_>>(),
        vec![b"s12".to_vec(), b"s11".to_vec()]
    );
    let got = store.get_device(&r, &dev).await.expect("get");
    let (_, joined) = store
        .get_registry_and_device(&r, &dev)
        .await
        .expect("get with registry");
    assert_eq!(joined.as_ref(), Some(&got));
    assert_eq!(got.state.map(|s| s.binary_data), Some(b"s12".to_vec()));
    assert_eq!(got.last_state_time, Some(at(12)));
    // Two states at the same time are both kept, in arrival order.
    store
        .record_state(&r, d.num_id, b"same-a", at(12))
        .await
        .expect("state");
    store
        .record_state(&r, d.num_id, b"same-b", at(12))
        .await
        .expect("state");
    let latest = store.list_states(&r, &dev, 2).await.expect("list");
    assert_eq!(latest[0].binary_data, b"same-b");
    assert_eq!(latest[1].binary_data, b"same-a");

    assert!(matches!(
        store.record_state(&r, 4242, b"x", at(1)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.list_states(&r, &id("dev-9"), 0).await,
        Err(StoreError::NotFound(_))
    ));
}

// ---------------------------------------------------------------- gateways

async fn check_bindings(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let gw = create(&store, &r, gateway("gw-1")).await;
    let d = create(&store, &r, device("dev-1")).await;
    let plain = create(&store, &r, device("dev-2")).await;

    assert_eq!(store.is_bound(&r, gw.num_id, d.num_id).await, Ok(false));
    assert_eq!(store.bind(&r, &id("gw-1"), &id("dev-1")).await, Ok(()));
    assert_eq!(
        store
            .bind(
                &r,
                &DeviceRef::NumId(gw.num_id),
                &DeviceRef::NumId(d.num_id)
            )
            .await,
        Ok(()),
        "binding twice is fine"
    );
    assert_eq!(store.is_bound(&r, gw.num_id, d.num_id).await, Ok(true));
    assert_eq!(store.is_bound(&r, d.num_id, gw.num_id).await, Ok(false));
    assert_eq!(store.is_bound(&r, gw.num_id, u64::MAX).await, Ok(false));
    let r2 = with_registry(&store, "fleet-2").await;
    assert_eq!(store.is_bound(&r2, gw.num_id, d.num_id).await, Ok(false));

    assert_eq!(
        store.bind(&r, &id("dev-2"), &id("dev-1")).await,
        Err(StoreError::FailedPrecondition(
            "device 'dev-2' in projects/p/locations/l/registries/fleet is not a gateway; only \
             devices created with gatewayConfig.gatewayType GATEWAY can have devices bound"
                .into()
        ))
    );
    let gw2 = create(&store, &r, gateway("gw-2")).await;
    assert!(matches!(
        store.bind(&r, &id("gw-1"), &id("gw-2")).await,
        Err(StoreError::FailedPrecondition(m)) if m.contains("is a gateway")
    ));
    assert!(matches!(
        store.bind(&r, &id("gw-1"), &id("dev-9")).await,
        Err(StoreError::NotFound(m)) if m.contains("'dev-9'")
    ));
    assert!(matches!(
        store.bind(&r, &id("gw-9"), &id("dev-1")).await,
        Err(StoreError::NotFound(m)) if m.contains("'gw-9'")
    ));

    // At most 10 gateways per device.
    for i in 3..=11 {
        create(&store, &r, gateway(&format!("gw-{i}"))).await;
    }
    for i in 2..=10 {
        store
            .bind(&r, &id(&format!("gw-{i}")), &id("dev-1"))
            .await
            .expect("bind");
    }
    assert_eq!(
        store.bind(&r, &id("gw-11"), &id("dev-1")).await,
        Err(StoreError::FailedPrecondition(
            "device 'dev-1' in projects/p/locations/l/registries/fleet is already bound to 10 \
             gateways, the most allowed; unbind one first"
                .into()
        ))
    );
    assert_eq!(store.bind(&r, &id("gw-10"), &id("dev-1")).await, Ok(()));

    // Unbind.
    assert_eq!(store.unbind(&r, &id("gw-10"), &id("dev-1")).await, Ok(()));
    assert_eq!(
        store.unbind(&r, &id("gw-10"), &id("dev-1")).await,
        Err(StoreError::NotFound(
            "device 'dev-1' is not bound to gateway 'gw-10' in \
             projects/p/locations/l/registries/fleet"
                .into()
        ))
    );
    assert!(matches!(
        store.unbind(&r, &id("gw-1"), &id("dev-9")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.bind(&r, &id("gw-11"), &id("dev-1")).await, Ok(()));

    // A gateway with bound devices cannot be deleted; deleting the device unbinds it.
    store
        .bind(&r, &id("gw-2"), &id("dev-2"))
        .await
        .expect("bind");
    assert_eq!(
        store.delete_device(&r, &id("gw-1")).await,
        Err(StoreError::FailedPrecondition(
            "gateway 'gw-1' in projects/p/locations/l/registries/fleet still has 1 device(s) \
             bound; unbind them first"
                .into()
        ))
    );
    assert!(store.get_device(&r, &id("gw-1")).await.is_ok());
    store.delete_device(&r, &id("dev-1")).await.expect("delete");
    assert_eq!(store.is_bound(&r, gw.num_id, d.num_id).await, Ok(false));
    assert_eq!(store.delete_device(&r, &id("gw-1")).await, Ok(()));
    assert_eq!(store.is_bound(&r, gw2.num_id, plain.num_id).await, Ok(true));
}

// ---------------------------------------------------------------- activity

async fn check_activity(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let d = create(&store, &r, device("dev-1")).await;
    let gone = create(&store, &r, device("dev-2")).await;
    store.delete_device(&r, &id("dev-2")).await.expect("delete");
    let act = |kind, secs| Activity {
        registry: r.clone(),
        num_id: d.num_id,
        kind,
        at: at(secs),
    };
    let err = |code, message: &str| {
        ActivityKind::Error(Status {
            code,
            message: message.into(),
        })
    };
    let batch = vec![
        act(ActivityKind::Heartbeat, 10),
        act(ActivityKind::Heartbeat, 5), // older: ignored
        act(ActivityKind::Event, 11),
        act(ActivityKind::State, 12),
        act(ActivityKind::ConfigSent, 13),
        act(err(16, "JWT expired"), 14),
        act(err(3, "older error"), 1),
        act(
            ActivityKind::GatewayAccess {
                gateway_id: "gw-1".into(),
            },
            15,
        ),
        Activity {
            num_id: gone.num_id,
            ..act(ActivityKind::Heartbeat, 50)
        },
        Activity {
            num_id: u64::MAX,
            ..act(ActivityKind::Heartbeat, 50)
        },
        Activity {
            registry: reg_path("other"),
            ..act(ActivityKind::Event, 60)
        },
    ];
    assert_eq!(store.record_activity(&batch).await, Ok(()));
    assert_eq!(store.record_activity(&[]).await, Ok(()));
    let got = store.get_device(&r, &id("dev-1")).await.expect("get");
    assert_eq!(got.last_heartbeat_time, Some(at(10)));
    assert_eq!(got.last_event_time, Some(at(11)));
    assert_eq!(got.last_state_time, Some(at(12)));
    assert_eq!(got.last_config_send_time, Some(at(13)));
    assert_eq!(got.last_error_time, Some(at(14)));
    assert_eq!(
        got.last_error_status,
        Some(Status {
            code: 16,
            message: "JWT expired".into()
        })
    );
    assert_eq!(got.gateway_config.last_accessed_gateway_id, "gw-1");
    assert_eq!(got.gateway_config.last_accessed_gateway_time, Some(at(15)));

    // A later batch moves times forward and replaces the error.
    store
        .record_activity(&[
            act(ActivityKind::Heartbeat, 20),
            act(err(7, "newer"), 21),
            act(
                ActivityKind::GatewayAccess {
                    gateway_id: "gw-2".into(),
                },
                22,
            ),
        ])
        .await
        .expect("record");
    let got = store.get_device(&r, &id("dev-1")).await.expect("get");
    assert_eq!(got.last_heartbeat_time, Some(at(20)));
    assert_eq!(got.last_error_status.map(|s| s.code), Some(7));
    assert_eq!(got.gateway_config.last_accessed_gateway_id, "gw-2");
}

/// A fleet's batch: many devices, each more than once and out of order, spread over
/// several statements, beside numIds that are no device and a device of another
/// registry named under this one.
async fn check_activity_in_bulk(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let other = with_registry(&store, "other").await;
    let mut devices = Vec::new();
    for i in 0..40 {
        devices.push(create(&store, &r, device(&format!("dev-{i}"))).await);
    }
    let stranger = create(&store, &other, device("dev-0")).await;
    let act = |registry: &RegistryPath, num_id, kind, secs| Activity {
        registry: registry.clone(),
        num_id,
        kind,
        at: at(secs),
    };
    // dev-0 already has a later event: the batch must not move it back.
    store
        .record_activity(&[act(&r, devices[0].num_id, ActivityKind::Event, 500)])
        .await
        .expect("record");

    let mut batch = Vec::new();
    // 1,200 numIds that are no device, spread over the whole range: the devices'
    // records land in different statements among them.
    let step = u64::try_from(i64::MAX).expect("positive") / 1_200;
    for k in 1..=1_200u64 {
        batch.push(act(&r, k * step + 1, ActivityKind::Event, 900));
    }
    for (i, d) in devices.iter().enumerate() {
        let i = i64::try_from(i).expect("small");
        // The later time first for even devices, second for odd ones.
        let (a, b) = if i % 2 == 0 {
            (100 + i, 50)
        } else {
            (50, 100 + i)
        };
        batch.push(act(&r, d.num_id, ActivityKind::Event, a));
        batch.push(act(&r, d.num_id, ActivityKind::Heartbeat, 10 + i));
        batch.push(act(&r, d.num_id, ActivityKind::Event, b));
    }
    // The other registry's device, named under this registry: nothing happens.
    batch.push(act(&r, stranger.num_id, ActivityKind::Event, 999));
    batch.push(act(&other, stranger.num_id, ActivityKind::State, 7));
    assert_eq!(store.record_activity(&batch).await, Ok(()));

    for (i, d) in devices.iter().enumerate() {
        let i = i64::try_from(i).expect("small");
        let got = store
            .get_device(&r, &DeviceRef::NumId(d.num_id))
            .await
            .expect("get");
        let event = if i == 0 { 500 } else { 100 + i };
        assert_eq!(got.last_event_time, Some(at(event)), "{}", d.id);
        assert_eq!(got.last_heartbeat_time, Some(at(10 + i)), "{}", d.id);
        assert_eq!(got.last_state_time, None, "{}", d.id);
    }
    let got = store.get_device(&other, &id("dev-0")).await.expect("get");
    assert_eq!(got.last_event_time, None);
    assert_eq!(got.last_state_time, Some(at(7)));
}

// ---------------------------------------------------------------- concurrency

async fn check_concurrent_compare_and_set(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    create(&store, &r, device("dev-1")).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            let r = r.clone();
            tokio::spawn(async move {
                store
                    .modify_config(&r, &id("dev-1"), 1, format!("c{i}").as_bytes(), at(i))
                    .await
            })
        })
        .collect();
    let mut won = Vec::new();
    let mut aborted = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(c) => won.push(c.version),
            Err(StoreError::Aborted(m)) => {
                assert_eq!(
                    m,
                    "the config version to update is 1 but the current version is 2"
                );
                aborted += 1;
            }
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((won, aborted), (vec![2], 49));
    let versions = store
        .list_config_versions(&r, &id("dev-1"), 0)
        .await
        .expect("list");
    assert_eq!(
        versions.iter().map(|c| c.version).collect::<Vec<_>>(),
        vec![2, 1]
    );
}

async fn check_concurrent_unconditional(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    create(&store, &r, device("dev-1")).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            let r = r.clone();
            tokio::spawn(async move {
                store
                    .modify_config(&r, &id("dev-1"), 0, format!("c{i}").as_bytes(), at(i))
                    .await
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for t in tasks {
        let c = t.await.expect("task").expect("unconditional modify");
        assert!(versions.insert(c.version), "version {} twice", c.version);
    }
    assert_eq!(versions, (2..=51).collect::<BTreeSet<i64>>());
    let kept = store
        .list_config_versions(&r, &id("dev-1"), 0)
        .await
        .expect("list");
    assert_eq!(
        kept.iter().map(|c| c.version).collect::<Vec<_>>(),
        (42..=51).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        store
            .get_device(&r, &id("dev-1"))
            .await
            .map(|d| d.config.version),
        Ok(51)
    );
}

async fn check_concurrent_binds_respect_the_limit(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    create(&store, &r, device("dev-1")).await;
    for i in 0..15 {
        create(&store, &r, gateway(&format!("gw-{i}"))).await;
    }
    let tasks: Vec<_> = (0..15)
        .map(|i| {
            let store = store.clone();
            let r = r.clone();
            tokio::spawn(async move { store.bind(&r, &id(&format!("gw-{i}")), &id("dev-1")).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => ok += 1,
            Err(StoreError::FailedPrecondition(m)) => assert!(m.contains("10 gateways"), "{m}"),
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(ok, 10);
    let f = DeviceFilter {
        associations_device: Some(id("dev-1")),
        ..DeviceFilter::default()
    };
    assert_eq!(
        store
            .list_devices(&r, &f, &PageRequest::default())
            .await
            .map(|p| p.items.len()),
        Ok(10)
    );
}

async fn check_concurrent_creates_of_one_id(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let r = r.clone();
            tokio::spawn(async move { store.create_device(&r, &device("dev-1"), at(i)).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(ok, 1);
}

fn claim(r: &RegistryPath, id: &str, max: Option<u64>, expires: Option<i64>) -> ProvisioningClaim {
    ProvisioningClaim {
        registry: r.clone(),
        id: id.into(),
        credential: PublicKeyCredential {
            format: PublicKeyFormat::Es256Pem,
            key: format!("claim key of {id}"),
        },
        device_id_pattern: "^sensor-[0-9]+$".into(),
        max_devices: max,
        expiration_time: expires.map(at),
        device_template: DeviceTemplate {
            metadata: BTreeMap::from([("batch".into(), "42".into())]),
            log_level: LogLevel::Error,
            ..DeviceTemplate::default()
        },
        devices_provisioned: 7, // output only: ignored on create
        last_used_time: Some(at(1)),
        create_time: None,
        revoke_time: None,
        rotation_grace_secs: 3600,
    }
}

/// A device as the server builds it for a claim: its own key and the claim's mark.
fn provisioned(id: &str, key: &str, claim_id: &str) -> Device {
    Device {
        id: id.into(),
        credentials: vec![DeviceCredential {
            public_key: PublicKeyCredential {
                format: PublicKeyFormat::Es256Pem,
                key: key.into(),
            },
            expiration_time: None,
        }],
        metadata: BTreeMap::from([(PROVISIONED_BY.into(), claim_id.into())]),
        ..Device::default()
    }
}

async fn check_provisioning_claims(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let created = store
        .create_claim(&claim(&r, "factory", Some(2), Some(100)), at(5))
        .await
        .expect("create claim");
    assert_eq!(created.devices_provisioned, 0, "counters start at zero");
    assert_eq!(created.last_used_time, None);
    assert_eq!(created.create_time, Some(at(5)));
    assert_eq!(created.device_template.log_level, LogLevel::Error);
    assert_eq!(created.max_devices, Some(2));
    assert_eq!(created.expiration_time, Some(at(100)));
    assert_eq!(
        store.get_claim(&r, "factory").await.expect("get claim"),
        created
    );
    assert!(matches!(
        store.create_claim(&claim(&r, "factory", None, None), at(6)).await,
        Err(StoreError::AlreadyExists(m)) if m.contains("factory")
    ));
    assert!(matches!(
        store.get_claim(&r, "nope").await,
        Err(StoreError::NotFound(m)) if m.contains("nope")
    ));

    // The first provision creates; the same request again answers the same device.
    let first = store
        .provision_device(
            &r,
            "factory",
            &provisioned("sensor-1", "k1", "factory"),
            at(10),
        )
        .await
        .expect("provision");
    assert!(first.created);
    let again = store
        .provision_device(
            &r,
            "factory",
            &provisioned("sensor-1", "k1", "factory"),
            at(11),
        )
        .await
        .expect("retry");
    assert!(!again.created, "a retry creates nothing");
    assert_eq!(again.device.num_id, first.device.num_id);
    // Another key for the same id is refused, and the device keeps its key.
    assert!(matches!(
        store
            .provision_device(&r, "factory", &provisioned("sensor-1", "k2", "factory"), at(12))
            .await,
        Err(StoreError::AlreadyExists(m)) if m.contains("sensor-1")
    ));
    // A device made by hand is never taken over by a claim.
    create(&store, &r, device("sensor-9")).await;
    assert!(matches!(
        store
            .provision_device(
                &r,
                "factory",
                &provisioned("sensor-9", "k9", "factory"),
                at(12)
            )
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    let hand_made = store.get_device(&r, &id("sensor-9")).await.expect("get");
    assert!(hand_made.credentials.is_empty(), "no key was added");
    let got = store.get_claim(&r, "factory").await.expect("get claim");
    assert_eq!(got.devices_provisioned, 1, "the retry did not count");
    assert_eq!(got.last_used_time, Some(at(10)));

    store
        .provision_device(
            &r,
            "factory",
            &provisioned("sensor-2", "k2", "factory"),
            at(20),
        )
        .await
        .expect("second device");
    match store
        .provision_device(
            &r,
            "factory",
            &provisioned("sensor-3", "k3", "factory"),
            at(21),
        )
        .await
    {
        Err(StoreError::FailedPrecondition(m)) => {
            assert!(m.contains("maximum of 2 devices"), "{m}");
        }
        other => panic!("a full claim must refuse: {other:?}"),
    }
    assert!(matches!(
        store.get_device(&r, &id("sensor-3")).await,
        Err(StoreError::NotFound(_))
    ));

    // Expired, then revoked: each refusal says which and when.
    store
        .create_claim(&claim(&r, "short", None, Some(30)), at(5))
        .await
        .expect("create claim");
    match store
        .provision_device(&r, "short", &provisioned("sensor-4", "k4", "short"), at(30))
        .await
    {
        Err(StoreError::FailedPrecondition(m)) => assert!(m.contains("expired at"), "{m}"),
        other => panic!("an expired claim must refuse: {other:?}"),
    }
    store
        .create_claim(&claim(&r, "gone", None, None), at(5))
        .await
        .expect("create claim");
    let revoked = store
        .revoke_claim(&r, "gone", at(40))
        .await
        .expect("revoke");
    assert_eq!(revoked.revoke_time, Some(at(40)));
    let twice = store
        .revoke_claim(&r, "gone", at(50))
        .await
        .expect("revoke");
    assert_eq!(
        twice.revoke_time,
        Some(at(40)),
        "the first revocation stays"
    );
    match store
        .provision_device(&r, "gone", &provisioned("sensor-5", "k5", "gone"), at(41))
        .await
    {
        Err(StoreError::FailedPrecondition(m)) => assert!(m.contains("revoked at"), "{m}"),
        other => panic!("a revoked claim must refuse: {other:?}"),
    }
    let listed: Vec<String> = store
        .list_claims(&r)
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, ["factory", "gone", "short"]);

    // Claims go with their registry.
    let other = with_registry(&store, "empty").await;
    store
        .create_claim(&claim(&other, "c", None, None), at(5))
        .await
        .expect("create claim");
    store
        .delete_registry(&other)
        .await
        .expect("delete registry");
    store
        .create_registry(&registry("empty"))
        .await
        .expect("again");
    assert!(store.list_claims(&other).await.expect("list").is_empty());
}

async fn check_concurrent_provisions_of_one_id(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    store
        .create_claim(&claim(&r, "factory", Some(100), None), at(0))
        .await
        .expect("claim");
    // Ten requests with the same key (a device retrying everywhere) and ten with
    // others (a cloned id): one device, made once, with the first key that won.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let r = r.clone();
            let key = if i % 2 == 0 {
                "same".to_string()
            } else {
                format!("other-{i}")
            };
            tokio::spawn(async move {
                let d = provisioned("sensor-1", &key, "factory");
                (key, store.provision_device(&r, "factory", &d, at(i)).await)
            })
        })
        .collect();
    let mut created = 0;
    let mut winner = None;
    for t in tasks {
        let (key, result) = t.await.expect("task");
        match result {
            Ok(p) => {
                if p.created {
                    created += 1;
                    winner = Some(key);
                }
            }
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(created, 1, "exactly one provision creates the device");
    let device = store.get_device(&r, &id("sensor-1")).await.expect("device");
    assert_eq!(device.credentials.len(), 1);
    assert_eq!(Some(device.credentials[0].public_key.key.clone()), winner);
    let claim = store.get_claim(&r, "factory").await.expect("claim");
    assert_eq!(claim.devices_provisioned, 1);
}

async fn check_large_filters(store: DynStore) {
    // IoT Core allowed 10,000 ids and 10,000 numIds in one list call.
    let r = with_registry(&store, "fleet").await;
    let d = create(&store, &r, device("dev-1")).await;
    let mut device_ids: Vec<String> = (0..9_999).map(|i| format!("missing-{i}")).collect();
    device_ids.push("dev-1".into());
    let mut device_num_ids: Vec<u64> = (1..10_000).collect();
    device_num_ids.push(d.num_id);
    let f = DeviceFilter {
        device_ids,
        device_num_ids,
        ..DeviceFilter::default()
    };
    let got = store
        .list_devices(&r, &f, &PageRequest::default())
        .await
        .expect("list");
    assert_eq!(got.items, vec![d]);
}

async fn check_compact_keeps_everything(store: DynStore) {
    let r = with_registry(&store, "fleet").await;
    let kept = create(&store, &r, full_device("dev-1")).await;
    for i in 0..20 {
        create(&store, &r, device(&format!("gone-{i}"))).await;
        store
            .delete_device(&r, &id(&format!("gone-{i}")))
            .await
            .expect("delete");
    }
    let done = store.compact().await.expect("compact");
    assert!(done.bytes_before > 0, "{done:?}");
    assert_eq!(store.get_device(&r, &id("dev-1")).await, Ok(kept));
    // Writes go on afterwards.
    create(&store, &r, device("dev-2")).await;
}

// ---------------------------------------------------------------- harness

/// A store under test and how to clean up after it.
struct Harness {
    store: DynStore,
    cleanup: Cleanup,
}

enum Cleanup {
    Nothing,
    Dir(tempfile::TempDir),
    Schema {
        url: String,
        schema: String,
        store: Arc<PostgresStore>,
    },
}

impl Harness {
    async fn sqlite_memory() -> Harness {
        Harness {
            store: Arc::new(SqliteStore::in_memory().await.expect("in-memory SQLite")),
            cleanup: Cleanup::Nothing,
        }
    }

    async fn sqlite_file() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("sub dir/tether.db"))
            .await
            .expect("SQLite file");
        Harness {
            store: Arc::new(store),
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// `None` when PostgreSQL is not configured (and skipping is allowed).
    async fn postgres() -> Option<Harness> {
        let url = postgres_url()?;
        let schema = format!("t_{:016x}", random());
        let store = Arc::new(
            PostgresStore::connect_with_schema(&url, Some(&schema))
                .await
                .expect("PostgreSQL at TETHER_TEST_DATABASE_URL"),
        );
        Some(Harness {
            store: store.clone(),
            cleanup: Cleanup::Schema { url, schema, store },
        })
    }

    async fn finish(self) {
        drop(self.store);
        match self.cleanup {
            Cleanup::Nothing => {}
            Cleanup::Dir(dir) => dir.close().expect("remove temp dir"),
            Cleanup::Schema { url, schema, store } => {
                store.close().await;
                let pool = sqlx::PgPool::connect(&url)
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
        }
    }
}

fn random() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}

fn postgres_url() -> Option<String> {
    let url = tether_testkit::needs::env("TETHER_TEST_DATABASE_URL");
    tether_testkit::require(
        "PostgreSQL (TETHER_TEST_DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/test)",
        url,
    )
}

/// Runs a check and cleans up even when it panics, then re-raises the panic.
async fn run<F, Fut>(harness: Harness, check: F)
where
    F: FnOnce(DynStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(check(harness.store.clone())).await;
    harness.finish().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("check did not finish: {e}");
    }
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run(super::Harness::sqlite_memory().await, super::$check).await;
                }
            )*
        }
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run(super::Harness::sqlite_file().await, super::$check).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    if let Some(h) = super::Harness::postgres().await {
                        super::run(h, super::$check).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    check_registry_crud,
    check_registry_list_paging,
    check_delete_registry_with_devices,
    check_device_crud,
    check_failed_calls_change_nothing,
    check_num_ids_unique,
    check_list_devices,
    check_config_cas_and_history,
    check_ack_config,
    check_states,
    check_bindings,
    check_activity,
    check_activity_in_bulk,
    check_concurrent_compare_and_set,
    check_concurrent_unconditional,
    check_concurrent_binds_respect_the_limit,
    check_concurrent_creates_of_one_id,
    check_provisioning_claims,
    check_concurrent_provisions_of_one_id,
    check_large_filters,
    check_compact_keeps_everything,
);
