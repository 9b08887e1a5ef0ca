//! `pgx tenant add|list|drop` and `pgx migrate up --tenants`: schema per tenant.

use std::time::Duration;

use serde_json::json;

use crate::cli::{self, DbArgs};
use crate::error::{Error, Result};
use crate::migrate::{Event, Migration, files, tenants};
use crate::output::{self, Mode, Progress};
use crate::project::Project;

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
            retry,
            db,
            lock,
            json,
            quiet,
        } => {
            // Refuse bad names before touching any database.
            let schemas = tenants::named(prefix, &names)?;
            let (dir, migrations) = tenant_migrations(project)?;
            let url = super::database_url(project, &db)?;
            let set = tenants::Set {
                dir: &dir,
                migrations: &migrations,
            };
            let options = super::migrate::options(project, &lock, &retry);
            let interrupt = super::migrate::catch_signals()?;
            let progress = Progress::new(Mode::of(quiet.quiet, json.json));
            let sink = |schema: Option<&str>, event: &Event| progress.event(schema, event);
            let result = tenants::add(&url, &schemas, set, &options, Some(&interrupt), &sink).await;
            progress.finish("apply", result.as_ref().err())?;
            result
        }
        cli::Tenant::List { db, json } => {
            tenants::check_prefix(prefix)?;
            let (_, migrations) = tenant_migrations(project)?;
            let url = super::database_url(project, &db)?;
            let progress = Progress::new(Mode::Quiet);
            let sink = |schema: Option<&str>, event: &Event| progress.event(schema, event);
            let trusted = &project.config.trusted_roles;
            let listed = tenants::list(&url, prefix, &migrations, trusted, &sink).await?;
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
