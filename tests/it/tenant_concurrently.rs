//! `tenant` with `concurrently=true` on live tables: the slow work in steps of their own, each
//! no-transaction step a single statement (so sqlx-cli applies them too), and every step able
//! to run again after a failure, an interrupted index build included.

use sqlx::Connection;
use sqlx::migrate::Migrator;

use crate::support::{Project, TestDb, block_on};
use crate::tenant_support::*;

/// The step names of a `pgx new` run's files for `part`, in order (up files only).
fn steps(run: &crate::support::Run, part: &str) -> Vec<String> {
    written(run, part)
        .into_iter()
        .filter(|f| f.ends_with(".up.sql"))
        .map(|f| {
            let name = f.rsplit('/').next().unwrap();
            let description = name.split_once('_').unwrap().1;
            description
                .strip_prefix(&format!("{part}_"))
                .unwrap()
                .trim_end_matches(".up.sql")
                .to_string()
        })
        .collect()
}

fn orders_with_emails(db: &TestDb) -> Project {
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "create orders",
        &format!(
            "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text UNIQUE, tenant_id uuid);
             INSERT INTO orders (email, tenant_id) VALUES ('x@a', '{A}'), ('x@b', NULL), ('y@a', '{A}');"
        ),
        "DROP TABLE orders;",
    );
    p.pgx().db(db).args(["migrate", "up"]).ok();
    p
}

#[test]
fn concurrently_is_split_into_steps_that_run_again_after_a_failure() {
    let db = TestDb::new();
    let p = orders_with_emails(&db);
    let before = db.snapshot();
    let run = new_tenant(
        &p,
        "orders",
        &["add_column=false", "concurrently=true", "unique=email"],
    );
    assert_eq!(
        steps(&run, "tenant_orders"),
        [
            "prepare",
            "validate",
            "build_1",
            "retry",
            "rebuild_1",
            "isolate"
        ]
    );
    for file in written(&run, "tenant_orders") {
        let sql = p.read(&file);
        let no_transaction = file.contains("build_");
        assert_eq!(
            sql.starts_with("-- no-transaction\n"),
            no_transaction,
            "{file}"
        );
        if no_transaction {
            // One statement: what sqlx-cli can send as one query outside a transaction block.
            let body: Vec<&str> = sql
                .lines()
                .filter(|l| !l.starts_with("--") && !l.trim().is_empty())
                .collect();
            assert!(body.len() <= 1, "{file}:\n{sql}");
        }
    }

    // A row without a tenant stops it at validation, after the first step; once fixed, it
    // runs again from there to the end.
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("public.orders has rows whose tenant_id is NULL")
        .stderr_has("_tenant_orders_validate.up.sql");
    assert_eq!(
        db.column("SELECT description FROM _sqlx_migrations ORDER BY version DESC LIMIT 1"),
        ["tenant orders prepare"]
    );
    db.exec(&format!(
        "UPDATE orders SET tenant_id = '{B}' WHERE tenant_id IS NULL"
    ));
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let after = db.snapshot();
    let index = &after.objects["index public.orders_tenant_id_email_key"];
    assert!(
        index.contains("UNIQUE INDEX")
            && index.contains("(tenant_id, email)")
            && !index.contains("INVALID"),
        "{index}"
    );
    assert!(
        !after
            .objects
            .contains_key("constraint public.orders.orders_email_key"),
        "global uniqueness on email is replaced"
    );
    assert!(
        after.objects["column public.orders.tenant_id"].contains("not null"),
        "{}",
        after.objects["column public.orders.tenant_id"]
    );
    // The validated CHECK stays, so that the down migration needs no scan under an exclusive lock.
    assert_eq!(
        after.objects["constraint public.orders.orders_tenant_id_not_null"],
        "CHECK ((tenant_id IS NOT NULL))"
    );
    // Unique per tenant: B may use A's email, A may not repeat its own.
    db.exec(&format!(
        "INSERT INTO orders (email, tenant_id) VALUES ('y@a', '{B}')"
    ));
    assert!(
        db.try_exec(&format!(
            "INSERT INTO orders (email, tenant_id) VALUES ('y@a', '{A}')"
        ))
        .unwrap_err()
        .contains("orders_tenant_id_email_key")
    );
    db.exec(&format!(
        "DELETE FROM orders WHERE email = 'y@a' AND tenant_id = '{B}'"
    ));

    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--steps", "6"])
        .ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}

