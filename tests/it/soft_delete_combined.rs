//! `soft_delete` together with `tenant`, `audit` and `timestamps` on one table, on partitioned
//! tables, built concurrently in steps (applied by sqlx's Migrator too), `pgx check` for each
//! combination, and `plpgsql_check` over the generated PL/pgSQL.

use sqlx::Connection;
use sqlx::migrate::Migrator;

use crate::soft_delete::{USERS, app_role, as_role, ok_as, row_count, soft_deleted};
use crate::support::{Project, TestDb, block_on};
use crate::tenant_support::{A, B};

const ORDERS: &str = "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, number text NOT NULL)";

/// `orders` with tenant (app role, per-tenant unique number), timestamps, audit and
/// soft_delete, in that order, applied.
fn everything(db: &TestDb, app: &str) -> Project {
    let p = Project::new();
    p.add("create orders", ORDERS, "DROP TABLE orders;");
    p.pgx()
        .args([
            "new",
            "tenant",
            "orders",
            "--set",
            &format!("role={app}"),
            "--set",
            "unique=number",
            "--set",
            "global_unique=orders_pkey",
        ])
        .ok();
    p.pgx().args(["new", "timestamps", "orders"]).ok();
    p.pgx().args(["new", "audit", "orders"]).ok();
    p.pgx()
        .args([
            "new",
            "soft_delete",
            "orders",
            "--set",
            "deleted_by=deleted_by",
        ])
        .ok();
    p.pgx().db(db).args(["migrate", "up"]).ok();
    p
}

#[test]
fn tenant_audit_timestamps_and_soft_delete_on_one_table() {
    let db = TestDb::new();
    let app = app_role();
    let p = everything(&db, &app.name);
    let tenant = |t: &str| format!("SET app.current_tenant = '{t}'; SET app.user_id = 7;");
    ok_as(
        &db,
        &app,
        &format!(
            "{} INSERT INTO orders (number) VALUES ('1'), ('2')",
            tenant(A)
        ),
    );
    ok_as(
        &db,
        &app,
        &format!("{} INSERT INTO orders (number) VALUES ('1')", tenant(B)),
    );
    db.exec("UPDATE orders SET updated_at = '2000-01-01', created_at = '2000-01-01'");

    // Under forced row security, the application role soft-deletes its own tenant's rows only.
    assert_eq!(
        row_count(&db, Some(&app), &tenant(A), "DELETE FROM orders"),
        2
    );
    assert_eq!(
        db.column("SELECT tenant_id || ':' || number || ':' || (deleted_at IS NOT NULL) || ':' || coalesce(deleted_by::text, '-') FROM orders ORDER BY tenant_id, number"),
        [
            format!("{A}:1:true:7"),
            format!("{A}:2:true:7"),
            format!("{B}:1:false:-")
        ]
    );
    assert_eq!(
        db.scalar(
            "SELECT bool_and(updated_at > '2000-01-01') FROM orders WHERE deleted_at IS NOT NULL"
        )
        .as_deref(),
        Some("t"),
        "timestamps moves updated_at on soft delete"
    );
    // The live view runs with the reader's rights: tenant B sees its one live order there.
    let b_live = ok_as(
        &db,
        &app,
        &format!("{} SELECT number FROM orders_live", tenant(B)),
    );
    assert_eq!(b_live.last().unwrap()[0].as_deref(), Some("1"));
    assert_eq!(b_live.len(), 1);
    // The number is free again within the tenant.
    ok_as(
        &db,
        &app,
        &format!("{} INSERT INTO orders (number) VALUES ('1')", tenant(A)),
    );
    // Tenant B cannot restore tenant A's rows; A can (number 2 is still free).
    let b_restores = ok_as(
        &db,
        &app,
        &format!("{} SELECT orders_restore(2)", tenant(B)),
    );
    assert_eq!(b_restores.last().unwrap()[0].as_deref(), Some("f"));
    db.exec("UPDATE orders SET updated_at = '2000-01-01' WHERE id = 2");
    let a_restores = ok_as(
        &db,
        &app,
        &format!("{} SELECT orders_restore(2)", tenant(A)),
    );
    assert_eq!(a_restores.last().unwrap()[0].as_deref(), Some("t"));
    assert_eq!(
        db.scalar(
            "SELECT updated_at > '2000-01-01' AND deleted_at IS NULL FROM orders WHERE id = 2"
        )
        .as_deref(),
        Some("t"),
        "and on restore"
    );

    // The audit log: a soft delete is an UPDATE setting deleted_at, a purge a DELETE; the
    // application's actor is recorded for both of its statements.
    db.exec("UPDATE orders SET deleted_at = now() - interval '2 days' WHERE id = 1");
    db.exec(&format!(
        "SET app.current_tenant = '{A}'; SELECT orders_purge('1 day')"
    ));
    assert_eq!(
        db.column(
            "SELECT operation || ':' || (row_key ->> 'id') || ':' || coalesce(array_to_string(changed_columns, ','), '') || ':' || coalesce(actor::text, '-')
             FROM audit.log WHERE operation IN ('UPDATE', 'DELETE') AND (row_key ->> 'id')::int IN (1, 2) ORDER BY id"
        ),
        [
            "UPDATE:1:updated_at:-",
            "UPDATE:2:updated_at:-",
            "UPDATE:1:deleted_at,deleted_by,updated_at:7",
            "UPDATE:2:deleted_at,deleted_by,updated_at:7",
            "UPDATE:2:updated_at:-",
            "UPDATE:2:deleted_at,deleted_by,updated_at:7",
            "UPDATE:1:deleted_at,updated_at:-",
            "DELETE:1::-",
        ]
    );
    // Triggers fire in name order: timestamps' BEFORE trigger, then audit, then the cascade.
    assert_eq!(
        db.column(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND NOT tgisinternal
               AND tgtype & 16 = 16 ORDER BY tgname COLLATE \"C\""
        ),
        ["audit_update", "orders_updated_at", "soft_delete_cascade"]
    );

    p.pgx().db(&db).args(["check"]).ok();
}

