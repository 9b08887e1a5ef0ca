//! The `search` pattern on live tables (`online=true`): a trigger-kept column, a backfill in
//! committed batches that rows written meanwhile do not disturb, that resumes after an
//! interruption, and that sqlx's own Migrator applies too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sqlx::Connection;
use sqlx::migrate::Migrator;

use crate::search::{hits, new_search, project_with, up};
use crate::support::{TestDb, block_on};

const ROWS: i64 = 30_000;

fn live_articles() -> crate::support::Project {
    project_with(
        &format!(
            "CREATE TABLE articles (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text, body text);
             INSERT INTO articles (title, body) SELECT 'article ' || g, 'plain body text ' || g FROM generate_series(1, {ROWS}) g"
        ),
        "DROP TABLE articles",
    )
}

/// Rows that lack their vector, or whose vector is not the one their columns give.
fn wrong_vectors(db: &TestDb) -> String {
    db.scalar(
        "SELECT count(*) FROM articles WHERE search IS DISTINCT FROM articles_search_vector(title, body)",
    )
    .unwrap()
}

#[test]
fn rows_written_during_the_backfill_get_their_vectors_and_nothing_is_missed() {
    let db = TestDb::new();
    let p = live_articles();
    new_search(
        &p,
        "articles",
        &["columns=title:A,body", "online=true", "batch_time=20ms"],
    );
    let files = p.files("migrations");
    assert_eq!(
        files
            .iter()
            .filter(|f| f.ends_with(".up.sql"))
            .map(|f| f.split_once('_').unwrap().1)
            .collect::<Vec<_>>(),
        [
            "setup.up.sql",
            "search_install.up.sql",
            "search_articles_column.up.sql",
            "search_articles_backfill.up.sql",
            "search_articles_index.up.sql"
        ]
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "up", "--target"])
        .arg(files[0].split('_').next().unwrap())
        .ok();

    // A writer inserts and updates rows throughout the migration.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, writes, url) = (stop.clone(), writes.clone(), db.url.clone());
        std::thread::spawn(move || {
            block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let mut n: i64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let sql = format!(
                        "INSERT INTO articles (title, body) VALUES ('zebra {n}', NULL);
                         UPDATE articles SET body = 'kangaroo {n}' WHERE id = {}",
                        (n * 7919) % ROWS + 1
                    );
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    writes.fetch_add(1, Ordering::Relaxed);
                }
            });
        })
    };
    while writes.load(Ordering::Relaxed) < 10 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    up(&p, &db);
    let during = writes.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(during > 10, "the writer kept writing: {during}");

    let total: i64 = db
        .scalar("SELECT count(*) FROM articles")
        .unwrap()
        .parse()
        .unwrap();
    assert!(total > ROWS, "{total}");
    assert_eq!(wrong_vectors(&db), "0");
    assert_eq!(
        db.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'articles_search_idx'::regclass"
        ),
        Some("t".into())
    );
    // Rows inserted and updated meanwhile are found, and an untouched old row too.
    assert_eq!(hits(&db, "articles_search('zebra', 1)").len(), 1);
    assert_eq!(hits(&db, "articles_search('kangaroo', 1)").len(), 1);
    assert_eq!(hits(&db, "articles_search('\"article 12345\"')"), ["12345"]);
    // Writing the vector directly does not stick: it is derived data.
    db.exec("UPDATE articles SET search = 'forged'::tsvector WHERE id = 1");
    assert_eq!(wrong_vectors(&db), "0");

    p.pgx().db(&db).args(["check"]).ok();
}

#[test]
fn an_interrupted_backfill_keeps_its_batches_and_resumes() {
    let db = TestDb::new();
    let p = live_articles();
    new_search(
        &p,
        "articles",
        &["columns=title:A,body", "online=true", "lock_timeout=20ms"],
    );
    let column_step = p
        .files("migrations")
        .into_iter()
        .find(|f| f.ends_with("_column.up.sql"))
        .unwrap();
    p.pgx()
        .db(&db)
        .args([
            "migrate",
            "up",
            "--target",
            column_step.split('_').next().unwrap(),
        ])
        .ok();

    // A long transaction holds a row two thirds into the table: the batch that reaches it
    // gives up after its retries, and the migration fails.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut holder = rt.block_on(sqlx::PgConnection::connect(&db.url)).unwrap();
    rt.block_on(
        sqlx::raw_sql("BEGIN; SELECT * FROM articles WHERE id = 20000 FOR UPDATE")
            .execute(&mut holder),
    )
    .unwrap();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("lock timeout")
        .stderr_has("_search_articles_backfill.up.sql");
    let filled: i64 = db
        .scalar("SELECT count(search) FROM articles")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..20_000).contains(&filled),
        "the batches before the locked row are committed: {filled}"
    );
    rt.block_on(sqlx::raw_sql("COMMIT").execute(&mut holder))
        .unwrap();
    assert_eq!(
        db.scalar("SELECT count(*) FROM _sqlx_migrations WHERE description LIKE '%backfill'"),
        Some("0".into())
    );

    // Run again: it goes on and finishes, and the index is built.
    up(&p, &db);
    assert_eq!(wrong_vectors(&db), "0");
    assert_eq!(
        db.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'articles_search_idx'::regclass"
        ),
        Some("t".into())
    );
}

#[test]
fn sqlx_applies_the_online_migrations_too() {
    let p = live_articles();
    new_search(&p, "articles", &["columns=title,body", "online=true"]);
    let db = TestDb::new();
    block_on(async {
        let migrator = Migrator::new(p.join("migrations")).await.unwrap();
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        migrator.run(&mut conn).await.unwrap();
    });
    assert_eq!(wrong_vectors(&db), "0");
    assert_eq!(hits(&db, "articles_search('\"article 77\"')"), ["77"]);
    // And pgx reads the history sqlx wrote.
    p.pgx()
        .db(&db)
        .args(["migrate", "status"])
        .ok()
        .stdout_has("search articles index");
}
