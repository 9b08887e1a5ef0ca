//! `pgx check`: proves, on a scratch database created and dropped for the purpose, that the
//! migrations apply from zero and that each down migration reverses its up.
//!
//! The files are checked first (names sqlx reads, an up for every down and a down for every
//! up). Then every migration is applied one at a time, the schema snapshotted before each; the
//! downs are run back to zero one at a time, each compared with the snapshot taken before its
//! up, so the first down that does not reverse its up is named with the objects that differ;
//! finally every migration is applied again and compared with the first pass.
//!
//! Files sqlx-cli could not apply are warned about (failures under `strict`): a
//! `-- no-transaction` file of several statements, which sqlx-cli sends as one query and
//! PostgreSQL then runs as one transaction, where `CREATE INDEX CONCURRENTLY` and the like fail.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::postgres::PgConnection;

use super::baseline::IRREVERSIBLE;
use super::files::{self, Migration};
use super::plan::Down;
use super::runner::{Runner, Scope};
use crate::db::snapshot::{Difference, Tracker};
use crate::db::url::DbUrl;
use crate::error::{Error, Result};

/// Nothing else migrates a scratch database: this only guards against a stuck session.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `file`, `up`, `down` or `reapply`.
    pub kind: &'static str,
    pub version: Option<i64>,
    pub description: Option<String>,
    pub file: Option<String>,
    pub message: String,
    /// Objects whose state differs from what it should be (`before` is the expected one).
    pub differences: Vec<Difference>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub ok: bool,
    pub migrations_dir: String,
    pub migrations: usize,
    /// The server the scratch database was made on (password redacted).
    pub server: Option<String>,
    pub scratch_database: Option<String>,
    /// What was proven, in order.
    pub passed: Vec<String>,
    pub problems: Vec<Problem>,
    /// What pgx applies but sqlx-cli would not (problems too under `strict`).
    pub warnings: Vec<Warning>,
}

/// A file pgx applies but another runner would fail on.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub file: String,
    pub message: String,
}

/// How far the database part of a check is: `done` of `total` migrations of `phase` (`up`,
/// `down` or `reapply`).
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub phase: &'static str,
    pub done: usize,
    pub total: usize,
}

/// How to check.
pub struct Options<'a> {
    /// Fail on warnings too.
    pub strict: bool,
    /// Told after each migration applied or reverted.
    pub progress: &'a dyn Fn(Step),
}

impl Problem {
    pub(super) fn file(path: &Path, message: String) -> Problem {
        Problem {
            kind: "file",
            version: None,
            description: None,
            file: Some(path.display().to_string()),
            message,
            differences: Vec::new(),
        }
    }

    fn migration(kind: &'static str, m: &Migration, file: Option<&Path>, message: String) -> Self {
        Problem {
            kind,
            version: Some(m.version),
            description: Some(m.description.clone()),
            file: file.map(|f| f.display().to_string()),
            message,
            differences: Vec::new(),
        }
    }
}

fn scratch_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or_default();
    format!("pgx_check_{}_{nanos}", std::process::id())
}

/// Runs the whole check. Database problems land in the report; `Err` means the check could
/// not run (no server, no right to create a database).
///
/// `server` gives the URL of the server to make the scratch database on; it is only called
/// when there are migrations to apply (so an empty project needs no server).
pub async fn check(
    dir: &Path,
    options: &Options<'_>,
    server: impl FnOnce() -> Result<DbUrl>,
) -> Result<Report> {
    let mut report = Report {
        migrations_dir: dir.display().to_string(),
        ..Report::default()
    };
    report.problems = super::names::problems(dir)?;
    if !report.problems.is_empty() {
        return Ok(report);
    }
    let migrations = files::scan(dir)?;
    report.migrations = migrations.len();
    report.warnings = sqlx_cli_warnings(&migrations);
    if options.strict {
        report
            .problems
            .extend(report.warnings.iter().map(|w| Problem {
                kind: "file",
                version: None,
                description: None,
                file: Some(w.file.clone()),
                message: w.message.clone(),
                differences: Vec::new(),
            }));
        if !report.problems.is_empty() {
            return Ok(report);
        }
    }
    report.passed.push(format!(
        "file names: {} migration{}, each with its .up.sql and .down.sql",
        migrations.len(),
        if migrations.len() == 1 { "" } else { "s" }
    ));
    if migrations.is_empty() {
        report.ok = true;
        return Ok(report);
    }
    let url = server()?;
    report.server = Some(url.to_string());
    on_scratch_database(&url, &mut report, async |conn, report| {
        walk(conn, &migrations, dir, options.progress, report).await
    })
    .await?;
    report.ok = report.problems.is_empty();
    Ok(report)
}

