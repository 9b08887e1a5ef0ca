//! `pgx dev` and the dev-cluster fallback, on real clusters made with the installed binaries.
//! Every test gets its own project (and so its own cluster), deleted by `pgx dev reset --yes`
//! when the test ends.

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::support::{Project, Run, try_rows};

fn running_as_root() -> bool {
    pgx::db::dev::effective_uid() == 0
}

/// A project whose cluster is stopped and deleted when the test ends.
struct DevProject {
    p: Project,
    dir: Option<PathBuf>,
}

impl DevProject {
    /// A project the server's user can enter (as root the server runs as `postgres`), whatever
    /// the umask.
    fn new() -> DevProject {
        let p = Project::new();
        fs::set_permissions(p.path(), fs::Permissions::from_mode(0o755)).unwrap();
        DevProject { p, dir: None }
    }

    /// A project in `rel` under a fresh folder (`pgx init rel`), commands run with `--dir`.
    fn nested(rel: &str) -> DevProject {
        let p = Project::empty();
        fs::set_permissions(p.path(), fs::Permissions::from_mode(0o755)).unwrap();
        p.pgx().args(["init", rel]).ok();
        DevProject {
            dir: Some(p.join(rel)),
            p,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| self.p.path().to_path_buf())
    }

    fn pgx(&self) -> crate::support::Pgx {
        match &self.dir {
            Some(d) => self.p.pgx().arg("--dir").arg(d),
            None => self.p.pgx(),
        }
    }

    fn dev(&self, args: &[&str]) -> Run {
        self.pgx().arg("dev").args(args).ok()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.dev(&["status", "--json"]).stdout).unwrap()
    }

    fn url(&self) -> String {
        self.dev(&["url"]).stdout.trim().to_string()
    }
}

impl Drop for DevProject {
    fn drop(&mut self) {
        // A test may have deleted the project (and pruned its cluster).
        if self.root().join("pgx.yaml").is_file() {
            let _ = self.pgx().args(["dev", "reset", "--yes"]).run();
        }
    }
}

fn one_stderr_line(run: &Run) -> &str {
    assert_eq!(run.stderr.lines().count(), 1, "stderr:\n{}", run.stderr);
    run.stderr.trim_end()
}

fn scalar(url: &str, sql: &str) -> String {
    try_rows(url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))[0][0]
        .clone()
        .unwrap_or_default()
}

#[test]
fn start_stop_and_status_are_idempotent_and_the_server_listens_on_its_socket_only() {
    let d = DevProject::new();
    let status = d.status();
    assert_eq!(status["created"], false, "{status}");
    assert!(
        !d.root().join(".pgx/data").exists(),
        "status must not create anything"
    );
    d.dev(&["stop"]).stderr_has("not running");

    let first = d.dev(&["start"]);
    assert!(
        one_stderr_line(&first).ends_with("created and started it"),
        "{}",
        first.stderr
    );
    let again = d.dev(&["start"]);
    assert!(one_stderr_line(&again).ends_with("already running"));
    assert_eq!(first.stdout, again.stdout, "start prints the URL");
    let status = d.status();
    assert_eq!(
        (&status["created"], &status["running"]),
        (&true.into(), &true.into())
    );

    let url = d.url();
    assert_eq!(url, first.stdout.trim());
    // No TCP; the socket is in a directory only the server's user may enter.
    assert_eq!(scalar(&url, "SHOW listen_addresses"), "");
    assert_eq!(scalar(&url, "SHOW unix_socket_permissions"), "0700");
    let socket_dir = PathBuf::from(status["socket_dir"].as_str().unwrap());
    assert_eq!(socket_dir, d.root().join(".pgx/run"));
    assert!(socket_dir.join(".s.PGSQL.5432").exists());
    let data = fs::metadata(d.root().join(".pgx/data")).unwrap();
    assert_eq!(
        fs::metadata(&socket_dir).unwrap().mode() & 0o777,
        0o700,
        "socket directory"
    );
    assert_eq!(fs::metadata(&socket_dir).unwrap().uid(), data.uid());
    let pid = status["pid"].as_u64().unwrap();
    if running_as_root() {
        assert_ne!(data.uid(), 0, "PostgreSQL cannot run as root");
        assert_eq!(status["server_user"], "postgres");
        if let Ok(proc) = fs::metadata(format!("/proc/{pid}")) {
            assert_eq!(proc.uid(), data.uid(), "server runs as the data's owner");
        }
    }
    try_rows(
        &url,
        "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)",
    )
    .unwrap();

    let stop = d.dev(&["stop"]);
    assert!(one_stderr_line(&stop).ends_with("stopped it"));
    assert!(one_stderr_line(&d.dev(&["stop"])).ends_with("not running"));
    let status = d.status();
    assert_eq!(
        (&status["created"], &status["running"]),
        (&true.into(), &false.into())
    );
    assert!(try_rows(&url, "SELECT 1").is_err(), "stopped means stopped");

    let restart = d.dev(&["start"]);
    assert!(one_stderr_line(&restart).ends_with("started it"));
    assert_eq!(
        scalar(&url, "SELECT x FROM kept"),
        "7",
        "data survives a restart"
    );
}