#[test]
fn pgx_check_passes_alone_and_with_each_pattern() {
    let db = TestDb::new();
    let cases: [&[&[&str]]; 4] = [
        &[&[
            "tenant",
            "orders",
            "--set",
            "unique=number",
            "--set",
            "global_unique=orders_pkey",
        ]],
        &[&["audit", "orders"]],
        &[&["timestamps", "orders"]],
        &[&[
            "soft_delete",
            "orders",
            "--set",
            "live_indexes=number",
            "--set",
            "concurrently=true",
            "--set",
            "hide=policy",
            "--set",
            "role=pg_monitor",
        ]],
    ];
    for (i, before) in cases.iter().enumerate() {
        let p = Project::new();
        p.add("create orders", ORDERS, "DROP TABLE orders;");
        for args in *before {
            let mut all = vec!["new"];
            all.extend_from_slice(args);
            p.pgx().args(&all).ok();
        }
        if i < 3 {
            p.pgx().args(["new", "soft_delete", "orders"]).ok();
        }
        let run = p.pgx().db(&db).args(["check"]).run();
        assert!(run.success, "case {i}: {}\n{}", run.stderr, run.stdout);
    }
}

#[test]
fn concurrently_builds_live_indexes_in_steps_that_sqlx_applies_too() {
    let p = Project::new();
    p.add("create users", USERS, "DROP TABLE users;");
    let run = p
        .pgx()
        .args([
            "new",
            "soft_delete",
            "users",
            "--set",
            "live_indexes=name,email",
            "--set",
            "concurrently=true",
        ])
        .ok();
    let written: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.ends_with(".up.sql"))
        .collect();
    assert_eq!(written.len(), 5, "{}", run.stdout);
    for (file, suffix, no_transaction) in [
        (written[0], "_soft_delete_install.up.sql", false),
        (written[1], "_soft_delete_users_column.up.sql", false),
        (written[2], "_soft_delete_users_live_index_1.up.sql", true),
        (written[3], "_soft_delete_users_live_index_2.up.sql", true),
        (written[4], "_soft_delete_users_soft_delete.up.sql", false),
    ] {
        assert!(file.ends_with(suffix), "{file}");
        let sql = std::fs::read_to_string(p.join(file)).unwrap();
        assert_eq!(
            sql.starts_with("-- no-transaction\n"),
            no_transaction,
            "{file}"
        );
        if no_transaction {
            assert_eq!(pgx::sql::split_statements(&sql).len(), 1, "{sql}");
            assert!(sql.contains("CREATE INDEX CONCURRENTLY"), "{sql}");
        }
    }

    // pgx applies them, and the view's live-row look-ups use the partial indexes.
    let db = TestDb::new();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec(
        "INSERT INTO users (email, name) SELECT g || '@x', 'n' || g FROM generate_series(1, 2000) g;
         DELETE FROM users WHERE id % 2 = 0; ANALYZE users;",
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_index WHERE indrelid = 'users'::regclass AND indisvalid AND indpred IS NOT NULL")
            .as_deref(),
        Some("3"),
        "two live-row indexes and the live-row unique email"
    );
    let plan = db
        .column("EXPLAIN SELECT * FROM users_live WHERE name = 'n7'")
        .join("\n");
    assert!(plan.contains("users_name_live_idx"), "{plan}");
    p.pgx().db(&db).args(["check"]).ok();

    // sqlx's Migrator sends each file as one query: it applies the same files.
    let other = TestDb::new();
    block_on(async {
        let migrator = Migrator::new(p.join("migrations")).await.unwrap();
        let mut conn = sqlx::PgConnection::connect(&other.url).await.unwrap();
        migrator.run(&mut conn).await.unwrap();
    });
    assert_eq!(
        row_count(
            &other,
            None,
            "INSERT INTO users (email) VALUES ('a@x')",
            "DELETE FROM users"
        ),
        1
    );
}

