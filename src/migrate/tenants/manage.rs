//! `pgx tenant add|list|drop`: creating a tenant schema with every tenant migration applied (or
//! nothing), listing tenants with their state, dropping one under its migration lock.

use std::time::Duration;

use serde::Serialize;

use super::{Existing, Set, check_prefix, existing, quoted, schema_name, schemas};
use crate::db::url::DbUrl;
use crate::error::{Error, Result};
use crate::migrate::files::Migration;
use crate::migrate::history::{State, StatusEntry, sqlx_lock_id};
use crate::migrate::progress::{Interrupt, Sink};
use crate::migrate::runner::{Options, Runner, Scope};

/// Tenant names with their schemas, checked: each a valid name, none twice.
pub fn named<'n>(prefix: &str, names: &'n [String]) -> Result<Vec<(&'n str, String)>> {
    let mut schemas: Vec<(&str, String)> = Vec::with_capacity(names.len());
    for name in names {
        let schema = schema_name(prefix, name)?;
        if schemas.iter().any(|(_, s)| s == &schema) {
            return Err(Error::Usage(format!("tenant {name:?} is named twice")));
        }
        schemas.push((name.as_str(), schema));
    }
    Ok(schemas)
}

/// `pgx tenant add`: each schema (from [`named`]) is created and fully migrated, or not left
/// behind at all.
pub async fn add(
    url: &DbUrl,
    schemas: &[(&str, String)],
    set: Set<'_>,
    options: &Options,
    interrupt: Option<&Interrupt>,
    sink: Sink<'_>,
) -> Result<()> {
    let mut conn = crate::db::connect(url).await?;
    let result = async {
        // Refuse every name before creating anything.
        for (name, schema) in schemas {
            match existing(&mut conn, schema).await? {
                Existing::None => {}
                Existing::Tenant => {
                    return Err(Error::TenantExists {
                        tenant: (*name).to_string(),
                        schema: schema.clone(),
                    });
                }
                Existing::Other => {
                    return Err(Error::SchemaTaken {
                        tenant: (*name).to_string(),
                        schema: schema.clone(),
                    });
                }
            }
        }
        for (name, schema) in schemas {
            let ident = quoted(schema)?;
            let created = crate::db::exec(
                &mut conn,
                &format!("CREATE SCHEMA {ident}"),
                &format!("cannot create schema {schema:?}"),
            )
            .await;
            if let Err(e) = created {
                // Created by someone else meanwhile, say: not this command's to drop.
                return Err(match existing(&mut conn, schema).await {
                    Ok(Existing::Tenant) => Error::TenantExists {
                        tenant: (*name).to_string(),
                        schema: schema.clone(),
                    },
                    _ => e,
                });
            }
            let applied = async {
                let scope = Scope {
                    schema: Some(schema.clone()),
                };
                let mut runner = Runner::with_options(&mut conn, scope, options.clone())
                    .await?
                    .on_event(sink);
                if let Some(interrupt) = interrupt {
                    runner = runner.interruptible(interrupt, url).await?;
                }
                runner.up(set.migrations, set.dir, None, false).await
            }
            .await;
            match applied {
                Ok(_) => {}
                Err(source) => {
                    // The schema is this command's own: nothing of a half-made tenant stays (the
                    // runner left no transaction open).
                    let dropped =
                        crate::db::exec(&mut conn, &format!("DROP SCHEMA {ident} CASCADE"), "")
                            .await
                            .is_ok();
                    return Err(Error::TenantNotCreated {
                        tenant: (*name).to_string(),
                        schema: schema.clone(),
                        cleanup: if dropped {
                            "its schema was dropped again"
                        } else {
                            "dropping its schema failed too: drop it by hand"
                        },
                        source: Box::new(source),
                    });
                }
            }
        }
        Ok(())
    }
    .await;
    crate::db::close(conn).await;
    result
}

/// One tenant in `pgx tenant list`.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub tenant: String,
    pub schema: String,
    pub applied: usize,
    pub pending: usize,
    pub latest: Option<i64>,
    pub state: String,
    pub migrations: Vec<StatusEntry>,
}

fn summarise(prefix: &str, schema: String, entries: Vec<StatusEntry>) -> Listed {
    let count = |s: State| entries.iter().filter(|e| e.state == s).count();
    let problems: Vec<String> = entries
        .iter()
        .filter(|e| !matches!(e.state, State::Applied | State::Pending))
        .map(|e| format!("{} {}", e.version, e.state.label()))
        .collect();
    let pending = count(State::Pending);
    let state = if !problems.is_empty() {
        problems.join(", ")
    } else if pending > 0 {
        format!("{pending} pending")
    } else {
        "up to date".into()
    };
    Listed {
        tenant: schema.strip_prefix(prefix).unwrap_or(&schema).to_string(),
        applied: entries.iter().filter(|e| e.installed_on.is_some()).count(),
        pending,
        latest: entries
            .iter()
            .filter(|e| e.installed_on.is_some())
            .map(|e| e.version)
            .max(),
        state,
        schema,
        migrations: entries,
    }
}

