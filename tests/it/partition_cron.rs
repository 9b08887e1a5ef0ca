//! `schedule=pg_cron` against the real pg_cron, which must be preloaded and keeps its jobs in
//! one database (`cron.database_name`, by default `postgres`): the test runs in a dev cluster of
//! its own (pgx's dev cluster preloads pg_cron when it is installed), in that database.

use std::path::Path;
use std::time::{Duration, Instant};

use pgx::db::dev::Cluster;

use crate::support::{Project, block_on, try_rows};

/// The suite's pg_cron cluster, started if needed; None (with the reason) when pg_cron cannot
/// be loaded on this machine.
fn cron_cluster() -> Result<(Cluster, String), String> {
    let state = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pgx-test-cron");
    let cluster = Cluster::at(&state).map_err(|e| e.to_string())?;
    cluster.ensure_running().map_err(|e| e.to_string())?;
    let url = cluster.url().expose().to_string();
    let loaded = try_rows(&url, "SHOW shared_preload_libraries")?;
    if !loaded[0][0].as_deref().unwrap_or("").contains("pg_cron") {
        cluster.stop().map_err(|e| e.to_string())?;
        return Err(format!(
            "pg_cron is not preloaded (not installed: {} has no pg_cron.so)",
            cluster.binaries().map_err(|e| e.to_string())?.dir.display()
        ));
    }
    Ok((cluster, url))
}

fn rows(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    try_rows(url, sql).unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"))
}

fn scalar(url: &str, sql: &str) -> Option<String> {
    rows(url, sql).first().and_then(|r| r[0].clone())
}

#[test]
fn schedule_pg_cron_registers_a_job_that_runs_the_installed_maintenance() {
    let (cluster, url) = match cron_cluster() {
        Ok(found) => found,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    // Left over by an interrupted run of this test (the cluster is this test's alone).
    rows(
        &url,
        "CREATE EXTENSION IF NOT EXISTS pg_cron;
         SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'pgx_partition %';
         DELETE FROM cron.job_run_details;
         DROP TABLE IF EXISTS cron_events, _sqlx_migrations CASCADE;
         DROP SCHEMA IF EXISTS pgx_partition CASCADE;",
    );
    let before = block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        pgx::db::snapshot::Snapshot::take(&mut conn).await.unwrap()
    });
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE cron_events (id bigint, at timestamptz NOT NULL, PRIMARY KEY (id, at))",
        "DROP TABLE cron_events;",
    );
    p.pgx()
        .args([
            "new",
            "partition",
            "cron_events",
            "--set",
            "column=at",
            "--set",
            "premake=1",
            "--set",
            "schedule=pg_cron",
            "--set",
            "cron=* * * * *",
        ])
        .ok();
    p.pgx()
        .env("DATABASE_URL", &url)
        .args(["migrate", "up"])
        .ok();

    let job = rows(
        &url,
        "SELECT jobname, schedule, command, username = current_user, database FROM cron.job",
    );
    assert_eq!(
        job,
        vec![vec![
            Some("pgx_partition public.cron_events".into()),
            Some("* * * * *".into()),
            Some("CALL pgx_partition.run_maintenance('public.cron_events')".into()),
            Some("t".into()),
            Some("postgres".into()),
        ]]
    );

    // Rows for a month without a partition wait in the default partition until the job runs
    // (pg_cron 1.4 runs jobs at the start of a minute).
    rows(
        &url,
        "INSERT INTO cron_events VALUES (1, now() + interval '6 months'), (2, now() + interval '6 months')",
    );
    let started = Instant::now();
    let status = loop {
        let status = scalar(
            &url,
            "SELECT status || ': ' || coalesce(return_message, '') FROM cron.job_run_details
             WHERE status IN ('succeeded', 'failed')
               AND jobid = (SELECT jobid FROM cron.job WHERE jobname = 'pgx_partition public.cron_events')
             ORDER BY runid DESC LIMIT 1",
        );
        if let Some(status) = status {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "pg_cron did not run the job"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(status.starts_with("succeeded"), "{status}");
    assert_eq!(
        scalar(
            &url,
            "SELECT count(DISTINCT tableoid)::text || ' ' || min(tableoid::regclass::text) FROM cron_events"
        )
        .as_deref(),
        Some(
            scalar(
                &url,
                "SELECT '1 cron_events_p' || to_char((now() + interval '6 months') AT TIME ZONE 'UTC', 'YYYYMM') || '01'"
            )
            .unwrap()
            .as_str()
        ),
        "the job moved the rows into the partition of their month"
    );

    // Down unschedules the job and gives the plain table back.
    p.pgx()
        .env("DATABASE_URL", &url)
        .args(["migrate", "down", "--target", "0"])
        .ok();
    assert_eq!(
        scalar(&url, "SELECT count(*) FROM cron.job").as_deref(),
        Some("0")
    );
    let after = block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        pgx::db::snapshot::Snapshot::take(&mut conn).await.unwrap()
    });
    let diff: Vec<_> = before
        .diff(&after)
        .into_iter()
        .filter(|d| !d.object.contains("_sqlx_migrations") && !d.object.contains("cron."))
        .collect();
    assert_eq!(diff, vec![], "down reverses up");
    rows(&url, "DROP TABLE _sqlx_migrations");
    cluster.stop().unwrap();
}

/// Outside pg_cron's database (here: any test database), schedule=pg_cron is refused, saying
/// why, and nothing is left behind.
#[test]
fn schedule_pg_cron_is_refused_where_pg_cron_does_not_keep_its_jobs() {
    let db = crate::support::TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE events (id bigint, at date NOT NULL)",
        "DROP TABLE events;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    p.pgx()
        .args([
            "new",
            "partition",
            "events",
            "--set",
            "column=at",
            "--set",
            "schedule=pg_cron",
        ])
        .ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!(
            "schedule=pg_cron: pg_cron is not installed in database {}",
            db.name
        ));
    assert_eq!(
        db.scalar("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass")
            .as_deref(),
        Some("r"),
        "the table's migration was rolled back"
    );
}
