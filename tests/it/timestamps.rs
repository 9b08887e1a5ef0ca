//! The `timestamps` pattern, end to end on the real database, as the roles that write.

use crate::support::{Project, TestDb, TestRole};

const ORDERS: &str =
    "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text NOT NULL);";

/// A NOSUPERUSER NOBYPASSRLS role that may write `tables` (and use their identities).
fn writer(db: &TestDb, prefix: &str, schema: &str, tables: &str) -> TestRole {
    let role = TestRole::new(prefix, "NOSUPERUSER NOBYPASSRLS NOINHERIT");
    db.exec(&format!(
        "GRANT USAGE ON SCHEMA {schema} TO {r};
         GRANT SELECT, INSERT, UPDATE ON {tables} TO {r};
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {r};",
        r = role.name
    ));
    role
}

/// The function's ACL has no PUBLIC entry, and is not NULL (NULL means PUBLIC may execute).
fn assert_not_executable_by_public(db: &TestDb, function: &str, app: &TestRole) {
    let acl = db.rows(&format!(
        "SELECT p.proacl IS NOT NULL,
                EXISTS (SELECT FROM aclexplode(p.proacl) a WHERE a.grantee = 0),
                has_function_privilege('{app}', p.oid, 'EXECUTE')
         FROM pg_proc p WHERE p.oid = '{function}'::regprocedure",
        app = app.name
    ));
    assert_eq!(
        acl,
        vec![vec![Some("t".into()), Some("f".into()), Some("f".into())]],
        "{function}: ACL set, no PUBLIC entry, not executable by the application role"
    );
}

#[test]
fn up_sets_columns_trigger_keeps_updated_at_current_and_down_restores_schema() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("create_orders", ORDERS, "DROP TABLE orders;");
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec("INSERT INTO orders (item) VALUES ('book')");
    let before = db.snapshot();

    p.pgx().args(["new", "timestamps", "orders"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let after_up = db.snapshot();
    let app = writer(&db, "ts_app", "public", "orders");
    assert_not_executable_by_public(&db, "public.orders_set_updated_at()", &app);
    let app_url = db.url_as(&app.name);

    // Existing rows get the migration time.
    let row = db.rows("SELECT created_at = updated_at FROM orders");
    assert_eq!(row, vec![vec![Some("t".into())]]);

    // INSERT: whatever the application supplies, both are the transaction's time.
    let inserted = crate::support::try_rows(
        &app_url,
        "BEGIN;
         INSERT INTO orders (item, created_at, updated_at)
           VALUES ('pen', '2001-01-01', '2001-01-01')
           RETURNING created_at = now(), updated_at = now();
         COMMIT;",
    )
    .unwrap();
    assert_eq!(inserted, vec![vec![Some("t".into()), Some("t".into())]]);
    let created = db.scalar("SELECT created_at::text FROM orders WHERE item = 'pen'");

    // UPDATE: created_at cannot move, updated_at is the updating transaction's time.
    let updated = crate::support::try_rows(
        &app_url,
        "BEGIN;
         UPDATE orders SET created_at = '2001-01-01', updated_at = '2001-01-01', item = 'pencil'
           WHERE item = 'pen' RETURNING updated_at = now();
         COMMIT;",
    )
    .unwrap();
    assert_eq!(
        updated,
        vec![vec![Some("t".into())]],
        "one row, updated now"
    );
    assert_eq!(
        db.scalar("SELECT created_at::text FROM orders WHERE item = 'pencil'"),
        created,
        "UPDATE must not be able to move created_at"
    );
    // The application cannot switch the trigger off either.
    let disable = crate::support::try_rows(&app_url, "ALTER TABLE orders DISABLE TRIGGER USER");
    assert!(
        disable.as_ref().is_err_and(|e| e.contains("must be owner")),
        "{disable:?}"
    );

    assert!(
        after_up
            .objects
            .contains_key("column public.orders.updated_at")
    );
    assert!(
        after_up
            .objects
            .keys()
            .any(|k| k.starts_with("trigger public.orders."))
    );

    p.pgx().db(&db).args(["migrate", "down"]).ok();
    // The application's grants on the table are not the migration's: drop them to compare.
    db.exec(&format!(
        "REVOKE ALL ON orders FROM {r}; REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {r}; REVOKE USAGE ON SCHEMA public FROM {r};",
        r = app.name
    ));
    assert_eq!(
        before.diff(&db.snapshot()),
        vec![],
        "down must restore the schema exactly"
    );

    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        after_up.diff(&db.snapshot()),
        vec![],
        "up again must give the same schema"
    );
    p.pgx().db(&db).args(["check"]).ok();
}

