//! The `partition` pattern and `pgx partition maintain`, end to end on the real database.

use crate::support::{Project, TestDb, TestRole, admin_url, try_rows};

/// A project whose first migration runs `setup`, then `pgx new partition TABLE` with `sets`,
/// all applied.
fn partitioned(db: &TestDb, setup: &str, table: &str, sets: &[&str]) -> Project {
    let p = Project::new();
    p.add("setup", setup, "SELECT 1");
    let mut args = vec!["new", "partition", table];
    for s in sets {
        args.extend(["--set", s]);
    }
    p.pgx().args(&args).ok();
    p.pgx().db(db).args(["migrate", "up"]).ok();
    p
}

/// Differences outside the shared infrastructure (which stays when a table's partition
/// migration is reverted).
fn outside_infrastructure(
    diff: Vec<pgx::db::snapshot::Difference>,
) -> Vec<pgx::db::snapshot::Difference> {
    diff.into_iter()
        .filter(|d| !d.object.contains("pgx_partition"))
        .collect()
}

/// Forgets the table's partition migrations written so far (not applied), to write others. The
/// shared install stays: it was applied before the table's migration failed, and a new one
/// written in another second would have another version, leaving the applied one without its
/// file.
fn remove_partition_migrations(p: &Project) {
    for f in p.files("migrations") {
        if f.contains("partition") && !f.contains("partition_install") {
            std::fs::remove_file(p.join(&format!("migrations/{f}"))).unwrap();
        }
    }
}

pub fn partitions(db: &TestDb, table: &str) -> Vec<String> {
    db.column(&format!(
        "SELECT c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid)
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = '{table}'::regclass ORDER BY 1"
    ))
}

const EVENTS: &str = "CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    created_at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL DEFAULT 'click' CHECK (kind <> ''),
    payload jsonb,
    PRIMARY KEY (id, created_at)
);
CREATE INDEX events_kind_idx ON events (kind) WHERE kind <> 'click';
COMMENT ON TABLE events IS 'what happened';
COMMENT ON COLUMN events.kind IS 'the kind of event';";

