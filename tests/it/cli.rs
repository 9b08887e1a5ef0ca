//! Command-line behaviour: files written, output, and the one-line errors of bad input.

use crate::support::{Project, TestDb, TestRole};

fn is_version(s: &str) -> bool {
    s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn init_scaffolds_and_refuses_to_overwrite() {
    let p = Project::new();
    let config = p.read("pgx.yaml");
    for key in [
        "migrations:",
        "patterns:",
        "templates:",
        "schema:",
        "database_url_env:",
    ] {
        assert!(config.contains(key), "{key} missing from\n{config}");
    }
    assert!(p.join("migrations").is_dir());
    assert!(
        p.read(".gitattributes")
            .lines()
            .any(|l| l == "*.sql text eol=lf")
    );
    assert!(p.read(".gitignore").lines().any(|l| l == ".pgx/"));

    p.write("pgx.yaml", "schema: mine\n");
    p.pgx().arg("init").fails().stderr_has("already exists");
    assert_eq!(p.read("pgx.yaml"), "schema: mine\n");
}

#[test]
fn init_into_a_directory_keeps_existing_gitignore() {
    let p = Project::empty();
    p.write("demo/.gitignore", "/target");
    p.pgx().args(["init", "demo"]).ok();
    assert_eq!(p.read("demo/.gitignore"), "/target\n.pgx/\n");
    assert!(p.join("demo/pgx.yaml").is_file());
}

#[test]
fn new_writes_a_named_pair_with_a_header() {
    let p = Project::new();
    let run = p
        .pgx()
        .args([
            "new",
            "timestamps",
            "OrderItems",
            "--set",
            "updated_column=changed_at",
        ])
        .ok();
    let files = p.files("migrations");
    assert_eq!(files.len(), 2, "{files:?}");
    let (version, rest) = files[0].split_once('_').unwrap();
    assert!(is_version(version), "{version}");
    assert_eq!(rest, "timestamps_order_items.down.sql");
    assert!(files[1].ends_with("_timestamps_order_items.up.sql"));
    assert!(
        run.stdout.contains(&files[1]),
        "prints the paths: {}",
        run.stdout
    );
    let up = p.read(&format!("migrations/{}", files[1]));
    assert!(
        up.starts_with(&format!(
            "-- pgx {}: pattern \"timestamps\" (up)\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{up}"
    );
    assert!(up.contains("-- table: \"public\".\"OrderItems\"\n"), "{up}");
    assert!(
        up.contains("-- param updated_column = \"changed_at\"\n"),
        "{up}"
    );
    assert!(
        up.contains("-- param created_column = \"created_at\"\n"),
        "{up}"
    );
    assert!(up.contains("ADD COLUMN changed_at"), "{up}");
    assert!(up.contains("public.\"OrderItems\""), "{up}");

    p.pgx()
        .args([
            "new",
            "timestamps",
            "orders",
            "--name",
            "Add Timestamps To Orders",
        ])
        .ok();
    assert!(
        p.files("migrations")
            .iter()
            .any(|f| f.ends_with("_add_timestamps_to_orders.up.sql"))
    );
}

#[test]
fn versions_strictly_increase_within_one_second_and_nothing_is_overwritten() {
    let p = Project::new();
    for _ in 0..6 {
        p.pgx().args(["new", "timestamps", "orders"]).ok();
    }
    let files = p.files("migrations");
    assert_eq!(files.len(), 12);
    let mut versions: Vec<i64> = files
        .iter()
        .map(|f| f.split('_').next().unwrap().parse().unwrap())
        .collect();
    versions.dedup();
    assert_eq!(versions.len(), 6, "{files:?}");
    assert!(versions.windows(2).all(|w| w[0] < w[1]));
    assert!(
        !files.iter().any(|f| f.starts_with('.')),
        "temporary files left: {files:?}"
    );
}

/// Many `pgx new` processes at once in one project: each gets a version of its own (two that
/// picked the same second must not both keep it under different descriptions), every file is
/// whole when it appears, none is replaced, and no temporary file stays.
#[test]
fn concurrent_new_processes_never_share_a_version_nor_overwrite_a_file() {
    let p = Project::new();
    // An existing migration at a version far ahead: everything goes past it, nothing replaces it.
    let ahead = "29991231235959_keep_me.up.sql";
    p.write(&format!("migrations/{ahead}"), "SELECT 'mine';\n");
    const N: usize = 12;
    let children: Vec<_> = (0..N)
        .map(|i| {
            p.pgx()
                .args(["new", "timestamps", &format!("table_{i}")])
                .spawn()
        })
        .collect();
    // While they run, every migration file seen is complete (atomic appearance). How many are
    // seen depends on scheduling, so this is a bonus check; the final one below reads all 2N.
    let mut seen = 0;
    for child in children {
        for f in p.files("migrations") {
            if f.ends_with(".sql") && !f.starts_with('.') && f != ahead {
                let text = p.read(&format!("migrations/{f}"));
                assert!(
                    text.contains("pattern \"timestamps\"") && text.trim_end().ends_with(';'),
                    "{f} incomplete:\n{text}"
                );
                seen += 1;
            }
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let files = p.files("migrations");
    assert_eq!(files.len(), 2 * N + 1, "{files:?}");
    assert_eq!(p.read(&format!("migrations/{ahead}")), "SELECT 'mine';\n");
    let mut versions: Vec<&str> = files
        .iter()
        .filter(|f| f.as_str() != ahead)
        .map(|f| f.split('_').next().unwrap())
        .collect();
    versions.dedup();
    assert_eq!(versions.len(), N, "each process its own version: {files:?}");
    for i in 0..N {
        let mine: Vec<_> = files
            .iter()
            .filter(|f| f.contains(&format!("_timestamps_table_{i}.")))
            .collect();
        assert_eq!(mine.len(), 2, "table_{i}: {files:?}");
        for f in mine {
            let text = p.read(&format!("migrations/{f}"));
            assert!(
                text.contains("pattern \"timestamps\"") && text.contains(&format!("table_{i}")),
                "{f}:\n{text}"
            );
        }
    }
    assert!(
        !files.iter().any(|f| f.starts_with('.')),
        "temporary files left: {files:?}"
    );
    eprintln!("{seen} files read while the processes ran");
}

#[test]
fn dry_run_prints_both_files_and_writes_nothing() {
    let p = Project::new();
    let run = p
        .pgx()
        .args(["new", "timestamps", "orders", "--dry-run"])
        .ok();
    run.stdout_has("_timestamps_orders.up.sql")
        .stdout_has("_timestamps_orders.down.sql");
    run.stdout_has("CREATE TRIGGER").stdout_has("DROP TRIGGER");
    assert!(p.files("migrations").is_empty());
}

#[test]
fn unknown_pattern_names_the_closest() {
    let p = Project::new();
    p.pgx()
        .args(["new", "timestamp", "orders"])
        .fails()
        .stderr_has("unknown pattern `timestamp`")
        .stderr_has("did you mean `timestamps`");
    assert!(p.files("migrations").is_empty());
}

#[test]
fn unknown_parameter_lists_valid_keys_and_the_closest() {
    let p = Project::new();
    let run = p
        .pgx()
        .args(["new", "timestamps", "orders", "--set", "update_column=x"])
        .fails();
    run.stderr_has("no parameter `update_column`")
        .stderr_has("did you mean `updated_column`")
        .stderr_has("created_column, updated_column, adopt, import_role, lock_timeout");
    assert!(p.files("migrations").is_empty());
}

#[test]
fn ill_typed_and_malformed_parameters_say_what_was_expected() {
    let p = Project::new();
    p.pgx()
        .args(["new", "timestamps", "orders", "--set", "lock_timeout=soon"])
        .fails()
        .stderr_has("lock_timeout")
        .stderr_has("expected a duration with its unit");
    p.pgx()
        .args(["new", "timestamps", "orders", "--set", "lock_timeout=5000"])
        .fails()
        .stderr_has("has no unit: write 5000ms, 5000s or 5000min");
    p.pgx()
        .args(["new", "timestamps", "orders", "--set", "novalue"])
        .fails()
        .stderr_has("KEY=VALUE");
    p.pgx()
        .args(["new", "timestamps"])
        .fails()
        .stderr_has("needs a table");
    assert!(p.files("migrations").is_empty());
}

const PROJECT_PATTERN: &str = "\
name: comment
summary: Comments a table
target: table
parameters:
  - name: text
    type: string
    required: true
    doc: The comment.
templates:
  up: comment/up.sql.tera
  down: comment/down.sql.tera
";

#[test]
fn project_patterns_add_to_and_override_built_ins() {
    let p = Project::new();
    p.write("patterns/comment.yaml", PROJECT_PATTERN);
    p.write(
        "templates/comment/up.sql.tera",
        "COMMENT ON TABLE {{ table | qualified }} IS {{ params.text | literal }};\n",
    );
    p.write(
        "templates/comment/down.sql.tera",
        "COMMENT ON TABLE {{ table | qualified }} IS NULL;\n",
    );
    let list = p.pgx().arg("patterns").ok();
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("comment "))
        .unwrap();
    assert!(line.contains("patterns/comment.yaml"), "{line}");
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with("timestamps ") && l.contains("built-in"))
    );

    // A required parameter must be given.
    p.pgx()
        .args(["new", "comment", "orders"])
        .fails()
        .stderr_has("requires parameter `text`");
    assert!(p.files("migrations").is_empty());

    // The literal filter keeps hostile text a string.
    let db = TestDb::new();
    db.exec("CREATE TABLE orders (id int)");
    p.pgx()
        .args([
            "new",
            "comment",
            "orders",
            "--set",
            "text=it's'; DROP TABLE orders; --\\",
        ])
        .ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        db.scalar("SELECT obj_description('orders'::regclass)")
            .as_deref(),
        Some("it's'; DROP TABLE orders; --\\")
    );

    // Overriding a built-in pattern by name: listed once, with where it comes from.
    let spec = p
        .pgx()
        .args(["patterns", "show", "timestamps", "--json"])
        .ok()
        .stdout;
    assert!(spec.contains("\"built-in\""));
    p.write(
        "patterns/timestamps.yaml",
        "name: timestamps\nsummary: our own\ntarget: table\ntemplates: {up: comment/down.sql.tera, down: comment/down.sql.tera}\n",
    );
    let list = p.pgx().arg("patterns").ok().stdout;
    let lines: Vec<&str> = list
        .lines()
        .filter(|l| l.starts_with("timestamps "))
        .collect();
    assert_eq!(lines.len(), 1, "{list}");
    assert!(
        lines[0].contains("overrides built-in") && lines[0].contains("our own"),
        "{list}"
    );
    std::fs::remove_file(p.join("patterns/timestamps.yaml")).unwrap();

    // Overriding a built-in template by name.
    p.write("templates/timestamps/up.sql.tera", "SELECT 1;\n");
    let run = p
        .pgx()
        .args(["new", "timestamps", "orders", "--dry-run"])
        .ok();
    assert!(run.stdout.contains("SELECT 1;"), "{}", run.stdout);

    let json: serde_json::Value =
        serde_json::from_str(&p.pgx().args(["patterns", "--json"]).ok().stdout).unwrap();
    let comment = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "comment")
        .unwrap();
    assert_eq!(comment["origin"]["kind"], "project");
}

