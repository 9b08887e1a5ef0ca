//! `pgx new PATTERN [TABLE]`: a pattern rendered into new migrations: one pair, or one per step
//! of the pattern, after the shared infrastructure it needs when the project has none yet.

use crate::cli::{MigrationScope, NewArgs};
use crate::error::{Error, Result};
use crate::migrate::files::{self, NewPair};
use crate::output;
use crate::pattern::{Catalog, Rendered, Renderer, Sources, Step, infra, render_pattern_in};
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
    let sets = parse_sets(&args.sets)?;
    let schema = match (args.scope, args.schema.as_deref()) {
        (MigrationScope::Tenant, Some(_)) => {
            return Err(Error::Usage(
                "--schema cannot be used with --scope tenant: tenant migrations run in each tenant's schema".into(),
            ));
        }
        (MigrationScope::Tenant, None) => None,
        (MigrationScope::Database, s) => Some(s.unwrap_or(&project.config.schema)),
    };
    let dir = super::migrations_dir(project, args.scope);
    let existing = files::up_files(&dir)?;
    let plan = infra::plan(&catalog, pattern, &sets, &dir, &existing)?;
    let renderer = Renderer::new(&catalog)?;
    let description = files::file_description(&match (&args.name, &args.table) {
        (Some(n), _) => n.clone(),
        (None, Some(t)) => format!("{}_{t}", pattern.name),
        (None, None) => pattern.name.clone(),
    })?;

    // Every migration to write, in order: the infrastructure first when it is missing.
    let mut migrations: Vec<(String, Step)> = Vec::new();
    if let Some((install, resolved)) = &plan.install {
        let rendered = render_pattern_in(&renderer, install, schema, None, resolved)?;
        push_steps(
            &mut migrations,
            &files::file_description(&install.name)?,
            rendered,
        );
    }
    let rendered = render_pattern_in(
        &renderer,
        pattern,
        schema,
        args.table.as_deref(),
        &plan.resolved,
    )?;
    push_steps(&mut migrations, &description, rendered);

    if args.dry_run {
        let mut version = files::max_version(&dir)?;
        let mut text = String::new();
        for (description, step) in &migrations {
            let v = files::next_version(version, chrono::Utc::now());
            version = Some(v);
            for (kind, sql) in [("up", &step.up), ("down", &step.down)] {
                let path = dir.join(format!("{v}_{description}.{kind}.sql"));
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&format!("-- file: {}\n{sql}", path.display()));
            }
        }
        return output::out(&text);
    }
    let pairs: Vec<NewPair<'_>> = migrations
        .iter()
        .map(|(description, step)| NewPair {
            description,
            up: &step.up,
            down: &step.down,
        })
        .collect();
    let written = files::write_set(&dir, &pairs)?;
    let mut text = String::new();
    for w in written {
        text.push_str(&format!("{}\n{}\n", w.up.display(), w.down.display()));
    }
    output::out(&text)
}

/// A rendered pattern's steps with the descriptions their files take: the pattern's own for a
/// single migration, `<description>_<step>` for each of several.
fn push_steps(out: &mut Vec<(String, Step)>, description: &str, rendered: Rendered) {
    for step in rendered.steps {
        let d = match &step.name {
            Some(name) => format!("{description}_{name}"),
            None => description.to_string(),
        };
        out.push((d, step));
    }
}
