//! The `tenant` pattern (row-level security on shared tables), on the real database, as an
//! application role that is neither superuser nor BYPASSRLS, and that usually owns the table.

use crate::support::{Project, TestDb, TestRole};
use crate::tenant_support::*;

#[test]
fn the_owning_role_reads_changes_and_deletes_only_its_own_tenant() {
    let db = TestDb::new();
    let app = app_role();
    let p = orders_owned_by(&db, &app);
    new_tenant(&p, "orders", &[]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    seed(&db);

    let a = tenant_of(A);
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{a} SELECT item FROM orders ORDER BY item")
        ),
        ["a1", "a2"]
    );
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!(
                "{a} WITH u AS (UPDATE orders SET item = item || '!' RETURNING 1) SELECT count(*) FROM u"
            )
        ),
        ["2"]
    );
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!(
                "{a} WITH d AS (DELETE FROM orders WHERE item = 'a1!' OR item LIKE 'b%' RETURNING 1) SELECT count(*) FROM d"
            )
        ),
        ["1"]
    );
    assert_eq!(
        db.column("SELECT item FROM orders ORDER BY item"),
        ["a2!", "b1", "b2", "b3"],
        "tenant B's rows are untouched"
    );

    // Writing into another tenant fails, whether inserting or moving a row.
    for write in [
        format!("INSERT INTO orders (item, tenant_id) VALUES ('x', '{B}')"),
        format!("UPDATE orders SET tenant_id = '{B}'"),
        format!(
            "INSERT INTO orders (item) VALUES ('x') ON CONFLICT (id) DO NOTHING; UPDATE orders SET tenant_id = '{B}' WHERE item = 'x'"
        ),
    ] {
        let err = as_role(&db, &app, &format!("{a} {write}")).unwrap_err();
        assert!(
            err.contains("new row violates row-level security policy \"orders_tenant_isolation\""),
            "{write}: {err}"
        );
    }
    // New rows take their tenant from the setting.
    ok_as(
        &db,
        &app,
        &format!("{a} INSERT INTO orders (item) VALUES ('new')"),
    );
    assert_eq!(
        db.scalar("SELECT tenant_id FROM orders WHERE item = 'new'"),
        Some(A.to_string())
    );
    // The owner cannot read past the policy through the table it owns.
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{} SELECT count(*) FROM orders", tenant_of(B))
        ),
        ["3"]
    );
}

