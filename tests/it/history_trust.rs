//! The runner trusts only what it owns: the attacks on `_sqlx_migrations` and tenant
//! discovery, each performed by the weakest role that could try it, must gain nothing.

use crate::support::{Project, TestDb, TestRole};

/// SQL run by `role` (a URL for it without a password: the test cluster trusts its socket).
fn exec_as(db: &TestDb, role: &TestRole, sql: &str) {
    if let Err(e) = crate::support::try_rows(&db.url_as(&role.name), sql) {
        panic!("as {}: {e}\n{sql}", role.name);
    }
}

/// A `_sqlx_migrations` in `schema` whose trigger, fired by whoever writes the history, makes
/// the attacker superuser and logs who ran it (the log is the attacker's, writable by all).
fn booby_trapped_history(schema: &str, attacker: &str) -> String {
    format!(
        "CREATE TABLE {schema}.ran_as (who text);
         GRANT INSERT ON {schema}.ran_as TO PUBLIC;
         CREATE FUNCTION {schema}.trap() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             INSERT INTO {schema}.ran_as VALUES (current_user);
             EXECUTE 'ALTER ROLE {attacker} SUPERUSER';
             RETURN NEW;
         END $$;
         CREATE TABLE {schema}._sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
             checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);
         GRANT ALL ON {schema}._sqlx_migrations TO PUBLIC;
         CREATE TRIGGER trap BEFORE INSERT OR DELETE ON {schema}._sqlx_migrations
             FOR EACH ROW EXECUTE FUNCTION {schema}.trap();"
    )
}

/// A tenant migration creating table `name`.
fn tenant_table(p: &Project, name: &str) {
    p.pgx()
        .args(["add", name, "--scope", "tenant"])
        .args(["--up", &format!("CREATE TABLE {name} (id int);")])
        .args(["--down", &format!("DROP TABLE {name};")])
        .ok();
}

fn gained_nothing(db: &TestDb, attacker: &TestRole, log_schema: &str) {
    assert_eq!(
        db.scalar(&format!(
            "SELECT rolsuper::text FROM pg_roles WHERE rolname = '{}'",
            attacker.name
        ))
        .as_deref(),
        Some("false")
    );
    assert_eq!(
        db.scalar(&format!("SELECT count(*)::text FROM {log_schema}.ran_as"))
            .as_deref(),
        Some("0"),
        "the trap never ran"
    );
}

#[test]
fn a_schema_named_after_the_migrating_role_cannot_plant_a_history_table() {
    // Who can CREATE on the database can create the schema "$user" resolves to, which comes
    // first in the default search_path.
    for migrator in [
        None,
        Some(TestRole::new("migrator", "NOSUPERUSER NOBYPASSRLS")),
    ] {
        let db = TestDb::new();
        let attacker = TestRole::new("attacker", "NOSUPERUSER NOBYPASSRLS");
        db.exec(&format!(
            "GRANT CREATE ON DATABASE {} TO {}",
            db.name, attacker.name
        ));
        let url = match &migrator {
            Some(m) => {
                db.exec(&format!("GRANT CREATE ON SCHEMA public TO {}", m.name));
                db.url_as(&m.name)
            }
            None => db.url.clone(),
        };
        let me = crate::support::try_rows(&url, "SELECT current_user::text").unwrap()[0][0]
            .clone()
            .unwrap();
        exec_as(
            &db,
            &attacker,
            &format!(
                "CREATE SCHEMA \"{me}\"; GRANT USAGE ON SCHEMA \"{me}\" TO PUBLIC;\n{}",
                booby_trapped_history(&format!("\"{me}\""), &attacker.name)
            ),
        );
        let p = Project::new();
        p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
        for command in [
            &["migrate", "up"][..],
            &["migrate", "status"],
            &["migrate", "down"],
        ] {
            p.pgx()
                .env("DATABASE_URL", &url)
                .args(command)
                .fails()
                .stderr_has(&format!(
                    "refusing to use the migration history table {me}._sqlx_migrations: it is owned by role \"{}\"",
                    attacker.name
                ))
                .stderr_has("trusted_roles");
        }
        gained_nothing(&db, &attacker, &format!("\"{me}\""));
        assert_eq!(
            db.scalar("SELECT count(*)::text FROM pg_class WHERE relname IN ('alpha', '_sqlx_migrations') AND relnamespace = 'public'::regnamespace").as_deref(),
            Some("0")
        );
        // An empty schema of the attacker's comes first too: pgx would create the history there.
        exec_as(
            &db,
            &attacker,
            &format!("DROP TABLE \"{me}\"._sqlx_migrations"),
        );
        p.pgx()
            .env("DATABASE_URL", &url)
            .args(["migrate", "up"])
            .fails()
            .stderr_has(&format!(
                "it would be created in schema \"{me}\", which comes first in search_path (\"$user\") but is owned by role \"{}\"",
                attacker.name
            ));
        // Dropped, pgx uses public as sqlx would.
        exec_as(&db, &attacker, &format!("DROP SCHEMA \"{me}\" CASCADE"));
        p.pgx()
            .env("DATABASE_URL", &url)
            .args(["migrate", "up", "-q"])
            .ok();
        assert_eq!(
            db.scalar("SELECT count(*)::text FROM public._sqlx_migrations")
                .as_deref(),
            Some("1")
        );
    }
}

