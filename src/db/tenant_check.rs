//! `pgx tenant check`: the tenant-isolated tables of a live database, each with the side doors
//! around its row security found now (a view or a SECURITY DEFINER function added since the
//! migration, a partition without the policies, a role granted BYPASSRLS, ...).
//!
//! The tables are those in the tenant pattern's registry (`tenant_tables` in pgx's own schema,
//! installed by the pgx_install pattern), and the doors are what that schema's `tenant_doors`
//! function reports: the very function each tenant migration consults before it changes
//! anything, so the migration and this check cannot disagree about what a door is.

use serde::Serialize;
use sqlx::Row;

use super::url::DbUrl;
use crate::error::{Error, Result};
use crate::sql;

/// One way around a table's row security.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Door {
    /// `view`, `materialized_view`, `definer`, `foreign_key`, `unique`, `row_security`,
    /// `policy`, `partition_policy`, `permissive_policy`, `index` or `bypassrls`.
    pub kind: String,
    /// The object at fault (a view, a function, a constraint, a partition, a role).
    pub object: String,
    /// What is wrong, naming the object.
    pub detail: String,
    /// What closes it.
    pub fix: String,
}

/// A tenant-isolated table and the doors found on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    pub table: String,
    pub column: String,
    pub doors: Vec<Door>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// pgx's schema, where the registry is.
    pub schema: String,
    /// Whether the schema holds the registry at all (no: nothing was ever isolated here).
    pub installed: bool,
    pub tables: Vec<Table>,
}

impl Report {
    pub fn doors(&self) -> usize {
        self.tables.iter().map(|t| t.doors.len()).sum()
    }
}

/// Checks every table in the registry in `pgx_schema` of the database at `url`.
pub async fn check(url: &DbUrl, pgx_schema: &str) -> Result<Report> {
    let schema = sql::quote_ident(pgx_schema).map_err(|reason| Error::Identifier {
        what: "pgx schema".into(),
        name: pgx_schema.into(),
        reason,
    })?;
    let mut conn = super::connect(url).await?;
    // Definitions are compared as the server prints them with this search_path, the one the
    // migrations recorded them with.
    super::exec(
        &mut conn,
        "SET search_path = pg_catalog, pg_temp",
        "cannot set search_path",
    )
    .await?;
    let installed: bool = sqlx::query_scalar(
        "SELECT pg_catalog.to_regclass(pg_catalog.format('%I.tenant_tables', $1::text)) IS NOT NULL",
    )
    .bind(pgx_schema)
    .fetch_one(&mut conn)
    .await
    .map_err(|e| Error::database("cannot look for the tenant registry", &e))?;
    let mut report = Report {
        schema: pgx_schema.to_string(),
        installed,
        tables: Vec::new(),
    };
    if !installed {
        super::close(conn).await;
        return Ok(report);
    }
    // A registered table that was dropped took its policies with it: nothing to check there.
    let query = format!(
        "SELECT r.relid::text, r.tenant_column::text, d.kind, d.object, d.detail, d.fix
         FROM {schema}.tenant_tables r
         LEFT JOIN LATERAL {schema}.tenant_doors(r.relid, r.tenant_column, r.global_unique) d ON true
         WHERE EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = r.relid)
         ORDER BY 1, 3, 4"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(query))
        .fetch_all(&mut conn)
        .await
        .map_err(|e| {
            Error::database(
                format!(
                    "cannot check the tenant tables registered in schema {schema} (run it as the role that applies the migrations)"
                ),
                &e,
            )
        })?;
    super::close(conn).await;
    for row in rows {
        let get = |i: usize| -> Result<Option<String>> {
            row.try_get(i)
                .map_err(|e| Error::database("cannot read the tenant check", &e))
        };
        let (table, column) = (get(0)?.unwrap_or_default(), get(1)?.unwrap_or_default());
        if report.tables.last().is_none_or(|t| t.table != table) {
            report.tables.push(Table {
                table,
                column,
                doors: Vec::new(),
            });
        }
        if let Some(kind) = get(2)? {
            let door = Door {
                kind,
                object: get(3)?.unwrap_or_default(),
                detail: get(4)?.unwrap_or_default(),
                fix: get(5)?.unwrap_or_default(),
            };
            if let Some(t) = report.tables.last_mut() {
                t.doors.push(door);
            }
        }
    }
    Ok(report)
}
