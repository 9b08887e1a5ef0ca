//! Adopting pgx on an existing database: `pgx baseline`, and `pgx new` choosing parameters from
//! the tables it finds (a third-party schema in the style of the DVD-rental sample:
//! `fixtures/rental.sql`).

use std::os::unix::fs::PermissionsExt as _;

use crate::support::{Project, TestDb, TestRole, block_on};
use sqlx::Connection;
use sqlx::migrate::Migrator;

const RENTAL: &str = include_str!("fixtures/rental.sql");

fn rental_db() -> TestDb {
    let db = TestDb::new();
    db.exec(RENTAL);
    db
}

fn files_ending(p: &Project, suffix: &str) -> Vec<String> {
    p.files("migrations")
        .into_iter()
        .filter(|f| f.ends_with(suffix))
        .collect()
}

fn version_of(file: &str) -> i64 {
    file.split('_').next().unwrap().parse().unwrap()
}

#[test]
fn baseline_records_the_dumped_schema_as_applied_and_check_proves_it_from_zero() {
    let db = rental_db();
    let before = db.snapshot();
    let p = Project::new();
    let run = p.pgx().db(&db).arg("baseline").ok();
    run.stderr_has(
        "as applied in the database (URL from DATABASE_URL in the environment) without running it",
    );
    let ups = files_ending(&p, "_baseline.up.sql");
    assert_eq!(ups.len(), 1, "{:?}", p.files("migrations"));
    let up = p.read(&format!("migrations/{}", ups[0]));
    assert!(up.contains("CREATE TABLE public.payment"), "{up}");
    assert!(
        up.contains("ATTACH PARTITION public.payment_p2022_01"),
        "{up}"
    );
    assert!(
        !up.contains("_sqlx_migrations"),
        "the history table is not part of the schema"
    );
    assert!(!up.contains("\\restrict"), "no psql meta-commands: {up}");
    let mode = std::fs::metadata(p.join(&format!("migrations/{}", ups[0])))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o044,
        0o044,
        "readable by all, like sqlx-cli's files"
    );

    // Recorded, not run: the schema and its rows are untouched.
    let status = p.pgx().db(&db).args(["migrate", "status"]).ok();
    status.stdout_has("baseline").stdout_has("applied");
    let mut after = db.snapshot();
    after.objects.retain(|k, _| !k.contains("_sqlx_migrations"));
    assert_eq!(before.diff(&after), vec![], "baseline changes nothing");
    assert_eq!(
        db.scalar("SELECT count(*) FROM payment").as_deref(),
        Some("2")
    );

    // A change made with pgx afterwards; check proves everything from an empty database.
    p.pgx()
        .db(&db)
        .args([
            "new",
            "timestamps",
            "film",
            "--set",
            "updated_column=last_update",
        ])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let check = p.pgx().db(&db).arg("check").ok();
    check
        .stdout_has("up from zero: 2 migrations applied")
        .stdout_has(
            "(baseline): every down above it reverses its up; its own down refuses on purpose",
        );

    // The baseline's down refuses, and changes nothing.
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    let refused = p.pgx().db(&db).args(["migrate", "down"]).fails();
    refused
        .stderr_has("the baseline migration cannot be reverted")
        .stderr_has("pgx baseline --reversible");
    assert_eq!(db.scalar("SELECT count(*) FROM film").as_deref(), Some("2"));
    p.pgx()
        .db(&db)
        .args(["migrate", "status"])
        .ok()
        .stdout_has("applied");
}

#[test]
fn a_baseline_applies_with_sqlx_and_gives_the_schema_it_was_dumped_from() {
    let source = rental_db();
    let p = Project::new();
    p.pgx().db(&source).arg("baseline").ok();
    let empty = TestDb::new();
    block_on(async {
        let migrator = Migrator::new(p.join("migrations")).await.unwrap();
        let mut conn = sqlx::PgConnection::connect(&empty.url).await.unwrap();
        migrator.run(&mut conn).await.unwrap();
    });
    let mut want = source.snapshot();
    let mut got = empty.snapshot();
    for s in [&mut want, &mut got] {
        s.objects.retain(|k, _| !k.contains("_sqlx_migrations"));
    }
    assert!(
        want.objects.len() > 20,
        "a real schema: {}",
        want.objects.len()
    );
    assert_eq!(
        want.diff(&got),
        vec![],
        "the baseline recreates the schema exactly"
    );
    // The dump's settings ended with its transaction: sqlx recorded the migration, unqualified.
    assert_eq!(
        empty
            .scalar("SELECT count(*) FROM public._sqlx_migrations WHERE success")
            .as_deref(),
        Some("1")
    );
}

