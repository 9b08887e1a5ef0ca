//! Project configuration (`pgx.yaml`) and where the database URL comes from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalog::Sources;
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

/// A project: the folder holding `pgx.yaml` (or, without one, the folder pgx was pointed at,
/// with default settings, so plain sqlx projects work too).
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub config: Config,
    pub has_config_file: bool,
}

impl Project {
    /// Finds the project: `dir` if given, else the nearest ancestor of the current directory
    /// holding `pgx.yaml`, else the current directory.
    pub fn discover(dir: Option<&Path>) -> Result<Project> {
        let cwd = std::env::current_dir().map_err(|e| Error::io("read", ".", e))?;
        let root = match dir {
            Some(d) => cwd.join(d),
            None => cwd
                .ancestors()
                .find(|a| a.join(CONFIG_FILE).is_file())
                .unwrap_or(&cwd)
                .to_path_buf(),
        };
        Project::open(&root)
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

    pub fn sources(&self) -> Sources {
        Sources {
            patterns_dir: Some(self.path(&self.config.patterns)),
            templates_dir: Some(self.path(&self.config.templates)),
        }
    }

    /// `.env` entries of the project, without touching the process environment.
    fn dotenv(&self) -> BTreeMap<String, String> {
        let path = self.root.join(".env");
        let Ok(iter) = dotenvy::from_path_iter(&path) else {
            return BTreeMap::new();
        };
        iter.filter_map(std::result::Result::ok).collect()
    }

    /// The database URL, by precedence: `--database-url`, `DATABASE_URL` in the environment,
    /// `DATABASE_URL` in `.env`, then the variable `pgx.yaml` names (environment, then `.env`).
    pub fn database_url(&self, flag: Option<&str>) -> Option<DbUrl> {
        if let Some(url) = flag {
            return Some(DbUrl::new(url));
        }
        let dotenv = self.dotenv();
        let lookup = |name: &str| {
            std::env::var(name)
                .ok()
                .or_else(|| dotenv.get(name).cloned())
                .filter(|v| !v.is_empty())
        };
        lookup("DATABASE_URL")
            .or_else(|| lookup(&self.config.database_url_env))
            .map(DbUrl::new)
    }

    pub fn require_database_url(&self, flag: Option<&str>) -> Result<DbUrl> {
        self.database_url(flag).ok_or_else(|| Error::NoDatabaseUrl {
            env: if self.config.database_url_env == "DATABASE_URL" {
                "DATABASE_URL".into()
            } else {
                format!("DATABASE_URL or {}", self.config.database_url_env)
            },
        })
    }
}

/// Paths are shown relative to the current directory when they are under it: error messages
/// then name `migrations/..._x.up.sql` rather than a long absolute path.
fn display_path(root: &Path, p: impl AsRef<Path>) -> PathBuf {
    let full = root.join(p);
    match std::env::current_dir() {
        Ok(cwd) => full
            .strip_prefix(&cwd)
            .map(Path::to_path_buf)
            .unwrap_or(full),
        Err(_) => full,
    }
}

/// A database URL that never shows its password: `Display` and `Debug` print it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    raw: String,
}

impl DbUrl {
    pub fn new(raw: impl Into<String>) -> Self {
        DbUrl { raw: raw.into() }
    }

    /// The full URL, password included: only for handing to the driver.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The password, if the URL carries one (in the user-info part or as `?password=`).
    pub fn password(&self) -> Option<String> {
        let url = url::Url::parse(&self.raw).ok()?;
        let from_query = url
            .query_pairs()
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.into_owned());
        url.password()
            .map(percent_decode)
            .or(from_query)
            .filter(|p| !p.is_empty())
    }

    /// The same URL with the database name replaced.
    pub fn with_database(&self, db: &str) -> Result<DbUrl> {
        let mut url = url::Url::parse(&self.raw).map_err(|e| Error::DatabaseUrl {
            reason: e.to_string(),
        })?;
        url.set_path(&format!("/{}", percent_encode(db)));
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "dbname")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if pairs.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        Ok(DbUrl::new(url.to_string()))
    }

    /// Removes every occurrence of the password from `text` (a driver message, say).
    pub fn scrub(&self, text: &str) -> String {
        match self.password() {
            Some(p) if p.len() >= 2 => text.replace(&p, "***"),
            _ => text.to_string(),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but URL-unreserved characters (for a URL's host or path part).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.raw) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" {
                            "***".into()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                if !pairs.is_empty() {
                    url.query_pairs_mut().clear().extend_pairs(pairs);
                }
                write!(f, "{url}")
            }
            // Not a URL we can take apart: showing it could show the password.
            Err(_) => f.write_str("<unparsable database URL>"),
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_never_show_passwords() {
        let u = DbUrl::new("postgres://app:s3cr%40t@db.example:6432/prod?sslmode=require");
        assert_eq!(
            u.to_string(),
            "postgres://app:***@db.example:6432/prod?sslmode=require"
        );
        assert_eq!(u.password().as_deref(), Some("s3cr@t"));
        assert!(!format!("{u:?}").contains("s3cr"));
        let q = DbUrl::new("postgres://app@h/db?password=hunter2&application_name=x");
        assert!(!q.to_string().contains("hunter2"), "{q}");
        assert_eq!(q.scrub("failed for hunter2"), "failed for ***");
        assert_eq!(
            DbUrl::new("not a url :pw@").to_string(),
            "<unparsable database URL>"
        );
    }

    #[test]
    fn database_can_be_swapped() {
        let u = DbUrl::new("postgres://u:p@h:1/a?dbname=zz&sslmode=disable");
        let v = u.with_database("pgx test").unwrap();
        assert_eq!(v.expose(), "postgres://u:p@h:1/pgx%20test?sslmode=disable");
    }
}
