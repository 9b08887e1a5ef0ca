//! The `audit` and `audit_uninstall` patterns, end to end on the real database.

use crate::support::{Project, TestDb, TestRole, try_rows};

type Rows = Vec<Vec<Option<String>>>;

/// A project whose first migration runs `setup`, then one audit migration per `audits` entry
/// (table and extra `pgx new` arguments), all applied.
fn audited(db: &TestDb, setup: &str, audits: &[(&str, &[&str])]) -> Project {
    let p = Project::new();
    p.add("setup", setup, "SELECT 1");
    for (table, extra) in audits {
        let mut args = vec!["new", "audit", table];
        args.extend_from_slice(extra);
        p.pgx().args(&args).ok();
    }
    p.pgx().db(db).args(["migrate", "up"]).ok();
    p
}

fn as_role(db: &TestDb, role: &TestRole, sql: &str) -> Result<Rows, String> {
    try_rows(&db.url_as(&role.name), sql)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

const ORDERS: &str = "CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    card_token text,
    total numeric(10,2) NOT NULL DEFAULT 0,
    placed_at timestamptz NOT NULL DEFAULT '2024-01-02 03:04:05+00'
)";

#[test]
fn rendering_matches_the_snapshot() {
    let p = Project::new();
    let check = |name: &str, args: &[&str]| {
        if !args.is_empty() {
            let mut all = vec!["new"];
            all.extend_from_slice(args);
            all.extend_from_slice(&["--name", name]);
            p.pgx().args(&all).ok();
        }
        for kind in ["up", "down"] {
            let file = p
                .files("migrations")
                .into_iter()
                .find(|f| f.ends_with(&format!("_{name}.{kind}.sql")))
                .unwrap();
            let rendered = p.read(&format!("migrations/{file}"));
            let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/it/snapshots/audit/{name}.{kind}.sql"));
            if std::env::var_os("PGX_BLESS").is_some() {
                std::fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
                std::fs::write(&snapshot, &rendered).unwrap();
            }
            let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
            assert!(
                rendered == expected,
                "{} differs from the rendering (PGX_BLESS=1 rewrites it):\n{rendered}",
                snapshot.display()
            );
        }
    };
    check(
        "audit_sales_order_items",
        &[
            "audit",
            "Order Items",
            "--schema",
            "Sales",
            "--set",
            "exclude=card_token",
            "--set",
            "reader=auditor",
            "--set",
            "actor_type=uuid",
        ],
    );
    // Written first by the command above, with its shared settings.
    check("audit_install", &[]);
    check("audit_uninstall", &["audit_uninstall"]);
}

#[test]
fn bad_parameters_fail_before_writing_anything() {
    let p = Project::new();
    for (args, needle) in [
        (vec!["--set", "actor_type=int"], "actor_type"),
        (vec!["--set", "actor_setting=user_id"], "actor_setting"),
        // PostgreSQL refuses this name only when the setting is first read: every actor would
        // silently be NULL.
        (
            vec!["--set", "actor_setting=app.user-id"],
            "actor_setting must be a custom setting name PostgreSQL accepts",
        ),
        (
            vec!["--set", "actor_setting=app.1st"],
            "actor_setting must be a custom setting name PostgreSQL accepts",
        ),
        (vec!["--set", "audit_schema=a$pgx$b"], "cannot contain `$`"),
    ] {
        let mut all = vec!["new", "audit", "orders"];
        all.extend_from_slice(&args);
        p.pgx().args(&all).fails().stderr_has(needle);
    }
    assert_eq!(p.files("migrations"), Vec::<String>::new());
}

