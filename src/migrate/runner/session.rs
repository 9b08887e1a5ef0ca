//! The runner's session: sending statements (with their server messages captured, and the
//! running one cancelled on an interrupt), putting the session back to a clean state between
//! migrations, and the migration lock.

use std::time::{Duration, Instant};

use sqlx::{Executor as _, Row as _};

use super::Runner;
use crate::db::Canceller;
use crate::db::notices::Capture;
use crate::error::{Error, Result};
use crate::migrate::progress::{Event, Interrupt, LockHolder, Signal};

/// How long the runner waits for the migration lock before saying who holds it.
const LOCK_REPORT_AFTER: Duration = Duration::from_secs(1);

/// The SQLSTATE of a server error.
pub(super) fn sqlstate(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(std::borrow::Cow::into_owned),
        _ => None,
    }
}

pub(super) const LOCK_NOT_AVAILABLE: &str = "55P03";
pub(super) const QUERY_CANCELED: &str = "57014";

/// `lock_timeout` as PostgreSQL reads it.
fn millis(d: Duration) -> String {
    format!("'{}ms'", d.as_millis())
}

/// Awaits `statement` with its server messages captured; when `interrupt` is triggered
/// meanwhile, asks the server to cancel it and awaits its (failed) result: dropping it instead
/// would leave the server running it, and the connection unusable. The request is repeated
/// each second while the statement runs: one sent just before the server started it is
/// ignored.
async fn guarded<T>(
    capture: &Capture,
    interrupt: Option<&(Interrupt, Canceller)>,
    statement: impl Future<Output = std::result::Result<T, sqlx::Error>>,
) -> std::result::Result<T, sqlx::Error> {
    let statement = capture.wrap(statement);
    let Some((interrupt, canceller)) = interrupt else {
        return statement.await;
    };
    tokio::pin!(statement);
    tokio::select! {
        biased;
        r = &mut statement => return r,
        () = interrupt.triggered() => {}
    }
    loop {
        // If this fails, the statement runs to its end and the run stops after it.
        let _ = canceller.cancel().await;
        tokio::select! {
            biased;
            r = &mut statement => return r,
            () = tokio::time::sleep(CANCEL_AGAIN_AFTER) => {}
        }
    }
}

/// How long a cancelled statement may go on before the cancel request is sent again.
const CANCEL_AGAIN_AFTER: Duration = Duration::from_secs(1);

