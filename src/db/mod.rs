//! The database layer: finding the database (a configured URL, else the project's dev cluster),
//! connecting with errors that name the server but never the password, catalog snapshots, and
//! the side doors of tenant-isolated tables.
//!
//! Uses `project`, `sql` and `error`; never `pattern`, `migrate` or `commands`.

pub mod dev;
pub mod dump;
pub mod inspect;
pub mod snapshot;
pub mod tenant_check;
pub mod url;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Executor};

use self::dev::{Cluster, Started};
use self::url::DbUrl;
use crate::error::{Error, Result, describe_db_error};
use crate::project::Project;

/// Where a command's database is.
#[derive(Debug, Clone)]
pub enum Located {
    /// A URL from the flag, the environment, `.env` or the variable `pgx.yaml` names.
    Configured(DbUrl),
    /// No URL is configured: the project's own cluster, which this call started if needed.
    Dev {
        url: DbUrl,
        /// The cluster's folder, as the user would type it.
        cluster: String,
        started: Started,
    },
}

impl Located {
    pub fn url(&self) -> &DbUrl {
        match self {
            Located::Configured(url) | Located::Dev { url, .. } => url,
        }
    }
}

/// The database a command talks to: the configured one, else the project's dev cluster
/// (created and started as needed).
///
/// Without a configured URL the project's own cluster is used, unless `PGX_DEV=off`: a deploy
/// job that lost its URL must fail, not migrate a throwaway local cluster and report success.
pub fn locate(project: &Project, flag: Option<&str>) -> Result<Located> {
    if let Some(url) = url::configured(project, flag) {
        return Ok(Located::Configured(url));
    }
    if std::env::var("PGX_DEV").is_ok_and(|v| v.eq_ignore_ascii_case("off")) {
        return url::require(project, None).map(Located::Configured);
    }
    let cluster = Cluster::for_project(&project.root)?;
    let started = cluster.ensure_running()?;
    Ok(Located::Dev {
        url: cluster.url(),
        cluster: cluster.describe(),
        started,
    })
}

/// How long to wait for a server that does not answer (a dropped packet, a wrong host) before
/// saying so, instead of hanging a deploy script for the kernel's TCP timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub fn options(url: &DbUrl) -> Result<PgConnectOptions> {
    url.check()?;
    let opts = PgConnectOptions::from_str(url.expose()).map_err(|e| Error::DatabaseUrl {
        reason: url.scrub(&describe_db_error(&e).replace("error with configuration: ", "")),
        origin: url.from_where(),
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
        origin: url.from_where(),
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
