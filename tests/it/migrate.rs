//! `pgx migrate`: history, states, atomicity, locking, dry runs.

use std::time::Duration;

use crate::support::{Project, TestDb, block_on};
use pgx::migrate::files as migration;
use pgx::migrate::{Runner, Scope};
use sqlx::Connection;

fn status(p: &Project, db: &TestDb) -> serde_json::Value {
    let run = p.pgx().db(db).args(["migrate", "status", "--json"]).ok();
    serde_json::from_str(&run.stdout).unwrap()
}

fn states(p: &Project, db: &TestDb) -> Vec<String> {
    status(p, db)["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap().to_string())
        .collect()
}

fn tables(db: &TestDb) -> Vec<String> {
    db.column("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
}

#[test]
fn status_shows_applied_pending_modified_and_missing() {
    let db = TestDb::new();
    let p = Project::new();
    let a = p.add("a", "CREATE TABLE a (id int);", "DROP TABLE a;");
    let b = p.add("b", "CREATE TABLE b (id int);", "DROP TABLE b;");
    p.add("c", "CREATE TABLE c (id int);", "DROP TABLE c;");
    // Status on a fresh database creates nothing.
    assert_eq!(states(&p, &db), ["pending", "pending", "pending"]);
    assert_eq!(
        db.scalar("SELECT to_regclass('_sqlx_migrations') IS NULL")
            .as_deref(),
        Some("t")
    );

    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(states(&p, &db), ["applied", "applied", "applied"]);
    p.add("d", "CREATE TABLE d (id int);", "DROP TABLE d;");

    // Edit an applied file, delete another.
    let original = p.read(&format!("migrations/{a}"));
    p.write(&format!("migrations/{a}"), "CREATE TABLE a (id bigint);");
    std::fs::remove_file(p.join(&format!("migrations/{b}"))).unwrap();
    std::fs::remove_file(p.join(&format!("migrations/{}", b.replace(".up.", ".down.")))).unwrap();
    assert_eq!(
        states(&p, &db),
        ["modified", "file_missing", "applied", "pending"]
    );
    let text = p.pgx().db(&db).args(["migrate", "status"]).ok().stdout;
    assert!(
        text.contains("modified") && text.contains("file missing") && text.contains("pending"),
        "{text}"
    );

    // up refuses while a file differs from what ran; nothing else is applied.
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("applied with different contents")
        .stderr_has(&a);
    assert!(!tables(&db).contains(&"d".to_string()));

    // With the edit undone, a missing file is still refused unless told to ignore it.
    p.write(&format!("migrations/{a}"), &original);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("has no file")
        .stderr_has("--ignore-missing");
    p.pgx()
        .db(&db)
        .args(["migrate", "up", "--ignore-missing"])
        .ok();
    assert!(tables(&db).contains(&"d".to_string()));
}

#[test]
fn a_failing_migration_rolls_back_completely_and_names_file_and_line() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("first", "CREATE TABLE first (id int);", "DROP TABLE first;");
    let bad = p.add(
        "second",
        "CREATE TABLE second (id int);\nINSERT INTO second VALUES (1);\n\nCREATE INDEX ON second (id);\nSELECT *\n  FROM no_such_table;\n",
        "DROP TABLE second;",
    );
    p.add("third", "CREATE TABLE third (id int);", "DROP TABLE third;");
    let run = p.pgx().db(&db).args(["migrate", "up"]).fails();
    run.stderr_has(&format!("{bad}:6:"))
        .stderr_has("relation \"no_such_table\" does not exist")
        .stderr_has("42P01")
        .stderr_has("rolled back, nothing recorded");
    // The first migration stays applied; nothing of the second exists; the third never ran.
    assert_eq!(tables(&db), ["_sqlx_migrations", "first"]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM _sqlx_migrations")
            .as_deref(),
        Some("1")
    );
    assert_eq!(states(&p, &db), ["applied", "pending", "pending"]);
}

#[test]
fn errors_inside_functions_point_at_the_statement() {
    let db = TestDb::new();
    let p = Project::new();
    let f = p.add(
        "do",
        "CREATE TABLE t (id int);\n\nDO $$\nBEGIN\n  RAISE EXCEPTION 'boom %', 42;\nEND\n$$;\n",
        "DROP TABLE t;",
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!("{f}:3:"))
        .stderr_has("boom 42")
        .stderr_has("PL/pgSQL");
    assert_eq!(tables(&db), ["_sqlx_migrations"]);
}

#[test]
fn no_transaction_migrations_run_several_concurrent_index_builds() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("t", "CREATE TABLE t (a int, b int, c int); INSERT INTO t SELECT g, g, g FROM generate_series(1, 1000) g;", "DROP TABLE t;");
    p.pgx()
        .args(["add", "indexes", "--no-transaction"])
        .args(["--up", "CREATE INDEX CONCURRENTLY t_a ON t (a);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\nCREATE INDEX CONCURRENTLY t_c ON t (c);"])
        .args(["--down", "DROP INDEX CONCURRENTLY t_c;\nDROP INDEX CONCURRENTLY t_b;\nDROP INDEX CONCURRENTLY t_a;"])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.column("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 't'::regclass AND indisvalid ORDER BY 1"),
        ["t_a", "t_b", "t_c"]
    );
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_index WHERE indrelid = 't'::regclass")
            .as_deref(),
        Some("0")
    );

    // A failure part-way says what took effect, and the database shows exactly that: the first
    // index built, the second not, the migration not recorded (so that it runs again).
    let f = p.add("broken", "SELECT 1;", "SELECT 1;");
    p.write(&format!("migrations/{f}"), "-- no-transaction\nCREATE INDEX CONCURRENTLY t_d ON t (a);\nCREATE INDEX CONCURRENTLY t_e ON t (nope);\n");
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!("{f}:3:"))
        .stderr_has("column \"nope\" does not exist")
        .stderr_has(
            "the statements before line 3 took effect and were not undone; nothing recorded",
        );
    assert_eq!(
        db.column("SELECT indexrelid::regclass::text || ' ' || indisvalid FROM pg_index WHERE indrelid = 't'::regclass ORDER BY 1"),
        ["t_a true", "t_b true", "t_c true", "t_d true"]
    );
    let version = f.split('_').next().unwrap();
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM _sqlx_migrations WHERE version = {version}"
        ))
        .as_deref(),
        Some("0")
    );
    assert_eq!(states(&p, &db).last().map(String::as_str), Some("pending"));
}

