//! What `tenant` creates or runs with elevated rights, attacked by the weakest role that could
//! try: the owner of the table's schema (in PostgreSQL 15, `public` belongs to the database
//! owner), the owner of the table, a role naming a parameter. Each attack asserts that the
//! attacker gained nothing and that the error, if any, says what is wrong.

use crate::support::{Project, TestDb, TestRole};
use crate::tenant_support::*;

fn is_superuser(db: &TestDb, role: &TestRole) -> String {
    db.scalar(&format!(
        "SELECT rolsuper::text FROM pg_roles WHERE rolname = '{}'",
        role.name
    ))
    .unwrap()
}

/// A role's functions that, run by a superuser, would make it superuser and leave a trace.
fn planted(role: &TestRole) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS public.pwned (who text);
         GRANT ALL ON public.pwned TO PUBLIC;
         CREATE FUNCTION public.escalate() RETURNS void LANGUAGE plpgsql AS $$
         BEGIN
             INSERT INTO public.pwned VALUES (current_user);
             IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                 ALTER ROLE {0} SUPERUSER;
             END IF;
         END $$;",
        role.name
    )
}

#[test]
fn the_owner_of_the_tables_schema_gains_nothing_when_a_superuser_creates_a_partition() {
    let db = TestDb::new();
    let owner = TestRole::new("pgx_dbowner", "NOSUPERUSER NOBYPASSRLS");
    // The database owner owns `public` (pg_database_owner) and may create schemas.
    db.exec(&format!(
        "ALTER DATABASE {} OWNER TO {}",
        db.name, owner.name
    ));
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "events",
        "CREATE TABLE events (id bigint NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);",
        "DROP TABLE events;",
    );
    new_tenant_as_given(&p, "events", &["partitioned=true"]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    // Everything the schema owner can put where the old helper lived, or where a name could
    // resolve: a function of the helper's old name, look-alikes of what the helper calls, an
    // operator; and attempts at pgx's own schema.
    ok_as(
        &db,
        &owner,
        &format!(
            "{}
             CREATE FUNCTION public.events_isolate_partition(regclass) RETURNS void LANGUAGE sql AS 'SELECT public.escalate()';
             CREATE FUNCTION public.tenant_isolate_partition(regclass, regclass) RETURNS void LANGUAGE sql AS 'SELECT public.escalate()';
             CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE sql AS 'SELECT public.escalate()::text';
             CREATE FUNCTION public.pg_partition_root(regclass) RETURNS regclass LANGUAGE sql AS 'SELECT public.escalate(); SELECT NULL::regclass';
             CREATE FUNCTION public.eq(regclass, regclass) RETURNS boolean LANGUAGE sql AS 'SELECT public.escalate(); SELECT true';
             CREATE OPERATOR public.= (LEFTARG = regclass, RIGHTARG = regclass, FUNCTION = public.eq);",
            planted(&owner)
        ),
    );
    for attempt in [
        "CREATE OR REPLACE FUNCTION pgx.tenant_isolate_partition(partition regclass, root regclass) RETURNS void LANGUAGE sql AS 'SELECT public.escalate()'",
        "DROP FUNCTION pgx.tenant_isolate_partition(regclass, regclass)",
        "UPDATE pgx.tenant_tables SET partitions = false",
        "CREATE FUNCTION pgx.escalate() RETURNS void LANGUAGE sql AS 'SELECT 1'",
    ] {
        let err = as_role(&db, &owner, attempt).unwrap_err();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{attempt}: {err}"
        );
    }

    // The superuser's DDL, which fires the event trigger.
    db.exec(
        "SET search_path = public, pg_catalog;
         CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE events_2025 (LIKE events);
         ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');",
    );
    assert_eq!(is_superuser(&db, &owner), "false");
    assert_eq!(
        db.column("SELECT who FROM pwned"),
        Vec::<String>::new(),
        "nothing ran"
    );
    // And the partitions are isolated.
    assert_eq!(
        db.column("SELECT count(*) FROM pg_policy WHERE polrelid IN ('events_2024'::regclass, 'events_2025'::regclass)"),
        ["4"]
    );
}

