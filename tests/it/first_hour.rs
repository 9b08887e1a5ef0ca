//! A first hour without surprises: the command-line behaviour a newcomer meets first (`pgx add`,
//! where commands look for the project, what errors say, files on disk, help, completions).

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;

use crate::support::{Project, TestDb};

/// The mode a file gets from `File::create` (what sqlx-cli does) under the test's umask.
fn created_file_mode(dir: &std::path::Path) -> u32 {
    let probe = dir.join("probe");
    std::fs::File::create(&probe).unwrap();
    let mode = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    std::fs::remove_file(probe).unwrap();
    mode
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn add_takes_sql_inline_from_files_or_standard_input_and_writes_a_template_without() {
    let db = TestDb::new();
    let p = Project::new();
    // SQL that starts like a flag (a dump's leading comment) is SQL.
    let inline = p
        .pgx()
        .args([
            "add",
            "create t",
            "--up",
            "-- from a dump\nCREATE TABLE t (id int);",
        ])
        .args(["--down", "--\nDROP TABLE t;"])
        .ok();
    let up = inline.stdout.lines().next().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(p.join(&up)).unwrap(),
        "-- from a dump\nCREATE TABLE t (id int);\n"
    );

    p.write("sql/u.sql", "CREATE TABLE u (id int);\n");
    p.pgx()
        .args([
            "add",
            "create u",
            "--up-file",
            "sql/u.sql",
            "--down-file",
            "-",
        ])
        .stdin("DROP TABLE u;\n")
        .ok();
    p.pgx()
        .args(["add", "both stdin", "--up-file", "-", "--down-file", "-"])
        .fails()
        .stderr_has("cannot both read standard input");
    p.pgx()
        .args(["add", "missing", "--up-file", "sql/nope.sql"])
        .fails()
        .stderr_has("sql/nope.sql");

    // No SQL: a commented template, which is a valid (empty) migration.
    let blank = p.pgx().args(["add", "to fill in"]).ok();
    let (up, down) = {
        let mut lines = blank.stdout.lines();
        (
            lines.next().unwrap().to_string(),
            lines.next().unwrap().to_string(),
        )
    };
    for f in [&up, &down] {
        let text = std::fs::read_to_string(p.join(f)).unwrap();
        assert!(
            !text.is_empty() && text.lines().all(|l| l.starts_with("--")),
            "{text}"
        );
        assert_eq!(
            mode(&p.join(f)),
            created_file_mode(p.path()),
            "{f}: mode like sqlx-cli's"
        );
    }
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.scalar("SELECT count(*) FROM _sqlx_migrations")
            .as_deref(),
        Some("3")
    );
    assert_eq!(
        db.scalar("SELECT to_regclass('t') IS NOT NULL AND to_regclass('u') IS NOT NULL")
            .as_deref(),
        Some("t")
    );

    // --dry-run writes nothing; --before sorts a migration before another.
    let files = p.files("migrations");
    let dry = p
        .pgx()
        .args(["add", "dry", "--up", "SELECT 1;", "--dry-run"])
        .ok();
    dry.stdout_has("_dry.up.sql").stdout_has("SELECT 1;");
    assert_eq!(p.files("migrations"), files);
    let first: i64 = files[0].split('_').next().unwrap().parse().unwrap();
    let before = p
        .pgx()
        .args(["add", "earlier", "--before", &first.to_string()])
        .ok();
    let v: i64 = std::path::Path::new(before.stdout.lines().next().unwrap())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .split('_')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(v < first, "{v} before {first}");
    p.pgx()
        .args(["add", "no room", "--before", &first.to_string()])
        .fails()
        .stderr_has("no room for 1 migration just before version");
}

#[test]
fn commands_run_inside_migrations_resolve_paths_from_the_project_root() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("one", "CREATE TABLE one (id int);", "DROP TABLE one;");
    p.add("two", "CREATE TABLE two (id int);", "DROP TABLE two;");
    p.pgx_in("migrations").db(&db).args(["migrate", "up"]).ok();
    let status = p
        .pgx_in("migrations")
        .db(&db)
        .args(["migrate", "status"])
        .ok();
    assert_eq!(
        status.stdout.matches(" applied ").count(),
        2,
        "{}",
        status.stdout
    );
    assert!(!status.stdout.contains("file missing"), "{}", status.stdout);
    p.pgx_in("migrations")
        .db(&db)
        .arg("check")
        .ok()
        .stdout_has("(2 migrations)");
    // New files land in the project's migrations folder, named from where the user stands.
    let new = p
        .pgx_in("migrations")
        .args(["new", "timestamps", "one"])
        .ok();
    assert!(new.stdout.starts_with("./"), "{}", new.stdout);
    assert_eq!(p.files("migrations").len(), 6);
    assert!(!p.join("migrations/migrations").exists());
}

