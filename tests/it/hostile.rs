//! Hostile names are quoted, applied, and produce exactly the intended objects.

use crate::support::{Project, TestDb};

/// A dollar-quoted literal, so the test builds its SQL without pgx's own quoting.
fn dq(s: &str) -> String {
    assert!(!s.contains("$t$"));
    format!("$t${s}$t$")
}

/// Creates `schema.table` with the server's own quoting (`format('%I')`).
fn create_table(db: &TestDb, schema: &str, table: &str) {
    db.exec(&format!(
        "DO $do$ BEGIN
           EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', {s});
           EXECUTE format('CREATE TABLE %I.%I (id int PRIMARY KEY)', {s}, {t});
         END $do$",
        s = dq(schema),
        t = dq(table)
    ));
}

fn columns(db: &TestDb, schema: &str, table: &str) -> Vec<String> {
    db.column(&format!(
        "SELECT attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = {} AND c.relname = {} AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        dq(schema),
        dq(table)
    ))
}

const HOSTILE: &[&str] = &[
    "orders; drop table x",
    "\"quoted\"",
    "Ünïcode",
    "select",
    "Order Items",
    "x'); DROP TABLE x; --",
    // 63 bytes: the longest name PostgreSQL keeps without truncating.
    "a_table_name_that_is_exactly_sixty_three_bytes_long_abcdefghijk",
];

#[test]
fn hostile_table_and_column_names_apply_exactly() {
    let db = TestDb::new();
    let p = Project::new();
    db.exec("CREATE TABLE x (id int)");
    for (i, name) in HOSTILE.iter().enumerate() {
        assert!(name.len() <= 63);
        create_table(&db, "public", name);
        let created = format!("made {i}; drop table x");
        // TABLE may be schema.table: a name holding a dot or a quote is double-quoted.
        let table = if name.contains(['.', '"']) {
            format!("\"{}\"", name.replace('"', "\"\""))
        } else {
            (*name).to_string()
        };
        p.pgx()
            .args(["new", "timestamps", &table, "--name", &format!("t{i}")])
            .args([
                "--set",
                &format!("created_column={created}"),
                "--set",
                "updated_column=Updated \"At\"",
            ])
            .ok();
    }
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    assert_eq!(
        db.scalar("SELECT to_regclass('public.x') IS NOT NULL")
            .as_deref(),
        Some("t")
    );
    for (i, name) in HOSTILE.iter().enumerate() {
        assert_eq!(
            columns(&db, "public", name),
            vec![
                "id".to_string(),
                format!("made {i}; drop table x"),
                "Updated \"At\"".to_string()
            ],
            "table {name:?}"
        );
        // The trigger really works on each table.
        let triggers = db.scalar(&format!(
            "DO $do$ DECLARE fired boolean; BEGIN
               EXECUTE format('INSERT INTO public.%I (id) VALUES (1)', {t});
               EXECUTE format('UPDATE public.%I SET %I = now() - interval ''1 day''', {t}, {c});
               EXECUTE format('SELECT %I > now() - interval ''1 hour'' FROM public.%I', {c}, {t}) INTO fired;
               IF NOT fired THEN RAISE EXCEPTION 'trigger did not fire'; END IF;
             END $do$;
             SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE c.relname = {t} AND NOT tgisinternal",
            t = dq(name),
            c = dq("Updated \"At\"")
        ));
        assert_eq!(triggers.as_deref(), Some("1"), "one trigger on {name:?}");
    }
    // User tables: x plus the hostile ones, nothing else.
    let tables = db.column("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations'");
    assert_eq!(tables, vec![(HOSTILE.len() + 1).to_string()]);

    // Down reverses every one of them.
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--target", "0"])
        .ok();
    for name in HOSTILE {
        assert_eq!(columns(&db, "public", name), vec!["id".to_string()]);
    }
}

#[test]
fn hostile_schema_names_apply() {
    let db = TestDb::new();
    let p = Project::new();
    let schema = "Sales; DROP SCHEMA public CASCADE; --";
    create_table(&db, schema, "Orders");
    p.pgx()
        .args(["new", "timestamps", "Orders", "--schema", schema])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        columns(&db, schema, "Orders"),
        vec!["id", "created_at", "updated_at"]
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'")
            .as_deref(),
        Some("1")
    );
}

#[test]
fn names_over_63_bytes_are_refused_before_anything_is_written() {
    let p = Project::new();
    let long = "x".repeat(64);
    p.pgx()
        .args(["new", "timestamps", &long])
        .fails()
        .stderr_has("64 bytes");
    // Multi-byte: 32 × 'é' is 64 bytes though only 32 characters.
    p.pgx()
        .args(["new", "timestamps", &"é".repeat(32)])
        .fails()
        .stderr_has("it is 64 bytes long and PostgreSQL would silently truncate it to 63");
    p.pgx()
        .args([
            "new",
            "timestamps",
            "orders",
            "--set",
            &format!("created_column={long}"),
        ])
        .fails()
        .stderr_has("created_column");
    p.pgx()
        .args(["new", "timestamps", "orders", "--schema", ""])
        .fails()
        .stderr_has("names cannot be empty");
    p.pgx()
        .args([
            "new",
            "timestamps",
            "orders",
            "--set",
            "updated_column=a\nb",
        ])
        .fails()
        .stderr_has("updated_column")
        .stderr_has("names cannot contain newlines or other control characters");
    assert!(
        p.files("migrations").is_empty(),
        "{:?}",
        p.files("migrations")
    );
}

/// pgx quotes exactly when PostgreSQL's own quote_ident does, for every keyword the server
/// knows and for names that are tricky in other ways.
#[test]
fn ident_quoting_matches_the_server() {
    let db = TestDb::new();
    let mut names = db.column("SELECT word FROM pg_get_keywords()");
    assert!(names.len() > 400);
    names.extend(
        [
            "Abc", "abc", "a b", "_x", "x1", "1x", "ü", "a\"b", "a$b", "$a",
        ]
        .map(String::from),
    );
    for name in names {
        let server = db
            .scalar(&format!("SELECT quote_ident({})", dq(&name)))
            .unwrap();
        let ours = pgx::sql::quote_ident(&name).unwrap();
        // pgx also quotes words that became keywords in newer servers, so SQL written
        // today keeps working after an upgrade.
        if ours != server {
            assert!(
                pgx::sql::NEWER_SERVER_KEYWORDS.contains(&name.as_str()),
                "{name:?}: server {server}, pgx {ours}"
            );
        }
    }
}

/// A name holding the function body's dollar-quote tag must not end the body early.
#[test]
fn dollar_quote_tags_in_names_cannot_end_a_function_body() {
    let db = TestDb::new();
    let p = Project::new();
    db.exec("CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE x (id int)");
    let column = "u$pgx$; DROP TABLE x; --";
    p.pgx()
        .args([
            "new",
            "timestamps",
            "orders",
            "--set",
            &format!("updated_column={column}"),
        ])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        columns(&db, "public", "orders"),
        vec!["id", "created_at", column]
    );
    assert_eq!(
        db.scalar("SELECT to_regclass('public.x') IS NOT NULL")
            .as_deref(),
        Some("t")
    );
    db.exec(&format!(
        "INSERT INTO orders (id) VALUES (1);
         DO $do$ BEGIN EXECUTE format('UPDATE orders SET %I = now() - interval ''1 day''', {c}); END $do$",
        c = dq(column)
    ));
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(columns(&db, "public", "orders"), vec!["id"]);
}
