//! The history table `_sqlx_migrations`, exactly as sqlx keeps it: where it is (resolved once,
//! and only trusted when the migrating role could have made it itself), and the status of each
//! migration it implies.
//!
//! sqlx finds the table through `search_path`, whose first entry is `"$user"`: a role allowed
//! to create schemas can create one named after the migrating role and put its own
//! `_sqlx_migrations` there, with a trigger that then runs with the migrator's rights. So the
//! schema sqlx would use is looked up once, and the table in it is refused unless the
//! migrating role, a superuser or a role named in `trusted_roles` owns it, it is a plain table,
//! and it has no triggers or rules (pgx and sqlx create none); nor is it created in a schema
//! named after the migrating role but owned by another. A table pgx created in a schema another
//! role owns (`public`, owned by the database's owner) can be dropped and replaced by that
//! owner, but the replacement is then that role's, and refused. Every later statement names the
//! table qualified.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgConnection;

use super::files::Migration;
use crate::error::{Error, Result};
use crate::sql;

/// The history table's name, as sqlx has it.
pub const TABLE: &str = "_sqlx_migrations";

/// The history table, with sqlx's columns, in `qualified` (a quoted `schema.table`).
pub(super) fn table_ddl(qualified: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {qualified} (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)"
    )
}

/// Where the history table is (or will be created).
#[derive(Debug, Clone)]
pub(super) struct HistoryTable {
    pub schema: String,
    /// `"schema"._sqlx_migrations`, quoted for SQL.
    pub qualified: String,
    pub exists: bool,
}

/// Roles whose objects the runner trusts as its own: the current user, superusers, the roles
/// named in pgx.yaml, and `pg_database_owner` (owner of `public` since PostgreSQL 15) when the
/// database's owner is one of those. `$1` is the list of named roles.
pub(super) const TRUSTED_ROLES: &str = "
    SELECT r.oid FROM pg_catalog.pg_roles r
    WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER OR r.rolsuper
       OR r.rolname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[])
    UNION
    SELECT r.oid FROM pg_catalog.pg_roles r, pg_catalog.pg_database d, pg_catalog.pg_roles o
    WHERE r.rolname OPERATOR(pg_catalog.=) 'pg_database_owner'
      AND d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
      AND o.oid OPERATOR(pg_catalog.=) d.datdba
      AND (o.rolname OPERATOR(pg_catalog.=) CURRENT_USER OR o.rolsuper
           OR o.rolname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]))";

/// Finds the history table of `schema` (a tenant's), or else the one sqlx would use: in the
/// first schema of the session's effective `search_path` that holds one, else the first
/// schema (where `CREATE TABLE _sqlx_migrations` would put it). Refuses one that is not
/// trusted (see the module documentation).
pub(super) async fn resolve(
    conn: &mut PgConnection,
    schema: Option<&str>,
    trusted_roles: &[String],
) -> Result<HistoryTable> {
    let query = format!(
        "WITH trusted AS ({TRUSTED_ROLES}),
         path AS (
             SELECT p.nsp, p.ord
             FROM pg_catalog.unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS p(nsp, ord)
             WHERE $2::pg_catalog.text IS NULL
             UNION ALL SELECT $2::pg_catalog.name, 1 WHERE $2::pg_catalog.text IS NOT NULL)
         SELECT path.nsp::pg_catalog.text,
                pg_catalog.pg_get_userbyid(n.nspowner),
                n.nspowner OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT oid FROM trusted)),
                c.relkind::pg_catalog.text,
                pg_catalog.pg_get_userbyid(c.relowner),
                c.relowner OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT oid FROM trusted)),
                ARRAY(SELECT t.tgname::pg_catalog.text FROM pg_catalog.pg_trigger t
                      WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid AND NOT t.tgisinternal ORDER BY 1),
                ARRAY(SELECT r.rulename::pg_catalog.text FROM pg_catalog.pg_rewrite r
                      WHERE r.ev_class OPERATOR(pg_catalog.=) c.oid ORDER BY 1),
                CURRENT_USER::pg_catalog.text,
                path.nsp OPERATOR(pg_catalog.=) CURRENT_USER
         FROM path
         JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) path.nsp
         LEFT JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid
                                       AND c.relname OPERATOR(pg_catalog.=) '{TABLE}'
         ORDER BY c.oid IS NULL, path.ord
         LIMIT 1"
    );
    type Found = (
        String,
        String,
        bool,
        Option<String>,
        Option<String>,
        Option<bool>,
        Vec<String>,
        Vec<String>,
        String,
        bool,
    );
    let found: Option<Found> = sqlx::query_as(sqlx::AssertSqlSafe(query))
        .bind(trusted_roles)
        .bind(schema)
        .fetch_optional(conn)
        .await
        .map_err(|e| Error::database(format!("cannot look for {TABLE}"), &e))?;
    let Some((
        nsp,
        nsp_owner,
        nsp_trusted,
        kind,
        owner,
        owner_trusted,
        triggers,
        rules,
        me,
        named_after_me,
    )) = found
    else {
        return Err(match schema {
            Some(s) => Error::Database {
                context: format!("cannot use schema {s:?}"),
                message: "it does not exist".into(),
            },
            None => Error::Usage(
                "no schema of search_path exists, so there is nowhere to keep _sqlx_migrations: create one, or set search_path".into(),
            ),
        });
    };
    let qualified = format!(
        "{}.{TABLE}",
        sql::quote_ident(&nsp).map_err(|reason| Error::Identifier {
            what: "schema".into(),
            name: nsp.clone(),
            reason,
        })?
    );
    let refuse = |problem: String| Error::UntrustedHistory {
        table: qualified.clone(),
        problem,
    };
    let trust_hint = |role: &str| {
        format!(
            "a trigger or rule it adds would run with your rights (you are {me:?}); if role {role:?} is one you trust, list it under trusted_roles in pgx.yaml (or run pgx as that role), otherwise find out who made it"
        )
    };
    match (kind.as_deref(), owner, owner_trusted) {
        // A schema named after the migrating role comes first through "$user"; owned by
        // another role, it is the classic trap (CVE-2018-1058), never a set-up.
        (None, ..) if named_after_me && !nsp_trusted => Err(refuse(format!(
            "it would be created in schema {nsp:?}, which comes first in search_path (\"$user\") but is owned by role {nsp_owner:?}: whatever pgx and your migrations create there, that role can replace; drop that schema, or give your role a search_path without \"$user\" (ALTER ROLE ... SET search_path = public)"
        ))),
        (None, ..) => Ok(HistoryTable {
            schema: nsp,
            qualified,
            exists: false,
        }),
        (Some(k), ..) if k != "r" => Err(refuse(format!(
            "it is not a plain table (relkind {k:?}); sqlx and pgx only ever create a table"
        ))),
        (Some(_), Some(owner), Some(false)) => Err(refuse(format!(
            "it is owned by role {owner:?}; {}",
            trust_hint(&owner)
        ))),
        _ if !triggers.is_empty() => Err(refuse(format!(
            "it has trigger(s) {} that pgx did not create (pgx and sqlx create none): they would run at every migration with your rights; check what they do and drop them",
            triggers.join(", ")
        ))),
        _ if !rules.is_empty() => Err(refuse(format!(
            "it has rule(s) {} that pgx did not create: drop them",
            rules.join(", ")
        ))),
        _ => Ok(HistoryTable {
            schema: nsp,
            qualified,
            exists: true,
        }),
    }
}

