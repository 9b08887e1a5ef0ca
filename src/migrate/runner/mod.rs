//! Applies and reverts migrations over one sqlx connection, keeping `_sqlx_migrations` exactly
//! as sqlx's own Migrator does, and doing better where it falls short:
//!
//! - the advisory lock is sqlx's (so pgx and sqlx's Migrator exclude each other), waits at most
//!   `lock_timeout`, says after a second who holds it, and is released on every path;
//! - the history table is resolved once, refused unless the migrating role can trust it, and
//!   named qualified from then on (see `history`);
//! - every migration starts from a clean session (no `SET`, role or temporary table of an
//!   earlier one), and runs statement by statement (as psql does), so an error names the file
//!   and line; a transactional file and its history row commit together or not at all;
//! - a transactional migration runs with a short per-attempt `lock_timeout` and, when a
//!   statement fails only for want of its lock, is retried whole after a growing, jittered
//!   pause, so a busy table never queues its writers behind the migration for long;
//! - an [`Interrupt`] cancels the running statement on the server, rolls back, and releases
//!   the lock;
//! - server NOTICE and WARNING messages, retries and waits are reported as they happen, as
//!   [`Event`]s to the caller's sink;
//! - dry runs print the exact script that would run and change nothing.
//!
//! `session` holds the connection-level parts (statements, the lock, the session reset) and
//! `apply` one migration's attempts.

mod apply;
mod session;

use std::path::Path;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::files::Migration;
use super::history::{self, Applied, HistoryTable, StatusEntry, sqlx_lock_id, status_of};
use super::plan::{Down, check_target, hex, plan_down, plan_up, quote_text, script_entry};
use super::progress::{self, Event, Interrupt, MigrationRef, Sink};
use crate::db::notices::Capture;
use crate::db::{Canceller, url::DbUrl};
use crate::error::{Error, Result};

/// Where migrations run: the connection's default schema, or a tenant schema with its own
/// history table and its own lock.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub schema: Option<String>,
}

/// What `up` and `down` did: the versions, in the order they ran.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub versions: Vec<(i64, String, Duration)>,
}

impl Outcome {
    fn push(&mut self, m: &Migration, took: Duration) {
        self.versions.push((m.version, m.description.clone(), took));
    }
}

/// The per-attempt `lock_timeout` of a transactional migration, unless told otherwise.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(100);
/// How many times a migration that failed for want of a lock runs again, unless told otherwise.
pub const LOCK_RETRIES: u32 = 10;

/// How the runner waits for locks, and whom it trusts.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long to wait for the migration lock another migrator holds (zero: for ever).
    pub lock_timeout: Duration,
    /// `lock_timeout` of each attempt of a transactional migration (zero: the session's). A
    /// migration's own `SET LOCAL lock_timeout` (the patterns' parameter) takes precedence.
    pub attempt_timeout: Duration,
    /// Further attempts after one failed for want of a lock (SQLSTATE 55P03).
    pub lock_retries: u32,
    /// Roles besides the migrating one and superusers whose history tables and tenant schemas
    /// are trusted (`trusted_roles` in pgx.yaml).
    pub trusted_roles: Vec<String>,
}

impl Options {
    pub fn new(lock_timeout: Duration) -> Options {
        Options {
            lock_timeout,
            attempt_timeout: ATTEMPT_TIMEOUT,
            lock_retries: LOCK_RETRIES,
            trusted_roles: Vec::new(),
        }
    }
}

pub struct Runner<'c> {
    conn: &'c mut PgConnection,
    scope: Scope,
    options: Options,
    lock_key: i64,
    locked: bool,
    history: HistoryTable,
    sink: Sink<'c>,
    /// The server messages of this runner's statements (see `db::notices`).
    capture: Capture,
    interrupt: Option<(Interrupt, Canceller)>,
    /// The migration running now, which server messages are attributed to.
    current: Option<MigrationRef>,
    /// Migrations completed by the current `up`/`down`/`redo`, for an interruption's report.
    completed: Vec<(MigrationRef, &'static str)>,
}

