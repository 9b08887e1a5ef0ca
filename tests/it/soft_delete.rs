//! The `soft_delete` pattern on the real database: DELETE intercepted with its row count and
//! RETURNING, the actor, the hard-delete path, restore, the live view and the hide policy, and
//! quoted names. Roles that matter are NOSUPERUSER NOBYPASSRLS. Unique keys, the down and the
//! infrastructure are in `soft_delete_schema`, cascades in `soft_delete_cascade`, combinations
//! with other patterns in `soft_delete_combined`.

use sqlx::Connection;

use crate::support::{Project, TestDb, TestRole, block_on};
// The application role and running SQL as it: the same helpers as the tenant tests.
pub use crate::tenant_support::{Rows, app_role, as_role, ok_as};

pub const USERS: &str = "CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL CONSTRAINT users_email_key UNIQUE,
    name text
)";

/// A project whose first migration runs `setup`, applied, then `pgx new soft_delete` for each
/// `(table, extra args)`, applied.
pub fn soft_deleted(db: &TestDb, setup: &str, tables: &[(&str, &[&str])]) -> Project {
    let p = Project::new();
    p.add("setup", setup, "SELECT 1");
    for (table, extra) in tables {
        let mut args = vec!["new", "soft_delete", table];
        args.extend_from_slice(extra);
        p.pgx().args(&args).ok();
    }
    p.pgx().db(db).args(["migrate", "up"]).ok();
    p
}

/// The row count PostgreSQL reports for `statement` (its command tag), run after `setup` in
/// one session as `user` (None: the admin).
pub fn row_count(db: &TestDb, user: Option<&TestRole>, setup: &str, statement: &str) -> u64 {
    let url = user.map_or_else(|| db.url.clone(), |r| db.url_as(&r.name));
    block_on(async {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        if !setup.is_empty() {
            sqlx::raw_sql(sqlx::AssertSqlSafe(setup.to_string()))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {}", pgx::error::describe_db_error(&e)))
            .rows_affected()
    })
}

pub fn strings(rows: &Rows) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| v.clone().unwrap_or("NULL".into()))
                .collect()
        })
        .collect()
}

/// `users` owned by the admin; `app` may read and write it (and its live view), nothing more.
fn users_with_app(db: &TestDb, extra: &[&str]) -> (Project, TestRole) {
    let app = app_role();
    let setup = format!(
        "{USERS}; GRANT SELECT, INSERT, UPDATE, DELETE ON users TO {};",
        app.name
    );
    let p = soft_deleted(db, &setup, &[("users", extra)]);
    (p, app)
}

#[test]
fn delete_marks_rows_and_keeps_its_row_count_and_returning() {
    let db = TestDb::new();
    let (_p, app) = users_with_app(&db, &["--set", "deleted_by=deleted_by"]);
    db.exec("INSERT INTO users (email, name) VALUES ('a@x', 'A'), ('b@x', 'B'), ('c@x', 'C'), ('d@x', 'D')");

    // The application role deletes with plain DELETE: the tag counts the rows, as a hard
    // delete's would, and RETURNING returns them as they were.
    let actor = "SET app.user_id = 42";
    assert_eq!(
        row_count(
            &db,
            Some(&app),
            actor,
            "DELETE FROM users WHERE email IN ('a@x', 'b@x')"
        ),
        2
    );
    let returned = ok_as(
        &db,
        &app,
        "SET app.user_id = 'not a number'; DELETE FROM users WHERE email = 'c@x' RETURNING id, email, name, deleted_at",
    );
    assert_eq!(strings(&returned), [["3", "c@x", "C", "NULL"]]);
    // Rows deleted already are not deleted again, nor counted.
    assert_eq!(
        row_count(
            &db,
            Some(&app),
            "",
            "DELETE FROM users WHERE email <> 'd@x'"
        ),
        0
    );
    assert_eq!(
        strings(
            &db.rows("SELECT email, deleted_at IS NOT NULL, deleted_by FROM users ORDER BY id")
        ),
        [
            ["a@x", "t", "42"],
            ["b@x", "t", "42"],
            ["c@x", "t", "NULL"],
            ["d@x", "f", "NULL"]
        ],
        "rows stay, marked with the actor when the setting parses"
    );
    // One statement, one time: rows deleted together carry the same mark.
    assert_eq!(
        db.scalar("SELECT count(DISTINCT deleted_at) FROM users WHERE email IN ('a@x', 'b@x')")
            .as_deref(),
        Some("1")
    );

    // Through the live view: it shows live rows only, and DELETE through it soft-deletes too.
    assert_eq!(
        strings(&ok_as(&db, &app, "SELECT * FROM users_live")),
        [["4", "d@x", "D"]],
        "the view hides deleted rows and the soft-delete columns"
    );
    ok_as(&db, &app, "INSERT INTO users_live (email) VALUES ('e@x')");
    assert_eq!(
        row_count(
            &db,
            Some(&app),
            "",
            "UPDATE users_live SET name = 'E' WHERE email = 'e@x'"
        ),
        1
    );
    assert_eq!(
        row_count(
            &db,
            Some(&app),
            "",
            "UPDATE users_live SET name = 'x' WHERE email = 'a@x'"
        ),
        0,
        "deleted rows cannot be updated through the view"
    );
    assert_eq!(
        row_count(
            &db,
            Some(&app),
            "",
            "DELETE FROM users_live WHERE email = 'e@x'"
        ),
        1
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM users WHERE deleted_at IS NULL")
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM users").as_deref(),
        Some("5"),
        "no row was removed"
    );
}