impl Runner<'_> {
    /// Hands the server messages read since the last call to the sink, attributed to the
    /// migration running now.
    pub(super) fn flush_messages(&self) {
        for m in self.capture.take() {
            self.emit(&Event::Message {
                migration: self.current.clone(),
                severity: m.severity,
                text: m.text,
            });
        }
    }

    /// Sends `sql` (one or more statements, simple protocol); never cancelled: pgx's own
    /// bookkeeping, which must run to completion once started.
    pub(super) async fn query(&mut self, sql: &str) -> std::result::Result<(), sqlx::Error> {
        let result = self
            .capture
            .wrap(self.conn.execute(sqlx::AssertSqlSafe(sql.to_string())))
            .await
            .map(|_| ());
        self.flush_messages();
        result
    }

    /// Sends one statement of a migration file; cancelled on the server when the runner is
    /// interrupted meanwhile.
    pub(super) async fn statement(&mut self, sql: &str) -> std::result::Result<(), sqlx::Error> {
        let Runner {
            conn,
            capture,
            interrupt,
            ..
        } = &mut *self;
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        let result = guarded(capture, interrupt.as_ref(), (&mut **conn).execute(sql)).await;
        self.flush_messages();
        result.map(|_| ())
    }

    pub(super) fn interrupted(&self) -> Option<Signal> {
        self.interrupt.as_ref().and_then(|(i, _)| i.signal())
    }

    /// The error that ends a run a signal interrupted; `what` says where it stopped.
    pub(super) fn interruption(&self, signal: Signal, what: String) -> Error {
        let done: Vec<String> = self
            .completed
            .iter()
            .map(|(m, verb)| format!("{verb} {} {}", m.version, m.description))
            .collect();
        let before = if done.is_empty() {
            "nothing was applied or reverted before it".to_string()
        } else {
            format!("completed before it: {}", done.join(", "))
        };
        Error::Interrupted {
            signal: signal.name(),
            exit_code: signal.exit_code(),
            message: format!("{what}; {before}"),
        }
    }

    /// Back to the session the connection started with: no role, setting, temporary table,
    /// cursor or LISTEN left by a migration (its `SET search_path = ''` or `SET ROLE` must not
    /// reach the next one or the history bookkeeping). Keeps the migration lock, which
    /// `DISCARD ALL` would release. With `attempt`, the per-attempt `lock_timeout` follows.
    pub(super) async fn reset_session(&mut self, attempt: bool) -> Result<()> {
        let mut sql = String::from(
            "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; DISCARD TEMP; DISCARD SEQUENCES",
        );
        if let Some(schema) = &self.scope.schema {
            let quoted = crate::sql::quote_ident(schema).map_err(|reason| Error::Identifier {
                what: "schema".into(),
                name: schema.clone(),
                reason,
            })?;
            sql.push_str(&format!("; SET search_path = {quoted}"));
        }
        if attempt && !self.options.attempt_timeout.is_zero() {
            sql.push_str(&format!(
                "; SET lock_timeout = {}",
                millis(self.options.attempt_timeout)
            ));
        }
        self.query(&sql)
            .await
            .map_err(|e| Error::database("cannot reset the session between migrations", &e))
    }

    /// Whether a transaction block is open (even a failed one): outside one, a statement is its
    /// own transaction and starts when the transaction does.
    pub(super) async fn in_transaction(&mut self) -> bool {
        // The simple protocol: with the extended one, the statement starts after the
        // transaction (at Bind, not Parse) even outside a block.
        let probe = sqlx::raw_sql(
            "SELECT pg_catalog.statement_timestamp() OPERATOR(pg_catalog.<>) pg_catalog.transaction_timestamp()",
        )
        .fetch_one(&mut *self.conn);
        let open = self.capture.wrap(probe).await;
        self.flush_messages();
        // An error here is most likely "current transaction is aborted" (25P02).
        open.and_then(|row| row.try_get::<bool, _>(0))
            .unwrap_or(true)
    }

    /// After a failure, ends whatever transaction is open, so that nothing is left half-done and
    /// no ROLLBACK is sent without one (the server would log a warning).
    pub(super) async fn settle(&mut self) {
        if self.in_transaction().await {
            let _ = self.query("ROLLBACK").await;
        }
    }

    /// Takes the migration lock: at once when it is free; else waits up to `lock_timeout`
    /// (zero: for ever), saying after a second who holds it.
    pub(super) async fn lock(&mut self) -> Result<()> {
        let free = self
            .capture
            .wrap(
                sqlx::query_scalar::<_, bool>("SELECT pg_catalog.pg_try_advisory_lock($1)")
                    .bind(self.lock_key)
                    .fetch_one(&mut *self.conn),
            )
            .await
            .map_err(|e| Error::database("cannot take the migration lock", &e))?;
        self.flush_messages();
        if free {
            self.locked = true;
            return Ok(());
        }
        let total = self.options.lock_timeout;
        let start = Instant::now();
        let first = if total.is_zero() {
            LOCK_REPORT_AFTER
        } else {
            total.min(LOCK_REPORT_AFTER)
        };
        if self.wait_for_lock(first).await? {
            return Ok(());
        }
        if total.is_zero() || total > first {
            let holder = self.lock_holder().await;
            self.emit(&Event::LockWait {
                holder,
                waited: start.elapsed(),
            });
            let rest = if total.is_zero() {
                Duration::ZERO
            } else {
                total - first
            };
            if self.wait_for_lock(rest).await? {
                return Ok(());
            }
        }
        Err(Error::LockTimeout {
            timeout: crate::migrate::progress::human(total),
            scope: self.scope_label(),
        })
    }

    /// Waits up to `timeout` (zero: for ever) for the lock; false when it timed out.
    async fn wait_for_lock(&mut self, timeout: Duration) -> Result<bool> {
        let begin = format!("BEGIN; SET LOCAL lock_timeout = {}", millis(timeout));
        self.query(&begin)
            .await
            .map_err(|e| Error::database("cannot take the migration lock", &e))?;
        let Runner {
            conn,
            capture,
            interrupt,
            lock_key,
            ..
        } = &mut *self;
        let wait = sqlx::query("SELECT pg_catalog.pg_advisory_lock($1)")
            .bind(*lock_key)
            .execute(&mut **conn);
        let waited = guarded(capture, interrupt.as_ref(), wait).await;
        self.flush_messages();
        match waited {
            Ok(_) => {
                // The session-level lock outlives the transaction that bounded the wait.
                self.query("COMMIT")
                    .await
                    .map_err(|e| Error::database("cannot take the migration lock", &e))?;
                self.locked = true;
                Ok(true)
            }
            Err(e) => {
                let _ = self.query("ROLLBACK").await;
                match (sqlstate(&e).as_deref(), self.interrupted()) {
                    (Some(LOCK_NOT_AVAILABLE), None) => Ok(false),
                    (_, Some(signal)) => Err(self.interruption(
                        signal,
                        format!(
                            "stopped while waiting for the migration lock on {}",
                            self.scope_label()
                        ),
                    )),
                    _ => Err(Error::database("cannot take the migration lock", &e)),
                }
            }
        }
    }

    /// Who holds the migration lock now, if the server says (it may have just been released).
    async fn lock_holder(&mut self) -> Option<LockHolder> {
        let key = self.lock_key as u64;
        let query = sqlx::query_as::<
            _,
            (
                i32,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<chrono::DateTime<chrono::Utc>>,
                Option<String>,
            ),
        >(
            "SELECT a.pid, a.application_name, a.usename::pg_catalog.text, a.state, a.state_change, a.query
             FROM pg_catalog.pg_locks l
             JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid
             WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted
               AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                   WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
               AND l.classid OPERATOR(pg_catalog.=) $1::pg_catalog.int8::pg_catalog.oid
               AND l.objid OPERATOR(pg_catalog.=) $2::pg_catalog.int8::pg_catalog.oid
               AND l.objsubid OPERATOR(pg_catalog.=) 1
             LIMIT 1",
        )
        .bind((key >> 32) as i64)
        .bind((key & 0xffff_ffff) as i64)
        .fetch_optional(&mut *self.conn);
        let found = self.capture.wrap(query).await;
        self.flush_messages();
        let (pid, application_name, user, state, since, query) = found.ok()??;
        Some(LockHolder {
            pid,
            application_name: application_name.unwrap_or_default(),
            user,
            state,
            since,
            query,
        })
    }

    /// Releases the migration lock; false when that failed (the session's end releases it).
    pub(super) async fn unlock(&mut self) -> bool {
        if !self.locked {
            return true;
        }
        let released = self
            .capture
            .wrap(
                sqlx::query_scalar::<_, bool>("SELECT pg_catalog.pg_advisory_unlock($1)")
                    .bind(self.lock_key)
                    .fetch_one(&mut *self.conn),
            )
            .await;
        self.flush_messages();
        self.locked = false;
        released.unwrap_or(false)
    }
}