#[test]
fn partitioned_tables_delete_through_the_root_and_never_through_a_partition() {
    let db = TestDb::new();
    let app = app_role();
    let setup = format!(
        "CREATE TABLE events (id bigint, at date NOT NULL, what text, PRIMARY KEY (id, at), UNIQUE (what, at)) PARTITION BY RANGE (at);
         CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         GRANT SELECT, INSERT, UPDATE, DELETE ON events, events_2024, events_2025 TO {};",
        app.name
    );
    let p = Project::new();
    p.add("setup", &setup, "DROP TABLE events;");
    p.pgx().args(["new", "soft_delete", "events"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec("INSERT INTO events VALUES (1, '2024-05-01', 'a'), (2, '2025-05-01', 'b'), (3, '2025-06-01', 'c')");
    // A partition created later is guarded too (row triggers are cloned to it).
    db.exec("CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
             GRANT DELETE ON events_2026 TO PUBLIC;
             INSERT INTO events VALUES (4, '2026-05-01', 'd');");

    assert_eq!(
        row_count(&db, Some(&app), "", "DELETE FROM events WHERE id IN (1, 2)"),
        2
    );
    for partition in ["events_2025", "events_2026"] {
        let err = as_role(&db, &app, &format!("DELETE FROM {partition}")).unwrap_err();
        assert!(
            err.contains(&format!(
                "rows of {partition} are deleted softly through public.events"
            )),
            "{err}"
        );
    }
    // Live-row uniqueness holds across partitions' deleted rows.
    db.exec("INSERT INTO events VALUES (5, '2024-05-01', 'a')");
    assert_eq!(
        db.scalar("SELECT count(*) FROM events WHERE deleted_at IS NULL")
            .as_deref(),
        Some("3")
    );
    db.exec(
        "UPDATE events SET deleted_at = deleted_at - interval '1 day' WHERE deleted_at IS NOT NULL",
    );
    assert_eq!(
        db.scalar("SELECT events_purge('1 hour')").as_deref(),
        Some("2")
    );
    assert_eq!(
        db.column("SELECT id FROM events ORDER BY id"),
        ["3", "4", "5"]
    );
    db.exec("DROP TABLE events_2026");
    p.pgx().db(&db).args(["check"]).ok();
}

#[test]
fn generated_plpgsql_passes_plpgsql_check() {
    let db = TestDb::new();
    soft_deleted(
        &db,
        USERS,
        &[("users", &["--set", "deleted_by=deleted_by"])],
    );
    db.exec("CREATE EXTENSION plpgsql_check");
    let findings = db.column(
        "SELECT p.proname || ': ' || c.level || ' ' || c.message FROM pg_proc p
         CROSS JOIN LATERAL plpgsql_check_function_tb(p.oid,
             relid => CASE WHEN p.proname IN ('on_update', 'guard') THEN 'users'::regclass ELSE 0 END,
             oldtable => CASE p.proname WHEN 'on_update' THEN 'pgx_old' END,
             newtable => CASE p.proname WHEN 'on_update' THEN 'pgx_new' END,
             extra_warnings => true) c
         WHERE p.pronamespace = 'soft_delete'::regnamespace
           AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')",
    );
    assert_eq!(findings, Vec::<String>::new());
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_proc WHERE pronamespace = 'soft_delete'::regnamespace AND prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')")
            .as_deref(),
        Some("7"),
        "every PL/pgSQL function was checked"
    );
}

#[test]
fn after_adding_a_column_intercept_again_and_returning_sees_it() {
    let db = TestDb::new();
    soft_deleted(&db, USERS, &[("users", &[])]);
    db.exec("INSERT INTO users (email) VALUES ('a@x'), ('b@x'); ALTER TABLE users ADD COLUMN plan text DEFAULT 'free';");
    let err = db
        .try_rows("DELETE FROM users WHERE email = 'a@x' RETURNING *")
        .unwrap_err();
    assert!(
        err.contains("could not find replacement targetlist entry"),
        "{err}"
    );
    db.exec("SELECT soft_delete.intercept('users')");
    assert_eq!(
        db.rows("DELETE FROM users WHERE email = 'a@x' RETURNING email, plan"),
        vec![vec![Some("a@x".into()), Some("free".into())]]
    );
    // DELETE in WITH and MERGE are refused on a table with rules: loudly, never silently.
    let err = db
        .try_rows("WITH d AS (DELETE FROM users RETURNING 1) SELECT count(*) FROM d")
        .unwrap_err();
    assert!(
        err.contains("not supported for data-modifying statements in WITH"),
        "{err}"
    );
    let err = db
        .try_exec(
            "MERGE INTO users u USING (SELECT 1 AS id) s ON u.id = s.id WHEN MATCHED THEN DELETE",
        )
        .unwrap_err();
    assert!(
        err.contains("MERGE is not supported for relations with rules"),
        "{err}"
    );
    // A table that has had a column dropped keeps its row count, but PostgreSQL allows its rule
    // no RETURNING.
    db.exec("ALTER TABLE users DROP COLUMN plan CASCADE; SELECT soft_delete.intercept('users')");
    assert_eq!(
        row_count(&db, None, "", "DELETE FROM users WHERE email = 'b@x'"),
        1
    );
    let err = db.try_rows("DELETE FROM users RETURNING id").unwrap_err();
    assert!(
        err.contains("cannot perform DELETE RETURNING on relation \"users\""),
        "{err}"
    );
}