#[test]
fn an_empty_table_is_recreated_partitioned_with_everything_and_down_restores_it() {
    let db = TestDb::new();
    let app = TestRole::new("part_app", "NOSUPERUSER NOBYPASSRLS");
    let p = Project::new();
    p.add(
        "setup",
        &format!(
            "{EVENTS}
             CREATE TABLE kinds (name text PRIMARY KEY);
             ALTER TABLE events ADD CONSTRAINT events_kind_fkey FOREIGN KEY (kind) REFERENCES kinds (name);
             CREATE TABLE notes (event_id bigint, event_at timestamptz, FOREIGN KEY (event_id, event_at) REFERENCES events (id, created_at));
             GRANT SELECT, INSERT ON events TO {0}; GRANT UPDATE (payload) ON events TO {0};
             SELECT setval(pg_get_serial_sequence('events', 'id'), 41);",
            app.name
        ),
        "DROP TABLE notes, events, kinds;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();
    p.pgx()
        .args(["new", "partition", "events", "--set", "column=created_at"])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    assert_eq!(
        db.scalar("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass")
            .as_deref(),
        Some("p")
    );
    // The current month, four more, and the default partition, with bounds at midnight UTC.
    let parts = partitions(&db, "events");
    assert_eq!(parts.len(), 6, "{parts:?}");
    assert!(
        parts
            .iter()
            .any(|p| p.starts_with("events_default DEFAULT"))
    );
    let bounds = db.column(
        "SET TimeZone = 'UTC'; SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass AND c.relname <> 'events_default'",
    );
    assert_eq!(bounds.len(), 5);
    for b in &bounds {
        assert!(
            b.matches("-01 00:00:00+00").count() == 2,
            "not month-aligned: {b}"
        );
    }
    // Same identity (continuing), defaults, checks, keys, grants and foreign keys.
    db.exec("INSERT INTO kinds VALUES ('click'), ('view')");
    let row = try_rows(
        &db.url_as(&app.name),
        "INSERT INTO events (payload) VALUES ('{}') RETURNING id, kind",
    )
    .unwrap();
    assert_eq!(row, vec![vec![Some("42".into()), Some("click".into())]]);
    assert!(
        db.try_exec("INSERT INTO events (kind) VALUES ('')")
            .unwrap_err()
            .contains("events_kind_check")
    );
    assert!(
        db.try_exec("INSERT INTO events (kind) VALUES ('nope')")
            .unwrap_err()
            .contains("events_kind_fkey")
    );
    assert!(
        try_rows(
            &db.url_as(&app.name),
            "UPDATE events SET kind = 'view' RETURNING 1"
        )
        .is_err(),
        "only the column grant"
    );
    db.exec("INSERT INTO notes SELECT id, created_at FROM events");
    assert!(
        db.try_exec("INSERT INTO notes VALUES (999, now())")
            .unwrap_err()
            .contains("notes_event_id_event_at_fkey")
    );
    assert_eq!(
        db.scalar("SELECT obj_description('events'::regclass)")
            .as_deref(),
        Some("what happened")
    );

    // Down: a plain table with every row, and the schema exactly as before.
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(
        db.scalar("SELECT count(*) FROM events").as_deref(),
        Some("1")
    );
    db.exec("DELETE FROM notes; DELETE FROM events; SELECT setval(pg_get_serial_sequence('events', 'id'), 41)");
    assert_eq!(
        outside_infrastructure(before.diff(&db.snapshot())),
        vec![],
        "down restores the table"
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    p.pgx().args(["check", "--database-url", &admin_url()]).ok();
}

#[test]
fn keys_without_the_partition_column_are_named_and_refused_unless_rewritten() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ref text UNIQUE, placed date NOT NULL);",
        "DROP TABLE orders;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();
    p.pgx()
        .args(["new", "partition", "orders", "--set", "column=placed"])
        .ok();
    let run = p.pgx().db(&db).args(["migrate", "up"]).fails();
    run.stderr_has("orders_pkey (id) -> (id, placed)")
        .stderr_has("orders_ref_key (ref) -> (ref, placed)")
        .stderr_has("rewrite_keys=true");
    assert_eq!(
        outside_infrastructure(before.diff(&db.snapshot())),
        vec![],
        "nothing changed"
    );

    // A foreign key elsewhere on a key that would change: refused, naming it.
    db.exec("CREATE TABLE lines (order_id bigint REFERENCES orders (id))");
    remove_partition_migrations(&p);
    p.pgx()
        .args([
            "new",
            "partition",
            "orders",
            "--set",
            "column=placed",
            "--set",
            "rewrite_keys=true",
        ])
        .ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("foreign key lines_order_id_fkey on public.lines references key orders_pkey of public.orders");
    db.exec("DROP TABLE lines");
    let before = db.snapshot();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.scalar(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'orders_pkey'"
        )
        .as_deref(),
        Some("PRIMARY KEY (id, placed)")
    );
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(
        outside_infrastructure(before.diff(&db.snapshot())),
        vec![],
        "down restores the keys as they were"
    );
}