/// Creates a scratch database on the server of `url`, runs `f` connected to it, and drops it
/// whatever `f` returns.
async fn on_scratch_database(
    url: &DbUrl,
    report: &mut Report,
    f: impl AsyncFnOnce(&mut PgConnection, &mut Report) -> Result<()>,
) -> Result<()> {
    let mut admin = crate::db::connect(url).await?;
    let name = scratch_name();
    let quoted = crate::sql::quote_ident(&name)
        .map_err(|e| Error::Usage(format!("scratch database name {name:?}: {e}")))?
        .into_owned();
    // template0: "from zero" means without whatever template1 holds on this server.
    if let Err(e) = crate::db::exec(
        &mut admin,
        &format!("CREATE DATABASE {quoted} TEMPLATE template0"),
        &format!("cannot create the scratch database {name} (the user needs CREATEDB)"),
    )
    .await
    {
        crate::db::close(admin).await;
        return Err(e);
    }
    report.scratch_database = Some(name.clone());
    let result = async {
        let mut conn = crate::db::connect(&url.with_database(&name)?).await?;
        let r = f(&mut conn, report).await;
        crate::db::close(conn).await;
        r
    }
    .await;
    let dropped = crate::db::exec(
        &mut admin,
        &format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"),
        &format!("cannot drop the scratch database {name}"),
    )
    .await;
    crate::db::close(admin).await;
    result.and(dropped)
}

async fn runner(conn: &mut PgConnection) -> Result<Runner<'_>> {
    Runner::new(conn, Scope::default(), LOCK_TIMEOUT).await
}

/// The marker a down migration writes to say it leaves a schema in place on purpose (an audit
/// trail's log, say: dropping recorded history must never be silent).
const KEEPS_SCHEMA: &str = "-- pgx check: keeps schema ";

