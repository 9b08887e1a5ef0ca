//! Every PL/pgSQL function pgx creates passes `plpgsql_check`: each built-in pattern's example
//! (from its YAML, so a new pattern is covered without touching this file) is applied, then
//! `plpgsql_check_function` runs over every PL/pgSQL function in the database, trigger
//! functions once for each table they are attached to.

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
           SELECT DISTINCT f.oid, COALESCE(t.tgrelid, 0) AS relid, f.is_trigger
           FROM fns f LEFT JOIN pg_trigger t ON f.is_trigger AND t.tgfoid = f.oid
         )
         SELECT x.oid::regprocedure::text, x.relid::regclass::text, r.level, r.message
         FROM targets x
         CROSS JOIN LATERAL plpgsql_check_function_tb(x.oid, x.relid, extra_warnings => true) r
         WHERE NOT (x.is_trigger AND x.relid = 0)
         UNION ALL
         -- Counted, so that the caller can assert the check saw every function.
         SELECT x.oid::regprocedure::text, x.relid::regclass::text, 'checked', NULL
         FROM targets x WHERE NOT (x.is_trigger AND x.relid = 0)
         UNION ALL
         SELECT x.oid::regprocedure::text, NULL, 'unattached trigger function', NULL
         FROM targets x WHERE x.is_trigger AND x.relid = 0",
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
    let mut findings = Vec::new();
    for (name, rows) in &results {
        let Some(rows) = rows else {
            eprintln!(
                "SKIPPED: the plpgsql_check extension is not installed on the test server (.ci/run installs it)"
            );
            return;
        };
        for row in rows {
            let level = row[2].as_deref().unwrap_or_default();
            match level {
                "checked" => checked += 1,
                _ => findings.push(format!("{name}: {row:?}")),
            }
        }
    }
    eprintln!("{checked} function/table pairs checked");
    assert!(checked >= 10, "too few functions checked: {checked}");
    assert_eq!(findings, Vec::<String>::new(), "plpgsql_check findings");
}
