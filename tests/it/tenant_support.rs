//! Helpers of the tenant pattern's tests: an application role, running SQL as a role, a table
//! owned by a role with rows of two tenants, and `pgx new tenant` with the parameters a test
//! needs.

use crate::support::{Project, Run, TestDb, TestRole, try_rows};

pub const A: &str = "00000000-0000-0000-0000-00000000000a";
pub const B: &str = "00000000-0000-0000-0000-00000000000b";

pub type Rows = Vec<Vec<Option<String>>>;

/// A login role that is neither superuser nor BYPASSRLS: what an application connects as.
pub fn app_role() -> TestRole {
    TestRole::new("pgx_app", "NOSUPERUSER NOBYPASSRLS")
}

/// Runs `sql` (several statements, one session) as `role`.
pub fn as_role(db: &TestDb, role: &TestRole, sql: &str) -> Result<Rows, String> {
    try_rows(&db.url_as(&role.name), sql)
}

pub fn ok_as(db: &TestDb, role: &TestRole, sql: &str) -> Rows {
    as_role(db, role, sql).unwrap_or_else(|e| panic!("as {}: {e}\n{sql}", role.name))
}

/// The first column of every row, as `role`.
pub fn column_as(db: &TestDb, role: &TestRole, sql: &str) -> Vec<String> {
    ok_as(db, role, sql)
        .into_iter()
        .map(|r| r.into_iter().next().flatten().unwrap_or_default())
        .collect()
}

/// `before.diff(after)`, less one difference PostgreSQL cannot avoid: once a GRANT has spelled
/// out a table's ACL, revoking it again leaves the owner's default privileges written out
/// (`{owner=arwdDxt/owner}`) instead of the implicit NULL, which grants exactly the same.
pub fn restored(
    before: &pgx::db::snapshot::Snapshot,
    after: &pgx::db::snapshot::Snapshot,
) -> Vec<pgx::db::snapshot::Difference> {
    before
        .diff(after)
        .into_iter()
        .filter(|d| match (&d.before, &d.after) {
            (Some(b), Some(a)) if d.object.starts_with("relation ") => {
                let owner = b
                    .split_whitespace()
                    .skip_while(|w| *w != "owner")
                    .nth(1)
                    .unwrap_or_default();
                let spelled_out = format!("acl {{{owner}=arwdDxt/{owner}}}");
                a.replacen(&spelled_out, "acl -", 1) != *b
            }
            _ => true,
        })
        .collect()
}

pub fn tenant_of(tenant: &str) -> String {
    format!("SET app.current_tenant = '{tenant}';")
}

/// A project whose first migration creates `orders` owned by `owner`, and pgx's schema, both
/// applied.
pub fn orders_owned_by(db: &TestDb, owner: &TestRole) -> Project {
    let p = Project::new();
    p.add(
        "create orders",
        &format!(
            "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text NOT NULL);
             ALTER TABLE orders OWNER TO {};",
            owner.name
        ),
        "DROP TABLE orders;",
    );
    install_pgx(&p);
    p.pgx().db(db).args(["migrate", "up"]).ok();
    p
}

/// Rows for tenants A and B, inserted by the superuser (who bypasses row security).
pub fn seed(db: &TestDb) {
    db.exec(&format!(
        "INSERT INTO orders (item, tenant_id) VALUES ('a1', '{A}'), ('a2', '{A}'), ('b1', '{B}'), ('b2', '{B}'), ('b3', '{B}')"
    ));
}

/// `pgx new tenant TABLE --set S...`, keeping the table's primary key `<table>_pkey` unique
/// across tenants (as an identity key usually is), which the pattern refuses unless told.
pub fn new_tenant(p: &Project, table: &str, sets: &[&str]) -> Run {
    let global = format!("global_unique={table}_pkey");
    let all: Vec<&str> = std::iter::once(global.as_str())
        .chain(sets.iter().copied())
        .collect();
    new_tenant_as_given(p, table, &all)
}

/// Deletes the files a `pgx new` run wrote, to render the pattern again differently.
pub fn remove_written(p: &Project, run: &Run) {
    for file in run.stdout.lines() {
        std::fs::remove_file(p.join(file)).unwrap();
    }
}

/// The written files whose name contains `part` (e.g. `tenant_orders`), in order.
pub fn written(run: &Run, part: &str) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|f| f.contains(part))
        .map(str::to_string)
        .collect()
}

/// Writes pgx's own schema's migration (`pgx new pgx_install`), which the tenant pattern
/// requires; `pgx new tenant` then writes only its own.
pub fn install_pgx(p: &Project) {
    p.pgx().args(["new", "pgx_install"]).ok();
}

/// psql, from PATH or PostgreSQL's own folder.
fn psql_binary() -> std::path::PathBuf {
    let in_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("psql"))
            .find(|p| p.is_file())
    });
    in_path
        .or_else(|| {
            let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|e| Some(e.ok()?.path().join("bin/psql")))
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            found.pop()
        })
        .expect("psql is installed with PostgreSQL")
}

/// Runs `sql` through `psql` as a script (continuing after errors, as `psql -f` does by
/// default, the most a smuggled statement could hope for); returns (success, stdout, stderr).
pub fn psql(url: &str, sql: &str, single_transaction: bool) -> (bool, String, String) {
    use std::io::Write as _;
    let mut cmd = std::process::Command::new(psql_binary());
    cmd.arg("--no-psqlrc")
        .arg("-X")
        .arg("-d")
        .arg(url)
        .arg("-f")
        .arg("-");
    if single_transaction {
        cmd.arg("--single-transaction")
            .arg("-v")
            .arg("ON_ERROR_STOP=1");
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A project whose migrations create pgx's schema and `events (id, at<columns>)`, partitioned
/// by `at` with the partition `events_2024`, both owned by `owner`, then run `extra`; applied.
pub fn events_owned_by(db: &TestDb, owner: &TestRole, columns: &str, extra: &str) -> Project {
    let p = Project::new();
    install_pgx(&p);
    p.add(
        "events",
        &format!(
            "CREATE TABLE events (id bigint NOT NULL, at date NOT NULL{columns}) PARTITION BY RANGE (at);
             CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
             ALTER TABLE events OWNER TO {0}; ALTER TABLE events_2024 OWNER TO {0};
             {extra}",
            owner.name
        ),
        "DROP TABLE events CASCADE;",
    );
    p.pgx().db(db).args(["migrate", "up"]).ok();
    p
}

/// `pgx new tenant TABLE --set S...`, nothing more.
pub fn new_tenant_as_given(p: &Project, table: &str, sets: &[&str]) -> Run {
    let mut pgx = p.pgx().args(["new", "tenant", table]);
    for set in sets {
        pgx = pgx.args(["--set", set]);
    }
    pgx.ok()
}