#[test]
fn bad_pattern_yaml_names_file_line_and_column() {
    let p = Project::new();
    p.write("patterns/broken.yaml", "name: broken\nsummary: [unclosed\n");
    p.pgx()
        .arg("patterns")
        .fails()
        .stderr_has("patterns/broken.yaml:");

    p.write("patterns/broken.yaml", "name: broken\nsummary: x\nparameters:\n  - name: a\n    type: number\ntemplates: {up: a, down: b}\n");
    p.pgx()
        .arg("patterns")
        .fails()
        .stderr_has("patterns/broken.yaml:5:11:")
        .stderr_has("unknown variant `number`");

    p.write(
        "patterns/broken.yaml",
        "name: other\nsummary: x\ntemplates: {up: a, down: b}\n",
    );
    p.pgx()
        .arg("patterns")
        .fails()
        .stderr_has("patterns/broken.yaml:1:7:")
        .stderr_has("must match its file name");

    p.write("patterns/broken.yaml", "name: broken\nsummary: x\nparameters:\n  - name: n\n    type: integer\n    default: many\ntemplates: {up: a, down: b}\n");
    p.pgx()
        .arg("patterns")
        .fails()
        .stderr_has("patterns/broken.yaml:6:14:")
        .stderr_has("default of `n`");
}

