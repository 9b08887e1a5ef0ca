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
            ("view", "my_orders"),
            ("secure_views", "true"),
        ],
    );
}

#[test]
fn concurrently_is_a_no_transaction_migration() {
    let r = check(
        "concurrently",
        "orders",
        &[
            ("concurrently", "true"),
            ("backfill", "7"),
            ("type", "bigint"),
            ("references", "tenants(id)"),
        ],
    );
    assert!(r.no_transaction());
    assert!(r.up().starts_with("-- no-transaction\n"));
    assert!(r.down().starts_with("-- no-transaction\n"));
    assert!(r.up().contains(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_tenant_id_idx ON public.orders (tenant_id);"
    ));
    assert!(r.up().contains("\nBEGIN;\n") && r.up().contains("\nCOMMIT;\n"));
}

#[test]
fn partitioned_table() {
    let r = check(
        "partitioned",
        "events",
        &[("partitioned", "true"), ("type", "integer")],
    );
    assert!(
        r.up().contains(
            "CREATE EVENT TRIGGER public_events_isolate_new_partitions ON ddl_command_end"
        )
    );
    assert!(
        r.down()
            .contains("DROP EVENT TRIGGER public_events_isolate_new_partitions;")
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
    assert!(
        r.up()
            .contains("SELECT create_distributed_table('public.orders', 'tenant_id');"),
        "{}",
        r.up()
    );
    assert!(
        r.down()
            .contains("SELECT undistribute_table('public.orders');")
    );
    // Distributed before the policies, so Citus creates them on every shard.
    let distribute = r.up().find("create_distributed_table(").unwrap();
    let policy = r.up().find("CREATE POLICY").unwrap();
    assert!(distribute < policy);
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
        r.up()
            .contains("SELECT create_distributed_table('public.\"Order Items\"', 'Tenant Id');"),
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
            vec!["--set", "column=a$pgx$b"],
            "containing `$pgx$` cannot be used",
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
