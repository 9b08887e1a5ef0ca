//! `pgx baseline`: brings an existing database under pgx. Its schema, dumped, becomes the first
//! migration pair (sorting before any migration the project already has), recorded as applied
//! on that database without running.

use crate::cli::BaselineArgs;
use crate::db::{self, dump};
use crate::error::{Error, Result};
use crate::migrate::files::{self, NewPair, Place};
use crate::migrate::{Runner, Scope, baseline};
use crate::output;
use crate::project::Project;

pub async fn run(project: &Project, args: &BaselineArgs) -> Result<()> {
    let description = files::file_description(&args.name)?;
    for s in &args.schemas {
        crate::sql::check_ident(s).map_err(|reason| Error::Identifier {
            what: "schema".into(),
            name: s.clone(),
            reason,
        })?;
    }
    let dir = project.migrations_dir();
    let url = super::database_url(project, &args.db)?;
    let mut conn = db::connect(&url).await?;
    let result = async {
        let mut runner = Runner::new(&mut conn, Scope::default(), args.lock.lock_timeout).await?;
        let applied = runner.applied().await?;
        if !applied.is_empty() {
            return Err(Error::Usage(format!(
                "the database already has {} migration{} in _sqlx_migrations: a baseline is for a database without migration history (see pgx migrate status)",
                applied.len(),
                if applied.len() == 1 { "" } else { "s" }
            )));
        }
        drop(runner);
        let major: i32 = sqlx::query_scalar(
            "SELECT pg_catalog.current_setting('server_version_num')::int / 10000",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| Error::database("cannot read the server version", &e))?;
        let options = dump::DumpOptions {
            schemas: args.schemas.clone(),
            no_privileges: args.no_privileges,
            exclude_tables: vec!["*._sqlx_migrations".into()],
        };
        let dumped = dump::dump_schema(&url, major.unsigned_abs(), &options)?;
        let up = baseline::up_sql(&dumped);
        let down = baseline::down_sql(&dumped, args.reversible);
        // First, before whatever the project already has: those are changes made after it.
        let place = match files::scan(&dir)?.first() {
            Some(m) => Place::Before(m.version),
            None => Place::Last,
        };
        if args.dry_run.dry_run {
            let v = files::plan_versions(&dir, 1, place)?[0];
            return output::out(&super::new::dry_run_text(
                &dir,
                &[(v, description.as_str(), &up, &down)],
            ));
        }
        let written = files::write_set(
            &dir,
            &[NewPair {
                description: &description,
                up: &up,
                down: &down,
            }],
            place,
        )?
        .remove(0);
        let recorded = async {
            let migration = files::scan(&dir)?
                .into_iter()
                .find(|m| m.version == written.version)
                .ok_or_else(|| Error::MigrationSet {
                    message: format!("{} vanished after it was written", written.up.display()),
                })?;
            Runner::new(&mut conn, Scope::default(), args.lock.lock_timeout)
                .await?
                .record_applied(&migration)
                .await
        }
        .await;
        if let Err(e) = recorded {
            // All or nothing: files for a baseline that is not recorded would be applied over
            // the schema they describe.
            let _ = std::fs::remove_file(&written.up);
            let _ = std::fs::remove_file(&written.down);
            return Err(e);
        }
        output::out(&format!(
            "{}\n{}\n",
            written.up.display(),
            written.down.display()
        ))?;
        output::note(&format!(
            "recorded migration {} as applied in the database{} without running it; `pgx check` applies it from zero",
            written.version,
            url.from_where()
        ));
        Ok(())
    }
    .await;
    db::close(conn).await;
    result
}