#[test]
fn an_interrupted_index_build_is_cleaned_up_when_the_migration_runs_again() {
    let db = TestDb::new();
    let p = orders_with_emails(&db);
    // Two rows of one tenant share an email: the per-tenant unique index cannot be built, and
    // the failed CREATE INDEX CONCURRENTLY leaves an invalid index behind.
    db.exec(&format!(
        "ALTER TABLE orders DROP CONSTRAINT orders_email_key;
         UPDATE orders SET tenant_id = '{A}'; UPDATE orders SET email = 'x@a' WHERE email = 'y@a';"
    ));
    let before = db.snapshot();
    new_tenant(
        &p,
        "orders",
        &["add_column=false", "concurrently=true", "unique=email"],
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("_tenant_orders_build_1.up.sql")
        .stderr_has("could not create unique index \"orders_tenant_id_email_key\"");
    assert_eq!(
        db.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_tenant_id_email_key'::regclass"
        )
        .as_deref(),
        Some("f"),
        "the interrupted build left an invalid index"
    );

    db.exec("UPDATE orders SET email = 'y@a' WHERE id = (SELECT max(id) FROM orders)");
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_tenant_id_email_key'::regclass"
        )
        .as_deref(),
        Some("t"),
        "built again, valid"
    );
    assert!(
        db.try_exec(&format!(
            "INSERT INTO orders (email, tenant_id) VALUES ('x@a', '{A}')"
        ))
        .unwrap_err()
        .contains("orders_tenant_id_email_key"),
        "and enforced"
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--steps", "6"])
        .ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}

#[test]
fn concurrently_adds_a_backfilled_column_to_a_table_with_rows() {
    let db = TestDb::new();
    let app = app_role();
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "create orders",
        &format!(
            "CREATE TABLE tenants (id uuid PRIMARY KEY); INSERT INTO tenants VALUES ('{A}'), ('{B}');
             CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text);
             INSERT INTO orders (item) SELECT 'old' || g FROM generate_series(1, 100) g;
             ALTER TABLE orders OWNER TO {};",
            app.name
        ),
        "DROP TABLE orders; DROP TABLE tenants;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();
    let run = new_tenant(
        &p,
        "orders",
        &[
            "concurrently=true",
            &format!("backfill={A}"),
            "references=tenants(id)",
        ],
    );
    assert_eq!(
        steps(&run, "tenant_orders"),
        [
            "prepare",
            "validate",
            "build_1",
            "retry",
            "rebuild_1",
            "isolate"
        ]
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let after = db.snapshot();
    assert!(!after.objects["index public.orders_tenant_id_idx"].contains("INVALID"));
    assert!(!after.objects["constraint public.orders.orders_tenant_id_fkey"].contains("NOT VALID"));
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{} SELECT count(*) FROM orders", tenant_of(A))
        ),
        ["100"]
    );
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{} SELECT count(*) FROM orders", tenant_of(B))
        ),
        ["0"]
    );
    ok_as(
        &db,
        &app,
        &format!("{} INSERT INTO orders (item) VALUES ('new')", tenant_of(B)),
    );
    assert_eq!(
        db.scalar("SELECT tenant_id FROM orders WHERE item = 'new'"),
        Some(B.to_string())
    );
    db.exec("DELETE FROM orders WHERE item = 'new'");
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--steps", "6"])
        .ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}

/// sqlx's own Migrator (what sqlx-cli runs) applies the steps: it sends a no-transaction file
/// as one query, which PostgreSQL runs as one transaction.
#[test]
fn sqlx_applies_the_concurrently_steps() {
    let db = TestDb::new();
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "create orders",
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text UNIQUE);",
        "DROP TABLE orders;",
    );
    new_tenant(&p, "orders", &["concurrently=true", "unique=email"]);
    block_on(async {
        let migrator = Migrator::new(p.join("migrations")).await.unwrap();
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        migrator.run(&mut conn).await.unwrap();
        migrator.undo(&mut conn, 0).await.unwrap();
    });
    assert_eq!(
        db.scalar("SELECT count(*) FROM _sqlx_migrations")
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        db.scalar("SELECT to_regclass('orders') IS NULL").as_deref(),
        Some("t")
    );
}
