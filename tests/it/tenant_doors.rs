//! The side doors next to a tenant table (issue: tenant isolation with no side doors), each
//! opened, then refused or closed by the migration, tried as an application role that is
//! neither superuser nor BYPASSRLS.

use crate::support::{Project, TestDb, TestRole};
use crate::tenant_support::*;

fn up(p: &Project, db: &TestDb) -> crate::support::Run {
    p.pgx().db(db).args(["migrate", "up"]).run()
}

/// `pgx migrate up` fails with `message`, and the schema is as it was.
fn refused(p: &Project, db: &TestDb, message: &str) {
    let before = db.snapshot();
    p.pgx()
        .db(db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(message);
    assert_eq!(before.diff(&db.snapshot()), vec![], "nothing changed");
}

#[test]
fn materialized_views_over_the_table_its_views_or_its_partitions_are_refused() {
    let db = TestDb::new();
    let app = app_role();
    let p = events_owned_by(
        &db,
        &app,
        ", tenant_id uuid",
        &format!(
            "INSERT INTO events VALUES (1, '2024-02-01', '{A}'), (2, '2024-03-01', '{B}');
             CREATE VIEW recent_events WITH (security_invoker = true) AS SELECT * FROM events;
             -- Over the table through a view, and over a partition directly.
             CREATE MATERIALIZED VIEW event_counts AS SELECT tenant_id, count(*) FROM recent_events GROUP BY 1;
             CREATE MATERIALIZED VIEW events_2024_copy AS SELECT * FROM events_2024;
             GRANT SELECT ON recent_events, event_counts, events_2024_copy TO {};",
            app.name
        ),
    );
    // The door: refreshed by their owner, they hold every tenant's rows for whoever may read them.
    assert_eq!(
        column_as(&db, &app, "SELECT count(*) FROM events_2024_copy"),
        ["2"]
    );

    new_tenant_as_given(&p, "events", &["partitioned=true", "add_column=false"]);
    refused(
        &p,
        &db,
        "materialized view(s) public.event_counts, public.events_2024_copy read public.events: row security does not apply to them",
    );
    db.exec("DROP MATERIALIZED VIEW events_2024_copy, event_counts");
    assert!(up(&p, &db).success);
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{} SELECT count(*) FROM recent_events", tenant_of(A))
        ),
        ["1"]
    );
}

#[test]
fn views_over_partitions_are_checked_like_views_over_the_table() {
    let db = TestDb::new();
    let app = app_role();
    let p = events_owned_by(
        &db,
        &app,
        ", tenant_id uuid",
        &format!(
            "INSERT INTO events VALUES (1, '2024-02-01', '{A}'), (2, '2024-03-01', '{B}');
             CREATE VIEW events_2024_view AS SELECT * FROM events_2024;
             GRANT SELECT ON events_2024_view TO {};",
            app.name
        ),
    );
    let before = db.snapshot();
    let run = new_tenant_as_given(&p, "events", &["partitioned=true", "add_column=false"]);
    refused(
        &p,
        &db,
        "view(s) public.events_2024_view read public.events with their owner's rights",
    );
    remove_written(&p, &run);
    new_tenant_as_given(
        &p,
        "events",
        &["partitioned=true", "add_column=false", "secure_views=true"],
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    // Through the view over the partition, the querying role's policies apply.
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{} SELECT id FROM events_2024_view", tenant_of(B))
        ),
        ["2"]
    );
    assert_eq!(
        column_as(&db, &app, "SELECT count(*) FROM events_2024_view"),
        ["0"]
    );
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}

