//! Test harness: a database per test (dropped afterwards), a pgx project per test in a
//! temporary folder, and a fluent way to run the `pgx` binary against them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use pgx::db::snapshot::Snapshot;
use sqlx::{Connection, Row};

/// The server tests create their databases on. `PGX_TEST_ADMIN_URL` wins, then `DATABASE_URL`;
/// without either, the suite's own dev cluster (the code behind `pgx dev`), so the tests pass
/// on a machine with PostgreSQL installed but no server running.
pub fn admin_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        ["PGX_TEST_ADMIN_URL", "DATABASE_URL"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(shared_dev_cluster)
    })
    .clone()
}

/// One cluster under `target/` for every test thread and test process: the cluster's file lock
/// makes the first one create and start it and the others wait, and it is never stopped, so the
/// next `cargo test` reuses it. It is the dev cluster of the project `target/tmp/pgx-test`, so
/// `pgx --dir target/tmp/pgx-test dev stop` stops it (and `pgx dev list` shows it).
fn shared_dev_cluster() -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pgx-test");
    let config = dir.join(pgx::project::CONFIG_FILE);
    if !config.is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        // Several test processes may get here at once: the same content whoever wins.
        let _ = std::fs::write(&config, pgx::project::Config::template());
    }
    let started =
        pgx::db::dev::Cluster::for_project(&dir).and_then(|c| c.ensure_running().map(|_| c));
    match started {
        Ok(cluster) => cluster.url().expose().to_string(),
        Err(e) => panic!(
            "cannot start the test suite's PostgreSQL cluster in {} (or set DATABASE_URL to a server's admin URL): {e}",
            dir.display()
        ),
    }
}

fn with_database(url: &str, db: &str) -> String {
    pgx::db::url::DbUrl::new(url)
        .with_database(db)
        .expect("admin URL parses")
        .expose()
        .to_string()
}

pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh database, dropped (with its connections) when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        let admin = admin_url();
        let name = unique("pgx_test");
        admin_exec(&admin, &format!("CREATE DATABASE {name}"));
        TestDb {
            url: with_database(&admin, &name),
            name,
            admin,
        }
    }

    /// The URL of this database for another user (role).
    pub fn url_as(&self, user: &str) -> String {
        let mut url = url::Url::parse(&self.url).unwrap();
        url.set_username(user).unwrap();
        url.set_password(None).unwrap();
        url.to_string()
    }

    pub fn try_exec(&self, sql: &str) -> Result<(), String> {
        self.try_rows(sql).map(|_| ())
    }

    pub fn exec(&self, sql: &str) {
        if let Err(e) = self.try_exec(sql) {
            panic!("SQL failed: {e}\n{sql}");
        }
    }

    /// Every row of every statement in `sql` (simple protocol: values as text).
    pub fn try_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        try_rows(&self.url, sql)
    }

    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.try_rows(sql)
            .unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"))
    }

    /// The first column of the first row.
    pub fn scalar(&self, sql: &str) -> Option<String> {
        self.rows(sql)
            .first()
            .and_then(|r| r.first().cloned())
            .flatten()
    }

    /// `scalar`, as the only rows' first column values.
    pub fn column(&self, sql: &str) -> Vec<String> {
        self.rows(sql)
            .into_iter()
            .map(|r| r.into_iter().next().flatten().unwrap_or_default())
            .collect()
    }

    pub fn snapshot(&self) -> Snapshot {
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            Snapshot::take(&mut conn).await.unwrap()
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        admin_exec(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

pub fn try_rows(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    block_on(async {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| e.to_string())?;
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(&mut conn)
            .await
            .map_err(|e| pgx::error::describe_db_error(&e))?;
        let _ = conn.close().await;
        Ok(rows
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get_unchecked::<Option<String>, _>(i).unwrap())
                    .collect()
            })
            .collect())
    })
}

