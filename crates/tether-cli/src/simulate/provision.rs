//! Set-up through the admin API: the registry (created or reused) and one device per
//! connection with its own ES256 key (or one shared key), then a JWT for each.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use serde_json::json;
use tether_keys::PrivateKey;
use tether_keys::convert::pem_text;
use tether_keys::generate::{KeySpec, generate};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::admin::Conn;
use crate::admin::client::{CliError, Client};
use crate::clock::unix_micros;

/// Admin calls in flight at once while creating devices.
const PARALLEL: usize = 32;
/// Token lifetime: one hour (IoT Core allows up to 24 h).
const TOKEN_SECS: u64 = 3600;

/// What the simulator needs to know about the server.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// `projects/P/locations/L/registries/R`.
    pub registry_path: String,
    /// Project id (the JWT audience).
    pub project: String,
    /// Device ids.
    pub ids: Vec<String>,
}

/// The Pub/Sub-style topic a created registry's telemetry goes to.
pub fn telemetry_topic(project: &str, registry: &str) -> String {
    format!("projects/{project}/topics/{registry}-telemetry")
}

fn key() -> anyhow::Result<PrivateKey> {
    generate(KeySpec::Es256).map_err(|e| anyhow!("cannot generate an ES256 key: {e}"))
}

/// Mints one ES256 token per key for `aud`, valid for an hour from now.
pub fn tokens(keys: &[PrivateKey], aud: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let iat = unix_micros() / 1_000_000;
    let claims = tether_jwt::Claims {
        aud,
        iat,
        exp: iat + TOKEN_SECS,
    };
    let mut buf = vec![0u8; 1024];
    keys.iter()
        .map(|k| {
            let signer = k.signer().map_err(|e| anyhow!("key: {e}"))?;
            let n = tether_jwt::mint(&signer, &claims, &mut buf)
                .map_err(|e| anyhow!("cannot mint a token: {e:?}"))?;
            Ok(buf[..n].to_vec())
        })
        .collect()
}

/// The key in `path` (PKCS#8 PEM), or a new one written there (mode 0600) when the
/// file does not exist.
pub fn key_file(path: &Path) -> anyhow::Result<PrivateKey> {
    if path.exists() {
        let parsed = tether_keys::load(path)
            .map_err(|e| anyhow!("cannot read the key in {}: {e}", path.display()))?;
        return parsed
            .private_key()
            .cloned()
            .ok_or_else(|| anyhow!("{} holds no private key", path.display()));
    }
    let key = key()?;
    let pem = pem_text("PRIVATE KEY", &key.pkcs8_der());
    crate::keys::output::write_file(path, pem.as_bytes(), false, true)?;
    Ok(key)
}

/// The fleet that an earlier run created: nothing is checked or created.
pub fn existing(conn: &Conn, registry: &str, prefix: &str, n: usize) -> anyhow::Result<Fleet> {
    Ok(Fleet {
        registry_path: conn.registry(registry)?,
        project: conn.project.clone().unwrap_or_default(),
        ids: (0..n).map(|i| format!("{prefix}{i}")).collect(),
    })
}

/// `n` keys: distinct, or one repeated when `shared`.
pub fn keys(n: usize, shared: bool) -> anyhow::Result<Vec<PrivateKey>> {
    if shared {
        let k = key()?;
        return Ok(vec![k; n]);
    }
    (0..n).map(|_| key()).collect()
}

fn ignore_exists(r: Result<serde_json::Value, CliError>) -> Result<bool, CliError> {
    match r {
        Ok(_) => Ok(true),
        Err(CliError::Api { status: 409, .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates (or reuses) the registry only; the devices `PREFIX0…` will register
/// themselves (`--provision`).
pub async fn registry_only(
    conn: &Conn,
    registry: &str,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Fleet> {
    let client = Client::new(conn)?;
    ensure_registry(&client, conn, registry).await?;
    existing(conn, registry, prefix, n)
}

async fn ensure_registry(client: &Client, conn: &Conn, registry: &str) -> anyhow::Result<()> {
    let project = conn.project.clone().unwrap_or_default();
    let location = conn.location()?;
    let registry_path = conn.registry(registry)?;
    ignore_exists(
        client
            .post(
                &format!("{location}/registries"),
                json!({
                    "id": registry,
                    "eventNotificationConfigs": [
                        {"pubsubTopicName": telemetry_topic(&project, registry)}
                    ],
                }),
            )
            .await,
    )
    .with_context(|| format!("cannot create the registry {registry_path}"))?;
    Ok(())
}

/// Creates (or reuses) the registry and the devices, registering `public` keys.
pub async fn provision(
    conn: &Conn,
    registry: &str,
    prefix: &str,
    public: &[PrivateKey],
) -> anyhow::Result<Fleet> {
    let project = conn.project.clone().unwrap_or_default();
    let client = Arc::new(Client::new(conn)?);
    let registry_path = conn.registry(registry)?;
    ensure_registry(&client, conn, registry).await?;
    let gate = Arc::new(Semaphore::new(PARALLEL));
    let mut tasks = JoinSet::new();
    let mut ids = Vec::with_capacity(public.len());
    for (i, key) in public.iter().enumerate() {
        let id = format!("{prefix}{i}");
        ids.push(id.clone());
        let pem = pem_text("PUBLIC KEY", key.public_key().spki_der());
        let (client, gate, path) = (client.clone(), gate.clone(), registry_path.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let credentials = json!([{"publicKey": {"format": "ES256_PEM", "key": pem}}]);
            let created = ignore_exists(
                client
                    .post(
                        &format!("{path}/devices"),
                        json!({"id": id, "credentials": credentials}),
                    )
                    .await,
            )?;
            if !created {
                // Reuse the device; register this run's key.
                client
                    .patch(
                        &format!("{path}/devices/{id}"),
                        &["credentials"],
                        json!({"credentials": credentials}),
                    )
                    .await?;
            }
            Ok::<_, CliError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a provisioning task failed")?
            .context("cannot create a device")?;
    }
    Ok(Fleet {
        registry_path,
        project,
        ids,
    })
}