#[test]
fn a_malformed_or_missing_actor_records_null_and_never_fails() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("setup", USERS, "SELECT 1");
    p.pgx()
        .args([
            "new",
            "soft_delete",
            "users",
            "--set",
            "deleted_by=deleted_by",
            "--set",
            "actor_type=uuid",
        ])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let cases = [
        ("", None),
        ("SET app.user_id = ''", None),
        ("SET app.user_id = 'acme'", None),
        ("SET app.user_id = '7'; RESET app.user_id", None),
        (
            "SET app.user_id = ' 00000000-0000-0000-0000-00000000000a '",
            Some("00000000-0000-0000-0000-00000000000a"),
        ),
    ];
    for (i, (setup, expected)) in cases.iter().enumerate() {
        db.exec(&format!("INSERT INTO users (email) VALUES ('{i}@x')"));
        assert_eq!(
            row_count(
                &db,
                None,
                setup,
                &format!("DELETE FROM users WHERE email = '{i}@x'")
            ),
            1,
            "{setup}"
        );
        assert_eq!(
            db.scalar(&format!(
                "SELECT deleted_by FROM users WHERE email = '{i}@x'"
            ))
            .as_deref(),
            *expected,
            "{setup}"
        );
    }
}

#[test]
fn only_the_owner_can_delete_for_real_and_only_through_purge() {
    let db = TestDb::new();
    let (_p, app) = users_with_app(&db, &[]);
    db.exec("INSERT INTO users (email) SELECT g || '@x' FROM generate_series(1, 5) g");
    ok_as(&db, &app, "DELETE FROM users WHERE id <= 4");
    db.exec("UPDATE users SET deleted_at = now() - interval '40 days' WHERE id <= 3");

    // The application role has DELETE, yet cannot remove a row: not by disabling the rule,
    // not by calling purge, not through the counting view.
    for attack in [
        "ALTER TABLE users DISABLE RULE soft_delete",
        "SELECT users_purge('0')",
        "SELECT soft_delete.purge('users', '0', 10)",
        "DELETE FROM users_soft_delete",
        "SELECT soft_delete.intercept('users')",
    ] {
        let err = as_role(&db, &app, attack).unwrap_err();
        assert!(
            err.contains("must be owner") || err.contains("permission denied"),
            "{attack}: {err}"
        );
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM users").as_deref(),
        Some("5")
    );

    // The owner purges in batches, oldest deletes only, and the rule is back on afterwards.
    let batches: Vec<String> = (0..3)
        .map(|_| db.scalar("SELECT users_purge('30 days', 2)").unwrap())
        .collect();
    assert_eq!(batches, ["2", "1", "0"]);
    assert_eq!(
        db.column("SELECT id FROM users ORDER BY id"),
        ["4", "5"],
        "row 4 was deleted too recently, row 5 is live"
    );
    assert_eq!(
        db.scalar("SELECT ev_enabled FROM pg_rewrite WHERE ev_class = 'users'::regclass AND rulename = 'soft_delete'")
            .as_deref(),
        Some("O")
    );
    assert_eq!(
        row_count(&db, None, "", "DELETE FROM users WHERE id = 5"),
        1
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM users").as_deref(),
        Some("2")
    );

    // Should the rule disappear (DROP VIEW ... CASCADE, say), DELETE fails instead of removing.
    db.exec("DROP VIEW users_soft_delete CASCADE");
    let err = db.try_exec("DELETE FROM users").unwrap_err();
    assert!(
        err.contains("the soft-delete rule of public.users is missing"),
        "{err}"
    );
    db.exec("SELECT soft_delete.intercept('users')");
    assert_eq!(
        row_count(&db, None, "", "DELETE FROM users WHERE id = 4"),
        0
    );
}

