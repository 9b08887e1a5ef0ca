//! `search` together with the other patterns on one table: under the `tenant` pattern's row
//! security, as an application role that is neither superuser nor BYPASSRLS (isolation of the
//! results, and which index the plan uses with and without the leakproof operator), and with
//! `timestamps` and `audit` too, under `pgx check`.

use crate::search::new_search;
use crate::support::{Project, TestDb, TestRole, try_rows};

fn app_role() -> TestRole {
    TestRole::new("search_app", "NOSUPERUSER NOBYPASSRLS")
}

/// The first column of every row of the last statement, run as `role`.
fn column_as(db: &TestDb, role: &TestRole, sql: &str) -> Vec<String> {
    try_rows(&db.url_as(&role.name), sql)
        .unwrap_or_else(|e| panic!("as {}: {e}\n{sql}", role.name))
        .into_iter()
        .map(|r| r.into_iter().next().flatten().unwrap_or_default())
        .collect()
}

/// `docs` with the tenant pattern (integer tenants, `app` granted) and search over `body`,
/// led by the tenant column; 2,000 filler rows for each of tenants 1 and 2, and one `apple`
/// row each.
fn tenant_docs(db: &TestDb, app: &TestRole, extra: &[&str]) -> Project {
    let p = Project::new();
    p.add(
        "create docs",
        "CREATE TABLE docs (id int PRIMARY KEY, body text)",
        "DROP TABLE docs",
    );
    p.pgx()
        .args(["new", "tenant", "docs", "--set", "type=integer"])
        // The tests' ids are global on purpose.
        .args(["--set", "global_unique=docs_pkey"])
        .args(["--set", &format!("role={}", app.name)])
        .ok();
    let mut sets = vec!["columns=body", "tenant_column=tenant_id"];
    sets.extend(extra);
    new_search(&p, "docs", &sets);
    p.pgx().db(db).args(["migrate", "up"]).ok();
    db.exec(
        "INSERT INTO docs (id, tenant_id, body)
         SELECT g, g % 2 + 1, 'filler words number ' || g FROM generate_series(1, 4000) g;
         INSERT INTO docs (id, tenant_id, body) VALUES (10001, 1, 'apple banana'), (10002, 2, 'apple cherry')",
    );
    db.exec("VACUUM ANALYZE docs");
    p
}

/// Isolation of search results: each tenant finds only its own rows, no tenant finds none.
fn assert_isolated(db: &TestDb, app: &TestRole) {
    let as_tenant = |t: &str, query: &str| {
        column_as(
            db,
            app,
            &format!("SET app.current_tenant = '{t}'; SELECT (hit).id FROM docs_search('{query}')"),
        )
    };
    assert_eq!(as_tenant("1", "apple"), ["10001"]);
    assert_eq!(as_tenant("2", "apple"), ["10002"]);
    assert_eq!(as_tenant("1", "cherry"), Vec::<String>::new());
    let mine = column_as(
        db,
        app,
        "SET app.current_tenant = '1';
         SELECT count(*) || ' ' || count(*) FILTER (WHERE (hit).id % 2 = 1) FROM docs_search('number or cherry', 5000)",
    );
    assert_eq!(
        mine,
        ["2000 0"],
        "tenant 1's 2,000 rows, none of tenant 2's"
    );
    assert_eq!(as_tenant("", "apple"), Vec::<String>::new());
    assert_eq!(
        column_as(db, app, "SELECT count(*) FROM docs_search('apple')"),
        ["0"],
        "no tenant set: nothing"
    );
}

/// The plan of a search by `app` as tenant 1.
fn plan_as_tenant(db: &TestDb, app: &TestRole) -> String {
    column_as(
        db,
        app,
        "SET app.current_tenant = '1'; EXPLAIN SELECT * FROM docs_search('apple')",
    )
    .join("\n")
}