#[test]
fn a_reversible_baseline_drops_exactly_what_it_created() {
    let source = rental_db();
    let p = Project::new();
    p.pgx().db(&source).args(["baseline", "--reversible"]).ok();
    let down = p.read(&format!(
        "migrations/{}",
        files_ending(&p, "_baseline.down.sql")[0]
    ));
    assert!(
        down.contains("DROP TABLE IF EXISTS public.payment"),
        "{down}"
    );
    assert!(down.contains("DROP SCHEMA IF EXISTS reporting"), "{down}");
    assert!(!down.contains("DROP SCHEMA IF EXISTS public"), "{down}");

    let fresh = TestDb::new();
    let empty = fresh.snapshot();
    p.pgx().db(&fresh).args(["migrate", "up"]).ok();
    assert_eq!(
        fresh.scalar("SELECT count(*) FROM film").as_deref(),
        Some("0")
    );
    p.pgx().db(&fresh).args(["migrate", "down"]).ok();
    let mut after = fresh.snapshot();
    after.objects.retain(|k, _| !k.contains("_sqlx_migrations"));
    assert_eq!(
        empty.diff(&after),
        vec![],
        "down drops exactly what the dump created"
    );
    p.pgx()
        .db(&source)
        .arg("check")
        .ok()
        .stdout_has("down to zero: every down reverses its up");
}

#[test]
fn a_baseline_sorts_first_and_refuses_a_database_that_has_history() {
    let source = rental_db();
    let p = Project::new();
    let first = p.add("later change", "SELECT 1;", "SELECT 1;");
    p.pgx().db(&source).arg("baseline").ok();
    let baseline = files_ending(&p, "_baseline.up.sql")[0].clone();
    assert!(
        version_of(&baseline) < version_of(&first),
        "{baseline} sorts before {first}"
    );
    p.pgx()
        .db(&source)
        .args(["migrate", "status"])
        .ok()
        .stdout_has("pending");

    // Twice: the database has history now. Nothing is written.
    let files = p.files("migrations");
    p.pgx()
        .db(&source)
        .args(["baseline", "--name", "again"])
        .fails()
        .stderr_has("already has 1 migration in _sqlx_migrations");
    assert_eq!(p.files("migrations"), files);

    // --dry-run prints both files and writes nothing.
    let other = rental_db();
    let dry = p
        .pgx()
        .db(&other)
        .args(["baseline", "--name", "b2", "--dry-run"])
        .ok();
    dry.stdout_has("_b2.up.sql")
        .stdout_has("_b2.down.sql")
        .stdout_has("CREATE TABLE public.film");
    assert_eq!(p.files("migrations"), files);
    assert_eq!(
        other
            .scalar("SELECT to_regclass('_sqlx_migrations') IS NULL")
            .as_deref(),
        Some("t"),
        "a dry run records nothing"
    );
}