#[test]
fn concurrent_commands_start_one_cluster() {
    let d = DevProject::new();
    let children: Vec<_> = (0..4)
        .map(|i| {
            let args: &[&str] = if i % 2 == 0 {
                &["migrate", "status"]
            } else {
                &["dev", "start"]
            };
            d.pgx().args(args).spawn()
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap(), "concurrent pgx".into()))
        .collect();
    let mut created = 0;
    for run in &runs {
        assert!(run.success, "{}", run.stderr);
        let line = one_stderr_line(run);
        if line.contains("created and started it") {
            created += 1;
        } else {
            assert!(line.contains("already running"), "{line}");
        }
    }
    assert_eq!(
        created, 1,
        "exactly one process creates and starts the cluster"
    );
    let status = d.status();
    assert_eq!(status["running"], true);
    let url = d.url();
    assert_eq!(
        scalar(
            &url,
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
        ),
        "1"
    );
}

#[test]
fn migrate_without_a_url_uses_the_dev_cluster_and_says_which_database() {
    let d = DevProject::new();
    assert!(
        d.p.read(".gitignore").lines().any(|l| l == ".pgx/"),
        "pgx init keeps the cluster out of git"
    );
    d.p.add(
        "create_orders",
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text NOT NULL);",
        "DROP TABLE orders;",
    );
    let up = d.pgx().args(["migrate", "up"]).ok();
    let line = one_stderr_line(&up);
    assert!(
        line.contains("no database URL set; using database \"postgres\" of the dev cluster in")
            && line.contains(".pgx"),
        "{line}"
    );
    let url = d.url();
    assert_eq!(
        scalar(&url, "SELECT count(*) FROM _sqlx_migrations WHERE success"),
        "1"
    );
    let status = d.pgx().args(["migrate", "status"]).ok();
    status.stdout_has("applied");
    assert!(one_stderr_line(&status).ends_with("(already running)"));

    // psql gets the cluster's database and the extra arguments.
    let psql = d
        .pgx()
        .args([
            "dev",
            "psql",
            "-X",
            "-At",
            "-c",
            "SELECT count(*) FROM orders",
        ])
        .ok();
    assert_eq!(psql.stdout.trim(), "0");

    // check runs on a scratch database of the same cluster and drops it.
    let check = d.pgx().arg("check").ok();
    check.stdout_has("ok    down to zero");
    assert!(one_stderr_line(&check).contains("dev cluster"));
    assert_eq!(
        scalar(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgx\\_check\\_%'"
        ),
        "0"
    );

    // reset wants --yes, and changes nothing without it.
    d.pgx()
        .args(["dev", "reset"])
        .fails()
        .stderr_has("pass --yes");
    assert_eq!(scalar(&url, "SELECT count(*) FROM orders"), "0");
    d.dev(&["reset", "--yes"]).stderr_has("deleted it");
    assert!(!d.root().join(".pgx/data").exists());
    // The next command gets a fresh, empty cluster.
    let fresh = d.pgx().args(["migrate", "status"]).ok();
    fresh.stdout_has("pending");
    assert!(one_stderr_line(&fresh).ends_with("(created and started it)"));
}