/// The schemas `sql` declares it keeps, as quoted identifiers (the form snapshot keys use).
fn kept_schemas(sql: &str) -> Vec<String> {
    sql.lines()
        .filter_map(|l| l.strip_prefix(KEEPS_SCHEMA))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Drops differences about objects inside the kept schemas (and the schemas themselves).
fn outside_kept(differences: Vec<Difference>, kept: &[String]) -> Vec<Difference> {
    differences
        .into_iter()
        .filter(|d| {
            // A comment's key names its object as PostgreSQL does (`comment on table column
            // audit.log.id`, `comment on trigger t on audit.log`): kept if a name in it is.
            if let Some(object) = d.object.strip_prefix("comment on") {
                return !kept.iter().any(|k| {
                    object.contains(&format!(" {k}.")) || object.ends_with(&format!(" {k}"))
                });
            }
            let name = d.object.split_once(' ').map_or("", |(_, n)| n);
            !kept
                .iter()
                .any(|k| name == k || name.starts_with(&format!("{k}.")))
        })
        .collect()
}

/// `-- no-transaction` files holding more than one statement.
fn sqlx_cli_warnings(migrations: &[Migration]) -> Vec<Warning> {
    migrations
        .iter()
        .flat_map(|m| std::iter::once(&m.up).chain(m.down.as_ref()))
        .filter(|f| f.no_transaction)
        .filter_map(|f| {
            let statements = crate::sql::split_statements(&f.sql);
            (statements.len() > 1).then(|| Warning {
                file: f.path.display().to_string(),
                message: format!(
                    "{}: a -- no-transaction file of {} statements (lines {}): sqlx-cli sends it as one query, which PostgreSQL runs as one transaction, so CREATE INDEX CONCURRENTLY and the like fail there; put each statement in a migration of its own",
                    f.path.display(),
                    statements.len(),
                    statements
                        .iter()
                        .map(|s| s.line.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        })
        .collect()
}

async fn walk(
    conn: &mut PgConnection,
    migrations: &[Migration],
    dir: &Path,
    progress: &dyn Fn(Step),
    report: &mut Report,
) -> Result<()> {
    let total = migrations.len();
    let step = |phase, done| progress(Step { phase, done, total });
    // The schema is followed by a tracker, which reads again only what each migration touched;
    // changes[i] is what migration i's up changed, so the schema expected before migration i
    // (and after its down) is the one after all ups with changes[n-1] .. changes[i] undone.
    let mut tracker = Tracker::new(conn).await?;
    let mut changes = Vec::with_capacity(migrations.len());
    for m in migrations {
        let applied = runner(conn)
            .await?
            .up(migrations, dir, Some(m.version), false)
            .await;
        if let Err(e) = applied {
            report.problems.push(Problem::migration(
                "up",
                m,
                Some(&m.up.path),
                format!("applying it from zero failed: {e}"),
            ));
            return Ok(());
        }
        changes.push(tracker.refresh(conn).await?);
        step("up", changes.len());
    }
    report.passed.push(format!(
        "up from zero: {} migrations applied, one at a time",
        migrations.len()
    ));

    // A down that refuses on purpose (a baseline's) is a floor: the downs above it are proven,
    // and the reapplying starts above it.
    let floor = migrations.iter().rposition(|m| {
        m.down
            .as_ref()
            .is_some_and(|d| d.sql.lines().any(|l| l.trim_end() == IRREVERSIBLE))
    });
    let above_floor = floor.map_or(0, |f| f + 1);
    let mut kept: Vec<String> = Vec::new();
    let mut expected = tracker.snapshot().clone();
    for (i, m) in migrations.iter().enumerate().skip(above_floor).rev() {
        let down_path = m.down.as_ref().map(|d| d.path.as_path());
        for schema in m
            .down
            .as_ref()
            .map(|d| kept_schemas(&d.sql))
            .unwrap_or_default()
        {
            report.passed.push(format!(
                "migration {} ({}) keeps schema {schema} on purpose (its down says so)",
                m.version, m.description
            ));
            kept.push(schema);
        }
        let reverted = runner(conn)
            .await?
            .down(migrations, dir, Down::Steps(1))
            .await;
        if let Err(e) = reverted {
            report.problems.push(Problem::migration(
                "down",
                m,
                down_path,
                format!("its down failed: {e}"),
            ));
            return Ok(());
        }
        tracker.refresh(conn).await?;
        step("down", total - i);
        expected.unapply(&changes[i]);
        let differences = outside_kept(expected.diff(tracker.snapshot()), &kept);
        if !differences.is_empty() {
            let mut p = Problem::migration(
                "down",
                m,
                down_path,
                "its down does not reverse its up".to_string(),
            );
            p.differences = differences;
            report.problems.push(p);
            return Ok(());
        }
    }
    match floor {
        None => report
            .passed
            .push("down to zero: every down reverses its up, back to the empty schema".to_string()),
        Some(f) => report.passed.push(format!(
            "down to migration {} ({}): every down above it reverses its up; its own down refuses on purpose ({IRREVERSIBLE})",
            migrations[f].version, migrations[f].description
        )),
    }

    for (i, m) in migrations.iter().enumerate().skip(above_floor) {
        let applied = runner(conn)
            .await?
            .up(migrations, dir, Some(m.version), false)
            .await;
        if let Err(e) = applied {
            report.problems.push(Problem::migration(
                "reapply",
                m,
                Some(&m.up.path),
                format!("applying it again after rolling back failed: {e}"),
            ));
            return Ok(());
        }
        tracker.refresh(conn).await?;
        step("reapply", i + 1);
        expected.apply(&changes[i]);
        let differences = outside_kept(expected.diff(tracker.snapshot()), &kept);
        if !differences.is_empty() {
            let mut p = Problem::migration(
                "reapply",
                m,
                Some(&m.up.path),
                "applied again after rolling back, its up gives a different schema".to_string(),
            );
            p.differences = differences;
            report.problems.push(p);
            return Ok(());
        }
    }
    report
        .passed
        .push("up again: the same schema as the first time".to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_down_may_keep_only_the_schemas_it_names() {
        let sql = "-- pgx check: keeps schema audit\n-- pgx check: keeps schema \"Audit Log\"\nDROP TRIGGER t ON x;";
        let kept = kept_schemas(sql);
        assert_eq!(kept, ["audit", "\"Audit Log\""]);
        let d = |object: &str| Difference {
            object: object.into(),
            before: None,
            after: Some(String::new()),
        };
        let left = outside_kept(
            vec![
                d("schema audit"),
                d("relation audit.log"),
                d("column \"Audit Log\".log.id"),
                d("relation auditing.log"),
                d("trigger public.orders.audit_insert"),
                d("comment on schema audit"),
                d("comment on table column \"Audit Log\".log.id"),
                d("comment on function audit.capture(integer, text)"),
                d("comment on trigger audit_insert on public.orders"),
            ],
            &kept,
        );
        let names: Vec<&str> = left.iter().map(|d| d.object.as_str()).collect();
        assert_eq!(
            names,
            [
                "relation auditing.log",
                "trigger public.orders.audit_insert",
                "comment on trigger audit_insert on public.orders"
            ]
        );
    }
}