#[test]
fn template_errors_name_the_template_line_and_column() {
    let p = Project::new();
    p.write(
        "patterns/raw.yaml",
        "name: raw\nsummary: x\ntemplates: {up: raw/up.sql.tera, down: raw/down.sql.tera}\n",
    );
    p.write(
        "templates/raw/up.sql.tera",
        "-- ok\nSELECT {{ table.name }};\n",
    );
    p.write("templates/raw/down.sql.tera", "SELECT 1;\n");
    p.pgx()
        .args(["new", "raw", "t; drop table x", "--dry-run"])
        .fails()
        .stderr_has("without a SQL quoting filter");
    p.write(
        "templates/raw/up.sql.tera",
        "-- ok\nSELECT {{ table.name | safe }};\n",
    );
    p.pgx()
        .args(["new", "raw", "t", "--dry-run"])
        .fails()
        .stderr_has("templates/raw/up.sql.tera:2:");
}

#[test]
fn patterns_show_documents_parameters_and_renders_an_example() {
    let p = Project::new();
    let run = p.pgx().args(["patterns", "show", "timestamps"]).ok();
    run.stdout_has("created_column")
        .stdout_has("default: created_at")
        .stdout_has("Example: pgx new timestamps orders")
        .stdout_has("CREATE TRIGGER");
    let json: serde_json::Value = serde_json::from_str(
        &p.pgx()
            .args(["patterns", "show", "timestamps", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["parameters"][0]["name"], "created_column");
    assert_eq!(json["parameters"][0]["default"], "created_at");
    assert!(
        json["example"]["up"]
            .as_str()
            .unwrap()
            .contains("CREATE TRIGGER")
    );
    p.pgx()
        .args(["patterns", "show", "timestamp"])
        .fails()
        .stderr_has("did you mean `timestamps`");
}

/// A port nothing listens on: bound, then released.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn unreachable_database_names_host_and_port_but_never_the_password() {
    let p = Project::new();
    p.add("one", "SELECT 1;", "SELECT 1;");
    let port = free_port();
    let run = p
        .pgx()
        .args([
            "migrate",
            "up",
            "--database-url",
            &format!("postgres://alice:s3cr3tpw@127.0.0.1:{port}/app"),
        ])
        .fails();
    // pgx's own prefix, then the operating system's reason.
    run.stderr_has(&format!(
        "cannot connect to PostgreSQL at 127.0.0.1:{port} (database \"app\", user \"alice\")"
    ))
    .stderr_has("Connection refused");
    assert!(!run.stderr.contains("s3cr3tpw"), "{}", run.stderr);

    // A server that answers but refuses (the test server, a database it lacks): the message is
    // the server's own, after pgx's prefix, still without the password.
    let mut url = url::Url::parse(&crate::support::admin_url()).unwrap();
    url.set_password(Some("s3cr3tpw")).unwrap();
    url.set_path("/pgx_no_such_database");
    let run = p
        .pgx()
        .env("DATABASE_URL", url.as_str())
        .args(["migrate", "status"])
        .fails();
    let line = run.stderr.lines().last().unwrap();
    let (prefix, server) = line
        .split_once("database \"pgx_no_such_database\" does not exist")
        .unwrap_or_else(|| panic!("the server's message is missing: {line}"));
    assert!(
        prefix.starts_with("error: cannot connect to PostgreSQL at ")
            && prefix.contains("(database \"pgx_no_such_database\""),
        "pgx's prefix names the database: {line}"
    );
    assert!(!server.contains("cannot connect"), "{line}");
    assert!(!run.stderr.contains("s3cr3tpw"), "{}", run.stderr);
}

#[test]
fn database_url_precedence_flag_env_dotenv_configured_variable() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("one", "CREATE TABLE one (id int);", "DROP TABLE one;");
    let bad = "postgres://postgres@127.0.0.1:1/nothing";

    // .env, when the environment has nothing.
    p.write(".env", &format!("DATABASE_URL={}\n", db.url));
    p.pgx()
        .args(["migrate", "status"])
        .ok()
        .stdout_has("pending");
    // The environment beats .env.
    p.pgx()
        .env("DATABASE_URL", bad)
        .args(["migrate", "status"])
        .fails()
        .stderr_has("127.0.0.1:1");
    // The flag beats the environment.
    p.pgx()
        .env("DATABASE_URL", bad)
        .args(["migrate", "status", "--database-url", &db.url])
        .ok();
    // The variable pgx.yaml names.
    std::fs::remove_file(p.join(".env")).unwrap();
    p.write("pgx.yaml", "database_url_env: APP_DB\n");
    p.pgx().env("APP_DB", &db.url).args(["migrate", "up"]).ok();
    assert_eq!(
        db.scalar("SELECT to_regclass('one') IS NOT NULL")
            .as_deref(),
        Some("t")
    );
}

