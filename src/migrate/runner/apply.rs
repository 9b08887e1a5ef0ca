//! One migration, up or down: its attempts (a transactional one runs again when a statement
//! could not get its lock in time), each from a clean session, statement by statement, with
//! its history row in the same transaction.

use std::fmt::Write as _;
use std::hash::{BuildHasher as _, Hasher as _};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgDatabaseError, PgErrorPosition};

use super::Runner;
use super::session::{LOCK_NOT_AVAILABLE, QUERY_CANCELED, sqlstate};
use crate::error::{Error, Result, describe_db_error, one_line};
use crate::migrate::files::{Migration, MigrationFile};
use crate::migrate::plan::{hex, quote_text};
use crate::migrate::progress::{Event, MigrationRef, human};
use crate::sql;

/// The history change that goes with a file.
enum Record<'a> {
    Insert(&'a Migration),
    Delete(i64),
}

/// Why an attempt failed: for want of a lock (worth another attempt), or otherwise.
enum Failed {
    Lock(Error),
    Other(Error),
}

/// The pause before attempt `attempt + 1`: 100 ms doubling each time, at most 5 s, times a
/// random factor between 0.5 and 1.5, so that a migration retrying on a busy table does not
/// fall into step with the traffic (or with another migrator) it waits for.
fn pause_after(attempt: u32) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1 << attempt.saturating_sub(1).min(6));
    let base = base.min(Duration::from_secs(5));
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    base.mul_f64(0.5 + unit)
}

