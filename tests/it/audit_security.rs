//! The audit pattern attacked by the weakest roles that could try: a table owner with nothing
//! but the default TEMP privilege, a role with CREATE on the database, the owner of a schema.
//! Each test asserts the role gained nothing (superuser, memberships, the log's contents) and
//! that the error, when there is one, names what is wrong.

use crate::support::{Project, TestDb, TestRole, try_rows};

type Rows = Vec<Vec<Option<String>>>;

fn as_role(db: &TestDb, role: &TestRole, sql: &str) -> Result<Rows, String> {
    try_rows(&db.url_as(&role.name), sql)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// `setup` then `pgx new audit TABLE extra...`, applied by the migrating role (a superuser).
fn audited(db: &TestDb, setup: &str, table: &str, extra: &[&str]) -> Project {
    let p = Project::new();
    p.add("setup", setup, "SELECT 1");
    let mut args = vec!["new", "audit", table];
    args.extend_from_slice(extra);
    p.pgx().args(&args).ok();
    p.pgx().db(db).args(["migrate", "up"]).ok();
    p
}

fn gained_nothing(db: &TestDb, role: &TestRole) {
    assert_eq!(
        db.rows(&format!(
            "SELECT rolsuper::text, (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)::text
             FROM pg_roles r WHERE rolname = '{}'",
            role.name
        )),
        vec![vec![s("false"), s("0")]],
        "{} gained rights",
        role.name
    );
}

/// Issue 9.1: a cast to json on a type the table owner made (in pg_temp, with the default TEMP
/// privilege only), reached by to_jsonb() through the column's type, a domain, an array or
/// composite fields at any depth, would run with the capture function's rights. The row is
/// recorded, with those values as their text, and the cast never runs.
#[test]
fn a_cast_to_json_on_a_column_type_never_runs_with_the_capture_functions_rights() {
    let owner = TestRole::new("audit_owner", "NOSUPERUSER");
    let db = TestDb::new();
    let _p = audited(
        &db,
        &format!(
            "CREATE TABLE t (id int PRIMARY KEY, v text); ALTER TABLE t OWNER TO {}",
            owner.name
        ),
        "t",
        &[],
    );
    // Each variant: the column type built on the enum (in the owner's pg_temp), and how the
    // value is written.
    let variants = [
        ("pg_temp.mood", "'ok'"),
        ("pg_temp.mood_domain", "'ok'"),
        ("pg_temp.mood[]", "ARRAY['ok']::pg_temp.mood[]"),
        (
            "pg_temp.outer_row",
            "ROW(ARRAY[ROW('ok')::pg_temp.inner_row])::pg_temp.outer_row",
        ),
    ];
    let mut recorded = Vec::new();
    for (i, (column_type, value)) in variants.iter().enumerate() {
        let attack = format!(
            "CREATE TYPE pg_temp.mood AS ENUM ('ok');
             CREATE DOMAIN pg_temp.mood_domain AS pg_temp.mood;
             CREATE TYPE pg_temp.inner_row AS (m pg_temp.mood);
             CREATE TYPE pg_temp.outer_row AS (items pg_temp.inner_row[]);
             CREATE FUNCTION pg_temp.escalate(pg_temp.mood) RETURNS json LANGUAGE plpgsql AS
               $$ BEGIN EXECUTE 'ALTER ROLE {0} SUPERUSER'; RETURN '\"pwned\"'; END $$;
             CREATE CAST (pg_temp.mood AS json) WITH FUNCTION pg_temp.escalate(pg_temp.mood);
             ALTER TABLE t ADD COLUMN c{i} {column_type};
             INSERT INTO t (id, c{i}) VALUES ({i}, {value});
             UPDATE t SET v = 'x' WHERE id = {i};
             SELECT 1",
            owner.name
        );
        // Whatever happens to the write, the cast must not have run as the capture's owner.
        let outcome = as_role(&db, &owner, &attack);
        gained_nothing(&db, &owner);
        assert!(
            outcome.is_ok(),
            "{column_type}: the write failed: {outcome:?}"
        );
        recorded.push(
            db.scalar(&format!(
                "SELECT new_row->>'c{i}' FROM audit.log WHERE operation = 'UPDATE' AND row_key = '{{\"id\": {i}}}'"
            ))
            .unwrap_or_default(),
        );
        // The temporary types go with the session; the column stays, of a type now dropped:
        // drop it for the next variant.
        db.exec(&format!("ALTER TABLE t DROP COLUMN IF EXISTS c{i}"));
    }
    assert_eq!(recorded.len(), 4);
    assert_eq!(recorded, ["ok", "ok", "{ok}", "(\"{(ok)}\")"]);
    assert!(
        db.column("SELECT new_row::text FROM audit.log")
            .iter()
            .all(|r| !r.contains("pwned")),
        "the cast's result reached the log"
    );
}

/// Issue 9.2: the schema the infrastructure goes into is owned, not assumed: created earlier by
/// a role with CREATE on the database, `public` (owned by pg_database_owner), or one another
/// role can create in, it is refused before anything is installed.
#[test]
fn an_audit_schema_another_role_owns_or_can_create_in_is_refused() {
    let squatter = TestRole::new("audit_squatter", "NOSUPERUSER");
    let cases = [
        (vec![], "schema audit belongs to role"),
        (
            vec!["--set", "audit_schema=public"],
            "schema public belongs to role pg_database_owner",
        ),
        (
            vec!["--set", "audit_schema=shared"],
            "schema shared is writable by",
        ),
    ];
    let mut refused = 0;
    for (extra, needle) in &cases {
        let db = TestDb::new();
        db.exec(&format!(
            "GRANT CREATE ON DATABASE {0} TO {1};
             CREATE SCHEMA shared; GRANT CREATE ON SCHEMA shared TO {1}",
            db.name, squatter.name
        ));
        as_role(&db, &squatter, "CREATE SCHEMA audit").unwrap();
        let p = Project::new();
        p.add(
            "setup",
            "CREATE TABLE t (id int PRIMARY KEY)",
            "DROP TABLE t",
        );
        let mut args = vec!["new", "audit", "t"];
        args.extend_from_slice(extra);
        p.pgx().args(&args).ok();
        p.pgx()
            .db(&db)
            .args(["migrate", "up"])
            .fails()
            .stderr_has(needle);
        refused += 1;
        assert_eq!(
            db.scalar(
                "SELECT count(*) FROM pg_class WHERE relname IN ('log', 'audited_table') OR relname LIKE 'audit%'"
            )
            .as_deref(),
            Some("0"),
            "{needle}: something was installed"
        );
        gained_nothing(&db, &squatter);
    }
    assert_eq!(refused, 3);
}

/// Issue 9.7: a partition attached with a trigger named like an audit trigger but doing
/// something else is an error naming it, not a partition left unaudited.
#[test]
fn a_look_alike_audit_trigger_on_an_attached_partition_is_an_error_naming_it() {
    let owner = TestRole::new("audit_owner", "NOSUPERUSER");
    let db = TestDb::new();
    let _p = audited(
        &db,
        &format!(
            "CREATE TABLE ev (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
             CREATE TABLE ev_eu PARTITION OF ev FOR VALUES IN ('eu');
             ALTER TABLE ev OWNER TO {0}; ALTER TABLE ev_eu OWNER TO {0};
             GRANT CREATE ON SCHEMA public TO {0}",
            owner.name
        ),
        "ev",
        &[],
    );
    let err = as_role(
        &db,
        &owner,
        "CREATE TABLE ev_us (id int NOT NULL, region text NOT NULL);
         CREATE FUNCTION nothing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER audit_insert AFTER INSERT ON ev_us FOR EACH STATEMENT EXECUTE FUNCTION nothing();
         ALTER TABLE ev ATTACH PARTITION ev_us FOR VALUES IN ('us')",
    )
    .unwrap_err();
    assert!(
        err.contains("public.ev_us has a trigger audit_insert that is not the audit trigger: it runs public.nothing"),
        "{err}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'ev'::regclass")
            .as_deref(),
        Some("1"),
        "the attach was rolled back"
    );
    // Created as a partition directly, with no look-alike, it is audited as usual.
    as_role(
        &db,
        &owner,
        "CREATE TABLE ev_asia PARTITION OF ev FOR VALUES IN ('asia'); INSERT INTO ev VALUES (1, 'asia')",
    )
    .unwrap();
    assert_eq!(
        db.column("SELECT partition_name IS NULL FROM audit.log"),
        ["t"]
    );
}

