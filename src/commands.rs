//! What each command does. Data goes to stdout; nothing is printed on success unless asked.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::catalog::{Catalog, Origin, Pattern, Target};
use crate::cli::{
    AddArgs, Cli, Command, DbArgs, Migrate, MigrationScope, NewArgs, PatternsArgs, PatternsCommand,
};
use crate::config::{CONFIG_FILE, Config, DbUrl, Project};
use crate::error::{Error, Result};
use crate::migration::{self, Migration};
use crate::render::{Renderer, render_pattern, render_pattern_in};
use crate::runner::{Down, Runner, Scope, StatusEntry};

pub fn run(cli: Cli) -> Result<()> {
    let dir = cli.dir.as_deref();
    match cli.command {
        Command::Init { path } => init(path.as_deref().or(dir)),
        Command::New(args) => new(&Project::discover(dir)?, &args),
        Command::Add(args) => add(&Project::discover(dir)?, &args),
        Command::Patterns(args) => patterns(&Project::discover(dir)?, &args),
        Command::Migrate(m) => {
            let project = Project::discover(dir)?;
            runtime()?.block_on(migrate(&project, m))
        }
        Command::Dev(d) => crate::dev::command(&Project::discover(dir)?, &d),
        Command::Check(args) => {
            let project = Project::discover(dir)?;
            runtime()?.block_on(crate::check::command(&project, &args))
        }
        Command::Tenant(t) => {
            let project = Project::discover(dir)?;
            runtime()?.block_on(crate::tenant::run(&project, t))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime for", ".", e))
}

pub(crate) fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::io("write to", "stdout", e))
}

pub(crate) fn json_out(value: &serde_json::Value) -> Result<()> {
    out(&format!("{value:#}\n"))
}

fn init(path: Option<&Path>) -> Result<()> {
    let cwd = std::env::current_dir().map_err(|e| Error::io("read", ".", e))?;
    let root = path.map_or_else(|| cwd.clone(), |p| cwd.join(p));
    let config_path = root.join(CONFIG_FILE);
    if config_path.exists() {
        return Err(Error::AlreadyInitialised { path: config_path });
    }
    let config = Config::default();
    let migrations = root.join(&config.migrations);
    fs::create_dir_all(&migrations).map_err(|e| Error::io("create directory", &migrations, e))?;
    // Checksums cover raw bytes: a checkout that turned LF into CRLF would make every applied
    // migration look modified.
    ensure_line(&root.join(".gitattributes"), "*.sql text eol=lf")?;
    ensure_line(&root.join(".gitignore"), ".pgx/")?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&config_path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::AlreadyInitialised {
                path: config_path.clone(),
            },
            _ => Error::io("create", &config_path, e),
        })?;
    file.write_all(Config::template().as_bytes())
        .map_err(|e| Error::io("write", &config_path, e))
}

/// Appends `line` to the file unless it already holds it.
fn ensure_line(path: &Path, line: &str) -> Result<()> {
    let existing = match fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    if existing.lines().any(|l| l.trim() == line) {
        return Ok(());
    }
    let sep = if existing.is_empty() || existing.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    fs::write(path, format!("{existing}{sep}{line}\n")).map_err(|e| Error::io("write", path, e))
}

fn parse_sets(sets: &[String]) -> Result<Vec<(String, String)>> {
    sets.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(Error::SetSyntax { arg: s.clone() }),
        })
        .collect()
}

fn new(project: &Project, args: &NewArgs) -> Result<()> {
    let catalog = Catalog::load(&project.sources())?;
    let pattern = catalog.get(&args.pattern)?;
    let resolved = pattern.resolve(&parse_sets(&args.sets)?)?;
    let schema = match (args.scope, args.schema.as_deref()) {
        (MigrationScope::Tenant, Some(_)) => {
            return Err(Error::Usage(
                "--schema cannot be used with --scope tenant: tenant migrations run in each tenant's schema".into(),
            ));
        }
        (MigrationScope::Tenant, None) => None,
        (MigrationScope::Database, s) => Some(s.unwrap_or(&project.config.schema)),
    };
    let renderer = Renderer::new(&catalog)?;
    let rendered = render_pattern_in(&renderer, pattern, schema, args.table.as_deref(), &resolved)?;
    let description = migration::file_description(&match (&args.name, &args.table) {
        (Some(n), _) => n.clone(),
        (None, Some(t)) => format!("{}_{t}", pattern.name),
        (None, None) => pattern.name.clone(),
    })?;
    let dir = migrations_dir(project, args.scope);
    if args.dry_run {
        let version = migration::next_version(migration::max_version(&dir)?, chrono::Utc::now());
        let path = |kind: &str| dir.join(format!("{version}_{description}.{kind}.sql"));
        return out(&format!(
            "-- file: {}\n{}\n-- file: {}\n{}",
            path("up").display(),
            rendered.up,
            path("down").display(),
            rendered.down
        ));
    }
    let written = migration::write_pair(&dir, &description, &rendered.up, &rendered.down)?;
    out(&format!(
        "{}\n{}\n",
        written.up.display(),
        written.down.display()
    ))
}

