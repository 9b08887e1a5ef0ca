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
fn partitions_queried_directly_are_isolated_now_and_later() {
    let db = TestDb::new();
    let app = app_role();
    db.exec(&format!("GRANT CREATE ON SCHEMA public TO {}", app.name));
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "create events",
        &format!(
            "CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
             CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
             CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
                 PARTITION BY RANGE (at);
             CREATE TABLE events_2025_h1 PARTITION OF events_2025 FOR VALUES FROM ('2025-01-01') TO ('2025-07-01');
             ALTER TABLE events OWNER TO {0}; ALTER TABLE events_2024 OWNER TO {0};
             ALTER TABLE events_2025 OWNER TO {0}; ALTER TABLE events_2025_h1 OWNER TO {0};",
            app.name
        ),
        "DROP TABLE events;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();

    p.pgx().args(["new", "tenant", "events"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).fails().stderr_has(
        "public.events is partitioned: render this migration with --set partitioned=true",
    );
    for f in p.files("migrations") {
        if f.contains("tenant_events") {
            std::fs::remove_file(p.join(&format!("migrations/{f}"))).unwrap();
        }
    }
    p.pgx()
        .args(["new", "tenant", "events", "--set", "partitioned=true"])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    // Partitions created and attached later, by the owning application role.
    ok_as(
        &db,
        &app,
        "CREATE TABLE events_2025_h2 PARTITION OF events_2025 FOR VALUES FROM ('2025-07-01') TO ('2026-01-01');
         CREATE TABLE events_2026 (LIKE events);
         ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');",
    );
    for at in ["2024-03-01", "2025-03-01", "2025-09-01", "2026-03-01"] {
        db.exec(&format!(
            "INSERT INTO events VALUES (1, '{at}', 'a', '{A}'), (2, '{at}', 'b', '{B}')"
        ));
    }
    let a = tenant_of(A);
    for partition in [
        "events",
        "events_2024",
        "events_2025",
        "events_2025_h1",
        "events_2025_h2",
        "events_2026",
    ] {
        let whats = column_as(
            &db,
            &app,
            &format!("{a} SELECT DISTINCT what FROM {partition}"),
        );
        assert_eq!(whats, ["a"], "{partition} queried directly");
        let none = column_as(&db, &app, &format!("SELECT count(*) FROM {partition}"));
        assert_eq!(none, ["0"], "{partition} without a tenant");
    }
    for partition in ["events_2024", "events_2025_h2", "events_2026"] {
        let err = as_role(
            &db,
            &app,
            &format!("{a} INSERT INTO {partition} (id, at, what, tenant_id) SELECT 3, min(at), 'x', '{B}' FROM {partition}"),
        )
        .unwrap_err();
        assert!(
            err.contains("violates row-level security policy"),
            "{partition}: {err}"
        );
        // New rows in a partition take the tenant from the setting too, attached ones included.
        ok_as(
            &db,
            &app,
            &format!(
                "{a} INSERT INTO {partition} (id, at, what) SELECT 4, min(at), 'a' FROM {partition}"
            ),
        );
    }
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM events WHERE id = 4 AND tenant_id = '{A}'"
        ))
        .as_deref(),
        Some("3")
    );

    db.exec("DROP TABLE events_2025_h2, events_2026");
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_event_trigger")
            .as_deref(),
        Some("0")
    );
}

#[test]
fn isolating_partitions_needs_a_superuser_and_says_so() {
    let db = TestDb::new();
    let app = app_role();
    // The application role migrates: it may create pgx's schema, not an event trigger.
    db.exec(&format!(
        "GRANT CREATE ON SCHEMA public TO {0}; GRANT CREATE ON DATABASE {1} TO {0};
         CREATE TABLE events (id bigint, at date NOT NULL) PARTITION BY RANGE (at);
         ALTER TABLE events OWNER TO {0};",
        app.name, db.name
    ));
    let p = Project::new();
    install_pgx(&p);
    p.pgx()
        .args(["new", "tenant", "events", "--set", "partitioned=true"])
        .ok();
    p.pgx()
        .env("DATABASE_URL", &db.url_as(&app.name))
        .args(["migrate", "up"])
        .fails()
        .stderr_has("partitions created later would not be isolated")
        .stderr_has("needs a superuser");
    assert_eq!(
        db.scalar("SELECT relrowsecurity FROM pg_class WHERE oid = 'events'::regclass")
            .as_deref(),
        Some("f"),
        "rolled back"
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

#[test]
fn names_that_need_quoting_work_everywhere() {
    let db = TestDb::new();
    let app = app_role();
    db.exec(&format!(
        r#"CREATE SCHEMA "Sales Dept"; GRANT USAGE, CREATE ON SCHEMA "Sales Dept" TO {0};
           CREATE TABLE "Sales Dept"."Order Items" (id bigint NOT NULL, "When" date NOT NULL, "Note's" text)
               PARTITION BY RANGE ("When");
           CREATE TABLE "Sales Dept"."Order Items 2024" PARTITION OF "Sales Dept"."Order Items"
               FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
           ALTER TABLE "Sales Dept"."Order Items" OWNER TO {0};
           ALTER TABLE "Sales Dept"."Order Items 2024" OWNER TO {0};"#,
        app.name
    ));
    // pgx's own schema gets a name that needs quoting too.
    let p = Project::new();
    p.pgx()
        .args(["new", "pgx_install", "--set", "pgx_schema=Pgx \"State\"; x"])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();
    p.pgx()
        .args([
            "new",
            "tenant",
            "Order Items",
            "--schema",
            "Sales Dept",
            "--set",
            "column=Tenant Id",
            "--set",
            "type=text",
            "--set",
            "setting=App.Tenant",
            "--set",
            "partitioned=true",
            "--set",
            "view=Mine \"now\"",
            "--set",
            &format!("role={}", app.name),
        ])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    ok_as(
        &db,
        &app,
        r#"CREATE TABLE "Sales Dept"."Order Items 2025" PARTITION OF "Sales Dept"."Order Items"
               FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"#,
    );
    db.exec(
        r#"INSERT INTO "Sales Dept"."Order Items" VALUES
           (1, '2024-05-01', 'x', 'o''brien'), (2, '2024-05-01', 'y', 'acme'),
           (3, '2025-05-01', 'x', 'o''brien'), (4, '2025-05-01', 'y', 'acme')"#,
    );
    let mine = "SET app.tenant = 'o''brien';";
    for relation in [
        r#""Sales Dept"."Order Items""#,
        r#""Sales Dept"."Order Items 2024""#,
        r#""Sales Dept"."Order Items 2025""#,
        r#""Sales Dept"."Mine ""now""""#,
    ] {
        assert_eq!(
            column_as(
                &db,
                &app,
                &format!("{mine} SELECT count(*) FROM {relation}")
            ),
            [if relation.contains("20") { "1" } else { "2" }],
            "{relation}"
        );
        assert_eq!(
            column_as(&db, &app, &format!("SELECT count(*) FROM {relation}")),
            ["0"],
            "{relation}"
        );
    }
    db.exec(r#"DROP TABLE "Sales Dept"."Order Items 2025""#);
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}