#[test]
fn outside_a_project_commands_refuse_and_leave_nothing_behind() {
    let p = Project::empty();
    let commands: &[&[&str]] = &[
        &["new", "timestamps", "orders"],
        &["add", "x"],
        &["baseline"],
        &["migrate", "up"],
        &["migrate", "status"],
        &["check"],
        &["dev", "start"],
        &["dev", "psql"],
        &["tenant", "list"],
    ];
    for args in commands {
        p.pgx()
            .args(*args)
            .fails()
            .stderr_has("error: not a pgx project (no pgx.yaml here or above); run pgx init");
    }
    p.write("sub/keep", "");
    p.pgx()
        .args(["--dir", "sub", "migrate", "up"])
        .fails()
        .stderr_has("not a pgx project: sub has no pgx.yaml; run pgx init sub");
    assert_eq!(p.files("."), ["sub"], "no migrations/, no .pgx/");
    assert_eq!(p.files("sub"), ["keep"]);
    // Reading the catalog needs no project.
    p.pgx().arg("patterns").ok().stdout_has("timestamps");
}

#[test]
fn down_and_redo_never_suggest_a_flag_they_reject() {
    let db = TestDb::new();
    let p = Project::new();
    let first = p.add("one", "CREATE TABLE one (id int);", "DROP TABLE one;");
    p.add("two", "CREATE TABLE two (id int);", "DROP TABLE two;");
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    std::fs::remove_file(p.join(&format!("migrations/{first}"))).unwrap();
    std::fs::remove_file(p.join(&format!("migrations/{}", first.replace(".up.", ".down."))))
        .unwrap();
    let mut suggested = 0;
    for cmd in [
        &["migrate", "down"][..],
        &["migrate", "redo"],
        &["migrate", "up"],
    ] {
        let run = p.pgx().db(&db).args(cmd).fails();
        run.stderr_has("has no file in migrations");
        let help = p.pgx().args(cmd).arg("--help").ok().stdout;
        for flag in run
            .stderr
            .split_whitespace()
            .filter(|w| w.starts_with("--"))
        {
            let flag = flag.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            suggested += 1;
            assert!(
                help.contains(flag),
                "`pgx {}` suggests {flag}, which it rejects",
                cmd.join(" ")
            );
        }
    }
    assert_eq!(suggested, 1, "only up suggests a flag (--ignore-missing)");
    p.pgx()
        .db(&db)
        .args(["migrate", "up", "--ignore-missing"])
        .ok();
}

#[test]
fn parameters_take_one_spelling_of_booleans_and_values_of_the_column_type() {
    let p = Project::new();
    for bad in ["yes", "on", "1", "True"] {
        p.pgx()
            .args([
                "new",
                "tenant",
                "orders",
                "--offline",
                "--set",
                &format!("secure_views={bad}"),
            ])
            .fails()
            .stderr_has("expected true or false");
    }
    p.pgx()
        .args([
            "new",
            "tenant",
            "orders",
            "--offline",
            "--set",
            "secure_views=true",
            "--dry-run",
        ])
        .ok();
    // A tenant id that cannot be a uuid is refused when the migration is written.
    p.pgx()
        .args([
            "new",
            "tenant",
            "orders",
            "--offline",
            "--set",
            "backfill=1",
        ])
        .fails()
        .stderr_has("expected a value of type uuid (the `type` parameter), got \"1\"");
    p.pgx()
        .args([
            "new",
            "tenant",
            "orders",
            "--offline",
            "--set",
            "type=bigint",
            "--set",
            "backfill=1x",
        ])
        .fails()
        .stderr_has("not a valid bigint value");
    assert!(p.files("migrations").is_empty());
    p.pgx()
        .args([
            "new",
            "tenant",
            "orders",
            "--offline",
            "--set",
            "type=bigint",
            "--set",
            "backfill=1",
            "--dry-run",
        ])
        .ok()
        .stdout_has("-- param backfill = \"1\"");
}

#[test]
fn patterns_show_never_prints_an_empty_default() {
    let p = Project::new();
    let catalog = pgx::pattern::Catalog::builtin().unwrap();
    let mut shown = 0;
    for pattern in catalog.patterns() {
        let text = p
            .pgx()
            .args(["patterns", "show", &pattern.name])
            .ok()
            .stdout;
        for line in text.lines() {
            assert!(
                !line.trim_end().ends_with("default:") && !line.contains("default: ;"),
                "{}: {line:?}",
                pattern.name
            );
        }
        shown += 1;
    }
    assert!(shown >= 4);
    let audit = p.pgx().args(["patterns", "show", "audit"]).ok();
    assert!(
        audit
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("key ") && l.ends_with("optional")),
        "{}",
        audit.stdout
    );
}