#[test]
fn pgx_refuses_a_schema_that_another_role_owns_or_can_create_in() {
    let db = TestDb::new();
    let squatter = TestRole::new("pgx_squatter", "NOSUPERUSER");
    db.exec(&format!(
        "GRANT CREATE ON DATABASE {} TO {}",
        db.name, squatter.name
    ));
    // Created before pgx's install by a role with CREATE on the database.
    ok_as(&db, &squatter, "CREATE SCHEMA pgx");
    let p = Project::new();
    install_pgx(&p);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!(
            "schema pgx belongs to role {}, not to postgres: pgx keeps objects there that run with elevated rights",
            squatter.name
        ));
    db.exec("DROP SCHEMA pgx");
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    // Opened to another role later: the next tenant migration refuses it.
    db.exec(&format!(
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
         GRANT CREATE ON SCHEMA pgx TO {}",
        squatter.name
    ));
    new_tenant(&p, "orders", &[]);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!(
            "schema pgx is writable by {} besides its owner postgres",
            squatter.name
        ));
    db.exec(&format!(
        "REVOKE CREATE ON SCHEMA pgx FROM {0}; GRANT postgres TO {0}",
        squatter.name
    ));
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!(
            "schema pgx is writable by {} besides its owner postgres",
            squatter.name
        ));
    db.exec(&format!("REVOKE postgres FROM {}", squatter.name));
    p.pgx().db(&db).args(["migrate", "up"]).ok();
}