/// Partitions created or attached by the table's owner, a NOSUPERUSER role, after a superuser
/// applied the migration: cloning the trigger needs EXECUTE on its function, which the owner has
/// and PUBLIC does not. Rows written through each partition get the trigger's times.
#[test]
fn partitions_by_the_non_superuser_owner_get_the_trigger_and_public_gets_no_execute() {
    let db = TestDb::new();
    let owner = TestRole::new("ts_owner", "NOSUPERUSER NOBYPASSRLS");
    db.exec(&format!(
        "CREATE SCHEMA shop AUTHORIZATION {o};
         SET ROLE {o};
         CREATE TABLE shop.orders (id bigint NOT NULL, at date NOT NULL, item text)
           PARTITION BY RANGE (at);
         CREATE TABLE shop.orders_2024 PARTITION OF shop.orders
           FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
        o = owner.name
    ));
    let p = Project::new();
    p.pgx()
        .db(&db)
        .args(["new", "timestamps", "shop.orders"])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    let owner_url = db.url_as(&owner.name);
    crate::support::try_rows(
        &owner_url,
        "CREATE TABLE shop.orders_2025 PARTITION OF shop.orders
           FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         CREATE TABLE shop.orders_2026 (LIKE shop.orders);
         ALTER TABLE shop.orders ATTACH PARTITION shop.orders_2026
           FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');",
    )
    .unwrap_or_else(|e| panic!("the owner cannot add partitions: {e}"));

    let app = writer(&db, "ts_app", "shop", "ALL TABLES IN SCHEMA shop");
    assert_not_executable_by_public(&db, "shop.orders_set_updated_at()", &app);
    assert_eq!(
        db.scalar(&format!(
            "SELECT has_function_privilege('{}', 'shop.orders_set_updated_at()', 'EXECUTE')",
            owner.name
        ))
        .as_deref(),
        Some("t")
    );

    let app_url = db.url_as(&app.name);
    let years = ["2024", "2025", "2026"];
    for year in years {
        let written = crate::support::try_rows(
            &app_url,
            &format!(
                "BEGIN;
                 INSERT INTO shop.orders VALUES (1, '{year}-06-01', 'a');
                 UPDATE shop.orders SET item = 'b', created_at = '2001-01-01', updated_at = '2001-01-01'
                   WHERE at = '{year}-06-01';
                 SELECT created_at = now(), updated_at = now() FROM shop.orders_{year};
                 COMMIT;"
            ),
        )
        .unwrap();
        assert_eq!(
            written,
            vec![vec![Some("t".into()), Some("t".into())]],
            "partition {year}"
        );
    }
    let cloned = db.scalar(
        "SELECT count(*) FROM pg_trigger WHERE tgfoid = 'shop.orders_set_updated_at()'::regprocedure",
    );
    assert_eq!(
        cloned.as_deref(),
        Some(&*(years.len() + 1).to_string()),
        "parent + each partition"
    );

    // The down, by the superuser, removes the trigger from every partition with the function.
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relname LIKE 'orders%' AND NOT t.tgisinternal").as_deref(),
        Some("0")
    );
}

/// Imports keep their timestamps only when written by a member of `import_role`; the
/// application role can neither become that role nor get the same effect another way.
#[test]
fn import_role_members_keep_supplied_timestamps_and_nobody_else_does() {
    let db = TestDb::new();
    let importer = TestRole::new("ts_import", "NOSUPERUSER NOBYPASSRLS");
    let loader = TestRole::new("ts_loader", "NOSUPERUSER NOBYPASSRLS");
    db.exec(&format!("GRANT {} TO {}", importer.name, loader.name));
    let p = Project::new();
    p.add("create_orders", ORDERS, "DROP TABLE orders;");
    p.pgx()
        .args(["new", "timestamps", "orders"])
        .args(["--set", &format!("import_role={}", importer.name)])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let app = writer(&db, "ts_app", "public", "orders");
    db.exec(&format!(
        "GRANT USAGE ON SCHEMA public TO {i}; GRANT SELECT, INSERT, UPDATE ON orders TO {i};
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {i};",
        i = importer.name
    ));

    let kept = crate::support::try_rows(
        &db.url_as(&loader.name),
        &format!(
            "SET ROLE {};
             INSERT INTO orders (item, created_at, updated_at) VALUES ('old', '2001-01-01 UTC', '2002-01-01 UTC');
             UPDATE orders SET created_at = '2000-01-01 UTC' WHERE item = 'old';
             SELECT created_at = '2000-01-01 UTC', updated_at = '2002-01-01 UTC' FROM orders;",
            importer.name
        ),
    )
    .unwrap();
    assert_eq!(kept, vec![vec![Some("t".into()), Some("t".into())]]);

    let app_url = db.url_as(&app.name);
    let become_importer =
        crate::support::try_rows(&app_url, &format!("SET ROLE {}", importer.name));
    assert!(
        become_importer
            .as_ref()
            .is_err_and(|e| e.contains("permission denied")),
        "{become_importer:?}"
    );
    let app_rows = crate::support::try_rows(
        &app_url,
        "BEGIN;
         INSERT INTO orders (item, created_at, updated_at) VALUES ('new', '2001-01-01', '2001-01-01');
         UPDATE orders SET created_at = '2001-01-01', updated_at = '2001-01-01' WHERE item = 'old';
         SELECT item, created_at = now(), updated_at = now() FROM orders ORDER BY item;
         COMMIT;",
    )
    .unwrap();
    let t = |s: &str| Some(s.to_string());
    assert_eq!(
        app_rows,
        vec![
            vec![t("new"), t("t"), t("t")],
            // The imported creation time stays; the application's UPDATE moves only updated_at.
            vec![t("old"), t("f"), t("t")],
        ]
    );
    assert_eq!(
        db.scalar("SELECT created_at = '2000-01-01 UTC' FROM orders WHERE item = 'old'")
            .as_deref(),
        Some("t")
    );
    p.pgx().db(&db).args(["check"]).ok();

    // A role that does not exist is refused when the migration runs, naming it.
    let q = Project::new();
    q.add("create_orders", ORDERS, "DROP TABLE orders;");
    q.pgx()
        .args([
            "new",
            "timestamps",
            "orders",
            "--set",
            "import_role=no_such_importer",
        ])
        .ok();
    let other = TestDb::new();
    q.pgx()
        .db(&other)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("import_role no_such_importer does not exist");
    assert_eq!(
        other
            .scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'created_at'")
            .as_deref(),
        Some("0"),
        "nothing of the failed migration stays"
    );
}
