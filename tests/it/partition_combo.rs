//! `partition` with `tenant`, `timestamps`, `audit` and `soft_delete` on one table: a partition
//! that `pgx partition maintain` creates later is isolated, timestamped, audited and deletes
//! softly like the others; the whole stack reverts exactly, and `pgx check` passes for it.

use crate::partition::partitions;
use crate::support::{Project, TestDb, TestRole, admin_url, try_rows};
use crate::tenant_support::{A, B, app_role, as_role, column_as, ok_as};

const EVENTS: &str = "CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    happened_at timestamptz NOT NULL DEFAULT now(),
    body text,
    PRIMARY KEY (id, happened_at)
)";

/// The month starting three months from now (UTC): beyond the partitions premade with
/// premake=1, so its rows wait in the default partition until maintenance runs.
const LATER: &str = "((date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months') AT TIME ZONE 'UTC' + interval '1 day')";

#[test]
fn a_partition_created_later_by_maintenance_is_isolated_timestamped_audited_and_soft_deleting() {
    let db = TestDb::new();
    let app = app_role();
    let p = Project::new();
    p.add("setup", EVENTS, "DROP TABLE events;");
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();
    p.pgx()
        .args([
            "new",
            "partition",
            "events",
            "--set",
            "column=happened_at",
            "--set",
            "premake=1",
        ])
        .ok();
    p.pgx()
        .args([
            "new",
            "tenant",
            "events",
            "--set",
            "partitioned=true",
            "--set",
            "global_unique=events_pkey",
            "--set",
            &format!("role={}", app.name),
        ])
        .ok();
    // Whatever these write (their shared infrastructure first, when they have one) is applied.
    p.pgx().args(["new", "timestamps", "events"]).ok();
    p.pgx().args(["new", "audit", "events"]).ok();
    p.pgx().args(["new", "soft_delete", "events"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let existing = db.column(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass ORDER BY 1",
    );
    assert_eq!(existing.len(), 3, "current, next, default: {existing:?}");

    let tenant = |t: &str| format!("SET app.current_tenant = '{t}';");
    // A row for a month without a partition waits in the default partition.
    ok_as(
        &db,
        &app,
        &format!(
            "{} INSERT INTO events (happened_at, body) VALUES ({LATER}, 'early')",
            tenant(A)
        ),
    );
    assert_eq!(
        db.scalar("SELECT tableoid::regclass::text FROM events WHERE body = 'early'")
            .as_deref(),
        Some("events_default")
    );
    let later = db
        .scalar(&format!(
            "SELECT 'events_p' || to_char({LATER} AT TIME ZONE 'UTC', 'YYYYMM') || '01'"
        ))
        .unwrap();
    p.pgx()
        .db(&db)
        .args(["partition", "maintain"])
        .ok()
        .stdout_has(&format!(
            "create public.{later} moving 1 rows from the default partition"
        ));
    assert!(!existing.contains(&later), "{later} is new: {existing:?}");

    ok_as(
        &db,
        &app,
        &format!(
            "{} INSERT INTO events (happened_at, body) VALUES ({LATER}, 'a later');
             {} INSERT INTO events (happened_at, body) VALUES ({LATER}, 'b later');",
            tenant(A),
            tenant(B)
        ),
    );
    assert_eq!(
        db.column("SELECT DISTINCT tableoid::regclass::text FROM events WHERE body LIKE '%later' OR body = 'early'"),
        std::slice::from_ref(&later),
        "the moved row and the new ones are in the new partition"
    );

    // Isolated: the application role, neither superuser nor BYPASSRLS, sees its tenant's rows
    // only, through the table and in the new partition queried directly (which got the
    // table's grants), and cannot write another tenant's row into it.
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{} SELECT body FROM {later} ORDER BY body", tenant(A))
        ),
        ["a later", "early"]
    );
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{} SELECT body FROM events ORDER BY body", tenant(B))
        ),
        ["b later"]
    );
    assert_eq!(
        column_as(&db, &app, &format!("SELECT count(*) FROM {later}")),
        ["0"],
        "no tenant set: nothing"
    );
    let err = as_role(
        &db,
        &app,
        &format!(
            "{} INSERT INTO {later} (happened_at, body, tenant_id) VALUES ({LATER}, 'sneaky', '{B}')",
            tenant(A)
        ),
    )
    .unwrap_err();
    assert!(err.contains("violates row-level security policy"), "{err}");
    assert_eq!(
        db.scalar(&format!(
            "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = '{later}'::regclass"
        ))
        .as_deref(),
        Some("t")
    );

    // Timestamped: set on insert, moved on update.
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM {later} WHERE created_at IS NOT NULL AND updated_at IS NOT NULL"
        ))
        .as_deref(),
        Some("3")
    );
    // Back-dated with triggers off (the timestamps trigger would stamp now, audit would log).
    db.exec(&format!(
        "SET session_replication_role = replica;
         UPDATE {later} SET created_at = '2000-01-01', updated_at = '2000-01-01'"
    ));
    ok_as(
        &db,
        &app,
        &format!(
            "{} UPDATE events SET body = 'a changed' WHERE body = 'a later'",
            tenant(A)
        ),
    );
    assert_eq!(
        db.column(&format!(
            "SELECT body || ' ' || (updated_at > '2001-01-01') FROM {later} ORDER BY body"
        )),
        ["a changed true", "b later false", "early false"]
    );

    // Audited: the inserts and the update into the new partition are in the log (the move out
    // of the default partition is not a change of the rows, and is not).
    assert_eq!(
        db.column(
            "SELECT operation FROM audit.log
             WHERE coalesce(new_row, old_row)->>'body' IN ('early', 'a later', 'b later', 'a changed')
             ORDER BY id"
        ),
        ["INSERT", "INSERT", "INSERT", "UPDATE"]
    );

    // Deleting softly: through the table the row is marked, never removed; through the
    // partition, refused.
    ok_as(
        &db,
        &app,
        &format!("{} DELETE FROM events WHERE body = 'a changed'", tenant(A)),
    );
    assert_eq!(
        db.column(&format!(
            "SELECT body || ' ' || (deleted_at IS NOT NULL) FROM {later} ORDER BY body"
        )),
        ["a changed true", "b later false", "early false"]
    );
    let err = as_role(&db, &app, &format!("{} DELETE FROM {later}", tenant(B))).unwrap_err();
    assert!(
        err.contains("deleted softly through public.events"),
        "{err}"
    );

    // The whole stack reverts to the plain table, and `pgx check` proves each step.
    let setup = p.files("migrations")[0]
        .split('_')
        .next()
        .unwrap()
        .to_string();
    // soft_delete's down refuses to bring soft-deleted rows back: purged first.
    db.exec("SELECT events_purge('0', 10)");
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--target", &setup])
        .ok();
    assert_eq!(
        db.scalar("SELECT count(*) FROM events").as_deref(),
        Some("2"),
        "down keeps every row"
    );
    db.exec("DELETE FROM events; SELECT setval(pg_get_serial_sequence('events', 'id'), 1, false)");
    // The audit history (schema `audit`) outlives the audit of a table, as the partition
    // infrastructure outlives a table's partitioning.
    let diff: Vec<_> = before
        .diff(&db.snapshot())
        .into_iter()
        .filter(|d| !d.object.contains("pgx_partition") && !d.object.contains(" audit"))
        .collect();
    assert_eq!(diff, vec![], "down restores the table");
    p.pgx().args(["check", "--database-url", &admin_url()]).ok();
}