#[test]
fn durations_carry_their_unit_on_flags_and_parameters() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("t", "CREATE TABLE orders (id int);", "DROP TABLE orders;");
    let bare = p
        .pgx()
        .db(&db)
        .args(["migrate", "up", "--lock-timeout", "5"])
        .run();
    assert_eq!(bare.code, Some(2), "{}", bare.stderr);
    assert!(
        bare.stderr.contains("has no unit: write 5ms, 5s or 5min"),
        "{}",
        bare.stderr
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "up", "--lock-timeout", "5s"])
        .ok();
    let run = p
        .pgx()
        .args([
            "new",
            "timestamps",
            "orders",
            "--offline",
            "--set",
            "lock_timeout=200ms",
        ])
        .ok();
    let up = std::fs::read_to_string(p.join(run.stdout.lines().next().unwrap())).unwrap();
    assert!(up.contains("SET LOCAL lock_timeout = '200ms';"), "{up}");
    // PostgreSQL reads the value as written.
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.scalar("BEGIN; SET LOCAL lock_timeout = '200ms'; SHOW lock_timeout")
            .as_deref(),
        Some("200ms")
    );
    let show = p.pgx().args(["patterns", "show", "timestamps"]).ok();
    show.stdout_has("lock_timeout").stdout_has("default: 100ms");
}

#[test]
fn database_url_errors_say_what_is_wrong_and_where_the_url_came_from() {
    let p = Project::new();
    p.add("one", "SELECT 1;", "SELECT 1;");
    // A libpq keyword string, or a URL without its scheme.
    let bad = "host=localhost dbname=app password=hunter2";
    let flag = p
        .pgx()
        .args(["migrate", "status", "--database-url", bad])
        .fails();
    flag.stderr_has(
        "invalid database URL (URL from --database-url): it is not a URL; expected postgres://",
    );
    assert!(!flag.stderr.contains("hunter2"));
    p.pgx()
        .args(["migrate", "status", "--database-url", "localhost:5432/app"])
        .fails()
        .stderr_has("it starts with `localhost:` instead of postgres://");
    p.pgx()
        .env("DATABASE_URL", "postgres://u:hunter2@db:notaport/app")
        .args(["migrate", "status"])
        .fails()
        .stderr_has("(URL from DATABASE_URL in the environment): the port is not a number");
    p.write(".env", "DATABASE_URL=mysql://u@h/app\n");
    p.pgx()
        .args(["migrate", "status"])
        .fails()
        .stderr_has("(URL from DATABASE_URL in .env): it starts with `mysql:`");
    std::fs::remove_file(p.join(".env")).unwrap();
    p.write("pgx.yaml", "database_url_env: APP_DB\n");
    let unreachable = p
        .pgx()
        .env("APP_DB", "postgres://app:hunter2@127.0.0.1:1/app")
        .args(["migrate", "status"])
        .fails();
    unreachable
        .stderr_has("cannot connect to PostgreSQL at 127.0.0.1:1 (database \"app\", user \"app\") (URL from APP_DB in the environment)");
    assert!(!unreachable.stderr.contains("hunter2"));
}

#[test]
fn a_port_that_is_not_postgresql_is_named_without_internal_source_locations() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let p = Project::new();
    p.add("one", "SELECT 1;", "SELECT 1;");
    let run = p
        .pgx()
        .args([
            "migrate",
            "status",
            "--database-url",
            &format!("postgres://u@127.0.0.1:{port}/db"),
        ])
        .fails();
    run.stderr_has("did not answer like PostgreSQL")
        .stderr_has("(URL from --database-url)");
    assert!(!run.stderr.contains("sqlx_"), "{}", run.stderr);
    drop(server);
}

#[test]
fn help_is_complete_and_completions_and_the_manual_come_from_it() {
    let p = Project::empty();
    p.pgx().arg("-V").ok().stdout_has("pgx ");
    let sub = p.pgx().args(["migrate", "up", "-V"]).run();
    assert_eq!(sub.code, Some(2), "-V belongs to pgx alone: {}", sub.stderr);
    let bash = p.pgx().args(["completions", "bash"]).ok().stdout;
    for word in ["baseline", "migrate", "--database-url", "--lock-timeout"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let script = p.join("pgx.bash");
    std::fs::write(&script, &bash).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    for shell in ["zsh", "fish"] {
        p.pgx()
            .args(["completions", shell])
            .ok()
            .stdout_has("baseline");
    }
    let man = p.pgx().arg("man").ok().stdout;
    assert!(
        man.starts_with(".ie") || man.contains(".TH pgx 1"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains("baseline"), "the manual lists every command");
    p.pgx().args(["man", "--out-dir", "man"]).ok();
    let pages = p.files("man");
    for page in [
        "pgx.1",
        "pgx-migrate-up.1",
        "pgx-dev-psql.1",
        "pgx-baseline.1",
    ] {
        assert!(pages.iter().any(|f| f == page), "{page} in {pages:?}");
    }
}
