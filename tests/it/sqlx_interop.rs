//! pgx and sqlx's own Migrator read and write the same history, in both directions.

use crate::support::{Project, TestDb, block_on};
use sqlx::Connection;
use sqlx::migrate::Migrator;

fn project_with_pattern() -> Project {
    let p = Project::new();
    p.add(
        "create orders",
        "CREATE TABLE orders (id bigint PRIMARY KEY, item text);",
        "DROP TABLE orders;",
    );
    p.pgx().args(["new", "timestamps", "orders"]).ok();
    p.pgx()
        .args(["add", "orders item index", "--no-transaction"])
        .args([
            "--up",
            "CREATE INDEX CONCURRENTLY orders_item ON orders (item);",
        ])
        .args(["--down", "DROP INDEX CONCURRENTLY orders_item;"])
        .ok();
    p
}

#[test]
fn files_pgx_writes_apply_with_sqlx_and_pgx_reads_the_history() {
    let db = TestDb::new();
    let p = project_with_pattern();
    block_on(async {
        let migrator = Migrator::new(p.join("migrations")).await.unwrap();
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        migrator.run(&mut conn).await.unwrap();
    });
    let run = p.pgx().db(&db).args(["migrate", "status", "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let states: Vec<&str> = json["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["applied", "applied", "applied"]);
    assert_eq!(json["migrations"][0]["description"], "create orders");
    // Nothing left to do for pgx; and pgx can revert what sqlx applied.
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--target", "0"])
        .ok();
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

#[test]
fn history_pgx_writes_satisfies_sqlx() {
    let db = TestDb::new();
    let p = project_with_pattern();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.rows(
        "SELECT version, description, success, checksum::text FROM _sqlx_migrations ORDER BY 1",
    );
    assert_eq!(before.len(), 3);
    block_on(async {
        let migrator = Migrator::new(p.join("migrations")).await.unwrap();
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        // sqlx checks every checksum and finds nothing to apply.
        migrator.run(&mut conn).await.unwrap();
        // sqlx reverts what pgx applied.
        let first = migrator.iter().next().unwrap().version;
        migrator.undo(&mut conn, first).await.unwrap();
    });
    let after = db.rows(
        "SELECT version, description, success, checksum::text FROM _sqlx_migrations ORDER BY 1",
    );
    assert_eq!(after, before[..1]);
    assert_eq!(db.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'updated_at'").as_deref(), Some("0"));
}