/// One row of `_sqlx_migrations`.
#[derive(Debug, Clone)]
pub struct Applied {
    pub version: i64,
    pub description: String,
    pub installed_on: DateTime<Utc>,
    pub success: bool,
    pub checksum: Vec<u8>,
    pub execution_time: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Applied,
    Pending,
    Modified,
    FileMissing,
    Failed,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Modified => "modified",
            State::FileMissing => "file missing",
            State::Failed => "failed",
        }
    }
}

/// One line of `pgx migrate status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusEntry {
    pub version: i64,
    pub description: String,
    pub state: State,
    pub installed_on: Option<DateTime<Utc>>,
    /// Milliseconds, as recorded (sqlx stores nanoseconds).
    pub execution_time_ms: Option<f64>,
    pub file: Option<String>,
    pub reversible: bool,
}

/// sqlx's lock id for a database, so pgx and sqlx-cli never migrate one database at once.
pub fn sqlx_lock_id(database: &str) -> i64 {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    0x3d32_ad9e * i64::from(CRC.checksum(database.as_bytes()))
}

/// Merges files and history into status lines, ordered by version.
pub fn status_of(migrations: &[Migration], applied: &[Applied]) -> Vec<StatusEntry> {
    let mut out: BTreeMap<i64, StatusEntry> = BTreeMap::new();
    for m in migrations {
        out.insert(
            m.version,
            StatusEntry {
                version: m.version,
                description: m.description.clone(),
                state: State::Pending,
                installed_on: None,
                execution_time_ms: None,
                file: Some(m.up.path.display().to_string()),
                reversible: m.down.is_some(),
            },
        );
    }
    for a in applied {
        let checksum = migrations
            .iter()
            .find(|m| m.version == a.version)
            .map(|m| m.up.checksum.as_slice());
        let state = match (a.success, checksum) {
            (false, _) => State::Failed,
            (true, None) => State::FileMissing,
            (true, Some(c)) if c == a.checksum.as_slice() => State::Applied,
            (true, Some(_)) => State::Modified,
        };
        let entry = out.entry(a.version).or_insert_with(|| StatusEntry {
            version: a.version,
            description: a.description.clone(),
            state,
            installed_on: None,
            execution_time_ms: None,
            file: None,
            reversible: false,
        });
        entry.state = state;
        entry.installed_on = Some(a.installed_on);
        #[allow(clippy::cast_precision_loss)]
        {
            entry.execution_time_ms =
                (a.execution_time >= 0).then(|| a.execution_time as f64 / 1e6);
        }
    }
    out.into_values().collect()
}