#[test]
fn rows_for_a_month_without_partition_wait_in_the_default_then_maintenance_moves_them() {
    let db = TestDb::new();
    let p = partitioned(&db, EVENTS, "events", &["column=created_at"]);
    db.exec(
        "INSERT INTO events (created_at) VALUES ('2031-05-05 10:00+00'), ('2031-05-31 23:59:59+00'), ('2019-12-31 23:00-05');",
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM events_default").as_deref(),
        Some("3")
    );
    let dry = p
        .pgx()
        .db(&db)
        .args(["partition", "maintain", "--dry-run"])
        .ok();
    dry.stdout_has("would create public.events_p20310501 moving 2 rows from the default partition")
        .stdout_has("would create public.events_p20200101 moving 1 rows");
    assert_eq!(
        db.scalar("SELECT count(*) FROM events_default").as_deref(),
        Some("3"),
        "a dry run changes nothing"
    );

    // Two maintainers at once: the work is done once, and both succeed.
    let first = p.pgx().db(&db).args(["partition", "maintain"]).spawn();
    let second = p.pgx().db(&db).args(["partition", "maintain"]).spawn();
    let (a, b) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    let lines = format!(
        "{}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout)
    );
    assert_eq!(
        lines.matches("create public.events_p20310501").count(),
        1,
        "{lines}"
    );
    assert_eq!(
        lines.matches("create public.events_p20200101").count(),
        1,
        "{lines}"
    );

    assert_eq!(
        db.column("SELECT tableoid::regclass::text FROM events ORDER BY created_at"),
        ["events_p20200101", "events_p20310501", "events_p20310501"]
    );
    // Idempotent: nothing left to do.
    let again = p.pgx().db(&db).args(["partition", "maintain"]).ok();
    assert_eq!(again.stdout, "");
    let json = p
        .pgx()
        .db(&db)
        .args(["partition", "maintain", "--json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["actions"], serde_json::json!([]));
    p.pgx()
        .db(&db)
        .args(["partition", "maintain", "nope"])
        .fails()
        .stderr_has("table \"nope\" is not partitioned by the partition pattern");
}

/// Retention in each mode, by the path maintenance takes (DETACH CONCURRENTLY without a default
/// partition, the plain DETACH with one).
#[test]
fn retention_detaches_drops_or_archives_old_partitions_saying_how() {
    for (mode, default, path) in [
        ("detach", "false", "(DETACH CONCURRENTLY)"),
        ("drop", "true", "(plain DETACH): a default partition exists"),
        ("archive", "false", "(DETACH CONCURRENTLY)"),
    ] {
        let db = TestDb::new();
        let mut sets = vec![
            "column=created_at".to_string(),
            "retention=6 months".to_string(),
            format!("retention_mode={mode}"),
            format!("default_partition={default}"),
        ];
        let setup = format!("{EVENTS}; CREATE SCHEMA archive;");
        if mode == "archive" {
            sets.push("archive_schema=archive".into());
        }
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        let p = partitioned(&db, &setup, "events", &sets);
        // Two partitions from long ago, each with a row.
        db.exec(
            "SELECT pgx_partition.create_partition('events', pgx_partition.current_period(t, '2020-01-15') + 0) FROM pgx_partition.tables t;
             SELECT pgx_partition.create_partition('events', pgx_partition.current_period(t, '2020-02-15')) FROM pgx_partition.tables t;
             INSERT INTO events (created_at) VALUES ('2020-01-15'), ('2020-02-15'), (now());",
        );
        let run = p.pgx().db(&db).args(["partition", "maintain"]).ok();
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{mode}: {lines:?}");
        assert!(
            lines[0].starts_with(&format!("{mode} public.events_p20200101 {path}")),
            "{lines:?}"
        );
        assert_eq!(
            db.scalar("SELECT count(*) FROM events").as_deref(),
            Some("1"),
            "{mode}"
        );
        let left = db.column("SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname LIKE 'events_p2020%' AND c.relkind = 'r' ORDER BY 1");
        match mode {
            "drop" => assert_eq!(left, Vec::<String>::new()),
            "archive" => assert_eq!(
                left,
                ["archive.events_p20200101", "archive.events_p20200201"]
            ),
            _ => assert_eq!(left, ["public.events_p20200101", "public.events_p20200201"]),
        }
        assert_eq!(
            p.pgx().db(&db).args(["partition", "maintain"]).ok().stdout,
            ""
        );
    }
}

/// Daily partitions across the change to and from summer time: every bound is a UTC midnight,
/// and the ranges follow each other without gap or overlap, whatever the session's time zone.
#[test]
fn bounds_are_utc_midnights_without_gaps_across_daylight_saving_changes() {
    let db = TestDb::new();
    db.exec(&format!(
        "ALTER DATABASE {} SET TimeZone = 'Europe/Berlin'",
        db.name
    ));
    partitioned(
        &db,
        EVENTS,
        "events",
        &["column=created_at", "interval=1 day", "premake=1"],
    );
    db.exec(
        "SELECT pgx_partition.create_partition('events', pgx_partition.current_period(t, '2027-03-26 12:00+00') + d)
         FROM pgx_partition.tables t, generate_series(0, 4) d;
         SELECT pgx_partition.create_partition('events', pgx_partition.current_period(t, '2027-10-29 12:00+00') + d)
         FROM pgx_partition.tables t, generate_series(0, 4) d;",
    );
    let rows = db.rows(
        "SET TimeZone = 'UTC';
         SELECT c.relname, (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''(.*)''\\) TO \\(''(.*)''\\)'))[1:2]::text
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass AND c.relname ~ '_p2027' ORDER BY 1",
    );
    assert_eq!(rows.len(), 10);
    for (row, day) in rows.iter().zip([
        "20270326", "20270327", "20270328", "20270329", "20270330", "20271029", "20271030",
        "20271031", "20271101", "20271102",
    ]) {
        let name = row[0].as_deref().unwrap();
        assert_eq!(name, format!("events_p{day}"));
        let bounds = row[1].as_deref().unwrap();
        let from = format!("{}-{}-{} 00:00:00+00", &day[..4], &day[4..6], &day[6..]);
        assert!(
            bounds.starts_with(&format!("{{\"{from}\"")),
            "{name}: {bounds}"
        );
        assert!(bounds.ends_with(" 00:00:00+00\"}"), "{name}: {bounds}");
    }
    // A row at 00:30 Berlin summer time on 2027-03-29 is 22:30 UTC the day before.
    db.exec("INSERT INTO events (created_at) VALUES ('2027-03-29 00:30:00+02')");
    assert_eq!(
        db.scalar("SELECT tableoid::regclass::text FROM events WHERE created_at < '2027-04-01'")
            .as_deref(),
        Some("events_p20270328")
    );
}

/// A table name so long that `<table>_pYYYYMMDD` passes 63 bytes: the names are shortened with a
/// hash, stay distinct, and a name of exactly 63 bytes is kept as it is.
#[test]
fn partition_names_stay_within_63_bytes() {
    let exact = "e".repeat(53); // + "_p20270101" = 63 bytes
    let long = format!("{}_ü", "l".repeat(52)); // multibyte at the cut
    for table in [&exact, &long] {
        let db = TestDb::new();
        let setup = format!("CREATE TABLE \"{table}\" (id bigint, at date NOT NULL)");
        partitioned(
            &db,
            &setup,
            table,
            &["column=at", "default_partition=false"],
        );
        let names = db.column(&format!(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '\"{table}\"'::regclass"
        ));
        assert_eq!(names.len(), 5);
        for n in &names {
            assert!(n.len() <= 63, "{n}");
        }
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 5, "{names:?}");
        if table == &exact {
            assert!(
                names
                    .iter()
                    .all(|n| n.len() == 63 && n.starts_with(exact.as_str())),
                "kept as is: {names:?}"
            );
        } else {
            assert!(
                names
                    .iter()
                    .all(|n| n.starts_with(&"l".repeat(44)) && n.len() == 63 && n.contains("_p20")),
                "shortened with a hash: {names:?}"
            );
        }
    }
}

#[test]
fn a_table_with_rows_is_converted_live_and_down_gives_it_back_with_every_row() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("setup", EVENTS, "DROP TABLE events;");
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec("INSERT INTO events (created_at, kind) SELECT now() - g * interval '1 day', 'k' || g FROM generate_series(1, 400) g");
    let before = db.snapshot();
    let sum = "SELECT count(*) || ' ' || sum(hashtext(id || created_at::text || kind)) FROM events";
    let checksum = db.scalar(sum);

    // A table with rows is refused by convert=new.
    p.pgx()
        .args([
            "new",
            "partition",
            "events",
            "--set",
            "column=created_at",
            "--set",
            "lock_timeout=200ms",
        ])
        .ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("has rows")
        .stderr_has("convert=live");
    remove_partition_migrations(&p);
    let written = p
        .pgx()
        .args([
            "new",
            "partition",
            "events",
            "--set",
            "column=created_at",
            "--set",
            "convert=live",
        ])
        .ok();
    assert_eq!(
        written.stdout.lines().count(),
        6,
        "prepare, validate, swap (up and down; the install is there already)"
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    assert_eq!(db.scalar(sum), checksum, "no row lost or duplicated");
    let parts = partitions(&db, "events");
    assert!(
        parts
            .iter()
            .any(|p| p.starts_with("events_legacy FOR VALUES FROM (MINVALUE) TO (")),
        "{parts:?}"
    );
    assert_eq!(
        parts.len(),
        5,
        "the old table, the default, and from the cut-over (the period after next) to the current + 4: {parts:?}"
    );
    let id: i64 = db
        .scalar("INSERT INTO events (created_at) VALUES (now() + interval '70 days') RETURNING id")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(id, 401, "identity goes on");
    assert_ne!(
        db.scalar("SELECT tableoid::regclass::text FROM events WHERE id = 401")
            .as_deref(),
        Some("events_legacy")
    );

    let setup = p.files("migrations")[0]
        .split('_')
        .next()
        .unwrap()
        .to_string();
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--target", &setup])
        .ok();
    assert_eq!(
        db.scalar("SELECT count(*) FROM events").as_deref(),
        Some("401")
    );
    db.exec("DELETE FROM events WHERE id = 401; SELECT setval(pg_get_serial_sequence('events', 'id'), 400)");
    assert_eq!(db.scalar(sum), checksum);
    assert_eq!(
        outside_infrastructure(before.diff(&db.snapshot())),
        vec![],
        "down gives the table back"
    );
}

#[test]
fn list_and_hash_partitioning_for_new_tables() {
    let db = TestDb::new();
    partitioned(
        &db,
        "CREATE TABLE accounts (id bigint NOT NULL, region text NOT NULL, PRIMARY KEY (id, region))",
        "accounts",
        &["column=region", "strategy=list", "values=eu,uk;us, ca"],
    );
    db.exec("INSERT INTO accounts VALUES (1, 'uk'), (2, 'ca'), (3, 'jp')");
    assert_eq!(
        db.column("SELECT tableoid::regclass::text FROM accounts ORDER BY id"),
        ["accounts_p1", "accounts_p2", "accounts_default"]
    );
    let db = TestDb::new();
    let p = partitioned(
        &db,
        "CREATE TABLE sessions (id uuid PRIMARY KEY, data text)",
        "sessions",
        &["column=id", "strategy=hash", "modulus=4"],
    );
    db.exec("INSERT INTO sessions SELECT gen_random_uuid() FROM generate_series(1, 200)");
    assert_eq!(
        db.column("SELECT count(DISTINCT tableoid) FROM sessions"),
        ["4"]
    );
    p.pgx()
        .args([
            "new",
            "partition",
            "x",
            "--set",
            "column=a",
            "--set",
            "strategy=hash",
            "--dry-run",
        ])
        .fails()
        .stderr_has("strategy=hash needs modulus");
}

/// Maintenance run by a superuser (pg_cron's job owner, say) on a table owned by a weaker role
/// runs what that owner attached to the table as the owner: a constraint whose function tries
/// to make the owner a superuser gains nothing.
#[test]
fn maintenance_runs_the_table_owners_code_with_the_owners_rights_only() {
    let db = TestDb::new();
    let owner = TestRole::new("part_owner", "NOSUPERUSER NOBYPASSRLS");
    let p = Project::new();
    p.add(
        "setup",
        &format!(
            "CREATE TABLE events (id bigint, at date NOT NULL); ALTER TABLE events OWNER TO {0};
             GRANT CREATE ON SCHEMA public TO {0};",
            owner.name
        ),
        "DROP TABLE events;",
    );
    p.pgx()
        .args(["new", "partition", "events", "--set", "column=at"])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 'events'"),
        Some(owner.name.clone()),
        "the owner stays"
    );
    // The attack, by the owner: a function the moved rows' constraint calls.
    try_rows(
        &db.url_as(&owner.name),
        &format!(
            "CREATE FUNCTION public.innocent(date) RETURNS boolean LANGUAGE plpgsql AS $$
             BEGIN
                 BEGIN EXECUTE 'ALTER ROLE {0} SUPERUSER'; EXCEPTION WHEN others THEN NULL; END;
                 RETURN true;
             END $$;
             ALTER TABLE events ADD CONSTRAINT sneaky CHECK (public.innocent(at));
             INSERT INTO events VALUES (1, '2035-06-01');",
            owner.name
        ),
    )
    .unwrap();
    p.pgx()
        .db(&db)
        .args(["partition", "maintain"])
        .ok()
        .stdout_has("create public.events_p20350601 moving 1 rows");
    assert_eq!(
        db.scalar(&format!(
            "SELECT rolsuper FROM pg_roles WHERE rolname = '{}'",
            owner.name
        ))
        .as_deref(),
        Some("f"),
        "the owner gained nothing"
    );
    assert_eq!(
        db.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 'events_p20350601'"),
        Some(owner.name.clone())
    );
}

