//! Every PL/pgSQL function pgx creates passes `plpgsql_check`: each built-in pattern's example
//! (from its YAML, so a new pattern is covered without touching this file) is applied, then
//! `plpgsql_check_function` runs over every PL/pgSQL function in the database, trigger
//! functions once for each table they are attached to. The same databases show that no SECURITY
//! DEFINER, trigger or event trigger function pgx creates is executable by PUBLIC.

use crate::support::{Project, TestDb};
use pgx::pattern::Catalog;

/// Patterns whose example cannot be applied on its own, with the reason.
const NOT_APPLIED_ALONE: &[(&str, &str)] = &[
    (
        "audit_uninstall",
        "removes the audit infrastructure, so it creates no function; applied on top of audit in audit::uninstall_*",
    ),
    (
        "audit_upgrade",
        "upgrades an older audit infrastructure (a fixture); its functions are audit_install's, checked in audit_security::every_function_passes_plpgsql_check",
    ),
];

type Rows = Vec<Vec<Option<String>>>;

/// Findings accepted, each with the reason: (function name prefix, part of "level: message", why).
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "soft_delete.on_update(",
        "executable by PUBLIC",
        "shared trigger function running with the caller's rights (not SECURITY DEFINER), attached to tables other roles own",
    ),
    (
        "soft_delete.guard(",
        "executable by PUBLIC",
        "shared trigger function running with the caller's rights (not SECURITY DEFINER), attached to tables other roles own",
    ),
];

/// (function, relation, level, message) of every finding, or None when the extension is absent.
fn lint(db: &TestDb) -> Option<Rows> {
    let available =
        db.scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'plpgsql_check'");
    if available.as_deref() != Some("1") {
        return None;
    }
    db.exec("CREATE EXTENSION IF NOT EXISTS plpgsql_check");
    Some(db.rows(
        "WITH fns AS (
           SELECT p.oid, p.prorettype = 'trigger'::regtype AS is_trigger
           FROM pg_proc p
           JOIN pg_language l ON l.oid = p.prolang
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE l.lanname = 'plpgsql' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                               AND d.objid = p.oid AND d.deptype = 'e')
         ), targets AS (
           -- A trigger function is checked for each table, with the transition tables its
           -- triggers there name (one function may serve INSERT, UPDATE and DELETE triggers,
           -- each naming only its own, while its code handles all three).
           SELECT f.oid, COALESCE(t.tgrelid, 0) AS relid, f.is_trigger,
                  max(t.tgoldtable) AS oldtable, max(t.tgnewtable) AS newtable
           FROM fns f LEFT JOIN pg_trigger t ON f.is_trigger AND t.tgfoid = f.oid
           GROUP BY 1, 2, 3
         )
         SELECT x.oid::regprocedure::text, x.relid::regclass::text, r.level, r.message
         FROM targets x
         CROSS JOIN LATERAL plpgsql_check_function_tb(x.oid, x.relid, extra_warnings => true,
                                                      oldtable => x.oldtable, newtable => x.newtable) r
         WHERE NOT (x.is_trigger AND x.relid = 0)
         UNION ALL
         -- Counted, so that the caller can assert the check saw every function.
         SELECT x.oid::regprocedure::text, x.relid::regclass::text, 'checked', NULL
         FROM targets x WHERE NOT (x.is_trigger AND x.relid = 0)
         UNION ALL
         SELECT x.oid::regprocedure::text, NULL, 'unattached', NULL
         FROM targets x WHERE x.is_trigger AND x.relid = 0
         UNION ALL
         -- Functions that run with elevated rights or that triggers call are PUBLIC's to run
         -- (or to attach to a table of one's own) only when the ACL says so: NULL means PUBLIC.
         SELECT p.oid::regprocedure::text, NULL, 'executable by PUBLIC', NULL
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                             AND d.objid = p.oid AND d.deptype = 'e')
           AND (p.prosecdef OR p.prorettype IN ('trigger'::regtype, 'event_trigger'::regtype))
           AND (p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) a WHERE a.grantee = 0))",
    ))
}

fn apply_example(name: &str) -> (TestDb, Project) {
    let catalog = Catalog::builtin().unwrap();
    let pattern = catalog.get(name).unwrap();
    let example = pattern.example.clone().unwrap_or_default();
    let db = TestDb::new();
    let p = Project::new();
    if let Some(setup) = &example.setup {
        p.add("setup", &setup.up, &setup.down);
    }
    let mut cmd = p.pgx().db(&db).args(["new", name]);
    if let Some(table) = &example.table {
        cmd = cmd.arg(table);
    }
    if let Some(schema) = &example.schema {
        cmd = cmd.args(["--schema", schema]);
    }
    for (k, v) in pattern.example_sets() {
        cmd = cmd.args(["--set", &format!("{k}={v}")]);
    }
    // The setup must exist for `pgx new` to look at the table, as a user's would.
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    cmd.ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    (db, p)
}

#[test]
fn every_plpgsql_function_of_every_pattern_passes_plpgsql_check() {
    let catalog = Catalog::builtin().unwrap();
    let names: Vec<String> = catalog
        .patterns()
        .map(|p| p.name.clone())
        .filter(|n| !NOT_APPLIED_ALONE.iter().any(|(skip, _)| skip == n))
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for (skip, why) in NOT_APPLIED_ALONE {
        eprintln!("not applied alone: {skip}: {why}");
    }
    let results: Vec<(String, Option<Rows>)> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    s.spawn(move || {
                        let (db, _p) = apply_example(n);
                        lint(&db)
                    }),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(n, h)| (n, h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))))
            .collect()
    });
    let mut checked = 0;
    let mut checked_functions = std::collections::BTreeSet::new();
    let mut unattached = std::collections::BTreeSet::new();
    let mut findings = Vec::new();
    let mut excused = vec![0usize; EXCEPTIONS.len()];
    for (name, rows) in &results {
        let Some(rows) = rows else {
            eprintln!(
                "SKIPPED: the plpgsql_check extension is not installed on the test server (.ci/run installs it)"
            );
            return;
        };
        for row in rows {
            let function = row[0].clone().unwrap_or_default();
            let level = row[2].as_deref().unwrap_or_default();
            let message = row[3].as_deref().unwrap_or_default();
            match level {
                "checked" => {
                    checked += 1;
                    checked_functions.insert(function);
                }
                "unattached" => {
                    unattached.insert(function);
                }
                _ => match EXCEPTIONS.iter().position(|(f, m, _)| {
                    function.starts_with(f) && format!("{level}: {message}").contains(m)
                }) {
                    Some(i) => excused[i] += 1,
                    None => findings.push(format!("{name}: {function}: {level}: {message}")),
                },
            }
        }
    }
    // A trigger function an installation creates is checked where a pattern attaches it.
    for f in &unattached {
        assert!(
            checked_functions.contains(f),
            "trigger function {f} is attached by no pattern's example, so it was never checked"
        );
    }
    let mut stale = Vec::new();
    for ((f, m, why), n) in EXCEPTIONS.iter().zip(&excused) {
        eprintln!("excused {n}x: {f}: {m} ({why})");
        if *n == 0 {
            stale.push(format!("{f}: {m}"));
        }
    }
    assert_eq!(
        stale,
        Vec::<String>::new(),
        "exceptions no longer needed: remove them"
    );
    eprintln!("{checked} function/table pairs checked");
    assert!(checked >= 10, "too few functions checked: {checked}");
    assert_eq!(findings, Vec::<String>::new(), "plpgsql_check findings");
}