#[test]
fn a_project_too_deep_for_a_socket_path_gets_a_short_socket_directory() {
    let deep = format!("{}/project", ["deeply_nested_folder"; 6].join("/"));
    let d = DevProject::nested(&deep);
    assert!(
        d.root().join(".pgx/run/.s.PGSQL.5432").as_os_str().len() > 108,
        "the test needs a path longer than sun_path"
    );
    d.dev(&["start"]);
    let status = d.status();
    let socket_dir = PathBuf::from(status["socket_dir"].as_str().unwrap());
    assert!(socket_dir.starts_with("/tmp"), "{}", socket_dir.display());
    assert_eq!(fs::metadata(&socket_dir).unwrap().mode() & 0o777, 0o700);
    let url = d.url();
    assert_eq!(scalar(&url, "SELECT current_database()"), "postgres");
    assert_eq!(
        PathBuf::from(scalar(&url, "SHOW data_directory")),
        fs::canonicalize(d.root().join(".pgx/data")).unwrap()
    );
    d.dev(&["reset", "--yes"]);
    assert!(
        !socket_dir.exists(),
        "reset removes the socket directory too"
    );
}

#[test]
fn as_root_a_project_the_server_user_cannot_enter_keeps_its_data_in_that_users_home() {
    if !running_as_root() {
        eprintln!("skipped: only meaningful when the tests run as root");
        return;
    }
    // A folder like /root: `postgres` cannot enter it.
    let d = DevProject {
        p: Project::new(),
        dir: None,
    };
    fs::set_permissions(d.p.path(), fs::Permissions::from_mode(0o700)).unwrap();
    d.p.add("create_t", "CREATE TABLE t (x int);", "DROP TABLE t;");
    let up = d.pgx().args(["migrate", "up"]).ok();
    assert!(one_stderr_line(&up).ends_with("(created and started it)"));
    let link = d.root().join(".pgx/data");
    let target = fs::read_link(&link).expect(".pgx/data links to the data");
    assert!(
        target.starts_with("/var/lib/postgresql/pgx-dev")
            || target.to_string_lossy().contains("/pgx-dev/"),
        "{}",
        target.display()
    );
    assert_ne!(fs::metadata(&target).unwrap().uid(), 0);
    let url = d.url();
    assert_eq!(scalar(&url, "SELECT count(*) FROM t"), "0");
    assert_eq!(
        PathBuf::from(scalar(&url, "SHOW data_directory")),
        target,
        "the server uses the linked folder"
    );
    let home = target.parent().unwrap().to_path_buf();
    d.dev(&["reset", "--yes"]);
    assert!(
        !home.exists(),
        "reset deletes the data kept outside the project"
    );
    assert!(fs::symlink_metadata(&link).is_err());
}

#[test]
fn as_root_without_an_unprivileged_user_the_error_says_what_to_do() {
    if !running_as_root() {
        eprintln!("skipped: only meaningful when the tests run as root");
        return;
    }
    let d = DevProject::new();
    let run = d
        .pgx()
        .env("PGX_DEV_USER", "no_such_user_for_pgx")
        .args(["migrate", "status"])
        .fails();
    run.stderr_has("PostgreSQL refuses to run as root")
        .stderr_has("useradd")
        .stderr_has("PGX_DEV_USER")
        .stderr_has("DATABASE_URL");
    assert!(!d.root().join(".pgx/data").exists(), "no side effects");
}

#[test]
fn without_postgresql_binaries_the_error_names_what_to_install() {
    let d = DevProject::new();
    let run = d
        .pgx()
        .env("PGX_PG_BINDIR", "/nonexistent/pgx-test")
        .args(["migrate", "up"])
        .fails();
    run.stderr_has("no PostgreSQL server programs (initdb, pg_ctl, postgres)")
        .stderr_has("apt install postgresql")
        .stderr_has("brew install postgresql")
        .stderr_has("set DATABASE_URL");
    assert!(!Path::new(&d.root().join(".pgx/data")).exists());
}

/// Whether a process is alive (signal 0).
fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| !s.contains("State:\tZ"))
}