/// The maintenance functions' schema must be the migrating role's alone: a role that can
/// create schemas plants one first, and the install refuses it.
#[test]
fn the_infrastructure_is_not_installed_into_a_schema_another_role_controls() {
    let db = TestDb::new();
    let attacker = TestRole::new("part_attacker", "NOSUPERUSER");
    db.exec(&format!(
        "GRANT CREATE ON DATABASE {} TO {}",
        db.name, attacker.name
    ));
    try_rows(&db.url_as(&attacker.name), "CREATE SCHEMA pgx_partition").unwrap();
    let p = Project::new();
    p.add("setup", EVENTS, "DROP TABLE events;");
    p.pgx()
        .args(["new", "partition", "events", "--set", "column=created_at"])
        .ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!(
            "schema pgx_partition belongs to role {}",
            attacker.name
        ));
    db.exec(&format!("ALTER SCHEMA pgx_partition OWNER TO CURRENT_USER; GRANT CREATE ON SCHEMA pgx_partition TO {}", attacker.name));
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!(
            "schema pgx_partition is writable by {} besides its owner",
            attacker.name
        ));
}

/// backend=partman on the real pg_partman (Debian's postgresql-15-partman): the table is handed
/// to create_parent with premake and retention from the same parameters, maintenance runs
/// pg_partman's, and down lets go of it.
#[test]
fn backend_partman_hands_the_table_to_pg_partman() {
    let db = TestDb::new();
    db.exec("CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman");
    let p = partitioned(
        &db,
        "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id, created_at))",
        "events",
        &[
            "column=created_at",
            "backend=partman",
            "premake=3",
            "retention=2 months",
            "retention_mode=drop",
        ],
    );
    assert_eq!(
        db.rows("SELECT premake, retention, retention_keep_table FROM partman.part_config WHERE parent_table = 'public.events'"),
        vec![vec![Some("3".into()), Some("2 months".into()), Some("f".into())]]
    );
    let before = partitions(&db, "events").len();
    assert!(before > 3, "{before}");
    p.pgx()
        .db(&db)
        .args(["partition", "maintain"])
        .ok()
        .stdout_has("partman run_maintenance public.events");
    assert!(
        partitions(&db, "events").len() < before,
        "pg_partman's retention dropped the partitions older than 2 months"
    );
    db.exec("INSERT INTO events DEFAULT VALUES");
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(
        db.scalar("SELECT relkind FROM pg_class WHERE oid = 'events'::regclass")
            .as_deref(),
        Some("r")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM events").as_deref(),
        Some("1")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM partman.part_config")
            .as_deref(),
        Some("0")
    );
}
