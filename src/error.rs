//! The library's error type. Each variant names the file, line or object at fault, so the
//! binary can print it as one line.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::sql::IdentError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid YAML, or a YAML document that parses but says something wrong.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Yaml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("unknown pattern `{name}`{}; available: {}", did_you_mean(suggestion.as_deref()), available.join(", "))]
    UnknownPattern {
        name: String,
        suggestion: Option<String>,
        available: Vec<String>,
    },

    #[error("pattern `{pattern}` has no parameter `{key}`{}; valid parameters: {}", did_you_mean(suggestion.as_deref()), valid.join(", "))]
    UnknownParameter {
        pattern: String,
        key: String,
        suggestion: Option<String>,
        valid: Vec<String>,
    },

    #[error("pattern `{pattern}` requires parameter `{name}`: pass --set {name}=<{expected}>")]
    MissingParameter {
        pattern: String,
        name: String,
        expected: String,
    },

    #[error("parameter `{name}` of pattern `{pattern}`: expected {expected}, got {value:?}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    InvalidParameter {
        pattern: String,
        name: String,
        expected: String,
        value: String,
        reason: Option<String>,
    },

    #[error("invalid --set {arg:?}: expected KEY=VALUE")]
    SetSyntax { arg: String },

    #[error("pattern `{pattern}` {message}")]
    PatternUsage { pattern: String, message: String },

    #[error("{what} {name:?} cannot be used: {reason}")]
    Identifier {
        what: String,
        name: String,
        reason: IdentError,
    },

    /// A template failed to parse or render; the position is inside the template file.
    #[error("{template}:{line}:{column}: {message}")]
    Template {
        template: String,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{message}")]
    Render { message: String },

    #[error("{} already exists; refusing to overwrite an existing pgx project", path.display())]
    AlreadyInitialised { path: PathBuf },

    #[error("invalid migration file name {}: {reason}", path.display())]
    MigrationName { path: PathBuf, reason: String },

    #[error("{message}")]
    MigrationSet { message: String },

    #[error("no database URL: pass --database-url, or set {env} in the environment or in .env")]
    NoDatabaseUrl { env: String },

    /// `origin` is ` (URL from ...)`, or empty.
    #[error("invalid database URL{origin}: {reason}")]
    DatabaseUrl { reason: String, origin: String },

    /// `origin` is ` (URL from ...)`, or empty.
    #[error("cannot connect to PostgreSQL at {target}{origin}: {reason}")]
    Connect {
        target: String,
        reason: String,
        origin: String,
    },

    /// A statement of a migration file failed. `location` is `path:line`.
    #[error("{location}: {message} (migration {version} {action}; {outcome})")]
    Migration {
        location: String,
        version: i64,
        action: &'static str,
        message: String,
        outcome: String,
    },

    #[error(
        "migration {version} ({file}) was applied with different contents: its file changed after it ran; restore the file (status shows it as `modified`), or write a new migration instead of editing an applied one"
    )]
    Modified { version: i64, file: String },

    /// `fix` says how to go on, and names only flags the command takes.
    #[error(
        "migration {version} ({description}) is recorded as applied but has no file in {dir}; {fix}"
    )]
    Missing {
        version: i64,
        description: String,
        dir: String,
        fix: &'static str,
    },

    #[error(
        "migration {version} ({description}) is recorded as failed (success = false) in _sqlx_migrations: repair it by hand and delete that row"
    )]
    Dirty { version: i64, description: String },

    #[error("migration {version} has no down migration ({expected} is missing); cannot revert it")]
    NoDownMigration { version: i64, expected: String },

    #[error("no migration with version {version} in {dir}")]
    UnknownVersion { version: i64, dir: String },

    #[error(
        "timed out after {timeout} waiting for the migration lock on {scope} (another pgx or sqlx migrator holds it)"
    )]
    LockTimeout { timeout: String, scope: String },

    #[error("{context}: {message}")]
    Database { context: String, message: String },

    #[error("invalid tenant name {name:?}: {reason}")]
    TenantName { name: String, reason: String },

    #[error("tenant {tenant:?} already exists (schema {schema:?})")]
    TenantExists { tenant: String, schema: String },

    #[error(
        "schema {schema:?} already exists and is not a tenant schema (it has no _sqlx_migrations); choose another name for tenant {tenant:?}"
    )]
    SchemaTaken { tenant: String, schema: String },

    #[error("no tenant {tenant:?} (no tenant schema {schema:?})")]
    UnknownTenant { tenant: String, schema: String },

    #[error("tenant {tenant:?} was not created ({cleanup})")]
    TenantNotCreated {
        tenant: String,
        schema: String,
        cleanup: &'static str,
        #[source]
        source: Box<Error>,
    },

    /// `migrate up --tenants` stopped at a schema; `source` says what failed there.
    #[error(
        "tenant schema {schema:?} failed ({migrated} of {total} tenant schemas migrated{}, {not_attempted} not attempted)",
        if *also_failed > 0 { format!(", {also_failed} other failed") } else { String::new() }
    )]
    TenantMigration {
        schema: String,
        migrated: usize,
        total: usize,
        also_failed: usize,
        not_attempted: usize,
        #[source]
        source: Box<Error>,
    },

    #[error("{0}")]
    Usage(String),

    /// The project's dev cluster (`.pgx/`) could not be found, created, started or stopped.
    #[error("{message}")]
    DevCluster { message: String },

    /// `pgx check` found a problem; the report on stdout lists them all.
    #[error("check failed: {message}")]
    CheckFailed { message: String },

    #[error("{0}")]
    Config(String),

    /// Commands that write or migrate need a project; outside one they change nothing.
    #[error("{}", not_a_project(dir.as_deref()))]
    NotAProject { dir: Option<PathBuf> },
}