impl Runner<'_> {
    pub(super) async fn apply(&mut self, m: &Migration) -> Result<Duration> {
        let took = self.attempts(m, &m.up, "up", &Record::Insert(m)).await?;
        self.emit(&Event::Applied {
            migration: reference(m),
            took,
        });
        self.completed.push((reference(m), "applied"));
        Ok(took)
    }

    pub(super) async fn revert(&mut self, m: &Migration, down: &MigrationFile) -> Result<Duration> {
        let took = self
            .attempts(m, down, "down", &Record::Delete(m.version))
            .await?;
        self.emit(&Event::Reverted {
            migration: reference(m),
            took,
        });
        self.completed.push((reference(m), "reverted"));
        Ok(took)
    }

    /// Runs `file` until an attempt succeeds, fails for another reason than a lock, or the
    /// retries are spent; returns the successful attempt's duration.
    async fn attempts(
        &mut self,
        m: &Migration,
        file: &MigrationFile,
        action: &'static str,
        record: &Record<'_>,
    ) -> Result<Duration> {
        // A no-transaction file cannot be retried: what ran before the failure stays (and a
        // CREATE INDEX CONCURRENTLY that timed out leaves an invalid index behind).
        let attempts = if file.no_transaction {
            1
        } else {
            self.options.lock_retries.saturating_add(1)
        };
        self.current = Some(reference(m));
        let mut attempt = 1;
        let result = loop {
            if let Some(signal) = self.interrupted() {
                break Err(self.interruption(
                    signal,
                    format!(
                        "stopped before migration {} {} ({action})",
                        m.version, m.description
                    ),
                ));
            }
            if let Err(e) = self.reset_session(!file.no_transaction).await {
                break Err(e);
            }
            let start = Instant::now();
            match self.run_file(file, m.version, action, record).await {
                Ok(()) => break Ok(start.elapsed()),
                Err(Failed::Lock(e)) if attempt < attempts => {
                    let pause = pause_after(attempt);
                    self.emit(&Event::Retry {
                        migration: reference(m),
                        attempt,
                        attempts,
                        pause,
                        reason: lock_reason(&e),
                    });
                    if let Err(e) = self.pause(pause, m, action).await {
                        break Err(e);
                    }
                    attempt += 1;
                }
                Err(Failed::Lock(e)) if attempts > 1 => break Err(self.gave_up(e, attempts)),
                Err(Failed::Lock(e) | Failed::Other(e)) => break Err(e),
            }
        };
        self.current = None;
        result
    }

    /// Sleeps between attempts; an interrupt ends the sleep and the run.
    async fn pause(&mut self, pause: Duration, m: &Migration, action: &str) -> Result<()> {
        if let Some((interrupt, _)) = &self.interrupt {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = interrupt.triggered() => {}
            }
        } else {
            tokio::time::sleep(pause).await;
        }
        match self.interrupted() {
            Some(signal) => Err(self.interruption(
                signal,
                format!(
                    "stopped while waiting to retry migration {} {} ({action}), which was rolled back, nothing recorded",
                    m.version, m.description
                ),
            )),
            None => Ok(()),
        }
    }

    fn gave_up(&self, e: Error, attempts: u32) -> Error {
        match e {
            Error::Migration {
                location,
                version,
                action,
                message,
                outcome,
            } => Error::Migration {
                location,
                version,
                action,
                message,
                outcome: format!(
                    "{outcome}; gave up after {attempts} attempts of {} each: raise --lock-retries or --lock-attempt-timeout, or run it when the table is quieter",
                    human(self.options.attempt_timeout)
                ),
            },
            other => other,
        }
    }

    /// One attempt: the file's statements and then the history row, both in one transaction
    /// unless the file opts out.
    async fn run_file(
        &mut self,
        file: &MigrationFile,
        version: i64,
        action: &'static str,
        record: &Record<'_>,
    ) -> std::result::Result<(), Failed> {
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
            self.query("BEGIN")
                .await
                .map_err(|e| Failed::Other(Error::database("cannot start a transaction", &e)))?;
        }
        let statements = sql::split_statements(&file.sql);
        for (i, stmt) in statements.iter().enumerate() {
            let took_effect = || {
                if in_tx {
                    rolled_back.to_string()
                } else if i == 0 {
                    "no-transaction migration; nothing ran before this statement, nothing recorded"
                        .to_string()
                } else {
                    format!(
                        "no-transaction migration: the statements before line {} took effect and were not undone; nothing recorded",
                        stmt.line
                    )
                }
            };
            if let Some(signal) = self.interrupted() {
                self.settle().await;
                return Err(Failed::Other(self.interruption(
                    signal,
                    format!(
                        "stopped before {path}:{} (migration {version} {action}); {}",
                        stmt.line,
                        took_effect()
                    ),
                )));
            }
            if let Err(e) = self.statement(stmt.text).await {
                let line = error_line(stmt, &e);
                self.settle().await;
                let code = sqlstate(&e);
                if let (Some(signal), Some(QUERY_CANCELED)) = (self.interrupted(), code.as_deref())
                {
                    return Err(Failed::Other(self.interruption(
                        signal,
                        format!(
                            "the server cancelled the statement at {path}:{line} (migration {version} {action}); {}",
                            took_effect()
                        ),
                    )));
                }
                let error = fail(line, describe_with_context(&e), &took_effect());
                return Err(if in_tx && code.as_deref() == Some(LOCK_NOT_AVAILABLE) {
                    Failed::Lock(error)
                } else {
                    Failed::Other(error)
                });
            }
        }
        let end = sql::line_count(&file.sql);
        if !in_tx && self.in_transaction().await {
            self.settle().await;
            return Err(Failed::Other(fail(
                end,
                "the file left a transaction open (BEGIN without COMMIT): its statements since BEGIN were rolled back".into(),
                "the statements before that BEGIN took effect; nothing recorded",
            )));
        }
        let record_sql = self.record_sql(record, start.elapsed());
        if let Err(e) = self.query(&record_sql).await {
            self.settle().await;
            return Err(Failed::Other(fail(
                end,
                format!(
                    "cannot record the migration in {}: {}",
                    self.history.qualified,
                    describe_db_error(&e)
                ),
                if in_tx {
                    rolled_back
                } else {
                    "its statements took effect; the history was not updated"
                },
            )));
        }
        if in_tx && let Err(e) = self.query("COMMIT").await {
            self.settle().await;
            return Err(Failed::Other(fail(
                end,
                format!("at COMMIT: {}", describe_db_error(&e)),
                rolled_back,
            )));
        }
        Ok(())
    }

    /// The history change, after the session is put back to its defaults (a migration's `SET
    /// ROLE` or `SET row_security` must not apply to the bookkeeping), as one round trip.
    fn record_sql(&self, record: &Record<'_>, elapsed: Duration) -> String {
        let table = &self.history.qualified;
        let change = match record {
            // sqlx records the nanoseconds the file took (this attempt's).
            Record::Insert(m) => format!(
                "INSERT INTO {table} (version, description, success, checksum, execution_time) \
                 VALUES ({}, {}, TRUE, pg_catalog.decode('{}', 'hex'), {})",
                m.version,
                quote_text(&m.description),
                hex(&m.up.checksum),
                i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX)
            ),
            Record::Delete(version) => {
                format!("DELETE FROM {table} WHERE version OPERATOR(pg_catalog.=) {version}")
            }
        };
        format!("SET SESSION AUTHORIZATION DEFAULT; RESET ALL; {change}")
    }
}

fn reference(m: &Migration) -> MigrationRef {
    MigrationRef {
        version: m.version,
        description: m.description.clone(),
    }
}

/// The server's words for a lock timeout, without the file location.
fn lock_reason(e: &Error) -> String {
    match e {
        Error::Migration {
            location, message, ..
        } => format!("{location}: {message}"),
        other => other.to_string(),
    }
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
