//! `pgx migrate up|down|status|redo`, and `up --tenants`.

use serde_json::json;

use crate::cli::{DbArgs, LockArgs, Migrate, RetryArgs};
use crate::db;
use crate::error::{Error, Result};
use crate::migrate::progress::{Event, Interrupt, Signal};
use crate::migrate::{Down, Options, Runner, Scope, State, StatusEntry, files, tenants};
use crate::output::{self, Mode, Progress};
use crate::project::Project;

/// What a run that changes the database does.
enum Action {
    Up {
        target: Option<i64>,
        ignore_missing: bool,
    },
    Down(Down),
    Redo,
}

impl Action {
    fn verb(&self) -> &'static str {
        match self {
            Action::Up { .. } => "apply",
            Action::Down(_) => "revert",
            Action::Redo => "redo",
        }
    }
}

pub async fn run(project: &Project, command: Migrate) -> Result<()> {
    match command {
        Migrate::Status {
            exit_code,
            db,
            json,
        } => status(project, &db, json.json, exit_code).await,
        Migrate::Up {
            target,
            ignore_missing,
            tenants,
            jobs,
            retry,
            dry_run,
            db,
            lock,
            json,
            quiet,
        } => {
            let mode = Mode::of(quiet.quiet, json.json);
            if tenants {
                let options = tenants::UpOptions {
                    runner: options(project, &lock, &retry),
                    target,
                    ignore_missing,
                    jobs: usize::from(jobs),
                    interrupt: None,
                };
                return up_tenants(project, &db, options, dry_run.dry_run, mode).await;
            }
            let action = Action::Up {
                target,
                ignore_missing,
            };
            let run = Run::new(&db, &lock, &retry, mode, dry_run.dry_run);
            change(project, &run, action).await
        }
        Migrate::Down {
            steps,
            target,
            retry,
            dry_run,
            db,
            lock,
            json,
            quiet,
        } => {
            let how = match target {
                Some(t) => Down::Target(t),
                None => Down::Steps(steps.unwrap_or(1)),
            };
            let mode = Mode::of(quiet.quiet, json.json);
            let run = Run::new(&db, &lock, &retry, mode, dry_run.dry_run);
            change(project, &run, Action::Down(how)).await
        }
        Migrate::Redo {
            retry,
            db,
            lock,
            json,
            quiet,
        } => {
            let mode = Mode::of(quiet.quiet, json.json);
            let run = Run::new(&db, &lock, &retry, mode, false);
            change(project, &run, Action::Redo).await
        }
    }
}

/// The options of a run that changes the database.
struct Run<'a> {
    db: &'a DbArgs,
    lock: &'a LockArgs,
    retry: &'a RetryArgs,
    mode: Mode,
    dry_run: bool,
}

impl<'a> Run<'a> {
    fn new(
        db: &'a DbArgs,
        lock: &'a LockArgs,
        retry: &'a RetryArgs,
        mode: Mode,
        dry_run: bool,
    ) -> Run<'a> {
        Run {
            db,
            lock,
            retry,
            mode,
            dry_run,
        }
    }
}

/// The runner's options from the command line and pgx.yaml.
pub(super) fn options(project: &Project, lock: &LockArgs, retry: &RetryArgs) -> Options {
    let mut options = Options::new(lock.lock_timeout);
    options.attempt_timeout = retry.lock_attempt_timeout;
    options.lock_retries = retry.lock_retries;
    options
        .trusted_roles
        .clone_from(&project.config.trusted_roles);
    options
}

/// From now on, SIGINT and SIGTERM stop the run gracefully through the returned token: the
/// running statement is cancelled on the server, its migration rolled back, the lock released.
/// A second signal exits at once.
pub(super) fn catch_signals() -> Result<Interrupt> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind| signal(kind).map_err(|e| Error::io("listen for signals in", ".", e));
    let mut int = listen(SignalKind::interrupt())?;
    let mut term = listen(SignalKind::terminate())?;
    let interrupt = Interrupt::new();
    let token = interrupt.clone();
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = int.recv() => Signal::Interrupt,
                _ = term.recv() => Signal::Terminate,
            };
            if token.signal().is_some() {
                output::note("second signal: exiting without waiting for the server");
                std::process::exit(i32::from(signal.exit_code()));
            }
            token.trigger(signal);
        }
    });
    Ok(interrupt)
}