#[test]
fn privileged_definer_functions_reading_the_table_are_warned_about_or_refused() {
    let db = TestDb::new();
    let app = app_role();
    let bypass = TestRole::new("pgx_bypass", "NOSUPERUSER BYPASSRLS");
    let member = TestRole::new("pgx_member", "NOSUPERUSER NOBYPASSRLS");
    let p = orders_owned_by(&db, &app);
    db.exec(&format!(
        "GRANT {bypass} TO {member};
         CREATE TABLE orders_archive (id bigint);
         -- A PL/pgSQL body (found by its text), a SQL-standard body (found by its dependencies),
         -- one owned by a member of a BYPASSRLS role; the last two are harmless.
         CREATE FUNCTION count_all() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
             AS $$ BEGIN RETURN (SELECT count(*) FROM Orders); END $$;
         CREATE FUNCTION count_sql() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             BEGIN ATOMIC SELECT count(*) FROM public.orders; END;
         CREATE FUNCTION count_member() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             AS 'SELECT count(*) FROM public.orders';
         ALTER FUNCTION count_member() OWNER TO {member};
         CREATE FUNCTION count_archive() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             AS 'SELECT count(*) FROM orders_archive';
         CREATE FUNCTION count_mine() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             AS 'SELECT count(*) FROM public.orders';
         ALTER FUNCTION count_mine() OWNER TO {app};",
        bypass = bypass.name,
        member = member.name,
        app = app.name
    ));
    let run = new_tenant(&p, "orders", &[]);
    let file = written(&run, "tenant_orders")[0].clone();
    let listed = format!(
        "SECURITY DEFINER function(s) public.count_all() (owned by postgres), public.count_member() (owned by {}), public.count_sql() (owned by postgres) read public.orders",
        member.name
    );
    // The server's WARNING, as psql shows it (applied and rolled back).
    let (ok, _, stderr) = psql(
        &db.url,
        &format!("BEGIN;\n{}\nROLLBACK;\n", p.read(&file)),
        false,
    );
    assert!(ok, "{stderr}");
    assert!(stderr.contains(&format!("WARNING:  {listed}")), "{stderr}");
    // Warned, not refused: the door stays, as the warning says.
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    seed(&db);
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!(
                "{} SELECT count_all(), count_sql(), count_mine()",
                tenant_of(A)
            )
        ),
        ["5"]
    );
    assert_eq!(
        column_as(&db, &app, &format!("{} SELECT count_mine()", tenant_of(A))),
        ["2"],
        "a definer function of a role subject to row security sees its tenant only"
    );

    // strict=true refuses them.
    db.exec("TRUNCATE orders");
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    remove_written(&p, &run);
    new_tenant(&p, "orders", &["strict=true"]);
    refused(&p, &db, &listed);
}

#[test]
fn foreign_keys_between_tenant_tables_are_refused_or_rekeyed_and_restored() {
    let db = TestDb::new();
    let app = app_role();
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "orders and lines",
        &format!(
            "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text,
                                  parent_id bigint REFERENCES orders);
             CREATE TABLE lines (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                 order_id bigint NOT NULL REFERENCES orders ON DELETE CASCADE);
             ALTER TABLE orders OWNER TO {0}; ALTER TABLE lines OWNER TO {0};",
            app.name
        ),
        "DROP TABLE lines, orders;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before_orders = db.snapshot();

    // A self-reference crosses tenants too.
    let run = new_tenant(&p, "orders", &[]);
    refused(
        &p,
        &db,
        "foreign key(s) orders_parent_id_fkey on public.orders cross tenants",
    );
    remove_written(&p, &run);
    new_tenant(&p, "orders", &["composite_keys=true"]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before_lines = db.snapshot();
    assert_eq!(
        before_lines.objects["constraint public.orders.orders_parent_id_fkey"],
        "FOREIGN KEY (tenant_id, parent_id) REFERENCES orders(tenant_id, id)"
    );
    assert_eq!(
        before_lines.objects["constraint public.orders.orders_tenant_id_id_key"],
        "UNIQUE (tenant_id, id)"
    );

    let run = new_tenant(&p, "lines", &[]);
    refused(
        &p,
        &db,
        "foreign key(s) lines_order_id_fkey on public.lines cross tenants",
    );
    remove_written(&p, &run);
    new_tenant(&p, "lines", &["composite_keys=true"]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.snapshot().objects["constraint public.lines.lines_order_id_fkey"],
        "FOREIGN KEY (tenant_id, order_id) REFERENCES orders(tenant_id, id) ON DELETE CASCADE"
    );

    // Tenant A's order; tenant B can neither attach a line to it nor tell it exists.
    let a_order = column_as(
        &db,
        &app,
        &format!(
            "{} INSERT INTO orders (item) VALUES ('a') RETURNING id",
            tenant_of(A)
        ),
    )[0]
    .clone();
    for id in [a_order.as_str(), "999999"] {
        let err = as_role(
            &db,
            &app,
            &format!(
                "{} INSERT INTO lines (order_id) VALUES ({id})",
                tenant_of(B)
            ),
        )
        .unwrap_err();
        assert!(
            err.contains("violates foreign key constraint \"lines_order_id_fkey\""),
            "{err}"
        );
        let err = as_role(
            &db,
            &app,
            &format!(
                "{} INSERT INTO orders (item, parent_id) VALUES ('b', {id})",
                tenant_of(B)
            ),
        )
        .unwrap_err();
        assert!(
            err.contains("violates foreign key constraint \"orders_parent_id_fkey\""),
            "{err}"
        );
    }
    // Within a tenant, references and cascades work as before.
    ok_as(
        &db,
        &app,
        &format!(
            "{0} INSERT INTO lines (order_id) VALUES ({1}); DELETE FROM orders WHERE id = {1}",
            tenant_of(A),
            a_order
        ),
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM lines").as_deref(),
        Some("0")
    );

    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(before_lines.diff(&db.snapshot()), vec![]);
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    db.exec("DELETE FROM orders");
    assert_eq!(before_orders.diff(&db.snapshot()), vec![]);
}

