//! What the soft_delete migrations change and give back: unique keys made partial (and
//! restored or refused by the down), the down's refusal while rows are deleted, and the shared
//! infrastructure's own checks, as superuser and as a non-superuser migrator.

use crate::soft_delete::{USERS, app_role, as_role, ok_as, row_count, strings};
use crate::support::{Project, TestDb, TestRole};

/// Reverts the soft_delete migration and the infrastructure's (written with it), and checks
/// the schema is exactly `before`.
fn down_both_and_compare(p: &Project, db: &TestDb, before: &pgx::db::snapshot::Snapshot) {
    p.pgx()
        .db(db)
        .args(["migrate", "down", "--steps", "2"])
        .ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}

/// Deletes the newest migration pair (one that failed to apply and is retried otherwise).
fn remove_latest(p: &Project) {
    let files = p.files("migrations");
    let stem = files
        .iter()
        .rev()
        .find(|f| f.ends_with(".up.sql"))
        .unwrap()
        .trim_end_matches(".up.sql")
        .to_string();
    for kind in ["up", "down"] {
        std::fs::remove_file(p.join(&format!("migrations/{stem}.{kind}.sql"))).unwrap();
    }
}

#[test]
fn unique_keys_hold_among_live_rows_and_the_down_restores_or_refuses_them() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE users (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             email text NOT NULL CONSTRAINT users_email_key UNIQUE,
             login text NOT NULL,
             team int, code text,
             CONSTRAINT users_team_code_key UNIQUE NULLS NOT DISTINCT (team, code) INCLUDE (login)
         );
         CREATE UNIQUE INDEX users_login_lower ON users (lower(login)) WHERE team IS NOT NULL;
         CREATE UNIQUE INDEX users_code_key ON users (code) WITH (fillfactor = 70);
         COMMENT ON CONSTRAINT users_email_key ON users IS 'one account per address';",
        "DROP TABLE users;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();
    p.pgx().args(["new", "soft_delete", "users"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    // Every unique key now holds among live rows only, under its old name.
    assert_eq!(
        db.column(
            "SELECT c.relname || ': ' || pg_get_expr(i.indpred, i.indrelid) FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = 'users'::regclass AND NOT i.indisprimary ORDER BY 1"
        ),
        [
            "users_code_key: (deleted_at IS NULL)",
            "users_email_key: (deleted_at IS NULL)",
            "users_login_lower: ((team IS NOT NULL) AND (deleted_at IS NULL))",
            "users_team_code_key: (deleted_at IS NULL)",
        ]
    );
    db.exec("INSERT INTO users (email, login, team, code) VALUES ('a@x', 'Ann', 1, 'c')");
    let dup = db
        .try_exec("INSERT INTO users (email, login) VALUES ('a@x', 'other')")
        .unwrap_err();
    assert!(
        dup.contains("users_email_key"),
        "live rows stay unique: {dup}"
    );
    db.exec("DELETE FROM users WHERE email = 'a@x'");
    // A deleted address (and login, team/code) can be registered again.
    db.exec("INSERT INTO users (email, login, team, code) VALUES ('a@x', 'ann', 1, 'c')");
    // An upsert names the predicate of the partial index it relies on.
    db.exec(
        "INSERT INTO users (email, login) VALUES ('a@x', 'x')
         ON CONFLICT (email) WHERE deleted_at IS NULL DO UPDATE SET login = 'updated'",
    );
    assert_eq!(
        db.column("SELECT login FROM users WHERE deleted_at IS NULL"),
        ["updated"]
    );
    let err = db
        .try_exec(
            "INSERT INTO users (email, login) VALUES ('a@x', 'x') ON CONFLICT (email) DO NOTHING",
        )
        .unwrap_err();
    assert!(
        err.contains("no unique or exclusion constraint matching the ON CONFLICT specification"),
        "{err}"
    );

    // Down: the deleted row duplicates the live one, so the constraint cannot come back.
    let run = p.pgx().db(&db).args(["migrate", "down"]).fails();
    run.stderr_has("cannot restore unique index users_code_key on public.users")
        .stderr_has("soft-deleted rows duplicate live ones");
    // Once the duplicates are purged, down restores the schema exactly (comments included).
    db.exec("SELECT users_purge('0')");
    // The infrastructure's migration goes too (it came with this one).
    down_both_and_compare(&p, &db, &before);
    assert_eq!(
        db.scalar("SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conname = 'users_email_key'")
            .as_deref(),
        Some("one account per address")
    );
    assert_eq!(
        db.column("SELECT contype::text FROM pg_constraint WHERE conrelid = 'users'::regclass ORDER BY conname"),
        ["u", "p", "u"],
        "constraints are constraints again"
    );
}

#[test]
fn listed_unique_keys_only_and_clear_refusals() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text UNIQUE, login text UNIQUE, code text CONSTRAINT users_code_key UNIQUE DEFERRABLE);
         CREATE TABLE badges (user_login text REFERENCES users (login));",
        "DROP TABLE badges, users;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    // unique=all cannot turn a key a foreign key relies on into a partial one.
    p.pgx().args(["new", "soft_delete", "users"]).ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("cannot make users_code_key unique among live rows only: it is DEFERRABLE");
    remove_latest(&p);
    p.pgx()
        .args([
            "new",
            "soft_delete",
            "users",
            "--set",
            "unique=email,users_login_key",
        ])
        .ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("cannot make users_login_key unique among live rows only: foreign keys of badges reference it");
    remove_latest(&p);
    p.pgx()
        .args([
            "new",
            "soft_delete",
            "users",
            "--set",
            "unique=email,nickname",
        ])
        .ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("public.users has no unique constraint or index named nickname");
    remove_latest(&p);
    // By column: only the email key changes.
    p.pgx()
        .args(["new", "soft_delete", "users", "--set", "unique=email"])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.column("SELECT conname FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype = 'u' ORDER BY 1"),
        ["users_code_key", "users_login_key"]
    );
    assert_eq!(
        db.scalar("SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = 'users_email_key'::regclass")
            .as_deref(),
        Some("(deleted_at IS NULL)")
    );
}

