//! `pgx new PATTERN [TABLE]`: a pattern rendered into new migrations: one pair, or one per step
//! of the pattern, after the shared infrastructure it needs when the project has none yet.
//! Parameters the user did not set are inferred from the table when a database is reachable
//! (see `infer`), unless `--offline`.

use std::path::Path;

use super::infer::{self, Inference, Subject};
use crate::cli::{MigrationScope, NewArgs};
use crate::error::{Error, Result};
use crate::migrate::files::{self, NewPair};
use crate::output;
use crate::pattern::params::{ParamType, parse_text};
use crate::pattern::{Catalog, Rendered, Renderer, Sources, Step, Target, render_recording};
use crate::project::Project;

pub(super) fn parse_sets(sets: &[String]) -> Result<Vec<(String, String)>> {
    sets.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(Error::SetSyntax { arg: s.clone() }),
        })
        .collect()
}

/// The schema (`None`: each tenant's) and table to render for: `TABLE` may be `schema.table`.
fn target(project: &Project, args: &NewArgs) -> Result<(Option<String>, Option<String>)> {
    let (in_table, table) = match &args.table {
        None => (None, None),
        Some(text) => {
            let parsed = parse_text(ParamType::QualifiedIdentifier, text, &[]).map_err(|e| {
                Error::Usage(format!(
                    "TABLE {text:?} must be a table name or schema.table{}",
                    e.reason.map(|r| format!(" ({r})")).unwrap_or_default()
                ))
            })?;
            let part = |k: &str| parsed[k].as_str().map(str::to_string);
            (part("schema"), part("name"))
        }
    };
    let schema = match (args.place.scope, in_table, args.schema.clone()) {
        (MigrationScope::Tenant, None, None) => None,
        (MigrationScope::Tenant, _, _) => {
            return Err(Error::Usage(
                "--schema cannot be used with --scope tenant (nor TABLE as schema.table): tenant migrations run in each tenant's schema".into(),
            ));
        }
        (MigrationScope::Database, Some(a), Some(b)) if a != b => {
            return Err(Error::Usage(format!(
                "TABLE names schema {a:?} but --schema says {b:?}: give one of them"
            )));
        }
        (MigrationScope::Database, a, b) => {
            Some(a.or(b).unwrap_or_else(|| project.config.schema.clone()))
        }
    };
    for (what, name) in [("schema", &schema), ("table", &table)] {
        if let Some(name) = name {
            crate::sql::check_ident(name).map_err(|reason| Error::Identifier {
                what: what.into(),
                name: name.clone(),
                reason,
            })?;
        }
    }
    Ok((schema, table))
}

pub fn run(project: &Project, args: &NewArgs) -> Result<()> {
    let catalog = Catalog::load(&Sources::of(project))?;
    let pattern = catalog.get(&args.pattern)?;
    let sets = parse_sets(&args.sets)?;
    let (schema, table) = target(project, args)?;
    if pattern.target == Target::Table && table.is_none() {
        return Err(Error::PatternUsage {
            pattern: pattern.name.clone(),
            message: "needs a table: pgx new PATTERN TABLE".into(),
        });
    }
    let dir = super::migrations_dir(project, args.place.scope);
    let existing = files::up_files(&dir)?;
    let subject = Subject {
        catalog: &catalog,
        pattern,
        schema: schema.as_deref().unwrap_or_default(),
        table: table.as_deref(),
        dir: &dir,
        existing: &existing,
    };
    // Bad input is refused before any database is asked anything (values are checked against
    // their SQL type once the types are known).
    pattern.resolve_types(&sets)?;
    let given = Inference {
        sets,
        inferred: Vec::new(),
        notes: Vec::new(),
    };
    let inference = match (&schema, args.offline) {
        (Some(_), false) => infer::run(project, &args.db, &subject, &given.sets)?,
        _ => given,
    };
    let plan = infer::plan(&subject, &inference)?;
    let renderer = Renderer::new(&catalog)?;
    let description = files::file_description(&match (&args.name, &table) {
        (Some(n), _) => n.clone(),
        (None, Some(t)) => format!("{}_{t}", pattern.name),
        (None, None) => pattern.name.clone(),
    })?;

    // Every migration to write, in order: the infrastructure first when it is missing.
    let mut migrations: Vec<(String, Step)> = Vec::new();
    if let Some((install, resolved)) = &plan.install {
        let rendered =
            render_recording(&renderer, install, schema.as_deref(), None, resolved, &[])?;
        push_steps(
            &mut migrations,
            &files::file_description(&install.name)?,
            rendered,
        );
    }
    let rendered = render_recording(
        &renderer,
        pattern,
        schema.as_deref(),
        table.as_deref(),
        &plan.resolved,
        &inference.inferred,
    )?;
    push_steps(&mut migrations, &description, rendered);

    let place = super::place(&args.place);
    if args.dry_run.dry_run {
        let versions = files::plan_versions(&dir, migrations.len(), place)?;
        let listed: Vec<(i64, &str, &str, &str)> = versions
            .iter()
            .zip(&migrations)
            .map(|(v, (d, step))| (*v, d.as_str(), step.up.as_str(), step.down.as_str()))
            .collect();
        output::out(&dry_run_text(&dir, &listed))?;
    } else {
        let pairs: Vec<NewPair<'_>> = migrations
            .iter()
            .map(|(description, step)| NewPair {
                description,
                up: &step.up,
                down: &step.down,
            })
            .collect();
        let written = files::write_set(&dir, &pairs, place)?;
        let mut text = String::new();
        for w in written {
            text.push_str(&format!("{}\n{}\n", w.up.display(), w.down.display()));
        }
        output::out(&text)?;
    }
    for note in &inference.notes {
        output::note(note);
    }
    if let Some(hint) = &pattern.hint {
        output::note(hint);
    }
    Ok(())
}

/// The files a dry run would write, each after a `-- file: PATH` line.
pub(super) fn dry_run_text(dir: &Path, files: &[(i64, &str, &str, &str)]) -> String {
    let mut text = String::new();
    for (v, description, up, down) in files {
        for (kind, sql) in [("up", up), ("down", down)] {
            let path = dir.join(format!("{v}_{description}.{kind}.sql"));
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("-- file: {}\n{sql}", path.display()));
        }
    }
    text
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
