//! Schema per tenant: every tenant has a schema `<prefix><name>` holding its own tables and its
//! own `_sqlx_migrations`, and the migrations in `tenant_migrations` run inside each one.
//!
//! The tenant schemas are found in the catalog: schemas named with the prefix that hold a
//! `_sqlx_migrations` table. The database itself is the registry, so nothing can drift from
//! it: a schema dropped, renamed or restored by hand (`pg_dump -n`) is a tenant exactly when it
//! looks like one, and no extra table has to be migrated, locked or kept in step. A schema that
//! merely starts with the prefix is not taken for a tenant, because `pgx tenant add` creates the
//! history table before it applies anything.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use sqlx::postgres::PgConnection;

use crate::cli::{self, DbArgs};
use crate::config::{DbUrl, Project};
use crate::error::{Error, Result};
use crate::migration::{self, Migration};
use crate::runner::{Outcome, Runner, Scope, State, StatusEntry};
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

/// The tenant schemas of the database, by name.
pub async fn schemas(conn: &mut PgConnection, prefix: &str) -> Result<Vec<String>> {
    check_prefix(prefix)?;
    sqlx::query_scalar(
        "SELECT n.nspname::text FROM pg_catalog.pg_namespace n
         WHERE pg_catalog.starts_with(n.nspname::text, $1) AND n.nspname::text <> $1
           AND EXISTS (SELECT FROM pg_catalog.pg_class c
                       WHERE c.relnamespace = n.oid AND c.relname = '_sqlx_migrations'
                         AND c.relkind IN ('r', 'p'))
         ORDER BY n.nspname",
    )
    .bind(prefix)
    .fetch_all(conn)
    .await
    .map_err(|e| Error::database("cannot list the tenant schemas", &e))
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

/// The tenant migrations, and the folder they come from.
fn tenant_migrations(project: &Project) -> Result<(PathBuf, Vec<Migration>)> {
    let dir = project.tenant_migrations_dir();
    let migrations = migration::scan(&dir)?;
    Ok((dir, migrations))
}

fn report(verbose: bool, schema: &str, outcome: &Outcome) {
    if verbose {
        for (version, description, took) in &outcome.versions {
            eprintln!(
                "{schema}: applied {version} {description} ({:.1} ms)",
                took.as_secs_f64() * 1e3
            );
        }
    }
}

pub async fn run(project: &Project, command: cli::Tenant) -> Result<()> {
    match command {
        cli::Tenant::Add {
            names,
            db,
            lock,
            verbose,
        } => add(project, &names, &db, lock.lock_timeout, verbose).await,
        cli::Tenant::List { db, json } => list(project, &db, json).await,
        cli::Tenant::Drop {
            name,
            yes,
            db,
            lock,
        } => drop_tenant(project, &name, yes, &db, lock.lock_timeout).await,
    }
}

async fn connect(project: &Project, db: &DbArgs) -> Result<(DbUrl, PgConnection)> {
    let url = crate::commands::database_url(project, db)?;
    let conn = crate::db::connect(&url).await?;
    Ok((url, conn))
}

/// `pgx tenant add`: each schema is created and fully migrated, or not left behind at all.
async fn add(
    project: &Project,
    names: &[String],
    db: &DbArgs,
    lock_timeout: Duration,
    verbose: bool,
) -> Result<()> {
    let prefix = &project.config.tenant_schema_prefix;
    let mut schemas = Vec::with_capacity(names.len());
    for name in names {
        let schema = schema_name(prefix, name)?;
        if schemas.iter().any(|(_, s)| s == &schema) {
            return Err(Error::Usage(format!("tenant {name:?} is named twice")));
        }
        schemas.push((name.as_str(), schema));
    }
    let (dir, migrations) = tenant_migrations(project)?;
    let (_, mut conn) = connect(project, db).await?;
    let result = async {
        // Refuse every name before creating anything.
        for (name, schema) in &schemas {
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
        for (name, schema) in &schemas {
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
                let mut runner = Runner::new(
                    &mut conn,
                    Scope {
                        schema: Some(schema.clone()),
                    },
                    lock_timeout,
                )
                .await?;
                runner.up(&migrations, &dir, None, false).await
            }
            .await;
            match applied {
                Ok(outcome) => report(verbose, schema, &outcome),
                Err(source) => {
                    // The schema is this command's own: nothing of a half-made tenant stays.
                    let _ = crate::db::exec(&mut conn, "ROLLBACK", "").await;
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
struct Listed {
    tenant: String,
    schema: String,
    applied: usize,
    pending: usize,
    latest: Option<i64>,
    state: String,
    migrations: Vec<StatusEntry>,
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

async fn list(project: &Project, db: &DbArgs, as_json: bool) -> Result<()> {
    let prefix = &project.config.tenant_schema_prefix;
    check_prefix(prefix)?;
    let (_, migrations) = tenant_migrations(project)?;
    let (_, mut conn) = connect(project, db).await?;
    let result = async {
        let mut listed = Vec::new();
        for schema in schemas(&mut conn, prefix).await? {
            let mut runner = Runner::new(
                &mut conn,
                Scope {
                    schema: Some(schema.clone()),
                },
                Duration::ZERO,
            )
            .await?;
            let entries = runner.status(&migrations).await?;
            listed.push(summarise(prefix, schema, entries));
        }
        Ok(listed)
    }
    .await;
    crate::db::close(conn).await;
    let listed = result?;
    if as_json {
        return crate::commands::json_out(&json!({ "tenants": listed }));
    }
    if listed.is_empty() {
        return crate::commands::out("no tenants\n");
    }
    let rows: Vec<[String; 6]> = listed
        .into_iter()
        .map(|l| {
            [
                l.tenant,
                l.schema,
                l.applied.to_string(),
                l.pending.to_string(),
                l.latest.map(|v| v.to_string()).unwrap_or_default(),
                l.state,
            ]
        })
        .collect();
    crate::commands::out(&crate::commands::table(
        &["TENANT", "SCHEMA", "APPLIED", "PENDING", "LATEST", "STATE"],
        &rows,
    ))
}

async fn drop_tenant(
    project: &Project,
    name: &str,
    yes: bool,
    db: &DbArgs,
    lock_timeout: Duration,
) -> Result<()> {
    let schema = schema_name(&project.config.tenant_schema_prefix, name)?;
    if !yes {
        return Err(Error::Usage(format!(
            "refusing to drop tenant {name:?} (schema {schema:?} and all its data) without --yes"
        )));
    }
    let ident = quoted(&schema)?;
    let (_, mut conn) = connect(project, db).await?;
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
                .bind(crate::runner::sqlx_lock_id(&format!(
                    "{database}\u{1f}{schema}"
                )))
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

/// Options of `pgx migrate up --tenants`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub lock_timeout: Duration,
    pub target: Option<i64>,
    pub dry_run: bool,
    pub ignore_missing: bool,
    pub verbose: bool,
    pub jobs: usize,
}

/// `pgx migrate up --tenants`: the tenant migrations in every tenant schema, `jobs` schemas at
/// a time. The first failure stops the run: no schema is started after it, those already
/// running finish, and the error names the failing schema. A failing migration leaves nothing
/// of itself behind (the runner applies each file in its own transaction).
pub async fn migrate_up(project: &Project, db: &DbArgs, options: UpOptions) -> Result<()> {
    let prefix = &project.config.tenant_schema_prefix;
    check_prefix(prefix)?;
    let (dir, migrations) = tenant_migrations(project)?;
    if let Some(t) = options.target
        && !migrations.iter().any(|m| m.version == t)
    {
        return Err(Error::UnknownVersion {
            version: t,
            dir: dir.display().to_string(),
        });
    }
    let (url, mut conn) = connect(project, db).await?;
    let found = schemas(&mut conn, prefix).await;
    if options.dry_run {
        let result = async {
            let mut script = String::new();
            for schema in found? {
                let mut runner = Runner::new(
                    &mut conn,
                    Scope {
                        schema: Some(schema.clone()),
                    },
                    Duration::ZERO,
                )
                .await?;
                script.push_str(&format!("\n-- tenant schema {schema:?}\n"));
                script.push_str(
                    &runner
                        .up_script(&migrations, &dir, options.target, options.ignore_missing)
                        .await?,
                );
            }
            Ok(script)
        }
        .await;
        crate::db::close(conn).await;
        return crate::commands::out(result?.trim_start());
    }
    crate::db::close(conn).await;
    let schemas = found?;
    let total = schemas.len();
    let run = Rc::new(Run {
        queue: RefCell::new(schemas.into()),
        stop: Cell::new(false),
        migrated: Cell::new(0),
        failures: RefCell::new(Vec::new()),
    });
    let job = Rc::new(Job {
        url,
        dir,
        migrations,
        options: options.clone(),
    });
    let local = tokio::task::LocalSet::new();
    for _ in 0..options.jobs.clamp(1, total.max(1)) {
        local.spawn_local(worker(Rc::clone(&run), Rc::clone(&job)));
    }
    local.await;
    let mut failures = run.failures.take();
    if failures.is_empty() {
        return Ok(());
    }
    let (schema, source) = failures.remove(0);
    if schema.is_empty() {
        return Err(source);
    }
    let migrated = run.migrated.get();
    let also_failed = failures.iter().filter(|(s, _)| !s.is_empty()).count();
    Err(Error::TenantMigration {
        schema,
        migrated,
        total,
        also_failed,
        not_attempted: total.saturating_sub(migrated + 1 + also_failed),
        source: Box::new(source),
    })
}

/// Shared state of the jobs of one `migrate up --tenants`.
struct Run {
    queue: RefCell<VecDeque<String>>,
    stop: Cell<bool>,
    migrated: Cell<usize>,
    /// In the order they happened; the schema is empty when no schema was at fault.
    failures: RefCell<Vec<(String, Error)>>,
}

struct Job {
    url: DbUrl,
    dir: PathBuf,
    migrations: Vec<Migration>,
    options: UpOptions,
}

/// One job: its own connection, taking schemas from the queue until it is empty or a job failed.
async fn worker(run: Rc<Run>, job: Rc<Job>) {
    let mut conn = match crate::db::connect(&job.url).await {
        Ok(c) => c,
        Err(e) => {
            run.stop.set(true);
            run.failures.borrow_mut().push((String::new(), e));
            return;
        }
    };
    loop {
        if run.stop.get() {
            break;
        }
        let Some(schema) = run.queue.borrow_mut().pop_front() else {
            break;
        };
        match migrate_schema(&mut conn, &schema, &job.dir, &job.migrations, &job.options).await {
            Ok(outcome) => {
                run.migrated.set(run.migrated.get() + 1);
                report(job.options.verbose, &schema, &outcome);
            }
            Err(e) => {
                run.stop.set(true);
                run.failures.borrow_mut().push((schema, e));
                break;
            }
        }
    }
    crate::db::close(conn).await;
}

async fn migrate_schema(
    conn: &mut PgConnection,
    schema: &str,
    dir: &Path,
    migrations: &[Migration],
    options: &UpOptions,
) -> Result<Outcome> {
    let mut runner = Runner::new(
        conn,
        Scope {
            schema: Some(schema.to_string()),
        },
        options.lock_timeout,
    )
    .await?;
    runner
        .up(migrations, dir, options.target, options.ignore_missing)
        .await
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
