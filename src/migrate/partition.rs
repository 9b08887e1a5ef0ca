//! `pgx partition maintain`: keeps the tables of the `partition` pattern partitioned, by the
//! plan the shared infrastructure computes (`<schema>.plan()`): partitions for the current and
//! the next `premake` periods, rows moved out of the default partition, indexes the parent has
//! but a partition lacks, and retention.
//!
//! What can run inside a transaction is done by the infrastructure's `apply()` (the same code
//! pg_cron's procedure runs), one action per transaction. What cannot is done here, each as a
//! statement of its own: `DETACH PARTITION ... CONCURRENTLY` (refused by PostgreSQL while the
//! table has a default partition, in which case the plain DETACH is used and the action says
//! so) and `CREATE INDEX CONCURRENTLY` on each partition, attached to the parent's index.
//!
//! One maintainer works on a table at a time: a session advisory lock per table, which the
//! infrastructure's functions take too (per transaction), so runs from cron on several hosts
//! and pg_cron's job take turns; a table another maintainer holds is skipped, and what the
//! other one did is not done twice (every action is idempotent).

use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Row};

use crate::db::{self, url::DbUrl};
use crate::error::{Error, Result};
use crate::sql::quote_ident;

/// What to maintain, and how.
pub struct Options<'a> {
    /// The schema of the shared infrastructure (`partition_schema`).
    pub schema: &'a str,
    /// Tables to maintain (as `table` or `schema.table`); empty: every registered table.
    pub tables: &'a [String],
    pub dry_run: bool,
    /// How long one action may wait for a lock before it is retried.
    pub lock_timeout: Duration,
}

/// One action of maintenance, done or (dry run, or another maintainer holds the table) not.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub table: String,
    /// `create`, `move`, `index`, `detach`, `drop`, `archive`, `finalize`, `partman`, `skip`.
    pub action: String,
    pub partition: Option<String>,
    /// The line `pgx partition maintain` prints.
    pub line: String,
    pub done: bool,
}

/// How often an action that could not get its lock within `lock_timeout` is tried again.
const LOCK_ATTEMPTS: u32 = 5;

/// Runs maintenance, calling `report` with each action as it is done (or, dry run, planned).
pub async fn maintain(
    url: &DbUrl,
    options: &Options<'_>,
    report: &mut dyn FnMut(&Action),
) -> Result<Vec<Action>> {
    let mut conn = db::connect(url).await?;
    let result = run(&mut conn, options, report).await;
    db::close(conn).await;
    result
}

async fn run(
    conn: &mut PgConnection,
    options: &Options<'_>,
    report: &mut dyn FnMut(&Action),
) -> Result<Vec<Action>> {
    let s = quote_ident(options.schema)
        .map_err(|reason| Error::Identifier {
            what: "partition schema".into(),
            name: options.schema.into(),
            reason,
        })?
        .into_owned();
    let installed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                        WHERE n.nspname = $1 AND p.proname = 'plan')",
    )
    .bind(options.schema)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| Error::database("look for the partition infrastructure", &e))?;
    if !installed {
        return Err(Error::Usage(format!(
            "the partition infrastructure is not installed in schema {:?} of this database: apply the migrations of `pgx new partition` first",
            options.schema
        )));
    }
    db::exec(
        conn,
        &format!(
            "SET lock_timeout = {}",
            options.lock_timeout.as_millis().max(1)
        ),
        "set lock_timeout",
    )
    .await?;
    let tables = tables(conn, &s, options.tables).await?;
    let mut done = Vec::new();
    for (table, oid) in tables {
        let key: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {s}.lock_key($1::pg_catalog.oid::pg_catalog.regclass)"
        )))
        .bind(sqlx::postgres::types::Oid(oid))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| Error::database(format!("maintain {table}"), &e))?;
        let locked: bool = sqlx::query_scalar("SELECT pg_catalog.pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| Error::database(format!("maintain {table}"), &e))?;
        if !locked {
            let action = Action {
                line: format!("skip {table}: another maintainer is working on it"),
                table: table.clone(),
                action: "skip".into(),
                partition: None,
                done: false,
            };
            report(&action);
            done.push(action);
            continue;
        }
        let outcome = maintain_table(conn, &s, &table, oid, options.dry_run, report).await;
        let unlocked = sqlx::query("SELECT pg_catalog.pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await;
        done.extend(outcome?);
        unlocked.map_err(|e| Error::database(format!("unlock {table}"), &e))?;
    }
    Ok(done)
}

