//! `pgx dev start|stop|status|url|psql|reset`: the project's own cluster.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use crate::cli;
use crate::db::dev::Cluster;
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
            if *json {
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
        cli::Dev::Psql { args } => {
            let psql = cluster.psql()?;
            cluster.ensure_running()?;
            let err = Command::new(&psql)
                .arg(cluster.url().expose())
                .args(args)
                .exec();
            Err(Error::DevCluster {
                message: format!("cannot run {}: {err}", psql.display()),
            })
        }
        cli::Dev::Reset { yes: false } => Err(Error::Usage(format!(
            "pgx dev reset deletes the dev cluster in {} and every database in it: pass --yes to confirm",
            cluster.describe()
        ))),
        cli::Dev::Reset { yes: true } => {
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
