//! The project: its folder and its configuration (`pgx.yaml`). Below every layer but `sql`,
//! `yaml` and `error`: it knows where things are, not what they mean.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::yaml;

pub const CONFIG_FILE: &str = "pgx.yaml";

/// The contents of `pgx.yaml`. Paths are relative to the file's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Migrations applied to the database (the sqlx migrations folder).
    pub migrations: PathBuf,
    /// Migrations applied inside every tenant schema (schema-per-tenant).
    pub tenant_migrations: PathBuf,
    /// The project's own pattern specs; they add to or override the built-in ones.
    pub patterns: PathBuf,
    /// The project's own templates; they add to or override the built-in ones.
    pub templates: PathBuf,
    /// Schema `pgx new` targets when `--schema` is not given.
    pub schema: String,
    /// The environment variable (or `.env` entry) holding the database URL.
    pub database_url_env: String,
    /// Prefix of tenant schema names (`pgx tenant add acme` creates `<prefix>acme`).
    pub tenant_schema_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            migrations: "migrations".into(),
            tenant_migrations: "migrations/tenant".into(),
            patterns: "patterns".into(),
            templates: "templates".into(),
            schema: "public".into(),
            database_url_env: "DATABASE_URL".into(),
            tenant_schema_prefix: "tenant_".into(),
        }
    }
}

impl Config {
    /// The `pgx.yaml` that `pgx init` writes: every setting, with what it does.
    pub fn template() -> String {
        let d = Config::default();
        format!(
            "# pgx project configuration. Paths are relative to this file.\n\
             # Migrations applied to the database (sqlx-compatible: VERSION_DESCRIPTION.up.sql / .down.sql).\n\
             migrations: {}\n\
             # Migrations applied inside each tenant schema (`pgx tenant add`, `pgx migrate up --tenants`).\n\
             tenant_migrations: {}\n\
             # Your own pattern specs and templates; they add to or override the built-in ones by name.\n\
             patterns: {}\n\
             templates: {}\n\
             # Schema `pgx new` targets unless --schema is given.\n\
             schema: {}\n\
             # Variable (environment or .env) holding the database URL; --database-url and DATABASE_URL win.\n\
             database_url_env: {}\n\
             # Tenant schemas are named <prefix><tenant>.\n\
             tenant_schema_prefix: {}\n",
            d.migrations.display(),
            d.tenant_migrations.display(),
            d.patterns.display(),
            d.templates.display(),
            d.schema,
            d.database_url_env,
            d.tenant_schema_prefix,
        )
    }
}

/// A project: the folder holding `pgx.yaml`.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub config: Config,
    /// False only for [`Project::builtin_only`]: no folder, built-in patterns and defaults.
    pub has_config_file: bool,
}

impl Project {
    /// Finds the project: `dir` if given (it must hold `pgx.yaml`), else the nearest ancestor of
    /// the current directory holding `pgx.yaml`. Outside any project this is an error, so no
    /// command creates `migrations/` or a dev cluster in a folder the user did not mean.
    pub fn discover(dir: Option<&Path>) -> Result<Project> {
        let cwd = std::env::current_dir().map_err(|e| Error::io("read", ".", e))?;
        match dir {
            Some(d) => {
                let root = cwd.join(d);
                if !root.join(CONFIG_FILE).is_file() {
                    return Err(Error::NotAProject {
                        dir: Some(d.to_path_buf()),
                    });
                }
                Project::open(&root)
            }
            None => match cwd.ancestors().find(|a| a.join(CONFIG_FILE).is_file()) {
                Some(root) => Project::open(root),
                None => Err(Error::NotAProject { dir: None }),
            },
        }
    }

    /// [`Project::discover`], or, outside any project, the built-in patterns with default
    /// settings (for commands that only read, such as `pgx patterns`).
    pub fn discover_or_builtin(dir: Option<&Path>) -> Result<Project> {
        match Project::discover(dir) {
            Err(Error::NotAProject { dir: None }) => Ok(Project::builtin_only()),
            other => other,
        }
    }