#[test]
fn new_on_a_table_with_a_tenant_column_uses_it_and_its_type() {
    let app = TestRole::new("pgx_app", "NOSUPERUSER NOBYPASSRLS");
    let db = rental_db();
    let p = Project::new();
    // A uuid can never be a bigint store id: refused when written, nothing written.
    p.pgx()
        .db(&db)
        .args(["new", "tenant", "customer", "--set", "column=store_id"])
        .args(["--set", "backfill=0b6f4c9e-1f6a-4e4b-9d53-6f3b1b0f1c11"])
        .fails()
        .stderr_has("parameter `backfill` of pattern `tenant`: expected a value of type bigint")
        .stderr_has("not a valid bigint value");
    assert!(p.files("migrations").is_empty());

    let run = p
        .pgx()
        .db(&db)
        .args([
            "new",
            "tenant",
            "public.customer",
            "--set",
            "column=store_id",
        ])
        .args([
            "--set",
            "global_unique=customer_pkey",
            "--set",
            "secure_views=true",
            "--set",
            &format!("role={}", app.name),
        ])
        .ok();
    run.stderr_has(
        "inferred type=bigint: public.customer already has column store_id of type bigint",
    )
    .stderr_has("inferred add_column=false: public.customer already has column store_id: using it")
    .stderr_has("pgx dev psql --role");
    let up = p.read(&format!(
        "migrations/{}",
        files_ending(&p, "_tenant_customer.up.sql")[0]
    ));
    assert!(up.contains("-- table: \"public\".\"customer\"\n"), "{up}");
    assert!(up.contains("-- inferred type = \"bigint\": "), "{up}");
    assert!(up.contains("-- inferred add_column = false: "), "{up}");
    // (The role gets the table; the view is the application's own business.)
    db.exec(&format!("GRANT SELECT ON customer_list TO {}", app.name));
    let before = db.snapshot();
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    // The application role sees only its tenant's rows, through the table and the view.
    let as_app = |sql: &str| {
        crate::support::try_rows(
            &db.url_as(&app.name),
            &format!("BEGIN; SET LOCAL app.current_tenant = '2'; {sql}"),
        )
        .unwrap()
    };
    assert_eq!(
        as_app("SELECT email FROM customer"),
        vec![vec![Some("pat@example.com".into())]]
    );
    assert_eq!(
        as_app("SELECT count(*) FROM customer_list"),
        vec![vec![Some("1".into())]]
    );
    // The tenant migration, and pgx's own schema, which `pgx new` wrote before it.
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--steps", "2"])
        .ok();
    assert_eq!(
        before.diff(&db.snapshot()),
        vec![],
        "down restores the table"
    );
}

#[test]
fn new_on_a_partitioned_table_isolates_every_partition() {
    let app = TestRole::new("pgx_app", "NOSUPERUSER NOBYPASSRLS");
    let db = rental_db();
    db.exec("TRUNCATE payment");
    let p = Project::new();
    let run = p
        .pgx()
        .db(&db)
        .args([
            "new",
            "tenant",
            "payment",
            "--set",
            &format!("role={}", app.name),
        ])
        .ok();
    run.stderr_has("inferred partitioned=true: public.payment is partitioned (2 partitions)");
    // The key across tenants the migration would refuse is named when the migration is written.
    run.stderr_has("global_unique: unique keys of public.payment without tenant_id: payment_pkey");
    for f in run
        .stdout
        .lines()
        .filter(|f| f.contains("_tenant_payment."))
    {
        std::fs::remove_file(p.join(f)).unwrap();
    }
    p.pgx()
        .db(&db)
        .args([
            "new",
            "tenant",
            "payment",
            "--set",
            &format!("role={}", app.name),
        ])
        .args(["--set", "global_unique=payment_pkey"])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    let tenant = "9b2f1f5e-7d1c-4c55-8a0e-3e4f5a6b7c8d";
    db.exec(&format!(
        "INSERT INTO payment (customer_id, amount, payment_date, tenant_id)
         VALUES (1, 1, '2022-01-10', '{tenant}'), (2, 2, '2022-01-11', gen_random_uuid())"
    ));
    db.exec(&format!("GRANT SELECT ON payment_p2022_01 TO {}", app.name));
    let rows = crate::support::try_rows(
        &db.url_as(&app.name),
        &format!(
            "BEGIN; SET LOCAL app.current_tenant = '{tenant}'; SELECT amount FROM payment_p2022_01"
        ),
    )
    .unwrap();
    assert_eq!(
        rows,
        vec![vec![Some("1.00".into())]],
        "a partition queried directly is isolated"
    );
}

