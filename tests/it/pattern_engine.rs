//! The pattern engine's contract for pattern authors, with patterns a project defines itself:
//! a pattern rendered as several migrations (steps), and shared infrastructure installed once
//! by its own migration and found again by later ones.

use crate::support::{Project, TestDb, block_on};
use sqlx::Connection;
use sqlx::migrate::Migrator;

/// A pattern in two steps: a column in a transaction, then an index built concurrently, which
/// must be alone in its file for sqlx-cli to apply it.
fn stepped_project(index_step_sql: &str) -> Project {
    let p = Project::new();
    p.write(
        "patterns/indexed.yaml",
        "name: indexed\nsummary: A column and its index\ntarget: table\nparameters:\n  - name: column\n    type: identifier\n    default: code\ntemplates:\n  up: indexed/up.sql.tera\n  down: indexed/down.sql.tera\n",
    );
    p.write(
        "templates/indexed/up.sql.tera",
        &format!(
            "{{%- set t = table | qualified -%}}\n-- pgx:step column\nALTER TABLE {{{{ t }}}} ADD COLUMN {{{{ params.column | ident }}}} text;\n\n-- pgx:step index no-transaction\n{index_step_sql}\n"
        ),
    );
    p.write(
        "templates/indexed/down.sql.tera",
        "{%- set t = table | qualified -%}\n-- pgx:step column\nALTER TABLE {{ t }} DROP COLUMN {{ params.column | ident }};\n\n-- pgx:step index no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS {{ table.name | derived_name(suffix='_idx') | qualified(schema=table.schema) }};\n",
    );
    p.add(
        "create orders",
        "CREATE TABLE orders (id bigint PRIMARY KEY);",
        "DROP TABLE orders;",
    );
    p
}

const INDEX_STEP: &str = "CREATE INDEX CONCURRENTLY IF NOT EXISTS {{ table.name | derived_name(suffix='_idx') | ident }} ON {{ t }} ({{ params.column | ident }});";

#[test]
fn a_stepped_pattern_writes_one_migration_per_step_that_both_runners_apply() {
    let p = stepped_project(INDEX_STEP);
    let run = p.pgx().args(["new", "indexed", "orders"]).ok();
    let written: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(written.len(), 4, "{}", run.stdout);
    assert!(written[0].ends_with("_indexed_orders_column.up.sql"));
    assert!(written[2].ends_with("_indexed_orders_index.up.sql"));
    let version = |path: &str| -> i64 {
        let name = std::path::Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        name.split('_').next().unwrap().parse().unwrap()
    };
    assert!(
        version(written[2]) > version(written[0]),
        "steps apply in order"
    );

    let column = std::fs::read_to_string(p.join(written[0])).unwrap();
    assert!(!column.starts_with("-- no-transaction"), "{column}");
    assert!(column.contains("-- step 1 of 2: \"column\"\n"), "{column}");
    let index = std::fs::read_to_string(p.join(written[2])).unwrap();
    assert!(index.starts_with("-- no-transaction\n"), "{index}");
    assert!(index.contains("-- step 2 of 2: \"index\"\n"), "{index}");
    assert_eq!(pgx::sql::split_statements(&index).len(), 1, "{index}");
    let index_down = std::fs::read_to_string(p.join(written[3])).unwrap();
    assert!(
        index_down.starts_with("-- no-transaction\n"),
        "{index_down}"
    );

    // pgx applies and reverts them, and check proves each down reverses its up.
    let db = TestDb::new();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_idx'::regclass")
            .as_deref(),
        Some("t")
    );
    p.pgx().db(&db).args(["check"]).ok();

    // sqlx's Migrator sends each file as one query: it applies the same files too.
    let other = TestDb::new();
    block_on(async {
        let migrator = Migrator::new(p.join("migrations")).await.unwrap();
        let mut conn = sqlx::PgConnection::connect(&other.url).await.unwrap();
        migrator.run(&mut conn).await.unwrap();
    });
    assert_eq!(
        other
            .scalar("SELECT count(*) FROM pg_index WHERE indexrelid = 'orders_idx'::regclass")
            .as_deref(),
        Some("1")
    );
}

#[test]
fn a_no_transaction_step_with_two_statements_is_refused_and_nothing_is_written() {
    let p = stepped_project(&format!("{INDEX_STEP}\nANALYZE {{{{ t }}}};"));
    let before = p.files("migrations");
    p.pgx()
        .args(["new", "indexed", "orders"])
        .fails()
        .stderr_has("indexed/up.sql.tera: no-transaction step `index` renders 2 statements; it must hold exactly one");
    assert_eq!(p.files("migrations"), before);
}

#[test]
fn up_and_down_must_declare_the_same_steps() {
    let p = stepped_project(INDEX_STEP);
    p.write(
        "templates/indexed/down.sql.tera",
        "-- pgx:step index no-transaction\nSELECT 1;\n-- pgx:step column\nSELECT 1;\n",
    );
    p.pgx()
        .args(["new", "indexed", "orders"])
        .fails()
        .stderr_has("must declare the same steps in the same order");
    p.write("templates/indexed/down.sql.tera", "SELECT 1;\n");
    p.pgx()
        .args(["new", "indexed", "orders"])
        .fails()
        .stderr_has("either both or neither use `-- pgx:step` markers");
}

