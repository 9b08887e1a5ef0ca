//! `pgx dev start|stop|status|url|psql|reset`: the project's own cluster; `pgx dev list|prune`:
//! every dev cluster on the machine.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use crate::cli;
use crate::db::dev::machine::{self, Found};
use crate::db::dev::{Cluster, RoleOutcome, default_server_user};
use crate::error::{Error, Result};
use crate::output;
use crate::project::Project;

/// `pgx dev ...`
pub fn run(project: &Project, cmd: &cli::Dev) -> Result<()> {
    let cluster = Cluster::for_project(&project.root)?;
    match cmd {
        cli::Dev::Start => {
            let how = cluster.ensure_running()?;
            output::note(&format!(
                "dev cluster in {}: {}",
                cluster.describe(),
                how.label()
            ));
            output::out(&format!("{}\n", cluster.url().expose()))
        }
        cli::Dev::Stop => {
            let stopped = cluster.stop()?;
            output::note(&format!(
                "dev cluster in {}: {}",
                cluster.describe(),
                if stopped { "stopped it" } else { "not running" }
            ));
            Ok(())
        }
        cli::Dev::Status { json } => {
            let status = cluster.status()?;
            if json.json {
                return output::json(&status);
            }
            let state = match (status.created, status.running) {
                (false, _) => {
                    "not created (the first command that needs a database creates it)".to_string()
                }
                (true, false) => "stopped".to_string(),
                (true, true) => format!(
                    "running (pid {})",
                    status
                        .pid
                        .map_or_else(|| "?".to_string(), |p| p.to_string())
                ),
            };
            let mut text = format!("dev cluster: {state}\n");
            if let Some(v) = &status.version {
                text.push_str(&format!("version:     PostgreSQL {v}\n"));
            }
            text.push_str(&format!(
                "data:        {}\nsocket:      {}\nlog:         {}\nurl:         {}\n",
                status.data_dir.display(),
                status.socket_dir.display(),
                status.log.display(),
                status.url
            ));
            if let Some(user) = &status.server_user {
                text.push_str(&format!(
                    "server user: {user} (PostgreSQL refuses to run as root)\n"
                ));
            }
            output::out(&text)
        }
        cli::Dev::Url => {
            cluster.ensure_running()?;
            output::out(&format!("{}\n", cluster.url().expose()))
        }
        cli::Dev::Psql { role, args } => {
            let psql = cluster.psql()?;
            cluster.ensure_running()?;
            let url = match role {
                None => cluster.url(),
                Some(name) => {
                    let outcome = super::runtime()?.block_on(cluster.ensure_login_role(name))?;
                    if outcome == RoleOutcome::Created {
                        output::note(&format!(
                            "created role {name:?} (LOGIN NOSUPERUSER NOBYPASSRLS) in the dev cluster: row-level security applies to it; grant it what it needs (pgx new tenant TABLE --set role={name})"
                        ));
                    }
                    cluster.url().with_user(name)?
                }
            };
            let err = Command::new(&psql).arg(url.expose()).args(args).exec();
            Err(Error::DevCluster {
                message: format!("cannot run {}: {err}", psql.display()),
            })
        }
        cli::Dev::List { .. } | cli::Dev::Prune { .. } => run_machine(cmd),
        cli::Dev::Reset { yes } if !yes.yes => Err(Error::Usage(format!(
            "pgx dev reset deletes the dev cluster in {} and every database in it: pass --yes to confirm",
            cluster.describe()
        ))),
        cli::Dev::Reset { .. } => {
            let existed = cluster.reset()?;
            output::note(&format!(
                "dev cluster in {}: {}",
                cluster.describe(),
                if existed {
                    "deleted it; the next command that needs a database creates a fresh one"
                } else {
                    "there was none"
                }
            ));
            Ok(())
        }
    }
}

/// `pgx dev list` and `pgx dev prune`: every cluster on the machine, no project needed.
pub fn run_machine(cmd: &cli::Dev) -> Result<()> {
    let found = machine::find_all(default_server_user().as_ref());
    match cmd {
        cli::Dev::List { json } if json.json => output::json(&found),
        cli::Dev::List { .. } => {
            if found.is_empty() {
                return output::out("no dev clusters\n");
            }
            let rows: Vec<[String; 4]> = found.iter().map(row).collect();
            output::out(&output::table(&["PROJECT", "STATE", "SIZE", "DATA"], &rows))
        }
        cli::Dev::Prune { projects, dry_run } => {
            let cwd = std::env::current_dir().map_err(|e| Error::io("read", ".", e))?;
            let wanted: Vec<std::path::PathBuf> = projects.iter().map(|p| cwd.join(p)).collect();
            let gone: Vec<&Found> = found
                .iter()
                .filter(|f| f.orphaned())
                .filter(|f| {
                    wanted.is_empty() || f.project.as_ref().is_some_and(|p| wanted.contains(p))
                })
                .collect();
            for f in &gone {
                let project = f
                    .project
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                if !dry_run.dry_run {
                    machine::prune(f)?;
                }
                output::out(&format!(
                    "{} the dev cluster of {project} ({}{})\n",
                    if dry_run.dry_run {
                        "would remove"
                    } else {
                        "removed"
                    },
                    if f.running { "was running, " } else { "" },
                    f.size
                        .map_or_else(|| "data already deleted".to_string(), human_size)
                ))?;
            }
            let unknown = found.iter().filter(|f| f.project.is_none()).count();
            if wanted.is_empty() && unknown > 0 {
                output::note(&format!(
                    "left {unknown} cluster{} whose project is not recorded (made by an older pgx): see pgx dev list; delete one with rm -r on its folder once stopped",
                    if unknown == 1 { "" } else { "s" }
                ));
            }
            if gone.is_empty() {
                output::note("nothing to prune: every dev cluster's project still exists");
            }
            Ok(())
        }
        _ => Err(Error::Usage("not a machine-wide dev command".into())),
    }
}

fn row(f: &Found) -> [String; 4] {
    let project = match (&f.project, f.project_exists) {
        (Some(p), true) => p.display().to_string(),
        (Some(p), false) => format!("{} (gone)", p.display()),
        (None, _) => "(unknown)".to_string(),
    };
    let state = match f.pid {
        Some(pid) => format!("running (pid {pid})"),
        None => "stopped".to_string(),
    };
    let size = f.size.map_or_else(|| "deleted".to_string(), human_size);
    [project, state, size, f.data_dir.display().to_string()]
}

#[allow(clippy::cast_precision_loss)]
fn human_size(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    format!("{:.0} MB", bytes as f64 / MB)
}