#[test]
fn dry_run_prints_the_sql_in_order_and_changes_nothing() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("one", "CREATE TABLE one (id int);", "DROP TABLE one;");
    p.add("two", "CREATE TABLE two (id int);", "DROP TABLE two;");
    let before = db.snapshot();
    let run = p.pgx().db(&db).args(["migrate", "up", "--dry-run"]).ok();
    let (one, two) = (
        run.stdout.find("CREATE TABLE one").unwrap(),
        run.stdout.find("CREATE TABLE two").unwrap(),
    );
    assert!(one < two);
    assert!(
        run.stdout
            .contains("CREATE TABLE IF NOT EXISTS public._sqlx_migrations")
    );
    assert_eq!(before.diff(&db.snapshot()), vec![]);
    assert_eq!(
        db.scalar("SELECT to_regclass('_sqlx_migrations') IS NULL")
            .as_deref(),
        Some("t")
    );

    // The printed script is runnable as is, and leaves the same history pgx would.
    db.exec(&run.stdout);
    assert_eq!(states(&p, &db), ["applied", "applied"]);

    let down = p
        .pgx()
        .db(&db)
        .args(["migrate", "down", "--steps", "2", "--dry-run"])
        .ok()
        .stdout;
    assert!(down.find("DROP TABLE two").unwrap() < down.find("DROP TABLE one").unwrap());
    assert_eq!(states(&p, &db), ["applied", "applied"]);
}