impl<'c> Runner<'c> {
    /// Prepares `conn` for `scope`, with the default attempt timeout and retries.
    pub async fn new(
        conn: &'c mut PgConnection,
        scope: Scope,
        lock_timeout: Duration,
    ) -> Result<Runner<'c>> {
        Runner::with_options(conn, scope, Options::new(lock_timeout)).await
    }

    /// Prepares `conn` for `scope`: a tenant scope points `search_path` at the tenant's schema,
    /// so its unqualified objects live there; the history table is resolved (and checked) now,
    /// once.
    pub async fn with_options(
        conn: &'c mut PgConnection,
        scope: Scope,
        options: Options,
    ) -> Result<Runner<'c>> {
        let capture = Capture::new();
        let database: String = capture
            .wrap(sqlx::query_scalar("SELECT pg_catalog.current_database()").fetch_one(&mut *conn))
            .await
            .map_err(|e| Error::database("cannot read the current database", &e))?;
        let lock_key = match &scope.schema {
            None => sqlx_lock_id(&database),
            Some(schema) => sqlx_lock_id(&format!("{database}\u{1f}{schema}")),
        };
        let history = capture
            .wrap(history::resolve(
                conn,
                scope.schema.as_deref(),
                &options.trusted_roles,
            ))
            .await?;
        let mut runner = Runner {
            conn,
            scope,
            options,
            lock_key,
            locked: false,
            history,
            sink: &progress::ignore,
            capture,
            interrupt: None,
            current: None,
            completed: Vec::new(),
        };
        if runner.scope.schema.is_some() {
            runner.reset_session(false).await?;
        }
        Ok(runner)
    }

    /// Reports every event to `sink` as it happens.
    pub fn on_event(mut self, sink: Sink<'c>) -> Self {
        self.sink = sink;
        self
    }

    /// Makes `interrupt` stop this runner: the statement running then is cancelled on the
    /// server (over a second connection to `url`, which opened this one).
    pub async fn interruptible(mut self, interrupt: &Interrupt, url: &DbUrl) -> Result<Self> {
        let canceller = self
            .capture
            .wrap(Canceller::for_session(url, self.conn))
            .await?;
        self.interrupt = Some((interrupt.clone(), canceller));
        Ok(self)
    }

    fn scope_label(&self) -> String {
        match &self.scope.schema {
            None => "this database".to_string(),
            Some(s) => format!("schema {s:?}"),
        }
    }

    fn emit(&self, event: &Event) {
        (self.sink)(self.scope.schema.as_deref(), event);
    }

    /// Runs `f` holding the migration lock, and releases the lock whatever `f` returns.
    async fn locked<T>(&mut self, f: impl AsyncFnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.completed.clear();
        self.lock().await?;
        let result = f(self).await;
        let released = self.unlock().await;
        match result {
            Err(Error::Interrupted {
                signal,
                exit_code,
                message,
            }) => Err(Error::Interrupted {
                signal,
                exit_code,
                message: format!(
                    "{message}; {}",
                    if released {
                        "the migration lock was released"
                    } else {
                        "the migration lock could not be released (it goes with the session)"
                    }
                ),
            }),
            other => other,
        }
    }

    async fn ensure_table(&mut self) -> Result<()> {
        if self.history.exists {
            return Ok(());
        }
        let ddl = history::table_ddl(&self.history.qualified);
        if let Err(e) = self.query(&ddl).await {
            // Another runner (sqlx-cli takes no lock) created it at the same moment: its
            // catalog rows won, which is as good as ours.
            if !matches!(session::sqlstate(&e).as_deref(), Some("23505" | "42P07")) {
                return Err(Error::database(
                    format!("cannot create {}", self.history.qualified),
                    &e,
                ));
            }
        }
        // Whoever created it, check it as if it had been found.
        let schema = self.history.schema.clone();
        self.history = self
            .capture
            .wrap(history::resolve(
                self.conn,
                Some(&schema),
                &self.options.trusted_roles,
            ))
            .await?;
        self.flush_messages();
        Ok(())
    }

    /// The history, oldest first; empty when the table does not exist (nothing is created).
    pub async fn applied(&mut self) -> Result<Vec<Applied>> {
        if !self.history.exists {
            return Ok(Vec::new());
        }
        let query = format!(
            "SELECT version, description, installed_on, success, checksum, execution_time \
             FROM {} ORDER BY version",
            self.history.qualified
        );
        let rows = self
            .capture
            .wrap(sqlx::query(sqlx::AssertSqlSafe(query)).fetch_all(&mut *self.conn))
            .await;
        self.flush_messages();
        let read = |e| Error::database(format!("cannot read {}", self.history.qualified), &e);
        rows.map_err(read)?
            .iter()
            .map(|r| {
                Ok(Applied {
                    version: r.try_get(0)?,
                    description: r.try_get(1)?,
                    installed_on: r.try_get(2)?,
                    success: r.try_get(3)?,
                    checksum: r.try_get(4)?,
                    execution_time: r.try_get(5)?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(read)
    }

    pub async fn status(&mut self, migrations: &[Migration]) -> Result<Vec<StatusEntry>> {
        let applied = self.applied().await?;
        Ok(status_of(migrations, &applied))
    }

    /// Applies pending migrations up to `target` (all when `None`).
    pub async fn up(
        &mut self,
        migrations: &[Migration],
        dir: &Path,
        target: Option<i64>,
        ignore_missing: bool,
    ) -> Result<Outcome> {
        check_target(migrations, dir, target)?;
        self.locked(async |r: &mut Self| {
            r.ensure_table().await?;
            let applied = r.applied().await?;
            let todo = plan_up(migrations, &applied, dir, target, ignore_missing)?;
            let mut outcome = Outcome::default();
            for m in todo {
                outcome.push(m, r.apply(m).await?);
            }
            Ok(outcome)
        })
        .await
    }

    /// Reverts the `steps` latest applied migrations, or every one newer than `target`.
    pub async fn down(
        &mut self,
        migrations: &[Migration],
        dir: &Path,
        how: Down,
    ) -> Result<Outcome> {
        self.locked(async |r: &mut Self| {
            let applied = r.applied().await?;
            let todo = plan_down(migrations, &applied, dir, how)?;
            let mut outcome = Outcome::default();
            for (m, down) in todo {
                outcome.push(m, r.revert(m, down).await?);
            }
            Ok(outcome)
        })
        .await
    }

    /// Reverts the latest applied migration and applies it again, under one lock.
    pub async fn redo(&mut self, migrations: &[Migration], dir: &Path) -> Result<Outcome> {
        self.locked(async |r: &mut Self| {
            let applied = r.applied().await?;
            let todo = plan_down(migrations, &applied, dir, Down::Steps(1))?;
            let Some((m, down)) = todo.into_iter().next() else {
                return Err(Error::Usage(
                    "nothing to redo: no migration is applied".into(),
                ));
            };
            let mut outcome = Outcome::default();
            outcome.push(m, r.revert(m, down).await?);
            outcome.push(m, r.apply(m).await?);
            Ok(outcome)
        })
        .await
    }

    /// Records `m` as applied without running it (`pgx baseline`: its schema is already there),
    /// refusing when the history already holds any migration.
    pub async fn record_applied(&mut self, m: &Migration) -> Result<()> {
        self.locked(async |r: &mut Self| {
            r.ensure_table().await?;
            let applied = r.applied().await?;
            if let Some(last) = applied.last() {
                return Err(Error::Usage(format!(
                    "{} already has {} migration{} in _sqlx_migrations (the latest {} {}): a baseline is for a database without migration history",
                    r.scope_label(),
                    applied.len(),
                    if applied.len() == 1 { "" } else { "s" },
                    last.version,
                    last.description
                )));
            }
            let record = format!(
                "INSERT INTO {} (version, description, success, checksum, execution_time) \
                 VALUES ($1, $2, TRUE, $3, 0)",
                r.history.qualified
            );
            let recorded = r
                .capture
                .wrap(
                    sqlx::query(sqlx::AssertSqlSafe(record))
                        .bind(m.version)
                        .bind(&m.description)
                        .bind(&m.up.checksum)
                        .execute(&mut *r.conn),
                )
                .await;
            r.flush_messages();
            recorded.map_err(|e| {
                Error::database("cannot record the baseline in _sqlx_migrations", &e)
            })?;
            Ok(())
        })
        .await
    }

    /// The script `up` would run, without taking the lock or changing anything.
    pub async fn up_script(
        &mut self,
        migrations: &[Migration],
        dir: &Path,
        target: Option<i64>,
        ignore_missing: bool,
    ) -> Result<String> {
        check_target(migrations, dir, target)?;
        let applied = self.applied().await?;
        let todo = plan_up(migrations, &applied, dir, target, ignore_missing)?;
        let mut out = format!(
            "-- pgx migrate up --dry-run: {} migration(s) to apply\n",
            todo.len()
        );
        if !todo.is_empty() && !self.history.exists {
            out.push_str(&format!(
                "\n{};\n",
                history::table_ddl(&self.history.qualified)
            ));
        }
        for m in todo {
            let record = format!(
                "INSERT INTO {} (version, description, success, checksum, execution_time)\n    VALUES ({}, {}, TRUE, pg_catalog.decode('{}', 'hex'), -1);",
                self.history.qualified,
                m.version,
                quote_text(&m.description),
                hex(&m.up.checksum),
            );
            script_entry(&mut out, &m.up, &record);
        }
        Ok(out)
    }

    /// The script `down` would run.
    pub async fn down_script(
        &mut self,
        migrations: &[Migration],
        dir: &Path,
        how: Down,
    ) -> Result<String> {
        let applied = self.applied().await?;
        let todo = plan_down(migrations, &applied, dir, how)?;
        let mut out = format!(
            "-- pgx migrate down --dry-run: {} migration(s) to revert\n",
            todo.len()
        );
        for (m, down) in todo {
            let record = format!(
                "DELETE FROM {} WHERE version = {};",
                self.history.qualified, m.version
            );
            script_entry(&mut out, down, &record);
        }
        Ok(out)
    }
}