#[test]
fn under_row_security_results_are_isolated_and_the_tenant_part_uses_the_index() {
    let db = TestDb::new();
    let app = app_role();
    let _p = tenant_docs(&db, &app, &[]);
    assert_isolated(&db, &app);

    // @@ is not leakproof: PostgreSQL checks it only after the policy, so the index serves the
    // tenant condition and the match filters that tenant's rows.
    let plan = plan_as_tenant(&db, &app);
    assert!(plan.contains("Index Cond: (tenant_id = $"), "{plan}");
    assert!(plan.contains("Filter: (search @@ "), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");

    // Without row security in the way, one scan of the (tenant, vector) index answers both.
    let plan = db
        .column("EXPLAIN SELECT * FROM docs WHERE tenant_id = 1 AND search @@ websearch_to_tsquery('english', 'apple')")
        .join("\n");
    assert!(
        plan.contains("Index Cond: ((tenant_id = 1) AND (search @@ '''appl'''::tsquery))"),
        "{plan}"
    );
}

#[test]
fn with_the_leakproof_operator_one_index_scan_answers_tenant_and_match_under_row_security() {
    let db = TestDb::new();
    let app = app_role();
    let p = tenant_docs(&db, &app, &["leakproof=true"]);
    assert_isolated(&db, &app);
    let plan = plan_as_tenant(&db, &app);
    assert!(
        plan.contains("Bitmap Index Scan on docs_search_idx"),
        "{plan}"
    );
    assert!(
        plan.contains("Index Cond: ((tenant_id = $")
            && plan.contains("AND (search OPERATOR(search.@@) '''appl'''::tsquery))"),
        "{plan}"
    );
    // The match is never a filter over the tenant's rows (the winners read back by address
    // are checked against the policy again, which is cheap).
    assert!(!plan.contains("Filter: (search"), "{plan}");
    // The index answers PostgreSQL's own @@ too, for queries written by hand.
    let plan = db
        .column("EXPLAIN SELECT * FROM docs WHERE tenant_id = 1 AND search @@ 'appl'::tsquery")
        .join("\n");
    assert!(
        plan.contains("Bitmap Index Scan on docs_search_idx"),
        "{plan}"
    );
    assert_eq!(
        db.scalar("SELECT proleakproof FROM pg_proc WHERE oid = 'search.match(tsvector, tsquery)'::regprocedure"),
        Some("t".into())
    );
    assert_eq!(
        db.scalar("SELECT proleakproof FROM pg_proc WHERE oid = 'ts_match_vq(tsvector, tsquery)'::regprocedure"),
        Some("f".into()),
        "PostgreSQL's own function is left as it is"
    );
    p.pgx().db(&db).args(["check"]).ok();
}

#[test]
fn the_leakproof_operator_needs_a_superuser_and_says_so() {
    let migrator = TestRole::new("search_migrator", "NOSUPERUSER");
    let db = TestDb::new();
    db.exec(&format!(
        "GRANT CREATE ON DATABASE {db} TO {role}; GRANT CREATE ON SCHEMA public TO {role}",
        db = db.name,
        role = migrator.name
    ));
    let p = Project::new();
    p.add(
        "create docs",
        "CREATE TABLE docs (id int PRIMARY KEY, body text)",
        "DROP TABLE docs",
    );
    new_search(&p, "docs", &["columns=body", "leakproof=true"]);
    p.pgx()
        .env("DATABASE_URL", &db.url_as(&migrator.name))
        .args(["migrate", "up"])
        .fails()
        .stderr_has("leakproof=true declares a match operator LEAKPROOF, which needs a superuser");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'search'"),
        Some("0".into())
    );
}