#[test]
fn restore_brings_back_one_row_and_respects_the_callers_rights() {
    let db = TestDb::new();
    let (_p, app) = users_with_app(&db, &["--set", "deleted_by=deleted_by"]);
    let reader = TestRole::new("pgx_reader", "NOSUPERUSER NOBYPASSRLS");
    db.exec(&format!("GRANT SELECT ON users TO {}", reader.name));
    db.exec("INSERT INTO users (email) VALUES ('a@x'), ('b@x')");
    row_count(&db, None, "SET app.user_id = 7", "DELETE FROM users");

    assert_eq!(
        strings(&ok_as(
            &db,
            &app,
            "SELECT users_restore(1), users_restore(1), users_restore(99)"
        )),
        [["t", "f", "f"]],
        "true once, false for a live or missing row"
    );
    assert_eq!(
        strings(&db.rows("SELECT email, deleted_at IS NULL, deleted_by FROM users ORDER BY id")),
        [["a@x", "t", "NULL"], ["b@x", "f", "7"]]
    );
    // A role that may only read cannot restore.
    let err = as_role(&db, &reader, "SELECT users_restore(2)").unwrap_err();
    assert!(err.contains("permission denied for table users"), "{err}");
}

#[test]
fn hide_policy_hides_deleted_rows_and_still_lets_the_role_delete_with_returning() {
    let db = TestDb::new();
    let app = app_role();
    // The role owns the table: the rule's UPDATE runs as the owner, so the policy applies to it.
    let setup = format!(
        "{USERS}; ALTER TABLE users OWNER TO {0};
         INSERT INTO users (email) VALUES ('a@x'), ('b@x'), ('c@x');",
        app.name
    );
    let p = soft_deleted(
        &db,
        &setup,
        &[(
            "users",
            &[
                "--set",
                "hide=policy",
                "--set",
                &format!("role={}", app.name),
            ],
        )],
    );
    // The role deletes and gets the row back through RETURNING: the policy lets the row the
    // statement itself marks pass.
    assert_eq!(
        strings(&ok_as(
            &db,
            &app,
            "DELETE FROM users WHERE email = 'a@x' RETURNING email"
        )),
        [["a@x"]]
    );
    assert_eq!(
        ok_as(
            &db,
            &app,
            "UPDATE users SET deleted_at = statement_timestamp() WHERE email = 'b@x' RETURNING email"
        )
        .len(),
        1,
        "an UPDATE that marks with the statement's time passes too"
    );
    // Afterwards the deleted rows are gone for the role, even in the table itself.
    assert_eq!(
        column(&ok_as(&db, &app, "SELECT email FROM users ORDER BY 1")),
        ["c@x"]
    );
    assert_eq!(
        strings(&ok_as(&db, &app, "SELECT users_restore(1)")),
        [["f"]],
        "what it cannot see it cannot restore"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM users").as_deref(),
        Some("3"),
        "other roles see every row"
    );
    assert_eq!(
        db.scalar("SELECT relrowsecurity::text || relforcerowsecurity::text FROM pg_class WHERE oid = 'users'::regclass")
            .as_deref(),
        Some("truetrue"),
        "row security was switched on, and forced for the owning role"
    );

    // The naive policy fails exactly there: PostgreSQL checks SELECT policies against the new
    // row of an UPDATE that reads the table.
    db.exec(&format!(
        "DROP POLICY users_hide_deleted ON users;
         CREATE POLICY naive ON users AS RESTRICTIVE FOR SELECT TO {} USING (deleted_at IS NULL)",
        app.name
    ));
    for naive_victim in [
        "DELETE FROM users WHERE email = 'c@x' RETURNING email",
        "UPDATE users SET deleted_at = now() WHERE email = 'c@x' RETURNING email",
    ] {
        let err = as_role(&db, &app, naive_victim).unwrap_err();
        assert!(
            err.contains("new row violates row-level security policy"),
            "{naive_victim}: {err}"
        );
    }
    db.exec(&format!(
        "DROP POLICY naive ON users;
         CREATE POLICY users_hide_deleted ON users AS RESTRICTIVE FOR SELECT TO {} USING (deleted_at IS NULL OR deleted_at >= statement_timestamp())",
        app.name
    ));
    db.exec("SELECT users_purge('0')");
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(
        db.scalar("SELECT relrowsecurity::text || relforcerowsecurity::text FROM pg_class WHERE oid = 'users'::regclass")
            .as_deref(),
        Some("falsefalse"),
        "row security is off again, as before"
    );
}

