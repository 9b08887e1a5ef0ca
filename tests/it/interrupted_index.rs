//! Every `CREATE INDEX CONCURRENTLY` pgx renders, interrupted: a build cancelled while it waits
//! for a writer leaves an invalid index behind, and running the migrations again must clean it
//! up and build a valid index, not fail on the leftover or skip it. (tenant's own steps are
//! covered in tenant_concurrently::an_interrupted_index_build_is_cleaned_up_when_the_migration_runs_again.)

use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::support::{Project, TestDb, block_on};

/// A transaction that wrote to `table` and stays open until the returned sender is dropped or
/// sent to: CREATE INDEX CONCURRENTLY waits for it.
fn hold_write(db: &TestDb, table: &str) -> std::sync::mpsc::Sender<()> {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let (ready, is_ready) = std::sync::mpsc::channel::<()>();
    let url = db.url.clone();
    let sql = format!("UPDATE {table} SET id = id WHERE id = 1");
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
            tx.rollback().await.unwrap();
        });
    });
    is_ready.recv().unwrap();
    done
}

/// Runs `pgx migrate up` while a writer holds `table`, cancels the index build once its index
/// exists (invalid, waiting for the writer), as an administrator would, then lets go.
fn interrupt_build(db: &TestDb, p: &Project, table: &str, index: &str) {
    // The steps before the build first: a writer would hold up their ALTER TABLE instead.
    let ups: Vec<String> = p
        .files("migrations")
        .into_iter()
        .filter(|f| f.ends_with(".up.sql"))
        .collect();
    let build = ups
        .iter()
        .position(|f| {
            p.read(&format!("migrations/{f}"))
                .contains("INDEX CONCURRENTLY")
        })
        .expect("a migration builds an index concurrently");
    assert!(build > 0, "{ups:?}");
    let before = ups[build - 1].split('_').next().unwrap();
    p.pgx()
        .db(db)
        .args(["migrate", "up", "--target", before])
        .ok();
    let writer = hold_write(db, table);
    let child = p.pgx().db(db).args(["migrate", "up"]).spawn();
    let started = Instant::now();
    let mut cancelled = false;
    while started.elapsed() < Duration::from_secs(60) && !cancelled {
        std::thread::sleep(Duration::from_millis(100));
        let rows = db.rows(&format!(
            "SELECT pg_cancel_backend(a.pid) FROM pg_stat_activity a
             WHERE a.datname = current_database() AND a.query ILIKE '%CREATE%INDEX%CONCURRENTLY%'
               AND a.wait_event_type = 'Lock' AND to_regclass('{index}') IS NOT NULL"
        ));
        cancelled = !rows.is_empty();
    }
    let out = child.wait_with_output().unwrap();
    drop(writer);
    assert!(cancelled, "the build never waited on the writer");
    assert!(
        !out.status.success(),
        "the cancelled build fails the run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = '{index}'::regclass"
        ))
        .as_deref(),
        Some("f"),
        "the interrupted build left an invalid index"
    );
}

/// After an interrupted build, `migrate up` again completes and leaves one valid `index`.
fn rerun_builds_a_valid_index(db: &TestDb, p: &Project, table: &str, index: &str) {
    let run = p.pgx().db(db).args(["migrate", "up"]).run();
    assert!(
        run.success,
        "the re-run fails on the leftover: {}",
        run.stderr
    );
    assert_eq!(
        db.column(&format!(
            "SELECT c.relname || ' ' || i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = '{table}'::regclass AND c.relname LIKE '{index}%' ORDER BY 1"
        )),
        [format!("{index} true")]
    );
}

#[test]
#[ignore = "fails today: the search and soft_delete templates build with a plain CREATE INDEX CONCURRENTLY and never drop an invalid leftover (reported to their owners); run with --ignored"]
fn search_online_cleans_up_an_interrupted_index_build() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE articles (id bigint PRIMARY KEY, title text, body text);
         INSERT INTO articles SELECT g, 'article ' || g, 'body ' || g FROM generate_series(1, 1000) g",
        "DROP TABLE articles",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    p.pgx()
        .args([
            "new",
            "search",
            "articles",
            "--set",
            "columns=title,body",
            "--set",
            "online=true",
        ])
        .ok();
    interrupt_build(&db, &p, "articles", "articles_search_idx");
    rerun_builds_a_valid_index(&db, &p, "articles", "articles_search_idx");
}

#[test]
#[ignore = "fails today: the search and soft_delete templates build with a plain CREATE INDEX CONCURRENTLY and never drop an invalid leftover (reported to their owners); run with --ignored"]
fn soft_delete_concurrently_cleans_up_an_interrupted_index_build() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);
         INSERT INTO accounts SELECT g, 'u' || g || '@x' FROM generate_series(1, 1000) g",
        "DROP TABLE accounts",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    p.pgx()
        .args(["new", "soft_delete", "accounts"])
        .args(["--set", "live_indexes=email", "--set", "concurrently=true"])
        .ok();
    interrupt_build(&db, &p, "accounts", "accounts_email_live_idx");
    rerun_builds_a_valid_index(&db, &p, "accounts", "accounts_email_live_idx");
}