#[test]
fn records_every_operation_with_key_rows_changes_actor_and_application() {
    let db = TestDb::new();
    let _p = audited(&db, ORDERS, &[("orders", &[])]);
    db.exec(
        "SET application_name = 'shop'; SET app.user_id = 42;
         INSERT INTO orders (customer_id, status) VALUES (1, 'new'), (2, 'new');
         UPDATE orders SET status = 'paid', total = 9.5 WHERE id = 1;
         DELETE FROM orders WHERE id = 2;
         TRUNCATE orders;",
    );
    let log = db.rows(
        "SELECT operation, table_name, row_key::text, new_row->>'status', old_row->>'status',
                changed_columns::text, actor::text, application_name, db_role,
                txid = (SELECT max(txid) FROM audit.log), schema_name
         FROM audit.log ORDER BY id",
    );
    let row =
        |op: &str, key: Option<&str>, new: Option<&str>, old: Option<&str>, ch: Option<&str>| {
            vec![
                s(op),
                s("orders"),
                key.map(String::from),
                new.map(String::from),
                old.map(String::from),
                ch.map(String::from),
                s("42"),
                s("shop"),
                s("postgres"),
                s("t"),
                s("public"),
            ]
        };
    assert_eq!(
        log,
        vec![
            row("INSERT", Some(r#"{"id": 1}"#), Some("new"), None, None),
            row("INSERT", Some(r#"{"id": 2}"#), Some("new"), None, None),
            row(
                "UPDATE",
                Some(r#"{"id": 1}"#),
                Some("paid"),
                Some("new"),
                Some("{total,status}")
            ),
            row("DELETE", Some(r#"{"id": 2}"#), None, Some("new"), None),
            row("TRUNCATE", None, None, None, None),
        ],
        "one statement in one transaction: one txid for all"
    );
    // Rows are whole (every column, typed) and timestamps are recorded in UTC whatever the
    // session's time zone.
    let first = db.scalar("SELECT new_row::text FROM audit.log ORDER BY id LIMIT 1");
    assert_eq!(
        first.as_deref(),
        Some(
            r#"{"id": 1, "total": 0.00, "status": "new", "placed_at": "2024-01-02T03:04:05+00:00", "card_token": null, "customer_id": 1}"#
        )
    );

    // History: in order, with the TRUNCATE that removed the row still there.
    let history = db.column("SELECT operation FROM audit.history('orders', '{\"id\": 1}')");
    assert_eq!(history, ["INSERT", "UPDATE", "TRUNCATE"]);
    let by_name =
        db.column("SELECT operation FROM audit.history('public', 'orders', '{\"id\": 2}')");
    assert_eq!(
        by_name,
        ["INSERT", "DELETE"],
        "a deleted row is not truncated again"
    );
}

#[test]
fn keys_of_any_type_and_composite_keys_identify_rows() {
    let db = TestDb::new();
    let setup = "CREATE TABLE by_int (id integer PRIMARY KEY, v text);
        CREATE TABLE by_uuid (id uuid PRIMARY KEY, v text);
        CREATE TABLE by_text (code text PRIMARY KEY, v text);
        CREATE TABLE by_pair (tenant integer, at timestamptz, v text, PRIMARY KEY (tenant, at));";
    let none: &[&str] = &[];
    let _p = audited(
        &db,
        setup,
        &[
            ("by_int", none),
            ("by_uuid", none),
            ("by_text", none),
            ("by_pair", none),
        ],
    );
    db.exec(
        "INSERT INTO by_int VALUES (7, 'a'); UPDATE by_int SET v = 'b';
         INSERT INTO by_uuid VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'a'); UPDATE by_uuid SET v = 'b';
         INSERT INTO by_text VALUES ('Ünïcode key', 'a'); UPDATE by_text SET v = 'b';
         SET TimeZone = 'Asia/Tokyo';
         INSERT INTO by_pair VALUES (1, '2024-05-01 09:00+09', 'a');
         SET TimeZone = 'America/New_York';
         UPDATE by_pair SET v = 'b';
         UPDATE by_pair SET tenant = 2;",
    );
    let keys = db.column("SELECT table_name || ' ' || row_key::text FROM audit.log ORDER BY id");
    assert_eq!(
        keys,
        [
            r#"by_int {"id": 7}"#,
            r#"by_int {"id": 7}"#,
            r#"by_uuid {"id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}"#,
            r#"by_uuid {"id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}"#,
            r#"by_text {"code": "Ünïcode key"}"#,
            r#"by_text {"code": "Ünïcode key"}"#,
            r#"by_pair {"at": "2024-05-01T00:00:00+00:00", "tenant": 1}"#,
            r#"by_pair {"at": "2024-05-01T00:00:00+00:00", "tenant": 1}"#,
            r#"by_pair {"at": "2024-05-01T00:00:00+00:00", "tenant": 2}"#,
        ],
        "keys written in different time zones are the same key"
    );
    for (table, key, n) in [
        ("by_int", r#"{"id": "7"}"#, 2),
        (
            "by_uuid",
            r#"{"id": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"}"#,
            2,
        ),
        ("by_text", r#"{"code": "Ünïcode key"}"#, 2),
        // The key as the application would write it, in its own time zone; the row's key
        // changed, so its history shows under both keys.
        (
            "by_pair",
            r#"{"tenant": 1, "at": "2024-05-01 02:00+02"}"#,
            3,
        ),
        ("by_pair", r#"{"tenant": 2, "at": "2024-05-01 00:00Z"}"#, 1),
    ] {
        let ops = db.column(&format!(
            "SELECT operation FROM audit.history('{table}', '{key}') "
        ));
        assert_eq!(ops.len(), n, "{table} {key}: {ops:?}");
    }
    assert_eq!(
        db.scalar("SELECT old_key::text FROM audit.log WHERE table_name = 'by_pair' AND row_key->>'tenant' = '2'")
            .as_deref(),
        Some(r#"{"at": "2024-05-01T00:00:00+00:00", "tenant": 1}"#)
    );
    let err = db
        .try_rows("SELECT * FROM audit.history('by_int', '{\"nope\": 1}')")
        .unwrap_err();
    assert!(err.contains("has no column nope"), "{err}");
}

#[test]
fn excluded_columns_stay_out_even_after_a_rename_and_no_op_updates_are_skipped() {
    let db = TestDb::new();
    let setup = format!("{ORDERS}; CREATE TABLE notes (id int PRIMARY KEY, body text)");
    let _p = audited(
        &db,
        &setup,
        &[
            ("orders", &["--set", "exclude=card_token"]),
            ("notes", &["--set", "skip_unchanged=false"]),
        ],
    );
    db.exec(
        "INSERT INTO orders (customer_id, status, card_token) VALUES (1, 'new', 'tok_secret');
         UPDATE orders SET status = status;
         UPDATE orders SET card_token = 'tok_other';
         ALTER TABLE orders RENAME COLUMN card_token TO payment_token;
         UPDATE orders SET payment_token = 'tok_third', status = 'paid';
         DELETE FROM orders;
         INSERT INTO notes VALUES (1, 'x');
         UPDATE notes SET body = body;",
    );
    let log = db.column("SELECT operation || ' ' || coalesce(new_row, old_row)::text || ' ' || coalesce(changed_columns::text, '-') FROM audit.log ORDER BY id");
    for line in &log {
        assert!(!line.contains("tok_"), "secret recorded: {line}");
        assert!(!line.contains("token"), "excluded column named: {line}");
    }
    let ops = db.column("SELECT table_name || ' ' || operation || ' ' || coalesce(changed_columns::text, '-') FROM audit.log ORDER BY id");
    assert_eq!(
        ops,
        [
            "orders INSERT -",
            "orders UPDATE {status}",
            "orders DELETE -",
            "notes INSERT -",
            "notes UPDATE {}",
        ],
        "no-op UPDATEs (and ones touching only excluded columns) record nothing unless skip_unchanged=false"
    );
}

#[test]
fn an_unset_empty_reset_or_malformed_actor_never_fails_the_write() {
    let db = TestDb::new();
    let _p = audited(&db, "CREATE TABLE t (id int PRIMARY KEY)", &[("t", &[])]);
    for (n, prelude) in [
        (1, ""),
        (2, "SET app.user_id = '';"),
        (3, "SET app.user_id = 'garbage';"),
        (4, "SET app.user_id = '99999999999999999999';"),
        (5, "BEGIN; SET LOCAL app.user_id = 5; COMMIT;"),
        (6, "SET app.user_id = ' 66 ';"),
        (7, "SET app.user_id = 77; RESET app.user_id;"),
    ] {
        db.exec(&format!("{prelude} INSERT INTO t VALUES ({n})"));
    }
    let actors = db.rows("SELECT row_key->>'id', actor::text FROM audit.log ORDER BY id");
    let expected: Rows = [
        ("1", None),
        ("2", None),
        ("3", None),
        ("4", None),
        ("5", None),
        ("6", Some("66")),
        ("7", None),
    ]
    .into_iter()
    .map(|(k, a)| vec![s(k), a.map(String::from)])
    .collect();
    assert_eq!(actors, expected);
}

#[test]
fn a_uuid_actor_and_the_role_behind_set_role_are_recorded() {
    let app = TestRole::new("audit_app", "NOSUPERUSER");
    let db = TestDb::new();
    let _p = audited(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY)",
        &[(
            "t",
            &[
                "--set",
                "actor_type=uuid",
                "--set",
                "actor_setting=myapp.actor",
            ],
        )],
    );
    db.exec(&format!("GRANT INSERT ON t TO {}", app.name));
    db.exec(&format!(
        "SET myapp.actor = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'; SET ROLE {}; INSERT INTO t VALUES (1);
         RESET ROLE; SET myapp.actor = 'not-a-uuid'; INSERT INTO t VALUES (2);",
        app.name
    ));
    assert_eq!(
        db.rows("SELECT actor::text, db_role FROM audit.log ORDER BY id"),
        vec![
            vec![s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), s(&app.name)],
            vec![None, s("postgres")],
        ]
    );
}

#[test]
fn the_log_is_append_only_unforgeable_and_private() {
    let app = TestRole::new("audit_app", "NOSUPERUSER");
    let reader = TestRole::new("audit_reader", "NOSUPERUSER");
    let db = TestDb::new();
    // Default privileges a project might have set for its application role: they must not
    // reach the audit objects.
    db.exec(&format!(
        "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO {0};
         ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO {0};
         ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO {0};
         ALTER DEFAULT PRIVILEGES GRANT ALL ON SCHEMAS TO {0};",
        app.name
    ));
    let _p = audited(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text)",
        &[("t", &["--set", &format!("reader={}", reader.name)])],
    );
    as_role(
        &db,
        &app,
        "INSERT INTO t VALUES (1, 'a'); UPDATE t SET v = 'b'",
    )
    .unwrap();
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit.log").as_deref(),
        Some("2")
    );

    for sql in [
        "SELECT * FROM audit.log",
        "INSERT INTO audit.log (txid, logged_at, schema_name, table_name, operation, db_role) VALUES (pg_current_xact_id(), now(), 'public', 't', 'DELETE', 'x')",
        "UPDATE audit.log SET actor = 1",
        "DELETE FROM audit.log",
        "TRUNCATE audit.log",
        "DELETE FROM audit.audited_table",
        "SELECT audit.register_table('t', '{}', '{}', false, 1)",
        "SELECT audit.unregister_table('t')",
        "SELECT * FROM audit.history('t', '{\"id\": 1}')",
        "CREATE TRIGGER forged AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION audit.capture()",
        "CREATE TABLE audit.x (id int)",
        "SELECT setval('audit.log_id_seq', 1)",
    ] {
        let err = as_role(&db, &app, sql).unwrap_err();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "app role: {sql}: {err}"
        );
    }

    // The reader reads, and nothing else; even granted write privileges (as an owner has), a
    // non-superuser cannot rewrite history.
    let history = as_role(
        &db,
        &reader,
        "SELECT operation FROM audit.history('t', '{\"id\": 1}')",
    )
    .unwrap();
    assert_eq!(history, vec![vec![s("INSERT")], vec![s("UPDATE")]]);
    db.exec(&format!(
        "GRANT UPDATE, DELETE, TRUNCATE ON audit.log TO {}",
        reader.name
    ));
    for sql in [
        "UPDATE audit.log SET actor = 1",
        "DELETE FROM audit.log",
        "TRUNCATE audit.log",
    ] {
        let err = as_role(&db, &reader, sql).unwrap_err();
        assert!(err.contains("append-only"), "reader: {sql}: {err}");
    }
    let err = as_role(&db, &reader, "INSERT INTO audit.log (txid, logged_at, schema_name, table_name, operation, db_role) VALUES (pg_current_xact_id(), now(), 'public', 't', 'DELETE', 'x')").unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit.log").as_deref(),
        Some("2")
    );

    // PUBLIC has nothing on the log or the functions.
    let public = db.scalar(
        "SELECT count(*) FROM (
             SELECT coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner)) AS acl
               FROM pg_class c WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind IN ('r', 'S')
             UNION ALL SELECT coalesce(p.proacl, acldefault('f', p.proowner))
               FROM pg_proc p WHERE p.pronamespace = 'audit'::regnamespace
             UNION ALL SELECT coalesce(n.nspacl, acldefault('n', n.nspowner))
               FROM pg_namespace n WHERE n.nspname = 'audit') o
         WHERE EXISTS (SELECT FROM aclexplode(o.acl) a WHERE a.grantee = 0)",
    );
    assert_eq!(
        public.as_deref(),
        Some("0"),
        "PUBLIC has a privilege (or a default ACL) in schema audit"
    );
    // Superusers may still delete, e.g. to enforce retention: exactly the rows asked for go, and
    // because of who asked (the same statement as the reader failed above).
    assert_eq!(
        db.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .as_deref(),
        Some("t")
    );
    db.exec("DELETE FROM audit.log WHERE row_key->>'id' = '1' AND operation = 'UPDATE'");
    assert_eq!(
        db.column("SELECT operation FROM audit.log ORDER BY id"),
        ["INSERT"]
    );
    let err = as_role(
        &db,
        &reader,
        "DELETE FROM audit.log WHERE operation = 'INSERT'",
    )
    .unwrap_err();
    assert!(err.contains("append-only"), "{err}");
    assert_eq!(
        db.column("SELECT operation FROM audit.log ORDER BY id"),
        ["INSERT"]
    );
}

#[test]
fn a_search_path_hijack_changes_nothing_that_is_recorded() {
    let app = TestRole::new("audit_app", "NOSUPERUSER");
    let db = TestDb::new();
    let _p = audited(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text)",
        &[("t", &[])],
    );
    // The role's own schema (first in the default search_path as "$user") and pg_temp, put in
    // front explicitly, shadow what the trigger function uses.
    db.exec(&format!(
        "GRANT INSERT, UPDATE ON t TO {0};
         CREATE SCHEMA {0} AUTHORIZATION {0};
         GRANT CREATE, TEMPORARY ON DATABASE {1} TO {0};",
        app.name, db.name
    ));
    let decoys = format!(
        "CREATE FUNCTION {0}.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT ''1999-01-01''::timestamptz';
         CREATE FUNCTION {0}.current_setting(text, boolean) RETURNS text LANGUAGE sql AS 'SELECT ''666''';
         CREATE FUNCTION {0}.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS 'SELECT ''{{\"forged\": true}}''::jsonb';
         CREATE FUNCTION {0}.forged_minus(jsonb, text[]) RETURNS jsonb LANGUAGE sql AS 'SELECT ''{{\"forged\": true}}''::jsonb';
         CREATE OPERATOR {0}.- (LEFTARG = jsonb, RIGHTARG = text[], FUNCTION = {0}.forged_minus);
         CREATE TABLE {0}.log (txid xid8, logged_at timestamptz, schema_name text, table_name text, partition_name text,
             operation text, row_key jsonb, old_key jsonb, new_row jsonb, old_row jsonb, changed_columns text[],
             actor bigint, db_role text, application_name text);
         CREATE TABLE {0}.audited_table (relid regclass, key_columns smallint[], excluded_columns smallint[], skip_unchanged boolean);
         CREATE TEMP TABLE log (LIKE {0}.log);
         CREATE TEMP TABLE pg_attribute (attrelid oid, attname name, attnum smallint, attisdropped boolean);
         SET search_path = pg_temp, {0}, public;
         SET app.user_id = 7;
         INSERT INTO t VALUES (1, 'a');
         UPDATE t SET v = 'b';
         SELECT (SELECT count(*) FROM pg_temp.log) + (SELECT count(*) FROM {0}.log);",
        app.name
    );
    let leaked = as_role(&db, &app, &decoys).unwrap();
    assert_eq!(leaked.last().unwrap()[0].as_deref(), Some("0"));
    let log = db.rows(
        "SELECT operation, row_key::text, new_row::text, changed_columns::text, actor::text, logged_at > '2000-01-01'
         FROM audit.log ORDER BY id",
    );
    assert_eq!(
        log,
        vec![
            vec![
                s("INSERT"),
                s(r#"{"id": 1}"#),
                s(r#"{"v": "a", "id": 1}"#),
                None,
                s("7"),
                s("t")
            ],
            vec![
                s("UPDATE"),
                s(r#"{"id": 1}"#),
                s(r#"{"v": "b", "id": 1}"#),
                s("{v}"),
                s("7"),
                s("t")
            ],
        ]
    );
}

#[test]
fn partitioned_tables_are_audited_with_partitions_created_or_attached_later() {
    let db = TestDb::new();
    let setup = "CREATE TABLE ev (id bigint, region text, payload text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
                 CREATE TABLE ev_eu PARTITION OF ev FOR VALUES IN ('eu');";
    let p = audited(&db, setup, &[("ev", &[])]);
    db.exec(
        "INSERT INTO ev VALUES (1, 'eu', 'a');
         CREATE TABLE ev_us PARTITION OF ev FOR VALUES IN ('us');
         CREATE TABLE ev_as (LIKE ev);
         ALTER TABLE ev ATTACH PARTITION ev_as FOR VALUES IN ('as');
         INSERT INTO ev_eu VALUES (2, 'eu', 'b');
         INSERT INTO ev_us VALUES (3, 'us', 'c');
         INSERT INTO ev_as VALUES (4, 'as', 'd');
         UPDATE ev SET region = 'us' WHERE id = 1;
         UPDATE ev_as SET payload = 'e';
         DELETE FROM ev_us WHERE id = 3;
         TRUNCATE ev_eu;",
    );
    let log = db.column(
        "SELECT concat_ws(' ', operation, table_name, coalesce(partition_name, '-'), row_key::text, old_key::text)
         FROM audit.log ORDER BY id",
    );
    assert_eq!(
        log,
        [
            r#"INSERT ev - {"id": 1, "region": "eu"}"#,
            r#"INSERT ev public.ev_eu {"id": 2, "region": "eu"}"#,
            r#"INSERT ev public.ev_us {"id": 3, "region": "us"}"#,
            r#"INSERT ev public.ev_as {"id": 4, "region": "as"}"#,
            r#"UPDATE ev - {"id": 1, "region": "us"} {"id": 1, "region": "eu"}"#,
            r#"UPDATE ev public.ev_as {"id": 4, "region": "as"}"#,
            r#"DELETE ev public.ev_us {"id": 3, "region": "us"}"#,
            "TRUNCATE ev public.ev_eu",
        ]
    );
    let history =
        db.column("SELECT operation FROM audit.history('ev', '{\"id\": 2, \"region\": \"eu\"}')");
    assert_eq!(history, ["INSERT", "TRUNCATE"]);

    // A partition that leaves the table stops being audited as part of it.
    db.exec("ALTER TABLE ev DETACH PARTITION ev_as");
    let triggers = "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname LIKE 'audit\\_%' ORDER BY 1, tgname";
    assert_eq!(db.column(triggers).len(), 12, "ev, ev_eu, ev_us: 4 each");

    // Down removes the triggers from every partition.
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(db.column(triggers), Vec::<String>::new());
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit.audited_table")
            .as_deref(),
        Some("0")
    );
}

#[test]
fn quoted_names_other_schemas_and_generated_columns() {
    let db = TestDb::new();
    let setup = r#"CREATE SCHEMA "Sales";
        CREATE TABLE "Sales"."Order Items" ("Item ID" int PRIMARY KEY, qty int, price numeric, "Line Total" numeric GENERATED ALWAYS AS (qty * price) STORED)"#;
    let p = Project::new();
    p.add("setup", setup, "SELECT 1");
    p.pgx()
        .args([
            "new",
            "audit",
            "Order Items",
            "--schema",
            "Sales",
            "--set",
            "audit_schema=Audit Trail",
        ])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec(r#"INSERT INTO "Sales"."Order Items" VALUES (1, 2, 3.5); UPDATE "Sales"."Order Items" SET qty = 3"#);
    let log = db.rows(
        r#"SELECT schema_name, table_name, row_key::text, new_row->>'Line Total', changed_columns::text
           FROM "Audit Trail".log ORDER BY id"#,
    );
    assert_eq!(
        log,
        vec![
            vec![
                s("Sales"),
                s("Order Items"),
                s(r#"{"Item ID": 1}"#),
                s("7.0"),
                None
            ],
            vec![
                s("Sales"),
                s("Order Items"),
                s(r#"{"Item ID": 1}"#),
                s("10.5"),
                s(r#"{qty,"Line Total"}"#)
            ],
        ]
    );
    let history = db.column(
        r#"SELECT operation FROM "Audit Trail".history('"Sales"."Order Items"', '{"Item ID": 1}')"#,
    );
    assert_eq!(history, ["INSERT", "UPDATE"]);
}

#[test]
fn a_table_without_primary_key_fails_at_apply_unless_key_columns_are_named() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE events (source text, seq int, body text)",
        "DROP TABLE events",
    );
    p.pgx().args(["new", "audit_install"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let before = db.snapshot();
    p.pgx().args(["new", "audit", "events"]).ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("table public.events has no primary key");
    assert_eq!(
        before.diff(&db.snapshot()),
        vec![],
        "a failed audit migration leaves nothing"
    );

    let pending: Vec<String> = p
        .files("migrations")
        .into_iter()
        .filter(|f| f.contains("_audit_events."))
        .collect();
    assert_eq!(pending.len(), 2);
    for f in pending {
        std::fs::remove_file(p.join(&format!("migrations/{f}"))).unwrap();
    }
    p.pgx()
        .args(["new", "audit", "events", "--set", "key=source,seq"])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec("INSERT INTO events VALUES ('web', 1, 'x'); UPDATE events SET body = 'y'");
    assert_eq!(
        db.column("SELECT row_key::text FROM audit.log ORDER BY id"),
        [
            r#"{"seq": 1, "source": "web"}"#,
            r#"{"seq": 1, "source": "web"}"#
        ]
    );
}

#[test]
fn two_tables_in_two_migrations_share_one_infrastructure_and_down_up_round_trips() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        &format!("{ORDERS}; CREATE TABLE customers (id int PRIMARY KEY, name text); CREATE TABLE refunds (id int PRIMARY KEY)"),
        "DROP TABLE orders, customers, refunds",
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    p.pgx().args(["new", "audit", "orders"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let one = db.snapshot();
    p.pgx().args(["new", "audit", "customers"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let two = db.snapshot();

    // The second migration added only the customers triggers (and its registry row).
    let added: Vec<String> = one.diff(&two).iter().map(ToString::to_string).collect();
    assert!(
        !added.is_empty()
            && added
                .iter()
                .all(|d| d.starts_with("trigger public.customers.") && d.ends_with("is left over")),
        "{added:#?}"
    );
    db.exec("INSERT INTO orders (customer_id, status) VALUES (1, 'new'); INSERT INTO customers VALUES (1, 'Ada')");
    assert_eq!(
        db.column("SELECT table_name FROM audit.log ORDER BY id"),
        ["orders", "customers"]
    );

    // Down then up: exactly the customers triggers go and come back; history stays.
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(one.diff(&db.snapshot()), vec![]);
    db.exec("INSERT INTO customers VALUES (2, 'Bob')");
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(two.diff(&db.snapshot()), vec![]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit.log").as_deref(),
        Some("2")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit.audited_table")
            .as_deref(),
        Some("2")
    );

    // Another audit migration with other shared settings is refused: by pgx new, and (one
    // written by hand, here the customers one edited) by the database, changing nothing.
    p.pgx()
        .args(["new", "audit", "refunds", "--set", "actor_type=uuid"])
        .fails()
        .stderr_has("belongs to the installed audit");
    let customers = p
        .files("migrations")
        .into_iter()
        .find(|f| f.ends_with("_audit_customers.up.sql"))
        .unwrap();
    let edited = p
        .read(&format!("migrations/{customers}"))
        .replace("IS DISTINCT FROM 'bigint'", "IS DISTINCT FROM 'uuid'");
    assert!(edited.contains("IS DISTINCT FROM 'uuid'"), "{edited}");
    p.write(
        &format!(
            "migrations/{}",
            customers.replace("_audit_customers.", "9_audit_refunds.")
        ),
        &edited.replace("customers", "refunds"),
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("was installed with settings");
    assert_eq!(two.diff(&db.snapshot()), vec![]);
}

#[test]
fn uninstall_is_refused_while_a_table_is_audited_then_removes_everything() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("setup", ORDERS, "DROP TABLE orders");
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let bare = db.snapshot();
    p.pgx().args(["new", "audit", "orders"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec("INSERT INTO orders (customer_id, status) VALUES (1, 'new')");
    let audited = db.snapshot();

    p.pgx().args(["new", "audit_uninstall"]).ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("still audited: orders");
    assert_eq!(audited.diff(&db.snapshot()), vec![]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit.log").as_deref(),
        Some("1")
    );

    // Stop auditing (history stays), drop that migration, then uninstall.
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    let infrastructure_only = db.snapshot();
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit.log").as_deref(),
        Some("1")
    );
    for f in p
        .files("migrations")
        .into_iter()
        .filter(|f| f.contains("_audit_orders."))
    {
        std::fs::remove_file(p.join(&format!("migrations/{f}"))).unwrap();
    }
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        bare.diff(&db.snapshot()),
        vec![],
        "uninstall leaves no trace"
    );

    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(
        infrastructure_only.diff(&db.snapshot()),
        vec![],
        "uninstall's down recreates the (empty) infrastructure"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit.log").as_deref(),
        Some("0")
    );
}

#[test]
fn upserts_merges_and_keys_too_long_for_a_btree_are_recorded() {
    let db = TestDb::new();
    let _p = audited(
        &db,
        "CREATE TABLE k (id text PRIMARY KEY, v text); CREATE TABLE src (id text, v text)",
        &[("k", &[])],
    );
    // 2,680 base64 characters of hashes do not compress: the table's own primary key index
    // takes them, a btree entry holding them as JSON with the table's name would not (and
    // would fail the write).
    let long = "(SELECT left(string_agg(translate(encode(sha512(i::text::bytea), 'base64'), E'\\n', ''), ''), 2680) FROM generate_series(1, 40) AS i)";
    db.exec(&format!(
        "INSERT INTO k VALUES ('a', '1'), ({long}, '1');
         INSERT INTO k VALUES ('a', '2'), ('b', '2') ON CONFLICT (id) DO UPDATE SET v = excluded.v;
         INSERT INTO src VALUES ('b', '3'), ('c', '3');
         MERGE INTO k USING src ON k.id = src.id
             WHEN MATCHED THEN UPDATE SET v = src.v
             WHEN NOT MATCHED THEN INSERT VALUES (src.id, src.v);
         UPDATE k SET v = '4' WHERE length(id) > 100;"
    ));
    let log = db.column(
        "SELECT operation || ' ' || CASE WHEN length(row_key->>'id') = 2680 THEN 'long' ELSE row_key->>'id' END FROM audit.log ORDER BY id",
    );
    assert_eq!(
        log,
        [
            "INSERT a",
            "INSERT long",
            "UPDATE a",
            "INSERT b",
            "UPDATE b",
            "INSERT c",
            "UPDATE long"
        ]
    );
    let history = db.column(&format!(
        "SELECT operation FROM audit.history('k', jsonb_build_object('id', {long}))"
    ));
    assert_eq!(history, ["INSERT", "UPDATE"]);
}

#[test]
fn dropping_an_audited_table_unregisters_it_and_keeps_its_history() {
    let db = TestDb::new();
    let _p = audited(&db, "CREATE TABLE t (id int PRIMARY KEY)", &[("t", &[])]);
    db.exec("INSERT INTO t VALUES (1); DROP TABLE t; CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (2)");
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit.audited_table")
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        db.column("SELECT row_key->>'id' FROM audit.log"),
        ["1"],
        "the new table is not audited"
    );
    assert_eq!(
        db.column("SELECT operation FROM audit.history('public', 't', '{\"id\": 1}')"),
        ["INSERT"]
    );
}

#[test]
fn history_look_ups_use_the_indexes() {
    let db = TestDb::new();
    let _p = audited(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE u (id int PRIMARY KEY)",
        &[("t", &[]), ("u", &[])],
    );
    db.exec(
        "INSERT INTO t SELECT i, 'a' FROM generate_series(1, 20000) AS i;
         INSERT INTO u SELECT i FROM generate_series(1, 20000) AS i;
         UPDATE t SET v = 'b' WHERE id % 10 = 0;
         UPDATE t SET id = -id WHERE id = 7;
         TRUNCATE u;
         ANALYZE audit.log;",
    );
    let plan = db
        .column("EXPLAIN SELECT * FROM audit.history('public', 't', '{\"id\": 7}')")
        .join("\n");
    for index in ["log_row_key", "log_old_key", "log_truncate"] {
        assert!(
            plan.contains(index),
            "history does not use {index}:\n{plan}"
        );
    }
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert_eq!(
        db.column("SELECT operation FROM audit.history('t', '{\"id\": 7}')"),
        ["INSERT", "UPDATE"]
    );
    let recent = db
        .column("EXPLAIN SELECT count(*) FROM audit.log WHERE logged_at < '2020-01-01'")
        .join("\n");
    assert!(recent.contains("log_logged_at_brin"), "{recent}");
}

#[test]
fn a_non_superuser_migrator_owns_the_log_but_cannot_rewrite_it() {
    let migrator = TestRole::new("audit_migrator", "NOSUPERUSER");
    let app = TestRole::new("audit_app", "NOSUPERUSER");
    let db = TestDb::new();
    db.exec(&format!(
        "GRANT CREATE ON DATABASE {} TO {};
         GRANT CREATE ON SCHEMA public TO {};",
        db.name, migrator.name, migrator.name
    ));
    let url = db.url_as(&migrator.name);
    let p = Project::new();
    p.add(
        "setup",
        &format!(
            "CREATE TABLE t (id int PRIMARY KEY, v text); GRANT INSERT, UPDATE ON t TO {};
             CREATE TABLE parts (id int, k int, PRIMARY KEY (id, k)) PARTITION BY LIST (k);",
            app.name
        ),
        "DROP TABLE t, parts",
    );
    p.pgx().args(["new", "audit", "t"]).ok();
    p.pgx()
        .env("DATABASE_URL", &url)
        .args(["migrate", "up"])
        .ok();
    assert_eq!(
        db.scalar(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'audit.log'::regclass"
        ),
        Some(migrator.name.clone())
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_event_trigger")
            .as_deref(),
        Some("0")
    );

    as_role(
        &db,
        &app,
        "SET app.user_id = 3; INSERT INTO t VALUES (1, 'a'); UPDATE t SET v = 'b'",
    )
    .unwrap();
    assert_eq!(
        db.column("SELECT operation || ' ' || actor || ' ' || db_role FROM audit.log ORDER BY id"),
        [
            format!("INSERT 3 {}", app.name),
            format!("UPDATE 3 {}", app.name)
        ]
    );
    for sql in [
        "UPDATE audit.log SET actor = 1",
        "DELETE FROM audit.log",
        "TRUNCATE audit.log",
    ] {
        let err = as_role(&db, &migrator, sql).unwrap_err();
        assert!(err.contains("append-only"), "owner: {sql}: {err}");
    }

    // Without the event trigger, partitions created later could not be audited: refused.
    p.pgx().args(["new", "audit", "parts"]).ok();
    p.pgx()
        .env("DATABASE_URL", &url)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("parts is partitioned");
}

#[test]
fn a_dump_restores_into_a_working_audit_trail() {
    let db = TestDb::new();
    let setup = "CREATE TABLE ev (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
                 CREATE TABLE ev_eu PARTITION OF ev FOR VALUES IN ('eu');
                 CREATE TABLE secrets (id int PRIMARY KEY, token text, note text)";
    let _p = audited(
        &db,
        setup,
        &[("ev", &[]), ("secrets", &["--set", "exclude=token"])],
    );
    db.exec("INSERT INTO ev VALUES (1, 'eu'); INSERT INTO secrets VALUES (1, 'tok', 'a')");

    let copy = TestDb::new();
    let dump = std::process::Command::new("pg_dump")
        .args(["--format=custom", "--dbname", &db.url])
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let mut restore = std::process::Command::new("pg_restore")
        .args(["--exit-on-error", "--dbname", &copy.url])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pg_restore runs");
    std::io::Write::write_all(&mut restore.stdin.take().unwrap(), &dump.stdout).unwrap();
    let restored = restore.wait_with_output().unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );

    // History, registrations (by table, not oid) and triggers come back, and keep working.
    copy.exec(
        "UPDATE secrets SET token = 'other', note = 'b';
         CREATE TABLE ev_us PARTITION OF ev FOR VALUES IN ('us');
         INSERT INTO ev_us VALUES (2, 'us');",
    );
    assert_eq!(
        copy.column("SELECT operation || ' ' || table_name || ' ' || coalesce(changed_columns::text, '-') FROM audit.log ORDER BY id"),
        ["INSERT ev -", "INSERT secrets -", "UPDATE secrets {note}", "INSERT ev -"]
    );
    assert_eq!(
        copy.column("SELECT operation FROM audit.history('secrets', '{\"id\": 1}')"),
        ["INSERT", "UPDATE"]
    );
}