fn not_a_project(dir: Option<&std::path::Path>) -> String {
    match dir {
        None => "not a pgx project (no pgx.yaml here or above); run pgx init".to_string(),
        Some(d) => format!(
            "not a pgx project: {} has no pgx.yaml; run pgx init {}",
            d.display(),
            d.display()
        ),
    }
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

impl Error {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub fn database(context: impl fmt::Display, err: &sqlx::Error) -> Self {
        Error::Database {
            context: context.to_string(),
            message: describe_db_error(err),
        }
    }
}

/// Formats a sqlx error as PostgreSQL reports it: message, SQLSTATE, and the detail and hint
/// a DBA needs, all on one line.
pub fn describe_db_error(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => {
            let mut out = db.message().to_string();
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                out.push_str(&format!(" (SQLSTATE {})", pg.code()));
                if let Some(detail) = pg.detail() {
                    out.push_str(&format!("; detail: {}", one_line(detail)));
                }
                if let Some(hint) = pg.hint() {
                    out.push_str(&format!("; hint: {}", one_line(hint)));
                }
            }
            out
        }
        sqlx::Error::Protocol(text) => format!(
            "the server did not answer like PostgreSQL ({}); is this a PostgreSQL server's port?",
            without_source_locations(&one_line(text))
        ),
        other => without_source_locations(&one_line(&other.to_string())),
    }
}

/// Removes the ` (sqlx_postgres::connection::tls:95)` sqlx appends to some messages: where in
/// its source an error was raised means nothing to a user.
pub fn without_source_locations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(" (") {
        let after = &rest[open + 2..];
        let location = after
            .find(')')
            .map(|close| &after[..close])
            .filter(|inner| {
                inner.rsplit_once(':').is_some_and(|(path, line)| {
                    path.contains("::")
                        && !line.is_empty()
                        && line.bytes().all(|b| b.is_ascii_digit())
                        && path.split("::").all(|seg| {
                            !seg.is_empty()
                                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        })
                })
            });
        match location {
            Some(loc) => {
                out.push_str(&rest[..open]);
                rest = &after[loc.len() + 1..];
            }
            None => {
                out.push_str(&rest[..open + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Folds a multi-line server message into one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The closest candidate to `input`, if any is close enough to be a plausible typo.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_source_locations_are_removed() {
        assert_eq!(
            without_source_locations(
                "unexpected response from SSLRequest: 0x48 (sqlx_postgres::connection::tls:95)"
            ),
            "unexpected response from SSLRequest: 0x48"
        );
        let kept = "role \"a\" (SQLSTATE 28000) (see a:b) (x::y:z)";
        assert_eq!(without_source_locations(kept), kept);
    }
}
