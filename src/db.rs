//! Connecting to PostgreSQL, with errors that name the server but never the password.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::config::DbUrl;
use crate::error::{Error, Result, describe_db_error, one_line};

/// How long to wait for a server that does not answer (a dropped packet, a wrong host) before
/// saying so, instead of hanging a deploy script for the kernel's TCP timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub fn options(url: &DbUrl) -> Result<PgConnectOptions> {
    let opts = PgConnectOptions::from_str(url.expose()).map_err(|e| Error::DatabaseUrl {
        reason: url.scrub(&one_line(&e.to_string())),
    })?;
    Ok(if opts.get_application_name().is_none() {
        opts.application_name("pgx")
    } else {
        opts
    })
}

/// `host:port`, or the socket path, plus database and user: enough to see which server was
/// meant, nothing secret.
pub fn describe_target(opts: &PgConnectOptions) -> String {
    let place = match opts.get_socket() {
        Some(dir) => format!(
            "{}/.s.PGSQL.{}",
            dir.display().to_string().trim_end_matches('/'),
            opts.get_port()
        ),
        None => format!("{}:{}", opts.get_host(), opts.get_port()),
    };
    let db = opts.get_database().unwrap_or(opts.get_username());
    format!("{place} (database {db:?}, user {:?})", opts.get_username())
}

pub async fn connect(url: &DbUrl) -> Result<PgConnection> {
    let opts = options(url)?;
    let target = describe_target(&opts);
    let fail = |reason: String| Error::Connect {
        target: target.clone(),
        reason: url.scrub(&reason),
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(fail(match &e {
            sqlx::Error::Io(io) => format!("{io} (is PostgreSQL running and listening there?)"),
            other => describe_db_error(other),
        })),
        Err(_) => Err(fail(format!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// Runs `sql` (our own statement, no user input spliced in) and maps failures to `context`.
pub async fn exec(conn: &mut PgConnection, sql: &str, context: &str) -> Result<()> {
    conn.execute(sqlx::AssertSqlSafe(sql.to_string()))
        .await
        .map(|_| ())
        .map_err(|e| Error::database(context, &e))
}

pub async fn close(conn: PgConnection) {
    let _ = conn.close().await;
}
