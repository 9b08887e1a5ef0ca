//! Every parameter of every built-in pattern, given hostile values: each is either refused with
//! one clear error line, or the migrations `pgx new --dry-run` prints, run through psql (as a
//! user would run dry-run output), execute nothing the value smuggled in. The catalog is
//! iterated, so a new pattern or parameter is covered without touching this file.
//! (`hostile.rs` covers hostile table, schema and column names applied end to end.)

use std::process::{Command, Stdio};

use pgx::pattern::Catalog;
use pgx::pattern::params::ParamType;

use crate::support::{Project, TestDb};

/// Patterns that render nothing in a new project, with the reason.
const NOT_RENDERED_ALONE: &[(&str, &str)] = &[(
    "audit_upgrade",
    "upgrades an audit infrastructure the project's migrations must hold first; its parameters are audit_install's (shared), covered there",
)];

/// The table a payload creates if it breaks out of its quoting.
const CANARY: &str = "pgx_canary";

/// Ways out of every quoting context a value can land in: double-quoted names, string
/// literals, dollar-quoted bodies (pgx's own tag and the plain one), block and line comments.
fn payloads() -> Vec<String> {
    let stmt = format!("CREATE TABLE {CANARY} ()");
    vec![
        format!("x\"; {stmt}; --"),
        format!("x'; {stmt}; --"),
        format!("x$pgx$; {stmt}; --"),
        format!("x$$; {stmt}; --"),
        format!("x*/ {stmt}; /*"),
        format!("x\n{stmt};\n--"),
        format!("x\\'); {stmt}; --"),
    ]
}

/// The value given for a parameter of type `ty`: the payload where the type's text goes.
fn hostile_value(ty: ParamType, payload: &str) -> String {
    match ty {
        // A foreign-key target: the payload as the column and, separately, as the table.
        ParamType::Reference => format!("orders({payload})"),
        _ => payload.to_string(),
    }
}

struct Outcome {
    refused: usize,
    applied: usize,
    applied_cleanly: usize,
}

/// The up files of a dry run in order, then its down files in reverse order.
fn split_dry_run(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut ups, mut downs) = (Vec::new(), Vec::new());
    let mut current: Option<(bool, String)> = None;
    for line in text.split_inclusive('\n') {
        if let Some(path) = line.strip_prefix("-- file: ") {
            if let Some((up, sql)) = current.take() {
                if up { ups.push(sql) } else { downs.push(sql) }
            }
            current = Some((path.trim_end().ends_with(".up.sql"), String::new()));
        } else if let Some((_, sql)) = current.as_mut() {
            sql.push_str(line);
        }
    }
    if let Some((up, sql)) = current {
        if up { ups.push(sql) } else { downs.push(sql) }
    }
    downs.reverse();
    (ups, downs)
}

/// Runs `sql` through psql without stopping at errors, so that a statement smuggled in after
/// one that fails runs too. Returns whether every statement succeeded.
fn psql(db: &TestDb, sql: &str) -> bool {
    let mut child = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=0",
            "-d",
            &db.url,
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql runs");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), sql.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    !String::from_utf8_lossy(&out.stderr).contains("ERROR:")
}

fn canary_exists(db: &TestDb) -> bool {
    db.scalar(&format!(
        "SELECT count(*) FROM pg_class WHERE relname = '{CANARY}'"
    ))
    .as_deref()
        != Some("0")
}

/// Every parameter of one pattern, each payload in turn, on one database.
fn attack_pattern(name: &str) -> Outcome {
    let catalog = Catalog::builtin().unwrap();
    let pattern = catalog.get(name).unwrap();
    let example = pattern.example.clone().unwrap_or_default();
    let db = TestDb::new();
    let mut outcome = Outcome {
        refused: 0,
        applied: 0,
        applied_cleanly: 0,
    };
    for param in &pattern.parameters {
        for payload in payloads() {
            let value = hostile_value(param.ty, &payload);
            let mut sets: Vec<(String, String)> = pattern
                .example_sets()
                .into_iter()
                .filter(|(k, _)| k != &param.name)
                .collect();
            sets.push((param.name.clone(), value.clone()));
            let p = Project::new();
            let mut cmd = p.pgx().env("PGX_DEV", "off").args(["new", name]);
            if let Some(table) = &example.table {
                cmd = cmd.arg(table);
            }
            if let Some(schema) = &example.schema {
                cmd = cmd.args(["--schema", schema]);
            }
            for (k, v) in &sets {
                cmd = cmd.args(["--set", &format!("{k}={v}")]);
            }
            let run = cmd.arg("--dry-run").run();
            let case = format!("{name}: {}={value:?}", param.name);
            if !run.success {
                let lines: Vec<&str> = run.stderr.lines().collect();
                assert!(
                    run.code == Some(1)
                        && lines.len() == 1
                        && lines[0].starts_with("error: ")
                        && (lines[0].contains(&param.name)
                            || lines[0].contains(&param.name.replace('_', " "))
                            || lines[0].contains(&value)),
                    "{case}: a refusal is one error line naming the parameter or its value:\n{}",
                    run.stderr
                );
                outcome.refused += 1;
                continue;
            }
            let (ups, downs) = split_dry_run(&run.stdout);
            assert!(!ups.is_empty(), "{case}: no migration in\n{}", run.stdout);
            let setup = example.setup.clone().unwrap_or_default();
            let up_ok = psql(&db, &format!("{}\n{}", setup.up, ups.concat()));
            assert!(
                !canary_exists(&db),
                "{case}: the value broke out of its quoting and ran:\n{}",
                ups.concat()
            );
            psql(&db, &format!("{}\n{}", downs.concat(), setup.down));
            assert!(!canary_exists(&db), "{case}: the down ran the value");
            outcome.applied += 1;
            outcome.applied_cleanly += usize::from(up_ok);
        }
    }
    outcome
}

#[test]
fn every_parameter_of_every_pattern_refuses_or_contains_hostile_values() {
    let catalog = Catalog::builtin().unwrap();
    let alone = |p: &&pgx::pattern::Pattern| !NOT_RENDERED_ALONE.iter().any(|(n, _)| *n == p.name);
    let names: Vec<String> = catalog
        .patterns()
        .filter(alone)
        .map(|p| p.name.clone())
        .collect();
    let params: usize = catalog
        .patterns()
        .filter(alone)
        .map(|p| p.parameters.len())
        .sum();
    for (name, why) in NOT_RENDERED_ALONE {
        eprintln!("not rendered alone: {name}: {why}");
    }
    assert!(names.len() >= 10 && params >= 50, "{names:?}: {params}");
    // One thread per pattern, each with its own database.
    let outcomes: Vec<(String, Outcome)> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| (n.clone(), s.spawn(move || attack_pattern(n))))
            .collect();
        handles
            .into_iter()
            .map(|(n, h)| (n, h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))))
            .collect()
    });
    let cases: usize = outcomes.iter().map(|(_, o)| o.refused + o.applied).sum();
    assert_eq!(cases, params * payloads().len(), "every case ran");
    for (name, o) in &outcomes {
        eprintln!(
            "{name}: {} refused, {} applied ({} without any error)",
            o.refused, o.applied, o.applied_cleanly
        );
    }
    // Not vacuous: hostile names are accepted (quoted) and applied, not all refused.
    let applied_cleanly: usize = outcomes.iter().map(|(_, o)| o.applied_cleanly).sum();
    assert!(applied_cleanly > 0, "no hostile value was ever applied");
}
