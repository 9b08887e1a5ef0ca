//! Command-line interface: clap derive types only; `commands` does the work.
//!
//! Conventions, checked by `tests/it/help.rs`: every command and argument
//! has a description; an option shared by several commands is declared once (the `*Args`
//! structs) and so documented once; shared options come after a command's own ones, in the
//! order of [`SHARED_OPTION_ORDER`]; durations carry units (`200ms`, `5s`, `2min`); `-V` exists
//! on `pgx` only.
//!
//! (Over 500 lines: one declarative definition of every command's arguments, kept in one file so
//! that the shared `*Args` structs and their order are seen together.)

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Shared options, in the order every command lists them (after its own options).
pub const SHARED_OPTION_ORDER: &[&str] = &[
    "scope",
    "before",
    "offline",
    "dry-run",
    "database-url",
    "lock-timeout",
    "json",
    "quiet",
    "yes",
];

#[derive(Debug, Parser)]
#[command(
    name = "pgx",
    version,
    about = "Expert PostgreSQL patterns as reviewable, sqlx-compatible migrations",
    long_about = None,
    after_help = "The project directory is the folder holding pgx.yaml; every path in pgx.yaml is relative to it."
)]
pub struct Cli {
    /// The project directory (default: the nearest folder holding pgx.yaml, from the current
    /// one up).
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a project: pgx.yaml, migrations/, .gitattributes and .gitignore entries.
    Init {
        /// The project directory to create (default: --dir, else the current directory).
        #[arg(value_name = "DIR")]
        path: Option<PathBuf>,
    },
    /// Render a pattern into new migrations, choosing unset parameters from the table when a
    /// database is reachable.
    New(NewArgs),
    /// Create a migration pair holding your own SQL (or a commented template to fill in).
    Add(AddArgs),
    /// Bring an existing database under pgx: its schema, dumped, becomes the first migration,
    /// recorded as applied there without running.
    Baseline(BaselineArgs),
    /// List patterns, or document one.
    Patterns(PatternsArgs),
    /// Apply, revert and inspect migrations.
    #[command(subcommand)]
    Migrate(Migrate),
    /// Prove, on a scratch database, that every migration applies from zero and that every
    /// down migration reverses its up.
    ///
    /// Checks the file names and that every up has its down; then, on a database it creates
    /// (on the server of the database URL) and drops afterwards, applies every migration, runs
    /// every down back to zero comparing the schema with the one before each up, and applies
    /// everything again comparing with the first time. Exits 1 naming the first migration at
    /// fault and the objects that differ.
    Check(CheckArgs),
    /// The project's own PostgreSQL cluster in .pgx/, used when no database URL is set.
    #[command(subcommand)]
    Dev(Dev),
    /// Tenants: create, list and drop tenant schemas; check tenant-isolated tables.
    #[command(subcommand)]
    Tenant(Tenant),
    /// Tables partitioned by the partition pattern.
    #[command(subcommand)]
    Partition(Partition),
    /// Print a shell completion script (e.g. `pgx completions bash > /etc/bash_completion.d/pgx`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print pgx's manual page, in roff (e.g. `pgx man > pgx.1; man ./pgx.1`).
    Man {
        /// Write one page per command (pgx.1, pgx-new.1, pgx-migrate-up.1, ...) into this
        /// folder instead of printing pgx.1.
        #[arg(long, value_name = "FOLDER")]
        out_dir: Option<PathBuf>,
    },
}

/// Which migrations a new one joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum MigrationScope {
    /// The database's migrations (`migrations` in pgx.yaml).
    #[default]
    Database,
    /// The migrations run inside every tenant schema (`tenant_migrations` in pgx.yaml); names
    /// are left unqualified, so they resolve in each tenant's schema.
    Tenant,
}

/// Where new migration files go.
#[derive(Debug, Clone, Args)]
pub struct PlaceArgs {
    /// Which migrations folder the files go to.
    #[arg(long, value_enum, default_value_t)]
    pub scope: MigrationScope,
    /// Give the new migrations versions just below VERSION, so they sort before it (a
    /// baseline, say) instead of after every existing one.
    #[arg(long, value_name = "VERSION")]
    pub before: Option<i64>,
}