#[test]
fn down_refuses_while_rows_are_deleted_and_otherwise_restores_the_schema() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("setup", USERS, "DROP TABLE users;");
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec("GRANT SELECT ON users TO PUBLIC");
    let before = db.snapshot();
    p.pgx()
        .args([
            "new",
            "soft_delete",
            "users",
            "--set",
            "deleted_by=by",
            "--set",
            "live_indexes=name",
        ])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let after = db.snapshot();
    assert!(after.objects.contains_key("view public.users_live"));
    assert!(
        after
            .objects
            .contains_key("index public.users_name_live_idx")
    );
    db.exec("INSERT INTO users (email) VALUES ('a@x'); DELETE FROM users;");
    p.pgx()
        .db(&db)
        .args(["migrate", "down"])
        .fails()
        .stderr_has(
            "public.users has 1 soft-deleted row(s), which dropping deleted_at would bring back",
        );
    db.exec("SELECT users_restore(1)");
    // The infrastructure's migration goes too (it came with this one).
    down_both_and_compare(&p, &db, &before);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(after.diff(&db.snapshot()), vec![]);
    p.pgx().db(&db).args(["check"]).ok();
}

#[test]
fn the_infrastructure_refuses_schemas_others_could_write_and_stays_while_used() {
    let db = TestDb::new();
    let weak = TestRole::new("pgx_weak", "NOSUPERUSER NOBYPASSRLS");
    let p = Project::new();
    p.pgx().args(["new", "soft_delete_install"]).ok();
    // A schema of that name exists already (whoever made it).
    db.exec("CREATE SCHEMA soft_delete");
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("schema soft_delete exists already");
    db.exec("DROP SCHEMA soft_delete");
    // Default privileges would let another role create objects in the new schema.
    db.exec(&format!(
        "ALTER DEFAULT PRIVILEGES GRANT CREATE ON SCHEMAS TO {}",
        weak.name
    ));
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!(
            "role(s) {} could create objects in schema soft_delete",
            weak.name
        ));
    db.exec(&format!(
        "ALTER DEFAULT PRIVILEGES REVOKE CREATE ON SCHEMAS FROM {}",
        weak.name
    ));
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'soft_delete'")
            .as_deref(),
        Some("0"),
        "nothing was left behind"
    );

    // Installed, used by a table: its down is refused (run by hand out of order here, since
    // `migrate down` reverts the table's migration first).
    p.add("create users", USERS, "DROP TABLE users;");
    p.pgx().args(["new", "soft_delete", "users"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let install_down = p
        .files("migrations")
        .into_iter()
        .find(|f| f.ends_with("_soft_delete_install.down.sql"))
        .unwrap();
    let err = db
        .try_exec(&format!(
            "BEGIN; {} COMMIT;",
            p.read(&format!("migrations/{install_down}"))
        ))
        .unwrap_err();
    assert!(
        err.contains(
            "the soft-delete infrastructure in schema soft_delete is still used by public.users"
        ),
        "{err}"
    );

    // A table without primary key, or with DELETE-only policies, is refused with the reason.
    for (table, setup, message) in [
        (
            "notes",
            "CREATE TABLE notes (body text)",
            "public.notes has no primary key",
        ),
        (
            "posts",
            "CREATE TABLE posts (id int PRIMARY KEY); ALTER TABLE posts ENABLE ROW LEVEL SECURITY;
             CREATE POLICY own ON posts FOR DELETE USING (true);",
            "public.posts has row-security policies for DELETE only (own)",
        ),
    ] {
        db.exec(setup);
        p.pgx().args(["new", "soft_delete", table]).ok();
        p.pgx()
            .db(&db)
            .args(["migrate", "up"])
            .fails()
            .stderr_has(message);
        remove_latest(&p);
    }
}

#[test]
fn a_non_superuser_migrator_installs_owns_and_purges() {
    let db = TestDb::new();
    let migrator = TestRole::new("pgx_migrator", "NOSUPERUSER NOBYPASSRLS");
    let app = app_role();
    db.exec(&format!(
        "GRANT CREATE ON DATABASE {0} TO {1}; GRANT CREATE ON SCHEMA public TO {1};",
        db.name, migrator.name
    ));
    let p = Project::new();
    p.add(
        "create users",
        &format!(
            "{USERS}; GRANT SELECT, INSERT, UPDATE, DELETE ON users TO {};",
            app.name
        ),
        "DROP TABLE users;",
    );
    p.pgx().args(["new", "soft_delete", "users"]).ok();
    p.pgx()
        .env("DATABASE_URL", &db.url_as(&migrator.name))
        .args(["migrate", "up"])
        .ok();
    assert_eq!(
        db.scalar("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'soft_delete'"),
        Some(migrator.name.clone())
    );
    db.exec("INSERT INTO users (email) VALUES ('a@x'), ('b@x')");
    assert_eq!(row_count(&db, Some(&app), "", "DELETE FROM users"), 2);
    assert!(as_role(&db, &app, "SELECT users_purge('0')").is_err());
    assert_eq!(
        strings(&ok_as(&db, &migrator, "SELECT users_purge('0')")),
        [["2"]]
    );
    p.pgx()
        .env("DATABASE_URL", &db.url_as(&migrator.name))
        .args(["migrate", "down", "--steps", "3"])
        .ok();
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'soft_delete'")
            .as_deref(),
        Some("0")
    );
}
