//! `tenant` on partitioned tables: every partition, at every level and created or attached
//! later, isolated when queried directly; names that need quoting everywhere (a partitioned
//! table in a schema, a column, a view and pgx's own schema, all with odd names).

use crate::support::{Project, TestDb};
use crate::tenant_support::*;

#[test]
fn partitions_queried_directly_are_isolated_now_and_later() {
    let db = TestDb::new();
    let app = app_role();
    db.exec(&format!("GRANT CREATE ON SCHEMA public TO {}", app.name));
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "create events",
        &format!(
            "CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
             CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
             CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
                 PARTITION BY RANGE (at);
             CREATE TABLE events_2025_h1 PARTITION OF events_2025 FOR VALUES FROM ('2025-01-01') TO ('2025-07-01');
             ALTER TABLE events OWNER TO {0}; ALTER TABLE events_2024 OWNER TO {0};
             ALTER TABLE events_2025 OWNER TO {0}; ALTER TABLE events_2025_h1 OWNER TO {0};",
            app.name
        ),
        "DROP TABLE events;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();

    p.pgx().args(["new", "tenant", "events"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).fails().stderr_has(
        "public.events is partitioned: render this migration with --set partitioned=true",
    );
    let mut removed = 0;
    for f in p.files("migrations") {
        if f.contains("tenant_events") {
            std::fs::remove_file(p.join(&format!("migrations/{f}"))).unwrap();
            removed += 1;
        }
    }
    assert_eq!(removed, 2, "the up and down of the unpartitioned rendering");
    new_tenant_as_given(&p, "events", &["partitioned=true"]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    // Partitions created and attached later, by the owning application role.
    ok_as(
        &db,
        &app,
        "CREATE TABLE events_2025_h2 PARTITION OF events_2025 FOR VALUES FROM ('2025-07-01') TO ('2026-01-01');
         CREATE TABLE events_2026 (LIKE events);
         ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');",
    );
    for at in ["2024-03-01", "2025-03-01", "2025-09-01", "2026-03-01"] {
        db.exec(&format!(
            "INSERT INTO events VALUES (1, '{at}', 'a', '{A}'), (2, '{at}', 'b', '{B}')"
        ));
    }
    let a = tenant_of(A);
    for partition in [
        "events",
        "events_2024",
        "events_2025",
        "events_2025_h1",
        "events_2025_h2",
        "events_2026",
    ] {
        let whats = column_as(
            &db,
            &app,
            &format!("{a} SELECT DISTINCT what FROM {partition}"),
        );
        assert_eq!(whats, ["a"], "{partition} queried directly");
        let none = column_as(&db, &app, &format!("SELECT count(*) FROM {partition}"));
        assert_eq!(none, ["0"], "{partition} without a tenant");
    }
    for partition in ["events_2024", "events_2025_h2", "events_2026"] {
        let err = as_role(
            &db,
            &app,
            &format!("{a} INSERT INTO {partition} (id, at, what, tenant_id) SELECT 3, min(at), 'x', '{B}' FROM {partition}"),
        )
        .unwrap_err();
        assert!(
            err.contains("violates row-level security policy"),
            "{partition}: {err}"
        );
        // New rows in a partition take the tenant from the setting too, attached ones included.
        ok_as(
            &db,
            &app,
            &format!(
                "{a} INSERT INTO {partition} (id, at, what) SELECT 4, min(at), 'a' FROM {partition}"
            ),
        );
    }
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM events WHERE id = 4 AND tenant_id = '{A}'"
        ))
        .as_deref(),
        Some("3")
    );

    db.exec("DROP TABLE events_2025_h2, events_2026");
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_event_trigger")
            .as_deref(),
        Some("0")
    );
}

#[test]
fn isolating_partitions_needs_a_superuser_and_says_so() {
    let db = TestDb::new();
    let app = app_role();
    // The application role migrates: it may create pgx's schema, not an event trigger.
    db.exec(&format!(
        "GRANT CREATE ON SCHEMA public TO {0}; GRANT CREATE ON DATABASE {1} TO {0};
         CREATE TABLE events (id bigint, at date NOT NULL) PARTITION BY RANGE (at);
         ALTER TABLE events OWNER TO {0};",
        app.name, db.name
    ));
    let p = Project::new();
    install_pgx(&p);
    new_tenant_as_given(&p, "events", &["partitioned=true"]);
    p.pgx()
        .env("DATABASE_URL", &db.url_as(&app.name))
        .args(["migrate", "up"])
        .fails()
        .stderr_has("partitions created later would not be isolated")
        .stderr_has("needs a superuser");
    assert_eq!(
        db.scalar("SELECT relrowsecurity FROM pg_class WHERE oid = 'events'::regclass")
            .as_deref(),
        Some("f"),
        "rolled back"
    );
}

#[test]
fn names_that_need_quoting_work_everywhere() {
    let db = TestDb::new();
    let app = app_role();
    db.exec(&format!(
        r#"CREATE SCHEMA "Sales Dept"; GRANT USAGE, CREATE ON SCHEMA "Sales Dept" TO {0};
           CREATE TABLE "Sales Dept"."Order Items" (id bigint NOT NULL, "When" date NOT NULL, "Note's" text)
               PARTITION BY RANGE ("When");
           CREATE TABLE "Sales Dept"."Order Items 2024" PARTITION OF "Sales Dept"."Order Items"
               FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
           ALTER TABLE "Sales Dept"."Order Items" OWNER TO {0};
           ALTER TABLE "Sales Dept"."Order Items 2024" OWNER TO {0};"#,
        app.name
    ));
    // pgx's own schema gets a name that needs quoting too.
    let p = Project::new();
    p.pgx()
        .args(["new", "pgx_install", "--set", "pgx_schema=Pgx \"State\"; x"])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();
    p.pgx()
        .args([
            "new",
            "tenant",
            "Order Items",
            "--schema",
            "Sales Dept",
            "--set",
            "column=Tenant Id",
            "--set",
            "type=text",
            "--set",
            "setting=App.Tenant",
            "--set",
            "partitioned=true",
            "--set",
            "view=Mine \"now\"",
            "--set",
            &format!("role={}", app.name),
        ])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    ok_as(
        &db,
        &app,
        r#"CREATE TABLE "Sales Dept"."Order Items 2025" PARTITION OF "Sales Dept"."Order Items"
               FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"#,
    );
    db.exec(
        r#"INSERT INTO "Sales Dept"."Order Items" VALUES
           (1, '2024-05-01', 'x', 'o''brien'), (2, '2024-05-01', 'y', 'acme'),
           (3, '2025-05-01', 'x', 'o''brien'), (4, '2025-05-01', 'y', 'acme')"#,
    );
    let mine = "SET app.tenant = 'o''brien';";
    for relation in [
        r#""Sales Dept"."Order Items""#,
        r#""Sales Dept"."Order Items 2024""#,
        r#""Sales Dept"."Order Items 2025""#,
        r#""Sales Dept"."Mine ""now""""#,
    ] {
        assert_eq!(
            column_as(
                &db,
                &app,
                &format!("{mine} SELECT count(*) FROM {relation}")
            ),
            [if relation.contains("20") { "1" } else { "2" }],
            "{relation}"
        );
        assert_eq!(
            column_as(&db, &app, &format!("SELECT count(*) FROM {relation}")),
            ["0"],
            "{relation}"
        );
    }
    db.exec(r#"DROP TABLE "Sales Dept"."Order Items 2025""#);
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}
