//! The scale-out store: PostgreSQL (`--database postgres://…`).

use sqlx::any::AnyPoolOptions;

use crate::migrate;
use crate::sql::{Dialect, SqlStore};
use crate::store::{StoreError, StoreResult};

/// A [`Store`](crate::Store) in a PostgreSQL database: connected with
/// [`SqlStore::connect`] or [`SqlStore::connect_with_schema`].
pub type PostgresStore = SqlStore;

impl SqlStore {
    /// Connects and applies pending migrations (several nodes may start at once: sqlx
    /// takes an advisory lock while migrating).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with_schema(url, None).await
    }

    /// Like [`connect`](Self::connect), but every connection works in `schema` (created
    /// if missing): `SET search_path` at connect. Lets tests, or several deployments,
    /// share one database.
    pub async fn connect_with_schema(url: &str, schema: Option<&str>) -> StoreResult<Self> {
        if let Some(s) = schema
            && (s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(StoreError::InvalidArgument(format!(
                "schema name '{s}' must be letters, digits and '_'"
            )));
        }
        sqlx::any::install_default_drivers();
        let redacted = redact(url);
        let fail = |e: sqlx::Error| {
            StoreError::unavailable(format!("cannot connect to PostgreSQL at {redacted}"), e)
        };
        // One plain connection first: a wrong URL or a server that is down fails at once
        // with its reason, instead of after the pool's acquire timeout.
        let probe = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
            .await
            .map_err(fail)?;
        let _ = sqlx::Connection::close(probe).await;
        let mut options = AnyPoolOptions::new().max_connections(16);
        if let Some(schema) = schema {
            let schema = schema.to_string();
            options = options.after_connect(move |conn, _| {
                let set = format!("SET search_path TO {schema}");
                Box::pin(async move {
                    sqlx::query(sqlx::AssertSqlSafe(set))
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await.map_err(fail)?;
        if let Some(schema) = schema {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&pool)
            .await
            .map_err(fail)?;
        }
        migrate::migrator(Dialect::Postgres)
            .run(&pool)
            .await
            .map_err(|e| migrate::failed("PostgreSQL", e))?;
        Ok(SqlStore::new(pool, Dialect::Postgres))
    }
}

/// A database URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgres://tether:s3cret@db:5432/t"),
            "postgres://tether:***@db:5432/t"
        );
        assert_eq!(redact("sqlite:///var/tether.db"), "sqlite:///var/tether.db");
    }
}
