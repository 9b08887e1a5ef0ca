//! Read-only questions to the catalog, for `pgx new` to look at a table before rendering a
//! pattern: whether it exists, and the answers of a pattern's inference queries (see
//! `pattern::infer`), run in a read-only transaction with a short statement timeout.

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};

use crate::error::{Error, Result};

/// How long one inference query may run: they read the catalog, and `pgx new` must not hang.
const STATEMENT_TIMEOUT: &str = "SET LOCAL statement_timeout = '10s'";

/// Whether `schema.name` is a table, view or other relation of the database.
pub async fn relation_exists(conn: &mut PgConnection, qualified: &str) -> Result<bool> {
    sqlx::query_scalar::<_, bool>("SELECT pg_catalog.to_regclass($1) IS NOT NULL")
        .bind(qualified)
        .fetch_one(conn)
        .await
        .map_err(|e| Error::database(format!("cannot look up {qualified}"), &e))
}

/// Runs `sql` (positional placeholders, each bound as text) read-only; its first row's first two
/// columns as text, or `None` without a row. `what` names the query in errors.
pub async fn first_pair(
    conn: &mut PgConnection,
    sql: &str,
    binds: &[Option<String>],
    what: &str,
) -> Result<Option<(Option<String>, Option<String>)>> {
    crate::db::exec(
        conn,
        "BEGIN READ ONLY",
        "cannot start a read-only transaction",
    )
    .await?;
    let result = async {
        crate::db::exec(conn, STATEMENT_TIMEOUT, "cannot set statement_timeout").await?;
        let mut query = sqlx::query(AssertSqlSafe(sql.to_string()));
        for b in binds {
            query = query.bind(b.clone());
        }
        let row = query
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| Error::database(what, &e))?;
        row.map(|r| {
            if r.len() < 2 {
                return Err(Error::Database {
                    context: what.to_string(),
                    message: "the query must return two columns: the value and a message".into(),
                });
            }
            let text = |i: usize| {
                r.try_get::<Option<String>, _>(i)
                    .map_err(|_| Error::Database {
                        context: what.to_string(),
                        message: format!("column {} must be text", i + 1),
                    })
            };
            Ok((text(0)?, text(1)?))
        })
        .transpose()
    }
    .await;
    let _ = crate::db::exec(conn, "ROLLBACK", "").await;
    result
}
