//! Statements built at run time (the filters of `devices.list`): fixed SQL fragments,
//! with every value bound as a parameter.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe};

use super::db;
use crate::store::StoreResult;

/// A bind value of a statement built at run time.
pub(super) enum Arg {
    Int(i64),
    Text(String),
}

/// A statement built at run time from fixed fragments; values are always bound.
#[derive(Default)]
pub(super) struct Built {
    pub(super) sql: String,
    args: Vec<Arg>,
}

impl Built {
    /// Adds a value and returns its placeholder.
    pub(super) fn arg(&mut self, value: Arg) -> String {
        self.args.push(value);
        format!("${}", self.args.len())
    }

    pub(super) async fn fetch_all(self, conn: &mut AnyConnection) -> StoreResult<Vec<AnyRow>> {
        // Filter lists change the text every time: do not fill the statement cache.
        let mut query = sqlx::query(AssertSqlSafe(self.sql)).persistent(false);
        for arg in self.args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        query.fetch_all(conn).await.map_err(db)
    }
}