#[test]
fn unset_reset_empty_or_malformed_settings_match_nothing_and_raise_nothing() {
    let db = TestDb::new();
    let app = app_role();
    let p = orders_owned_by(&db, &app);
    new_tenant(&p, "orders", &[]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    seed(&db);

    let count = "SELECT count(*) FROM orders";
    let cases = [
        ("never set", count.to_string()),
        (
            "reset after SET LOCAL",
            format!("BEGIN; SET LOCAL app.current_tenant = '{A}'; COMMIT; {count}"),
        ),
        (
            "RESET",
            format!("SET app.current_tenant = '{A}'; RESET app.current_tenant; {count}"),
        ),
        ("empty", format!("SET app.current_tenant = ''; {count}")),
        (
            "malformed",
            format!("SET app.current_tenant = 'acme'; {count}"),
        ),
        (
            "uuid in braces",
            format!("SET app.current_tenant = '{{{A}}}'; {count}"),
        ),
    ];
    for (case, sql) in cases {
        let rows = ok_as(&db, &app, &sql);
        assert_eq!(
            rows.last().unwrap()[0].as_deref(),
            Some("0"),
            "{case}: no rows, and no error"
        );
    }
    // Inside the transaction the tenant's rows are there; after it, they are not.
    let rows = ok_as(
        &db,
        &app,
        &format!(
            "BEGIN; SELECT set_config('app.current_tenant', '{A}', true); {count}; COMMIT; \
             SELECT current_setting('app.current_tenant'); {count}"
        ),
    );
    let values: Vec<Option<&str>> = rows.iter().map(|r| r[0].as_deref()).collect();
    assert_eq!(values, [Some(A), Some("2"), Some(""), Some("0")]);

    // Without a tenant, reads and changes see nothing and writes are rejected.
    assert_eq!(
        column_as(
            &db,
            &app,
            "WITH u AS (UPDATE orders SET item = 'x' RETURNING 1) SELECT count(*) FROM u"
        ),
        ["0"]
    );
    assert_eq!(
        column_as(
            &db,
            &app,
            "SET app.current_tenant = 'nope'; WITH d AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM d"
        ),
        ["0"]
    );
    for sql in [
        "INSERT INTO orders (item) VALUES ('x')".to_string(),
        format!("INSERT INTO orders (item, tenant_id) VALUES ('x', '{A}')"),
        "SET app.current_tenant = ''; INSERT INTO orders (item) VALUES ('x')".to_string(),
    ] {
        let err = as_role(&db, &app, &sql).unwrap_err();
        assert!(
            err.contains("violates row-level security policy"),
            "{sql}: {err}"
        );
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM orders").as_deref(),
        Some("5")
    );
}

#[test]
fn integer_and_text_tenants_treat_bad_values_as_no_tenant() {
    for (ty, good, bad) in [
        (
            "bigint",
            "42",
            &[
                "",
                "4x2",
                "99999999999999999999",
                "9223372036854775808",
                " 42",
            ][..],
        ),
        ("integer", "-7", &["", "2147483648", "1.5", "0x10"][..]),
        ("text", "acme", &[""][..]),
    ] {
        let db = TestDb::new();
        let app = app_role();
        let p = orders_owned_by(&db, &app);
        new_tenant(&p, "orders", &[&format!("type={ty}")]);
        p.pgx().db(&db).args(["migrate", "up"]).ok();
        db.exec(&format!(
            "INSERT INTO orders (item, tenant_id) VALUES ('mine', '{good}'), ('other', '9')"
        ));
        assert_eq!(
            column_as(
                &db,
                &app,
                &format!("{} SELECT item FROM orders", tenant_of(good))
            ),
            ["mine"],
            "{ty}"
        );
        for value in bad {
            assert_eq!(
                column_as(
                    &db,
                    &app,
                    &format!("{} SELECT count(*) FROM orders", tenant_of(value))
                ),
                ["0"],
                "{ty} {value:?}"
            );
        }
    }
}

#[test]
fn the_setting_is_read_once_per_statement_and_the_tenant_index_serves_queries() {
    let db = TestDb::new();
    let app = app_role();
    let p = orders_owned_by(&db, &app);
    new_tenant(&p, "orders", &[]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec(
        "INSERT INTO orders (item, tenant_id)
         SELECT 'i' || g, ('00000000-0000-0000-0000-' || lpad((g % 100)::text, 12, '0'))::uuid
         FROM generate_series(1, 20000) g;
         ANALYZE orders;",
    );
    let plan = |sql: &str| -> String {
        column_as(
            &db,
            &app,
            &format!("{} EXPLAIN (COSTS OFF) {sql}", tenant_of(A)),
        )
        .join("\n")
    };
    let aggregate = plan("SELECT count(*) FROM orders");
    assert!(aggregate.contains("InitPlan 1"), "{aggregate}");
    assert!(
        aggregate.contains("Index Cond: (tenant_id = $0)"),
        "the tenant index, with the setting as a parameter:\n{aggregate}"
    );
    assert!(aggregate.contains("orders_tenant_id_idx"), "{aggregate}");
    assert!(!aggregate.contains("current_setting"), "{aggregate}");
    let lookup = plan("SELECT * FROM orders WHERE id = 42");
    assert!(lookup.contains("Index Scan using orders_pkey"), "{lookup}");
    assert!(lookup.contains("Filter: (tenant_id = $0)"), "{lookup}");
    assert!(lookup.contains("InitPlan 1"), "{lookup}");
}

#[test]
fn existing_rows_need_a_backfill_and_get_it() {
    let db = TestDb::new();
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "create orders",
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text);
         INSERT INTO orders (item) VALUES ('old1'), ('old2');",
        "DROP TABLE orders;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();

    let run = new_tenant(&p, "orders", &[]);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("public.orders has rows, and this migration has no tenant to give them")
        .stderr_has("--set backfill=<tenant id>")
        .stderr_has("rolled back");
    assert_eq!(before.diff(&db.snapshot()), vec![], "nothing changed");
    remove_written(&p, &run);

    new_tenant(&p, "orders", &[&format!("backfill={A}")]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.column("SELECT DISTINCT tenant_id::text FROM orders"),
        [A.to_string()]
    );
    assert_eq!(
        db.scalar(
            "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'orders'::regclass"
        )
        .as_deref(),
        Some("orders_current_tenant()"),
        "new rows default to the current tenant, not the backfill value"
    );
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}

#[test]
fn an_existing_tenant_column_is_used_and_restored_by_down() {
    let db = TestDb::new();
    let app = app_role();
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "create orders",
        &format!(
            "CREATE TABLE tenants (id uuid PRIMARY KEY);
             INSERT INTO tenants VALUES ('{A}'), ('{B}');
             CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text,
                                  tenant_id uuid DEFAULT '{B}');
             CREATE INDEX orders_by_tenant ON orders (tenant_id, id);
             INSERT INTO orders (item, tenant_id) VALUES ('a', '{A}'), ('none', NULL);
             GRANT SELECT ON orders TO {};",
            app.name
        ),
        "DROP TABLE orders; DROP TABLE tenants;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();

    new_tenant(
        &p,
        "orders",
        &[
            "add_column=false",
            "references=tenants(id)",
            &format!("role={}", app.name),
        ],
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("public.orders has rows whose tenant_id is NULL")
        .stderr_has("hint: UPDATE public.orders SET tenant_id = ... WHERE tenant_id IS NULL");
    assert_eq!(before.diff(&db.snapshot()), vec![]);

    db.exec(&format!(
        "UPDATE orders SET tenant_id = '{B}' WHERE tenant_id IS NULL"
    ));
    let filled = db.snapshot();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let after = db.snapshot();
    assert!(
        !after
            .objects
            .keys()
            .any(|k| k.starts_with("index public.orders_tenant_id")),
        "orders_by_tenant already leads with tenant_id: no second index"
    );
    assert!(
        after
            .objects
            .contains_key("constraint public.orders.orders_tenant_id_fkey")
    );
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{} SELECT item FROM orders", tenant_of(A))
        ),
        ["a"]
    );
    ok_as(
        &db,
        &app,
        &format!("{} INSERT INTO orders (item) VALUES ('x')", tenant_of(A)),
    );

    p.pgx().db(&db).args(["migrate", "down"]).ok();
    db.exec("DELETE FROM orders WHERE item = 'x'");
    assert_eq!(
        filled.diff(&db.snapshot()),
        vec![],
        "default, nullability, privileges and row security as before"
    );
}

