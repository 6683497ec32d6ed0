//! The schema migrations, embedded from `migrations/{sqlite,postgres}` and applied at
//! open. sqlx records applied versions with their checksums in `_sqlx_migrations`, so a
//! rerun applies nothing and an edited, already-applied file is refused.
//!
//! The files are listed here rather than read by `sqlx::migrate!` so the crate needs
//! no proc macros (and no second SQLite build for the host); the names follow sqlx's
//! `<version>_<description>.sql` convention, so `sqlx migrate info` reads them too.

use std::borrow::Cow;

use sqlx::AssertSqlSafe;
use sqlx::SqlSafeStr;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};

use crate::sql::Dialect;
use crate::store::StoreError;

/// (version, description, SQLite text, PostgreSQL text). Append; never edit.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        20261125000001,
        "initial",
        include_str!("../migrations/sqlite/20261125000001_initial.sql"),
        include_str!("../migrations/postgres/20261125000001_initial.sql"),
    ),
    (
        20261205000001,
        "provisioning_claims",
        include_str!("../migrations/sqlite/20261205000001_provisioning_claims.sql"),
        include_str!("../migrations/postgres/20261205000001_provisioning_claims.sql"),
    ),
    (
        20261206000001,
        "devices_by_registry",
        include_str!("../migrations/sqlite/20261206000001_devices_by_registry.sql"),
        include_str!("../migrations/postgres/20261206000001_devices_by_registry.sql"),
    ),
];

/// The migrator of a dialect.
pub(crate) fn migrator(dialect: Dialect) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sqlite, postgres)| {
                let sql = match dialect {
                    Dialect::Sqlite => sqlite,
                    Dialect::Postgres => postgres,
                };
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Why migrating `backend` failed: the database failing is
/// [`Unavailable`](StoreError::Unavailable); a schema this build does not know (applied
/// by a newer build, edited, or left half-applied) is [`Corrupt`](StoreError::Corrupt).
pub(crate) fn failed(backend: &str, e: MigrateError) -> StoreError {
    match e {
        MigrateError::Execute(_) | MigrateError::ExecuteMigration(..) => {
            StoreError::unavailable(format!("{backend} migration failed"), e)
        }
        other => StoreError::corrupt(format!("{backend} migration failed: {other}")),
    }
}