#[test]
fn unique_keys_across_tenants_are_listed_made_per_tenant_or_kept_knowingly() {
    let db = TestDb::new();
    let app = app_role();
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "orders",
        &format!(
            "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text UNIQUE,
                                  code text, sku text, UNIQUE (code, sku));
             CREATE UNIQUE INDEX orders_code_lower ON orders (lower(code));
             CREATE UNIQUE INDEX orders_sku_active ON orders (sku) WHERE sku IS NOT NULL;
             ALTER TABLE orders OWNER TO {};",
            app.name
        ),
        "DROP TABLE orders;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();
    let run = p.pgx().args(["new", "tenant", "orders"]).ok();
    refused(
        &p,
        &db,
        "unique key(s) orders_code_lower on public.orders, orders_code_sku_key on public.orders, orders_email_key on public.orders, orders_pkey on public.orders, orders_sku_active on public.orders do not hold tenant_id",
    );
    remove_written(&p, &run);
    new_tenant_as_given(&p, "orders", &["global_unique=nonesuch,orders_pkey"]);
    refused(
        &p,
        &db,
        "global_unique names nonesuch, which is no unique key of public.orders",
    );
    for f in p
        .files("migrations")
        .iter()
        .filter(|f| f.contains("tenant_orders"))
    {
        std::fs::remove_file(p.join(&format!("migrations/{f}"))).unwrap();
    }
    new_tenant_as_given(
        &p,
        "orders",
        &[
            "unique=email",
            "global_unique=orders_pkey,orders_code_lower,orders_sku_active,orders_code_sku_key",
        ],
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let a = tenant_of(A);
    let b = tenant_of(B);
    ok_as(
        &db,
        &app,
        &format!("{a} INSERT INTO orders (email, code) VALUES ('x@y', 'Q1')"),
    );
    // Per tenant now: B may use A's email.
    ok_as(
        &db,
        &app,
        &format!("{b} INSERT INTO orders (email) VALUES ('x@y')"),
    );
    // Kept across tenants knowingly: B learns that some tenant uses code q1.
    let err = as_role(
        &db,
        &app,
        &format!("{b} INSERT INTO orders (code) VALUES ('q1')"),
    )
    .unwrap_err();
    assert!(err.contains("orders_code_lower"), "{err}");
    // What was kept knowingly is no door for `pgx tenant check`.
    p.pgx().db(&db).args(["tenant", "check"]).ok();

    db.exec("DELETE FROM orders");
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}

#[test]
fn a_text_tenant_column_with_a_nondeterministic_collation_is_refused() {
    let db = TestDb::new();
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "orders",
        "CREATE COLLATION case_blind (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
         CREATE TABLE orders (id bigint, tenant_id text COLLATE case_blind NOT NULL);",
        "DROP TABLE orders; DROP COLLATION case_blind;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    // The door: under it, tenant ACME is tenant acme.
    assert_eq!(
        db.scalar("SELECT 'ACME' = 'acme' COLLATE case_blind")
            .as_deref(),
        Some("t")
    );
    new_tenant_as_given(&p, "orders", &["add_column=false", "type=text"]);
    refused(
        &p,
        &db,
        "public.orders.tenant_id compares with the nondeterministic collation case_blind, under which different tenant ids are equal",
    );
}

#[test]
fn an_application_role_that_can_become_a_bypassing_role_is_refused() {
    let db = TestDb::new();
    let owner = TestRole::new("pgx_owner", "NOSUPERUSER");
    let bypass = TestRole::new("pgx_bypass", "NOSUPERUSER BYPASSRLS");
    let middle = TestRole::new("pgx_middle", "NOSUPERUSER");
    let super_role = TestRole::new("pgx_super", "SUPERUSER");
    // Neither inherits anything: each can still SET ROLE up its chain.
    let app = TestRole::new("pgx_app", "NOSUPERUSER NOBYPASSRLS NOINHERIT");
    let app2 = TestRole::new("pgx_app2", "NOSUPERUSER NOBYPASSRLS NOINHERIT");
    db.exec(&format!(
        "GRANT {bypass} TO {middle}; GRANT {middle} TO {app}; GRANT {super_role} TO {app2};",
        bypass = bypass.name,
        middle = middle.name,
        app = app.name,
        super_role = super_role.name,
        app2 = app2.name
    ));
    // The door: two SET ROLEs away from bypassing row security.
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!(
                "SET ROLE {}; SET ROLE {}; SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user",
                middle.name, bypass.name
            )
        ),
        ["t"]
    );
    let p = orders_owned_by(&db, &owner);
    for (role, through) in [(&app, &bypass), (&app2, &super_role)] {
        let run = new_tenant(&p, "orders", &[&format!("role={}", role.name)]);
        refused(
            &p,
            &db,
            &format!(
                "role {} bypasses row security: it is, or is a member of, {} (superuser or BYPASSRLS)",
                role.name, through.name
            ),
        );
        remove_written(&p, &run);
    }
}