#[test]
fn with_timestamps_tenant_and_audit_on_one_table_every_down_reverses_its_up() {
    let db = TestDb::new();
    let app = app_role();
    let p = Project::new();
    p.add(
        "create notes",
        "CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text, body text)",
        "DROP TABLE notes",
    );
    p.pgx().args(["new", "timestamps", "notes"]).ok();
    p.pgx()
        .args(["new", "tenant", "notes", "--set", "type=integer"])
        .args(["--set", "global_unique=notes_pkey"])
        .args(["--set", &format!("role={}", app.name)])
        .ok();
    new_search(
        &p,
        "notes",
        &[
            "columns=title:A,body",
            "tenant_column=tenant_id",
            "unaccent=true",
        ],
    );
    // The vector is derived data: the audit log leaves it out.
    p.pgx()
        .args(["new", "audit", "notes", "--set", "exclude=search"])
        .ok();
    p.pgx().db(&db).args(["check"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    let as_app = |sql: &str| column_as(&db, &app, &format!("SET app.current_tenant = '7'; {sql}"));
    as_app("INSERT INTO notes (title, body) VALUES ('Résumé', 'first draft')");
    as_app("UPDATE notes SET body = 'second draft'");
    assert_eq!(
        as_app("SELECT (hit).title FROM notes_search('resume')"),
        ["Résumé"]
    );
    assert_eq!(
        as_app("SELECT (hit).body FROM notes_search('draft')"),
        ["second draft"]
    );
    assert_eq!(
        db.column("SELECT operation || ' ' || (new_row ? 'search')::text || ' ' || (new_row ? 'body')::text FROM audit.log ORDER BY id"),
        ["INSERT false true", "UPDATE false true"]
    );
    // The updated timestamp moved with the write; nothing else did.
    assert_eq!(
        db.scalar("SELECT updated_at > created_at FROM notes"),
        Some("t".into())
    );
}

#[test]
fn soft_deleted_rows_are_never_found_and_the_index_covers_live_rows_only() {
    let db = TestDb::new();
    let app = app_role();
    let p = Project::new();
    // What soft_delete adds: a deleted_at column, NULL for live rows.
    p.add(
        "create docs",
        "CREATE TABLE docs (id int PRIMARY KEY, body text, deleted_at timestamptz)",
        "DROP TABLE docs",
    );
    p.pgx()
        .args(["new", "tenant", "docs", "--set", "type=integer"])
        // The tests' ids are global on purpose.
        .args(["--set", "global_unique=docs_pkey"])
        .args(["--set", &format!("role={}", app.name)])
        .ok();
    new_search(
        &p,
        "docs",
        &[
            "columns=body",
            "tenant_column=tenant_id",
            "deleted_column=deleted_at",
            "leakproof=true",
        ],
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec(
        "INSERT INTO docs (id, tenant_id, body, deleted_at)
         SELECT g, g % 2 + 1, 'filler words number ' || g, CASE WHEN g % 10 = 0 THEN now() END
         FROM generate_series(1, 4000) g;
         INSERT INTO docs (id, tenant_id, body, deleted_at) VALUES
             (10001, 1, 'apple banana', NULL), (10003, 1, 'apple pie', now())",
    );
    db.exec("VACUUM ANALYZE docs");
    let as_tenant =
        |sql: &str| column_as(&db, &app, &format!("SET app.current_tenant = '1'; {sql}"));
    assert_eq!(
        as_tenant("SELECT (hit).id FROM docs_search('apple')"),
        ["10001"]
    );
    assert_eq!(
        as_tenant(
            "SELECT count(*) FILTER (WHERE (hit).deleted_at IS NOT NULL) || ' of ' || count(*) FROM docs_search('number', 5000)"
        ),
        ["0 of 1600"],
        "tenant 1's 2,000 filler rows less the 400 deleted"
    );
    assert_eq!(
        db.scalar("SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = 'docs_search_idx'::regclass"),
        Some("(deleted_at IS NULL)".into())
    );
    let plan = as_tenant("EXPLAIN SELECT * FROM docs_search('apple')").join("\n");
    assert!(
        plan.contains("Bitmap Index Scan on docs_search_idx"),
        "{plan}"
    );
    p.pgx().db(&db).args(["check"]).ok();
}

#[test]
fn with_the_partition_pattern_every_partition_is_indexed_and_searched() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "create events",
        "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY, created_at timestamptz NOT NULL DEFAULT now(),
                              title text, PRIMARY KEY (id, created_at))",
        "DROP TABLE events",
    );
    p.pgx()
        .args(["new", "partition", "events", "--set", "column=created_at"])
        .args(["--set", "interval=1 month", "--set", "premake=2"])
        .ok();
    new_search(&p, "events", &["columns=title"]);
    p.pgx().db(&db).args(["check"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec(
        "INSERT INTO events (created_at, title) VALUES
            (now(), 'quarterly meeting'), (now() + interval '1 month', 'meeting notes'),
            (now() + interval '5 months', 'far meeting, in the default partition for now')",
    );
    // The maintenance creates partitions later (and moves rows out of the default one): they
    // take the generated column and the index like the others.
    p.pgx().db(&db).args(["partition", "maintain"]).ok();
    let leaves_without_index = "SELECT count(*) FILTER (WHERE NOT EXISTS (
            SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = t.relid AND a.attname = 'search' AND i.indisvalid)) || ' of ' || count(*)
         FROM pg_partition_tree('events') t WHERE t.isleaf";
    // This month and two ahead, the default partition, and the one made for the far row.
    assert_eq!(db.scalar(leaves_without_index), Some("0 of 5".into()));
    assert_eq!(
        db.column("SELECT (hit).title FROM events_search('meetings') ORDER BY 1"),
        [
            "far meeting, in the default partition for now",
            "meeting notes",
            "quarterly meeting"
        ]
    );
}
