//! Schema per tenant: `pgx tenant add|list|drop`, `pgx migrate up --tenants [--jobs N]` and
//! `pgx new|add --scope tenant`, on the real database.

use crate::support::{Project, TestDb};

/// Writes a tenant migration pair through `pgx add --scope tenant`.
fn add_tenant_migration(p: &Project, desc: &str, up: &str, down: &str) {
    p.pgx()
        .args(["add", "--scope", "tenant", desc, "--up", up, "--down", down])
        .ok();
}

/// Versions recorded in a schema's own history.
fn history(db: &TestDb, schema: &str) -> Vec<String> {
    db.column(&format!(
        "SELECT description FROM {schema}._sqlx_migrations WHERE success ORDER BY version"
    ))
}

fn tables(db: &TestDb, schema: &str) -> Vec<String> {
    db.column(&format!(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = '{schema}' AND c.relkind = 'r' AND c.relname <> '_sqlx_migrations'
         ORDER BY 1"
    ))
}

fn tenant_schemas(db: &TestDb) -> Vec<String> {
    db.column("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1")
}

#[test]
fn three_tenants_migrated_and_a_fourth_added_later_gets_every_migration() {
    let db = TestDb::new();
    let p = Project::new();
    // Unqualified names land in each tenant's schema.
    add_tenant_migration(
        &p,
        "create items",
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);",
        "DROP TABLE items;",
    );
    p.pgx()
        .args(["new", "timestamps", "items", "--scope", "tenant"])
        .ok();
    p.pgx()
        .db(&db)
        .args(["tenant", "add", "acme", "beta", "gamma"])
        .ok();

    add_tenant_migration(
        &p,
        "create notes",
        "CREATE TABLE notes (id bigint PRIMARY KEY, item bigint REFERENCES items);",
        "DROP TABLE notes;",
    );
    let list = p.pgx().db(&db).args(["tenant", "list"]).ok();
    let listed: Vec<&str> = list.stdout.lines().skip(1).collect();
    assert_eq!(listed.len(), 3, "one line per tenant: {}", list.stdout);
    for line in listed {
        assert!(line.ends_with("1 pending"), "{}", list.stdout);
    }
    p.pgx()
        .db(&db)
        .args(["migrate", "up", "--tenants", "--jobs", "2"])
        .ok();
    p.pgx().db(&db).args(["tenant", "add", "delta"]).ok();

    let all = ["create items", "timestamps items", "create notes"];
    for schema in ["tenant_acme", "tenant_beta", "tenant_delta", "tenant_gamma"] {
        assert_eq!(history(&db, schema), all, "{schema}");
        assert_eq!(tables(&db, schema), ["items", "notes"], "{schema}");
        assert!(
            db.scalar(&format!(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = '{schema}.items'::regclass AND NOT tgisinternal"
            ))
            .as_deref()
                == Some("1"),
            "{schema}: the timestamps trigger belongs to the tenant's own table"
        );
    }
    // Nothing leaked into the database's own schema or history.
    assert_eq!(tables(&db, "public"), Vec::<String>::new());
    assert_eq!(
        db.scalar("SELECT to_regclass('public._sqlx_migrations') IS NULL")
            .as_deref(),
        Some("t")
    );

    let list = p.pgx().db(&db).args(["tenant", "list"]).ok();
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(lines[0].starts_with("TENANT"), "{}", list.stdout);
    assert_eq!(lines.len(), 5, "{}", list.stdout);
    for (line, tenant) in lines[1..].iter().zip(["acme", "beta", "delta", "gamma"]) {
        assert!(line.starts_with(tenant), "{line}");
        assert!(line.contains(&format!("tenant_{tenant}")), "{line}");
        assert!(line.ends_with("up to date"), "{line}");
    }
    let json = p.pgx().db(&db).args(["tenant", "list", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["tenants"][2]["tenant"], "delta");
    assert_eq!(v["tenants"][2]["applied"], 3);
    assert_eq!(v["tenants"][2]["pending"], 0);
}