async fn change(project: &Project, run: &Run<'_>, action: Action) -> Result<()> {
    if run.dry_run && run.mode == Mode::Json {
        return Err(Error::Usage(
            "--dry-run prints SQL, --json reports a run: use one of them".into(),
        ));
    }
    let (db, dry_run) = (run.db, run.dry_run);
    let dir = project.migrations_dir();
    let migrations = files::scan(&dir)?;
    let url = super::database_url(project, db)?;
    let interrupt = catch_signals()?;
    let progress = Progress::new(run.mode);
    let sink = |schema: Option<&str>, event: &Event| progress.event(schema, event);
    let mut conn = db::connect(&url).await?;
    let options = options(project, run.lock, run.retry);
    let result = async {
        let runner = Runner::with_options(&mut conn, Scope::default(), options)
            .await?
            .on_event(&sink);
        if dry_run {
            let mut runner = runner;
            let script = match &action {
                Action::Up {
                    target,
                    ignore_missing,
                } => {
                    runner
                        .up_script(&migrations, &dir, *target, *ignore_missing)
                        .await?
                }
                Action::Down(how) => runner.down_script(&migrations, &dir, *how).await?,
                Action::Redo => unreachable!("redo has no --dry-run"),
            };
            return output::out(&script).map(|()| false);
        }
        let mut runner = runner.interruptible(&interrupt, &url).await?;
        match action {
            Action::Up {
                target,
                ignore_missing,
            } => runner.up(&migrations, &dir, target, ignore_missing).await,
            Action::Down(how) => runner.down(&migrations, &dir, how).await,
            Action::Redo => runner.redo(&migrations, &dir).await,
        }
        .map(|_| true)
    }
    .await;
    db::close(conn).await;
    match result {
        Ok(false) => Ok(()),
        Ok(true) => progress.finish(action.verb(), None),
        Err(e) => {
            progress.finish(action.verb(), Some(&e))?;
            Err(e)
        }
    }
}

/// `pgx migrate up --tenants`.
async fn up_tenants(
    project: &Project,
    db: &DbArgs,
    mut options: tenants::UpOptions,
    dry_run: bool,
    mode: Mode,
) -> Result<()> {
    let prefix = &project.config.tenant_schema_prefix;
    tenants::check_prefix(prefix)?;
    let dir = project.tenant_migrations_dir();
    let migrations = files::scan(&dir)?;
    let set = tenants::Set {
        dir: &dir,
        migrations: &migrations,
    };
    tenants::check_target(set, options.target)?;
    let url = super::database_url(project, db)?;
    let progress = Progress::new(mode);
    let sink = |schema: Option<&str>, event: &Event| progress.event(schema, event);
    if dry_run {
        return output::out(&tenants::up_script(&url, prefix, set, &options, &sink).await?);
    }
    options.interrupt = Some(catch_signals()?);
    let result = tenants::migrate_up(&url, prefix, set, &options, &sink).await;
    progress.finish("apply", result.as_ref().err())?;
    result
}

async fn status(project: &Project, db: &DbArgs, json: bool, exit_code: bool) -> Result<()> {
    let dir = project.migrations_dir();
    let migrations = files::scan(&dir)?;
    let url = super::database_url(project, db)?;
    let mut conn = db::connect(&url).await?;
    let mut options = Options::new(std::time::Duration::ZERO);
    options
        .trusted_roles
        .clone_from(&project.config.trusted_roles);
    let entries = async {
        Runner::with_options(&mut conn, Scope::default(), options)
            .await?
            .status(&migrations)
            .await
    }
    .await;
    db::close(conn).await;
    let entries = entries?;
    if json {
        output::json(&json!({ "migrations": entries }))?;
    } else {
        output::out(&status_table(&entries))?;
    }
    let off: Vec<String> = [
        State::Pending,
        State::Modified,
        State::FileMissing,
        State::Failed,
    ]
    .iter()
    .filter_map(|s| {
        let n = entries.iter().filter(|e| e.state == *s).count();
        (n > 0).then(|| format!("{n} {}", s.label()))
    })
    .collect();
    if exit_code && !off.is_empty() {
        return Err(Error::NotUpToDate {
            summary: off.join(", "),
        });
    }
    Ok(())
}

fn status_table(entries: &[StatusEntry]) -> String {
    if entries.is_empty() {
        return "no migrations\n".to_string();
    }
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            [
                e.version.to_string(),
                e.description.clone(),
                e.state.label().to_string(),
                e.installed_on
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["VERSION", "DESCRIPTION", "STATE", "APPLIED AT"], &rows)
}
