//! `pgx check`: proves, on a scratch database created and dropped for the purpose, that the
//! migrations apply from zero and that each down migration reverses its up.
//!
//! The files are checked first (names sqlx reads, an up for every down and a down for every
//! up). Then every migration is applied one at a time, the schema snapshotted before each; the
//! downs are run back to zero one at a time, each compared with the snapshot taken before its
//! up, so the first down that does not reverse its up is named with the objects that differ;
//! finally every migration is applied again and compared with the first pass.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::postgres::PgConnection;

use crate::cli::CheckArgs;
use crate::commands::{database_url, json_out, out};
use crate::config::{DbUrl, Project};
use crate::error::{Error, Result, one_line};
use crate::migration::{self, Kind, Migration};
use crate::runner::{Down, Runner, Scope};
use crate::snapshot::{Difference, Snapshot};

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
}

impl Problem {
    fn file(path: &Path, message: String) -> Problem {
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

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Names sqlx would ignore or reject, migrations without a down, downs without an up, and
/// versions shared by several files.
pub fn file_problems(dir: &Path) -> Result<Vec<Problem>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read migrations directory", dir, e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("sql")))
        .collect();
    paths.sort();
    let mut problems = Vec::new();
    let mut by_version: BTreeMap<i64, Vec<(PathBuf, String, Kind)>> = BTreeMap::new();
    for path in paths {
        let name = file_name(&path);
        if !name.ends_with(".sql") {
            problems.push(Problem::file(
                &path,
                format!(
                    "{name}: the extension must be .sql in lower case, or sqlx ignores the file"
                ),
            ));
            continue;
        }
        match migration::parse_name(&path) {
            Err(e) => problems.push(Problem::file(&path, e.to_string())),
            Ok(None) => problems.push(Problem::file(
                &path,
                format!("{name} is not named VERSION_DESCRIPTION.up.sql or .down.sql, so pgx and sqlx ignore it"),
            )),
            Ok(Some((version, description, kind))) => {
                if description.trim().is_empty() {
                    problems.push(Problem::file(
                        &path,
                        format!("{name} has no description after its version"),
                    ));
                }
                by_version
                    .entry(version)
                    .or_default()
                    .push((path, description, kind));
            }
        }
    }
    for (version, files) in by_version {
        let of = |k: Kind| files.iter().filter(|f| f.2 == k).collect::<Vec<_>>();
        let (simple, up, down) = (of(Kind::Simple), of(Kind::Up), of(Kind::Down));
        if simple.len() + up.len() > 1 || down.len() > 1 {
            let names: Vec<String> = files.iter().map(|f| file_name(&f.0)).collect();
            problems.push(Problem::file(
                &files[0].0,
                format!(
                    "{} share version {version}; each migration needs its own version",
                    names.join(", ")
                ),
            ));
            continue;
        }
        match (simple.first(), up.first(), down.first()) {
            (Some(s), _, _) => problems.push(Problem::file(
                &s.0,
                format!(
                    "{} cannot be reverted: rename it {version}_{}.up.sql and add {version}_{}.down.sql",
                    file_name(&s.0),
                    s.1.replace(' ', "_"),
                    s.1.replace(' ', "_")
                ),
            )),
            (None, Some(u), None) => problems.push(Problem::file(
                &u.0,
                format!(
                    "{} has no down migration: add {}",
                    file_name(&u.0),
                    file_name(&u.0).replace(".up.sql", ".down.sql")
                ),
            )),
            (None, None, Some(d)) => problems.push(Problem::file(
                &d.0,
                format!("{} has no up migration with version {version}", file_name(&d.0)),
            )),
            (None, Some(u), Some(d)) if u.1 != d.1 => problems.push(Problem::file(
                &d.0,
                format!(
                    "{} and {} share a version but not a description; name them alike",
                    file_name(&u.0),
                    file_name(&d.0)
                ),
            )),
            _ => {}
        }
    }
    Ok(problems)
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
pub async fn check(project: &Project, db: &crate::cli::DbArgs) -> Result<Report> {
    let dir = project.migrations_dir();
    let mut report = Report {
        migrations_dir: dir.display().to_string(),
        ..Report::default()
    };
    report.problems = file_problems(&dir)?;
    if !report.problems.is_empty() {
        return Ok(report);
    }
    let migrations = migration::scan(&dir)?;
    report.migrations = migrations.len();
    report.passed.push(format!(
        "file names: {} migration{}, each with its .up.sql and .down.sql",
        migrations.len(),
        if migrations.len() == 1 { "" } else { "s" }
    ));
    if migrations.is_empty() {
        report.ok = true;
        return Ok(report);
    }
    let url = database_url(project, db)?;
    report.server = Some(url.to_string());
    on_scratch_database(&url, &mut report, async |conn, report| {
        walk(conn, &migrations, &dir, report).await
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
            let name = d.object.split_once(' ').map_or("", |(_, n)| n);
            !kept
                .iter()
                .any(|k| name == k || name.starts_with(&format!("{k}.")))
        })
        .collect()
}

async fn walk(
    conn: &mut PgConnection,
    migrations: &[Migration],
    dir: &Path,
    report: &mut Report,
) -> Result<()> {
    // expected[i]: the schema before migration i's up (and after its down); expected[n]: all up.
    let mut expected = vec![Snapshot::take(conn).await?];
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
        expected.push(Snapshot::take(conn).await?);
    }
    report.passed.push(format!(
        "up from zero: {} migrations applied, one at a time",
        migrations.len()
    ));

    let mut kept: Vec<String> = Vec::new();
    for (i, m) in migrations.iter().enumerate().rev() {
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
        let differences = outside_kept(expected[i].diff(&Snapshot::take(conn).await?), &kept);
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
    report
        .passed
        .push("down to zero: every down reverses its up, back to the empty schema".to_string());

    for (i, m) in migrations.iter().enumerate() {
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
        let differences = outside_kept(expected[i + 1].diff(&Snapshot::take(conn).await?), &kept);
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

/// Words of `before` and `after` without what they share at both ends, with a little context:
/// a function body or a relation's column list then reads as the part that changed.
fn changed_part(before: &str, after: &str) -> (String, String) {
    const CONTEXT: usize = 2;
    let b: Vec<&str> = before.split_whitespace().collect();
    let a: Vec<&str> = after.split_whitespace().collect();
    let prefix = b.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let max_suffix = b.len().min(a.len()) - prefix;
    let suffix = b
        .iter()
        .rev()
        .zip(a.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let show = |words: &[&str]| {
        let start = prefix.saturating_sub(CONTEXT);
        let end = (words.len() - suffix + CONTEXT).min(words.len());
        format!(
            "{}{}{}",
            if start > 0 { "… " } else { "" },
            words[start..end].join(" "),
            if end < words.len() { " …" } else { "" }
        )
    };
    (show(&b), show(&a))
}

/// One readable line per object.
pub fn describe(d: &Difference) -> String {
    match (&d.before, &d.after) {
        (None, Some(_)) => format!("{} is left over", d.object),
        (Some(_), None) => format!("{} is missing", d.object),
        (Some(b), Some(a)) => {
            let (b, a) = changed_part(b, a);
            format!("{} differs: should be «{b}», is «{a}»", d.object)
        }
        (None, None) => d.object.clone(),
    }
}

fn subject(p: &Problem) -> String {
    match (p.version, &p.description) {
        (Some(v), Some(d)) => format!("migration {v} ({d})"),
        _ => p.file.clone().unwrap_or_default(),
    }
}

fn human(report: &Report) -> String {
    let mut text = format!(
        "pgx check: {} ({} migration{})\n",
        report.migrations_dir,
        report.migrations,
        if report.migrations == 1 { "" } else { "s" }
    );
    for line in &report.passed {
        let _ = writeln!(text, "  ok    {line}");
    }
    for p in &report.problems {
        let _ = match p.kind {
            "file" => writeln!(text, "  FAIL  {}", p.message),
            _ => writeln!(text, "  FAIL  {}: {}", subject(p), p.message),
        };
        if let (Some(file), false) = (&p.file, p.kind == "file") {
            let _ = writeln!(text, "          file: {file}");
        }
        for d in &p.differences {
            let _ = writeln!(text, "          {}", one_line(&describe(d)));
        }
    }
    if report.problems.iter().all(|p| p.kind == "file") && !report.problems.is_empty() {
        text.push_str("  (database checks skipped until the files are fixed)\n");
    }
    if let (Some(db), Some(server)) = (&report.scratch_database, &report.server) {
        let _ = writeln!(text, "scratch database {db} on {server}: dropped");
    }
    text
}

/// The one-line error for a failed check.
fn failure(report: &Report) -> Error {
    let first = &report.problems[0];
    let message = if first.kind == "file" {
        format!(
            "{} problem{} with migration files, first: {}",
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" },
            first.message
        )
    } else {
        const SHOWN: usize = 5;
        let mut m = format!("{}: {}", subject(first), first.message);
        if !first.differences.is_empty() {
            let listed: Vec<String> = first.differences.iter().take(SHOWN).map(describe).collect();
            let _ = write!(m, ": {}", listed.join("; "));
            if first.differences.len() > SHOWN {
                let _ = write!(m, " (and {} more)", first.differences.len() - SHOWN);
            }
        }
        m
    };
    Error::CheckFailed {
        message: one_line(&message),
    }
}

/// `pgx check`
pub async fn command(project: &Project, args: &CheckArgs) -> Result<()> {
    let report = check(project, &args.db).await?;
    if args.json {
        json_out(
            &serde_json::to_value(&report).map_err(|e| Error::CheckFailed {
                message: format!("cannot print the report as JSON: {e}"),
            })?,
        )?;
    } else {
        out(&human(&report))?;
    }
    if report.ok {
        Ok(())
    } else {
        Err(failure(&report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_definitions_show_the_part_that_changed() {
        let (b, a) = changed_part(
            "kind r owner me acl - persistence p columns (id, item)",
            "kind r owner me acl - persistence p columns (id, item, note)",
        );
        assert_eq!(b, "… columns (id, item)");
        assert_eq!(a, "… columns (id, item, note)");
        let (b, a) = changed_part("text not null default ''::text", "text");
        assert_eq!(
            (b.as_str(), a.as_str()),
            ("text not null default ''::text", "text")
        );
        let (b, a) = changed_part("a b c", "a b c d");
        assert_eq!((b.as_str(), a.as_str()), ("… b c", "… b c d"));
    }

    #[test]
    fn file_problems_name_each_file() {
        let dir = tempfile::tempdir().unwrap();
        let write = |n: &str| std::fs::write(dir.path().join(n), "SELECT 1;\n").unwrap();
        write("20240101000000_ok.up.sql");
        write("20240101000000_ok.down.sql");
        write("20240101000001_no_down.up.sql");
        write("20240101000002_only_down.down.sql");
        write("20240101000003_simple.sql");
        write("20240101000004_a.up.sql");
        write("20240101000004_b.down.sql");
        write("seed.sql");
        write("v1_bad.up.sql");
        std::fs::write(dir.path().join("README.md"), "not sql").unwrap();
        let problems = file_problems(dir.path()).unwrap();
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(problems.len(), 6, "{messages:#?}");
        let has = |needle: &str| {
            assert!(
                messages.iter().any(|m| m.contains(needle)),
                "{needle}: {messages:#?}"
            );
        };
        has(
            "20240101000001_no_down.up.sql has no down migration: add 20240101000001_no_down.down.sql",
        );
        has("20240101000002_only_down.down.sql has no up migration");
        has("20240101000003_simple.sql cannot be reverted");
        has("share a version but not a description");
        has("seed.sql is not named VERSION_DESCRIPTION");
        has("`v1` is not an integer version");
    }

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
            ],
            &kept,
        );
        let names: Vec<&str> = left.iter().map(|d| d.object.as_str()).collect();
        assert_eq!(
            names,
            [
                "relation auditing.log",
                "trigger public.orders.audit_insert"
            ]
        );
    }
}