#[test]
fn views_run_with_the_invokers_rights() {
    let db = TestDb::new();
    let app = app_role();
    let p = orders_owned_by(&db, &app);
    // A view made by the superuser that runs the migrations: it would bypass row security.
    p.add(
        "order view",
        &format!(
            "CREATE VIEW order_items AS SELECT id, item FROM orders;
             CREATE VIEW order_count AS SELECT count(*) FROM order_items;
             GRANT SELECT ON order_items, order_count TO {};",
            app.name
        ),
        "DROP VIEW order_count; DROP VIEW order_items;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    let run = new_tenant(&p, "orders", &[]);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("view(s) public.order_count, public.order_items read public.orders with their owner's rights")
        .stderr_has("--set secure_views=true");
    remove_written(&p, &run);
    let before = db.snapshot();
    new_tenant(
        &p,
        "orders",
        &[
            "secure_views=true",
            "view=my_orders",
            &format!("role={}", app.name),
        ],
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    seed(&db);

    let a = tenant_of(A);
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{a} SELECT item FROM order_items ORDER BY 1")
        ),
        ["a1", "a2"]
    );
    assert_eq!(
        column_as(&db, &app, &format!("{a} SELECT * FROM order_count")),
        ["2"]
    );
    // The view pgx creates hides the tenant column and is isolated too.
    assert_eq!(
        db.column(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'my_orders'::regclass AND attnum > 0 ORDER BY attnum"
        ),
        ["id", "item"]
    );
    assert_eq!(
        db.scalar("SELECT reloptions::text FROM pg_class WHERE oid = 'my_orders'::regclass")
            .as_deref(),
        Some("{security_invoker=true}")
    );
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{} SELECT item FROM my_orders ORDER BY 1", tenant_of(B))
        ),
        ["b1", "b2", "b3"]
    );
    assert_eq!(
        column_as(&db, &app, "SELECT count(*) FROM my_orders"),
        ["0"]
    );
    ok_as(
        &db,
        &app,
        &format!("{a} INSERT INTO my_orders (item) VALUES ('via view')"),
    );
    assert_eq!(
        db.scalar("SELECT tenant_id FROM orders WHERE item = 'via view'"),
        Some(A.to_string())
    );

    db.exec("TRUNCATE orders");
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}