/// Printing instead of doing.
#[derive(Debug, Clone, Args)]
pub struct DryRunArgs {
    /// Print what would be written or run, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// JSON output.
#[derive(Debug, Clone, Args)]
pub struct JsonArgs {
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Progress on stderr, which runs that change the database print by default.
#[derive(Debug, Clone, Args)]
pub struct QuietArgs {
    /// Print nothing on stderr but server warnings and errors (no line per migration, no
    /// summary, no server notices).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Confirmation of a deletion.
#[derive(Debug, Clone, Args)]
pub struct YesArgs {
    /// Confirm the deletion; without it, nothing is deleted.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The pattern (see `pgx patterns`).
    pub pattern: String,
    /// The table the pattern applies to, as `table` or `schema.table` (double-quote a name
    /// holding a dot).
    #[arg(value_name = "TABLE")]
    pub table: Option<String>,
    /// Schema of the table (default: the one in TABLE, else `schema` in pgx.yaml, else public).
    #[arg(long)]
    pub schema: Option<String>,
    /// A parameter, as KEY=VALUE; repeat for several (see `pgx patterns show PATTERN`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Description for the file name (default: <pattern>_<table>).
    #[arg(long, value_name = "DESC")]
    pub name: Option<String>,
    #[command(flatten)]
    pub place: PlaceArgs,
    /// Render without looking at the database: parameters you do not set take their defaults.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub dry_run: DryRunArgs,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// What the migration does; becomes the file name's description.
    pub description: String,
    /// SQL for the up file (may start with `--`).
    #[arg(
        long,
        value_name = "SQL",
        allow_hyphen_values = true,
        conflicts_with = "up_file"
    )]
    pub up: Option<String>,
    /// SQL for the down file (may start with `--`).
    #[arg(
        long,
        value_name = "SQL",
        allow_hyphen_values = true,
        conflicts_with = "down_file"
    )]
    pub down: Option<String>,
    /// Read the up file's SQL from FILE (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub up_file: Option<PathBuf>,
    /// Read the down file's SQL from FILE (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub down_file: Option<PathBuf>,
    /// Mark both files `-- no-transaction` (for CREATE INDEX CONCURRENTLY and the like).
    #[arg(long)]
    pub no_transaction: bool,
    #[command(flatten)]
    pub place: PlaceArgs,
    #[command(flatten)]
    pub dry_run: DryRunArgs,
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Description for the file name.
    #[arg(long, value_name = "DESC", default_value = "baseline")]
    pub name: String,
    /// Dump only this schema (repeat for several; default: every schema but the system ones).
    #[arg(long = "schema", value_name = "SCHEMA")]
    pub schemas: Vec<String>,
    /// Write a down migration that drops everything the dump created, instead of one that
    /// refuses to run.
    #[arg(long)]
    pub reversible: bool,
    /// Leave GRANT and REVOKE statements out of the dump (roles are cluster-wide: those it
    /// grants to must exist wherever the baseline is applied, `pgx check` included).
    #[arg(long)]
    pub no_privileges: bool,
    #[command(flatten)]
    pub dry_run: DryRunArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct PatternsArgs {
    #[command(subcommand)]
    pub command: Option<PatternsCommand>,
    #[command(flatten)]
    pub json: JsonArgs,
}

#[derive(Debug, Subcommand)]
pub enum PatternsCommand {
    /// Parameters, defaults and an example rendering of one pattern.
    Show {
        /// The pattern (see `pgx patterns`).
        name: String,
        #[command(flatten)]
        json: JsonArgs,
    },
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL URL (default: DATABASE_URL in the environment, then in .env, then the
    /// variable pgx.yaml names; without any, the project's dev cluster in .pgx/, see `pgx dev`).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

/// How long to wait for another migrator.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// Give up when another migrator holds the migration lock this long (e.g. 500ms, 30s,
    /// 5min; 0 waits forever).
    #[arg(long, value_name = "DURATION", default_value = "5min", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

/// How a run waits for table locks.
#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    /// lock_timeout of each attempt of a transactional migration: a statement waiting longer
    /// for a table lock fails, the migration is rolled back and retried (e.g. 100ms, 1s; 0 keeps
    /// the session's). A migration's own SET LOCAL lock_timeout wins.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub lock_attempt_timeout: Duration,
    /// How many times a migration that could not get a table lock in time runs again, after
    /// growing, jittered pauses (0: never).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub lock_retries: u32,
}

#[derive(Debug, Subcommand)]
pub enum Migrate {
    /// Apply pending migrations.
    Up {
        /// Apply up to and including this version.
        #[arg(long, value_name = "VERSION")]
        target: Option<i64>,
        /// Do not fail when an applied migration's file is gone.
        #[arg(long)]
        ignore_missing: bool,
        /// Apply the tenant migrations inside every tenant schema instead; stops at the first
        /// schema that fails.
        #[arg(long)]
        tenants: bool,
        /// With --tenants: how many schemas to migrate at once, each over its own connection.
        #[arg(long, value_name = "N", default_value_t = 1, requires = "tenants",
              value_parser = clap::value_parser!(u16).range(1..))]
        jobs: u16,
        #[command(flatten)]
        retry: RetryArgs,
        #[command(flatten)]
        dry_run: DryRunArgs,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lock: LockArgs,
        #[command(flatten)]
        json: JsonArgs,
        #[command(flatten)]
        quiet: QuietArgs,
    },
    /// Revert applied migrations (default: the latest one).
    Down {
        /// How many migrations to revert.
        #[arg(long, value_name = "N", conflicts_with = "target")]
        steps: Option<usize>,
        /// Revert every migration newer than this version (0 reverts all).
        #[arg(long, value_name = "VERSION")]
        target: Option<i64>,
        #[command(flatten)]
        retry: RetryArgs,
        #[command(flatten)]
        dry_run: DryRunArgs,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lock: LockArgs,
        #[command(flatten)]
        json: JsonArgs,
        #[command(flatten)]
        quiet: QuietArgs,
    },
    /// Version, description, time applied and state of every migration.
    Status {
        /// Exit with status 1 when any migration is pending, modified, missing its file or
        /// failed (after printing the status).
        #[arg(long)]
        exit_code: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Revert the latest migration and apply it again.
    Redo {
        #[command(flatten)]
        retry: RetryArgs,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lock: LockArgs,
        #[command(flatten)]
        json: JsonArgs,
        #[command(flatten)]
        quiet: QuietArgs,
    },
}

