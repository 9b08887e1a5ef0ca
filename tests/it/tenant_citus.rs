//! `tenant` with `distribute=citus`. Citus cannot be installed where pgx is built: stand-ins for
//! its two functions (in pg_catalog, where Citus puts them) record each call with the state
//! the table is in at that moment, and the stand-in `undistribute_table` drops what the real
//! one drops (comments, column privileges, privileges on views), so what the migrations do
//! around them runs on the real database. The rendered shape Citus needs is asserted in
//! `tenant_render`.

use crate::support::{Project, TestDb};
use crate::tenant_support::*;

/// The stand-ins, and a table `orders` distributable by Citus (no identity column).
fn citus_project(db: &TestDb, undistribute_extra: &str) -> Project {
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "citus stand-ins",
        &format!(
            "CREATE TABLE citus_calls (call text, policies bigint, forced boolean, mode text);
             CREATE FUNCTION pg_catalog.create_distributed_table(regclass, text) RETURNS void LANGUAGE sql
                 AS $$ INSERT INTO public.citus_calls SELECT format('create_distributed_table(%s, %s)', $1, $2),
                           (SELECT count(*) FROM pg_policy WHERE polrelid = $1), c.relforcerowsecurity,
                           current_setting('citus.multi_shard_modify_mode', true)
                       FROM pg_class c WHERE c.oid = $1 $$;
             CREATE FUNCTION pg_catalog.undistribute_table(regclass) RETURNS void LANGUAGE plpgsql AS $$
             DECLARE r record;
             BEGIN
                 INSERT INTO public.citus_calls SELECT format('undistribute_table(%s)', $1),
                        (SELECT count(*) FROM pg_policy WHERE polrelid = $1), c.relforcerowsecurity,
                        current_setting('citus.multi_shard_modify_mode', true)
                 FROM pg_class c WHERE c.oid = $1;
                 -- What the real one loses: it re-creates the table and its views.
                 EXECUTE format('COMMENT ON TABLE %s IS NULL', $1);
                 FOR r IN SELECT a.attname FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped LOOP
                     EXECUTE format('COMMENT ON COLUMN %s.%I IS NULL', $1, r.attname);
                 END LOOP;
                 FOR r IN SELECT a.attname, x.grantee FROM pg_attribute a, aclexplode(a.attacl) x WHERE a.attrelid = $1 LOOP
                     EXECUTE format('REVOKE ALL (%I) ON %s FROM %I', r.attname, $1, pg_get_userbyid(r.grantee));
                 END LOOP;
                 REVOKE ALL ON public.order_numbers FROM PUBLIC;
                 {undistribute_extra}
             END $$;
             CREATE TABLE orders (id bigserial PRIMARY KEY, number int, note text,
                                  CONSTRAINT orders_number_key UNIQUE (number) DEFERRABLE);
             CREATE VIEW order_numbers WITH (security_invoker = true) AS SELECT id, number FROM orders;
             GRANT SELECT ON order_numbers TO PUBLIC;"
        ),
        "DROP VIEW order_numbers; DROP TABLE orders, citus_calls;
         DROP FUNCTION pg_catalog.create_distributed_table(regclass, text), pg_catalog.undistribute_table(regclass);",
    );
    p.pgx().db(db).args(["migrate", "up"]).ok();
    p
}

fn calls(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.rows("SELECT call, policies::text, forced::text, mode FROM citus_calls")
}

#[test]
fn citus_distribution_rekeys_isolates_with_one_policy_and_comes_back_whole() {
    let db = TestDb::new();
    let app = app_role();
    let p = citus_project(&db, "");
    db.exec(&format!(
        "COMMENT ON TABLE orders IS 'Orders'; COMMENT ON COLUMN orders.note IS 'Free text';
         GRANT SELECT (number, note) ON orders TO {0}; GRANT SELECT, INSERT ON orders TO {0};
         GRANT USAGE ON SEQUENCE orders_id_seq TO {0};",
        app.name
    ));
    let before = db.snapshot();
    new_tenant_citus(&p);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let after = db.snapshot();
    assert_eq!(
        after.objects["constraint public.orders.orders_pkey"],
        "PRIMARY KEY (tenant_id, id)"
    );
    assert_eq!(
        after.objects["constraint public.orders.orders_number_key"],
        "UNIQUE (tenant_id, number) DEFERRABLE"
    );
    assert!(
        !after
            .objects
            .contains_key("index public.orders_tenant_id_idx"),
        "the primary key leads with the tenant column"
    );
    // Distributed before any policy exists, so Citus creates them on every shard, in
    // sequential mode.
    assert_eq!(
        calls(&db),
        [[
            Some("create_distributed_table(public.orders, tenant_id)".into()),
            Some("0".into()),
            Some("false".into()),
            Some("sequential".into())
        ]]
    );
    // One permissive policy, no subquery: nothing for a shard to widen.
    assert_eq!(
        db.rows("SELECT polname, polpermissive::text, polcmd::text, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) FROM pg_policy"),
        [[
            Some("orders_tenant_isolation".into()),
            Some("true".into()),
            Some("*".into()),
            Some("(tenant_id = orders_current_tenant())".into()),
            Some("(tenant_id = orders_current_tenant())".into())
        ]]
    );
    // It isolates on its own.
    db.exec(&format!(
        "INSERT INTO orders (number, tenant_id) VALUES (1, '{A}'), (1, '{B}'), (2, '{B}')"
    ));
    assert_eq!(
        column_as(
            &db,
            &app,
            &format!("{} SELECT count(*) FROM orders", tenant_of(B))
        ),
        ["2"]
    );
    assert_eq!(column_as(&db, &app, "SELECT count(*) FROM orders"), ["0"]);
    let err = as_role(
        &db,
        &app,
        &format!(
            "{} INSERT INTO orders (number, tenant_id) VALUES (3, '{B}')",
            tenant_of(A)
        ),
    )
    .unwrap_err();
    assert!(err.contains("violates row-level security policy"), "{err}");

    // Global uniqueness comes back with the down migration: no number twice.
    db.exec(&format!(
        "DELETE FROM orders WHERE tenant_id = '{A}'; TRUNCATE citus_calls"
    ));
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(
        db.scalar("SELECT count(*) FROM orders").as_deref(),
        Some("2"),
        "every row kept"
    );
    // The policy gone and row security off before undistribute_table, in sequential mode.
    assert_eq!(
        calls(&db),
        [[
            Some("undistribute_table(public.orders)".into()),
            Some("0".into()),
            Some("false".into()),
            Some("sequential".into())
        ]]
    );
    // What undistribute_table drops is back.
    assert_eq!(
        db.rows(
            "SELECT obj_description('orders'::regclass, 'pg_class'), col_description('orders'::regclass, 3)"
        ),
        [[Some("Orders".into()), Some("Free text".into())]]
    );
    db.exec("DELETE FROM orders; TRUNCATE citus_calls");
    assert_eq!(restored(&before, &db.snapshot()), vec![]);
}