#[test]
fn a_granted_application_role_is_isolated_and_bypassing_roles_are_refused() {
    let db = TestDb::new();
    let owner = TestRole::new("pgx_owner", "NOSUPERUSER");
    let app = app_role();
    let bypass = TestRole::new("pgx_bypass", "NOSUPERUSER BYPASSRLS");
    let p = orders_owned_by(&db, &owner);
    let before = db.snapshot();

    let run = new_tenant(&p, "orders", &[&format!("role={}", bypass.name)]);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!("role {} bypasses row security", bypass.name));
    assert_eq!(restored(&before, &db.snapshot()), vec![]);
    remove_written(&p, &run);

    new_tenant(
        &p,
        "orders",
        &[&format!("role={}", app.name), "unique=item"],
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    seed(&db);
    assert_eq!(
        db.column(&format!(
            "SELECT privilege_type FROM information_schema.role_table_grants
             WHERE grantee = '{}' AND table_name = 'orders' ORDER BY 1",
            app.name
        )),
        ["DELETE", "INSERT", "SELECT", "UPDATE"]
    );
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{} SELECT count(*) FROM orders", tenant_of(B))
        ),
        ["3"]
    );
    // Unique per tenant: B may reuse A's item, A may not repeat its own.
    ok_as(
        &db,
        &app,
        &format!("{} INSERT INTO orders (item) VALUES ('a1')", tenant_of(B)),
    );
    let err = as_role(
        &db,
        &app,
        &format!("{} INSERT INTO orders (item) VALUES ('a1')", tenant_of(A)),
    )
    .unwrap_err();
    assert!(err.contains("orders_tenant_id_item_key"), "{err}");
    assert!(
        as_role(&db, &app, "TRUNCATE orders").is_err(),
        "TRUNCATE is not subject to row security: the application role does not get it"
    );

    db.exec("TRUNCATE orders");
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(restored(&before, &db.snapshot()), vec![]);
}

/// What row security cannot hide (README): a query's plan counts the rows it filtered out,
/// other tenants' included, once the application role turns index scans off.
#[test]
fn explain_analyze_counts_other_tenants_rows_that_a_scan_filtered_out() {
    let db = TestDb::new();
    let app = app_role();
    let p = orders_owned_by(&db, &app);
    new_tenant(&p, "orders", &[]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    seed(&db);
    let plan = |settings: &str| {
        column_as(
            &db,
            &app,
            &format!(
                "{} {settings} EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM orders",
                tenant_of(A)
            ),
        )
        .join("\n")
    };
    let scan = plan("SET enable_indexscan = off; SET enable_bitmapscan = off;");
    assert!(
        scan.contains("Rows Removed by Filter: 3"),
        "B's three rows show:\n{scan}"
    );
    // Through the tenant index the scan never reads them (on a table big enough for the
    // planner to use it).
    db.exec(&format!(
        "INSERT INTO orders (item, tenant_id) SELECT 'x', '{B}' FROM generate_series(1, 5000); ANALYZE orders"
    ));
    let indexed = plan("");
    assert!(indexed.contains("orders_tenant_id_idx"), "{indexed}");
    assert!(!indexed.contains("Rows Removed"), "{indexed}");
}
