//! `pgx migrate up|down|status|redo`.

use serde_json::json;

use crate::cli::Migrate;
use crate::error::Result;
use crate::migrate::{Down, Outcome, Runner, Scope, StatusEntry, files, tenants};
use crate::output;
use crate::project::Project;

fn report(verbose: bool, verb: &str, outcome: &Outcome) {
    if verbose {
        for (version, description, took) in &outcome.versions {
            eprintln!(
                "{verb} {version} {description} ({:.1} ms)",
                took.as_secs_f64() * 1e3
            );
        }
    }
}

pub async fn run(project: &Project, command: Migrate) -> Result<()> {
    if let Migrate::Up {
        db,
        lock,
        target,
        dry_run,
        ignore_missing,
        verbose,
        tenants: true,
        jobs,
    } = &command
    {
        let options = tenants::UpOptions {
            lock_timeout: lock.lock_timeout,
            target: *target,
            ignore_missing: *ignore_missing,
            jobs: usize::from(*jobs),
        };
        return super::tenant::migrate_up(project, db, &options, dry_run.dry_run, verbose.verbose)
            .await;
    }
    let dir = project.migrations_dir();
    let migrations = files::scan(&dir)?;
    let db = match &command {
        Migrate::Up { db, .. }
        | Migrate::Down { db, .. }
        | Migrate::Status { db, .. }
        | Migrate::Redo { db, .. } => db,
    };
    let url = super::database_url(project, db)?;
    let mut conn = crate::db::connect(&url).await?;
    let lock_timeout = match &command {
        Migrate::Up { lock, .. } | Migrate::Down { lock, .. } | Migrate::Redo { lock, .. } => {
            lock.lock_timeout
        }
        Migrate::Status { .. } => std::time::Duration::ZERO,
    };
    let result = async {
        let mut runner = Runner::new(&mut conn, Scope::default(), lock_timeout).await?;
        match command {
            Migrate::Up {
                target,
                dry_run: crate::cli::DryRunArgs { dry_run: true },
                ignore_missing,
                ..
            } => output::out(
                &runner
                    .up_script(&migrations, &dir, target, ignore_missing)
                    .await?,
            ),
            Migrate::Up {
                target,
                ignore_missing,
                verbose,
                ..
            } => {
                let outcome = runner.up(&migrations, &dir, target, ignore_missing).await?;
                report(verbose.verbose, "applied", &outcome);
                Ok(())
            }
            Migrate::Down {
                steps,
                target,
                dry_run,
                verbose,
                ..
            } => {
                let how = match target {
                    Some(t) => Down::Target(t),
                    None => Down::Steps(steps.unwrap_or(1)),
                };
                if dry_run.dry_run {
                    output::out(&runner.down_script(&migrations, &dir, how).await?)
                } else {
                    let outcome = runner.down(&migrations, &dir, how).await?;
                    report(verbose.verbose, "reverted", &outcome);
                    Ok(())
                }
            }
            Migrate::Redo { .. } => runner.redo(&migrations, &dir).await.map(|_| ()),
            Migrate::Status { json, .. } => {
                let entries = runner.status(&migrations).await?;
                if json.json {
                    output::json(&json!({ "migrations": entries }))
                } else {
                    output::out(&status_table(&entries))
                }
            }
        }
    }
    .await;
    crate::db::close(conn).await;
    result
}

fn status_table(entries: &[StatusEntry]) -> String {
    if entries.is_empty() {
        return "no migrations\n".to_string();
    }
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            [
                e.version.to_string(),
                e.description.clone(),
                e.state.label().to_string(),
                e.installed_on
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["VERSION", "DESCRIPTION", "STATE", "APPLIED AT"], &rows)
}
