//! Schema per tenant: every tenant has a schema `<prefix><name>` holding its own tables and its
//! own `_sqlx_migrations`, and the migrations in `tenant_migrations` run inside each one.
//!
//! The tenant schemas are found in the catalog: schemas named with the prefix that hold a
//! `_sqlx_migrations` table. The database itself is the registry, so nothing can drift from
//! it: a schema dropped, renamed or restored by hand (`pg_dump -n`) is a tenant exactly when it
//! looks like one, and no extra table has to be migrated, locked or kept in step. A schema that
//! merely starts with the prefix is not taken for a tenant, because `pgx tenant add` creates the
//! history table before it applies anything. A schema whose owner the migrating role does not
//! trust (itself, a superuser, or a role listed in `trusted_roles`) is never taken for a tenant:
//! its owner could have put a booby-trapped `_sqlx_migrations` in it.

mod manage;
mod up;

use std::path::Path;

use sqlx::postgres::PgConnection;

pub use manage::{Listed, add, drop_tenant, list, named};
pub use up::{UpOptions, check_target, migrate_up, up_script};

use super::files::Migration;
use super::history::TRUSTED_ROLES;
use super::progress::{Event, Sink};
use crate::error::{Error, Result};
use crate::sql;

/// The longest tenant name the configured prefix leaves room for.
fn max_name_len(prefix: &str) -> usize {
    sql::MAX_IDENT_BYTES.saturating_sub(prefix.len())
}

/// Checks `tenant_schema_prefix` from pgx.yaml.
pub fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Err(Error::Config(
            "tenant_schema_prefix in pgx.yaml is empty: tenant schemas are told apart from the others by it; set one such as tenant_".into(),
        ));
    }
    sql::check_ident(prefix).map_err(|reason| Error::Identifier {
        what: "tenant_schema_prefix".into(),
        name: prefix.into(),
        reason,
    })
}

/// The schema of tenant `name`. Names are lower-case letters, digits and `_`, starting with a
/// letter or digit: schema names then never need quoting in hand-written SQL, and `Acme` and
/// `acme` cannot become two tenants that unquoted SQL would mix up.
pub fn schema_name(prefix: &str, name: &str) -> Result<String> {
    check_prefix(prefix)?;
    let invalid = |reason: String| Error::TenantName {
        name: name.to_string(),
        reason,
    };
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if name.is_empty() || name.starts_with('_') || !name.chars().all(allowed) {
        return Err(invalid(
            "use lower-case letters, digits and `_`, starting with a letter or a digit".into(),
        ));
    }
    if name.len() > max_name_len(prefix) {
        return Err(invalid(format!(
            "it is {} bytes long; with the prefix {prefix:?} a tenant name can have at most {}",
            name.len(),
            max_name_len(prefix)
        )));
    }
    Ok(format!("{prefix}{name}"))
}

/// The tenant schemas of the database, by name. Schemas that look like tenants but are owned
/// by a role not trusted are left out, each reported to `sink` as [`Event::Ignored`].
pub async fn schemas(
    conn: &mut PgConnection,
    prefix: &str,
    trusted_roles: &[String],
    sink: Sink<'_>,
) -> Result<Vec<String>> {
    check_prefix(prefix)?;
    let query = format!(
        "WITH trusted AS ({TRUSTED_ROLES})
         SELECT n.nspname::pg_catalog.text, pg_catalog.pg_get_userbyid(n.nspowner),
                n.nspowner OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT oid FROM trusted))
         FROM pg_catalog.pg_namespace n
         WHERE pg_catalog.starts_with(n.nspname::pg_catalog.text, $2)
           AND n.nspname::pg_catalog.text OPERATOR(pg_catalog.<>) $2
           AND EXISTS (SELECT FROM pg_catalog.pg_class c
                       WHERE c.relnamespace OPERATOR(pg_catalog.=) n.oid
                         AND c.relname OPERATOR(pg_catalog.=) '_sqlx_migrations'
                         AND c.relkind OPERATOR(pg_catalog.=) ANY ('{{r,p}}'::pg_catalog.\"char\"[]))
         ORDER BY n.nspname"
    );
    let found: Vec<(String, String, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(query))
        .bind(trusted_roles)
        .bind(prefix)
        .fetch_all(conn)
        .await
        .map_err(|e| Error::database("cannot list the tenant schemas", &e))?;
    let mut tenants = Vec::with_capacity(found.len());
    for (schema, owner, trusted) in found {
        if trusted {
            tenants.push(schema);
        } else {
            sink(None, &Event::Ignored { schema, owner });
        }
    }
    Ok(tenants)
}

/// What a schema named like a tenant's is: nothing yet, a tenant, or something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    None,
    Tenant,
    Other,
}

async fn existing(conn: &mut PgConnection, schema: &str) -> Result<Existing> {
    let row: Option<bool> = sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c
                        WHERE c.relnamespace = n.oid AND c.relname = '_sqlx_migrations')
         FROM pg_catalog.pg_namespace n WHERE n.nspname = $1",
    )
    .bind(schema)
    .fetch_optional(conn)
    .await
    .map_err(|e| Error::database(format!("cannot look for schema {schema:?}"), &e))?;
    Ok(match row {
        None => Existing::None,
        Some(true) => Existing::Tenant,
        Some(false) => Existing::Other,
    })
}

fn quoted(schema: &str) -> Result<String> {
    sql::quote_ident(schema)
        .map(std::borrow::Cow::into_owned)
        .map_err(|reason| Error::Identifier {
            what: "schema".into(),
            name: schema.into(),
            reason,
        })
}

/// The tenant migrations: where they come from, and what they are.
#[derive(Debug, Clone, Copy)]
pub struct Set<'a> {
    pub dir: &'a Path,
    pub migrations: &'a [Migration],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names() {
        assert_eq!(schema_name("tenant_", "acme").unwrap(), "tenant_acme");
        assert_eq!(schema_name("t_", "42_b").unwrap(), "t_42_b");
        for bad in ["", "Acme", "_x", "a-b", "a b", "ä", "a\"b", "a;drop"] {
            assert!(schema_name("tenant_", bad).is_err(), "{bad:?}");
        }
        let longest = "a".repeat(63 - "tenant_".len());
        assert!(schema_name("tenant_", &longest).is_ok());
        let err = schema_name("tenant_", &format!("{longest}a")).unwrap_err();
        assert!(err.to_string().contains("at most 56"), "{err}");
        assert!(schema_name("", "acme").is_err());
    }
}
