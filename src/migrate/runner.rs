//! Applies and reverts migrations over one sqlx connection, keeping `_sqlx_migrations` exactly
//! as sqlx's own Migrator does, and doing better where it falls short:
//!
//! - the advisory lock is sqlx's (so pgx and sqlx exclude each other), waits at most
//!   `lock_timeout`, and is released on every path, failures included;
//! - a file runs statement by statement (as psql does), so an error names the file and line;
//!   a transactional file and its `_sqlx_migrations` row commit together or not at all;
//! - a `-- no-transaction` file may hold several statements (e.g. several `CREATE INDEX
//!   CONCURRENTLY`), each sent on its own, as PostgreSQL requires;
//! - dry runs print the exact script that would run and change nothing.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnection, PgDatabaseError, PgErrorPosition};
use sqlx::{AssertSqlSafe, Executor, Row};

use super::files::{Migration, MigrationFile};
use super::history::{Applied, StatusEntry, TABLE_DDL, sqlx_lock_id, status_of};
use super::plan::{Down, check_target, hex, plan_down, plan_up, quote_text, script_entry};
use crate::error::{Error, Result, describe_db_error, one_line};
use crate::sql;

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

pub struct Runner<'c> {
    conn: &'c mut PgConnection,
    scope: Scope,
    lock_timeout: Duration,
    lock_key: i64,
    locked: bool,
}

