//! Rendering of the `tenant` pattern: snapshots of the SQL it writes for reviewers to read (run
//! with `PGX_BLESS=1` to rewrite them after a deliberate change), and the inputs it
//! refuses. What the SQL does is tested on the database in `tenant_rls`.

use std::path::PathBuf;

use pgx::pattern::Catalog;
use pgx::pattern::{Renderer, render_pattern};

use crate::support::Project;

fn render(table: &str, sets: &[(&str, &str)]) -> pgx::pattern::Rendered {
    let catalog = Catalog::builtin().unwrap();
    let pattern = catalog.get("tenant").unwrap();
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let resolved = pattern.resolve(&sets).unwrap();
    let renderer = Renderer::new(&catalog).unwrap();
    render_pattern(&renderer, pattern, "public", Some(table), &resolved).unwrap()
}

/// Compares `text` with the stored snapshot `name`, or rewrites it when asked to.
fn snapshot(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/tenant_snapshots")
        .join(name);
    if std::env::var_os("PGX_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with PGX_BLESS=1 to create it)",
            path.display()
        )
    });
    if stored != text {
        let line = stored
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| stored.lines().count().min(text.lines().count()));
        panic!(
            "{} differs from the rendering at line {}:\n  stored:   {:?}\n  rendered: {:?}\n(run with PGX_BLESS=1 to accept the rendering)",
            path.display(),
            line + 1,
            stored.lines().nth(line),
            text.lines().nth(line)
        );
    }
}

fn check(name: &str, table: &str, sets: &[(&str, &str)]) -> pgx::pattern::Rendered {
    let r = render(table, sets);
    snapshot(&format!("{name}.up.sql"), &r.up());
    snapshot(&format!("{name}.down.sql"), &r.down());
    r
}

#[test]
fn default_rendering() {
    let r = check("default", "orders", &[]);
    assert!(!r.no_transaction());
    assert!(
        r.up()
            .contains("ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY")
    );
    assert!(
        r.up()
            .contains("USING (tenant_id = (SELECT public.orders_current_tenant()))")
    );
    assert!(
        r.up()
            .contains("WITH CHECK (tenant_id = (SELECT public.orders_current_tenant()))")
    );
}

#[test]
fn existing_column_with_every_option() {
    check(
        "existing_column",
        "orders",
        &[
            ("add_column", "false"),
            ("backfill", "00000000-0000-0000-0000-000000000001"),
            ("references", "core.tenants(id)"),
            ("role", "app"),
            ("unique", "email,Code"),
            ("global_unique", "orders_pkey"),
            ("composite_keys", "true"),
            ("strict", "true"),
            ("view", "my_orders"),
            ("secure_views", "true"),
        ],
    );
}

#[test]
fn concurrently_is_split_into_single_statement_no_transaction_steps() {
    let r = check(
        "concurrently",
        "orders",
        &[
            ("concurrently", "true"),
            ("backfill", "7"),
            ("type", "bigint"),
            ("references", "tenants(id)"),
            ("unique", "email"),
        ],
    );
    let shape: Vec<(&str, bool)> = r
        .steps
        .iter()
        .map(|s| (s.name.as_deref().unwrap(), s.no_transaction))
        .collect();
    assert_eq!(
        shape,
        [
            ("prepare", false),
            ("validate", false),
            ("build_1", true),
            ("retry", false),
            ("rebuild_1", true),
            ("isolate", false),
        ]
    );
    for step in r.steps.iter().filter(|s| s.no_transaction) {
        assert!(step.up.starts_with("-- no-transaction\n"), "{}", step.up);
        assert_eq!(pgx::sql::split_statements(&step.up).len(), 1, "{}", step.up);
        assert!(
            pgx::sql::split_statements(&step.down).len() <= 1,
            "{}",
            step.down
        );
    }
    let build = &r.steps[2];
    assert!(build.up.contains(
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_tenant_id_email_key ON public.orders (tenant_id, email);"
    ));
    assert!(
        build
            .down
            .contains("DROP INDEX CONCURRENTLY IF EXISTS public.orders_tenant_id_email_key;")
    );
    // The transactional steps open with a short lock timeout, as every pattern does.
    for step in r.steps.iter().filter(|s| !s.no_transaction) {
        assert!(
            step.up.contains("SET LOCAL lock_timeout = '100ms';"),
            "{}",
            step.up
        );
    }
}