#[test]
fn a_failing_tenant_migration_stops_the_run_and_names_the_schema() {
    let db = TestDb::new();
    let p = Project::new();
    add_tenant_migration(
        &p,
        "create items",
        "CREATE TABLE items (id bigint PRIMARY KEY);",
        "DROP TABLE items;",
    );
    p.pgx()
        .db(&db)
        .args(["tenant", "add", "a", "b", "c", "d"])
        .ok();
    // Creates a table, then fails in tenant_b only: tenant_b must keep neither.
    add_tenant_migration(
        &p,
        "add audit",
        "CREATE TABLE audit (id bigint);
         DO $$ BEGIN IF current_schema() = 'tenant_b' THEN RAISE EXCEPTION 'b is broken'; END IF; END $$;",
        "DROP TABLE audit;",
    );

    let run = p.pgx().db(&db).args(["migrate", "up", "--tenants"]).fails();
    run.stderr_has("tenant schema \"tenant_b\" failed")
        .stderr_has("1 of 4 tenant schemas migrated, 2 not attempted")
        .stderr_has("b is broken")
        .stderr_has("rolled back");
    assert_eq!(tables(&db, "tenant_a"), ["audit", "items"]);
    assert_eq!(tables(&db, "tenant_b"), ["items"], "no partial migration");
    assert_eq!(history(&db, "tenant_b"), ["create items"]);
    // Stopped: the schemas after the failing one were not started.
    assert_eq!(tables(&db, "tenant_c"), ["items"]);
    assert_eq!(tables(&db, "tenant_d"), ["items"]);

    // In parallel, the failing schema is still reported and keeps nothing of the migration.
    let run = p
        .pgx()
        .db(&db)
        .args(["migrate", "up", "--tenants", "--jobs", "3"])
        .fails();
    run.stderr_has("tenant schema \"tenant_b\" failed")
        .stderr_has("b is broken");
    assert_eq!(tables(&db, "tenant_b"), ["items"]);
    assert_eq!(history(&db, "tenant_b"), ["create items"]);
    // Whether a job had already started tenant_c when tenant_b failed depends on timing; either
    // way tenant_c is whole: migrated with its history, or untouched.
    let c = tables(&db, "tenant_c");
    match c.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["audit", "items"] => assert_eq!(history(&db, "tenant_c"), ["create items", "add audit"]),
        ["items"] => assert_eq!(history(&db, "tenant_c"), ["create items"]),
        other => panic!("tenant_c is half migrated: {other:?}"),
    }
    let list = p.pgx().db(&db).args(["tenant", "list"]).ok();
    let b = list.stdout.lines().find(|l| l.starts_with("b ")).unwrap();
    assert!(b.ends_with("1 pending"), "{}", list.stdout);
}

#[test]
fn tenant_add_keeps_nothing_of_a_tenant_whose_migrations_fail() {
    let db = TestDb::new();
    let p = Project::new();
    add_tenant_migration(
        &p,
        "broken",
        "CREATE TABLE items (id bigint); SELECT 1 / 0;",
        "DROP TABLE items;",
    );
    p.pgx()
        .db(&db)
        .args(["tenant", "add", "acme"])
        .fails()
        .stderr_has("tenant \"acme\" was not created (its schema was dropped again)")
        .stderr_has("division by zero");
    assert_eq!(tenant_schemas(&db), Vec::<String>::new());
}

#[test]
fn tenant_names_are_checked_before_anything_is_created() {
    let db = TestDb::new();
    let p = Project::new();
    for bad in ["Acme", "a-b", "_x", "a;drop schema public", &"x".repeat(57)] {
        p.pgx()
            .db(&db)
            .args(["tenant", "add", "ok", bad])
            .fails()
            .stderr_has("invalid tenant name");
    }
    db.exec("CREATE SCHEMA tenant_taken");
    p.pgx()
        .db(&db)
        .args(["tenant", "add", "fine", "taken"])
        .fails()
        .stderr_has("schema \"tenant_taken\" already exists and is not a tenant schema");
    assert_eq!(tenant_schemas(&db), ["tenant_taken"]);

    p.pgx().db(&db).args(["tenant", "add", "acme"]).ok();
    p.pgx()
        .db(&db)
        .args(["tenant", "add", "acme"])
        .fails()
        .stderr_has("tenant \"acme\" already exists");

    // The prefix comes from pgx.yaml, and the schema name is quoted wherever it is used.
    p.write(
        "pgx.yaml",
        "tenant_schema_prefix: \"Client \"\ntenant_migrations: migrations/tenant\n",
    );
    p.pgx().db(&db).args(["tenant", "add", "acme"]).ok();
    assert_eq!(
        db.scalar("SELECT count(*) FROM \"Client acme\"._sqlx_migrations")
            .as_deref(),
        Some("0")
    );
    let list = p.pgx().db(&db).args(["tenant", "list"]).ok();
    assert!(
        list.stdout.contains("acme    Client acme"),
        "{}",
        list.stdout
    );
}