fn admin_exec(admin: &str, sql: &str) {
    if let Err(e) = try_rows(admin, sql) {
        panic!(
            "admin SQL failed on {}: {e}\n{sql}",
            pgx::db::url::DbUrl::new(admin)
        );
    }
}

/// Roles are cluster-wide: a unique name per test keeps parallel tests apart. Dropped on Drop.
pub struct TestRole {
    pub name: String,
    admin: String,
}

impl TestRole {
    /// Creates a LOGIN role with the given extra options (e.g. "NOSUPERUSER NOBYPASSRLS").
    pub fn new(prefix: &str, options: &str) -> TestRole {
        let admin = admin_url();
        let name = unique(prefix);
        admin_exec(&admin, &format!("CREATE ROLE {name} LOGIN {options}"));
        TestRole { name, admin }
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        // Objects the role owns live in test databases that are dropped first or in this one.
        let _ = try_rows(&self.admin, &format!("DROP ROLE IF EXISTS {}", self.name));
    }
}

/// A pgx project in a temporary folder.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// `pgx init` in a new folder.
    pub fn new() -> Project {
        let p = Project::empty();
        p.pgx().arg("init").ok();
        p
    }

    /// A folder without pgx.yaml.
    pub fn empty() -> Project {
        Project {
            dir: tempfile::Builder::new()
                .prefix("pgx-test-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let path = self.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap()
    }

    /// Files in `rel`, sorted by name.
    pub fn files(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = match std::fs::read_dir(self.join(rel)) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// `pgx` run in the project folder, with no database URL from the outside environment.
    pub fn pgx(&self) -> Pgx {
        self.pgx_in(".")
    }

    /// `pgx` run in a folder of the project (`migrations`, say).
    pub fn pgx_in(&self, rel: &str) -> Pgx {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgx"));
        cmd.current_dir(self.join(rel))
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1");
        Pgx { cmd, input: None }
    }

    /// Writes a hand-made migration pair via `pgx add`; returns the up file's name.
    pub fn add(&self, desc: &str, up: &str, down: &str) -> String {
        let run = self
            .pgx()
            .args(["add", desc, "--up", up, "--down", down])
            .ok();
        let first = run.stdout.lines().next().unwrap().to_string();
        Path::new(&first)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

pub struct Pgx {
    cmd: Command,
    input: Option<String>,
}

impl Pgx {
    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }

    /// Points the command at `db` through DATABASE_URL.
    pub fn db(self, db: &TestDb) -> Self {
        self.env("DATABASE_URL", &db.url)
    }

    pub fn spawn(mut self) -> std::process::Child {
        self.cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Feeds `text` to the command's standard input.
    pub fn stdin(mut self, text: &str) -> Self {
        self.input = Some(text.to_string());
        self
    }

    pub fn run(mut self) -> Run {
        let command = format!("{:?}", self.cmd);
        let Some(input) = self.input.take() else {
            let out = self.cmd.output().expect("pgx runs");
            return Run::from(out, command);
        };
        let mut child = self
            .cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("pgx runs");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        Run::from(child.wait_with_output().unwrap(), command)
    }

    /// Runs and asserts success.
    pub fn ok(self) -> Run {
        let run = self.run();
        assert!(
            run.success,
            "expected success: {}\nstdout:\n{}\nstderr:\n{}",
            run.command, run.stdout, run.stderr
        );
        run
    }

    /// Runs and asserts failure with exactly one line on stderr that starts with `error: `.
    pub fn fails(self) -> Run {
        let run = self.run();
        assert!(
            !run.success,
            "expected failure: {}\nstdout:\n{}",
            run.command, run.stdout
        );
        assert_eq!(run.code, Some(1), "exit code: {}", run.stderr);
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "one error line expected:\n{}",
            run.stderr
        );
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        run
    }
}

pub struct Run {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub command: String,
}

impl Run {
    pub fn from(out: Output, command: String) -> Run {
        Run {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command,
        }
    }

    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }
}
