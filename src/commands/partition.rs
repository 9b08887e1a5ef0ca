//! `pgx partition maintain`: maintenance of the tables the partition pattern partitioned.

use serde_json::json;

use crate::cli;
use crate::error::Result;
use crate::migrate::{files, partition};
use crate::output;
use crate::pattern::infra;
use crate::project::Project;

/// The infrastructure's schema when no migration of the project records another.
const DEFAULT_SCHEMA: &str = "pgx_partition";

pub async fn run(project: &Project, command: cli::Partition) -> Result<()> {
    let cli::Partition::Maintain {
        tables,
        db,
        dry_run,
        json,
        lock_attempt_timeout: lock_timeout,
    } = command;
    let (dry_run, json) = (dry_run.dry_run, json.json);
    // The schema the project's partition_install migration chose.
    let installed = infra::installed("partition", &files::up_files(&project.migrations_dir())?);
    let schema = installed
        .as_ref()
        .and_then(|i| i.params.get("partition_schema"))
        .and_then(|v| v.as_str())
        .unwrap_or(DEFAULT_SCHEMA)
        .to_string();
    let url = super::database_url(project, &db)?;
    let options = partition::Options {
        schema: &schema,
        tables: &tables,
        dry_run,
        lock_timeout,
    };
    let mut print = |a: &partition::Action| {
        if !json {
            let _ = output::out(&format!("{}\n", a.line));
        }
    };
    let actions = partition::maintain(&url, &options, &mut print).await?;
    if json {
        return output::json(&json!({ "dry_run": dry_run, "actions": actions }));
    }
    Ok(())
}
