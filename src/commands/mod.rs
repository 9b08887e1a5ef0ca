//! The commands: one small file each, that parses what the user gave, calls the library and
//! prints the result through `output`. Nothing else imports from here.

mod add;
mod baseline;
mod check;
mod dev;
mod help;
mod infer;
mod init;
mod migrate;
mod new;
mod partition;
mod patterns;
mod tenant;

use std::path::PathBuf;

use crate::cli::{Cli, Command, DbArgs, Dev, MigrationScope};
use crate::db::{self, Located, url::DbUrl};
use crate::error::{Error, Result};
use crate::output;
use crate::project::Project;

pub fn run(cli: Cli) -> Result<()> {
    let dir = cli.dir.as_deref();
    match cli.command {
        Command::Init { path } => init::run(path.as_deref().or(dir)),
        Command::New(args) => new::run(&Project::discover(dir)?, &args),
        Command::Add(args) => add::run(&Project::discover(dir)?, &args),
        Command::Baseline(args) => {
            let project = Project::discover(dir)?;
            runtime()?.block_on(baseline::run(&project, &args))
        }
        Command::Patterns(args) => patterns::run(&Project::discover_or_builtin(dir)?, &args),
        Command::Migrate(m) => {
            let project = Project::discover(dir)?;
            runtime()?.block_on(migrate::run(&project, m))
        }
        // Machine-wide: no project needed.
        Command::Dev(d @ (Dev::List { .. } | Dev::Prune { .. })) => dev::run_machine(&d),
        Command::Dev(d) => dev::run(&Project::discover(dir)?, &d),
        Command::Check(args) => {
            let project = Project::discover(dir)?;
            runtime()?.block_on(check::run(&project, &args))
        }
        Command::Tenant(t) => {
            let project = Project::discover(dir)?;
            runtime()?.block_on(tenant::run(&project, t))
        }
        Command::Partition(p) => {
            let project = Project::discover(dir)?;
            runtime()?.block_on(partition::run(&project, p))
        }
        Command::Completions { shell } => help::completions(shell),
        Command::Man { out_dir } => help::man(out_dir.as_deref()),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime for", ".", e))
}

/// The database a command talks to; when it is the dev cluster, says so in one line on stderr.
fn database_url(project: &Project, db: &DbArgs) -> Result<DbUrl> {
    let located = db::locate(project, db.database_url.as_deref())?;
    if let Located::Dev {
        cluster, started, ..
    } = &located
    {
        output::note(&format!(
            "no database URL set; using database {:?} of the dev cluster in {cluster} ({})",
            db::dev::DATABASE,
            started.label()
        ));
    }
    Ok(match located {
        Located::Configured(url) | Located::Dev { url, .. } => url,
    })
}

/// The migrations folder a scope writes to and reads from.
fn migrations_dir(project: &Project, scope: MigrationScope) -> PathBuf {
    match scope {
        MigrationScope::Database => project.migrations_dir(),
        MigrationScope::Tenant => project.tenant_migrations_dir(),
    }
}

/// Where `--before` puts new migrations.
fn place(args: &crate::cli::PlaceArgs) -> crate::migrate::files::Place {
    match args.before {
        Some(v) => crate::migrate::files::Place::Before(v),
        None => crate::migrate::files::Place::Last,
    }
}