impl<'c> Runner<'c> {
    /// Prepares `conn` for `scope`: a tenant scope points `search_path` at the tenant's schema,
    /// so its history table and unqualified objects live there.
    pub async fn new(
        conn: &'c mut PgConnection,
        scope: Scope,
        lock_timeout: Duration,
    ) -> Result<Runner<'c>> {
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| Error::database("cannot read the current database", &e))?;
        let lock_key = match &scope.schema {
            None => sqlx_lock_id(&database),
            Some(schema) => {
                sqlx::query("SELECT pg_catalog.set_config('search_path', pg_catalog.quote_ident($1), false)")
                    .bind(schema)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| Error::database(format!("cannot use schema {schema:?}"), &e))?;
                sqlx_lock_id(&format!("{database}\u{1f}{schema}"))
            }
        };
        Ok(Runner {
            conn,
            scope,
            lock_timeout,
            lock_key,
            locked: false,
        })
    }

    fn scope_label(&self) -> String {
        match &self.scope.schema {
            None => "this database".to_string(),
            Some(s) => format!("schema {s:?}"),
        }
    }

    async fn exec(&mut self, sql: &str, context: &str) -> Result<()> {
        crate::db::exec(self.conn, sql, context).await
    }

    async fn lock(&mut self) -> Result<()> {
        // SET LOCAL bounds only this wait; the session keeps its own lock_timeout for the
        // migrations. The session-level advisory lock outlives the COMMIT.
        let ms = u64::try_from(self.lock_timeout.as_millis()).unwrap_or(u64::MAX);
        self.exec("BEGIN", "cannot start a transaction").await?;
        let result = async {
            self.exec(
                &format!("SET LOCAL lock_timeout = {ms}"),
                "cannot set lock_timeout",
            )
            .await?;
            sqlx::query("SELECT pg_catalog.pg_advisory_lock($1)")
                .bind(self.lock_key)
                .execute(&mut *self.conn)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => {
                        Error::LockTimeout {
                            timeout: format!("{ms} ms"),
                            scope: self.scope_label(),
                        }
                    }
                    _ => Error::database("cannot take the migration lock", &e),
                })?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                self.exec("COMMIT", "cannot take the migration lock")
                    .await?;
                self.locked = true;
                Ok(())
            }
            Err(e) => {
                let _ = self.exec("ROLLBACK", "").await;
                Err(e)
            }
        }
    }

    async fn unlock(&mut self) {
        if !self.locked {
            return;
        }
        // A failed statement may have left a transaction open; unlocking inside an aborted
        // transaction would fail, and leave the lock held for as long as the session lives.
        let _ = self.exec("ROLLBACK", "").await;
        let _ = sqlx::query("SELECT pg_catalog.pg_advisory_unlock($1)")
            .bind(self.lock_key)
            .execute(&mut *self.conn)
            .await;
        self.locked = false;
    }

    /// Runs `f` holding the migration lock, and releases the lock whatever `f` returns.
    async fn locked<T>(&mut self, f: impl AsyncFnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.lock().await?;
        let result = f(self).await;
        self.unlock().await;
        result
    }

    async fn table_exists(&mut self) -> Result<bool> {
        sqlx::query_scalar::<_, bool>(
            "SELECT pg_catalog.to_regclass('_sqlx_migrations') IS NOT NULL",
        )
        .fetch_one(&mut *self.conn)
        .await
        .map_err(|e| Error::database("cannot look for _sqlx_migrations", &e))
    }

    async fn ensure_table(&mut self) -> Result<()> {
        if !self.table_exists().await? {
            self.exec(TABLE_DDL, "cannot create _sqlx_migrations")
                .await?;
        }
        Ok(())
    }

    /// The history, oldest first; empty when the table does not exist (nothing is created).
    pub async fn applied(&mut self) -> Result<Vec<Applied>> {
        if !self.table_exists().await? {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT version, description, installed_on, success, checksum, execution_time \
             FROM _sqlx_migrations ORDER BY version",
        )
        .fetch_all(&mut *self.conn)
        .await
        .map_err(|e| Error::database("cannot read _sqlx_migrations", &e))?;
        rows.iter()
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
            .map_err(|e| Error::database("cannot read _sqlx_migrations", &e))
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
                let took = r.apply(&m.up, m.version, &m.description).await?;
                outcome
                    .versions
                    .push((m.version, m.description.clone(), took));
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
                let took = r.revert(down, m.version).await?;
                outcome
                    .versions
                    .push((m.version, m.description.clone(), took));
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
            let took = r.revert(down, m.version).await?;
            outcome
                .versions
                .push((m.version, m.description.clone(), took));
            let took = r.apply(&m.up, m.version, &m.description).await?;
            outcome
                .versions
                .push((m.version, m.description.clone(), took));
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
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES ($1, $2, TRUE, $3, 0)",
            )
            .bind(m.version)
            .bind(&m.description)
            .bind(&m.up.checksum)
            .execute(&mut *r.conn)
            .await
            .map_err(|e| Error::database("cannot record the baseline in _sqlx_migrations", &e))?;
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
        let exists = self.table_exists().await?;
        let applied = self.applied().await?;
        let todo = plan_up(migrations, &applied, dir, target, ignore_missing)?;
        let mut out = format!(
            "-- pgx migrate up --dry-run: {} migration(s) to apply\n",
            todo.len()
        );
        if !todo.is_empty() && !exists {
            out.push_str(&format!("\n{TABLE_DDL};\n"));
        }
        for m in todo {
            let record = format!(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)\n    VALUES ({}, {}, TRUE, pg_catalog.decode('{}', 'hex'), -1);",
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
                "DELETE FROM _sqlx_migrations WHERE version = {};",
                m.version
            );
            script_entry(&mut out, down, &record);
        }
        Ok(out)
    }

    async fn apply(
        &mut self,
        file: &MigrationFile,
        version: i64,
        description: &str,
    ) -> Result<Duration> {
        let start = Instant::now();
        let record = async |r: &mut Self, elapsed: Duration| {
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES ($1, $2, TRUE, $3, $4)",
            )
            .bind(version)
            .bind(description)
            .bind(&file.checksum)
            .bind(i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
            .execute(&mut *r.conn)
            .await
            .map(|_| ())
        };
        self.run_file(file, version, "up", record).await?;
        Ok(start.elapsed())
    }

    async fn revert(&mut self, file: &MigrationFile, version: i64) -> Result<Duration> {
        let start = Instant::now();
        let record = async |r: &mut Self, _: Duration| {
            sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
                .bind(version)
                .execute(&mut *r.conn)
                .await
                .map(|_| ())
        };
        self.run_file(file, version, "down", record).await?;
        Ok(start.elapsed())
    }

    /// Runs one file and then `record` (which updates the history), both in one transaction
    /// unless the file opts out.
    async fn run_file(
        &mut self,
        file: &MigrationFile,
        version: i64,
        action: &'static str,
        record: impl AsyncFnOnce(&mut Self, Duration) -> std::result::Result<(), sqlx::Error>,
    ) -> Result<()> {
        let start = Instant::now();
        let in_tx = !file.no_transaction;
        let path = file.path.display().to_string();
        let fail = |line: usize, message: String, outcome: &str| Error::Migration {
            location: format!("{path}:{line}"),
            version,
            action,
            message,
            outcome: outcome.to_string(),
        };
        let rolled_back = "rolled back, nothing recorded";
        if in_tx {
            self.exec("BEGIN", "cannot start a transaction").await?;
        }
        for stmt in sql::split_statements(&file.sql) {
            if let Err(e) = self
                .conn
                .execute(AssertSqlSafe(stmt.text.to_string()))
                .await
            {
                let line = error_line(&stmt, &e);
                let outcome = if in_tx {
                    let _ = self.exec("ROLLBACK", "").await;
                    rolled_back.to_string()
                } else if stmt.offset == first_statement_offset(&file.sql) {
                    "no-transaction migration; nothing ran before this statement, nothing recorded"
                        .to_string()
                } else {
                    format!(
                        "no-transaction migration: the statements before line {line} took effect and were not undone; nothing recorded"
                    )
                };
                return Err(fail(line, describe_with_context(&e), &outcome));
            }
        }
        let end = sql::line_count(&file.sql);
        if let Err(e) = record(self, start.elapsed()).await {
            if in_tx {
                let _ = self.exec("ROLLBACK", "").await;
            }
            return Err(fail(
                end,
                format!(
                    "cannot record the migration in _sqlx_migrations: {}",
                    describe_db_error(&e)
                ),
                if in_tx {
                    rolled_back
                } else {
                    "its statements took effect; the history was not updated"
                },
            ));
        }
        if in_tx && let Err(e) = self.conn.execute("COMMIT").await {
            let _ = self.exec("ROLLBACK", "").await;
            return Err(fail(
                end,
                format!("at COMMIT: {}", describe_db_error(&e)),
                rolled_back,
            ));
        }
        Ok(())
    }
}

fn first_statement_offset(sql: &str) -> usize {
    sql::split_statements(sql).first().map_or(0, |s| s.offset)
}

/// The file line an error points at: PostgreSQL's position inside the statement when it gives
/// one, else the statement's first line.
fn error_line(stmt: &sql::Statement<'_>, err: &sqlx::Error) -> usize {
    let position = match err {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<PgDatabaseError>()
            .and_then(PgDatabaseError::position),
        _ => None,
    };
    match position {
        Some(PgErrorPosition::Original(p)) => stmt.line_of_char(p),
        _ => stmt.line,
    }
}

/// The server's message plus, for errors raised inside functions or DO blocks, where.
fn describe_with_context(err: &sqlx::Error) -> String {
    let mut text = describe_db_error(err);
    if let sqlx::Error::Database(db) = err
        && let Some(pg) = db.try_downcast_ref::<PgDatabaseError>()
        && let Some(w) = pg.r#where()
    {
        let _ = write!(text, "; context: {}", one_line(w));
    }
    text
}