/// A pattern that runs outside a transaction as one migration may hold one statement: sqlx-cli
/// sends the file as one query, which PostgreSQL runs as one transaction.
#[test]
fn the_engine_refuses_any_no_transaction_rendering_of_several_statements() {
    let p = Project::new();
    p.write(
        "patterns/two_indexes.yaml",
        "name: two_indexes\nsummary: Two indexes at once\ntarget: table\nno_transaction: true\ntemplates: { up: two_indexes/up.sql.tera, down: two_indexes/down.sql.tera }\n",
    );
    p.write(
        "templates/two_indexes/up.sql.tera",
        "CREATE INDEX CONCURRENTLY a ON {{ table | qualified }} (a);\nCREATE INDEX CONCURRENTLY b ON {{ table | qualified }} (b);\n",
    );
    p.write(
        "templates/two_indexes/down.sql.tera",
        "DROP INDEX CONCURRENTLY {{ \"a\" | qualified(schema=table.schema) }};\n",
    );
    p.pgx()
        .args(["new", "two_indexes", "orders"])
        .fails()
        .stderr_has("two_indexes/up.sql.tera: a no-transaction migration renders 2 statements; it must hold exactly one")
        .stderr_has("-- pgx:step NAME no-transaction");
    assert_eq!(p.files("migrations"), Vec::<String>::new());
}

#[test]
fn partitioned_table() {
    let r = check(
        "partitioned",
        "events",
        &[("partitioned", "true"), ("type", "integer")],
    );
    // One event trigger for every partitioned tenant table, calling pgx's helper: created by
    // the first, dropped with the last.
    assert!(r.up().contains(
        "CREATE EVENT TRIGGER pgx_tenant_partitions ON ddl_command_end\n                WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')\n                EXECUTE FUNCTION pgx.tenant_new_partitions();"
    ));
    assert!(
        r.up()
            .contains("PERFORM pgx.tenant_isolate_partition(part.relid, tbl);")
    );
    assert!(
        r.down()
            .contains("DROP EVENT TRIGGER IF EXISTS pgx_tenant_partitions;")
    );
    // Nothing in the table's own schema for the event trigger to call.
    assert!(
        !r.up().contains("CREATE FUNCTION public.events_isolate"),
        "{}",
        r.up()
    );
}

