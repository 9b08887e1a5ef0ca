//! `pgx tenant add|list|drop` and `pgx migrate up --tenants`: schema per tenant; `pgx tenant
//! check`: the side doors of tables shared by tenants under row security.

use std::time::Duration;

use serde_json::json;

use crate::cli::{self, DbArgs};
use crate::db::tenant_check;
use crate::error::{Error, Result};
use crate::migrate::{Migration, Outcome, files, tenants};
use crate::output;
use crate::pattern::infra;
use crate::project::Project;

/// Prints each migration applied in a tenant schema, when asked to.
fn reporter(verbose: bool) -> impl Fn(&str, &Outcome) {
    move |schema, outcome| {
        if verbose {
            for (version, description, took) in &outcome.versions {
                eprintln!(
                    "{schema}: applied {version} {description} ({:.1} ms)",
                    took.as_secs_f64() * 1e3
                );
            }
        }
    }
}

fn tenant_migrations(project: &Project) -> Result<(std::path::PathBuf, Vec<Migration>)> {
    let dir = project.tenant_migrations_dir();
    let migrations = files::scan(&dir)?;
    Ok((dir, migrations))
}

pub async fn run(project: &Project, command: cli::Tenant) -> Result<()> {
    let prefix = &project.config.tenant_schema_prefix;
    match command {
        cli::Tenant::Add {
            names,
            db,
            lock,
            verbose,
        } => {
            // Refuse bad names before touching any database.
            let schemas = tenants::named(prefix, &names)?;
            let (dir, migrations) = tenant_migrations(project)?;
            let url = super::database_url(project, &db)?;
            let set = tenants::Set {
                dir: &dir,
                migrations: &migrations,
            };
            tenants::add(
                &url,
                &schemas,
                set,
                lock.lock_timeout,
                &reporter(verbose.verbose),
            )
            .await
        }
        cli::Tenant::List { db, json } => {
            tenants::check_prefix(prefix)?;
            let (_, migrations) = tenant_migrations(project)?;
            let url = super::database_url(project, &db)?;
            let listed = tenants::list(&url, prefix, &migrations).await?;
            if json.json {
                return output::json(&json!({ "tenants": listed }));
            }
            if listed.is_empty() {
                return output::out("no tenants\n");
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
            output::out(&output::table(
                &["TENANT", "SCHEMA", "APPLIED", "PENDING", "LATEST", "STATE"],
                &rows,
            ))
        }
        cli::Tenant::Drop {
            name,
            yes,
            db,
            lock,
        } => drop(project, &name, yes.yes, &db, lock.lock_timeout).await,
        cli::Tenant::Check { db, json } => check(project, &db, json.json).await,
    }
}

/// `pgx tenant check`: in the schema the project's pgx_install migration names.
async fn check(project: &Project, db: &DbArgs, json: bool) -> Result<()> {
    let installed = infra::installed("pgx", &files::up_files(&project.migrations_dir())?);
    let schema = installed
        .as_ref()
        .and_then(|i| i.params.get("pgx_schema"))
        .and_then(|v| v.as_str())
        .unwrap_or("pgx")
        .to_string();
    let url = super::database_url(project, db)?;
    let report = tenant_check::check(&url, &schema).await?;
    if json {
        output::json(&report)?;
    } else {
        let mut text = String::new();
        if report.tables.is_empty() {
            text.push_str(&format!(
                "no tenant-isolated tables (none registered in schema {schema:?})\n"
            ));
        }
        for t in &report.tables {
            if t.doors.is_empty() {
                text.push_str(&format!("{} ({}): no side door found\n", t.table, t.column));
            }
            for d in &t.doors {
                text.push_str(&format!("{}: {}; fix: {}\n", t.table, d.detail, d.fix));
            }
        }
        output::out(&text)?;
    }
    match report.doors() {
        0 => Ok(()),
        n => Err(Error::CheckFailed {
            message: format!(
                "{n} side door{} around row security on {} of {} tenant-isolated tables",
                if n == 1 { "" } else { "s" },
                report.tables.iter().filter(|t| !t.doors.is_empty()).count(),
                report.tables.len()
            ),
        }),
    }
}

async fn drop(
    project: &Project,
    name: &str,
    yes: bool,
    db: &DbArgs,
    lock_timeout: Duration,
) -> Result<()> {
    let prefix = &project.config.tenant_schema_prefix;
    let schema = tenants::schema_name(prefix, name)?;
    if !yes {
        return Err(Error::Usage(format!(
            "refusing to drop tenant {name:?} (schema {schema:?} and all its data) without --yes"
        )));
    }
    let url = super::database_url(project, db)?;
    tenants::drop_tenant(&url, prefix, name, lock_timeout).await
}

/// `pgx migrate up --tenants`.
pub async fn migrate_up(
    project: &Project,
    db: &DbArgs,
    options: &tenants::UpOptions,
    dry_run: bool,
    verbose: bool,
) -> Result<()> {
    let prefix = &project.config.tenant_schema_prefix;
    tenants::check_prefix(prefix)?;
    let (dir, migrations) = tenant_migrations(project)?;
    let set = tenants::Set {
        dir: &dir,
        migrations: &migrations,
    };
    tenants::check_target(set, options.target)?;
    let url = super::database_url(project, db)?;
    if dry_run {
        return output::out(&tenants::up_script(&url, prefix, set, options).await?);
    }
    tenants::migrate_up(&url, prefix, set, options, &reporter(verbose)).await
}