/// `counter_install` creates a shared schema with a function, versioned as infrastructure
/// `counter`; `counted` needs it on a table and shares its schema parameter.
fn infra_project(required_version: u32) -> Project {
    let p = Project::new();
    p.write(
        "patterns/counter_install.yaml",
        "name: counter_install\nsummary: Shared counter infrastructure\ntarget: none\nprovides:\n  name: counter\n  version: 1\nparameters:\n  - name: counter_schema\n    type: identifier\n    default: counters\ntemplates:\n  up: counter/install.up.sql.tera\n  down: counter/install.down.sql.tera\n",
    );
    p.write(
        "templates/counter/install.up.sql.tera",
        "CREATE SCHEMA {{ params.counter_schema | ident }};\nCREATE FUNCTION {{ 'one' | qualified(schema=params.counter_schema) }}() RETURNS int LANGUAGE sql IMMUTABLE RETURN 1;\n",
    );
    p.write(
        "templates/counter/install.down.sql.tera",
        "DROP SCHEMA {{ params.counter_schema | ident }} CASCADE;\n",
    );
    p.write(
        "patterns/counted.yaml",
        &format!(
            "name: counted\nsummary: A column defaulting to the shared counter\nrequires:\n  name: counter\n  version: {required_version}\n  install: counter_install\n  upgrade: counter_upgrade\n  shared: [counter_schema]\nparameters:\n  - name: counter_schema\n    type: identifier\n    default: counters\ntemplates:\n  up: counter/counted.up.sql.tera\n  down: counter/counted.down.sql.tera\n"
        ),
    );
    p.write(
        "templates/counter/counted.up.sql.tera",
        "ALTER TABLE {{ table | qualified }} ADD COLUMN n int DEFAULT {{ 'one' | qualified(schema=params.counter_schema) }}();\n",
    );
    p.write(
        "templates/counter/counted.down.sql.tera",
        "ALTER TABLE {{ table | qualified }} DROP COLUMN n;\n",
    );
    p.add(
        "create tables",
        "CREATE TABLE a (id int); CREATE TABLE b (id int);",
        "DROP TABLE a, b;",
    );
    p
}

#[test]
fn infrastructure_is_installed_once_by_its_own_migration_and_its_settings_are_kept() {
    let p = infra_project(1);
    let first = p
        .pgx()
        .args(["new", "counted", "a", "--set", "counter_schema=tally"])
        .ok();
    let files: Vec<&str> = first.stdout.lines().collect();
    assert_eq!(files.len(), 4, "{}", first.stdout);
    assert!(
        files[0].ends_with("_counter_install.up.sql"),
        "{}",
        files[0]
    );
    let install = std::fs::read_to_string(p.join(files[0])).unwrap();
    assert!(
        install.contains("-- pgx provides: \"counter\" 1\n"),
        "{install}"
    );
    assert!(install.contains("CREATE SCHEMA tally;"), "{install}");
    assert!(files[2].ends_with("_counted_a.up.sql"));

    // The second table reuses the installation, and its schema, without being told.
    let second = p.pgx().args(["new", "counted", "b"]).ok();
    let files: Vec<&str> = second.stdout.lines().collect();
    assert_eq!(files.len(), 2, "{}", second.stdout);
    let b = std::fs::read_to_string(p.join(files[0])).unwrap();
    assert!(b.contains("tally.one()"), "{b}");

    // One installation cannot serve two settings.
    let before = p.files("migrations");
    p.pgx()
        .args(["new", "counted", "b", "--set", "counter_schema=other"])
        .fails()
        .stderr_has("parameter `counter_schema` belongs to the installed counter");
    assert_eq!(p.files("migrations"), before);

    let db = TestDb::new();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec("INSERT INTO b (id) VALUES (1)");
    assert_eq!(db.scalar("SELECT n FROM b").as_deref(), Some("1"));
    p.pgx().db(&db).args(["check"]).ok();
}

#[test]
fn an_installation_too_old_for_a_pattern_names_the_upgrade() {
    let p = infra_project(1);
    p.pgx().args(["new", "counted", "a"]).ok();
    let newer = infra_project(2);
    for f in p.files("migrations") {
        newer.write(
            &format!("migrations/{f}"),
            &p.read(&format!("migrations/{f}")),
        );
    }
    newer
        .pgx()
        .args(["new", "counted", "b"])
        .fails()
        .stderr_has("needs counter version 2 or later")
        .stderr_has("pgx new counter_upgrade");
}

#[test]
fn a_requirement_on_a_pattern_that_does_not_install_it_is_refused_at_load() {
    let p = infra_project(1);
    p.write(
        "patterns/counter_install.yaml",
        "name: counter_install\nsummary: Not infrastructure\ntarget: none\nparameters:\n  - name: counter_schema\n    type: identifier\n    default: counters\ntemplates:\n  up: counter/install.up.sql.tera\n  down: counter/install.down.sql.tera\n",
    );
    p.pgx()
        .args(["patterns"])
        .fails()
        .stderr_has("patterns/counted.yaml:")
        .stderr_has("must target no table and provide `counter`");
}
