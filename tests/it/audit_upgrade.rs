//! The audit infrastructure versioned like an extension: audit_install, the per-table audit
//! migration's version check, audit_upgrade from the infrastructure older audit migrations
//! embedded (a fixture: tests/it/fixtures/audit_v1, rendered by pgx before audit_install existed)
//! and `pgx check` across the upgrade.

use crate::support::{Project, TestDb, admin_url};

const FIXTURE_UP: &str = include_str!("fixtures/audit_v1/audit_sales_order_items.up.sql");
const FIXTURE_DOWN: &str = include_str!("fixtures/audit_v1/audit_sales_order_items.down.sql");

/// A project with the table the fixture audits and a plain `customers`, then the fixture's
/// audit migration (version 1 of the infrastructure, embedded).
fn legacy_project() -> Project {
    let p = Project::new();
    let setup = p.add(
        "setup",
        "DO $$ BEGIN CREATE ROLE auditor NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE SCHEMA \"Sales\";
         CREATE TABLE \"Sales\".\"Order Items\" (id bigint PRIMARY KEY, item text NOT NULL, card_token text);
         CREATE TABLE customers (id int PRIMARY KEY, name text)",
        "DROP TABLE customers; DROP TABLE \"Sales\".\"Order Items\"; DROP SCHEMA \"Sales\"",
    );
    let version: i64 = setup.split('_').next().unwrap().parse().unwrap();
    p.write(
        &format!("migrations/{}_audit_sales_order_items.up.sql", version + 1),
        FIXTURE_UP,
    );
    p.write(
        &format!(
            "migrations/{}_audit_sales_order_items.down.sql",
            version + 1
        ),
        FIXTURE_DOWN,
    );
    p
}

fn up_files(p: &Project) -> Vec<String> {
    p.files("migrations")
        .into_iter()
        .filter(|f| f.ends_with(".up.sql"))
        .collect()
}