/// The dev cluster: a PostgreSQL server kept in .pgx/, listening on a Unix socket only.
#[derive(Debug, Subcommand)]
pub enum Dev {
    /// Create the cluster (the first time) and start it; nothing to do when it runs.
    Start,
    /// Stop the cluster (ending open sessions); nothing to do when it is stopped.
    Stop,
    /// Whether the cluster exists and runs, where it keeps its data, and its URL.
    Status {
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Print the cluster's database URL (starting the cluster if needed).
    Url,
    /// Run psql on the cluster's database (starting the cluster if needed).
    Psql {
        /// Connect as this role instead of the superuser, creating it (LOGIN NOSUPERUSER
        /// NOBYPASSRLS) if needed: row-level security applies to it.
        #[arg(long, value_name = "NAME")]
        role: Option<String>,
        /// Arguments passed on to psql (e.g. -c 'SELECT 1').
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "PSQL ARGS"
        )]
        args: Vec<String>,
    },
    /// Stop the cluster and delete it with all its databases; the next command that needs a
    /// database creates a fresh one.
    Reset {
        #[command(flatten)]
        yes: YesArgs,
    },
    /// Every pgx dev cluster on this machine: its project, size, and whether it runs.
    List {
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Stop and delete the dev clusters whose project folder is gone.
    Prune {
        /// Only the clusters of these (deleted) project folders (default: every one whose project
        /// is gone).
        #[arg(value_name = "PROJECT")]
        projects: Vec<PathBuf>,
        #[command(flatten)]
        dry_run: DryRunArgs,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Fail on warnings too (a `-- no-transaction` file of several statements, which sqlx-cli
    /// cannot apply).
    #[arg(long)]
    pub strict: bool,
    // The scratch database is made on this URL's server; the database it names is untouched.
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub json: JsonArgs,
    #[command(flatten)]
    pub quiet: QuietArgs,
}

/// Tenants: schemas per tenant (a tenant schema is `<tenant_schema_prefix><name>` and holds its
/// own `_sqlx_migrations`), and the check of tables shared by tenants under row security.
#[derive(Debug, Subcommand)]
pub enum Tenant {
    /// Create tenant schemas and apply every tenant migration inside each.
    Add {
        /// Tenant names: lower-case letters, digits and `_`.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        #[command(flatten)]
        retry: RetryArgs,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lock: LockArgs,
        #[command(flatten)]
        json: JsonArgs,
        #[command(flatten)]
        quiet: QuietArgs,
    },
    /// Every tenant schema with its migration state.
    List {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Find the side doors around row security on every table the tenant pattern isolated.
    ///
    /// Inspects the database as it is now: views without security_invoker and materialized
    /// views over the tables or their partitions, SECURITY DEFINER functions of roles that
    /// bypass row security reading them, foreign keys and unique keys across tenants,
    /// partitions without pgx's policies or with extra permissive ones, row security not
    /// forced, no index led by the tenant column, BYPASSRLS roles with privileges on them.
    /// One line per door naming the object and the fix; exits 1 if there is any.
    Check {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        json: JsonArgs,
    },
    /// Drop a tenant's schema and everything in it.
    Drop {
        /// The tenant name.
        name: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lock: LockArgs,
        #[command(flatten)]
        yes: YesArgs,
    },
}

/// Partitioned tables (`pgx new partition`).
#[derive(Debug, Subcommand)]
pub enum Partition {
    /// Create the partitions of the current and the next `premake` periods, move rows out of
    /// the default partition, build indexes created ON ONLY the parent on every partition
    /// (CONCURRENTLY), and apply retention; one line per action. Idempotent, and safe to run
    /// from cron on several hosts at once.
    Maintain {
        /// Tables to maintain (default: every table partitioned by the pattern).
        #[arg(value_name = "TABLE")]
        tables: Vec<String>,
        /// How long each action may wait for a table lock before it is tried again (up to 5
        /// times).
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
        lock_attempt_timeout: Duration,
        #[command(flatten)]
        dry_run: DryRunArgs,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        json: JsonArgs,
    },
}

/// A duration with its unit: `250ms`, `30s`, `5min` (or `5m`), `1h`; `0` alone.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text).map(|d| d.duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("30").unwrap_err().contains("unit"));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 weeks").is_err());
    }
}
