//! `pgx migrate` on a live database: progress as it happens, `-q`, `--json`, `status
//! --exit-code`, server messages, a clean session per migration, retries on busy tables, the
//! lock holder named, interruption by signals, and concurrent creation of the history table.

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use crate::support::{Project, Run, TestDb, TestRole, block_on};
use sqlx::Connection;

/// Polls `check` every 50 ms until it is true; panics after `limit`.
fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` to exit; kills it and panics after `limit`.
fn finish(mut child: Child, limit: Duration) -> Run {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let out: Output = child.wait_with_output().unwrap();
            return Run::from(out, "pgx (spawned)".into());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "pgx did not exit within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until a session of pgx waits for a lock (a table's or the migration lock).
fn pgx_waits_for_a_lock(db: &TestDb) {
    wait_until("pgx to wait for a lock", Duration::from_secs(10), || {
        count(
            db,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgx' AND wait_event_type = 'Lock'",
        ) > 0
    });
}

fn versions(p: &Project) -> Vec<String> {
    p.files("migrations")
        .iter()
        .filter(|f| f.ends_with(".up.sql"))
        .map(|f| f.split('_').next().unwrap().to_string())
        .collect()
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.scalar(sql).unwrap().parse().unwrap()
}

#[test]
fn progress_lines_as_each_migration_completes_then_a_summary() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    p.add("beta", "CREATE TABLE beta (id int);", "DROP TABLE beta;");
    let bad = p.add(
        "gamma",
        "CREATE TABLE gamma (id int);\nSELECT 1/0;",
        "DROP TABLE gamma;",
    );
    let v = versions(&p);

    // The two before the failure are reported, in order, before the error.
    let run = p.pgx().db(&db).args(["migrate", "up"]).fails();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stderr);
    assert!(
        lines[0].starts_with(&format!("applied {} alpha (", v[0])),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(" ms)"), "{}", lines[0]);
    assert!(
        lines[1].starts_with(&format!("applied {} beta (", v[1])),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("division by zero"), "{}", lines[2]);

    p.write(&format!("migrations/{bad}"), "CREATE TABLE gamma (id int);");
    let run = p.pgx().db(&db).args(["migrate", "up"]).ok();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert!(lines[0].starts_with(&format!("applied {} gamma (", v[2])));
    assert!(
        lines[1].starts_with("applied 1 migration in "),
        "{}",
        lines[1]
    );

    let run = p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(run.stderr, "nothing to apply: up to date\n");

    let run = p.pgx().db(&db).args(["migrate", "redo"]).ok();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stderr);
    assert!(lines[0].starts_with(&format!("reverted {} gamma (", v[2])));
    assert!(lines[1].starts_with(&format!("applied {} gamma (", v[2])));
    assert!(
        lines[2].starts_with("redone: reverted 1 and applied 1 in "),
        "{}",
        lines[2]
    );

    let run = p
        .pgx()
        .db(&db)
        .args(["migrate", "down", "--steps", "2"])
        .ok();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stderr);
    assert!(lines[0].starts_with(&format!("reverted {} gamma", v[2])));
    assert!(lines[1].starts_with(&format!("reverted {} beta", v[1])));
    assert!(lines[2].starts_with("reverted 2 migrations in "));
}

#[test]
fn quiet_prints_nothing_and_json_gives_the_same_as_data() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    let bad = p.add("beta", "SELECT 1/0;", "SELECT 1;");
    let v = versions(&p);

    let run = p.pgx().db(&db).args(["migrate", "up", "--json"]).fails();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["command"], "apply");
    assert_eq!(doc["applied"].as_array().unwrap().len(), 1, "{doc:#}");
    assert_eq!(
        doc["applied"][0]["version"].as_i64().unwrap().to_string(),
        v[0]
    );
    assert_eq!(doc["applied"][0]["description"], "alpha");
    assert!(doc["applied"][0]["took"].as_f64().unwrap() >= 0.0);
    assert!(doc["error"].as_str().unwrap().contains("division by zero"));
    assert_eq!(
        run.stderr.lines().count(),
        1,
        "only the error: {}",
        run.stderr
    );

    p.write(&format!("migrations/{bad}"), "CREATE TABLE beta (id int);");
    let run = p.pgx().db(&db).args(["migrate", "up", "-q"]).ok();
    assert_eq!(run.stderr, "");
    assert_eq!(run.stdout, "");
    assert_eq!(count(&db, "SELECT count(*) FROM _sqlx_migrations"), 2);

    let run = p
        .pgx()
        .db(&db)
        .args(["migrate", "down", "--target", "0", "--json"])
        .ok();
    assert_eq!(run.stderr, "");
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    let reverted: Vec<String> = doc["reverted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_i64().unwrap().to_string())
        .collect();
    assert_eq!(reverted, [v[1].clone(), v[0].clone()]);
    assert_eq!(doc["events"].as_array().unwrap().len(), 2);
    p.pgx()
        .db(&db)
        .args(["migrate", "up", "--json", "--dry-run"])
        .fails()
        .stderr_has("--dry-run prints SQL");
}

#[test]
fn status_exit_code_says_whether_anything_is_off() {
    let db = TestDb::new();
    let p = Project::new();
    let a = p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    let run = p
        .pgx()
        .db(&db)
        .args(["migrate", "status", "--exit-code"])
        .fails();
    run.stderr_has("not up to date: 1 pending");
    assert!(
        run.stdout.contains("pending"),
        "the status is printed first"
    );
    p.pgx().db(&db).args(["migrate", "status"]).ok();
    p.pgx().db(&db).args(["migrate", "up", "-q"]).ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "status", "--exit-code", "--json"])
        .ok();
    p.write(
        &format!("migrations/{a}"),
        "CREATE TABLE alpha (id bigint);",
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "status", "--exit-code"])
        .fails()
        .stderr_has("not up to date: 1 modified");
}

#[test]
fn server_notices_and_warnings_are_shown_with_their_migration() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "talk",
        "CREATE TABLE t (id int);\nDO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE WARNING 'careful with %', 't'; END $$;",
        "DROP TABLE t;",
    );
    let v = versions(&p);
    let run = p.pgx().db(&db).args(["migrate", "up"]).ok();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines[..2],
        [
            format!("{} talk: notice: hello 42", v[0]),
            format!("{} talk: warning: careful with t", v[0])
        ],
        "{}",
        run.stderr
    );
    assert!(lines[2].starts_with(&format!("applied {} talk", v[0])));

    // -q silences notices, never warnings; a down's messages are shown the same way.
    p.pgx().db(&db).args(["migrate", "down", "-q"]).ok();
    let run = p.pgx().db(&db).args(["migrate", "up", "-q"]).ok();
    assert_eq!(
        run.stderr,
        format!("{} talk: warning: careful with t\n", v[0])
    );
    let run = p.pgx().db(&db).args(["migrate", "redo", "--json"]).ok();
    assert_eq!(
        run.stderr,
        format!("{} talk: warning: careful with t\n", v[0])
    );
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let messages: Vec<&serde_json::Value> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "message")
        .collect();
    assert_eq!(messages.len(), 2, "{doc:#}");
    assert_eq!(messages[0]["severity"], "notice");
    assert_eq!(messages[0]["migration"]["description"], "talk");
}

#[test]
fn a_run_causes_no_server_warning() {
    // A ROLLBACK outside a transaction makes the server warn "there is no transaction in
    // progress"; pgx shows every server warning on its connection, its own bookkeeping's too.
    let db = TestDb::new();
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    p.pgx()
        .args(["add", "alpha_index", "--no-transaction"])
        .args(["--up", "CREATE INDEX CONCURRENTLY alpha_id ON alpha (id);"])
        .args(["--down", "DROP INDEX CONCURRENTLY alpha_id;"])
        .ok();
    p.add("beta", "CREATE TABLE beta (id int);", "DROP TABLE beta;");
    let runs: [(&[&str], usize); 4] = [
        (&["migrate", "up"], 3),
        (&["migrate", "redo"], 2),
        (&["migrate", "down", "--target", "0"], 3),
        (&["migrate", "up"], 3),
    ];
    for (args, done) in runs {
        let run = p.pgx().db(&db).args(args).ok();
        assert!(!run.stderr.contains("warning"), "{args:?}: {}", run.stderr);
        let progress = run
            .stderr
            .lines()
            .filter(|l| {
                let mut words = l.split(' ');
                matches!(words.next(), Some("applied" | "reverted"))
                    && words.next().is_some_and(|v| v.len() == 14)
            })
            .count();
        assert_eq!(progress, done, "{args:?}: {}", run.stderr);
    }
    // After a failure too: the failed migration is rolled back once, nothing else.
    p.add(
        "broken",
        "CREATE TABLE broken (id int);\nSELECT 1/0;",
        "SELECT 1;",
    );
    let run = p.pgx().db(&db).args(["migrate", "up"]).fails();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
}

#[test]
fn every_migration_starts_from_a_clean_session() {
    let db = TestDb::new();
    let weak = TestRole::new("weak", "NOSUPERUSER NOBYPASSRLS");
    let p = Project::new();
    // What a pg_dump header and a careless migration leave behind in the session.
    p.add(
        "messy",
        &format!(
            "SELECT pg_catalog.set_config('search_path', '', false);\n\
             SET check_function_bodies = off;\nSET row_security = off;\n\
             CREATE TEMP TABLE scratch (x int);\nSET ROLE {};",
            weak.name
        ),
        "SELECT 1;",
    );
    p.add(
        "probe",
        "CREATE TABLE probe AS SELECT current_setting('search_path') AS search_path, \
         current_setting('check_function_bodies') AS bodies, current_setting('row_security') AS rls, \
         current_user::text AS who, \
         (SELECT count(*) FROM pg_class WHERE relname = 'scratch' AND relpersistence = 't') AS temps;",
        "DROP TABLE probe;",
    );
    p.pgx().db(&db).args(["migrate", "up", "-q"]).ok();
    let me = db.scalar("SELECT current_user::text").unwrap();
    assert_eq!(
        db.rows("SELECT search_path, bodies, rls, who, temps::text FROM public.probe"),
        [[
            Some("\"$user\", public".to_string()),
            Some("on".into()),
            Some("on".into()),
            Some(me.clone()),
            Some("0".into())
        ]]
    );
    // The history was written by the migrating role, not the role the migration switched to.
    assert_eq!(
        db.scalar("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'public._sqlx_migrations'::regclass").unwrap(),
        me
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM public._sqlx_migrations"),
        2
    );
}

#[test]
fn tenant_schemas_get_their_search_path_back_between_migrations() {
    let db = TestDb::new();
    let p = Project::new();
    p.pgx()
        .args(["add", "wander", "--scope", "tenant"])
        .args([
            "--up",
            "SELECT pg_catalog.set_config('search_path', 'public', false);",
        ])
        .args(["--down", "SELECT 1;"])
        .ok();
    p.pgx()
        .args(["add", "home", "--scope", "tenant"])
        .args([
            "--up",
            "CREATE TABLE notes (id int);",
            "--down",
            "DROP TABLE notes;",
        ])
        .ok();
    p.pgx().db(&db).args(["tenant", "add", "acme", "-q"]).ok();
    assert_eq!(
        db.column("SELECT schemaname FROM pg_tables WHERE tablename = 'notes'"),
        ["tenant_acme"]
    );
}

/// A session that holds an ACCESS SHARE lock on `table` (an open transaction that read it)
/// until the returned sender is used.
fn hold_table(db: &TestDb, table: &str) -> std::sync::mpsc::Sender<()> {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let (ready, is_ready) = std::sync::mpsc::channel::<()>();
    let url = db.url.clone();
    let sql = format!("SELECT count(*) FROM {table}");
    std::thread::spawn(move || {
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .unwrap();
            ready.send(()).unwrap();
            let _ = wait.recv();
            tx.commit().await.unwrap();
        });
    });
    is_ready.recv().unwrap();
    done
}

#[test]
fn a_migration_waiting_for_a_busy_table_is_retried_until_it_gets_the_lock() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("t", "CREATE TABLE t (id int);", "DROP TABLE t;");
    p.pgx().db(&db).args(["migrate", "up", "-q"]).ok();
    p.add(
        "widen",
        "ALTER TABLE t ADD COLUMN note text;",
        "ALTER TABLE t DROP COLUMN note;",
    );
    let v = versions(&p);

    let release = hold_table(&db, "t");
    let child = p
        .pgx()
        .db(&db)
        .args([
            "migrate",
            "up",
            "--lock-attempt-timeout",
            "100ms",
            "--lock-retries",
            "30",
        ])
        .spawn();
    // Released once the runner has retried at least once.
    pgx_waits_for_a_lock(&db);
    std::thread::sleep(Duration::from_millis(600));
    release.send(()).unwrap();
    let run = finish(child, Duration::from_secs(30));
    assert!(run.success, "{}", run.stderr);
    let retries: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with(&format!("retrying {} widen in ", v[1])))
        .collect();
    assert!(!retries.is_empty(), "{}", run.stderr);
    assert!(retries[0].contains("(attempt 1 of 31"), "{}", retries[0]);
    assert!(retries[0].contains("lock timeout"), "{}", retries[0]);
    assert!(run.stderr.contains(&format!("applied {} widen", v[1])));
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'note'"
        ),
        1
    );
    assert_eq!(count(&db, "SELECT count(*) FROM _sqlx_migrations"), 2);
}

#[test]
fn retries_give_up_clearly_and_a_migrations_own_lock_timeout_wins() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("t", "CREATE TABLE t (id int);", "DROP TABLE t;");
    p.pgx().db(&db).args(["migrate", "up", "-q"]).ok();
    let widen = p.add(
        "widen",
        "ALTER TABLE t ADD COLUMN note text;",
        "ALTER TABLE t DROP COLUMN note;",
    );

    let release = hold_table(&db, "t");
    let run = p
        .pgx()
        .db(&db)
        .args([
            "migrate",
            "up",
            "-q",
            "--lock-attempt-timeout",
            "50ms",
            "--lock-retries",
            "2",
        ])
        .fails();
    run.stderr_has(&format!("{widen}:1:"))
        .stderr_has("55P03")
        .stderr_has("rolled back, nothing recorded")
        .stderr_has("gave up after 3 attempts of 50 ms each");
    assert_eq!(count(&db, "SELECT count(*) FROM _sqlx_migrations"), 1);

    // The patterns' lock_timeout parameter (SET LOCAL in the file) is the per-attempt value: a
    // longer one outlasts the holder without any retry.
    p.write(
        &format!("migrations/{widen}"),
        "SET LOCAL lock_timeout = '20s';\nALTER TABLE t ADD COLUMN note text;",
    );
    let child = p
        .pgx()
        .db(&db)
        .args([
            "migrate",
            "up",
            "--lock-attempt-timeout",
            "50ms",
            "--lock-retries",
            "0",
        ])
        .spawn();
    pgx_waits_for_a_lock(&db);
    std::thread::sleep(Duration::from_millis(300));
    release.send(()).unwrap();
    let run = finish(child, Duration::from_secs(30));
    assert!(run.success, "{}", run.stderr);
    assert!(!run.stderr.contains("retrying"), "{}", run.stderr);
}

fn migration_lock_key(db: &TestDb) -> i64 {
    pgx::migrate::history::sqlx_lock_id(&db.name)
}

/// A session of `url` holding the migration lock of `db`, as another migrator would, until the
/// returned sender is used; and its process id.
fn hold_migration_lock(db: &TestDb, url: String) -> (i32, std::sync::mpsc::Sender<()>) {
    let key = migration_lock_key(db);
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let (ready, pid) = std::sync::mpsc::channel::<i32>();
    std::thread::spawn(move || {
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let pid: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT pg_backend_pid() FROM pg_advisory_lock({key})"
            )))
            .fetch_one(&mut conn)
            .await
            .unwrap();
            ready.send(pid).unwrap();
            let _ = wait.recv();
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .execute(&mut conn)
                .await
                .unwrap();
        });
    });
    (pid.recv().unwrap(), done)
}

#[test]
fn waiting_for_the_migration_lock_names_who_holds_it() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    let key = migration_lock_key(&db);
    let (holder, release) =
        hold_migration_lock(&db, format!("{}?application_name=deploy-7", db.url));
    let child = p
        .pgx()
        .db(&db)
        .args(["migrate", "up", "--lock-timeout", "20s"])
        .spawn();
    // Released after pgx has said who holds it (it says so after one second).
    pgx_waits_for_a_lock(&db);
    std::thread::sleep(Duration::from_millis(1600));
    release.send(()).unwrap();
    let run = finish(child, Duration::from_secs(30));
    assert!(run.success, "{}", run.stderr);
    let wait = run.stderr.lines().next().unwrap();
    assert!(
        wait.starts_with("waiting for the migration lock ("),
        "{wait}"
    );
    assert!(
        wait.contains(&format!("held by pid {holder} (deploy-7)")),
        "{wait}"
    );
    assert!(wait.contains(", idle since "), "{wait}");
    assert!(
        wait.contains(&format!(
            "query: SELECT pg_backend_pid() FROM pg_advisory_lock({key})"
        )),
        "{wait}"
    );
    assert!(run.stderr.contains("applied "), "{}", run.stderr);
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Whether any session of `db` runs `pg_sleep`, or holds an advisory lock.
fn sleeping(db: &TestDb) -> i64 {
    count(
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep(%' AND state = 'active' AND pid <> pg_backend_pid()",
    )
}

fn advisory_locks(db: &TestDb) -> i64 {
    count(
        db,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
}

#[test]
fn sigint_cancels_the_statement_on_the_server_rolls_back_and_releases_the_lock() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    let slow = p.add(
        "slow",
        "CREATE TABLE slow (id int);\nSELECT pg_sleep(60);",
        "DROP TABLE slow;",
    );
    p.add("gamma", "CREATE TABLE gamma (id int);", "DROP TABLE gamma;");
    let v = versions(&p);
    let child = p.pgx().db(&db).args(["migrate", "up"]).spawn();
    wait_until("the slow statement", Duration::from_secs(10), || {
        sleeping(&db) == 1
    });
    signal(&child, "INT");
    let run = finish(child, Duration::from_secs(10));
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert!(lines[0].starts_with(&format!("applied {} alpha", v[0])));
    let error = lines[1];
    assert!(
        error.starts_with("error: interrupted by SIGINT: the server cancelled the statement at "),
        "{error}"
    );
    assert!(
        error.contains(&format!("{slow}:2 (migration {} up)", v[1])),
        "{error}"
    );
    assert!(error.contains("rolled back, nothing recorded"), "{error}");
    assert!(
        error.contains(&format!("completed before it: applied {} alpha", v[0])),
        "{error}"
    );
    assert!(
        error.ends_with("the migration lock was released"),
        "{error}"
    );
    // The server stopped at once, and nothing of the interrupted migration stays.
    assert_eq!(sleeping(&db), 0);
    assert_eq!(advisory_locks(&db), 0);
    assert_eq!(
        db.column("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"),
        ["_sqlx_migrations", "alpha"]
    );
    assert_eq!(count(&db, "SELECT count(*) FROM _sqlx_migrations"), 1);
}

#[test]
fn sigterm_during_a_down_does_the_same_and_exits_143() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    p.add(
        "slow",
        "CREATE TABLE slow (id int);",
        "DROP TABLE slow;\nSELECT pg_sleep(60);",
    );
    p.pgx().db(&db).args(["migrate", "up", "-q"]).ok();
    let child = p
        .pgx()
        .db(&db)
        .args(["migrate", "down", "--target", "0"])
        .spawn();
    wait_until("the slow statement", Duration::from_secs(10), || {
        sleeping(&db) == 1
    });
    signal(&child, "TERM");
    let run = finish(child, Duration::from_secs(10));
    assert_eq!(run.code, Some(143), "{}", run.stderr);
    run.stderr_has("error: interrupted by SIGTERM").stderr_has(
        "down); rolled back, nothing recorded; nothing was applied or reverted before it",
    );
    assert_eq!(sleeping(&db), 0);
    assert_eq!(advisory_locks(&db), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM _sqlx_migrations"), 2);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'slow'"
        ),
        1
    );
}

#[test]
fn sigint_while_waiting_for_the_migration_lock_stops_the_wait() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    let (_, release) = hold_migration_lock(&db, db.url.clone());
    let child = p.pgx().db(&db).args(["migrate", "up", "-q"]).spawn();
    pgx_waits_for_a_lock(&db);
    signal(&child, "INT");
    let run = finish(child, Duration::from_secs(10));
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    run.stderr_has("stopped while waiting for the migration lock on this database");
    // pgx closed its sessions (the server ends them a moment later), none still waiting.
    wait_until("pgx's sessions to end", Duration::from_secs(5), || {
        count(
            &db,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgx'",
        ) == 0
    });
    release.send(()).unwrap();
    // The history table is created under the lock: nothing happened.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = '_sqlx_migrations'"
        ),
        0
    );
}

#[test]
fn a_runner_without_a_lock_creating_the_history_table_meanwhile_does_not_fail_pgx() {
    // sqlx-cli's `migrate run` takes no advisory lock: it may create _sqlx_migrations while pgx
    // does. Its transaction is held open here so that pgx's CREATE TABLE waits on it.
    let db = TestDb::new();
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    let (commit, wait) = std::sync::mpsc::channel::<()>();
    let (ready, is_ready) = std::sync::mpsc::channel::<()>();
    let url = db.url.clone();
    let other = std::thread::spawn(move || {
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await
            .unwrap();
            ready.send(()).unwrap();
            let _ = wait.recv();
            tx.commit().await.unwrap();
        });
    });
    is_ready.recv().unwrap();
    let child = p.pgx().db(&db).args(["migrate", "up"]).spawn();
    wait_until(
        "pgx's CREATE TABLE to wait",
        Duration::from_secs(10),
        || {
            count(
                &db,
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgx' AND wait_event_type = 'Lock' AND query LIKE 'CREATE TABLE IF NOT EXISTS%'",
            ) > 0
        },
    );
    commit.send(()).unwrap();
    other.join().unwrap();
    let run = finish(child, Duration::from_secs(20));
    assert!(run.success, "{}", run.stderr);
    assert_eq!(count(&db, "SELECT count(*) FROM _sqlx_migrations"), 1);
}
