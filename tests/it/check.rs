//! `pgx check` on the real server: every built-in pattern passes, and downs that forget a
//! trigger, a policy or a column are caught, naming the migration and the object.

use crate::support::{Project, Run, admin_url, try_rows};

const ORDERS: &str =
    "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text NOT NULL);";

fn check(p: &Project) -> crate::support::Pgx {
    p.pgx().args(["check", "--database-url", &admin_url()])
}

fn json_report(p: &Project) -> serde_json::Value {
    let run = check(p).arg("--json").run();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn version_of(file: &str) -> &str {
    file.split('_').next().unwrap()
}

/// The scratch database the report names is gone.
fn assert_dropped(report: &serde_json::Value) {
    let name = report["scratch_database"]
        .as_str()
        .expect("the report names its scratch database");
    let rows = try_rows(
        &admin_url(),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    )
    .unwrap();
    assert_eq!(rows[0][0].as_deref(), Some("0"), "{name} was not dropped");
}

/// A project whose middle migration is `up`/`down`, between two good ones; returns the middle
/// migration's up file name.
fn project_with(desc: &str, up: &str, down: &str) -> (Project, String) {
    let p = Project::new();
    p.add("create_orders", ORDERS, "DROP TABLE orders;");
    let broken = p.add(desc, up, down);
    p.add(
        "index_orders_item",
        "CREATE INDEX orders_item ON orders (item);",
        "DROP INDEX orders_item;",
    );
    (p, broken)
}

/// Asserts the check fails on the down of `file`, naming it and `object` as `how` (left over...).
fn assert_down_caught(p: &Project, file: &str, desc: &str, object_line: &str) {
    let version = version_of(file);
    let run: Run = check(p).fails();
    run.stderr_has(&format!("migration {version} ({desc})"))
        .stderr_has("its down does not reverse its up")
        .stderr_has(object_line);
    run.stdout_has("ok    up from zero: 3 migrations")
        .stdout_has(&format!(
            "FAIL  migration {version} ({desc}): its down does not reverse its up"
        ))
        .stdout_has(object_line);

    let report = json_report(p);
    assert_eq!(report["ok"], false);
    let problem = &report["problems"][0];
    assert_eq!(problem["kind"], "down");
    assert_eq!(problem["version"].to_string(), version);
    assert!(
        problem["file"]
            .as_str()
            .unwrap()
            .ends_with(&file.replace(".up.sql", ".down.sql")),
        "{problem}"
    );
    let objects: Vec<&str> = problem["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["object"].as_str().unwrap())
        .collect();
    let object = object_line.split(" is ").next().unwrap();
    assert!(objects.contains(&object), "{objects:?}");
    assert_eq!(report["problems"].as_array().unwrap().len(), 1);
    assert_dropped(&report);
}

#[test]
fn a_down_that_forgets_a_trigger_is_named_with_the_trigger() {
    let (p, file) = project_with(
        "orders_skip_noop_updates",
        "CREATE INDEX orders_item_lower ON orders (lower(item));
         CREATE TRIGGER orders_skip_noop_updates BEFORE UPDATE ON orders
             FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();",
        "DROP INDEX orders_item_lower;",
    );
    assert_down_caught(
        &p,
        &file,
        "orders skip noop updates",
        "trigger public.orders.orders_skip_noop_updates is left over",
    );
}

#[test]
fn a_down_that_forgets_a_policy_is_named_with_the_policy() {
    let (p, file) = project_with(
        "orders_rls",
        "ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
         CREATE POLICY orders_visible ON orders USING (item <> '');",
        "ALTER TABLE orders DISABLE ROW LEVEL SECURITY;",
    );
    assert_down_caught(
        &p,
        &file,
        "orders rls",
        "policy public.orders.orders_visible is left over",
    );
}

#[test]
fn a_down_that_leaves_a_column_is_named_with_the_column() {
    let (p, file) = project_with(
        "orders_note",
        "ALTER TABLE orders ADD COLUMN note text NOT NULL DEFAULT '';",
        "ALTER TABLE orders ALTER COLUMN note DROP DEFAULT;",
    );
    assert_down_caught(
        &p,
        &file,
        "orders note",
        "column public.orders.note is left over",
    );
    // The relation's column list is shown as the part that changed.
    check(&p)
        .fails()
        .stdout_has("relation public.orders differs: should be «… columns (id, item)», is «… columns (id, item, note)»");
}

#[test]
fn every_builtin_pattern_passes_check() {
    let list = Project::new().pgx().args(["patterns", "--json"]).ok();
    let patterns: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let builtin: Vec<String> = patterns
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["origin"]["kind"] == "built-in")
        .map(|p| p["name"].as_str().unwrap().to_string())
        // Removing the audit infrastructure only applies on top of an audit trail that audits
        // no table any more, a history `pgx check` cannot start from zero by design; its up
        // and down are proved in audit::uninstall_is_refused_while_a_table_is_audited_then_removes_everything.
        .filter(|name| name != "audit_uninstall")
        // Upgrading needs an older audit infrastructure, which only older pgx versions wrote;
        // proved from a fixture in audit_upgrade::an_embedded_infrastructure_upgrades_and_check_passes.
        .filter(|name| name != "audit_upgrade")
        .collect();
    assert!(builtin.contains(&"timestamps".to_string()), "{builtin:?}");
    for name in builtin {
        let p = Project::new();
        let show = p.pgx().args(["patterns", "show", &name, "--json"]).ok();
        let spec: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
        // `pgx new NAME [TABLE] [--set K=V]...`, as the pattern documents its example.
        let command = spec["example"]["command"].as_str().unwrap();
        let rest = command.strip_prefix("pgx new ").unwrap();
        let mut parts = rest.split(" --set ");
        let head: Vec<&str> = parts.next().unwrap().split_whitespace().collect();
        let mut args = vec!["new".to_string()];
        args.extend(head.iter().map(|s| (*s).to_string()));
        for set in parts {
            args.push("--set".into());
            args.push(set.to_string());
        }
        if let Some(setup) = spec["example"]["setup"].as_object() {
            p.add(
                "setup",
                setup["up"].as_str().unwrap(),
                setup["down"].as_str().unwrap(),
            );
        } else if spec["target"] == "table" {
            let table = head[1];
            p.add(
                &format!("create_{table}"),
                &format!(
                    "CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);"
                ),
                &format!("DROP TABLE {table};"),
            );
        }
        p.pgx().args(&args).ok();
        let run = check(&p).run();
        assert!(
            run.success,
            "pattern {name}: {}\n{}",
            run.stderr, run.stdout
        );
        run.stdout_has("ok    down to zero")
            .stdout_has("ok    up again: the same schema");
        assert_dropped(&json_report(&p));
    }
}

#[test]
fn a_down_that_fails_is_named_with_its_file_and_error() {
    let (p, file) = project_with(
        "orders_status",
        "ALTER TABLE orders ADD COLUMN status text;",
        "ALTER TABLE orders DROP COLUMN state;",
    );
    let run = check(&p).fails();
    run.stderr_has(&format!(
        "migration {} (orders status): its down failed",
        version_of(&file)
    ))
    .stderr_has("column \"state\" of relation \"orders\" does not exist");
    let report = json_report(&p);
    assert_eq!(report["problems"][0]["kind"], "down");
    assert_dropped(&report);
}

#[test]
fn an_up_that_gives_another_schema_the_second_time_is_caught() {
    // The default is computed when the migration runs: reverting it is exact, re-applying is not.
    let (p, file) = project_with(
        "orders_batch",
        "DO $$ BEGIN EXECUTE format('ALTER TABLE orders ADD COLUMN batch text DEFAULT %L', clock_timestamp()::text); END $$;",
        "ALTER TABLE orders DROP COLUMN batch;",
    );
    let run = check(&p).fails();
    run.stderr_has(&format!(
        "migration {} (orders batch): applied again after rolling back, its up gives a different schema",
        version_of(&file)
    ))
    .stderr_has("column public.orders.batch differs");
    run.stdout_has("ok    down to zero");
    let report = json_report(&p);
    assert_eq!(report["problems"][0]["kind"], "reapply");
    assert_dropped(&report);
}

#[test]
fn file_problems_fail_before_any_database_is_touched() {
    let p = Project::new();
    p.add("create_orders", ORDERS, "DROP TABLE orders;");
    p.write("migrations/20200101000000_no_down.up.sql", "SELECT 1;\n");
    p.write(
        "migrations/seed.sql",
        "INSERT INTO orders (item) VALUES ('x');\n",
    );
    // A server that does not exist: the check must stop at the files.
    let run = p
        .pgx()
        .args([
            "check",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .fails();
    run.stderr_has("2 problems with migration files");
    run.stdout_has(
        "20200101000000_no_down.up.sql has no down migration: add 20200101000000_no_down.down.sql",
    )
    .stdout_has("seed.sql is not named VERSION_DESCRIPTION.up.sql or .down.sql")
    .stdout_has("database checks skipped");
    let run = p
        .pgx()
        .args([
            "check",
            "--json",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .run();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["problems"].as_array().unwrap().len(), 2);
    assert!(report["scratch_database"].is_null());
}

#[test]
fn a_good_history_passes_and_reports_what_it_proved() {
    let (p, _) = project_with(
        "orders_note",
        "ALTER TABLE orders ADD COLUMN note text NOT NULL DEFAULT '';",
        "ALTER TABLE orders DROP COLUMN note;",
    );
    let run = check(&p).ok();
    assert_eq!(run.stderr, "", "nothing on stderr when a URL is given");
    for line in [
        "ok    file names: 3 migrations, each with its .up.sql and .down.sql",
        "ok    up from zero: 3 migrations applied, one at a time",
        "ok    down to zero: every down reverses its up",
        "ok    up again: the same schema as the first time",
    ] {
        run.stdout_has(line);
    }
    let report = json_report(&p);
    assert_eq!(report["ok"], true);
    assert_eq!(report["passed"].as_array().unwrap().len(), 4);
    assert_dropped(&report);
}
