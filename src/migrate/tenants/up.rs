//! `pgx migrate up --tenants`: the tenant migrations in every tenant schema, several schemas at
//! a time, each over its own connection.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use sqlx::postgres::PgConnection;

use super::{Set, check_prefix, schemas};
use crate::db::url::DbUrl;
use crate::error::{Error, Result};
use crate::migrate::progress::{Interrupt, Sink};
use crate::migrate::runner::{Options, Outcome, Runner, Scope};

/// Options of `pgx migrate up --tenants`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub runner: Options,
    pub target: Option<i64>,
    pub ignore_missing: bool,
    pub jobs: usize,
    /// Stops every job: each cancels its running statement and rolls back.
    pub interrupt: Option<Interrupt>,
}

/// `pgx migrate up --tenants`: the tenant migrations in every tenant schema, `jobs` schemas at
/// a time. The first failure stops the run: no schema is started after it, those already
/// running finish, and the error names the failing schema. A failing migration leaves nothing
/// of itself behind (the runner applies each file in its own transaction).
pub async fn migrate_up(
    url: &DbUrl,
    prefix: &str,
    set: Set<'_>,
    options: &UpOptions,
    sink: Sink<'_>,
) -> Result<()> {
    check_prefix(prefix)?;
    check_target(set, options.target)?;
    let mut conn = crate::db::connect(url).await?;
    let found = schemas(&mut conn, prefix, &options.runner.trusted_roles, sink).await;
    crate::db::close(conn).await;
    let schemas = found?;
    let total = schemas.len();
    let run = Run {
        queue: RefCell::new(schemas.into()),
        stop: Cell::new(false),
        migrated: Cell::new(0),
        failures: RefCell::new(Vec::new()),
    };
    let job = Job {
        url,
        set,
        options,
        sink,
    };
    // Jobs borrow from this frame, so they are joined here rather than spawned.
    let workers: Vec<_> = (0..options.jobs.clamp(1, total.max(1)))
        .map(|_| worker(&run, &job))
        .collect();
    futures_util::future::join_all(workers).await;
    let mut failures = run.failures.take();
    if failures.is_empty() {
        return Ok(());
    }
    let (schema, source) = failures.remove(0);
    if schema.is_empty() {
        return Err(source);
    }
    let migrated = run.migrated.get();
    let also_failed = failures.iter().filter(|(s, _)| !s.is_empty()).count();
    Err(Error::TenantMigration {
        schema,
        migrated,
        total,
        also_failed,
        not_attempted: total.saturating_sub(migrated + 1 + also_failed),
        source: Box::new(source),
    })
}

/// Shared state of the jobs of one `migrate up --tenants`.
struct Run {
    queue: RefCell<VecDeque<String>>,
    stop: Cell<bool>,
    migrated: Cell<usize>,
    /// In the order they happened; the schema is empty when no schema was at fault.
    failures: RefCell<Vec<(String, Error)>>,
}

struct Job<'a> {
    url: &'a DbUrl,
    set: Set<'a>,
    options: &'a UpOptions,
    sink: Sink<'a>,
}

/// One job: its own connection, taking schemas from the queue until it is empty or a job failed.
async fn worker(run: &Run, job: &Job<'_>) {
    let mut conn = match crate::db::connect(job.url).await {
        Ok(c) => c,
        Err(e) => {
            run.stop.set(true);
            run.failures.borrow_mut().push((String::new(), e));
            return;
        }
    };
    loop {
        if run.stop.get() {
            break;
        }
        let Some(schema) = run.queue.borrow_mut().pop_front() else {
            break;
        };
        match migrate_schema(&mut conn, &schema, job).await {
            Ok(_) => run.migrated.set(run.migrated.get() + 1),
            Err(e) => {
                run.stop.set(true);
                run.failures.borrow_mut().push((schema, e));
                break;
            }
        }
    }
    crate::db::close(conn).await;
}

async fn migrate_schema(conn: &mut PgConnection, schema: &str, job: &Job<'_>) -> Result<Outcome> {
    let scope = Scope {
        schema: Some(schema.to_string()),
    };
    let mut runner = Runner::with_options(conn, scope, job.options.runner.clone())
        .await?
        .on_event(job.sink);
    if let Some(interrupt) = &job.options.interrupt {
        runner = runner.interruptible(interrupt, job.url).await?;
    }
    runner
        .up(
            job.set.migrations,
            job.set.dir,
            job.options.target,
            job.options.ignore_missing,
        )
        .await
}

pub fn check_target(set: Set<'_>, target: Option<i64>) -> Result<()> {
    match target {
        Some(t) if !set.migrations.iter().any(|m| m.version == t) => Err(Error::UnknownVersion {
            version: t,
            dir: set.dir.display().to_string(),
        }),
        _ => Ok(()),
    }
}

/// `pgx migrate up --tenants --dry-run`: the script for every tenant schema, changing nothing.
pub async fn up_script(
    url: &DbUrl,
    prefix: &str,
    set: Set<'_>,
    options: &UpOptions,
    sink: Sink<'_>,
) -> Result<String> {
    check_prefix(prefix)?;
    check_target(set, options.target)?;
    let mut conn = crate::db::connect(url).await?;
    let result = async {
        let mut script = String::new();
        for schema in schemas(&mut conn, prefix, &options.runner.trusted_roles, sink).await? {
            let mut runner = Runner::with_options(
                &mut conn,
                Scope {
                    schema: Some(schema.clone()),
                },
                options.runner.clone(),
            )
            .await?;
            script.push_str(&format!("\n-- tenant schema {schema:?}\n"));
            script.push_str(
                &runner
                    .up_script(
                        set.migrations,
                        set.dir,
                        options.target,
                        options.ignore_missing,
                    )
                    .await?,
            );
        }
        Ok(script.trim_start().to_string())
    }
    .await;
    crate::db::close(conn).await;
    result
}