fn column(rows: &Rows) -> Vec<String> {
    rows.iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect()
}

#[test]
fn quoted_names_in_another_schema_work_end_to_end() {
    let db = TestDb::new();
    let app = app_role();
    let p = Project::new();
    p.add(
        "setup",
        &format!(
            r#"CREATE SCHEMA "Sales Dept";
               CREATE TABLE "Sales Dept"."order's ""items""" (id bigint PRIMARY KEY, sku text UNIQUE, "Order Code" text, CONSTRAINT "code key" UNIQUE ("Order Code"));
               GRANT USAGE ON SCHEMA "Sales Dept" TO {0};
               GRANT SELECT, INSERT, UPDATE, DELETE ON "Sales Dept"."order's ""items""" TO {0};"#,
            app.name
        ),
        r#"DROP SCHEMA "Sales Dept" CASCADE;"#,
    );
    p.pgx()
        .args([
            "new",
            "soft_delete",
            "order's \"items\"",
            "--schema",
            "Sales Dept",
            "--set",
            "column=removed at",
            "--set",
            "deleted_by=by$pgx$",
            "--set",
            "view=live; drop table x",
            "--set",
            "live_indexes=sku",
            "--set",
            "soft_delete_schema=Soft Delete",
            "--set",
            "hide=policy",
            "--set",
            &format!("role={}", app.name),
        ])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let t = r#""Sales Dept"."order's ""items""""#;
    db.exec(&format!(
        r#"INSERT INTO {t} VALUES (1, 'a', 'A'), (2, 'b', 'B')"#
    ));
    assert_eq!(
        row_count(
            &db,
            Some(&app),
            "SET app.user_id = 5",
            &format!("DELETE FROM {t} WHERE sku = 'a'")
        ),
        1
    );
    assert_eq!(
        column(&ok_as(&db, &app, &format!("SELECT sku FROM {t}"))),
        ["b"],
        "hidden from the role"
    );
    db.exec(&format!(r#"INSERT INTO {t} VALUES (3, 'a', 'A')"#));
    assert_eq!(
        column(&ok_as(
            &db,
            &app,
            r#"SELECT sku FROM "Sales Dept"."live; drop table x" ORDER BY 1"#
        )),
        ["a", "b"]
    );
    db.exec(&format!(
        r#"UPDATE {t} SET "removed at" = "removed at" - interval '1 day' WHERE id = 1;
           SELECT "Sales Dept"."order's ""items""_purge"('1 hour')"#
    ));
    assert_eq!(
        db.scalar(&format!("SELECT count(*) FROM {t}")).as_deref(),
        Some("2")
    );
    p.pgx().db(&db).args(["check"]).ok();
}