#[test]
fn citus_distribution() {
    let r = check(
        "citus",
        "orders",
        &[
            ("distribute", "citus"),
            ("type", "text"),
            ("unique", "number"),
        ],
    );
    let (up, down) = (r.up(), r.down());
    assert!(
        up.contains("SELECT pg_catalog.create_distributed_table('public.orders', 'tenant_id');"),
        "{up}"
    );
    // One permissive policy, USING and WITH CHECK, no subquery: Citus refuses subqueries in
    // policies and re-creates policies on the shards without AS RESTRICTIVE, where a second
    // permissive policy would widen isolation.
    assert_eq!(up.matches("CREATE POLICY").count(), 1, "{up}");
    assert!(up.contains(
        "CREATE POLICY orders_tenant_isolation ON public.orders AS PERMISSIVE FOR ALL TO PUBLIC\n    USING (tenant_id = public.orders_current_tenant())\n    WITH CHECK (tenant_id = public.orders_current_tenant());"
    ));
    assert!(
        !up.contains("(SELECT public.orders_current_tenant())"),
        "{up}"
    );
    assert!(!up.contains("AS RESTRICTIVE FOR"), "{up}");
    // Distributed before the policy, so Citus creates it on every shard.
    let distribute = up.find("create_distributed_table(").unwrap();
    assert!(distribute < up.find("CREATE POLICY").unwrap());
    // Refusals before anything changes: identity columns, local tables referencing it,
    // triggers (the audit pattern's), other policies.
    let checks = up.find("-- Checks before anything changes").unwrap();
    let first_change = up
        .find("CREATE FUNCTION public.orders_current_tenant")
        .unwrap();
    for refusal in [
        "has identity column(s)",
        "local table(s) % reference %",
        "has trigger(s) %",
        "has policy(ies) %",
    ] {
        let at = up.find(refusal).unwrap_or_else(|| panic!("{refusal}"));
        assert!(checks < at && at < first_change, "{refusal}");
    }
    // Down: sequential mode first; the policy dropped and row security off before
    // undistribute_table, which is followed by the row count check; functions last.
    let order = [
        "SET LOCAL citus.multi_shard_modify_mode TO 'sequential';",
        "DROP POLICY orders_tenant_isolation ON public.orders;",
        "ALTER TABLE public.orders NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;",
        "PERFORM pg_catalog.undistribute_table('public.orders');",
        "refusing to lose rows",
        "COMMENT ON TABLE %s IS %L",
        "DROP FUNCTION public.orders_current_tenant();",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|s| down.find(s).unwrap_or_else(|| panic!("{s}\n{down}")))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{order:?} at {at:?}");
    assert!(up.contains("SET LOCAL citus.multi_shard_modify_mode TO 'sequential';"));
}

#[test]
fn names_are_quoted_and_passed_to_citus_unquoted() {
    let r = render(
        "Order Items",
        &[("column", "Tenant Id"), ("distribute", "citus")],
    );
    assert!(
        r.up()
            .contains("ALTER TABLE public.\"Order Items\" ADD COLUMN \"Tenant Id\" uuid")
    );
    // Citus takes the column name as it is, not as SQL.
    assert!(
        r.up().contains(
            "SELECT pg_catalog.create_distributed_table('public.\"Order Items\"', 'Tenant Id');"
        ),
        "{}",
        r.up()
    );
}

#[test]
fn refused_inputs_fail_with_one_error_line() {
    let p = Project::new();
    for (args, message) in [
        (
            vec!["--set", "setting=tenant"],
            "setting must be a custom setting named prefix.name",
        ),
        (
            vec!["--set", "partitioned=true", "--set", "concurrently=true"],
            "concurrently cannot be used on a partitioned table",
        ),
        (
            vec!["--set", "type=smallint"],
            "expected one of uuid, bigint, integer, text",
        ),
        (
            vec!["--set", "distribute=yes"],
            "expected one of none, citus",
        ),
    ] {
        p.pgx()
            .args(["new", "tenant", "orders"])
            .args(args)
            .fails()
            .stderr_has(message);
    }
    assert_eq!(p.files("migrations"), Vec::<String>::new());
}

/// pgx's own schema, as the tenant pattern's first migration installs it.
#[test]
fn pgx_install_rendering() {
    let catalog = Catalog::builtin().unwrap();
    let pattern = catalog.get("pgx_install").unwrap();
    let resolved = pattern.resolve(&[]).unwrap();
    let r = render_pattern(
        &Renderer::new(&catalog).unwrap(),
        pattern,
        "public",
        None,
        &resolved,
    )
    .unwrap();
    snapshot("pgx_install.up.sql", &r.up());
    snapshot("pgx_install.down.sql", &r.down());
    assert!(r.up().contains("-- pgx provides: \"pgx\" 1\n"));
    // Only the helper the event trigger runs as whoever creates a partition is left to PUBLIC.
    assert!(r.up().contains(
        "REVOKE ALL ON FUNCTION pgx.tenant_key(oid), pgx.tenant_create_key(jsonb), pgx.tenant_foreign_key(oid), pgx.tenant_create_foreign_key(jsonb) FROM PUBLIC;"
    ));
    assert!(
        r.up()
            .contains("REVOKE ALL ON FUNCTION pgx.tenant_new_partitions() FROM PUBLIC;")
    );
}