fn new_tenant_citus(p: &Project) -> crate::support::Run {
    p.pgx()
        .args(["new", "tenant", "orders", "--set", "distribute=citus"])
        .ok()
}

#[test]
fn a_down_that_would_lose_rows_is_refused_and_changes_nothing() {
    let db = TestDb::new();
    // The stand-in loses a row, as undistribute_table does when run by a role that sees only some.
    let p = citus_project(&db, "DELETE FROM public.orders WHERE number = 2;");
    new_tenant_citus(&p);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec(&format!(
        "INSERT INTO orders (number, tenant_id) VALUES (1, '{A}'), (2, '{B}'), (3, '{B}')"
    ));
    let applied = db.snapshot();
    p.pgx()
        .db(&db)
        .args(["migrate", "down"])
        .fails()
        .stderr_has("undistribute_table(public.orders) kept 2 of 3 rows: refusing to lose rows");
    assert_eq!(applied.diff(&db.snapshot()), vec![], "nothing changed");
    assert_eq!(
        db.scalar("SELECT count(*) FROM orders").as_deref(),
        Some("3")
    );
}

#[test]
fn what_citus_cannot_undo_or_enforce_is_refused_before_anything_changes() {
    for (setup, message) in [
        (
            "ALTER TABLE orders ADD COLUMN code int GENERATED ALWAYS AS IDENTITY",
            "public.orders has identity column(s) code: Citus cannot undistribute a table with an identity column",
        ),
        (
            "CREATE TABLE lines (id int, order_id bigint REFERENCES orders ON DELETE CASCADE)",
            "local table(s) public.lines reference public.orders: on Citus their foreign keys to a distributed table stop cascading",
        ),
        (
            "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
             CREATE TRIGGER audit_insert AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION touch()",
            "public.orders has trigger(s) audit_insert: Citus refuses triggers on a distributed table",
        ),
        (
            "ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
             CREATE POLICY narrow ON orders AS RESTRICTIVE USING (number > 0)",
            "public.orders has policy(ies) narrow: Citus makes every policy permissive on the shards",
        ),
    ] {
        let db = TestDb::new();
        let p = citus_project(&db, "");
        db.exec(setup);
        let before = db.snapshot();
        new_tenant_citus(&p);
        p.pgx()
            .db(&db)
            .args(["migrate", "up"])
            .fails()
            .stderr_has(message);
        assert_eq!(before.diff(&db.snapshot()), vec![], "{setup}");
        assert_eq!(db.scalar("SELECT count(*) FROM citus_calls").as_deref(), Some("0"));
    }
}

#[test]
fn citus_combinations_it_cannot_vouch_for_are_refused_when_rendering() {
    let p = Project::new();
    for (sets, message) in [
        (
            &["distribute=citus", "partitioned=true"][..],
            "distribute=citus cannot be combined with partitioned=true",
        ),
        (
            &["distribute=citus", "concurrently=true"][..],
            "distribute=citus cannot be combined with concurrently=true",
        ),
        (
            &["distribute=citus", "global_unique=orders_pkey"][..],
            "distribute=citus cannot keep global_unique keys",
        ),
    ] {
        let mut pgx = p.pgx().args(["new", "tenant", "orders"]);
        for set in sets {
            pgx = pgx.args(["--set", set]);
        }
        pgx.fails().stderr_has(message);
    }
    assert_eq!(p.files("migrations"), Vec::<String>::new());
}