/// The tables to maintain: those named (each must be registered), else every registered one.
async fn tables(conn: &mut PgConnection, s: &str, names: &[String]) -> Result<Vec<(String, u32)>> {
    let registered: Vec<(String, u32)> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.parent::pg_catalog.text, t.parent::pg_catalog.oid FROM {s}.tables t ORDER BY 1"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| Error::database("read the partitioned tables", &e))?
    .iter()
    .map(|r| {
        (
            r.get::<String, _>(0),
            r.get::<sqlx::postgres::types::Oid, _>(1).0,
        )
    })
    .collect();
    if names.is_empty() {
        return Ok(registered);
    }
    let mut out = Vec::new();
    for name in names {
        let oid: Option<sqlx::postgres::types::Oid> =
            sqlx::query_scalar("SELECT pg_catalog.to_regclass($1)::pg_catalog.oid")
                .bind(name)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| Error::database(format!("look up table {name:?}"), &e))?;
        let Some(found) = oid.and_then(|o| registered.iter().find(|(_, r)| *r == o.0)) else {
            return Err(Error::Usage(format!(
                "table {name:?} is not partitioned by the partition pattern in this database (registered: {})",
                if registered.is_empty() {
                    "none".to_string()
                } else {
                    registered
                        .iter()
                        .map(|(t, _)| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        };
        if !out.contains(found) {
            out.push(found.clone());
        }
    }
    Ok(out)
}

/// One planned action, as `<schema>.plan()` returns it.
struct Planned {
    action: String,
    period: Option<i64>,
    partition: Option<String>,
    lower: Option<String>,
    upper: Option<String>,
    rows: Option<i64>,
}

async fn maintain_table(
    conn: &mut PgConnection,
    s: &str,
    table: &str,
    oid: u32,
    dry_run: bool,
    report: &mut dyn FnMut(&Action),
) -> Result<Vec<Action>> {
    let context = |what: &str| format!("maintain {table}: {what}");
    let plan: Vec<Planned> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT action, period, partition, lower_bound, upper_bound, row_count
         FROM {s}.plan($1::pg_catalog.oid::pg_catalog.regclass)"
    )))
    .bind(sqlx::postgres::types::Oid(oid))
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| Error::database(context("plan"), &e))?
    .iter()
    .map(|r| Planned {
        action: r.get(0),
        period: r.get(1),
        partition: r.get(2),
        lower: r.get(3),
        upper: r.get(4),
        rows: r.get(5),
    })
    .collect();
    let has_default: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class k ON k.oid = i.inhrelid
                        WHERE i.inhparent = $1 AND pg_catalog.pg_get_expr(k.relpartbound, k.oid) = 'DEFAULT')",
    )
    .bind(sqlx::postgres::types::Oid(oid))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| Error::database(context("look for a default partition"), &e))?;

    let mut out = Vec::new();
    for p in plan {
        let line = if dry_run {
            Some(describe(&p, has_default))
        } else {
            match p.action.as_str() {
                "index" => Some(build_index(conn, s, &p).await.map_err(|e| {
                    Error::database(context(&format!("index {}", show(&p.partition))), &e)
                })?),
                "detach" | "drop" | "archive" if !has_default => Some(
                    detach_concurrently(conn, s, table, oid, &p)
                        .await
                        .map_err(|e| {
                            Error::database(
                                context(&format!("{} {}", p.action, show(&p.partition))),
                                &e,
                            )
                        })?,
                ),
                _ => apply(conn, s, oid, &p)
                    .await
                    .map_err(|e| {
                        Error::database(
                            context(&format!("{} {}", p.action, show(&p.partition))),
                            &e,
                        )
                    })?
                    .map(|l| {
                        if matches!(p.action.as_str(), "detach" | "drop" | "archive") {
                            format!(
                                "{l}: a default partition exists, which DETACH CONCURRENTLY refuses"
                            )
                        } else {
                            l
                        }
                    }),
            }
        };
        // Another maintainer did it between the plan and now: nothing to report.
        let Some(line) = line else { continue };
        let action = Action {
            table: table.to_string(),
            action: p.action.clone(),
            partition: p.partition.clone(),
            line: if dry_run {
                format!("would {line}")
            } else {
                line
            },
            done: !dry_run,
        };
        report(&action);
        out.push(action);
    }
    Ok(out)
}

fn show(partition: &Option<String>) -> &str {
    partition.as_deref().unwrap_or("")
}

/// The line a planned action would print.
fn describe(p: &Planned, has_default: bool) -> String {
    let part = show(&p.partition);
    match p.action.as_str() {
        "create" => format!(
            "create {part} FOR VALUES FROM ({}) TO ({})",
            p.lower.as_deref().unwrap_or(""),
            p.upper.as_deref().unwrap_or("")
        ),
        "move" => format!(
            "create {part} moving {} rows from the default partition",
            p.rows.unwrap_or(0)
        ),
        "index" => format!(
            "index {part}: build {} CONCURRENTLY and attach it",
            p.lower.as_deref().unwrap_or("")
        ),
        "detach" | "drop" | "archive" if has_default => format!(
            "{} {part} (plain DETACH): a default partition exists, which DETACH CONCURRENTLY refuses",
            p.action
        ),
        "detach" | "drop" | "archive" => format!("{} {part} (DETACH CONCURRENTLY)", p.action),
        other => format!("{other} {part}"),
    }
}