fn migrations_dir(project: &Project, scope: MigrationScope) -> PathBuf {
    match scope {
        MigrationScope::Database => project.migrations_dir(),
        MigrationScope::Tenant => project.tenant_migrations_dir(),
    }
}

fn add(project: &Project, args: &AddArgs) -> Result<()> {
    let description = migration::file_description(&args.description)?;
    let body = |sql: Option<&String>| {
        let mut text = String::new();
        if args.no_transaction {
            text.push_str("-- no-transaction\n");
        }
        if let Some(sql) = sql {
            text.push_str(sql.trim_end());
            text.push('\n');
        }
        text
    };
    let written = migration::write_pair(
        &migrations_dir(project, args.scope),
        &description,
        &body(args.up.as_ref()),
        &body(args.down.as_ref()),
    )?;
    out(&format!(
        "{}\n{}\n",
        written.up.display(),
        written.down.display()
    ))
}

fn origin_json(origin: &Origin) -> serde_json::Value {
    match origin {
        Origin::BuiltIn => json!({ "kind": "built-in" }),
        Origin::Project {
            path,
            overrides_builtin,
        } => json!({ "kind": "project", "path": path, "overrides_builtin": overrides_builtin }),
    }
}

fn patterns(project: &Project, args: &PatternsArgs) -> Result<()> {
    let catalog = Catalog::load(&project.sources())?;
    match &args.command {
        None if args.json => json_out(&json!(
            catalog
                .patterns()
                .map(|p| json!({ "name": p.name, "origin": origin_json(&p.origin), "summary": p.summary }))
                .collect::<Vec<_>>()
        )),
        None => {
            let rows: Vec<[String; 3]> = catalog
                .patterns()
                .map(|p| [p.name.clone(), p.origin.label(), p.summary.clone()])
                .collect();
            out(&table(&["PATTERN", "ORIGIN", "SUMMARY"], &rows))
        }
        Some(PatternsCommand::Show { name }) => show_pattern(project, &catalog, catalog.get(name)?, args.json),
    }
}

fn show_pattern(project: &Project, catalog: &Catalog, p: &Pattern, as_json: bool) -> Result<()> {
    // Without an example in the spec, try the defaults on a table named `orders`; a pattern
    // with required parameters then has no example to show.
    let sets = p.example_sets();
    let example = p.example.clone().unwrap_or_default();
    let schema = example.schema.as_deref().unwrap_or(&project.config.schema);
    let table_name = match p.target {
        Target::Table => Some(example.table.as_deref().unwrap_or("orders")),
        Target::None => None,
    };
    let rendered = match (p.resolve(&sets), &p.example) {
        (Ok(resolved), _) => Some(render_pattern(
            &Renderer::new(catalog)?,
            p,
            schema,
            table_name,
            &resolved,
        )?),
        (Err(e), Some(_)) => return Err(e),
        (Err(_), None) => None,
    };
    let mut command = format!("pgx new {}", p.name);
    if let Some(t) = table_name {
        command.push_str(&format!(" {t}"));
    }
    for (k, v) in &sets {
        command.push_str(&format!(" --set {k}={v}"));
    }
    if as_json {
        return json_out(&json!({
            "name": p.name,
            "summary": p.summary,
            "description": p.description,
            "origin": origin_json(&p.origin),
            "target": p.target,
            "parameters": p.parameters.iter().map(|param| json!({
                "name": param.name,
                "type": param.ty,
                "expected": param.expected(),
                "default": param.default,
                "required": param.required,
                "doc": param.doc,
            })).collect::<Vec<_>>(),
            "example": rendered.as_ref().map(|r| json!({
                "command": command, "up": r.up, "down": r.down, "no_transaction": r.no_transaction,
                "setup": p.example.as_ref().and_then(|e| e.setup.as_ref()),
            })),
        }));
    }
    let mut text = format!("{} ({})\n  {}\n", p.name, p.origin.label(), p.summary);
    if !p.description.trim().is_empty() {
        text.push('\n');
        for line in p.description.trim_end().lines() {
            text.push_str(&format!("  {line}\n").replace("  \n", "\n"));
        }
    }
    text.push_str("\nParameters:\n");
    if p.parameters.is_empty() {
        text.push_str("  (none)\n");
    }
    for param in &p.parameters {
        let default = match (&param.default, param.required) {
            (_, true) => "required".to_string(),
            (Some(d), _) => format!("default: {}", crate::params::to_text(d)),
            (None, false) => "optional".to_string(),
        };
        text.push_str(&format!(
            "  {:<20} {}; {default}\n",
            param.name,
            param.expected()
        ));
        if !param.doc.is_empty() {
            text.push_str(&format!("  {:<20} {}\n", "", param.doc));
        }
    }
    if let Some(r) = rendered {
        text.push_str(&format!("\nExample: {command}\n"));
        if let Some(setup) = p.example.as_ref().and_then(|e| e.setup.as_ref()) {
            text.push_str("\nGiven:\n");
            for line in setup.up.trim_end().lines() {
                text.push_str(&format!("  {line}\n"));
            }
        }
        text.push_str(&format!("\n-- up\n{}\n-- down\n{}", r.up, r.down));
    }
    out(&text)
}