/// Issue 19: excluding a key column is refused when the migration is applied, with nothing
/// installed on the table.
#[test]
fn excluding_a_key_column_is_refused_by_the_database() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE k (a int, b int, v text)",
        "DROP TABLE t, k",
    );
    p.pgx()
        .args(["new", "audit", "t", "--set", "exclude=v,id"])
        .ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("a key column of public.t cannot be excluded");
    for f in p.files("migrations") {
        if f.contains("_audit_t.") {
            std::fs::remove_file(p.join(&format!("migrations/{f}"))).unwrap();
        }
    }
    p.pgx()
        .args([
            "new",
            "audit",
            "k",
            "--set",
            "key=a,b",
            "--set",
            "exclude=b",
        ])
        .ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("a key column of public.k cannot be excluded");
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('t'::regclass, 'k'::regclass)"
        )
        .as_deref(),
        Some("0")
    );
}

/// Issue 19: every SECURITY DEFINER function of the infrastructure, called with a search_path
/// that lists the attacker's schema BEFORE pg_catalog, holding look-alikes of what the functions
/// use unqualified (the `=` an IS DISTINCT FROM and an IN resolve, functions that make the
/// attacker a superuser). Nothing the functions do or record changes.
#[test]
fn a_search_path_with_pg_catalog_after_the_attackers_schema_changes_nothing() {
    let app = TestRole::new("audit_app", "NOSUPERUSER");
    let db = TestDb::new();
    let _p = audited(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         CREATE TABLE ev (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE u (id int PRIMARY KEY, secret text)",
        "t",
        &[],
    );
    let p = _p;
    p.pgx().args(["new", "audit", "ev"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec(&format!(
        "GRANT INSERT, UPDATE ON t TO {0};
         CREATE SCHEMA {0} AUTHORIZATION {0};
         GRANT CREATE, TEMPORARY ON DATABASE {1} TO {0};",
        app.name, db.name
    ));
    // Look-alikes, owned by the attacker: every one makes it a superuser when it runs with
    // enough rights, and answers so that what is recorded would differ.
    let decoys = format!(
        "CREATE FUNCTION {0}.escalate() RETURNS boolean LANGUAGE plpgsql AS
           $$ BEGIN EXECUTE 'ALTER ROLE {0} SUPERUSER'; RETURN true; EXCEPTION WHEN insufficient_privilege THEN RETURN true; END $$;
         CREATE FUNCTION {0}.jsonb_eq(jsonb, jsonb) RETURNS boolean LANGUAGE sql AS 'SELECT {0}.escalate()';
         CREATE OPERATOR {0}.= (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = {0}.jsonb_eq);
         CREATE FUNCTION {0}.text_eq(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT {0}.escalate() AND $1 OPERATOR(pg_catalog.=) $2';
         CREATE OPERATOR {0}.= (LEFTARG = text, RIGHTARG = text, FUNCTION = {0}.text_eq);
         CREATE FUNCTION {0}.name_eq(name, name) RETURNS boolean LANGUAGE sql AS 'SELECT {0}.escalate()';
         CREATE OPERATOR {0}.= (LEFTARG = name, RIGHTARG = name, FUNCTION = {0}.name_eq);
         CREATE FUNCTION {0}.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT ''1999-01-01''::timestamptz WHERE {0}.escalate()';
         CREATE FUNCTION {0}.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS 'SELECT ''{{\"forged\": true}}''::jsonb WHERE {0}.escalate()';",
        app.name
    );
    as_role(&db, &app, &decoys).unwrap();
    as_role(
        &db,
        &app,
        &format!(
            "SET search_path = {0}, pg_catalog, public;
             SET app.user_id = 7;
             INSERT INTO public.t VALUES (1, 'a');
             UPDATE public.t SET v = 'b';
             UPDATE public.t SET v = 'b'",
            app.name
        ),
    )
    .unwrap();
    // The superuser's own DDL with that search_path (say, through a "$user" schema): the event
    // triggers and the functions they call.
    db.exec(&format!(
        "SET search_path = {0}, pg_catalog, public;
         CREATE TABLE public.ev_eu PARTITION OF public.ev FOR VALUES IN ('eu');
         CREATE TABLE public.ev_us (id int NOT NULL, region text NOT NULL);
         ALTER TABLE public.ev ATTACH PARTITION public.ev_us FOR VALUES IN ('us');
         DROP TABLE public.ev_us;
         SELECT audit.register_table('public.u', '{{}}', '{{secret}}', true, 1048576)",
        app.name
    ));
    assert_eq!(
        db.rows("SELECT key_columns::text, excluded_columns::text, excluded_names::text FROM audit.audited_table WHERE relid = 'u'::regclass"),
        vec![vec![None, s("{2}"), s("{secret}")]]
    );
    db.exec(&format!(
        "SET search_path = {0}, pg_catalog, public; SELECT audit.unregister_table('public.u')",
        app.name
    ));
    gained_nothing(&db, &app);
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit.audited_table WHERE relid = 'u'::regclass")
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        db.rows(
            "SELECT operation, row_key::text, new_row::text, changed_columns::text, actor::text, logged_at > '2000-01-01'
             FROM audit.log ORDER BY id"
        ),
        vec![
            vec![s("INSERT"), s(r#"{"id": 1}"#), s(r#"{"v": "a", "id": 1}"#), None, s("7"), s("t")],
            vec![s("UPDATE"), s(r#"{"id": 1}"#), s(r#"{"v": "b", "id": 1}"#), s("{v}"), s("7"), s("t")],
        ],
        "the no-op UPDATE is skipped and the real one names its change"
    );
    assert_eq!(
        db.column(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'ev_eu'::regclass ORDER BY tgname"
        ),
        [
            "audit_delete",
            "audit_insert",
            "audit_truncate",
            "audit_update"
        ]
    );
}

/// Every PL/pgSQL function of the infrastructure passes plpgsql_check (the trigger function with
/// both transition tables of an audited table).
#[test]
fn every_function_passes_plpgsql_check() {
    let db = TestDb::new();
    let _p = audited(&db, "CREATE TABLE t (id int PRIMARY KEY, v text)", "t", &[]);
    db.exec("CREATE EXTENSION IF NOT EXISTS plpgsql_check");
    let checked = db.column(
        "SELECT p.oid::regprocedure::text FROM pg_proc p
         WHERE p.pronamespace = 'audit'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
         ORDER BY 1",
    );
    assert_eq!(
        checked,
        [
            "audit.attach_partitions(regclass)",
            "audit.capture()",
            "audit.forbid_change()",
            "audit.history(regclass,jsonb)",
            "audit.on_ddl()",
            "audit.on_drop()",
            "audit.register_table(regclass,text[],text[],boolean,integer)",
            "audit.unregister_table(regclass)",
        ]
    );
    let problems = db.column(
        "SELECT p.oid::regprocedure || ': ' || c.lineno || ': ' || c.message
         FROM pg_proc p
         CROSS JOIN LATERAL plpgsql_check_function_tb(p.oid,
             CASE WHEN p.prorettype = 'trigger'::regtype THEN 't'::regclass ELSE 0 END,
             extra_warnings => true, performance_warnings => true,
             oldtable => CASE WHEN p.proname = 'capture' THEN 'old_rows' END,
             newtable => CASE WHEN p.proname = 'capture' THEN 'new_rows' END,
             anyelememttype => 'public.t'::regtype) c
         WHERE p.pronamespace = 'audit'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')",
    );
    assert_eq!(problems, Vec::<String>::new());
}
