//! `pgx tenant check` on a live database: each side door added after the tenant migration is
//! first shown to work (as the application role), then reported with its fix; once every fix
//! is applied, the check passes.

use crate::support::{Project, TestDb, TestRole};
use crate::tenant_support::*;

fn check(p: &Project, db: &TestDb) -> crate::support::Run {
    p.pgx().db(db).args(["tenant", "check"]).run()
}

/// The `fix:` of each line of a failed check's report, in order.
fn fixes(report: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|l| l.split_once("; fix: ").map(|(_, f)| f.to_string()))
        .collect()
}

#[test]
fn tenant_check_finds_each_door_opened_after_the_migration_and_passes_once_closed() {
    let db = TestDb::new();
    let app = app_role();
    let bypass = TestRole::new("pgx_bypass", "NOSUPERUSER BYPASSRLS");
    let p = orders_owned_by(&db, &app);
    p.add(
        "events",
        &format!(
            "CREATE TABLE events (id bigint NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
             CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
             ALTER TABLE events OWNER TO {0}; ALTER TABLE events_2024 OWNER TO {0};",
            app.name
        ),
        "DROP TABLE events;",
    );
    new_tenant(&p, "orders", &[]);
    new_tenant_as_given(&p, "events", &["partitioned=true"]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    seed(&db);
    db.exec(&format!(
        "INSERT INTO events VALUES (1, '2024-02-01', '{A}'), (2, '2024-03-01', '{B}')"
    ));
    let run = check(&p, &db);
    assert!(run.success, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "public.events (tenant_id): no side door found\npublic.orders (tenant_id): no side door found\n"
    );

    // Doors opened later, by the superuser and by the owner, each tried by the application.
    let a = tenant_of(A);
    let b = tenant_of(B);
    db.exec(&format!(
        "CREATE VIEW all_orders AS SELECT * FROM orders;
         CREATE MATERIALIZED VIEW order_items AS SELECT item FROM orders;
         CREATE FUNCTION count_orders() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM public.orders';
         GRANT SELECT ON all_orders, order_items TO {app}; GRANT CREATE ON SCHEMA public TO {app};
         GRANT SELECT ON orders TO {bypass};",
        app = app.name,
        bypass = bypass.name
    ));
    assert_eq!(
        column_as(&db, &app, &format!("{a} SELECT count(*) FROM all_orders")),
        ["5"]
    );
    assert_eq!(
        column_as(&db, &app, &format!("{a} SELECT count(*) FROM order_items")),
        ["5"]
    );
    assert_eq!(
        column_as(&db, &app, &format!("{a} SELECT count_orders()")),
        ["5"]
    );
    assert_eq!(
        column_as(&db, &bypass, "SELECT count(*) FROM orders"),
        ["5"]
    );
    let a_id = db
        .scalar(&format!(
            "SELECT id FROM orders WHERE tenant_id = '{A}' LIMIT 1"
        ))
        .unwrap();
    ok_as(
        &db,
        &app,
        &format!(
            "ALTER TABLE orders ADD COLUMN parent_id bigint REFERENCES orders;
             CREATE UNIQUE INDEX orders_item ON orders (item);
             DROP INDEX orders_tenant_id_idx;
             DROP POLICY events_tenant_isolation ON events_2024;
             CREATE POLICY events_everything ON events_2024 USING (true);
             {b} INSERT INTO orders (item, parent_id) VALUES ('b-child-of-a', {a_id});"
        ),
    );
    // B attached a row to A's order, learns A's items by their unique key, and reads A's
    // events through the partition.
    let err = as_role(
        &db,
        &app,
        &format!("{b} INSERT INTO orders (item) VALUES ('a1')"),
    )
    .unwrap_err();
    assert!(err.contains("orders_item"), "{err}");
    assert_eq!(
        column_as(&db, &app, &format!("{b} SELECT count(*) FROM events_2024")),
        ["2"]
    );
    ok_as(&db, &app, "ALTER TABLE orders NO FORCE ROW LEVEL SECURITY");
    assert_eq!(
        column_as(&db, &app, "SELECT count(*) FROM orders"),
        ["6"],
        "the owner is no longer confined"
    );

    let run = check(&p, &db);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(
        run.stderr.trim(),
        "error: check failed: 10 side doors around row security on 2 of 2 tenant-isolated tables"
    );
    for (object, fix) in [
        (
            "view public.all_orders",
            "ALTER VIEW public.all_orders SET (security_invoker = true)",
        ),
        (
            "materialized view public.order_items",
            "DROP MATERIALIZED VIEW public.order_items",
        ),
        (
            "function public.count_orders()",
            "ALTER FUNCTION public.count_orders() SECURITY INVOKER",
        ),
        (
            "foreign key orders_parent_id_fkey of public.orders",
            "composite_keys=true",
        ),
        (
            "unique key orders_item of public.orders",
            "global_unique=orders_item",
        ),
        (
            "row security on public.orders is not forced",
            "FORCE ROW LEVEL SECURITY",
        ),
        (
            "public.orders has no valid btree index led by tenant_id",
            "CREATE INDEX CONCURRENTLY ON public.orders (tenant_id)",
        ),
        (
            "public.events_2024 lacks pgx's policy events_tenant_isolation",
            "SELECT pgx.tenant_isolate_partition('public.events_2024', 'public.events')",
        ),
        (
            "permissive policy events_everything on public.events_2024",
            "DROP POLICY events_everything ON public.events_2024",
        ),
        (
            &format!("role {} has BYPASSRLS", bypass.name),
            &format!("ALTER ROLE {} NOBYPASSRLS", bypass.name),
        ),
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.contains(object) && l.contains(fix)),
            "no line for {object} with {fix}:\n{}",
            run.stdout
        );
    }
    assert_eq!(run.stdout.lines().count(), 10, "{}", run.stdout);
    let json = p.pgx().db(&db).args(["tenant", "check", "--json"]).run();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let kinds: Vec<&str> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["doors"].as_array().unwrap())
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 10);
    for kind in [
        "view",
        "materialized_view",
        "definer",
        "foreign_key",
        "unique",
        "row_security",
        "index",
        "partition_policy",
        "permissive_policy",
        "bypassrls",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    // Closed, mostly with the fixes the check gave.
    let given = fixes(&run.stdout);
    assert_eq!(given.len(), 10);
    db.exec(&format!(
        "ALTER VIEW public.all_orders SET (security_invoker = true);
         DROP MATERIALIZED VIEW public.order_items;
         ALTER FUNCTION public.count_orders() SECURITY INVOKER;
         DELETE FROM orders WHERE item = 'b-child-of-a';
         ALTER TABLE orders DROP COLUMN parent_id;
         DROP INDEX orders_item;
         ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
         CREATE INDEX ON public.orders (tenant_id);
         DROP POLICY events_everything ON public.events_2024;
         SELECT pgx.tenant_isolate_partition('public.events_2024', 'public.events');
         ALTER ROLE {} NOBYPASSRLS;",
        bypass.name
    ));
    let run = check(&p, &db);
    assert!(run.success, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        column_as(&db, &app, &format!("{b} SELECT count(*) FROM events_2024")),
        ["1"]
    );
    assert_eq!(
        column_as(&db, &app, &format!("{a} SELECT count(*) FROM all_orders")),
        ["2"]
    );
}

#[test]
fn tenant_check_without_tenant_tables_passes_and_says_so() {
    let db = TestDb::new();
    let p = Project::new();
    let run = p.pgx().db(&db).args(["tenant", "check"]).ok();
    assert_eq!(
        run.stdout,
        "no tenant-isolated tables (none registered in schema \"pgx\")\n"
    );
    let json = p.pgx().db(&db).args(["tenant", "check", "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["installed"], false);
    assert_eq!(report["tables"].as_array().unwrap().len(), 0);
}
