//! Command-line interface: clap derive types only; `commands` does the work.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "pgx",
    version,
    about = "Expert PostgreSQL patterns as reviewable, sqlx-compatible migrations",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// Project directory (default: the nearest ancestor holding pgx.yaml, else the current one).
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create pgx.yaml, migrations/ and .gitattributes in DIR (default: the current directory).
    Init {
        /// Where to create the project.
        path: Option<PathBuf>,
    },
    /// Render a pattern into a new migration pair.
    New(NewArgs),
    /// Create a migration pair holding your own SQL (empty unless --up/--down give it).
    Add(AddArgs),
    /// List patterns, or document one.
    Patterns(PatternsArgs),
    /// Apply, revert and inspect migrations.
    #[command(subcommand)]
    Migrate(Migrate),
    /// The project's own PostgreSQL cluster in .pgx/, used when no database URL is set.
    #[command(subcommand)]
    Dev(Dev),
    /// Prove, on a scratch database, that every migration applies from zero and that every
    /// down migration reverses its up.
    ///
    /// Checks the file names and that every up has its down; then, on a database it creates
    /// (on the server of the database URL) and drops afterwards, applies every migration, runs
    /// every down back to zero comparing the schema with the one before each up, and applies
    /// everything again comparing with the first time. Exits 1 naming the first migration at
    /// fault and the objects that differ.
    Check(CheckArgs),
    /// Schema per tenant: create, list and drop tenant schemas.
    #[command(subcommand)]
    Tenant(Tenant),
    /// Tables partitioned by the partition pattern.
    #[command(subcommand)]
    Partition(Partition),
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

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The pattern (see `pgx patterns`).
    pub pattern: String,
    /// The table the pattern applies to.
    pub table: Option<String>,
    /// Schema of the table (default: `schema` in pgx.yaml, else public).
    #[arg(long)]
    pub schema: Option<String>,
    /// A parameter, as KEY=VALUE; repeat for several.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Description for the file name (default: <pattern>_<table>).
    #[arg(long, value_name = "DESC")]
    pub name: Option<String>,
    /// Print both files instead of writing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Which migrations folder the pair goes to.
    #[arg(long, value_enum, default_value_t)]
    pub scope: MigrationScope,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// What the migration does; becomes the file name's description.
    pub description: String,
    /// SQL for the up file.
    #[arg(long, value_name = "SQL")]
    pub up: Option<String>,
    /// SQL for the down file.
    #[arg(long, value_name = "SQL")]
    pub down: Option<String>,
    /// Mark both files `-- no-transaction` (for CREATE INDEX CONCURRENTLY and the like).
    #[arg(long)]
    pub no_transaction: bool,
    /// Which migrations folder the pair goes to.
    #[arg(long, value_enum, default_value_t)]
    pub scope: MigrationScope,
}

#[derive(Debug, Args)]
pub struct PatternsArgs {
    #[command(subcommand)]
    pub command: Option<PatternsCommand>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PatternsCommand {
    /// Parameters, defaults and an example rendering of one pattern.
    Show { name: String },
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
    /// Give up when another migrator holds the lock this long (e.g. 500ms, 30s, 5m; 0 waits
    /// forever).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Migrate {
    /// Apply pending migrations.
    Up {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lock: LockArgs,
        /// Apply up to and including this version.
        #[arg(long, value_name = "VERSION")]
        target: Option<i64>,
        /// Print the SQL that would run, in order, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not fail when an applied migration's file is gone.
        #[arg(long)]
        ignore_missing: bool,
        /// Print each migration as it is applied (to stderr).
        #[arg(short, long)]
        verbose: bool,
        /// Apply the tenant migrations inside every tenant schema instead; stops at the first
        /// schema that fails.
        #[arg(long)]
        tenants: bool,
        /// With --tenants: how many schemas to migrate at once, each over its own connection.
        #[arg(long, value_name = "N", default_value_t = 1, requires = "tenants",
              value_parser = clap::value_parser!(u16).range(1..))]
        jobs: u16,
    },
    /// Revert applied migrations (default: the latest one).
    Down {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lock: LockArgs,
        /// How many migrations to revert.
        #[arg(long, value_name = "N", conflicts_with = "target")]
        steps: Option<usize>,
        /// Revert every migration newer than this version (0 reverts all).
        #[arg(long, value_name = "VERSION")]
        target: Option<i64>,
        /// Print the SQL that would run, in order, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print each migration as it is reverted (to stderr).
        #[arg(short, long)]
        verbose: bool,
    },
    /// Version, description, time applied and state of every migration.
    Status {
        #[command(flatten)]
        db: DbArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revert the latest migration and apply it again.
    Redo {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lock: LockArgs,
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
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the cluster's database URL (starting the cluster if needed).
    Url,
    /// Run psql on the cluster's database (starting the cluster if needed); extra arguments go
    /// to psql.
    Psql {
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
        /// Confirm that every database of the dev cluster may be deleted.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    // The scratch database is made on this URL's server; the database it names is untouched.
    #[command(flatten)]
    pub db: DbArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Schema-per-tenant commands. A tenant schema is `<tenant_schema_prefix><name>` and holds its
/// own `_sqlx_migrations`.
#[derive(Debug, Subcommand)]
pub enum Tenant {
    /// Create tenant schemas and apply every tenant migration inside each.
    Add {
        /// Tenant names: lower-case letters, digits and `_`.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lock: LockArgs,
        /// Print each migration as it is applied (to stderr).
        #[arg(short, long)]
        verbose: bool,
    },
    /// Every tenant schema with its migration state.
    List {
        #[command(flatten)]
        db: DbArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drop a tenant's schema and everything in it.
    Drop {
        /// The tenant name.
        name: String,
        /// Confirm: the schema and all its data are dropped.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        lock: LockArgs,
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
        #[command(flatten)]
        db: DbArgs,
        /// Print what would be done, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the actions as JSON.
        #[arg(long)]
        json: bool,
        /// How long each action may wait for a lock before it is tried again (up to 5 times).
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
        lock_timeout: Duration,
    },
}

/// `250ms`, `30s`, `5m`, `1h`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("expected a duration such as 30s or 5m, got {text:?}"))?;
    let ms = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
    };
    Ok(Duration::from_millis(n.saturating_mul(ms)))
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
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 weeks").is_err());
    }
}