#[test]
fn an_embedded_infrastructure_upgrades_and_check_passes() {
    let db = TestDb::new();
    let p = legacy_project();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec("INSERT INTO \"Sales\".\"Order Items\" VALUES (1, 'pen', 'tok')");
    assert_eq!(
        db.scalar("SELECT audit.settings()->>'version'").as_deref(),
        Some("1")
    );
    let version_one = db.snapshot();

    // A new table's audit needs version 2: pgx says which migration to generate, and writes
    // nothing (no second install on top of the embedded one).
    p.pgx()
        .args(["new", "audit", "customers"])
        .fails()
        .stderr_has("needs audit version 2 or later")
        .stderr_has("pgx new audit_upgrade");
    assert_eq!(up_files(&p).len(), 2);

    // The upgrade takes the embedded infrastructure's settings from the fixture's header.
    p.pgx().args(["new", "audit_upgrade"]).ok();
    let files = up_files(&p);
    assert_eq!(files.len(), 3, "{files:?}");
    let upgrade = p.read(&format!("migrations/{}", files[2]));
    assert!(
        upgrade.contains("-- pgx provides: \"audit\" 2")
            && upgrade.contains("-- param actor_type = \"uuid\""),
        "{upgrade}"
    );
    p.pgx()
        .args(["new", "audit_upgrade"])
        .fails()
        .stderr_has("nothing to upgrade");
    p.pgx().args(["new", "audit", "customers"]).ok();
    let files = up_files(&p);
    assert_eq!(files.len(), 4, "one migration, no install: {files:?}");
    let audit_customers = p.read(&format!("migrations/{}", files[3]));
    assert!(
        audit_customers.lines().count() < 120,
        "the per-table migration stays small:\n{audit_customers}"
    );

    // Applied without the upgrade, the table's migration stops, naming the upgrade.
    let upgrade_up = format!("migrations/{}", files[2]);
    let upgrade_down = upgrade_up.replace(".up.sql", ".down.sql");
    let (saved_up, saved_down) = (p.read(&upgrade_up), p.read(&upgrade_down));
    std::fs::remove_file(p.join(&upgrade_up)).unwrap();
    std::fs::remove_file(p.join(&upgrade_down)).unwrap();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("is version 1, and this migration needs version 2")
        .stderr_has("pgx new audit_upgrade");
    assert_eq!(version_one.diff(&db.snapshot()), vec![]);
    p.write(&upgrade_up, &saved_up);
    p.write(&upgrade_down, &saved_down);

    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.scalar("SELECT audit.settings()->>'version'").as_deref(),
        Some("2")
    );
    db.exec(
        "INSERT INTO customers VALUES (1, 'Ada');
         UPDATE \"Sales\".\"Order Items\" SET item = 'ink', card_token = 'x' WHERE id = 1",
    );
    assert_eq!(
        db.rows("SELECT table_name, operation, new_row::text FROM audit.log ORDER BY id"),
        vec![
            vec![
                Some("Order Items".to_string()),
                Some("INSERT".to_string()),
                Some(r#"{"id": 1, "item": "pen"}"#.to_string())
            ],
            vec![
                Some("customers".to_string()),
                Some("INSERT".to_string()),
                Some(r#"{"id": 1, "name": "Ada"}"#.to_string())
            ],
            vec![
                Some("Order Items".to_string()),
                Some("UPDATE".to_string()),
                Some(r#"{"id": 1, "item": "ink"}"#.to_string())
            ],
        ],
        "the table audited before the upgrade keeps its exclusion, and history"
    );

    // Every down reverses its up, across the upgrade.
    p.pgx()
        .args(["check", "--database-url", &admin_url()])
        .ok()
        .stdout_has("ok    down to zero");

    // The upgrade's down restores version 1 exactly, which still records.
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(version_one.diff(&db.snapshot()), vec![]);
    db.exec("DELETE FROM \"Sales\".\"Order Items\"");
    assert_eq!(
        db.scalar(
            "SELECT operation || ' ' || old_row::text FROM audit.log ORDER BY id DESC LIMIT 1"
        )
        .as_deref(),
        Some(r#"DELETE {"id": 1, "item": "ink"}"#)
    );
}

#[test]
fn install_is_written_first_once_and_refuses_an_installed_infrastructure() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)",
        "DROP TABLE a, b",
    );
    p.pgx().args(["new", "audit", "a"]).ok();
    p.pgx().args(["new", "audit", "b"]).ok();
    let files = up_files(&p);
    assert_eq!(files.len(), 4, "{files:?}");
    assert!(files[1].ends_with("_audit_install.up.sql"), "{files:?}");
    assert!(
        p.read(&format!("migrations/{}", files[1]))
            .contains("-- pgx provides: \"audit\" 2")
    );
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.scalar("SELECT audit.settings()::text").as_deref(),
        Some(r#"{"version": 2, "actor_type": "bigint", "actor_setting": "app.user_id"}"#)
    );

    // A shared setting differing from the installed one is refused when rendering.
    p.pgx()
        .args([
            "new",
            "audit",
            "a",
            "--set",
            "actor_type=uuid",
            "--name",
            "again",
        ])
        .fails()
        .stderr_has("belongs to the installed audit");

    // A second install (rendered explicitly) is refused by the database, changing nothing.
    let before = db.snapshot();
    p.pgx().args(["new", "audit_install"]).ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("the audit infrastructure is installed in schema audit already")
        .stderr_has("pgx new audit_upgrade");
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}

#[test]
fn a_table_migration_without_an_infrastructure_names_the_install() {
    let db = TestDb::new();
    let p = Project::new();
    p.add(
        "setup",
        "CREATE TABLE a (id int PRIMARY KEY)",
        "DROP TABLE a",
    );
    p.pgx().args(["new", "audit", "a"]).ok();
    let install = up_files(&p)
        .into_iter()
        .find(|f| f.ends_with("_audit_install.up.sql"))
        .unwrap();
    std::fs::remove_file(p.join(&format!("migrations/{install}"))).unwrap();
    std::fs::remove_file(p.join(&format!(
        "migrations/{}",
        install.replace(".up.sql", ".down.sql")
    )))
    .unwrap();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("schema audit does not exist")
        .stderr_has("pgx new audit_install");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'a'::regclass")
            .as_deref(),
        Some("0")
    );
}
