//! `pgx check` over every mode of the partition pattern in one project, and `plpgsql_check` over
//! its generated PL/pgSQL. (schedule=pg_cron cannot run in `pgx check`'s scratch database,
//! which is not pg_cron's: `partition_cron` proves its down reverses its up in pg_cron's.)

use crate::support::{Project, TestDb, admin_url};

const SETUP: &str = "CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman; CREATE SCHEMA archive;
CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL DEFAULT now(), kind text DEFAULT 'x',
                     PRIMARY KEY (id, at));
CREATE INDEX events_kind_idx ON events (kind);
CREATE TABLE logs (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL, line text, PRIMARY KEY (id, at));
INSERT INTO logs (at, line) SELECT now() - g * interval '1 day', 'line ' || g FROM generate_series(1, 300) g;
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, placed date NOT NULL, ref text UNIQUE);
CREATE TABLE readings (n bigint NOT NULL, v text);
CREATE TABLE accounts (id bigint NOT NULL, region text NOT NULL, PRIMARY KEY (id, region));
CREATE TABLE sessions (id uuid PRIMARY KEY, data text);
CREATE TABLE metrics (id bigint, at timestamptz NOT NULL, PRIMARY KEY (id, at));";

const TEARDOWN: &str = "DROP TABLE events, logs, orders, readings, accounts, sessions, metrics;
DROP EXTENSION pg_partman; DROP SCHEMA partman, archive;";

/// Each table in another mode: (table, parameters).
const MODES: &[(&str, &[&str])] = &[
    (
        "events",
        &[
            "column=at",
            "interval=1 day",
            "premake=3",
            "retention=30 days",
            "retention_mode=archive",
            "archive_schema=archive",
        ],
    ),
    (
        "logs",
        &[
            "column=at",
            "convert=live",
            "retention=1 year",
            "retention_mode=drop",
        ],
    ),
    (
        "orders",
        &[
            "column=placed",
            "interval=3 months",
            "rewrite_keys=true",
            "default_partition=false",
        ],
    ),
    ("readings", &["column=n", "interval=1000000", "premake=2"]),
    (
        "accounts",
        &["column=region", "strategy=list", "values=eu,uk;us,ca"],
    ),
    ("sessions", &["column=id", "strategy=hash", "modulus=4"]),
    (
        "metrics",
        &["column=at", "backend=partman", "retention=3 months"],
    ),
];

fn every_mode() -> Project {
    let p = Project::new();
    p.add("setup", SETUP, TEARDOWN);
    for (table, sets) in MODES {
        let mut args = vec!["new", "partition", table];
        for s in *sets {
            args.extend(["--set", s]);
        }
        p.pgx().args(&args).ok();
    }
    p
}

#[test]
fn pgx_check_passes_for_every_mode() {
    let p = every_mode();
    let run = p.pgx().args(["check", "--database-url", &admin_url()]).ok();
    assert!(
        run.stdout.contains("ok") || run.stderr.contains("ok"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    // And applied for real, every table is partitioned as asked.
    let db = TestDb::new();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.column(
            "SELECT c.relname || ' ' || pg_get_partkeydef(c.oid) FROM pg_class c
             WHERE c.relkind = 'p' AND c.relnamespace = 'public'::regnamespace ORDER BY 1"
        ),
        [
            "accounts LIST (region)",
            "events RANGE (at)",
            "logs RANGE (at)",
            "metrics RANGE (at)",
            "orders RANGE (placed)",
            "readings RANGE (n)",
            "sessions HASH (id)",
        ]
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM logs").as_deref(),
        Some("300")
    );
}

#[test]
fn generated_plpgsql_passes_plpgsql_check() {
    let db = TestDb::new();
    let p = every_mode();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec("CREATE EXTENSION plpgsql_check");
    let findings = db.column(
        "SELECT p.proname || ': ' || c.level || ' ' || c.message || coalesce(' (' || c.query || ')', '') FROM pg_proc p
         CROSS JOIN LATERAL plpgsql_check_function_tb(p.oid, extra_warnings => true) c
         WHERE p.pronamespace = 'pgx_partition'::regnamespace
           AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')",
    );
    assert_eq!(findings, Vec::<String>::new());
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_proc WHERE pronamespace = 'pgx_partition'::regnamespace AND prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')")
            .as_deref(),
        Some("26"),
        "every PL/pgSQL function was checked"
    );
}