/// The table's owner rewrites what it can (comments, its table's indexes, functions in
/// a schema it may create in, the registry if it could); a superuser's `migrate down` then
/// runs none of it.
#[test]
fn a_superusers_down_runs_nothing_the_tables_owner_wrote() {
    let db = TestDb::new();
    let app = app_role();
    db.exec(&format!("GRANT CREATE ON SCHEMA public TO {}", app.name));
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "orders",
        &format!(
            "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text UNIQUE, tenant_id uuid DEFAULT '{A}');
             ALTER TABLE orders OWNER TO {};",
            app.name
        ),
        "DROP TABLE orders;",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();
    new_tenant(
        &p,
        "orders",
        &[
            "add_column=false",
            "unique=email",
            &format!("role={}", app.name),
        ],
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    // In the set-up of the old attack the owner owned the function whose comment held the
    // state; give it that, and let it write what the old down migration executed.
    db.exec(&format!(
        "ALTER FUNCTION orders_current_tenant() OWNER TO {}",
        app.name
    ));
    let hostile = r#"{"column_default": "public.escalate()", "replaced": [{"name": "x", "constraint": false, "definition": "SELECT public.escalate()"}], "secured_views": ["(SELECT public.escalate())"], "privileges_held": []}"#;
    ok_as(
        &db,
        &app,
        &format!(
            "{}
             COMMENT ON FUNCTION orders_current_tenant() IS '{hostile}';
             COMMENT ON TABLE orders IS '{hostile}';
             CREATE FUNCTION public.jsonb_to_recordset(jsonb) RETURNS SETOF record LANGUAGE sql AS 'SELECT public.escalate(); SELECT NULL::record';
             CREATE FUNCTION public.escalate_indexed(int) RETURNS int LANGUAGE plpgsql IMMUTABLE
                 AS $$ BEGIN PERFORM public.escalate(); RETURN $1; END $$;
             CREATE INDEX orders_planted ON orders ((public.escalate_indexed(1)));",
            planted(&app)
        ),
    );
    for attempt in [
        "UPDATE pgx.tenant_tables SET restore = '{}'",
        "INSERT INTO pgx.tenant_tables (relid, tenant_column, current_tenant, isolation_policy, partitions, citus) VALUES ('orders', 'x', 'orders_current_tenant()', 'x', false, false)",
        "SELECT restore FROM pgx.tenant_tables",
        "SELECT pgx.tenant_create_key('{}')",
    ] {
        let err = as_role(&db, &app, attempt).unwrap_err();
        assert!(err.contains("permission denied"), "{attempt}: {err}");
    }
    db.exec("TRUNCATE pwned");

    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(is_superuser(&db, &app), "false");
    assert_eq!(
        db.column("SELECT who FROM pwned"),
        Vec::<String>::new(),
        "nothing ran"
    );
    // Restored from pgx's record, not from anything the owner wrote: the default and the
    // global unique key are back, the owner's own index stays its own.
    let after = db.snapshot();
    assert_eq!(
        after.objects["column public.orders.tenant_id"],
        before.objects["column public.orders.tenant_id"]
    );
    assert_eq!(
        after.objects["constraint public.orders.orders_email_key"],
        "UNIQUE (email)"
    );
}

/// Every parameter of the tenant pattern that takes free text gets a value built to end a
/// dollar-quoted body or a quoted name and run a statement of its own; `migrate up --dry-run`
/// run through psql (which goes on after errors) must never run it.
#[test]
fn no_parameter_value_can_smuggle_sql_into_the_dry_run_script() {
    let catalog = pgx::pattern::Catalog::builtin().unwrap();
    let tenant = catalog.get("tenant").unwrap();
    let payload = "$pgx$; CREATE TABLE smuggled (); --";
    let mut tried = 0;
    for param in &tenant.parameters {
        use pgx::pattern::params::ParamType as T;
        let value = match param.ty {
            T::Reference => format!("\"x{payload}\"(id)"),
            T::Identifier | T::IdentifierList | T::QualifiedIdentifier => format!("x{payload}"),
            T::String => format!("a.b{payload}' || '"),
            // Parsed into a fixed form that holds no free text.
            T::Integer | T::Boolean | T::Enum | T::Interval | T::Duration => continue,
        };
        tried += 1;
        let db = TestDb::new();
        db.exec(
            "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
             CREATE TABLE \"x$pgx$; CREATE TABLE smuggled (); --\" (id uuid PRIMARY KEY);",
        );
        let p = Project::new();
        let run = p
            .pgx()
            .args([
                "new",
                "tenant",
                "orders",
                "--set",
                "global_unique=orders_pkey",
                "--set",
            ])
            .arg(format!("{}={value}", param.name))
            .run();
        if !run.success {
            // Refused before anything was written: fine, as long as it says why.
            assert!(
                run.stderr.starts_with("error: "),
                "{}: {}",
                param.name,
                run.stderr
            );
            continue;
        }
        let script = p
            .pgx()
            .db(&db)
            .args(["migrate", "up", "--dry-run"])
            .ok()
            .stdout;
        assert!(
            script.contains(payload) || script.contains("smuggled"),
            "{}: the value is in the script",
            param.name
        );
        let (_, out, err) = psql(&db.url, &script, false);
        assert!(
            out.contains("CREATE SCHEMA"),
            "psql ran the script: {out}{err}"
        );
        assert_eq!(
            db.scalar("SELECT to_regclass('public.smuggled') IS NULL")
                .as_deref(),
            Some("t"),
            "{} = {value:?} smuggled a statement into:\n{script}",
            param.name
        );
    }
    assert!(tried >= 8, "{tried} parameters tried");
}

#[test]
fn a_look_alike_policy_is_an_error_naming_it_not_a_reason_to_skip() {
    let db = TestDb::new();
    let app = app_role();
    let p = events_owned_by(
        &db,
        &app,
        "",
        &format!("GRANT CREATE ON SCHEMA public TO {};", app.name),
    );
    // The partition's owner plants a policy of pgx's name that lets everything through.
    ok_as(
        &db,
        &app,
        "ALTER TABLE events_2024 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY events_tenant_isolation ON events_2024 USING (true) WITH CHECK (true);",
    );
    let before = db.snapshot();
    new_tenant_as_given(&p, "events", &["partitioned=true"]);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("policy events_tenant_isolation on public.events_2024 is not pgx's tenant policy of that name: it is PERMISSIVE FOR * USING (true) WITH CHECK (true)");
    assert_eq!(before.diff(&db.snapshot()), vec![], "nothing changed");

    ok_as(
        &db,
        &app,
        "DROP POLICY events_tenant_isolation ON events_2024",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    // A table attached later with a look-alike is refused too: the ATTACH fails.
    let err = as_role(
        &db,
        &app,
        "CREATE TABLE events_2025 (LIKE events);
         ALTER TABLE events_2025 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY events_tenant_isolation ON events_2025 AS RESTRICTIVE USING (true);
         ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');",
    )
    .unwrap_err();
    assert!(
        err.contains("policy events_tenant_isolation on public.events_2025 is not pgx's tenant policy of that name"),
        "{err}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_inherits WHERE inhrelid = to_regclass('events_2025')")
            .as_deref(),
        Some("0")
    );
}

#[test]
fn a_down_restores_row_security_that_was_on_before_the_up() {
    for (flags, enabled, forced) in [
        ("ENABLE ROW LEVEL SECURITY", "true", "false"),
        (
            "ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
            "true",
            "true",
        ),
        ("FORCE ROW LEVEL SECURITY", "false", "true"),
    ] {
        let db = TestDb::new();
        let app = app_role();
        let p = orders_owned_by(&db, &app);
        db.exec(&format!("ALTER TABLE orders {flags}; CREATE POLICY own_policy ON orders USING (item <> 'hidden')"));
        let before = db.snapshot();
        new_tenant(&p, "orders", &[]);
        p.pgx().db(&db).args(["migrate", "up"]).ok();
        p.pgx().db(&db).args(["migrate", "down"]).ok();
        assert_eq!(
            db.rows("SELECT relrowsecurity::text, relforcerowsecurity::text FROM pg_class WHERE oid = 'orders'::regclass"),
            [[Some(enabled.to_string()), Some(forced.to_string())]],
            "{flags}"
        );
        assert_eq!(before.diff(&db.snapshot()), vec![], "{flags}");
    }
}

/// The DO blocks of `sql`, each checked by plpgsql_check as the body of a function; returns
/// how many there were.
fn check_do_blocks(db: &TestDb, what: &str, sql: &str) -> usize {
    let mut blocks = 0;
    let mut rest = sql;
    while let Some(at) = rest.find("DO $pgx") {
        let after = &rest[at + 3..];
        let tag_end = after[1..].find('$').unwrap() + 2;
        let tag = &after[..tag_end];
        let body_end = after[tag_end..].find(tag).unwrap() + tag_end;
        let body = &after[tag_end..body_end];
        blocks += 1;
        let name = format!("pg_temp.do_block_{blocks}");
        let problems: Vec<String> = db
            .rows(&format!(
                "CREATE FUNCTION {name}() RETURNS void LANGUAGE plpgsql AS {tag}{body}{tag};
                 SELECT c FROM plpgsql_check_function('{name}()', fatal_errors := false, extra_warnings := true) c"
            ))
            .into_iter()
            .filter_map(|r| r[0].clone())
            .collect();
        assert_eq!(
            problems,
            Vec::<String>::new(),
            "{what}, DO block {blocks}:\n{body}"
        );
        rest = &after[body_end + tag.len()..];
    }
    blocks
}

/// Every PL/pgSQL function pgx_install creates, and every DO block the tenant pattern renders
/// with any of its options (checked as the body of a function), passes plpgsql_check.
#[test]
fn generated_plpgsql_passes_plpgsql_check() {
    let db = TestDb::new();
    let app = app_role();
    let p = orders_owned_by(&db, &app);
    db.exec(
        "CREATE EXTENSION plpgsql_check;
         -- Citus's functions, for the distribute=citus rendering to refer to.
         CREATE FUNCTION pg_catalog.create_distributed_table(regclass, text) RETURNS void LANGUAGE sql AS 'SELECT';
         CREATE FUNCTION pg_catalog.undistribute_table(regclass) RETURNS void LANGUAGE sql AS 'SELECT';",
    );
    p.add(
        "events",
        "CREATE TABLE events (id bigint NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
         CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE tenants (id uuid PRIMARY KEY);",
        "DROP TABLE events, tenants;",
    );
    new_tenant(
        &p,
        "orders",
        &[
            "unique=item",
            "composite_keys=true",
            "secure_views=true",
            &format!("role={}", app.name),
            "view=my_orders",
            "references=tenants(id)",
        ],
    );
    new_tenant_as_given(&p, "events", &["partitioned=true", "type=text"]);
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let problems = db.rows(
        "SELECT p.oid::regprocedure::text, c
         FROM pg_proc p, plpgsql_check_function(p.oid, fatal_errors := false, extra_warnings := true) c
         WHERE p.pronamespace = 'pgx'::regnamespace
           AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
           AND p.prorettype <> 'event_trigger'::regtype",
    );
    assert_eq!(problems, Vec::<Vec<Option<String>>>::new());
    let checked_functions = db.scalar(
        "SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'pgx'::regnamespace
           AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')",
    );
    assert_eq!(checked_functions.as_deref(), Some("5"));

    // The DO blocks of the applied migrations, and of renderings with every other option.
    let mut blocks = 0;
    for file in p.files("migrations") {
        blocks += check_do_blocks(&db, &file, &p.read(&format!("migrations/{file}")));
    }
    for sets in [
        &[
            "add_column=false",
            "backfill=00000000-0000-0000-0000-000000000001",
            "strict=true",
            "global_unique=orders_pkey",
        ][..],
        &[
            "concurrently=true",
            "unique=item",
            "global_unique=orders_pkey",
        ],
        &[
            "concurrently=true",
            "add_column=false",
            "references=tenants(id)",
            "global_unique=orders_pkey",
        ],
        &["distribute=citus", "unique=item", "type=bigint"],
        &[
            "type=integer",
            "global_unique=orders_pkey",
            "composite_keys=true",
        ],
    ] {
        let mut pgx = p.pgx().args(["new", "tenant", "orders", "--dry-run"]);
        for set in sets {
            pgx = pgx.args(["--set", set]);
        }
        blocks += check_do_blocks(&db, &sets.join(" "), &pgx.ok().stdout);
    }
    assert!(blocks >= 60, "{blocks} DO blocks checked");
}