#[test]
fn new_offers_to_adopt_a_column_a_trigger_keeps_and_adopts_it_when_asked() {
    let db = rental_db();
    let p = Project::new();
    let offered = p
        .pgx()
        .db(&db)
        .args(["new", "timestamps", "film", "--dry-run"])
        .ok();
    offered.stderr_has(
        "public.film.last_update looks kept current by trigger last_updated: to adopt it instead of adding updated_at, pass --set updated_column=last_update",
    );
    offered.stdout_has("ADD COLUMN updated_at");

    let before = db.snapshot();
    p.pgx()
        .db(&db)
        .args(["new", "timestamps", "film", "--set", "updated_column=last_update"])
        .ok()
        .stderr_has("inferred adopt=last_update: public.film already has last_update (timestamp without time zone)");
    let up = p.read(&format!("migrations/{}", files_ending(&p, ".up.sql")[0]));
    assert!(up.contains("-- param adopt = [\"last_update\"]"), "{up}");
    assert!(!up.contains("ADD COLUMN last_update"), "{up}");
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec(
        "UPDATE film SET last_update = '2000-01-01', created_at = '2000-01-01' WHERE film_id = 1",
    );
    assert_eq!(
        db.scalar("SELECT last_update > '2020-01-01' AND created_at > '2020-01-01' FROM film WHERE film_id = 1")
            .as_deref(),
        Some("t"),
        "the adopted column is kept current, the added created_at cannot be moved"
    );
    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(
        before.diff(&db.snapshot()),
        vec![],
        "down keeps the adopted column and drops the rest"
    );

    // Offline, nothing is looked at: the file says nothing was inferred.
    let offline = p
        .pgx()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .args(["new", "timestamps", "film", "--offline", "--dry-run"])
        .ok();
    assert!(
        !offline.stdout.contains("-- inferred"),
        "{}",
        offline.stdout
    );
    assert!(
        !offline.stderr.contains("127.0.0.1"),
        "no connection tried: {}",
        offline.stderr
    );

    // An adopted column that is not there stops the migration, clearly.
    let other = TestDb::new();
    other.exec("CREATE TABLE film (film_id int)");
    let p2 = Project::new();
    p2.pgx()
        .args([
            "new",
            "timestamps",
            "film",
            "--offline",
            "--set",
            "adopt=updated_at",
        ])
        .ok();
    p2.pgx()
        .db(&other)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("public.film has no timestamp column updated_at to adopt");
}

#[test]
fn new_says_which_views_read_the_table() {
    let db = rental_db();
    let p = Project::new();
    p.pgx()
        .db(&db)
        .args(["new", "tenant", "customer", "--dry-run"])
        .ok()
        .stderr_has("secure_views: views reading public.customer: public.customer_list; the migration refuses those that are not security_invoker");
}

#[test]
fn inference_queries_bind_their_inputs_and_their_errors_name_the_pattern() {
    let db = TestDb::new();
    let hostile = "x'); DROP TABLE keep; --";
    db.exec(&format!(
        "CREATE TABLE keep (id int); CREATE TABLE \"{}\" (id int)",
        hostile.replace('"', "\"\"")
    ));
    let p = Project::new();
    p.write(
        "patterns/echo.yaml",
        "name: echo\nsummary: echoes\ntemplates: {up: echo/up.sql.tera, down: echo/down.sql.tera}\nparameters:\n  - name: seen\n    type: string\n    default: none\n    infer: |\n      SELECT $table_name, 'the name, bound: ' || $table\n",
    );
    p.write(
        "templates/echo/up.sql.tera",
        "SELECT {{ params.seen | literal }};\n",
    );
    p.write("templates/echo/down.sql.tera", "SELECT 1;\n");
    let run = p
        .pgx()
        .db(&db)
        .args(["new", "echo", hostile, "--dry-run"])
        .ok();
    run.stdout_has("SELECT 'x''); DROP TABLE keep; --';");
    assert_eq!(
        db.scalar("SELECT to_regclass('keep') IS NOT NULL")
            .as_deref(),
        Some("t")
    );

    // A broken query stops `pgx new` naming the parameter and pattern; a bad placeholder is
    // refused when the spec loads, at its line.
    p.write(
        "patterns/echo.yaml",
        "name: echo\nsummary: echoes\ntemplates: {up: echo/up.sql.tera, down: echo/down.sql.tera}\nparameters:\n  - name: seen\n    type: string\n    default: none\n    infer: SELECT nonsense\n",
    );
    p.pgx()
        .db(&db)
        .args(["new", "echo", "keep"])
        .fails()
        .stderr_has("inferring `seen` of pattern `echo`: column \"nonsense\" does not exist");
    p.write(
        "patterns/echo.yaml",
        "name: echo\nsummary: echoes\ntemplates: {up: echo/up.sql.tera, down: echo/down.sql.tera}\nparameters:\n  - name: seen\n    type: string\n    default: none\n    infer: SELECT $colum, ''\n",
    );
    p.pgx()
        .args(["patterns", "show", "echo"])
        .fails()
        .stderr_has("patterns/echo.yaml:8:12: infer of `seen`: unknown placeholder $colum");
    assert!(p.files("migrations").is_empty());
}