#[test]
fn a_trigger_added_to_the_history_table_is_refused() {
    // TRIGGER on the table is all it takes to run code as whoever migrates next.
    let db = TestDb::new();
    let attacker = TestRole::new("attacker", "NOSUPERUSER NOBYPASSRLS");
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    p.pgx().db(&db).args(["migrate", "up", "-q"]).ok();
    db.exec(&format!(
        "GRANT CREATE ON DATABASE {} TO {a}; GRANT TRIGGER ON public._sqlx_migrations TO {a}",
        db.name,
        a = attacker.name
    ));
    exec_as(
        &db,
        &attacker,
        &format!(
            "CREATE SCHEMA evil;
             CREATE TABLE evil.ran_as (who text); GRANT INSERT ON evil.ran_as TO PUBLIC;
             GRANT USAGE ON SCHEMA evil TO PUBLIC;
             CREATE FUNCTION evil.trap() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO evil.ran_as VALUES (current_user); EXECUTE 'ALTER ROLE {} SUPERUSER'; RETURN NEW; END $$;
             CREATE TRIGGER zz_audit BEFORE INSERT ON public._sqlx_migrations FOR EACH ROW EXECUTE FUNCTION evil.trap();",
            attacker.name
        ),
    );
    p.add("beta", "CREATE TABLE beta (id int);", "DROP TABLE beta;");
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("refusing to use the migration history table public._sqlx_migrations: it has trigger(s) zz_audit that pgx did not create");
    gained_nothing(&db, &attacker, "evil");
    assert_eq!(
        db.scalar("SELECT to_regclass('beta') IS NULL").as_deref(),
        Some("t")
    );
}

#[test]
fn tenant_discovery_skips_schemas_it_does_not_trust() {
    let db = TestDb::new();
    let attacker = TestRole::new("attacker", "NOSUPERUSER NOBYPASSRLS");
    db.exec(&format!(
        "GRANT CREATE ON DATABASE {} TO {}",
        db.name, attacker.name
    ));
    let p = Project::new();
    tenant_table(&p, "notes");
    p.pgx().db(&db).args(["tenant", "add", "acme", "-q"]).ok();
    exec_as(
        &db,
        &attacker,
        &format!(
            "CREATE SCHEMA tenant_evil; GRANT USAGE ON SCHEMA tenant_evil TO PUBLIC;\n{}",
            booby_trapped_history("tenant_evil", &attacker.name)
        ),
    );
    tenant_table(&p, "tags");
    let run = p
        .pgx()
        .db(&db)
        .args(["migrate", "up", "--tenants", "--jobs", "2"])
        .ok();
    let ignored = format!(
        "warning: ignoring schema \"tenant_evil\": it is owned by role \"{}\"",
        attacker.name
    );
    run.stderr_has(&ignored).stderr_has("tenant_acme: applied ");
    gained_nothing(&db, &attacker, "tenant_evil");
    assert_eq!(
        db.column("SELECT schemaname FROM pg_tables WHERE tablename = 'tags'"),
        ["tenant_acme"]
    );
    let run = p.pgx().db(&db).args(["tenant", "list", "--json"]).ok();
    let listed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(listed["tenants"].as_array().unwrap().len(), 1);
    run.stderr_has(&ignored);
}

#[test]
fn roles_named_in_trusted_roles_are_trusted() {
    // A database migrated by sqlx as the application's role, later migrated by pgx as a DBA.
    let db = TestDb::new();
    let app = TestRole::new("app", "NOSUPERUSER NOBYPASSRLS");
    db.exec(&format!(
        "GRANT CREATE ON SCHEMA public TO {a}; CREATE SCHEMA tenant_legacy AUTHORIZATION {a}",
        a = app.name
    ));
    exec_as(
        &db,
        &app,
        "CREATE TABLE public._sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
             checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);
         CREATE TABLE tenant_legacy._sqlx_migrations (LIKE public._sqlx_migrations INCLUDING ALL);",
    );
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    tenant_table(&p, "notes");
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!("it is owned by role \"{}\"", app.name));
    p.pgx()
        .db(&db)
        .args(["migrate", "up", "--tenants"])
        .ok()
        .stderr_has("ignoring schema \"tenant_legacy\"");

    let config = p.read("pgx.yaml").replace(
        "trusted_roles: []",
        &format!("trusted_roles: [{}]", app.name),
    );
    assert!(config.contains(&app.name), "pgx init writes trusted_roles");
    p.write("pgx.yaml", &config);
    p.pgx().db(&db).args(["migrate", "up", "-q"]).ok();
    p.pgx()
        .db(&db)
        .args(["migrate", "up", "--tenants", "-q"])
        .ok();
    assert_eq!(
        db.column("SELECT schemaname || '.' || tablename FROM pg_tables WHERE tablename IN ('alpha', 'notes') ORDER BY 1"),
        ["public.alpha", "tenant_legacy.notes"]
    );
}

#[test]
fn a_public_schema_owned_by_a_weaker_database_owner_still_takes_the_history() {
    // public belongs to the database's owner (pg_database_owner): a table pgx creates there is
    // still pgx's, and a replacement the owner made would be refused.
    let db = TestDb::new();
    let app = TestRole::new("app", "NOSUPERUSER NOBYPASSRLS");
    db.exec(&format!("ALTER DATABASE {} OWNER TO {}", db.name, app.name));
    let p = Project::new();
    p.add("alpha", "CREATE TABLE alpha (id int);", "DROP TABLE alpha;");
    p.pgx().db(&db).args(["migrate", "up", "-q"]).ok();
    exec_as(
        &db,
        &app,
        "DROP TABLE public._sqlx_migrations;
         CREATE TABLE public._sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
             checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);",
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "status"])
        .fails()
        .stderr_has(&format!("it is owned by role \"{}\"", app.name));
}