/// An action the infrastructure does in one transaction.
async fn apply(
    conn: &mut PgConnection,
    s: &str,
    oid: u32,
    p: &Planned,
) -> std::result::Result<Option<String>, sqlx::Error> {
    let mut attempt = 1;
    loop {
        let result = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {s}.apply($1::pg_catalog.oid::pg_catalog.regclass, $2, $3, $4)"
        )))
        .bind(sqlx::postgres::types::Oid(oid))
        .bind(&p.action)
        .bind(p.period)
        .bind(&p.partition)
        .fetch_one(&mut *conn)
        .await;
        match result {
            Err(e) if retry(&mut attempt, &e).await => {}
            other => return other,
        }
    }
}

/// Runs `sql` on its own (outside a transaction), again after a pause when it could not get
/// its lock.
async fn execute(conn: &mut PgConnection, sql: &str) -> std::result::Result<(), sqlx::Error> {
    let mut attempt = 1;
    loop {
        match conn.execute(sqlx::AssertSqlSafe(sql.to_string())).await {
            Err(e) if retry(&mut attempt, &e).await => {}
            other => return other.map(|_| ()),
        }
    }
}

/// Retention without the exclusive lock on the parent: `DETACH ... CONCURRENTLY` (two
/// transactions PostgreSQL runs itself), then the infrastructure drops or archives it.
async fn detach_concurrently(
    conn: &mut PgConnection,
    s: &str,
    table: &str,
    oid: u32,
    p: &Planned,
) -> std::result::Result<String, sqlx::Error> {
    let part = show(&p.partition);
    // `table` and `part` are regclass output: quoted as identifiers by PostgreSQL.
    execute(
        conn,
        &format!("ALTER TABLE {table} DETACH PARTITION {part} CONCURRENTLY"),
    )
    .await?;
    let retired: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {s}.retire($1::pg_catalog.oid::pg_catalog.regclass, $2::pg_catalog.regclass, true)"
    )))
    .bind(sqlx::postgres::types::Oid(oid))
    .bind(part)
    .fetch_one(&mut *conn)
    .await?;
    Ok(format!(
        "{} {} (DETACH CONCURRENTLY)",
        p.action,
        retired.as_deref().unwrap_or(part)
    ))
}

/// A partition's share of an index created `ON ONLY` the parent: built CONCURRENTLY (a leftover
/// invalid one from an interrupted build is dropped first), then attached.
async fn build_index(
    conn: &mut PgConnection,
    s: &str,
    p: &Planned,
) -> std::result::Result<String, sqlx::Error> {
    let part = show(&p.partition);
    let parent_index = p.lower.as_deref().unwrap_or("");
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT index_name, create_sql, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(index_name)
         FROM {s}.partition_index($1::pg_catalog.regclass, $2::pg_catalog.regclass),
              pg_catalog.pg_class k JOIN pg_catalog.pg_namespace n ON n.oid = k.relnamespace
         WHERE k.oid = $2::pg_catalog.regclass"
    )))
    .bind(parent_index)
    .bind(part)
    .fetch_one(&mut *conn)
    .await?;
    let (create, qualified): (String, String) = (row.get(1), row.get(2));
    execute(
        conn,
        &format!("DROP INDEX CONCURRENTLY IF EXISTS {qualified}"),
    )
    .await?;
    // The build waits for the transactions that write to the partition, however long they
    // take: it holds SHARE UPDATE EXCLUSIVE, which no writer waits for, so lock_timeout (meant
    // to keep writers from queueing behind maintenance) is lifted for it. A build that gave up
    // would leave an invalid index behind.
    let lock_timeout: String =
        sqlx::query_scalar("SELECT pg_catalog.current_setting('lock_timeout')")
            .fetch_one(&mut *conn)
            .await?;
    conn.execute("SET lock_timeout = 0").await?;
    let built = conn.execute(sqlx::AssertSqlSafe(create)).await;
    sqlx::query("SELECT pg_catalog.set_config('lock_timeout', $1, false)")
        .bind(&lock_timeout)
        .execute(&mut *conn)
        .await?;
    built?;
    execute(
        conn,
        &format!("ALTER INDEX {parent_index} ATTACH PARTITION {qualified}"),
    )
    .await?;
    Ok(format!(
        "index {part}: built {qualified} CONCURRENTLY and attached it to {parent_index}"
    ))
}

/// Whether a statement that failed for want of a lock (SQLSTATE 55P03) should be tried again,
/// after a growing pause: maintenance waits behind a long transaction in short turns, so that
/// no queue of writers forms behind it.
async fn retry(attempt: &mut u32, e: &sqlx::Error) -> bool {
    let lock = matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("55P03"));
    if !lock || *attempt >= LOCK_ATTEMPTS {
        return false;
    }
    tokio::time::sleep(Duration::from_millis(100 * u64::from(*attempt))).await;
    *attempt += 1;
    true
}
