//! Schema-aware `pgx new`: the generic engine that evaluates a pattern's `infer:` queries (see
//! `pattern::infer`) against the table in the database, for the parameters the user did not
//! set. Here, because only `commands` combines `db` and `pattern`: the pattern says what to ask,
//! the database answers, and the answers go back to the pattern as if given with `--set`.

use std::path::{Path, PathBuf};

use crate::cli::DbArgs;
use crate::db::{self, dev::Cluster, inspect, url::DbUrl};
use crate::error::{Error, Result};
use crate::pattern::infer::{self, Inferred};
use crate::pattern::{Catalog, Pattern, infra};
use crate::project::Project;

/// What `pgx new` renders with: the user's settings plus what was inferred.
pub struct Inference {
    pub sets: Vec<(String, String)>,
    pub inferred: Vec<Inferred>,
    /// Lines for stderr, printed once the migration is written (a failure stays one line).
    pub notes: Vec<String>,
}

/// The table being inspected, and what the plan needs to resolve parameters.
pub struct Subject<'a> {
    pub catalog: &'a Catalog,
    pub pattern: &'a Pattern,
    pub schema: &'a str,
    pub table: Option<&'a str>,
    pub dir: &'a Path,
    pub existing: &'a [(i64, PathBuf, String)],
}

/// Infers every parameter that declares `infer:` and is not in `sets`, with one note per choice.
/// Without a database to ask, says so and infers nothing.
pub fn run(
    project: &Project,
    db: &DbArgs,
    s: &Subject<'_>,
    sets: &[(String, String)],
) -> Result<Inference> {
    let mut out = Inference {
        sets: sets.to_vec(),
        inferred: Vec::new(),
        notes: Vec::new(),
    };
    let wanted: Vec<_> = s
        .pattern
        .parameters
        .iter()
        .filter(|p| p.infer.is_some() && !sets.iter().any(|(k, _)| *k == p.name))
        .collect();
    if wanted.is_empty() {
        return Ok(out);
    }
    // Looking is a convenience: a dev cluster that cannot start is a note, not a failure.
    let (url, label) = match database(project, db) {
        Ok(Some(found)) => found,
        Ok(None) => {
            out.notes.push("nothing inferred: no database URL and no dev cluster yet, so parameters you did not set take their defaults (--offline says this is on purpose)".into());
            return Ok(out);
        }
        Err(e) => {
            out.notes.push(format!("nothing inferred: {e}"));
            return Ok(out);
        }
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let mut conn = match db::connect(&url).await {
            Ok(c) => c,
            Err(e) => {
                out.notes.push(format!(
                    "nothing inferred: {e}; rendering with defaults (pass --offline to skip the database)"
                ));
                return Ok(());
            }
        };
        let result = async {
            if let Some(table) = s.table {
                let qualified = infer::qualified(s.schema, table);
                if !inspect::relation_exists(&mut conn, &qualified).await? {
                    out.notes.push(format!(
                        "nothing inferred: {qualified} is not in {label} (yet); parameters you did not set take their defaults"
                    ));
                    return Ok(());
                }
            }
            for p in wanted {
                let Some(inf) = &p.infer else { continue };
                // Types only: a value's SQL type may depend on what is still to be inferred.
                let resolved = s.pattern.resolve_types(&out.sets)?;
                let binds = infer::bindings(inf, s.schema, s.table, &resolved);
                let what = format!("inferring `{}` of pattern `{}`", p.name, s.pattern.name);
                let Some((value, message)) =
                    inspect::first_pair(&mut conn, &inf.positional.sql, &binds, &what).await?
                else {
                    continue;
                };
                let message = message.unwrap_or_default();
                let i = Inferred {
                    parameter: p.name.clone(),
                    value,
                    message,
                };
                out.notes.push(i.line());
                if let Some(v) = &i.value {
                    out.sets.push((p.name.clone(), v.clone()));
                }
                out.inferred.push(i);
            }
            Ok(())
        }
        .await;
        db::close(conn).await;
        result
    })?;
    Ok(out)
}

/// The pattern's parameters with `inference`'s settings; an inferred value the pattern refuses
/// says it was inferred, and why.
pub fn plan<'c>(s: &Subject<'c>, inference: &Inference) -> Result<infra::Plan<'c>> {
    infra::plan(s.catalog, s.pattern, &inference.sets, s.dir, s.existing).map_err(|e| match e {
        Error::InvalidParameter {
            pattern,
            name,
            expected,
            value,
            reason,
        } => {
            let why = inference
                .inferred
                .iter()
                .find(|i| i.parameter == name && i.value.is_some())
                .map(|i| {
                    format!(
                        "inferred from the database: {}; set it with --set {name}=...",
                        i.message
                    )
                });
            Error::InvalidParameter {
                pattern,
                name,
                expected,
                value,
                reason: why.or(reason),
            }
        }
        other => other,
    })
}

/// The database to inspect, and how to name it: the configured URL, else the dev cluster when it
/// exists (started if stopped; never created just to look at a table).
fn database(project: &Project, db: &DbArgs) -> Result<Option<(DbUrl, String)>> {
    if let Some(url) = db::url::configured(project, db.database_url.as_deref()) {
        let label = format!("the database of {}", url.source());
        return Ok(Some((url, label)));
    }
    if std::env::var("PGX_DEV").is_ok_and(|v| v.eq_ignore_ascii_case("off")) {
        return Ok(None);
    }
    let cluster = Cluster::for_project(&project.root)?;
    if !cluster.status()?.created {
        return Ok(None);
    }
    cluster.ensure_running()?;
    Ok(Some((
        cluster.url(),
        format!(
            "database {:?} of the dev cluster in {}",
            db::dev::DATABASE,
            cluster.describe()
        ),
    )))
}