/// `pgx tenant list`: every tenant schema with the state of its migrations; schemas left out
/// because their owner is not trusted go to `sink`.
pub async fn list(
    url: &DbUrl,
    prefix: &str,
    migrations: &[Migration],
    trusted_roles: &[String],
    sink: Sink<'_>,
) -> Result<Vec<Listed>> {
    check_prefix(prefix)?;
    let mut conn = crate::db::connect(url).await?;
    let result = async {
        let mut listed = Vec::new();
        for schema in schemas(&mut conn, prefix, trusted_roles, sink).await? {
            let mut options = Options::new(Duration::ZERO);
            options.trusted_roles = trusted_roles.to_vec();
            let mut runner = Runner::with_options(
                &mut conn,
                Scope {
                    schema: Some(schema.clone()),
                },
                options,
            )
            .await?;
            let entries = runner.status(migrations).await?;
            listed.push(summarise(prefix, schema, entries));
        }
        Ok(listed)
    }
    .await;
    crate::db::close(conn).await;
    result
}

/// `pgx tenant drop`: waits for the schema's migration lock, then drops it.
pub async fn drop_tenant(
    url: &DbUrl,
    prefix: &str,
    name: &str,
    lock_timeout: Duration,
) -> Result<()> {
    let schema = schema_name(prefix, name)?;
    let ident = quoted(&schema)?;
    let mut conn = crate::db::connect(url).await?;
    let result = async {
        if existing(&mut conn, &schema).await? != Existing::Tenant {
            return Err(Error::UnknownTenant {
                tenant: name.to_string(),
                schema: schema.clone(),
            });
        }
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| Error::database("cannot read the current database", &e))?;
        let ms = u64::try_from(lock_timeout.as_millis()).unwrap_or(u64::MAX);
        crate::db::exec(&mut conn, "BEGIN", "cannot start a transaction").await?;
        let dropped = async {
            crate::db::exec(
                &mut conn,
                &format!("SET LOCAL lock_timeout = {ms}"),
                "cannot set lock_timeout",
            )
            .await?;
            // The schema's migration lock: a migration running in it finishes first.
            sqlx::query("SELECT pg_catalog.pg_advisory_xact_lock($1)")
                .bind(sqlx_lock_id(&format!("{database}\u{1f}{schema}")))
                .execute(&mut conn)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(d) if d.code().as_deref() == Some("55P03") => {
                        Error::LockTimeout {
                            timeout: format!("{ms} ms"),
                            scope: format!("schema {schema:?}"),
                        }
                    }
                    _ => Error::database("cannot take the migration lock", &e),
                })?;
            crate::db::exec(
                &mut conn,
                &format!("DROP SCHEMA {ident} CASCADE"),
                &format!("cannot drop schema {schema:?}"),
            )
            .await?;
            crate::db::exec(
                &mut conn,
                "COMMIT",
                &format!("cannot drop schema {schema:?}"),
            )
            .await
        }
        .await;
        if dropped.is_err() {
            let _ = crate::db::exec(&mut conn, "ROLLBACK", "").await;
        }
        dropped
    }
    .await;
    crate::db::close(conn).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_states() {
        let entry = |version, state, applied: bool| StatusEntry {
            version,
            description: "d".into(),
            state,
            installed_on: applied.then(chrono::Utc::now),
            execution_time_ms: None,
            file: None,
            reversible: true,
        };
        let l = summarise(
            "tenant_",
            "tenant_a".into(),
            vec![
                entry(1, State::Applied, true),
                entry(2, State::Pending, false),
            ],
        );
        assert_eq!(
            (
                l.tenant.as_str(),
                l.applied,
                l.pending,
                l.latest,
                l.state.as_str()
            ),
            ("a", 1, 1, Some(1), "1 pending")
        );
        let l = summarise(
            "tenant_",
            "tenant_a".into(),
            vec![entry(1, State::Modified, true)],
        );
        assert_eq!(l.state, "1 modified");
        let l = summarise(
            "tenant_",
            "tenant_a".into(),
            vec![entry(1, State::Applied, true)],
        );
        assert_eq!(l.state, "up to date");
    }
}