/// partition, then tenant (partitioned=true) and audit on the same table: a partition that
/// maintenance creates months later is isolated and audited like the others.
#[test]
fn a_partition_created_later_is_isolated_by_tenant_and_audited() {
    let db = TestDb::new();
    let app = TestRole::new("part_app", "NOSUPERUSER NOBYPASSRLS");
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY, created_at timestamptz NOT NULL DEFAULT now(), body text, PRIMARY KEY (id, created_at))",
        "DROP TABLE events;",
    );
    p.pgx()
        .args([
            "new",
            "partition",
            "events",
            "--set",
            "column=created_at",
            "--set",
            "premake=1",
        ])
        .ok();
    p.pgx()
        .args([
            "new",
            "tenant",
            "events",
            "--set",
            "partitioned=true",
            "--set",
            "type=bigint",
            "--set",
            "global_unique=events_pkey",
            "--set",
            &format!("role={}", app.name),
        ])
        .ok();
    p.pgx().args(["new", "audit", "events"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    // "Six months later": maintenance creates the partitions of then.
    let existing = partitions(&db, "events");
    db.exec("CALL pgx_partition.run_maintenance(NULL, now() + interval '6 months')");
    let as_app = |tenant: &str, sql: &str| {
        try_rows(
            &db.url_as(&app.name),
            &format!("BEGIN; SET LOCAL app.current_tenant = '{tenant}'; {sql}; COMMIT;"),
        )
        .unwrap()
    };
    as_app(
        "1",
        "INSERT INTO events (created_at, body) VALUES (now() + interval '6 months', 'one')",
    );
    as_app(
        "2",
        "INSERT INTO events (created_at, body) VALUES (now() + interval '6 months', 'two')",
    );
    let later = db
        .scalar("SELECT DISTINCT tableoid::regclass::text FROM events")
        .unwrap();
    assert!(
        later.starts_with("events_p") && !existing.iter().any(|e| e.starts_with(&later)),
        "{later} was created by maintenance: {existing:?}"
    );
    // Queried directly, the new partition shows each tenant its own rows only.
    db.exec(&format!("GRANT SELECT ON {later} TO {}", app.name));
    let seen = as_app("1", &format!("SELECT body FROM {later}"));
    assert_eq!(seen, vec![vec![Some("one".to_string())]]);
    assert_eq!(
        db.scalar(&format!(
            "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = '{later}'"
        ))
        .as_deref(),
        Some("t")
    );
    // And both inserts were audited, naming that partition.
    assert_eq!(
        db.column(
            "SELECT operation FROM audit.log WHERE partition_name IS NULL AND new_row->>'body' IN ('one', 'two') ORDER BY id"
        ),
        ["INSERT", "INSERT"]
    );
    assert!(
        db.scalar(&format!(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = '{later}'::regclass AND tgname LIKE 'audit%'"
        ))
        .is_some_and(|n| n != "0"),
        "audit triggers on {later}"
    );
}