#[test]
fn psql_as_a_role_connects_as_one_row_security_applies_to() {
    let d = DevProject::new();
    d.p.add(
        "secret",
        "CREATE TABLE secret (id int); INSERT INTO secret VALUES (1), (2);
         ALTER TABLE secret ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
         CREATE POLICY only_odd ON secret USING (id % 2 = 1);
         GRANT SELECT ON secret TO PUBLIC;",
        "DROP TABLE secret;",
    );
    d.pgx().args(["migrate", "up"]).ok();
    let sql = ["-X", "-At", "-c", "SELECT count(*) FROM secret"];
    let superuser = d.pgx().args(["dev", "psql"]).args(sql).ok();
    assert_eq!(
        superuser.stdout.trim(),
        "2",
        "the superuser bypasses row security"
    );
    let first = d
        .pgx()
        .args(["dev", "psql", "--role", "app"])
        .args(sql)
        .ok();
    assert_eq!(
        first.stdout.trim(),
        "1",
        "the role sees what the policy allows"
    );
    first.stderr_has("created role \"app\" (LOGIN NOSUPERUSER NOBYPASSRLS)");
    let again = d
        .pgx()
        .args(["dev", "psql", "--role", "app"])
        .args(sql)
        .ok();
    assert!(!again.stderr.contains("created"), "{}", again.stderr);
    let attrs = d
        .pgx()
        .args(["dev", "psql", "-X", "-At", "-c"])
        .arg("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'app'")
        .ok();
    assert_eq!(attrs.stdout.trim(), "f|f|t");
    d.pgx()
        .args(["dev", "psql", "--role", "postgres", "-c", "SELECT 1"])
        .fails()
        .stderr_has("is a superuser or has BYPASSRLS");
}

#[test]
fn list_shows_clusters_and_prune_removes_those_whose_project_is_gone() {
    let d = DevProject::new();
    d.dev(&["start"]);
    let root = d.root();
    let elsewhere = Project::empty();
    let machine = |args: &[&str]| elsewhere.pgx().arg("dev").args(args).ok();
    let listed = |root: &Path| {
        let list: serde_json::Value =
            serde_json::from_str(&machine(&["list", "--json"]).stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["project"].as_str() == Some(root.to_str().unwrap()))
            .cloned()
    };
    let entry = listed(&root).expect("the running cluster is listed, from any folder");
    assert_eq!(
        (&entry["running"], &entry["project_exists"]),
        (&true.into(), &true.into())
    );
    assert!(entry["size"].as_u64().unwrap() > 10_000_000, "{entry}");
    let pid = entry["pid"].as_u64().unwrap();
    let text = machine(&["list"]).stdout;
    assert!(text.starts_with("PROJECT"), "{text}");
    assert!(text.contains(&format!("{}  ", root.display())), "{text}");
    // Clusters of existing projects are never pruned.
    machine(&["prune", root.to_str().unwrap()]).stderr_has("nothing to prune");
    assert!(alive(pid));

    // The project is deleted while its server runs.
    fs::remove_dir_all(&root).unwrap();
    let gone = listed(&root).expect("a cluster whose project is gone is listed");
    assert_eq!(
        (&gone["running"], &gone["project_exists"]),
        (&true.into(), &false.into())
    );
    machine(&["prune", "--dry-run", root.to_str().unwrap()])
        .stdout_has("would remove the dev cluster of");
    assert!(alive(pid), "a dry run stops nothing");
    machine(&["prune", root.to_str().unwrap()])
        .stdout_has(&format!("removed the dev cluster of {}", root.display()));
    assert!(!alive(pid), "the server of the deleted project is stopped");
    assert!(listed(&root).is_none());
}

#[test]
fn as_root_prune_collects_data_kept_in_the_server_users_home() {
    if !running_as_root() {
        eprintln!("skipped: only meaningful when the tests run as root");
        return;
    }
    // A folder like /root: `postgres` cannot enter it, so the data lives in its home.
    let d = DevProject {
        p: Project::new(),
        dir: None,
    };
    fs::set_permissions(d.p.path(), fs::Permissions::from_mode(0o700)).unwrap();
    d.dev(&["start"]);
    let target = fs::read_link(d.root().join(".pgx/data")).unwrap();
    let home = target.parent().unwrap().to_path_buf();
    assert_eq!(
        fs::read_to_string(home.join("project")).unwrap().trim(),
        d.root().join(".pgx").to_str().unwrap(),
        "the kept data names its project"
    );
    let root = d.root();
    fs::remove_dir_all(&root).unwrap();
    let pruned = Project::empty()
        .pgx()
        .args(["dev", "prune", root.to_str().unwrap()])
        .ok();
    pruned.stdout_has("removed the dev cluster of");
    assert!(!home.exists(), "{} is deleted", home.display());
}
