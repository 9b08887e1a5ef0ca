//! `pgx new PATTERN [TABLE]`: a pattern rendered into a new migration pair.

use crate::cli::{MigrationScope, NewArgs};
use crate::error::{Error, Result};
use crate::migrate::files;
use crate::output;
use crate::pattern::{Catalog, Renderer, Sources, render_pattern_in};
use crate::project::Project;

pub(super) fn parse_sets(sets: &[String]) -> Result<Vec<(String, String)>> {
    sets.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(Error::SetSyntax { arg: s.clone() }),
        })
        .collect()
}

pub fn run(project: &Project, args: &NewArgs) -> Result<()> {
    let catalog = Catalog::load(&Sources::of(project))?;
    let pattern = catalog.get(&args.pattern)?;
    let resolved = pattern.resolve(&parse_sets(&args.sets)?)?;
    let schema = match (args.scope, args.schema.as_deref()) {
        (MigrationScope::Tenant, Some(_)) => {
            return Err(Error::Usage(
                "--schema cannot be used with --scope tenant: tenant migrations run in each tenant's schema".into(),
            ));
        }
        (MigrationScope::Tenant, None) => None,
        (MigrationScope::Database, s) => Some(s.unwrap_or(&project.config.schema)),
    };
    let renderer = Renderer::new(&catalog)?;
    let rendered = render_pattern_in(&renderer, pattern, schema, args.table.as_deref(), &resolved)?;
    let description = files::file_description(&match (&args.name, &args.table) {
        (Some(n), _) => n.clone(),
        (None, Some(t)) => format!("{}_{t}", pattern.name),
        (None, None) => pattern.name.clone(),
    })?;
    let dir = super::migrations_dir(project, args.scope);
    if args.dry_run {
        let version = files::next_version(files::max_version(&dir)?, chrono::Utc::now());
        let path = |kind: &str| dir.join(format!("{version}_{description}.{kind}.sql"));
        return output::out(&format!(
            "-- file: {}\n{}\n-- file: {}\n{}",
            path("up").display(),
            rendered.up,
            path("down").display(),
            rendered.down
        ));
    }
    let written = files::write_pair(&dir, &description, &rendered.up, &rendered.down)?;
    output::out(&format!(
        "{}\n{}\n",
        written.up.display(),
        written.down.display()
    ))
}
