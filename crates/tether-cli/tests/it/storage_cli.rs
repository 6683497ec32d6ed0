//! `tether storage copy` as an operator runs it: a server's SQLite data copied to a new
//! database, a server started on the copy serves the same device (same numId); the
//! refusals (target not empty, no source, the source itself) with their exit codes.
//! The copy to PostgreSQL is tested in tether-registry's `tests/copy.rs`.

use std::path::Path;
use std::process::{Command, Output};

use crate::common;

const KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENxuJLM8nEPdT/SC96SPSF74qVxnA\n1oY9t0KduDT1ohy3Ig/5G1Nj3dCnmklowwSfFMJxUA02ZE4rYHkbZSxYag==\n-----END PUBLIC KEY-----\n";

fn tether() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    for var in ["TETHER_ADMIN_TOKEN", "TETHER_SERVER", "TETHER_DATABASE"] {
        c.env_remove(var);
    }
    c.env("TETHER_PROJECT", "acme");
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    tether()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("tether runs")
}

fn admin(server: &common::Served, data: &Path, args: &[&str]) -> String {
    let out = tether()
        .args(args)
        .args(["--server", &server.url, "--token-file"])
        .arg(data.join("admin-token"))
        .output()
        .expect("tether runs");
    assert!(
        out.status.success(),
        "tether {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `devices describe dev-1` as JSON text.
fn describe(server: &common::Served, data: &Path) -> String {
    admin(
        server,
        data,
        &[
            "devices",
            "describe",
            "dev-1",
            "--registry",
            "fleet",
            "--format",
            "json",
        ],
    )
}

fn num_id(described: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(described).expect("JSON");
    v["numId"].as_str().expect("numId").to_string()
}

#[test]
fn copy_a_servers_database_and_serve_from_the_copy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let data = dir.join("data");
    std::fs::write(dir.join("dev.pub.pem"), KEY).expect("key");
    let original = {
        let server = common::serve(tether(), &data);
        admin(&server, &data, &["registries", "create", "fleet"]);
        admin(
            &server,
            &data,
            &[
                "devices",
                "create",
                "dev-1",
                "--registry",
                "fleet",
                "--public-key",
                &format!("path={}", dir.join("dev.pub.pem").display()),
            ],
        );
        admin(
            &server,
            &data,
            &[
                "devices",
                "configs",
                "update",
                "--config-data",
                "fan=1",
                "--device",
                "dev-1",
                "--registry",
                "fleet",
            ],
        );
        num_id(&describe(&server, &data))
    }; // the server stops here, as the docs ask before a copy

    let copy = dir.join("copy.db");
    let to = format!("sqlite://{}", copy.display());
    let out = run(dir, &["storage", "copy", "--data-dir", "data", "--to", &to]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("copied sqlite → sqlite: 1 registries, 1 devices, 2 config versions"),
        "{stdout}"
    );

    let mut on_copy = tether();
    on_copy.env("TETHER_DATABASE", &to);
    let data2 = dir.join("data2");
    let server = common::serve(on_copy, &data2);
    let described = describe(&server, &data2);
    assert_eq!(num_id(&described), original, "the device keeps its numId");
    assert!(described.contains("BEGIN PUBLIC KEY"), "{described}");
    drop(server);

    // Refusals: a target that already holds registries; no source; the source itself.
    let out = run(dir, &["storage", "copy", "--data-dir", "data", "--to", &to]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds 1 registry"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        dir,
        &["storage", "copy", "--data-dir", "nowhere", "--to", &to],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no source database"));
    assert!(!dir.join("nowhere").exists(), "no empty source was created");
    let out = run(
        dir,
        &[
            "storage",
            "copy",
            "--data-dir",
            "data",
            "--to",
            "mysql://db/t",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'mysql://…' is not supported"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let itself = format!("sqlite://{}", data.join("tether.db").display());
    let out = run(
        dir,
        &["storage", "copy", "--data-dir", "data", "--to", &itself],
    );
    assert_eq!(out.status.code(), Some(2));
}

/// A SQLite registry in `data` that held 3,000 devices (1 KB of metadata each), all
/// deleted again: the file keeps its peak size.
fn sqlite_after_deleting_3000_devices(data: &Path) {
    use tether_registry::Store as _;
    use tether_registry::model::{Device, DeviceRegistry, Timestamp};
    use tether_registry::names::{DeviceRef, RegistryPath};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        std::fs::create_dir_all(data).expect("data dir");
        let store = tether_registry::SqliteStore::open(&data.join("tether.db"))
            .await
            .expect("store");
        let fleet = RegistryPath {
            project: "acme".into(),
            location: "us-central1".into(),
            registry: "fleet".into(),
        };
        store
            .create_registry(&DeviceRegistry {
                path: fleet.clone(),
                ..DeviceRegistry::default()
            })
            .await
            .expect("registry");
        let metadata = std::collections::BTreeMap::from([("notes".to_owned(), "x".repeat(1_000))]);
        for n in 0..3_000 {
            let device = Device {
                id: format!("d{n}"),
                metadata: metadata.clone(),
                ..Device::default()
            };
            store
                .create_device(&fleet, &device, Timestamp(n))
                .await
                .expect("device");
        }
        for n in 0..3_000 {
            store
                .delete_device(&fleet, &DeviceRef::Id(format!("d{n}")))
                .await
                .expect("delete");
        }
        store.close().await;
    });
}

#[test]
fn compact_shrinks_the_sqlite_file_after_deletes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    sqlite_after_deleting_3000_devices(&data);
    let on_disk = || {
        ["tether.db", "tether.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(data.join(f)).ok())
            .map(|m| m.len())
            .sum::<u64>()
    };
    let before = on_disk();
    assert!(before > 3_000_000, "the peak size stays: {before} bytes");

    let out = run(dir.path(), &["storage", "compact", "--data-dir", "data"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("compacted the sqlite database"), "{said}");
    let after = on_disk();
    assert!(after < before / 10, "tether.db {before} → {after} bytes");

    // A mistyped data directory is refused, and no empty database is made there.
    let out = run(dir.path(), &["storage", "compact", "--data-dir", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database at"));
    assert!(!dir.path().join("nowhere").exists());
}
