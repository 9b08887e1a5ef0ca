//! `pgx check`: runs the check and prints its report.

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use crate::cli::CheckArgs;
use crate::error::{Error, Result, one_line};
use crate::migrate::check::{Options, Problem, Report, Step, check};
use crate::output;
use crate::project::Project;

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
    for w in &report.warnings {
        let _ = writeln!(text, "  warn  {}", w.message);
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
            let _ = writeln!(text, "          {}", one_line(&d.to_string()));
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
            let listed: Vec<String> = first
                .differences
                .iter()
                .take(SHOWN)
                .map(ToString::to_string)
                .collect();
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

/// How often a long check says how far it is.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// `pgx check`
pub async fn run(project: &Project, args: &CheckArgs) -> Result<()> {
    let start = Instant::now();
    let last = Cell::new(start);
    // For a person watching: a log keeps the report alone.
    let show = !args.quiet.quiet && std::io::stderr().is_terminal();
    let progress = |s: Step| {
        let now = Instant::now();
        let finished = s.done == s.total;
        // A short check prints nothing; a long one a line every few seconds and at the end
        // of each pass.
        if show && now - start >= PROGRESS_EVERY && (now - last.get() >= PROGRESS_EVERY || finished)
        {
            last.set(now);
            output::note(&format!(
                "check: {} {}/{} migrations ({:.1} s)",
                s.phase,
                s.done,
                s.total,
                (now - start).as_secs_f64()
            ));
        }
    };
    let options = Options {
        strict: args.strict,
        progress: &progress,
    };
    let report = check(&project.migrations_dir(), &options, || {
        super::database_url(project, &args.db)
    })
    .await?;
    if args.json.json {
        output::json(&report)?;
    } else {
        output::out(&human(&report))?;
    }
    if report.ok {
        Ok(())
    } else {
        Err(failure(&report))
    }
}