    /// No project: default settings, and folders that do not exist (`/nonexistent`), so only
    /// built-in patterns are found.
    pub fn builtin_only() -> Project {
        Project {
            root: PathBuf::from("/nonexistent/pgx-no-project"),
            config: Config::default(),
            has_config_file: false,
        }
    }

    pub fn open(root: &Path) -> Result<Project> {
        let file = root.join(CONFIG_FILE);
        let (config, has_config_file) = if file.is_file() {
            let text = std::fs::read_to_string(&file).map_err(|e| Error::io("read", &file, e))?;
            let config: Config = if text.trim().is_empty() {
                Config::default()
            } else {
                yaml::from_str(&display_path(root, CONFIG_FILE), &text)?
            };
            let loc = yaml::Locator::new(&file, &text);
            crate::sql::check_ident(&config.schema)
                .map_err(|e| loc.error(&[yaml::Seg::Key("schema")], format!("schema: {e}")))?;
            (config, true)
        } else {
            (Config::default(), false)
        };
        Ok(Project {
            root: root.to_path_buf(),
            config,
            has_config_file,
        })
    }

    fn path(&self, p: &Path) -> PathBuf {
        display_path(&self.root, p)
    }

    pub fn migrations_dir(&self) -> PathBuf {
        self.path(&self.config.migrations)
    }

    pub fn tenant_migrations_dir(&self) -> PathBuf {
        self.path(&self.config.tenant_migrations)
    }

    /// The project's own pattern specs (which add to or override the built-in ones).
    pub fn patterns_dir(&self) -> PathBuf {
        self.path(&self.config.patterns)
    }

    /// The project's own templates.
    pub fn templates_dir(&self) -> PathBuf {
        self.path(&self.config.templates)
    }

    /// The project's `.env` file, as the user would name it.
    pub fn dotenv_path(&self) -> PathBuf {
        self.path(Path::new(".env"))
    }

    /// `.env` entries of the project, without touching the process environment.
    pub fn dotenv(&self) -> BTreeMap<String, String> {
        let path = self.root.join(".env");
        let Ok(iter) = dotenvy::from_path_iter(&path) else {
            return BTreeMap::new();
        };
        iter.filter_map(std::result::Result::ok).collect()
    }
}

/// Paths are shown relative to the current directory when the project is around it: error
/// messages then name `migrations/..._x.up.sql` rather than a long absolute path, and a command
/// run from inside `migrations/` still finds every file (`.`, `../patterns`).
fn display_path(root: &Path, p: impl AsRef<Path>) -> PathBuf {
    let full = root.join(p);
    match std::env::current_dir() {
        Ok(cwd) => relative_to(&full, &cwd).unwrap_or(full),
        Err(_) => full,
    }
}

/// `path` relative to `base`, when `path` lies under `base` or under an ancestor of `base` at
/// most a few levels up (otherwise the absolute path reads better).
fn relative_to(path: &Path, base: &Path) -> Option<PathBuf> {
    const MAX_UP: usize = 3;
    for (up, ancestor) in base.ancestors().enumerate().take(MAX_UP + 1) {
        if let Ok(rest) = path.strip_prefix(ancestor) {
            // Relative to `/` is no shorter than absolute.
            ancestor.parent()?;
            let mut out: PathBuf = std::iter::repeat_n("..", up).collect();
            out.push(rest);
            if out.as_os_str().is_empty() {
                out.push(".");
            }
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_current_directory_and_never_empty() {
        let rel = |p: &str, b: &str| relative_to(Path::new(p), Path::new(b));
        assert_eq!(rel("/p/migrations", "/p"), Some("migrations".into()));
        assert_eq!(rel("/p/migrations", "/p/migrations"), Some(".".into()));
        assert_eq!(
            rel("/p/patterns", "/p/migrations"),
            Some("../patterns".into())
        );
        assert_eq!(
            rel("/p/migrations/x.sql", "/p/migrations"),
            Some("x.sql".into())
        );
        assert_eq!(rel("/p", "/p/a/b"), Some("../..".into()));
        assert_eq!(rel("/other/m", "/p/a"), None, "no path through the root");
        assert_eq!(rel("/p/m", "/p/a/b/c/d/e"), None, "too far up");
    }
}