#[test]
fn down_steps_target_and_redo() {
    let db = TestDb::new();
    let p = Project::new();
    for t in ["a", "b", "c", "d"] {
        p.add(
            t,
            &format!("CREATE TABLE {t} (id int);"),
            &format!("DROP TABLE {t};"),
        );
    }
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(tables(&db), ["_sqlx_migrations", "a", "b", "c"]);
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--steps", "2"])
        .ok();
    assert_eq!(tables(&db), ["_sqlx_migrations", "a"]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let versions: Vec<i64> = status(&p, &db)["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_i64().unwrap())
        .collect();
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--target", &versions[1].to_string()])
        .ok();
    assert_eq!(tables(&db), ["_sqlx_migrations", "a", "b"]);
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--target", "12345"])
        .fails()
        .stderr_has("no migration with version 12345");
    p.pgx()
        .db(&db)
        .args(["migrate", "up", "--target", &versions[2].to_string()])
        .ok();
    assert_eq!(tables(&db), ["_sqlx_migrations", "a", "b", "c"]);

    db.exec("INSERT INTO c VALUES (1)");
    p.pgx().db(&db).args(["migrate", "redo"]).ok();
    assert_eq!(
        db.scalar("SELECT count(*) FROM c").as_deref(),
        Some("0"),
        "redo reverted and reapplied c"
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--target", "0"])
        .ok();
    assert_eq!(tables(&db), ["_sqlx_migrations"]);
    // Nothing applied: a down says so, changes nothing and records nothing.
    let history = db.rows("SELECT version, success FROM _sqlx_migrations ORDER BY version");
    assert_eq!(
        history,
        Vec::<Vec<Option<String>>>::new(),
        "history emptied by the downs"
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "down"])
        .ok()
        .stderr_has("nothing to revert");
    assert_eq!(tables(&db), ["_sqlx_migrations"]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM _sqlx_migrations")
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        states(&p, &db),
        ["pending", "pending", "pending", "pending"]
    );
}

#[test]
fn reverting_without_a_down_file_or_from_a_failed_row_is_refused() {
    let db = TestDb::new();
    let p = Project::new();
    let a = p.add("a", "CREATE TABLE a (id int);", "DROP TABLE a;");
    std::fs::remove_file(p.join(&format!("migrations/{}", a.replace(".up.", ".down.")))).unwrap();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "down"])
        .fails()
        .stderr_has("has no down migration");
    assert_eq!(tables(&db), ["_sqlx_migrations", "a"]);

    db.exec("INSERT INTO _sqlx_migrations VALUES (1, 'half', now(), false, '\\x00', 0)");
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("migration 1 (half) is recorded as failed");
}

#[test]
fn parallel_migrators_apply_each_migration_exactly_once() {
    let db = TestDb::new();
    let p = Project::new();
    db.exec("CREATE TABLE hits (n int)");
    for i in 0..20 {
        // Not idempotent on purpose: a second run of any of these fails.
        p.add(
            &format!("m{i}"),
            &format!("CREATE TABLE t{i} (id int); INSERT INTO hits VALUES ({i});"),
            &format!("DROP TABLE t{i};"),
        );
    }
    let children: Vec<_> = (0..8)
        .map(|_| p.pgx().db(&db).args(["migrate", "up"]).spawn())
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        db.scalar("SELECT count(*) || ' ' || count(DISTINCT n) FROM hits")
            .as_deref(),
        Some("20 20")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .as_deref(),
        Some("20")
    );
}

#[test]
fn lock_timeout_gives_up_clearly_while_another_migrator_holds_the_lock() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("a", "CREATE TABLE a (id int);", "DROP TABLE a;");
    block_on(async {
        let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let key = pgx::migrate::history::sqlx_lock_id(&db.name);
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut holder)
            .await
            .unwrap();
        let run = p
            .pgx()
            .db(&db)
            .args(["migrate", "up", "--lock-timeout", "300ms"])
            .fails();
        run.stderr_has("timed out after 300 ms waiting for the migration lock");
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut holder)
            .await
            .unwrap();
    });
    assert_eq!(
        db.scalar("SELECT to_regclass('a') IS NULL").as_deref(),
        Some("t"),
        "nothing applied while locked"
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "up", "--lock-timeout", "300ms"])
        .ok()
        .stderr_has("applied 1 migration");
    assert_eq!(tables(&db), ["_sqlx_migrations", "a"]);
    assert_eq!(states(&p, &db), ["applied"]);
}

#[test]
fn the_lock_is_released_when_a_migration_fails() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "bad",
        "CREATE TABLE a (id int);\nSELECT 1/0;",
        "DROP TABLE a;",
    );
    let dir = p.join("migrations");
    let migrations = migration::scan(&dir).unwrap();
    block_on(async {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let mut runner = Runner::new(&mut conn, Scope::default(), Duration::from_secs(5))
            .await
            .unwrap();
        let err = runner.up(&migrations, &dir, None, false).await.unwrap_err();
        assert!(err.to_string().contains("division by zero"), "{err}");
        drop(runner);
        // Same session, still open: it must hold no advisory lock and be usable.
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(held, 0);
        // VACUUM refuses to run inside a transaction block: it succeeds only if none is open.
        sqlx::raw_sql("VACUUM _sqlx_migrations")
            .execute(&mut conn)
            .await
            .expect("no transaction left open");
    });
}