#[test]
fn permission_denied_is_one_line_and_records_nothing() {
    // Declared first, dropped last: the role owns objects in the database.
    let role = TestRole::new("pgx_weak", "NOSUPERUSER");
    let db = TestDb::new();
    // The role may use the database but not create in schema public (PostgreSQL 15 default).
    db.exec(&format!(
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC; CREATE SCHEMA history AUTHORIZATION {r};
         ALTER ROLE {r} IN DATABASE {d} SET search_path = history, public",
        r = role.name,
        d = db.name
    ));
    let p = Project::new();
    p.add(
        "t",
        "CREATE TABLE public.t (id int);",
        "DROP TABLE public.t;",
    );
    let run = p
        .pgx()
        .env("DATABASE_URL", &db.url_as(&role.name))
        .args(["migrate", "up"])
        .fails();
    run.stderr_has("permission denied for schema public")
        .stderr_has("42501")
        .stderr_has("_t.up.sql:1");
    assert_eq!(
        db.scalar("SELECT count(*) FROM history._sqlx_migrations")
            .as_deref(),
        Some("0")
    );
}

#[test]
fn without_a_url_and_with_the_dev_cluster_off_the_error_says_where_a_url_goes() {
    let p = Project::new();
    p.add("one", "SELECT 1;", "SELECT 1;");
    p.pgx()
        .env("PGX_DEV", "off")
        .args(["migrate", "up"])
        .fails()
        .stderr_has("no database URL")
        .stderr_has("DATABASE_URL");
    assert!(!p.join(".pgx").exists(), "no cluster was made");
}