/// Left-aligned columns, the last one unpadded.
pub(crate) fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

/// The database a command talks to: the configured one, else the project's dev cluster
/// (created and started as needed), saying so on stderr.
///
/// Without a configured URL the project's own cluster is used, unless `PGX_DEV=off`: a deploy
/// job that lost its URL must fail, not migrate a throwaway local cluster and report success.
pub fn database_url(project: &Project, db: &DbArgs) -> Result<DbUrl> {
    match project.database_url(db.database_url.as_deref()) {
        Some(url) => Ok(url),
        None if std::env::var("PGX_DEV").is_ok_and(|v| v.eq_ignore_ascii_case("off")) => {
            project.require_database_url(None)
        }
        None => crate::dev::fallback_url(project),
    }
}

fn load_migrations(project: &Project) -> Result<(PathBuf, Vec<Migration>)> {
    let dir = project.migrations_dir();
    let migrations = migration::scan(&dir)?;
    Ok((dir, migrations))
}

fn report(verbose: bool, verb: &str, outcome: &crate::runner::Outcome) {
    if verbose {
        for (version, description, took) in &outcome.versions {
            eprintln!(
                "{verb} {version} {description} ({:.1} ms)",
                took.as_secs_f64() * 1e3
            );
        }
    }
}

async fn migrate(project: &Project, command: Migrate) -> Result<()> {
    if let Migrate::Up {
        db,
        lock,
        target,
        dry_run,
        ignore_missing,
        verbose,
        tenants: true,
        jobs,
    } = &command
    {
        let options = crate::tenant::UpOptions {
            lock_timeout: lock.lock_timeout,
            target: *target,
            dry_run: *dry_run,
            ignore_missing: *ignore_missing,
            verbose: *verbose,
            jobs: usize::from(*jobs),
        };
        return crate::tenant::migrate_up(project, db, options).await;
    }
    let (dir, migrations) = load_migrations(project)?;
    let db = match &command {
        Migrate::Up { db, .. }
        | Migrate::Down { db, .. }
        | Migrate::Status { db, .. }
        | Migrate::Redo { db, .. } => db,
    };
    let url = database_url(project, db)?;
    let mut conn = crate::db::connect(&url).await?;
    let lock_timeout = match &command {
        Migrate::Up { lock, .. } | Migrate::Down { lock, .. } | Migrate::Redo { lock, .. } => {
            lock.lock_timeout
        }
        Migrate::Status { .. } => std::time::Duration::ZERO,
    };
    let result = async {
        let mut runner = Runner::new(&mut conn, Scope::default(), lock_timeout).await?;
        match command {
            Migrate::Up {
                target,
                dry_run: true,
                ignore_missing,
                ..
            } => out(&runner
                .up_script(&migrations, &dir, target, ignore_missing)
                .await?),
            Migrate::Up {
                target,
                ignore_missing,
                verbose,
                ..
            } => {
                let outcome = runner.up(&migrations, &dir, target, ignore_missing).await?;
                report(verbose, "applied", &outcome);
                Ok(())
            }
            Migrate::Down {
                steps,
                target,
                dry_run,
                verbose,
                ..
            } => {
                let how = match target {
                    Some(t) => Down::Target(t),
                    None => Down::Steps(steps.unwrap_or(1)),
                };
                if dry_run {
                    out(&runner.down_script(&migrations, &dir, how).await?)
                } else {
                    let outcome = runner.down(&migrations, &dir, how).await?;
                    report(verbose, "reverted", &outcome);
                    Ok(())
                }
            }
            Migrate::Redo { .. } => runner.redo(&migrations, &dir).await.map(|_| ()),
            Migrate::Status { json, .. } => {
                let entries = runner.status(&migrations).await?;
                if json {
                    json_out(&json!({ "migrations": entries }))
                } else {
                    out(&status_table(&entries))
                }
            }
        }
    }
    .await;
    crate::db::close(conn).await;
    result
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
    table(&["VERSION", "DESCRIPTION", "STATE", "APPLIED AT"], &rows)
}
