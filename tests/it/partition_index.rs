//! Indexes added later to a table of the partition pattern: created `ON ONLY` the parent, then
//! built by `pgx partition maintain` with `CREATE INDEX CONCURRENTLY` on every partition and
//! attached, while writers go on.

use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};

use crate::support::{Project, TestDb, block_on};

#[test]
fn an_index_added_later_is_built_on_every_partition_without_blocking_writers() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL DEFAULT now(), kind text,
                              PRIMARY KEY (id, at))",
        "DROP TABLE events;",
    );
    p.pgx()
        .args(["new", "partition", "events", "--set", "column=at"])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec(
        "INSERT INTO events (at, kind) SELECT now() + g * interval '1 day', 'k' || g % 7 FROM generate_series(0, 99) g;
         INSERT INTO events (at, kind) VALUES ('2040-01-01', 'far');
         CREATE INDEX events_kind_idx ON ONLY events (kind);
         CREATE UNIQUE INDEX events_kind_at_idx ON ONLY events (kind, id, at);",
    );
    let partitions: usize = db
        .scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(partitions, 6, "the current month, four more, the default");
    assert_eq!(
        db.column("SELECT indisvalid::text FROM pg_index WHERE indexrelid IN ('events_kind_idx'::regclass, 'events_kind_at_idx'::regclass)"),
        ["false", "false"]
    );
    let dry = p
        .pgx()
        .db(&db)
        .args(["partition", "maintain", "--dry-run"])
        .ok();
    assert_eq!(
        dry.stdout.matches("CONCURRENTLY and attach it").count(),
        2 * partitions,
        "{}",
        dry.stdout
    );

    block_on(async {
        // A writer's transaction is open when maintenance starts: CREATE INDEX CONCURRENTLY
        // waits for it, and meanwhile other writers must not wait for the index builds.
        let mut open = PgConnection::connect(&db.url).await.unwrap();
        open.execute("BEGIN; INSERT INTO events (kind) VALUES ('open')")
            .await
            .unwrap();
        let maintain = p.pgx().db(&db).args(["partition", "maintain"]).spawn();
        let mut watch = PgConnection::connect(&db.url).await.unwrap();
        let started = Instant::now();
        loop {
            let waiting: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()
                                AND query LIKE 'CREATE%INDEX CONCURRENTLY%' AND wait_event_type = 'Lock')",
            )
            .fetch_one(&mut watch)
            .await
            .unwrap();
            if waiting {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "maintenance never started building an index"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // While the build waits, writers go on: a lock_timeout of 1 s is never reached.
        let mut writer = PgConnection::connect(&db.url).await.unwrap();
        writer
            .execute(
                "SET lock_timeout = '1s';
                 INSERT INTO events (kind) VALUES ('during');
                 UPDATE events SET kind = 'during too' WHERE kind = 'k1';
                 DELETE FROM events WHERE kind = 'k2';",
            )
            .await
            .expect("writers do not wait for the index builds");
        open.execute("COMMIT").await.unwrap();
        let out = maintain.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.matches("CONCURRENTLY and attached it to").count(),
            2 * partitions,
            "{stdout}"
        );
    });

    // Both parent indexes are valid, with one attached index per partition (the partition
    // maintenance created for the row of 2040 got them when it was attached), which the planner
    // uses.
    assert_eq!(
        db.column("SELECT indisvalid::text FROM pg_index WHERE indexrelid IN ('events_kind_idx'::regclass, 'events_kind_at_idx'::regclass)"),
        ["true", "true"]
    );
    assert_eq!(
        db.column(
            "SELECT count(*) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
             WHERE i.inhparent IN ('events_kind_idx'::regclass, 'events_kind_at_idx'::regclass) AND x.indisvalid"
        ),
        [(2 * (partitions + 1)).to_string()]
    );
    let plan = db
        .column("SET enable_seqscan = off; EXPLAIN SELECT * FROM events WHERE kind = 'far'")
        .join("\n");
    assert!(
        plan.matches("_events_kind_").count() >= partitions && !plan.contains("Seq Scan"),
        "{plan}"
    );
    assert_eq!(
        p.pgx().db(&db).args(["partition", "maintain"]).ok().stdout,
        "",
        "nothing left to build"
    );
}