#[test]
fn tenant_drop_needs_yes_and_only_drops_tenant_schemas() {
    let db = TestDb::new();
    let p = Project::new();
    add_tenant_migration(
        &p,
        "create items",
        "CREATE TABLE items (id bigint);",
        "DROP TABLE items;",
    );
    p.pgx().db(&db).args(["tenant", "add", "acme", "beta"]).ok();
    p.pgx()
        .db(&db)
        .args(["tenant", "drop", "acme"])
        .fails()
        .stderr_has("without --yes");
    assert_eq!(tenant_schemas(&db), ["tenant_acme", "tenant_beta"]);
    p.pgx()
        .db(&db)
        .args(["tenant", "drop", "acme", "--yes"])
        .ok();
    assert_eq!(tenant_schemas(&db), ["tenant_beta"]);
    p.pgx()
        .db(&db)
        .args(["tenant", "drop", "acme", "--yes"])
        .fails()
        .stderr_has("no tenant \"acme\"");
    db.exec("CREATE SCHEMA tenant_plain");
    p.pgx()
        .db(&db)
        .args(["tenant", "drop", "plain", "--yes"])
        .fails()
        .stderr_has("no tenant \"plain\"");
    assert_eq!(tenant_schemas(&db), ["tenant_beta", "tenant_plain"]);
}

#[test]
fn new_with_tenant_scope_writes_unqualified_sql_into_the_tenant_folder() {
    let p = Project::new();
    let run = p
        .pgx()
        .args(["new", "timestamps", "items", "--scope", "tenant"])
        .ok();
    let up_path = run.stdout.lines().next().unwrap();
    assert!(up_path.starts_with("migrations/tenant/"), "{up_path}");
    assert!(p.files("migrations").iter().all(|f| !f.ends_with(".sql")));
    let up = p.read(up_path);
    assert!(
        up.contains("-- table: \"items\" in each tenant schema"),
        "{up}"
    );
    assert!(up.contains("ALTER TABLE items"), "{up}");
    assert!(!up.contains("public."), "{up}");

    p.pgx()
        .args([
            "new",
            "timestamps",
            "items",
            "--scope",
            "tenant",
            "--schema",
            "s",
        ])
        .fails()
        .stderr_has("--schema cannot be used with --scope tenant");
    p.pgx()
        .args(["new", "tenant", "items", "--scope", "tenant"])
        .fails()
        .stderr_has("a tenant schema is isolated already");
}

#[test]
fn migrate_up_tenants_dry_run_prints_each_schema_and_changes_nothing() {
    let db = TestDb::new();
    let p = Project::new();
    p.pgx().db(&db).args(["tenant", "add", "acme", "beta"]).ok();
    add_tenant_migration(
        &p,
        "create items",
        "CREATE TABLE items (id bigint);",
        "DROP TABLE items;",
    );
    let run = p
        .pgx()
        .db(&db)
        .args(["migrate", "up", "--tenants", "--dry-run"])
        .ok();
    run.stdout_has("-- tenant schema \"tenant_acme\"")
        .stdout_has("-- tenant schema \"tenant_beta\"")
        .stdout_has("CREATE TABLE items (id bigint);");
    assert_eq!(tables(&db, "tenant_acme"), Vec::<String>::new());
    let run = p.pgx().db(&db).args(["migrate", "up", "--jobs", "2"]).run();
    assert!(
        !run.success && run.stderr.contains("--tenants"),
        "{}",
        run.stderr
    );
    assert_eq!(tables(&db, "tenant_acme"), Vec::<String>::new());
}
